"""probability.tif from a real `osmgap diff` on the sample AOI: a COG that rasterio (GDAL, as
QGIS uses it) reads back as the model's own probability, on the analysis grid."""
from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from osmgap.cli import main
from osmgap.core.datamodel import ProbabilityRaster
from osmgap.export.probability import probability_bytes, write_probability_tif
from osmgap.model.infer import predict_raster
from osmgap.model.nets import load_checkpoint
from osmgap.sources.imagery import WindowReader, analysis_grid, open_imagery, with_context

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def diff_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("prob") / "paris"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["diff", "--aoi", "sample_aoi/paris-1447", "--out", str(out)]) == 0
    (out.parent / "stdout.txt").write_text(printed.getvalue())
    return out


def test_a_complete_area_says_why_nothing_is_suggested(diff_run):
    """The sample's OSM is complete: the run says so in plain words, not just '0 suggestions'."""
    printed = (diff_run.parent / "stdout.txt").read_text()
    assert printed.startswith("0 suggestions")
    assert "Nothing suggested: every road the evidence shows is within" in printed
    assert "the area looks completely mapped" in printed and "demonstration" not in printed


@pytest.fixture(scope="module")
def direct_probability(paris, paris_aoi) -> ProbabilityRaster:
    """The same model run on the same grid (the AOI and its context, clipped to the image),
    outside the pipeline."""
    net, meta = load_checkpoint(None, "cpu")
    imagery = open_imagery(paris / "image.tif")
    grid = analysis_grid(imagery, with_context(paris_aoi.geometry, paris_aoi.metric_crs), paris_aoi.metric_crs,
                         meta.resolution_m)
    with WindowReader(imagery, grid) as reader:
        return predict_raster(net, meta, reader, device=torch.device("cpu"))


def test_diff_writes_a_cog_on_the_analysis_grid(diff_run, direct_probability):
    summary = json.loads((diff_run / "summary.json").read_text())
    with rasterio.open(diff_run / "probability.tif") as src:
        assert src.driver == "GTiff" and src.count == 1 and src.dtypes[0] == "uint8"
        assert src.crs.to_string() == summary["grid"]["crs"] == direct_probability.crs.to_string()
        assert (src.width, src.height) == (summary["grid"]["width"], summary["grid"]["height"])
        assert src.transform.almost_equals(direct_probability.transform)
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert src.overviews(1), "no overviews"
        assert src.block_shapes[0] == (128, 128)  # tiled (a small AOI gets small tiles, hence an overview)
        data = src.read(1)
        coarse = src.read(1, out_shape=(src.height // 2, src.width // 2))
    expected = probability_bytes(direct_probability.prob)
    assert np.abs(data.astype(int) - expected).max() <= 1  # same model, same grid, same numbers
    assert 0 < (data >= 128).mean() < 0.5  # some road, not everything: the sample street is seen
    assert abs(float(coarse.mean()) - float(data.mean())) < 8  # the overview is the same picture


def test_writer_is_atomic_and_needs_no_cog_driver(tmp_path, direct_probability, monkeypatch):
    """A GDAL without the COG driver still gets a tiled GeoTIFF with internal overviews."""
    import osmgap.export.probability as module

    monkeypatch.setattr(module, "has_cog_driver", lambda: False)
    out = write_probability_tif(tmp_path / "p.tif", direct_probability)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.tif"]  # no temporary left behind
    with rasterio.open(out) as src:
        assert src.block_shapes[0] == (128, 128) and src.overviews(1)
        assert np.array_equal(src.read(1), probability_bytes(direct_probability.prob))


def test_compression_threads_write_the_same_file(tmp_path, direct_probability):
    """A large run compresses its COG on every core: the file is the one a single thread writes."""
    one = write_probability_tif(tmp_path / "one.tif", direct_probability, threads=1)
    two = write_probability_tif(tmp_path / "two.tif", direct_probability, threads=2)
    assert one.read_bytes() == two.read_bytes()
