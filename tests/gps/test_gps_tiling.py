"""Matching within a memory budget (osmgap.gps.tiling) on the real Chicago graph and trips: where the
route table of the whole area would not fit, tiles and a shorter route limit give the matches and
the evidence that one table gives."""
from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import pytest
import shapely

from osmgap.conflate.osmindex import index_osm
from osmgap.core.traces import GpsTraces, from_arrays, resample
from osmgap.gps.evidence import unexplained
from osmgap.gps.matching import Matcher, Matches, MatchParams, PieceUsage, route_limit, trip_pieces
from osmgap.gps.network import RoadGraph, road_graph
from osmgap.gps.tiling import match_all, plan_matching
from tests.gps.test_gps_matching import CRS, _network


@pytest.fixture(scope="module")
def graph(chicago_ways):
    return road_graph(index_osm(_network(chicago_ways), CRS))


def test_the_plan_keeps_one_table_while_it_fits_then_tiles_then_shortens_the_limit(graph):
    """The whole graph's 3 km table is estimated at ~740 MB (fastmm's, measured: 7.2 million routes,
    +531 MB; the estimate counts nodes in a straight line, an upper bound): under a 1 GB budget one
    table; under 100 MB the limit goes down, to half at most, and the area is cut in tiles."""
    whole = plan_matching(graph, 3000.0)
    assert whole.tile_m is None and whole.limit_m == 3000.0 and 530.0 <= whole.table_mb <= 1000.0
    short = plan_matching(graph, 600.0, replace(MatchParams(), table_budget_mb=30.0))
    assert short.limit_m == 600.0 and short.tile_m is not None and short.table_mb <= 50.0
    tight = plan_matching(graph, 3000.0, replace(MatchParams(), table_budget_mb=100.0))
    assert tight.limit_m == 1500.0 and tight.tile_m is not None


def test_tiled_matching_agrees_with_one_table(graph, chicago_traces, caplog):
    """Every 10th real trip (dense) in 1.2 km tiles (a 30 MB budget): the same piece for >= 99 % of
    the fixes, the same off-map fixes and detours within a few, the routes' metres per piece
    within 1 %; and the run says it tiled."""
    trips = chicago_traces.take(chicago_traces.trip % 10 == 0)
    pieces = trip_pieces(trips)
    limit = route_limit(trips, pieces)
    one_log, tiled_log = PieceUsage(), PieceUsage()
    one = Matcher(graph, limit).match(trips, pieces, one_log)
    with caplog.at_level(logging.WARNING, logger="osmgap.gps.tiling"):
        tiled = match_all(graph, limit, trips, pieces, replace(MatchParams(), table_budget_mb=30.0), tiled_log)
    assert "tiles" in caplog.text
    same = (tiled.edge // 2 == one.edge // 2) | (~tiled.matched & ~one.matched)
    assert same.mean() >= 0.99
    before, after = unexplained(trips, one), unexplained(trips, tiled)
    assert abs(int(after.off.sum()) - int(before.off.sum())) <= 0.01 * before.off.sum() + 2
    assert abs(len(after.detour_a) - len(before.detour_a)) <= 2
    assert tiled.routed.sum() == pytest.approx(one.routed.sum(), rel=0.001)
    assert tiled_log.metres()[2].sum() == pytest.approx(one_log.metres()[2].sum(), rel=0.01)
    assert len(tiled_log.fixes()[0]) == pytest.approx(len(one_log.fixes()[0]), rel=0.01)
    assert one.table_s > 0 and tiled.table_s > 0  # the tiles' route tables are counted (bench/gps.py prints them)


def test_sparse_trips_with_half_the_limit_match_alike(graph, chicago_traces, caplog):
    """Every real trip, a fix every 90 s: the 3 km table (~740 MB) over a 100 MB budget gives way to
    1.5 km, the shortest the plan allows (two typical steps), and the matches stay the same. Every
    30 s, the limit alone goes down (one table fits at ~760 m), and the run says so too."""
    sparse = resample(chicago_traces, 90.0)
    pieces = trip_pieces(sparse)
    limit = route_limit(sparse, pieces)
    assert limit == 3000.0
    one = Matcher(graph, limit).match(sparse, pieces)
    shorter = match_all(graph, limit, sparse, pieces, replace(MatchParams(), table_budget_mb=100.0))
    assert shorter.limit_m == 1500.0
    every_30s = resample(chicago_traces, 30.0)
    with caplog.at_level(logging.WARNING, logger="osmgap.gps.tiling"):
        fewer = match_all(graph, 1500.0, every_30s, None, replace(MatchParams(), table_budget_mb=100.0))
    assert 750.0 <= fewer.limit_m < 1500.0 and f"routes up to {fewer.limit_m:.0f} m (asked: 1500 m)" in caplog.text
    assert ((shorter.edge // 2 == one.edge // 2) | (~shorter.matched & ~one.matched)).mean() >= 0.99
    assert abs(len(unexplained(sparse, shorter).detour_a) - len(unexplained(sparse, one).detour_a)) <= 2


def _side_by_side(graph: RoadGraph, traces: GpsTraces, k: int, gap_m: float = 1000.0) -> tuple[RoadGraph, GpsTraces]:
    """The graph and its traces laid side by side k x k times, ``gap_m`` apart (SYNTHETIC copies of
    real data: an area several tiles wide, for how matching is planned, no claim about roads)."""
    x0, y0, x1, y1 = shapely.total_bounds(np.r_[graph.lines, shapely.multipoints(np.c_[traces.x, traces.y])])
    nodes, trips = int(max(graph.u.max(), graph.v.max())) + 1, int(traces.trip.max()) + 1
    at = [((x1 - x0 + gap_m) * i, (y1 - y0 + gap_m) * j) for i in range(k) for j in range(k)]
    lines = np.concatenate([shapely.transform(graph.lines, lambda xy, dx=dx, dy=dy: xy + [dx, dy]) for dx, dy in at])
    copies = RoadGraph(lines, np.concatenate([graph.u + c * nodes for c in range(k * k)]),
                       np.concatenate([graph.v + c * nodes for c in range(k * k)]), np.tile(graph.direction, k * k),
                       np.tile(graph.source, k * k))
    fixes = from_arrays(np.concatenate([traces.x + dx for dx, _ in at]), np.concatenate([traces.y + dy for _, dy in at]),
                        traces.crs, t=np.tile(traces.t, k * k),
                        trip=np.concatenate([traces.trip + c * trips for c in range(k * k)]))
    return copies, fixes


def test_tiles_are_sized_by_where_the_runs_reach_not_by_how_far_they_could(graph, chicago_traces):
    """Three by three copies of the graph with its trips every 30 s: bounded by how far a run could
    reach beyond its tile (a tile's side), no tile's table fit 1 GB at the route limit asked, and the
    limit went down by a fifth; sized by the runs' own fixes, tiles fit at the whole limit, each table
    within the budget (the same estimate, over the network each tile is matched on)."""
    copies, fixes = _side_by_side(graph, resample(chicago_traces, 30.0), 3)
    pieces = trip_pieces(fixes)
    limit = route_limit(fixes, pieces)
    bound = plan_matching(copies, limit)
    assert bound.limit_m < 0.85 * limit
    runs = plan_matching(copies, limit, MatchParams(), fixes, pieces)
    assert runs.limit_m == limit and runs.tile_m is not None and runs.table_mb <= MatchParams().table_budget_mb
    whole = plan_matching(copies, limit, replace(MatchParams(), table_budget_mb=np.inf))
    assert whole.table_mb > MatchParams().table_budget_mb  # tiles were needed


def test_no_route_within_a_short_limit_is_no_detour():
    """Mechanics only (no claim about roads): two matched fixes 1 km apart with no route between
    them are a detour (the map forces a way round) when the route table reached 3 km, and say
    nothing when it reached 1.5 km (a fair route of 2 km would not have been found either)."""
    traces = from_arrays(np.array([0.0, 1000.0]), np.array([0.0, 0.0]), CRS, trip=np.zeros(2, np.int64))

    def matches(limit_m: float) -> Matches:
        return Matches(np.ones(2, bool), np.array([0.0, 1000.0]), np.zeros(2), np.zeros(2), np.full(2, np.nan),
                       np.zeros(2, bool), np.zeros(2, np.int64), np.array([0, 2]), limit_m)

    assert len(unexplained(traces, matches(3000.0)).detour_a) == 1
    assert len(unexplained(traces, matches(1500.0)).detour_a) == 0
