"""Density rasters and trace edits on the real Chicago UIC traces, checked against the mapped
roads of the same area (a real OSM graph): traffic lies on roads, and the rasters add up."""
from __future__ import annotations

import numpy as np
import pytest
import shapely
from shapely.ops import substring

from osmgap.conflate.conflate import probability_along
from osmgap.core.datamodel import ProbabilityRaster
from osmgap.core.grid import grid_over
from osmgap.core.traces import add_noise, keep_trips, resample
from osmgap.gps.density import (
    DensityParams,
    blurred_trips,
    densify,
    density_rasters,
    ridge_core,
    road_likelihood,
    trip_counts,
)

BOX = (444700.0, 4635000.0, 445700.0, 4636100.0)  # 1 km around the middle of the UIC campus routes


@pytest.fixture(scope="module")
def grid():
    return grid_over(BOX, "EPSG:32616", 4.0)


@pytest.fixture(scope="module")
def rasters(chicago_traces, grid):
    return density_rasters(chicago_traces, grid)


def test_counts_add_up(chicago_traces, rasters, grid):
    inside = chicago_traces.within((BOX[0], BOX[1], BOX[2] - 1e-6, BOX[3] - 1e-6))
    assert rasters.count.sum() == len(inside) > 10_000
    # the KDE is a density in points per m2: it integrates back to the count (minus what the
    # kernel spills over the border)
    assert 0.97 * len(inside) < rasters.kde.sum() * 16.0 <= len(inside)
    assert rasters.trips.max() <= chicago_traces.trips
    log = density_rasters(chicago_traces, grid, log=True)
    np.testing.assert_allclose(log.kde, np.log1p(rasters.kde), rtol=1e-5)


def test_interval_and_speed_per_pixel(rasters):
    sampled = np.isfinite(rasters.interval_s)
    assert sampled.sum() > 1000 and np.all(rasters.count[sampled] > 0)
    assert 1.0 <= np.nanmedian(rasters.interval_s) <= 4.0  # the data README: sampling ~1-4 s
    speed = rasters.speed_mps[np.isfinite(rasters.speed_mps)]
    assert 3.0 < np.median(speed) < 15.0 and np.percentile(speed, 99) < 40  # a city bus, not a jet


def test_traffic_lies_on_mapped_roads(chicago_traces, chicago_ways, rasters, grid):
    prob = road_likelihood(rasters.trips, grid)
    mapped = chicago_ways[chicago_ways.intersects(shapely.box(*BOX).buffer(-50))]
    on_road = np.concatenate([probability_along(prob, g, 4.0) for g in mapped.geometry])
    # 60 m off every mapped road is inside a block: buildings, yards
    blocks = shapely.box(*BOX).buffer(-50).difference(shapely.union_all(mapped.geometry.values).buffer(60))
    off_pts = shapely.get_coordinates(shapely.points(np.random.default_rng(0).uniform(BOX[:2], BOX[2:], (60000, 2))))
    off_pts = off_pts[shapely.contains_xy(blocks, off_pts[:, 0], off_pts[:, 1])]
    cols, rows = ~grid.transform @ (off_pts[:, 0], off_pts[:, 1])
    off_road = prob.prob[rows.astype(int), cols.astype(int)]
    assert len(off_pts) > 500
    assert np.mean(off_road >= 0.5) < 0.02 and np.mean(on_road >= 0.5) > 0.25  # shuttles drive some streets only
    assert prob.prob.min() >= 0 and prob.prob.max() <= 1


def test_trip_coverage_survives_coarser_sampling(chicago_traces, grid):
    """Trips along densified paths, not raw points, are counted: at one point per 30 s (~270 m
    apart on these buses) most of the busy routes stay roads and almost nothing new appears."""
    params = DensityParams()
    full = road_likelihood(trip_counts(chicago_traces, grid, params), grid, params).prob
    coarse = road_likelihood(trip_counts(resample(chicago_traces, 30.0), grid, params), grid, params).prob >= 0.5
    busy = full >= 0.99
    assert busy.sum() > 5000
    assert (busy & coarse).sum() > 0.5 * busy.sum()
    assert (coarse & (full < 0.5)).sum() < 0.05 * coarse.sum()


def test_trip_counts_on_a_window_equal_the_whole_grids(chicago_traces, grid, monkeypatch):
    """A window of the grid (a tile of a large area) counts only the points that can reach it, yet
    every pixel equals the whole grid's: steps cut by the window and paths cut where points were left
    out (sampled every 30 s, so many steps cross its border). Reaching less than a joined step
    (the test's control) loses the steps that enter from farther away."""
    from osmgap.core.grid import window_grid
    from osmgap.gps import density

    sparse = resample(chicago_traces, 30.0)
    whole = trip_counts(sparse, grid)
    for region in [(150, 20, 240, 110), (0, 140, 60, 250), (180, 160, grid.height, grid.width)]:
        window = trip_counts(sparse, window_grid(grid, region))
        assert window.sum() > 500
        np.testing.assert_array_equal(window, whole[region[0]:region[2], region[1]:region[3]])
    reaching = density._reaching
    monkeypatch.setattr(density, "_reaching", lambda t, o, g, reach_m: reaching(t, o, g, 20.0))
    short = trip_counts(sparse, window_grid(grid, (150, 20, 240, 110)))
    assert short.sum() < whole[150:240, 20:110].sum()


def test_densify_fills_gaps_but_not_jumps(chicago_traces):
    one = chicago_traces.take(chicago_traces.trip == chicago_traces.trip[0])
    x, y, trip = densify(one, 2.0, 150.0)
    steps = one.step_lengths()
    expected = len(one) + int(sum(np.ceil(s / 2.0) - 1 for s in steps[np.isfinite(steps)] if 2.0 < s <= 150.0))
    assert len(x) == expected and np.all(trip == one.trip[0])


def test_trace_edits(chicago_traces):
    fewer = keep_trips(chicago_traces, 0.1, seed=1)
    assert fewer.trips == round(0.1 * chicago_traces.trips)
    coarse = resample(chicago_traces, 30.0)
    dt = coarse.intervals()
    assert np.nanmin(dt) >= 30.0 and np.nanmedian(dt) < 35.0 and coarse.trips == chicago_traces.trips
    noisy = add_noise(chicago_traces, 10.0, seed=2)
    rms = np.sqrt(np.mean(np.r_[noisy.x - chicago_traces.x, noisy.y - chicago_traces.y] ** 2))
    assert abs(rms - 10.0) < 0.2


def test_ridge_core_is_as_wide_as_the_traffic_not_its_skirt(chicago_traces, chicago_ways, grid):
    """Along the busy mapped streets (>= 50 trips) the likelihood >= 0.5 spreads over the GPS
    error's skirt, wider the busier the street; the ridge core (half the local maximum) is the
    traffic's full width at half maximum (2.35 sigma = 19 m at sigma 8 m) and still runs the whole
    street. Width: pixels >= 0.5 nearer to the street than to any other, per metre of street."""
    params = DensityParams()
    trips = trip_counts(chicago_traces, grid, params)
    blurred = blurred_trips(trips, grid, params)
    prob = road_likelihood(trips, grid, params)
    core = ridge_core(blurred, prob, grid, 0.5, 30.0)
    busy_line = ProbabilityRaster(blurred, grid.transform, grid.crs)
    rows, cols = np.mgrid[0:grid.height, 0:grid.width]
    x, y = grid.transform @ (cols.ravel() + 0.5, rows.ravel() + 0.5)
    ways = chicago_ways.geometry.values
    pixels, nearest = shapely.STRtree(ways).query_nearest(shapely.points(x, y), all_matches=False)
    owner = np.full(len(x), -1)
    owner[pixels] = nearest
    wide, narrow, runs = [], [], []
    for k, way in enumerate(ways):
        if way.length < 100 or not shapely.box(*BOX).buffer(-80).contains(way):
            continue
        middle = substring(way, 25, way.length - 25)  # junctions left out
        if np.median(probability_along(busy_line, middle, 4.0)) < 50:
            continue
        own = (owner == k) & shapely.contains_xy(middle.buffer(60, cap_style="flat"), x, y)
        wide.append((prob.prob.ravel()[own] >= 0.5).sum() * 16.0 / middle.length)
        narrow.append((core.prob.ravel()[own] >= 0.5).sum() * 16.0 / middle.length)
        runs.append((probability_along(core, middle, 4.0) >= 0.5).mean())
    assert len(wide) >= 5
    assert 10.0 < np.median(narrow) < 25.0 and np.median(wide) > 1.6 * np.median(narrow)
    assert np.median(runs) >= 0.95
