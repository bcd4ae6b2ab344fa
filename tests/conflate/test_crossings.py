"""misconnection on real OSM (Kotka): a real four-way junction, where both ways pass through one
node, is edited so that one way no longer has that node: the ways now cross without a junction."""
from __future__ import annotations

import pytest
import shapely
from shapely.geometry import LineString

from osmgap.core.aoi import reproject
from osmgap.core.datamodel import WGS84, RoadNetwork
from tests.roads import STACKING_KEYS, as_candidates, extent_aoi, node_uses, on_level, run


@pytest.fixture(scope="module")
def junction(kotka):
    """(way A, way B, node): a node inside both ways (not an end of either), used by them only,
    the ways' only common node, and without it way B still crosses way A."""
    uses, _ = node_uses(kotka)
    inner: dict[int, list[int]] = {}
    for row, ids in enumerate(kotka.ways["node_ids"]):
        for n in ids[1:-1]:
            inner.setdefault(n, []).append(row)
    for node, rows in sorted(inner.items()):
        if len(rows) != 2 or uses[node] != 2 or any(on_level(kotka.ways["tags"].iloc[r]) for r in rows):
            continue
        a, b = rows
        if len(set(kotka.ways["node_ids"].iloc[a]) & set(kotka.ways["node_ids"].iloc[b])) != 1:
            continue
        edited = _unjoined(kotka, b, node).ways
        if shapely.crosses(edited.geometry.iloc[a], edited.geometry.iloc[b]):
            return a, b, node
    raise AssertionError("no suitable four-way junction in the extract")


def _unjoined(roads: RoadNetwork, row: int, node: int, tags: dict | None = None) -> RoadNetwork:
    """Way ``row`` without ``node`` (its neighbours on both sides keep it crossing the other way)."""
    ways = roads.ways.copy()
    ids = list(ways.at[row, "node_ids"])
    k = ids.index(node)
    coords = list(ways.at[row, "geometry"].coords)
    ways.at[row, "node_ids"] = ids[:k] + ids[k + 1:]
    ways.at[row, "geometry"] = LineString(coords[:k] + coords[k + 1:])
    if tags is not None:
        ways.at[row, "tags"] = {**ways.at[row, "tags"], **tags}
    return RoadNetwork(ways, roads.nodes, roads.provenance)


@pytest.mark.parametrize("levelled", [False, True])
def test_crossing_without_a_node_where_the_evidence_has_a_junction(kotka, junction, levelled):
    """Also from a levelled source: the junction is at grade there."""
    a, b, node = junction
    edited = _unjoined(kotka, b, node)
    result = run(as_candidates(kotka.ways, levelled=levelled), edited, kotka)  # the evidence: the real junction
    found = [s for s in result.suggestions if s.kind == "misconnection"]
    assert len(found) == 1
    (s,) = found
    crs = extent_aoi(kotka).metric_crs
    at = reproject(shapely.Point(kotka.nodes[node][1:]), WGS84, crs)
    assert reproject(s.geometry, WGS84, crs).distance(at) < 10.0  # the edited way cuts the corner
    assert s.attachments == sorted(int(kotka.ways["osm_id"].iloc[r]) for r in (a, b))
    assert s.routing_impact is not None and s.routing_impact >= 0


def test_a_bridge_may_cross_without_a_node(kotka, junction):
    a, b, node = junction
    edited = _unjoined(kotka, b, node, tags={"bridge": "yes", "layer": "1"})
    result = run(as_candidates(kotka.ways), edited, kotka)
    assert [s for s in result.suggestions if s.kind == "misconnection"] == []


def test_no_junction_in_the_evidence_no_misconnection(kotka, junction):
    """Evidence that crosses there without a shared vertex (a vector source's bridge) is no
    junction: the candidate graph does not join bare crossings."""
    a, b, node = junction
    edited = _unjoined(kotka, b, node)
    result = run(as_candidates(edited.ways), edited, kotka)
    assert [s for s in result.suggestions if s.kind == "misconnection"] == []


def test_a_levelled_source_says_which_crossings_are_tunnels(helsinki):
    """Central Helsinki with the tunnel/bridge/layer tags taken off its OSM ways: its service
    tunnels now cross the streets over them without a node, untagged. Evidence without levels
    takes junctions next to those crossings for missed ones; a levelled source, which says
    those ways are tunnels, reports no misconnection at any of them."""
    ways = helsinki.ways.copy()
    ways["tags"] = [{k: v for k, v in t.items() if k not in STACKING_KEYS} for t in ways["tags"]]
    flat = RoadNetwork(ways, helsinki.nodes, helsinki.provenance)
    stacked = {int(i) for i, t in zip(helsinki.ways["osm_id"], helsinki.ways["tags"]) if on_level(t)}

    def at_stacked(levelled: bool) -> list:
        result = run(as_candidates(helsinki.ways, levelled=levelled), flat, helsinki)
        return [s for s in result.suggestions if s.kind == "misconnection" and set(s.attachments) & stacked]

    assert len(at_stacked(False)) >= 10
    assert at_stacked(True) == []
