"""Offset between evidence and OSM by cross-correlation, on real roads (Paris sample, Helsinki):
found to a fraction of a pixel where the evidence pins it down, and left unapplied, reported as
not measured with the reason, where it does not (too little road, roads one way only)."""
from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
import shapely
import torch
from shapely.geometry import LineString

from osmgap.conflate.offset import MIN_CROSS_M, MIN_EVIDENCE_M, MIN_SHARPNESS, Offset, estimate, lines_raster
from osmgap.core.grid import grid_over
from osmgap.graph.rasterize import rasterize_roads
from osmgap.model.infer import predict_raster
from osmgap.model.nets import load_checkpoint
from osmgap.sources.imagery import WindowReader, analysis_grid, open_imagery
from osmgap.sources.osm import load_osm
from tests.roads import extent_aoi


@pytest.mark.parametrize("east, north", [(6.0, -3.0), (-2.5, 7.5), (0.0, 0.0)])
def test_shift_of_a_road_raster_is_found_to_a_fraction_of_a_pixel(paris, paris_aoi, east, north):
    """A 'probability raster' made of the sample's real roads moved by a known amount."""
    roads = load_osm(str(paris / "osm_roads.geojson"), paris_aoi)
    grid = analysis_grid(open_imagery(paris / "image.tif"), paris_aoi.geometry, paris_aoi.metric_crs, 0.5)
    metric = roads.ways.to_crs(grid.crs)
    moved = metric.set_geometry(metric.geometry.translate(east, north))
    found = estimate(lambda window: rasterize_roads(moved, window).astype(np.float32), roads.ways, grid, 25.0)
    assert found.applied
    assert found.east_m == pytest.approx(east, abs=0.3) and found.north_m == pytest.approx(north, abs=0.3)
    assert found.correction == pytest.approx((-found.east_m, -found.north_m))


def test_lines_shifted_ten_metres_over_a_city(helsinki):
    crs = extent_aoi(helsinki).metric_crs
    metric = helsinki.ways.to_crs(crs)
    moved = metric.set_geometry(metric.geometry.translate(8.0, -6.0))
    grid = grid_over(tuple(metric.total_bounds), crs, 1.0)
    found = estimate(lines_raster(moved), helsinki.ways, grid, 25.0)
    assert found.applied and found.magnitude_m == pytest.approx(10.0, abs=0.3)
    assert found.evidence_m > 10 * MIN_EVIDENCE_M and found.cross_m > 10 * MIN_CROSS_M
    summary = found.summary()
    assert summary["measured"] and summary["east_m"] == pytest.approx(8.0, abs=0.3)


def test_unrelated_roads_give_no_offset(helsinki, kotka):
    """Kotka's real roads laid over Helsinki's: no peak stands out, nothing is applied."""
    crs = extent_aoi(helsinki).metric_crs
    target = helsinki.ways.to_crs(crs)
    other = kotka.ways.to_crs(crs)
    dx, dy = target.total_bounds[:2] - other.total_bounds[:2]
    laid = gpd.GeoDataFrame(other.drop(columns="geometry"), geometry=other.geometry.translate(dx, dy), crs=crs)
    grid = grid_over(tuple(target.total_bounds), crs, 1.0)
    found = estimate(lines_raster(laid), helsinki.ways, grid, 25.0)
    assert not found.applied and found.correction == (0.0, 0.0)


def test_the_support_of_an_offset_reads_only_the_ways_that_reach_its_windows(helsinki_metric):
    """A large AOI's offset is measured on a few windows; of its OSM, only the ways with a 2 m piece
    in one of them at the shift are cut into pieces: every such way of Helsinki's real roads, and
    few others (moved the wrong way, the windows miss some)."""
    from osmgap.conflate.offset import SUPPORT_STEP_M, _reaching, _segments
    from osmgap.core.grid import window_grid

    metric, grid = helsinki_metric
    ways = metric.geometry.to_numpy()
    windows = [window_grid(grid, (200, 100, 500, 400)), window_grid(grid, (900, 500, 1200, 800))]
    mid, _, _, owner = _segments(ways, SUPPORT_STEP_M)

    def needed(shift):
        inside = np.zeros(len(mid), bool)
        for w in windows:
            cols, rows = ~w.transform @ (mid[:, 0] + shift[0], mid[:, 1] + shift[1])
            inside |= (rows >= 0) & (cols >= 0) & (rows < w.height) & (cols < w.width)
        return set(np.unique(owner[inside]).tolist())

    shift = (40.0, -30.0)
    picked = set(_reaching(ways, windows, shift).tolist())
    assert needed(shift) <= picked and len(picked) < 1.1 * len(needed(shift)) < 0.9 * len(ways)
    assert not needed(shift) <= set(_reaching(ways, windows, (-shift[0], -shift[1])).tolist())


def test_nothing_to_compare(helsinki):
    crs = extent_aoi(helsinki).metric_crs
    grid = grid_over(tuple(helsinki.ways.to_crs(crs).total_bounds), crs, 1.0)
    found = estimate(lambda window: np.zeros((window.height, window.width), np.float32), helsinki.ways, grid, 25.0)
    assert not found.applied and "too little road" in found.reason


@pytest.fixture(scope="module")
def helsinki_metric(helsinki):
    crs = extent_aoi(helsinki).metric_crs
    metric = helsinki.ways.to_crs(crs)
    return metric, grid_over(tuple(metric.total_bounds), crs, 1.0)


@pytest.mark.parametrize("ways, applied", [(8, False), (17, True)])
def test_a_few_streets_are_too_little_to_measure_a_few_blocks_enough(helsinki, helsinki_metric, ways, applied):
    """Helsinki's first real ways, moved 8 m east and 6 m south: 8 ways (0.3 km) leave the offset
    unmeasured however clear the peak, 17 ways (0.57 km, several directions) measure it."""
    metric, grid = helsinki_metric
    few = metric.iloc[:ways]
    found = estimate(lines_raster(few.set_geometry(few.geometry.translate(8.0, -6.0))), helsinki.ways, grid, 25.0)
    assert found.applied is applied
    assert (found.evidence_m >= MIN_EVIDENCE_M) is applied
    if applied:
        assert (found.east_m, found.north_m) == pytest.approx((8.0, -6.0), abs=0.3)
    else:
        assert found.correction == (0.0, 0.0) and "not measured" in found.reason and "confirms only" in found.reason
        assert found.summary()["east_m"] is None and found.summary()["peak"]["evidence_m"] < MIN_EVIDENCE_M


def test_roads_running_one_way_leave_the_offset_unmeasured(helsinki, helsinki_metric):
    """Every piece of Helsinki's real roads that runs within 10 degrees of the most common
    direction (12 km of road), moved: the shift along that direction is free, the peak a ridge."""
    metric, grid = helsinki_metric
    pieces = [(LineString(xy[i:i + 2]), hw) for g, hw in zip(metric.geometry, metric["highway"])
              for part in shapely.get_parts(g) for xy in [shapely.get_coordinates(part)] for i in range(len(xy) - 1)]
    frame = gpd.GeoDataFrame({"highway": [h for _, h in pieces]}, geometry=[p for p, _ in pieces], crs=metric.crs)
    d = np.stack([np.diff(shapely.get_coordinates(g), axis=0)[0] for g in frame.geometry])
    bearing = np.degrees(np.arctan2(d[:, 1], d[:, 0])) % 180
    main = np.histogram(bearing, bins=18, range=(0, 180), weights=frame.length)[0].argmax() * 10 + 5
    one_way = frame[np.abs((bearing - main + 90) % 180 - 90) < 10]
    assert one_way.length.sum() > 10_000
    found = estimate(lines_raster(one_way.set_geometry(one_way.geometry.translate(8.0, -6.0))), helsinki.ways, grid, 25.0)
    assert not found.applied and found.correction == (0.0, 0.0)
    assert found.sharpness < MIN_SHARPNESS and "ridge" in found.reason


def _paris_prediction(paris, paris_aoi, views: int | None):
    """The shipped model's road probability over the real Paris chip, in ``views`` views (None: the default)."""
    net, meta = load_checkpoint(None, "cpu")
    imagery = open_imagery(paris / "image.tif")
    grid = analysis_grid(imagery, paris_aoi.geometry, paris_aoi.metric_crs, meta.resolution_m)
    with WindowReader(imagery, grid) as reader:
        return predict_raster(net, meta, reader, device=torch.device("cpu"), views=views), grid


@pytest.fixture(scope="module")
def paris_one_view(paris, paris_aoi):
    return _paris_prediction(paris, paris_aoi, 1)


@pytest.fixture(scope="module")
def paris_default_views(paris, paris_aoi):
    return _paris_prediction(paris, paris_aoi, None)


def _paris_offset(paris, paris_aoi, prediction, east: float, north: float) -> Offset:
    prob, grid = prediction
    roads = load_osm(str(paris / "osm_roads.geojson"), paris_aoi).ways.to_crs(grid.crs)
    moved = roads.set_geometry(roads.geometry.translate(-east, -north))  # the evidence lies (east, north) off it
    return estimate(lambda window: prob.prob, moved, grid, 25.0)  # the chip is one window


@pytest.mark.parametrize("east, north", [(0.0, 0.0), (12.0, -6.0)])
def test_the_model_in_one_view_sees_too_little_road_on_the_paris_chip_to_measure_an_offset(
        paris, paris_aoi, paris_one_view, east, north):
    """What the model sees in one view on the 0.025 km2 chip confirms under 0.4 km of OSM road: the
    offset is not measured, even where the chip's real OSM is moved 13 m away, and summary.json says why."""
    found = _paris_offset(paris, paris_aoi, paris_one_view, east, north)
    assert not found.applied and found.correction == (0.0, 0.0)
    assert found.evidence_m < MIN_EVIDENCE_M and "confirms only" in found.reason
    summary = json.loads(json.dumps(found.summary(), allow_nan=False))
    assert summary["measured"] is False and summary["east_m"] is None and summary["reason"].startswith("not measured")


def test_in_the_default_views_the_paris_chip_confirms_enough_road_and_the_offset_follows_osm(
        paris, paris_aoi, paris_default_views):
    """Averaged over its views (2 on a CPU) the model sees more of the chip's roads: enough to measure
    the offset, and moving the chip's real OSM by (12, -6) m moves the measured offset by as much."""
    still = _paris_offset(paris, paris_aoi, paris_default_views, 0.0, 0.0)
    moved = _paris_offset(paris, paris_aoi, paris_default_views, 12.0, -6.0)
    assert still.applied and moved.applied and min(still.evidence_m, moved.evidence_m) >= MIN_EVIDENCE_M
    assert moved.east_m - still.east_m == pytest.approx(12.0, abs=1.0)
    assert moved.north_m - still.north_m == pytest.approx(-6.0, abs=1.0)


def test_the_summary_is_valid_json_whatever_the_numbers():
    found = Offset(float("nan"), float("inf"), float("nan"), reason="x", peaked=True, evidence_m=float("nan"))
    text = json.dumps(found.summary(), allow_nan=False)
    assert json.loads(text)["peak"]["east_m"] is None
