"""unsupported_osm_way: OSM ways the evidence does not show (real Kotka roads; the Paris sample's
real roads rasterized as a stand-in probability raster)."""
from __future__ import annotations

import numpy as np

from osmgap.conflate.conflate import Evidence, conflate
from osmgap.conflate.params import ConflateParams
from osmgap.core.aoi import reproject
from osmgap.core.datamodel import WGS84, ProbabilityRaster, RoadNetwork
from osmgap.graph.rasterize import rasterize_roads
from osmgap.graph.skeleton import extract_graph
from osmgap.sources.imagery import analysis_grid, open_imagery
from osmgap.sources.osm import load_osm
from tests.roads import as_candidates, run

UNSEEN = 62061739  # a real residential way of the Kotka extract


def test_off_by_default_and_low_priority_when_asked(kotka):
    evidence = as_candidates(kotka.ways[kotka.ways["osm_id"] != UNSEEN])
    assert not [s for s in run(evidence, kotka, kotka).suggestions if s.kind == "unsupported_osm_way"]
    asked = run(evidence, kotka, kotka, ConflateParams(unsupported=True)).suggestions
    found = [s for s in asked if s.kind == "unsupported_osm_way"]
    assert [s.attachments for s in found] == [[UNSEEN]]
    assert found[0].priority == 2 and found[0].length_m > 100


def test_with_imagery_only_where_the_model_is_sure_there_is_no_road(paris, paris_aoi):
    """The probability raster shows all roads but the longest: that one is unsupported, and a
    raster that is unsure everywhere (0.5) supports nothing and condemns nothing."""
    roads = load_osm(str(paris / "osm_roads.geojson"), paris_aoi)
    grid = analysis_grid(open_imagery(paris / "image.tif"), paris_aoi.geometry, paris_aoi.metric_crs, 1.0)
    area = reproject(paris_aoi.geometry, WGS84, grid.crs)
    longest = int(np.argmax(roads.ways.to_crs(grid.crs).length.to_numpy()))
    shown = roads.ways.drop(roads.ways.index[longest])
    mask = rasterize_roads(shown, grid).astype(np.float32)
    prob = ProbabilityRaster(mask, grid.transform, grid.crs)
    params = ConflateParams(unsupported=True)
    result = conflate(Evidence(extract_graph(prob), prob), RoadNetwork(roads.ways), area, params)
    unsupported = [s for s in result.suggestions if s.kind == "unsupported_osm_way"]
    assert [s.attachments for s in unsupported] == [[int(roads.ways["osm_id"].iloc[longest])]]
    unsure = ProbabilityRaster(np.full_like(mask, 0.5), grid.transform, grid.crs)
    result = conflate(Evidence(extract_graph(prob), unsure), RoadNetwork(roads.ways), area, params)
    assert not [s for s in result.suggestions if s.kind == "unsupported_osm_way"]
