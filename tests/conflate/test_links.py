"""missing_link on real OSM (Helsinki): short connector ways are deleted from the OSM input, which
leaves real dead ends a few metres from the ways they used to join; the evidence decides."""
from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.ops import substring

from osmgap.conflate.links import find_links
from osmgap.conflate.osmindex import index_osm
from osmgap.conflate.params import ConflateParams
from osmgap.core.aoi import reproject
from osmgap.core.datamodel import WGS84, RoadNetwork
from osmgap.core.segments import explode
from osmgap.sources.candidates import candidate_levels
from tests.roads import as_candidates, extent_aoi, node_uses, on_level, run, without


@pytest.fixture(scope="module")
def connectors(helsinki):
    """Straight real ways of 5-12 m whose deletion turns one end into a dead end (its node is
    the end of exactly this way and one other), not retraced by some other way, and well apart
    from each other."""
    uses, ends = node_uses(helsinki)
    crs = extent_aoi(helsinki).metric_crs
    metric = helsinki.ways.to_crs(crs)
    tree = shapely.STRtree(metric.geometry.values)
    picked, taken = [], []
    for osm_id, ids, tags, geom in zip(helsinki.ways["osm_id"], helsinki.ways["node_ids"], helsinki.ways["tags"], metric.geometry):
        if not 5 <= geom.length <= 12 or on_level(tags) or len(ids) != 2:
            continue
        if len(tree.query(geom.interpolate(0.5, normalized=True), predicate="dwithin", distance=3.0)) > 1:
            continue  # another way runs along it: it is not missing when deleted
        dead = [n for n in (ids[0], ids[-1]) if uses[n] == 2 and ends[n] == 2]
        other = [n for n in (ids[0], ids[-1]) if uses[n] >= 3]
        if len(dead) == 1 and len(other) == 1 and all(geom.distance(t) > 100 for t in taken):
            picked.append((int(osm_id), dead[0], other[0], geom))
            taken.append(geom)
    assert len(picked) >= 5
    return picked[:8]


def test_deleted_connectors_come_back_as_missing_links_on_real_nodes(helsinki, connectors):
    result = run(as_candidates(helsinki.ways), without(helsinki, [c[0] for c in connectors]), helsinki)
    crs = extent_aoi(helsinki).metric_crs
    links = [s for s in result.suggestions if s.kind == "missing_link"]
    for osm_id, dead, other, geom in connectors:
        mine = [s for s in links if any(j.node_id == dead for j in s.joins)]
        assert len(mine) == 1, f"way {osm_id}: no single link at dead end {dead}"
        (s,) = mine
        line = reproject(s.geometry, WGS84, crs)
        assert line.hausdorff_distance(geom) < 2.0
        assert {j.node_id for j in s.joins} == {dead, other}  # both ends on existing nodes
        assert s.routing_impact is not None and s.routing_impact >= 0


def test_a_dead_end_near_a_way_is_not_linked_without_evidence(helsinki, connectors):
    """The same dead ends, but the evidence no longer shows the connector: the dead-end way's
    own copy ends at the dead end and is no evidence of a link beyond it."""
    gone = [c[0] for c in connectors]
    evidence = helsinki.ways[~helsinki.ways["osm_id"].isin(gone)]
    result = run(as_candidates(evidence), without(helsinki, gone), helsinki)
    dead_ends = {c[1] for c in connectors}
    assert not [s for s in result.suggestions if any(j.node_id in dead_ends for j in s.joins)]


def test_links_are_few_where_nothing_is_missing(helsinki):
    """Evidence identical to OSM: no dead end of the real data is 'confirmed' by a copy of
    itself or of a neighbour, whatever JOSM's almost-junction check would flag."""
    result = run(as_candidates(helsinki.ways), helsinki, helsinki)
    assert [s for s in result.suggestions if s.kind in ("missing_link", "missing_road")] == []
    assert np.isfinite(result.offset.magnitude_m) and result.offset.magnitude_m < 0.2
    crossings = [s for s in result.suggestions if s.kind == "misconnection"]
    assert crossings == []  # copies of unconnected crossings show no junction either


# A real service tunnel (tunnel=yes, layer=-3) under Fabianinkatu, which crosses over it (way 189654327).
TUNNEL, STREET_OVER = 27193233, 189654327


def test_a_levelled_source_links_a_tunnel_to_itself_not_to_the_street_over_it(helsinki):
    """The tunnel is cut where the street crosses over it (12 m taken out), leaving two tunnel
    dead ends under the street's junctions. Read without levels, the evidence links them to the
    street above; a levelled source (tunnel/layer properties) joins no ways on different levels
    and links the two tunnel halves under the street, the link tagged as the tunnel is."""
    aoi = extent_aoi(helsinki)
    crs = aoi.metric_crs
    metric = helsinki.ways.to_crs(crs)
    geom = dict(zip(metric["osm_id"], metric.geometry))
    tunnel = geom[TUNNEL]
    at = tunnel.project(tunnel.intersection(geom[STREET_OVER]))
    row = helsinki.ways[helsinki.ways["osm_id"] == TUNNEL].iloc[0]
    halves = gpd.GeoDataFrame([{**row.to_dict(), "osm_id": TUNNEL * 10 + i, "node_ids": None, "version": None,
                                "geometry": reproject(g, crs, WGS84)}
                               for i, g in enumerate((substring(tunnel, 0, at - 6), substring(tunnel, at + 6, tunnel.length)))],
                              geometry="geometry", crs=WGS84)
    edited = RoadNetwork(pd.concat([helsinki.ways[helsinki.ways["osm_id"] != TUNNEL], halves], ignore_index=True),
                         helsinki.nodes)
    osm = index_osm(edited, crs)
    lines = np.asarray(metric.geometry.values, dtype=object)
    segs = explode(lines)
    levelled = candidate_levels(as_candidates(helsinki.ways, levelled=True))

    def links_at_the_cut(level):
        found = find_links(osm, segs, np.full(len(lines), 0.75), np.zeros(len(segs), bool), aoi.to_metric(aoi.geometry),
                           ConflateParams(), set(), level)
        out = []
        for k in found:
            ways = {int(osm.osm_id[osm.segs.line[j.segment]]) for j in k.joins}
            if ways & {TUNNEL * 10, TUNNEL * 10 + 1}:
                out.append((ways, k.level_tags))
        return out

    unlevelled = links_at_the_cut(None)
    assert any(ways - {TUNNEL * 10, TUNNEL * 10 + 1} for ways, _ in unlevelled)  # onto the street above
    assert links_at_the_cut(levelled) == [({TUNNEL * 10, TUNNEL * 10 + 1}, {"tunnel": "yes", "layer": "-3"})]


def test_gap_points_are_spaced_as_by_linspace():
    """A link's evidence is sampled along it at np.linspace's fractions, built for all links in one
    pass: the same numbers, bit for bit, so every link is judged as before."""
    from osmgap.conflate.links import INTERIOR, _spaced

    counts = np.random.default_rng(0).integers(3, 400, size=5000)
    owner = np.repeat(np.arange(len(counts)), counts)
    expected = np.concatenate([np.linspace(*INTERIOR, k) for k in counts])
    np.testing.assert_array_equal(_spaced(*INTERIOR, counts, owner), expected)


def test_dead_ends_judged_in_batches_on_threads_give_the_links_of_one_batch(helsinki, connectors, monkeypatch):
    """A city's dead ends are judged in batches side by side on threads: the same links, in the
    same order, as all of them in one batch on one thread (real Helsinki ways, connectors deleted)."""
    import osmgap.conflate.links as links

    osm = without(helsinki, [c[0] for c in connectors])

    def found(batch: int, cores: int) -> list[tuple]:
        monkeypatch.setattr(links, "ENDS_PER_BATCH", batch)
        monkeypatch.setattr(links, "usable_cores", lambda: cores)
        result = run(as_candidates(helsinki.ways), osm, helsinki)
        return [(s.id, s.geometry.wkt, s.confidence, [(j.way_id, j.node_id) for j in s.joins])
                for s in result.suggestions if s.kind == "missing_link"]

    alone = found(1_000_000, 1)
    assert len(alone) >= len(connectors)  # every deleted connector comes back (the test above)
    assert found(40, 4) == alone
