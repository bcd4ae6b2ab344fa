"""Helpers for conflation tests on real OSM extracts: edit the OSM input, feed ways as candidates."""
from __future__ import annotations

from collections import Counter

import geopandas as gpd
import numpy as np
from shapely.geometry import box

from osmgap.conflate.conflate import Conflation, Evidence, conflate
from osmgap.conflate.gapscore import AOI_MARGIN_DEG
from osmgap.conflate.params import ConflateParams
from osmgap.core.aoi import Aoi
from osmgap.core.datamodel import WGS84, RoadNetwork
from osmgap.core.osmtags import LEVEL_KEYS
from osmgap.graph.lines import candidate_graph

STACKING_KEYS = ("bridge", "tunnel", "layer", "covered")  # tags that let ways cross without a node


def extent_aoi(roads: RoadNetwork) -> Aoi:
    return Aoi(box(*roads.ways.total_bounds).buffer(AOI_MARGIN_DEG, join_style="mitre"), "extent", "test")


def without(roads: RoadNetwork, osm_ids: list[int]) -> RoadNetwork:
    """The OSM input with these ways deleted (a controlled edit of real data)."""
    keep = ~roads.ways["osm_id"].isin(osm_ids)
    return RoadNetwork(roads.ways[keep].reset_index(drop=True), roads.nodes, roads.provenance)


def as_candidates(ways: gpd.GeoDataFrame, classed: bool = True, confidence: float = 0.75,
                  levelled: bool = False) -> gpd.GeoDataFrame:
    """OSM ways as a candidate source would give them: lines, a confidence, maybe a class, and
    when ``levelled`` their tunnel/bridge/layer tags (osmgap.sources.candidates)."""
    highway = ways["highway"].to_numpy() if classed else np.full(len(ways), "road", dtype=object)
    levels = {k: [t.get(k) for t in ways["tags"]] for k in LEVEL_KEYS} if levelled else {}
    return gpd.GeoDataFrame({"confidence": np.full(len(ways), confidence), "highway": highway, **levels},
                            geometry=ways.geometry.values, crs=WGS84)


def run(candidates: gpd.GeoDataFrame, osm: RoadNetwork, extent: RoadNetwork,
        params: ConflateParams = ConflateParams()) -> Conflation:
    """Conflate candidate lines against ``osm`` over the extent of ``extent``."""
    aoi = extent_aoi(extent)
    graph = candidate_graph(candidates, aoi.metric_crs)
    return conflate(Evidence(graph), osm, aoi.to_metric(aoi.geometry), params)


def node_uses(roads: RoadNetwork) -> tuple[Counter, Counter]:
    """How many way positions use each node, and how many way ends it is."""
    uses = Counter(n for ids in roads.ways["node_ids"] for n in ids)
    ends = Counter(n for ids in roads.ways["node_ids"] for n in (ids[0], ids[-1]))
    return uses, ends


def on_level(tags: dict) -> bool:
    return any(k in tags for k in STACKING_KEYS)
