"""Rasterized OSM roads on the real sample: per-class widths on a metric grid."""
import numpy as np

from osmgap.graph.rasterize import rasterize_roads, road_width_m
from osmgap.sources.imagery import analysis_grid, open_imagery
from osmgap.sources.osm import load_osm


def test_widths_by_class():
    assert road_width_m("motorway") > road_width_m("residential") > road_width_m("track")
    assert road_width_m("no_such_class") > 0


def test_rasterized_area_matches_length_times_width(paris, paris_aoi):
    roads = load_osm(str(paris / "osm_roads.geojson"), paris_aoi)
    grid = analysis_grid(open_imagery(paris / "image.tif"), paris_aoi.geometry, paris_aoi.metric_crs, 0.5)
    mask = rasterize_roads(roads.ways, grid)
    metric = roads.ways.to_crs(grid.crs)
    expected_m2 = sum(g.length * road_width_m(h) for g, h in zip(metric.geometry, metric["highway"]))
    got_m2 = mask.sum() * 0.25
    # overlaps at junctions make the raster a little smaller than the sum of the parts
    assert 0.75 * expected_m2 < got_m2 <= 1.02 * expected_m2
    wider = rasterize_roads(roads.ways, grid, width_scale=2.0)
    assert wider.sum() > 1.6 * mask.sum()
    assert set(np.unique(mask)) <= {0, 1}
