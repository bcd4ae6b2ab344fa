"""Map matching: every trip onto the directed OSM network with an HMM (Newson & Krumm 2009).

fastmm (MIT, a C++ wheel of Yang & Gidofalvi's FMM) does the work: candidates within
``search_radius_m`` of each fix, Gaussian emission of ``gps_error_m``, transitions scored by how
close the routed distance is to the straight one, shortest routes looked up in a table (UBODT)
precomputed up to ``route_limit`` metres. Where no route or candidate exists it splits the trip
and matches the rest, so a trip leaving the map is matched on both sides of where it left.
Chosen over leuvenmapmatching (pure Python: ~60 fixes/s against fastmm's tens of thousands, with
the same matched place for 96 % of the fixes; bench/gps.py --compare) for speed.

Before matching, trips are cut where the receiver went silent (``max_gap_s``) or jumped faster
than a vehicle drives (``max_speed_mps``); fixes closer than ``thin_m`` to the last matched fix
of their trip (a standing vehicle) are not matched again but take that fix's result, so
matching cost follows distance driven, not the receiver's rate.
Where the route table must reach far (sparse traces), the matcher's network is the pieces joined
into chains at pass-through nodes (osmgap.gps.chains: fewer nodes, a table half the size or less);
every result is mapped back to the pieces. Over a large area the table may not fit in memory:
osmgap.gps.tiling then matches in tiles, with a shorter limit where needed (``match_all``).
Results stay in flat arrays, one element per fix (``Matches``); what each trip's matched route runs
along, network piece by piece, can be logged too (``PieceUsage``: osmgap.gps.support).
"""
from __future__ import annotations

import tempfile
import time
from array import array
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path

import fastmm
import numba
import numpy as np

from osmgap.core.quiet import native_stdout_quiet
from osmgap.core.traces import GpsTraces
from osmgap.gps.chains import Chains, chains
from osmgap.gps.network import RoadGraph


@dataclass(frozen=True)
class MatchParams:
    gps_error_m: float = 10.0  # sigma of a consumer receiver among buildings: 5-10 m
    search_radius_m: float = 40.0  # a fix farther than this from every road is off the map
    max_candidates: int = 8
    reverse_tolerance_m: float = 10.0  # a standing vehicle's fixes jitter backwards
    max_gap_s: float = 300.0  # a longer silence starts a new trip (the vehicle may have parked)
    max_speed_mps: float = 50.0  # 180 km/h between two fixes is a jump, not driving
    thin_m: float = 20.0  # fixes within 2 sigma of the last matched one add nothing (Newson & Krumm drop them too)
    route_min_m: float = 50.0  # routed lengths of shorter steps are not read (no detour worth a road hides there)
    route_factor: float = 4.0  # routes up to this many typical steps long are precomputed
    min_route_m: float = 600.0
    max_route_m: float = 3000.0
    # chains above this route limit: a short table costs less than mapping every fix back from chains,
    # and dense traces keep the network as it is (U-turns possible at every node)
    chain_above_m: float = 1000.0
    # the route table's memory at most (estimated); a larger area is matched in tiles, with a
    # shorter route limit where even tiles would not fit (osmgap.gps.tiling)
    table_budget_mb: float = 1000.0


@dataclass
class Matches:
    """Per fix: ``matched`` (on a matched stretch), the matched position ``mx``/``my``, its distance
    from the fix ``offset_m``, and ``route_m``: the routed length from the trip's previous fix
    (NaN where the two are not on one matched stretch, or closer than ``route_min_m``); ``routed``:
    the fix and the one before it are on one matched stretch (a route joins them). ``piece``: the trip piece each fix is in
    (trips cut at gaps and jumps). ``edge``: the directed network edge the fix is matched on (-1:
    none; ``edge // 2`` is the network piece, an odd edge runs it backwards), so the direction of
    travel along the piece is known however far apart the fixes are. ``limit_m``: the longest route
    the matcher looked up."""

    matched: np.ndarray
    mx: np.ndarray
    my: np.ndarray
    offset_m: np.ndarray
    route_m: np.ndarray
    routed: np.ndarray
    piece: np.ndarray
    edge: np.ndarray
    limit_m: float = np.inf  # the route limit: a step whose routes may be longer was not judged by route
    table_s: float = 0.0  # CPU seconds building the network and its route table: once per run, whatever its fixes


class PieceUsage:
    """What the trips' matched routes run along: per (trip, network piece) the metres of the piece
    the route covers, and every fix matched onto a piece (trip, piece, fix index). A route can be
    inferred along a piece no fix lies on (the shortest way between two sparse fixes), so the two
    are kept apart."""

    def __init__(self) -> None:
        self._metres: dict[tuple[int, int], float] = {}
        self._fixes = array("q")  # trip, piece, fix, flat: 24 bytes a fix (a list of tuples took ~170)

    def add(self, trip: int, fixes: np.ndarray, segments: list, chained: Chains | None = None) -> None:
        """One matched stretch of ``trip``: fastmm's segments (the edges between consecutive
        fixes; a segment's first fix lies on its first edge, its last fix on its last) on the
        pieces, or on their ``chained`` network, and the index of each of its trajectory's points
        in the traces (``fixes``)."""
        segments = [seg for seg in segments if len(seg.edges)]
        if segments:
            first = segments[0]
            at = _piece_edge(chained, first.edges[0].edge_id, first.p0)
            self._fixes.extend((trip, at // 2, int(fixes[first.p0.trajectory_index])))
        for seg in segments:
            base = seg.p0.offset_from_start_of_edge  # a point's edge_offset counts from where the segment enters the edge
            for edge in seg.edges:
                points = edge.points
                begin, end = base + points[0].edge_offset, base + points[-1].edge_offset
                base = 0.0
                covered = ([(edge.edge_id // 2, end - begin)] if chained is None
                           else chained.piece_metres(edge.edge_id, begin, end))
                for piece, metres in covered:
                    key = (trip, piece)
                    self._metres[key] = self._metres.get(key, 0.0) + metres
            at = _piece_edge(chained, seg.edges[-1].edge_id, seg.p1)
            self._fixes.extend((trip, at // 2, int(fixes[seg.p1.trajectory_index])))

    def absorb(self, other: PieceUsage, piece_ids: np.ndarray, fix_ids: np.ndarray, skip: np.ndarray) -> None:
        """What ``other`` logged matching part of the traces on part of the network: its pieces are
        ``piece_ids`` here, its fixes ``fix_ids``; the fixes marked in ``skip`` (by ``other``'s index)
        are left out (matched again elsewhere)."""
        for (trip, piece), metres in other._metres.items():
            key = (trip, int(piece_ids[piece]))
            self._metres[key] = self._metres.get(key, 0.0) + metres
        trips, pieces, fixes = other.fixes()
        keep = ~skip[fixes]
        rows = np.column_stack([trips[keep], piece_ids[pieces[keep]], fix_ids[fixes[keep]]]).astype(np.int64)
        self._fixes.frombytes(rows.tobytes())

    def metres(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(trip, piece, metres of the piece its route covers)."""
        keys = np.asarray(list(self._metres), np.int64).reshape(-1, 2)
        return keys[:, 0], keys[:, 1], np.asarray(list(self._metres.values()), np.float64)

    def fixes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(trip, piece, fix index) of every matched fix that was matched itself (not thinned)."""
        # a copy: a view would lock the buffer against the next extend
        rows = np.frombuffer(self._fixes, np.int64).reshape(-1, 3).copy() if len(self._fixes) else np.zeros((0, 3), np.int64)
        return rows[:, 0], rows[:, 1], rows[:, 2]


def no_matches(n: int, pieces: np.ndarray) -> Matches:
    """Nothing matched: the result for a map without roads."""
    return Matches(np.zeros(n, bool), np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan),
                   np.full(n, np.nan), np.zeros(n, bool), pieces, np.full(n, -1, np.int64))


def trip_pieces(traces: GpsTraces, params: MatchParams = MatchParams()) -> np.ndarray:
    """Piece id per fix: a new piece at each trip start, silence over ``max_gap_s`` and jump
    faster than ``max_speed_mps`` or back in time (a fix without time is judged by distance alone;
    a fix repeated where the last one was, at the same time, is no jump)."""
    dt = traces.intervals()
    step = traces.step_lengths()
    with np.errstate(invalid="ignore", divide="ignore"):
        jump = (np.where(dt > 0, step / dt, np.inf) > params.max_speed_mps) & ~((dt == 0) & (step == 0))
    start = ~traces.same_trip_as_previous() | (dt > params.max_gap_s) | (jump & np.isfinite(dt))
    return np.cumsum(start) - 1


def route_limit(traces: GpsTraces, pieces: np.ndarray, params: MatchParams = MatchParams()) -> float:
    """How long a route the matcher must be able to look up: a few typical steps (95th percentile)."""
    step = traces.step_lengths()
    step = step[np.r_[False, pieces[1:] == pieces[:-1]] & np.isfinite(step)]
    typical = float(np.quantile(step, 0.95)) if len(step) else 0.0
    return float(np.clip(params.route_factor * typical, params.min_route_m, params.max_route_m))


class Matcher:
    """fastmm over a RoadGraph (or its chains, for a long route limit); the route table is built
    once per (network, route limit)."""

    def __init__(self, graph: RoadGraph, limit_m: float, params: MatchParams = MatchParams(),
                 cache_dir: Path | None = None):
        started = time.process_time()
        self.params, self.limit_m = params, limit_m
        self.chains = chains(graph) if limit_m > params.chain_above_m else None
        ids, edge_of, src, dst = (graph if self.chains is None else self.chains).directed()
        self._tmp = None if cache_dir else tempfile.TemporaryDirectory(prefix="osmgap-ubodt-")
        with native_stdout_quiet():  # fastmm logs its progress to stdout
            self.network = fastmm.Network()
            for eid, k, a, b in zip(ids.tolist(), edge_of.tolist(), src.tolist(), dst.tolist()):
                coords = np.asarray(graph.lines[k].coords) if self.chains is None else self.chains.coords[k]
                self.network.add_edge(eid, source=a, target=b,
                                      geom=[tuple(c) for c in (coords if eid % 2 == 0 else coords[::-1]).tolist()])
            self.network.finalize()
            self.fmm = fastmm.FastMapMatch(self.network, fastmm.TransitionMode.SHORTEST,
                                           max_distance_between_candidates=limit_m,
                                           cache_dir=str(cache_dir or self._tmp.name))  # type: ignore[union-attr]
        self.table_s = time.process_time() - started

    def match(self, traces: GpsTraces, pieces: np.ndarray | None = None, usage: PieceUsage | None = None) -> Matches:
        """Match every piece of every trip (``traces`` in the graph's metric CRS); ``usage``, when
        given, logs the network pieces each trip's matched route runs along."""
        n = len(traces)
        pieces = trip_pieces(traces, self.params) if pieces is None else pieces
        out = no_matches(n, pieces)
        out.limit_m, out.table_s = self.limit_m, self.table_s
        keep = _thin(traces.x, traces.y, pieces, self.params.thin_m)
        kept = np.flatnonzero(keep)
        xyt = np.column_stack([traces.x, traces.y, traces.t])[kept]
        bounds = np.flatnonzero(np.r_[True, pieces[kept][1:] != pieces[kept][:-1], True])
        p = self.params
        step = np.hypot(np.diff(traces.x[kept], prepend=np.nan), np.diff(traces.y[kept], prepend=np.nan))
        step = np.full(n, np.nan) if not len(kept) else _scatter(step, kept, n)
        with native_stdout_quiet():
            for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
                if b - a < 2:
                    continue
                if not np.isfinite(xyt[a:b, 2]).all():  # some fixes without time (GPX allows it)
                    xyt[a:b, 2] = _times_in_order(xyt[a:b, 2])
                result = self.fmm.match(fastmm.Trajectory.from_xyt_tuples(xyt[a:b].tolist()), p.max_candidates,
                                        p.search_radius_m, p.gps_error_m, p.reverse_tolerance_m)
                for sub in result.subtrajectories:
                    if sub.error_code == fastmm.MatchErrorCode.SUCCESS:
                        _store(out, kept, a, sub.segments, step, p.route_min_m, self.chains)
                        if usage is not None:
                            usage.add(int(traces.trip[kept[a]]), kept[a:b], sub.segments, self.chains)
        _inherit(out, kept, keep)
        return out


def _times_in_order(t: np.ndarray) -> np.ndarray:
    """A piece's times with the gaps filled, never going back: fastmm needs them non-decreasing,
    and a fix without time between two timed ones (which trip_pieces cannot judge by speed) may
    even read earlier than the one before. A missing time is the last known one (the first known
    one at the start); none known: all 0, as a trip without times is matched."""
    filled = np.maximum.accumulate(np.where(np.isfinite(t), t, -np.inf))
    known = t[np.isfinite(t)]
    return np.where(np.isfinite(filled), filled, known[0] if len(known) else 0.0)


_P1 = attrgetter("p1")
_EDGES = attrgetter("edges")
_OFFSET = attrgetter("offset_from_start_of_edge")
_FIX_FIELDS = attrgetter("trajectory_index", "x", "y", "perpendicular_distance_to_matched_geometry")


def _store(out: Matches, kept: np.ndarray, first: int, segments: list, step: np.ndarray, route_min_m: float,
           chained: Chains | None) -> None:
    """The matched positions of one matched stretch (edges mapped from ``chained`` back to the
    pieces), and the routed length of its steps of at least ``route_min_m`` (reading a route out
    of fastmm costs more than matching the fix).
    Filled a stretch at a time: per-fix attribute reads are most of the cost outside fastmm."""
    if not segments:
        return
    fixes = [segments[0].p0, *map(_P1, segments)]
    index, x, y, offset_m = zip(*map(_FIX_FIELDS, fixes))  # one C-level read of four fields per fix
    at = kept[first + np.array(index, np.int64)]
    out.matched[at] = True
    out.mx[at], out.my[at], out.offset_m[at] = x, y, offset_m
    edges = list(map(_EDGES, segments))  # each read builds a list in fastmm: once per segment
    edge = np.array([edges[0][0].edge_id if edges[0] else -1, *(e[-1].edge_id if e else -1 for e in edges)])
    if chained is not None:
        along = np.fromiter(map(_OFFSET, fixes), float, len(fixes))
        on = edge >= 0
        edge[on] = chained.piece_edges(edge[on], along[on])
    out.edge[at] = edge
    out.routed[at[1:]] = True
    for j in np.flatnonzero(step[at[1:]] >= route_min_m).tolist():
        out.route_m[at[j + 1]] = edges[j][-1].points[-1].cumulative_distance - edges[j][0].points[0].cumulative_distance


def _piece_edge(chained: Chains | None, edge: int, fix: fastmm.MatchCandidate) -> int:
    """The directed piece edge of a matched ``fix`` on fastmm's ``edge``."""
    return edge if chained is None else chained.piece_edge(edge, fix.offset_from_start_of_edge)


def _inherit(out: Matches, kept: np.ndarray, keep: np.ndarray) -> None:
    """Thinned-out fixes take the result of the last kept fix before them (routed length 0)."""
    last = np.maximum.accumulate(np.where(keep, np.arange(len(keep)), 0))
    skipped = ~keep
    src = last[skipped]
    out.matched[skipped] = out.matched[src]
    out.mx[skipped], out.my[skipped] = out.mx[src], out.my[src]
    out.offset_m[skipped] = out.offset_m[src]
    out.edge[skipped] = np.where(out.matched[src], out.edge[src], -1)
    out.route_m[skipped] = np.where(out.matched[src], 0.0, np.nan)
    out.routed[skipped] = out.matched[src]


def _scatter(values: np.ndarray, at: np.ndarray, n: int) -> np.ndarray:
    out = np.full(n, np.nan)
    out[at] = values
    return out


@numba.njit(cache=True)
def _thin(x: np.ndarray, y: np.ndarray, piece: np.ndarray, thin_m: float) -> np.ndarray:
    """Keep each piece's first and last fix and every fix at least ``thin_m`` from the last kept one."""
    keep = np.zeros(len(x), np.bool_)
    lx, ly = 0.0, 0.0
    for i in range(len(x)):
        if i == 0 or piece[i] != piece[i - 1] or i == len(x) - 1 or piece[i + 1] != piece[i] \
                or (x[i] - lx) ** 2 + (y[i] - ly) ** 2 >= thin_m * thin_m:
            keep[i] = True
            lx, ly = x[i], y[i]
    return keep
