"""Sliding-window inference: tiling, coverage-normalized stitching, georeferencing."""
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

import osmgap.model.infer as infer
from osmgap.core.precision import FP32_ENV
from osmgap.model.infer import (
    blend_window,
    cpu_lanes,
    predict_array,
    predict_raster,
    reading_threads,
    sliding_window,
    tile_origins,
)
from osmgap.model.nets import ModelMeta, build_net, fold_batchnorm, inference_net, load_checkpoint, save_checkpoint
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


def test_batchnorm_folding_is_exact_on_a_real_image(paris, paris_aoi, monkeypatch):
    """The shipped model with every BatchNorm folded into its convolution gives the same
    probabilities on the real Paris chip (to 1e-4, in fp32), leaves the loaded net as it was
    (trainable, its norms in place), and is made once per net."""
    monkeypatch.setenv(FP32_ENV, "1")
    net, meta = load_checkpoint()
    norms = sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    folded, count = fold_batchnorm(net, meta.in_channels)
    assert norms > 20 and count == norms
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules()) == norms
    im = open_imagery(paris / "image.tif")
    grid = analysis_grid(im, paris_aoi.geometry, paris_aoi.metric_crs, meta.resolution_m)
    with WindowReader(im, grid) as reader:
        image, _ = reader.read_all()
    cpu = torch.device("cpu")
    before = predict_array(net, meta, image, tile=96, overlap=16, batch=4, device=cpu)
    after = predict_array(folded, meta, image, tile=96, overlap=16, batch=4, device=cpu)
    assert before.std() > 0.05  # the chip's roads are there to compare
    np.testing.assert_allclose(after, before, atol=1e-4)
    assert inference_net(net) is inference_net(net)


def test_a_norm_that_does_not_follow_its_convolution_is_not_folded():
    """Folding checks itself on a probe: a block whose norm is applied to something else than the
    convolution next to it keeps its norm."""
    class Skewed(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = torch.nn.Conv2d(3, 3, 3, padding=1)
            self.bn1 = torch.nn.BatchNorm2d(3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv1(self.bn1(x))  # norm first: conv1/bn1 by name, but not conv -> norm

    torch.manual_seed(0)
    net = Skewed().eval()
    net.bn1.running_mean.uniform_(-1, 1)
    net.bn1.running_var.uniform_(0.5, 2)
    same, count = fold_batchnorm(net)
    assert same is net and count == 0


def test_windows_read_ahead_in_order_and_a_read_error_reaches_the_caller():
    """The next batch is read in a background thread: each window is read once, the results are
    the same as reading in turn, and a failing read raises in the caller."""
    image = np.random.default_rng(0).random((3, 300, 400)).astype(np.float32)
    meta = ModelMeta(mean=[0.0, 0.0, 0.0], std=[1.0, 1.0, 1.0])
    seen: list[tuple[int, int]] = []

    def read(row: int, col: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        seen.append((row, col))
        out = np.zeros((3, h, w), np.float32)
        part = image[:, row:row + h, col:col + w]
        out[:, :part.shape[1], :part.shape[2]] = part
        return out, np.ones((h, w), bool)

    got = sliding_window(PixelwiseNet(), meta, read, 300, 400, tile=128, overlap=32, batch=1, device=torch.device("cpu"))
    assert len(seen) == len(set(seen)) == len(tile_origins(300, 128, 32)) * len(tile_origins(400, 128, 32))
    expected = torch.sigmoid(PixelwiseNet()(torch.from_numpy(image[None]))).numpy()[0, 0]
    np.testing.assert_allclose(got, expected, atol=1e-5)

    def broken(row: int, col: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        if (row, col) != (0, 0):
            raise OSError("imagery.tif: read failed")
        return read(row, col, h, w)

    with pytest.raises(OSError, match="read failed"):
        sliding_window(PixelwiseNet(), meta, broken, 300, 400, tile=128, overlap=32, batch=1, device=torch.device("cpu"))


class SlowCountingNet(PixelwiseNet):
    """PixelwiseNet that sleeps a varying time per window and records how many windows ran at once."""

    def __init__(self) -> None:
        super().__init__()
        self.running = 0
        self.most = 0
        self.calls = 0
        self.lock = threading.Lock()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with self.lock:
            self.running += 1
            self.calls += 1
            self.most = max(self.most, self.running)
            pause = 0.002 * (self.calls % 3)  # later windows sometimes finish first
        time.sleep(pause + 0.01)
        with self.lock:
            self.running -= 1
        return super().forward(x)


def test_cpu_lanes_run_windows_side_by_side_and_add_them_in_order():
    """Two CPU threads: two windows in flight on one torch thread each; the sums are bit for bit
    those of one lane, torch's thread count is put back, and a failing forward pass raises here."""
    assert [cpu_lanes(n) for n in (1, 2, 4, 5, 16)] == [(1, 1), (2, 1), (2, 1), (2, 2), (2, 7)]
    image = np.random.default_rng(1).random((3, 300, 400)).astype(np.float32)
    meta = ModelMeta(mean=[0.1, 0.2, 0.3], std=[0.9, 1.1, 1.0])
    before = torch.get_num_threads()
    results = {}
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            net = SlowCountingNet()
            results[threads] = predict_array(net, meta, image, tile=96, overlap=24, batch=1,
                                             device=torch.device("cpu"))
            assert net.most == threads
            assert torch.get_num_threads() == threads
        np.testing.assert_array_equal(results[1], results[2])

        class Broken(SlowCountingNet):
            def forward(self, x: torch.Tensor) -> torch.Tensor:
                if self.calls >= 3:
                    raise RuntimeError("out of memory in lane")
                return super().forward(x)

        with pytest.raises(RuntimeError, match="out of memory in lane"):
            predict_array(Broken(), meta, image, tile=96, overlap=24, batch=1, device=torch.device("cpu"))
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("resolution_m", [1.0, 0.25])  # a decimated read, and the warped VRT
def test_window_reader_reads_the_same_from_several_threads_at_once(paris, paris_aoi, resolution_m):
    """Each thread reads through its own dataset handle (GDAL's are not to be shared): four threads
    reading every window at once get the pixels one thread reads in turn, and close() closes all."""
    im = open_imagery(paris / "image.tif")
    grid = analysis_grid(im, paris_aoi.geometry, paris_aoi.metric_crs, resolution_m)
    side = 64
    origins = [(r, c) for r in range(0, grid.height, side // 2) for c in range(0, grid.width, side // 2)]
    with WindowReader(im, grid) as reader:
        alone = [reader.read(r, c, side, side) for r, c in origins]
    with WindowReader(im, grid) as reader:
        with ThreadPoolExecutor(4) as pool:
            together = list(pool.map(lambda rc: reader.read(rc[0], rc[1], side, side), origins * 3))
        handles = list(reader._handles)
        assert 2 <= len(handles) <= 5  # the opening thread's, and one per reading thread that read
    assert all(src.closed for src, _ in handles)
    for (a, va), (b, vb) in zip(alone * 3, together, strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(va, vb)


def test_several_reading_threads_give_the_probabilities_of_one(paris, paris_aoi, monkeypatch):
    """As beside a GPU: three threads read batches ahead, which come back in order, so the sums
    are bit for bit those of one reading thread."""
    assert reading_threads(torch.device("cpu")) == 1
    assert 1 <= reading_threads(torch.device("cuda")) <= infer.GPU_MAX_READERS
    im = open_imagery(paris / "image.tif")
    grid = analysis_grid(im, paris_aoi.geometry, paris_aoi.metric_crs, 0.5)
    meta = ModelMeta(mean=[0.4, 0.4, 0.4], std=[0.2, 0.2, 0.2])
    results = []
    for readers in (1, 3):
        monkeypatch.setattr(infer, "reading_threads", lambda device, n=readers: n)
        with WindowReader(im, grid) as reader:
            results.append(sliding_window(SlowCountingNet(), meta, reader.read, grid.height, grid.width, tile=64,
                                          overlap=16, batch=2, device=torch.device("cpu")))
    np.testing.assert_array_equal(results[0], results[1])


def test_one_batch_is_read_by_every_reading_thread(paris, paris_aoi, monkeypatch):
    """Beside a GPU a batch holds up to 32 windows, often all of a tile's: its windows must be read
    by all the reading threads at once, not one after another by one of them."""
    im = open_imagery(paris / "image.tif")
    grid = analysis_grid(im, paris_aoi.geometry, paris_aoi.metric_crs, 0.5)
    meta = ModelMeta(mean=[0.4, 0.4, 0.4], std=[0.2, 0.2, 0.2])
    monkeypatch.setattr(infer, "reading_threads", lambda device: 3)
    lock, running, most, threads = threading.Lock(), [0], [0], set()
    results = []
    with WindowReader(im, grid) as reader:
        def slow_read(row: int, col: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
            with lock:
                running[0] += 1
                most[0] = max(most[0], running[0])
                threads.add(threading.current_thread().name)
            time.sleep(0.01)
            try:
                return reader.read(row, col, h, w)
            finally:
                with lock:
                    running[0] -= 1

        for read, batch in ((reader.read, 1), (slow_read, 64)):
            results.append(sliding_window(PixelwiseNet(), meta, read, grid.height, grid.width, tile=64,
                                          overlap=16, batch=batch, device=torch.device("cpu")))
    assert len(threads) == 3 and most[0] == 3
    np.testing.assert_array_equal(results[0], results[1])
