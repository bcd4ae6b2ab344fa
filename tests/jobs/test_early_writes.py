"""The outputs made beside conflation (osmgap.jobs.early_writes) on the real Paris chip: the same
files as made in turn; started at once for an ordinary AOI; above the size where their buffers
would stack on conflation's memory, only when started (after conflation) or asked for."""
import time

import numpy as np
import rasterio

import osmgap.jobs.early_writes as early_writes
from osmgap.core.datamodel import ProbabilityRaster
from osmgap.export.overview import read_backdrop
from osmgap.export.probability import write_probability_tif
from osmgap.sources.imagery import analysis_grid, open_imagery


def _appears(path, seconds=30.0):
    deadline = time.time() + seconds
    while not path.exists() and time.time() < deadline:
        time.sleep(0.05)
    return path.exists()


def _inputs(paris, paris_aoi):
    imagery = open_imagery(paris / "image.tif")
    grid = analysis_grid(imagery, paris_aoi.geometry, paris_aoi.metric_crs, 1.0)
    yy, xx = np.mgrid[0:grid.height, 0:grid.width]
    prob = ProbabilityRaster(((np.sin(xx / 9.0) * np.cos(yy / 7.0)) ** 2).astype(np.float32), grid.transform, grid.crs)
    return imagery, grid, prob


def _as_made_in_turn(cog, prob, rgb, imagery, grid, tmp_path):
    write_probability_tif(tmp_path / "turn.tif", prob)
    with rasterio.open(cog) as a, rasterio.open(tmp_path / "turn.tif") as b:
        assert np.array_equal(a.read(), b.read()) and a.transform == b.transform
    assert np.array_equal(rgb, read_backdrop(imagery, grid)[1])


def _above_the_limit(paris, paris_aoi, monkeypatch):
    imagery, grid, prob = _inputs(paris, paris_aoi)
    monkeypatch.setattr(early_writes, "OVERLAP_MAX_PX", grid.width * grid.height - 1)
    return imagery, grid, prob


def test_made_beside_conflation_they_equal_those_made_in_turn(paris, paris_aoi, tmp_path):
    imagery, grid, prob = _inputs(paris, paris_aoi)
    (tmp_path / "early").mkdir()
    with early_writes.EarlyWrites(tmp_path / "early", prob, imagery, grid) as early:
        assert _appears(tmp_path / "early" / "probability.tif")  # started at once, before anyone asks
        shown, rgb = early.backdrop()
    assert shown.transform == read_backdrop(imagery, grid)[0].transform
    _as_made_in_turn(tmp_path / "early" / "probability.tif", prob, rgb, imagery, grid, tmp_path)


def test_above_the_size_limit_nothing_starts_until_asked(paris, paris_aoi, tmp_path, monkeypatch):
    imagery, grid, prob = _above_the_limit(paris, paris_aoi, monkeypatch)
    with early_writes.EarlyWrites(tmp_path, prob, imagery, grid) as early:
        time.sleep(0.5)
        assert not (tmp_path / "probability.tif").exists()
        assert early.probability() == tmp_path / "probability.tif" and (tmp_path / "probability.tif").exists()
        assert early.backdrop() is not None


def test_above_the_size_limit_start_begins_both_in_the_background(paris, paris_aoi, tmp_path, monkeypatch):
    imagery, grid, prob = _above_the_limit(paris, paris_aoi, monkeypatch)
    with early_writes.EarlyWrites(tmp_path, prob, imagery, grid) as early:
        early.start(threads=2)
        assert _appears(tmp_path / "probability.tif")  # nobody asked for it
        _, rgb = early.backdrop()
        early.start()  # once started, a second start changes nothing
        assert early.probability() == tmp_path / "probability.tif"
    _as_made_in_turn(tmp_path / "probability.tif", prob, rgb, imagery, grid, tmp_path)
