"""GPS support of suggestions on real data: Chicago OSM ways (the real graph) posing as
suggestions, judged by the real shuttle traces against the other mapped ways around them."""
from __future__ import annotations

import numpy as np
import pytest
import shapely
from scipy.spatial import cKDTree

from osmgap.core.aoi import reproject
from osmgap.core.datamodel import WGS84, Suggestion
from osmgap.gps.support import SupportParams, TrafficIndex, apply_gps_support

CRS = "EPSG:32616"
CAMPUS = shapely.box(444700.0, 4635000.0, 445700.0, 4636100.0)


@pytest.fixture(scope="module")
def traffic(chicago_traces, chicago_ways):
    """Per way: (points per 100 m, trips) along the ways of the campus box at least 80 m long."""
    ways = chicago_ways[chicago_ways.within(CAMPUS) & (chicago_ways.length >= 80)].reset_index(drop=True)
    index = TrafficIndex(chicago_traces)
    t = [index.along(g) for g in ways.geometry]
    return ways.assign(per_100m=[x.per_100m for x in t], trips=[x.trips for x in t])


def _suggestion(line, kind="missing_road", confidence=0.6) -> Suggestion:
    wgs = reproject(line, CRS, WGS84)
    return Suggestion(id=f"t{hash(line.wkb) & 0xffff}", kind=kind, geometry=wgs, length_m=line.length, confidence=confidence)


def test_driven_lines_are_confirmed_and_idle_ones_demoted(traffic, chicago_traces, chicago_ways):
    busy = traffic.sort_values("per_100m").iloc[-1]
    idle = traffic[traffic.per_100m == 0].iloc[0]
    gap, _ = cKDTree(np.column_stack([chicago_traces.x, chicago_traces.y])).query(
        shapely.get_coordinates(chicago_ways.centroid.values))
    lonely = chicago_ways[(gap > 1000) & (chicago_ways.length >= 80)].iloc[0]  # no trip within 1 km
    gone = {busy.osm_id, idle.osm_id, lonely.osm_id}
    osm = np.asarray(chicago_ways[~chicago_ways.osm_id.isin(gone)].geometry.values, dtype=object)
    sugs = [_suggestion(busy.geometry), _suggestion(idle.geometry), _suggestion(lonely.geometry)]
    counts = apply_gps_support(sugs, chicago_traces, osm, CRS)
    assert counts == {"confirmed": 1, "demoted": 1, "unchanged": 0, "no_coverage": 1}
    b, i, lone = (s.evidence for s in sugs)
    assert b["gps_verdict"] == "confirmed" and b["gps_trips"] >= 2 and b["gps_support"] >= SupportParams().confirm_ratio
    assert sugs[0].confidence == pytest.approx(0.8) and b["confidence_before_gps"] == 0.6
    assert i["gps_verdict"] == "demoted" and i["gps_trips"] == 0 and sugs[1].confidence == pytest.approx(0.3)
    assert i["gps_reference_per_100m"] >= SupportParams().min_reference_per_100m  # its area IS driven
    assert lone["gps_verdict"] == "no_coverage" and lone["gps_support"] is None and sugs[2].confidence == 0.6


def test_unsupported_osm_way_is_judged_the_other_way_round(traffic, chicago_traces, chicago_ways):
    busy = traffic.sort_values("per_100m").iloc[-1]
    idle = traffic[traffic.per_100m == 0].iloc[0]
    osm = np.asarray(chicago_ways.geometry.values, dtype=object)  # the ways are mapped: they are OSM's own
    sugs = [_suggestion(busy.geometry, "unsupported_osm_way"), _suggestion(idle.geometry, "unsupported_osm_way")]
    apply_gps_support(sugs, chicago_traces, osm, CRS)
    assert [s.evidence["gps_verdict"] for s in sugs] == ["demoted", "confirmed"]


def test_corridor_counts_match_a_brute_force_count(traffic, chicago_traces):
    way = traffic.sort_values("per_100m").iloc[len(traffic) // 2].geometry
    got = TrafficIndex(chicago_traces).along(way)
    d = shapely.distance(way, shapely.points(chicago_traces.x, chicago_traces.y))
    inside = d <= SupportParams().corridor_m
    # sampling the line every 5 m leaves slivers of the exact buffer uncovered: a few points at most
    assert 0.97 * inside.sum() <= got.points <= inside.sum()
    assert 0.95 * len(np.unique(chicago_traces.trip[inside])) <= got.trips <= len(np.unique(chicago_traces.trip[inside]))
