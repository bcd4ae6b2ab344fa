"""Chains (osmgap.gps.chains): the matcher's network with pass-through nodes taken out, and every
result mapped back to the pieces: on real OSM (central Helsinki, whose ways are split wherever a
tag changes), real trips on the Chicago graph with a fifth of its ways taken off (a missing road
leaves its junctions passing through), and a few drawn cases."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import shapely
from shapely.geometry import LineString

from osmgap.conflate.osmindex import index_osm
from osmgap.core.datamodel import WGS84, RoadNetwork
from osmgap.gps.chains import chains
from osmgap.gps.matching import Matcher, MatchParams, PieceUsage, route_limit, trip_pieces
from osmgap.gps.network import RoadGraph, road_graph

CRS = "EPSG:32616"


@pytest.fixture(scope="module")
def helsinki_graph(helsinki) -> RoadGraph:
    return road_graph(index_osm(helsinki, "EPSG:32635"))


@pytest.fixture(scope="module")
def chicago_graph(chicago_ways) -> RoadGraph:
    """The Chicago graph without every fifth way: the map of a place with roads missing."""
    frame = chicago_ways.iloc[np.arange(len(chicago_ways)) % 5 != 0].to_crs(WGS84)
    frame["version"] = None
    frame["node_ids"] = None
    frame["tags"] = [{} for _ in range(len(frame))]
    return road_graph(index_osm(RoadNetwork(frame.reset_index(drop=True)), CRS))


def _drawn(lines: list[list[tuple[float, float]]], u: list[int], v: list[int], direction: list[int]) -> RoadGraph:
    return RoadGraph(np.asarray([LineString(c) for c in lines], dtype=object), np.asarray(u), np.asarray(v),
                     np.asarray(direction), np.arange(len(lines)))


def test_chains_join_pieces_only_at_nodes_that_pass_through(helsinki_graph):
    graph = helsinki_graph
    degree = Counter(graph.u.tolist()) + Counter(graph.v.tolist())
    ch = chains(graph)
    assert sorted(ch.piece.tolist()) == list(range(len(graph)))  # every piece in exactly one chain
    nodes = set(ch.u.tolist()) | set(ch.v.tolist())
    assert len(nodes) <= 0.6 * len(degree)  # the route table's rows shrink with the square of this
    assert all(degree[n] == 2 for n in set(degree) - nodes)  # only pass-through nodes disappear
    lengths = shapely.length(graph.lines)
    xy = graph.node_xy()
    for c in range(len(ch)):
        run = ch.piece[ch.first[c]:ch.first[c + 1]]
        assert ch.length[c] == pytest.approx(lengths[run].sum())
        assert LineString(ch.coords[c]).length == pytest.approx(ch.length[c])
        assert np.allclose(ch.coords[c][0], xy[int(ch.u[c])]) and np.allclose(ch.coords[c][-1], xy[int(ch.v[c])])


def test_a_position_on_a_chain_maps_back_to_its_piece_and_direction(helsinki_graph):
    ch = chains(helsinki_graph)
    long = [c for c in range(len(ch)) if ch.first[c + 1] - ch.first[c] >= 2]
    assert len(long) >= 50
    edges, offsets, want = [], [], []
    for c in long:
        for i in range(ch.first[c], ch.first[c + 1]):
            k = int(ch.piece[i])
            mid = ch.start[i] + helsinki_graph.lines[k].length / 2
            edges += [2 * c, 2 * c + 1]
            offsets += [mid, ch.length[c] - mid]  # the same spot, driven either way
            want += [2 * k + int(not ch.forward[i]), 2 * k + int(bool(ch.forward[i]))]
    assert np.array_equal(ch.piece_edges(np.asarray(edges), np.asarray(offsets)), want)
    # the spot is where the piece's own geometry puts it
    c = long[0]
    i = int(ch.first[c]) + 1
    spot = shapely.line_interpolate_point(LineString(ch.coords[c]), ch.start[i] + 1.0)
    assert shapely.distance(spot, helsinki_graph.lines[int(ch.piece[i])]) < 1e-6


def test_drawn_chains_keep_junctions_changes_of_direction_and_one_node_of_a_ring():
    # a two-way street cut in three at pass-through nodes 1 and 2, then a oneway piece from node 3,
    # a junction at 4 (three pieces meet), and a ring of two pieces between nodes 5 and 6
    g = _drawn([[(0, 0), (100, 0)], [(100, 0), (200, 0)], [(200, 0), (300, 0)], [(300, 0), (400, 0)],
                [(400, 0), (500, 0)], [(400, 0), (400, 100)], [(400, 0), (400, -100)],
                [(0, 500), (100, 500), (100, 600)], [(100, 600), (0, 600), (0, 500)]],
               u=[0, 1, 2, 3, 4, 4, 4, 5, 6], v=[1, 2, 3, 4, 10, 11, 12, 6, 5], direction=[0, 0, 0, 1, 0, 0, 0, 0, 0])
    ch = chains(g)
    runs = sorted(ch.piece[ch.first[c]:ch.first[c + 1]].tolist() for c in range(len(ch)))
    assert [0, 1, 2] in runs  # joined at 1 and 2
    assert [3] in runs  # a oneway piece is not joined to a two-way one: a route may turn back at 3
    assert [4] in runs and [5] in runs and [6] in runs  # nothing crosses the junction at 4
    ring = next(c for c in range(len(ch)) if 7 in ch.piece[ch.first[c]:ch.first[c + 1]])
    assert ch.u[ring] == ch.v[ring] and ch.length[ring] == pytest.approx(g.lines[7].length + g.lines[8].length)
    # a stretch over the joined street, driven backwards from 250 m to 50 m along the chain
    c = next(c for c in range(len(ch)) if ch.piece[ch.first[c]] in (0, 2) and ch.first[c + 1] - ch.first[c] == 3)
    back = 2 * c + 1
    covered = dict(ch.piece_metres(back, ch.length[c] - 250.0, ch.length[c] - 50.0))
    assert covered == pytest.approx({0: 50.0, 1: 100.0, 2: 50.0})


def test_matching_through_chains_puts_each_fix_on_its_piece_heading_its_way(chicago_graph, chicago_traces):
    """Every matched position lies on the piece it is reported on, moving trips head the way of
    the reported direction, and the routes' metres per piece are those matching on the pieces
    gives: the mapping back from chains to pieces is right."""
    trips = chicago_traces.take(np.flatnonzero(np.isin(chicago_traces.trip, np.unique(chicago_traces.trip)[::10])))
    pieces = trip_pieces(trips)
    limit = route_limit(trips, pieces)
    assert Matcher(chicago_graph, limit).chains is None  # dense traces: a short table, pieces as they are
    assert Matcher(chicago_graph, 1500.0).chains is not None  # sparse ones: chains
    usage = PieceUsage()
    matcher = Matcher(chicago_graph, limit, MatchParams(chain_above_m=0.0))
    assert matcher.chains is not None and len(matcher.chains) <= 0.85 * len(chicago_graph)
    m = matcher.match(trips, pieces, usage)
    on = np.flatnonzero(m.matched & (m.edge >= 0))
    assert len(on) >= 0.9 * len(trips)
    k = m.edge[on] // 2
    points = shapely.points(m.mx[on], m.my[on])
    assert np.max(shapely.distance(points, chicago_graph.lines[k])) < 0.01
    inner = on[(on > 0) & (on < len(trips) - 1)]
    inner = inner[(trips.trip[inner - 1] == trips.trip[inner]) & (trips.trip[inner + 1] == trips.trip[inner])]
    hx, hy = trips.x[inner + 1] - trips.x[inner - 1], trips.y[inner + 1] - trips.y[inner - 1]
    moving = np.hypot(hx, hy) > 10
    line = chicago_graph.lines[m.edge[inner] // 2]
    at = shapely.line_locate_point(line, shapely.points(m.mx[inner], m.my[inner]))
    ahead = shapely.line_interpolate_point(line, at + 2.0)
    behind = shapely.line_interpolate_point(line, np.maximum(at - 2.0, 0.0))
    tx, ty = shapely.get_x(ahead) - shapely.get_x(behind), shapely.get_y(ahead) - shapely.get_y(behind)
    way = np.where(m.edge[inner] % 2 == 0, 1, -1)
    agree = np.sign(hx * tx + hy * ty) == way
    assert agree[moving].mean() >= 0.9  # reversed edges would put this near 0.5
    # the metres per piece the routes cover, as matching on the pieces themselves gives them: the
    # same for trips matched onto the same edges; about the same for the rest (a route cannot
    # turn back in the middle of a chain, so some run a little longer)
    by_pieces = PieceUsage()
    m0 = Matcher(chicago_graph, limit, MatchParams(chain_above_m=np.inf)).match(trips, pieces, by_pieces)
    (trip, piece, metres), (trip0, piece0, metres0) = usage.metres(), by_pieces.metres()
    size = (trips.trip.max() + 1, len(chicago_graph))
    chained, plain = np.zeros(size), np.zeros(size)
    np.add.at(chained, (trip, piece), metres)
    np.add.at(plain, (trip0, piece0), metres0)
    alike = [t for t in np.unique(trips.trip) if np.array_equal(m.edge[trips.trip == t], m0.edge[trips.trip == t])]
    assert len(alike) >= 3 and plain[alike].sum() > 5000
    assert np.allclose(chained[alike], plain[alike])
    busy = plain.sum(axis=1) > 1000
    assert busy.sum() >= 20 and np.median(chained[busy].sum(axis=1) / plain[busy].sum(axis=1)) == pytest.approx(1.0, abs=0.06)
    fix_trip, fix_piece, fix = usage.fixes()
    assert np.max(shapely.distance(points[np.searchsorted(on, fix[np.isin(fix, on)])],
                                   chicago_graph.lines[fix_piece[np.isin(fix, on)]])) < 0.01
