"""Offset between evidence and OSM by cross-correlation, on real roads (Paris sample, Helsinki)."""
from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest

from osmgap.conflate.offset import estimate, lines_raster
from osmgap.core.grid import grid_over
from osmgap.graph.rasterize import rasterize_roads
from osmgap.sources.imagery import analysis_grid, open_imagery
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


def test_nothing_to_compare(helsinki):
    crs = extent_aoi(helsinki).metric_crs
    grid = grid_over(tuple(helsinki.ways.to_crs(crs).total_bounds), crs, 1.0)
    found = estimate(lambda window: np.zeros((window.height, window.width), np.float32), helsinki.ways, grid, 25.0)
    assert not found.applied and "too little road" in found.reason
