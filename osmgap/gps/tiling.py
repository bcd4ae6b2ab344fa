"""Map matching over any area within a memory budget: tiles and route limit sized from the route table.

fastmm's route table (UBODT) holds a row for every pair of network nodes within the route limit of
each other by road, ~75 bytes each in memory (the whole Chicago graph at 3 km: 7.2 million routes,
+531 MB). Its rows grow with the area's nodes times the nodes within reach of each: a 9 km2
campus at 3 km fits in half a gigabyte, a 100 km2 city would need tens of gigabytes. So before
matching, the table is estimated from the nodes' positions (per node, the nodes within the limit in
a straight line, which bounds what the road reaches; counted on a grid) and, where it exceeds
``MatchParams.table_budget_mb``:

1. the area is cut into square tiles, so a table grows with one tile's nodes, not the area's. A
   trip is matched a run of fixes at a time (consecutive fixes that fit in a square of the tile's
   side), each run with the next fix of the trip, so the step from one run into the next is routed
   too; the runs that start in a tile are matched together, on the network within the route limit
   (and the search radius) of their fixes. The tile side is the largest whose tables fit, each
   table estimated over the network its runs' fixes reach (a run may reach a tile's side beyond
   the tile, but few do: the bound alone made tiles of 3.7 km over ~950 MB tables, and shortened
   the limit by a third, where the runs' own reach gives tiles at the whole limit);
2. where even a small tile's table would not fit (a long limit in a dense network), the route limit
   is lowered until it does, down to half the limit asked for (two typical steps); the evidence
   reads no detour from a step too long for it to judge (osmgap.gps.evidence). Below that the
   match itself would fail, so the smallest tiles are used at that limit, over the budget.

Results are the same arrays as one ``Matcher`` gives, on the whole network's pieces.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numba
import numpy as np
import shapely
from scipy import signal

from osmgap.core.traces import GpsTraces
from osmgap.gps.matching import Matcher, Matches, MatchParams, PieceUsage, no_matches, trip_pieces
from osmgap.gps.network import RoadGraph

log = logging.getLogger(__name__)

BYTES_PER_ROUTE = 75.0  # fastmm's route table in memory (measured above)
CELLS_PER_LIMIT = 8  # the estimate's grid: cells of an eighth of the route limit
MIN_TILE_M = 1000.0  # smaller tiles rebuild a table for little ground each
# a tile at least this many typical steps across (route_limit: the limit asked is route_factor of
# them), so that each run of a trip matched in one piece holds enough fixes for the HMM to choose
# among candidates (Chicago every 90 s at 1.5 km: 6 km tiles give every fix the piece one table
# gives; 1.1 km tiles, runs of two steps, 94.6 %, with 5 % of the fixes left unmatched)
RUN_STEPS = 8
SHRINK = 0.8  # the route limit's step down where no tile fits
TILE_STEP = 0.8  # the tile side's step down, where the tables of the runs' own reach are estimated
# ... down to this share of the limit asked for (osmgap.gps.matching.route_limit: four typical
# steps): below two steps, most no-route steps are too long to judge as detours (osmgap.gps.evidence),
# and the match itself degrades (Chicago every 90 s in 6 km tiles: the same piece for 99.5 % of the
# fixes at a third of the limit, 81.8 % at a fifth, with 7 % left unmatched and read as off the map)
MIN_LIMIT_SHARE = 0.5


@dataclass(frozen=True)
class MatchPlan:
    """How to match: the route limit, the side of the square tiles (None: the whole network at
    once) and the estimated size of the largest route table (MB)."""

    limit_m: float
    tile_m: float | None
    table_mb: float


def plan_matching(graph: RoadGraph, limit_m: float, params: MatchParams = MatchParams(),
                  traces: GpsTraces | None = None, pieces: np.ndarray | None = None) -> MatchPlan:
    """The largest route limit up to ``limit_m`` and the largest tiles whose route tables fit the
    budget; with ``traces`` (and their trip ``pieces``), each tile's table over the network its own
    runs reach, else over all a run starting in it could reach."""
    xy = _table_nodes(graph, limit_m, params)
    budget = params.table_budget_mb * 1e6 / BYTES_PER_ROUTE
    # below two typical steps (route_limit asks for four) fixes are left unmatched and read as off the map
    floor = max(params.min_route_m, MIN_LIMIT_SHARE * limit_m)
    min_tile = max(MIN_TILE_M, RUN_STEPS * limit_m / params.route_factor)  # steps of the traces, whatever the limit
    if traces is not None and pieces is None:
        pieces = trip_pieces(traces, params)
    limit = limit_m
    while True:
        cell = limit / CELLS_PER_LIMIT
        routes = _routes_per_cell(xy, limit, cell)
        if routes.sum() <= budget:
            return MatchPlan(limit, None, _mb(routes.sum()))
        margin = int(np.ceil((limit + params.search_radius_m) / cell))
        runs = None if traces is None or pieces is None else (traces, pieces, xy.min(axis=0), limit + params.search_radius_m)
        smallest = max(1, int(np.ceil(min_tile / cell)))
        side = max(routes.shape)
        while side >= smallest:
            if (most := _largest_tile(routes, side, margin, cell, runs)) <= budget:
                return MatchPlan(limit, side * cell, _mb(most))
            side = side // 2 if runs is None else min(side - 1, int(side * TILE_STEP))
        if limit <= floor:  # a shorter limit would cost the match itself: the smallest tiles, over budget
            return MatchPlan(limit, smallest * cell, _mb(_largest_tile(routes, smallest, margin, cell, runs)))
        limit = max(floor, limit * SHRINK)


def match_all(graph: RoadGraph, limit_m: float, traces: GpsTraces, pieces: np.ndarray | None = None,
              params: MatchParams = MatchParams(), usage: PieceUsage | None = None,
              cache_dir: Path | None = None) -> Matches:
    """``Matcher(graph, limit_m).match(traces, pieces, usage)`` within the route table budget (see
    the module docstring); ``Matches.limit_m`` says the route limit used. ``cache_dir`` keeps the
    table of an untiled network only (tiles' tables are made for one run and thrown away)."""
    pieces = trip_pieces(traces, params) if pieces is None else pieces
    if not len(graph) or not len(traces):
        return replace(no_matches(len(traces), pieces), limit_m=limit_m)
    plan = plan_matching(graph, limit_m, params, traces, pieces)
    if plan.tile_m is None:
        if plan.limit_m < limit_m:
            log.warning("GPS matching with routes up to %.0f m (asked: %.0f m): the route table would exceed %.0f MB",
                        plan.limit_m, limit_m, params.table_budget_mb)
        return Matcher(graph, plan.limit_m, params, cache_dir).match(traces, pieces, usage)
    log.warning("GPS matching in %.1f km tiles with routes up to %.0f m (asked: %.0f m), route tables of ~%.0f MB "
                "each: the whole area's would exceed %.0f MB", plan.tile_m / 1000, plan.limit_m, limit_m,
                plan.table_mb, params.table_budget_mb)
    return _match_in_tiles(graph, plan, traces, pieces, params, usage)


def _match_in_tiles(graph: RoadGraph, plan: MatchPlan, traces: GpsTraces, pieces: np.ndarray, params: MatchParams,
                    usage: PieceUsage | None) -> Matches:
    assert plan.tile_m is not None
    n = len(traces)
    out = replace(no_matches(n, pieces), limit_m=plan.limit_m)
    run, ends, overlap, tile_of_run = _tiled_runs(traces, pieces, plan.tile_m)
    tree = shapely.STRtree(graph.lines)
    reach = plan.limit_m + params.search_radius_m
    tile = tile_of_run[run]
    by_tile = np.argsort(tile, kind="stable")  # each tile's fixes in order, found once for all tiles
    cuts = np.flatnonzero(np.r_[True, tile[by_tile][1:] != tile[by_tile][:-1], True])
    for a, b in zip(cuts[:-1].tolist(), cuts[1:].tolist()):
        own = by_tile[a:b]
        runs = np.unique(run[own])
        extra = ends[runs][overlap[runs]]
        idx = np.r_[own, extra]
        labels = np.r_[run[own], run[extra - 1]]  # an overlap fix is also the last of the run before it
        is_extra = np.r_[np.zeros(len(own), bool), np.ones(len(extra), bool)]
        order = np.lexsort((idx, labels))
        idx, labels, is_extra = idx[order], labels[order], is_extra[order]
        window = shapely.box(traces.x[idx].min() - reach, traces.y[idx].min() - reach,
                             traces.x[idx].max() + reach, traces.y[idx].max() + reach)
        ids = np.sort(tree.query(window))
        if not len(ids):
            continue
        sub = RoadGraph(graph.lines[ids], graph.u[ids], graph.v[ids], graph.direction[ids], graph.source[ids])
        logged = PieceUsage() if usage is not None else None
        found = Matcher(sub, plan.limit_m, params).match(traces.take(idx), labels, logged)
        mine = ~is_extra
        out.table_s += found.table_s
        _put(out, found, idx, mine, ids)
        # the route into a run's first fix is the run before's (its overlap fix); into the others, its own
        routes = is_extra | (mine & np.r_[False, labels[1:] == labels[:-1]])
        out.route_m[idx[routes]] = found.route_m[routes]
        out.routed[idx[routes]] = found.routed[routes]
        if usage is not None and logged is not None:
            usage.absorb(logged, ids, idx, is_extra)
    return out


def _tiled_runs(traces: GpsTraces, pieces: np.ndarray, tile_m: float) -> tuple[np.ndarray, ...]:
    """(run of each fix, one past each run's last fix, whether the run is matched with the next fix
    of its trip piece, the tile each run starts in) for tiles of ``tile_m`` from the fixes' corner."""
    n = len(traces)
    run = _runs(traces.x, traces.y, pieces, tile_m)
    starts = np.flatnonzero(np.r_[True, run[1:] != run[:-1]])
    ends = np.r_[starts[1:], n]
    # each run with the next fix of its trip piece, so the step into the next run is routed too
    overlap = (ends < n) & (pieces[np.minimum(ends, n - 1)] == pieces[starts])
    col = np.floor((traces.x[starts] - traces.x.min()) / tile_m).astype(np.int64)
    row = np.floor((traces.y[starts] - traces.y.min()) / tile_m).astype(np.int64)
    return run, ends, overlap, row * (int(col.max()) + 1) + col


def _largest_tile(routes: np.ndarray, side: int, margin: int, cell_m: float,
                  runs: tuple[GpsTraces, np.ndarray, np.ndarray, float] | None) -> float:
    """The most routes any tile of ``side`` cells is matched on: by where the ``runs`` (traces,
    their pieces, the routes grid's corner, the reach around a fix) reach, or by how far they could."""
    if runs is None:
        return _largest_window(routes, side, margin)
    traces, pieces, corner, reach_m = runs
    return _largest_run_window(routes, corner, cell_m, traces, pieces, side * cell_m, reach_m)


def _largest_run_window(routes: np.ndarray, corner: np.ndarray, cell_m: float, traces: GpsTraces,
                        pieces: np.ndarray, tile_m: float, reach_m: float) -> float:
    """The most routes in the network any tile of ``tile_m`` is matched on, as
    :func:`_match_in_tiles` will cut the runs: the box around the fixes of the runs that start in
    the tile (with each run's next fix), widened by ``reach_m``; ``corner``: the ``routes`` grid's."""
    _, ends, overlap, tile_of_run = _tiled_runs(traces, pieces, tile_m)
    starts = np.r_[0, ends[:-1]]
    nxt = np.where(overlap, ends, ends - 1)  # the next fix, or the run's own last one
    x0 = np.minimum(np.minimum.reduceat(traces.x, starts), traces.x[nxt])
    x1 = np.maximum(np.maximum.reduceat(traces.x, starts), traces.x[nxt])
    y0 = np.minimum(np.minimum.reduceat(traces.y, starts), traces.y[nxt])
    y1 = np.maximum(np.maximum.reduceat(traces.y, starts), traces.y[nxt])
    tiles, tile = np.unique(tile_of_run, return_inverse=True)
    box = np.full((4, len(tiles)), np.inf)
    box[2:] = -np.inf
    np.minimum.at(box[0], tile, x0)
    np.minimum.at(box[1], tile, y0)
    np.maximum.at(box[2], tile, x1)
    np.maximum.at(box[3], tile, y1)
    h, w = routes.shape
    c0 = np.clip(np.floor((box[0] - reach_m - corner[0]) / cell_m), 0, w).astype(np.int64)
    r0 = np.clip(np.floor((box[1] - reach_m - corner[1]) / cell_m), 0, h).astype(np.int64)
    c1 = np.clip(np.floor((box[2] + reach_m - corner[0]) / cell_m) + 1, 0, w).astype(np.int64)
    r1 = np.clip(np.floor((box[3] + reach_m - corner[1]) / cell_m) + 1, 0, h).astype(np.int64)
    total = np.pad(routes.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    return float((total[r1, c1] - total[r0, c1] - total[r1, c0] + total[r0, c0]).max())


@numba.njit(cache=True)
def _runs(x: np.ndarray, y: np.ndarray, piece: np.ndarray, side_m: float) -> np.ndarray:
    """Run id per fix: consecutive fixes of one trip piece that fit in a square of ``side_m``."""
    run = np.zeros(len(x), np.int64)
    k = 0
    x0 = x1 = y0 = y1 = 0.0
    for i in range(len(x)):
        if i > 0 and (piece[i] != piece[i - 1] or max(x1, x[i]) - min(x0, x[i]) > side_m
                      or max(y1, y[i]) - min(y0, y[i]) > side_m):
            k += 1
        if i == 0 or run[i - 1] != k:
            x0 = x1 = x[i]
            y0 = y1 = y[i]
        x0, x1, y0, y1 = min(x0, x[i]), max(x1, x[i]), min(y0, y[i]), max(y1, y[i])
        run[i] = k
    return run


def _put(out: Matches, found: Matches, idx: np.ndarray, mine: np.ndarray, ids: np.ndarray) -> None:
    """A tile's matched positions of its own fixes, its pieces mapped to the whole network's."""
    at = idx[mine]
    out.matched[at] = found.matched[mine]
    out.mx[at], out.my[at] = found.mx[mine], found.my[mine]
    out.offset_m[at] = found.offset_m[mine]
    edge = found.edge[mine]
    out.edge[at] = np.where(edge >= 0, 2 * ids[np.maximum(edge, 0) // 2] + edge % 2, -1)


def _table_nodes(graph: RoadGraph, limit_m: float, params: MatchParams) -> np.ndarray:
    """Positions of the nodes the route table is built on. Where the matcher chains pieces
    (osmgap.gps.chains), the nodes where other than two pieces meet: the chains' ends but for the
    few pass-through nodes kept for a change of direction (building the chains costs more than the
    whole estimate)."""
    ends = shapely.get_coordinates(np.r_[shapely.get_point(graph.lines, 0), shapely.get_point(graph.lines, -1)])
    keys = np.r_[graph.u, graph.v]
    _, first, uses = np.unique(keys, return_index=True, return_counts=True)
    if limit_m > params.chain_above_m:
        first = first[uses != 2]
    return ends[first]


def _routes_per_cell(xy: np.ndarray, limit_m: float, cell_m: float) -> np.ndarray:
    """Per grid cell: routes from its nodes, as nodes times the nodes within ``limit_m`` of them in a
    straight line, counted from cell to cell (about an upper bound: roads reach no farther)."""
    if not len(xy):
        return np.zeros((1, 1))
    col = np.floor((xy[:, 0] - xy[:, 0].min()) / cell_m).astype(np.int64)
    row = np.floor((xy[:, 1] - xy[:, 1].min()) / cell_m).astype(np.int64)
    nodes = np.zeros((row.max() + 1, col.max() + 1))
    np.add.at(nodes, (row, col), 1.0)
    r = int(np.ceil(limit_m / cell_m))
    dy, dx = np.mgrid[-r:r + 1, -r:r + 1]
    disc = (dx ** 2 + dy ** 2 <= (limit_m / cell_m) ** 2).astype(float)
    reach = np.rint(signal.fftconvolve(nodes, disc, mode="same"))
    return nodes * reach


def _largest_window(routes: np.ndarray, side: int, margin: int) -> float:
    """The most routes in the network any tile of ``side`` cells is matched on: runs that start in
    the tile reach up to ``side`` cells beyond it, and ``margin`` cells around them."""
    total = np.pad(routes.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    h, w = routes.shape
    r0 = np.clip(np.arange(0, h, side) - side - margin, 0, h)
    r1 = np.clip(np.arange(0, h, side) + 2 * side + margin, 0, h)
    c0 = np.clip(np.arange(0, w, side) - side - margin, 0, w)
    c1 = np.clip(np.arange(0, w, side) + 2 * side + margin, 0, w)
    sums = (total[r1][:, c1] - total[r0][:, c1] - total[r1][:, c0] + total[r0][:, c0])
    return float(sums.max())


def _mb(routes: float) -> float:
    return routes * BYTES_PER_ROUTE / 1e6
