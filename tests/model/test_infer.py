"""Sliding-window inference: tiling, coverage-normalized stitching, georeferencing."""
import numpy as np
import pytest
import torch

from osmgap.model.infer import blend_window, predict_array, predict_raster, tile_origins
from osmgap.model.nets import ModelMeta, build_net, load_checkpoint, save_checkpoint
from osmgap.sources.imagery import WindowReader, analysis_grid, open_imagery


class PixelwiseNet(torch.nn.Module):
    """A net whose output at a pixel depends only on that pixel, so a correct stitcher must
    reproduce the untiled result exactly, whatever the tiling."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x[:, :1] * 2 - x[:, 1:2] + 0.3 * x[:, 2:3])


@pytest.fixture(scope="module")
def paris_pixels(paris, paris_aoi):
    im = open_imagery(paris / "image.tif")
    grid = analysis_grid(im, paris_aoi.geometry, paris_aoi.metric_crs, 0.5)
    with WindowReader(im, grid) as r:
        data, _ = r.read_all()
    return data


def test_tile_origins_cover_everything():
    for length, tile, overlap in [(100, 64, 16), (513, 256, 32), (64, 64, 8), (30, 64, 8), (1000, 512, 64)]:
        starts = tile_origins(length, tile, overlap)
        covered = np.zeros(length, bool)
        for s in starts:
            covered[s:s + tile] = True
        assert covered.all()
        assert starts[-1] + tile >= length and (length <= tile or starts[-1] + tile == length)


def test_blend_window_is_positive_and_flat_inside():
    w = blend_window(128, 32)
    assert w.min() > 0 and w[32:96, 32:96].min() == 1.0 and w[0, 0] < 0.01


@pytest.mark.parametrize("tile, overlap, batch", [(64, 16, 3), (128, 48, 1), (96, 0, 8)])
def test_stitching_matches_untiled(paris_pixels, tile, overlap, batch):
    meta = ModelMeta(mean=[0, 0, 0], std=[1, 1, 1])
    net = PixelwiseNet()
    expected = torch.sigmoid(net(torch.from_numpy(paris_pixels)[None]))[0, 0].numpy()
    got = predict_array(net, meta, paris_pixels, tile=tile, overlap=overlap, batch=batch, device=torch.device("cpu"))
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_raster_keeps_transform_and_crs(paris, paris_aoi, tmp_path):
    im = open_imagery(paris / "image.tif")
    meta = ModelMeta(arch="Linknet", encoder="resnet18")
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "m.pt", build_net(meta), meta)
    net, meta = load_checkpoint(tmp_path / "m.pt")
    grid = analysis_grid(im, paris_aoi.geometry, paris_aoi.metric_crs, meta.resolution_m)
    with WindowReader(im, grid) as reader:
        raster = predict_raster(net, meta, reader, tile=64, overlap=16, batch=4)
    assert raster.transform == grid.transform and raster.crs == grid.crs
    assert raster.prob.shape == (grid.height, grid.width)
    assert 0.0 <= raster.prob.min() and raster.prob.max() <= 1.0 and raster.prob.std() > 0
