"""GPS support of each suggestion, by map matching: a line is confirmed by the trips the matcher
routes along it, and demoted where matched traffic passes its ends and never turns onto it.

Counting the points in a corridor along a line (what osmgap did before) confirms a phantom beside a
busy road, whose corridor catches that road's traffic, and says nothing about sparse traces, whose
fixes rarely fall in any corridor. Instead every line suggestion is added to the OSM network
(osmgap.gps.network.with_lines: its ends joined to the roads within ``JOIN_M``), and every trip
that comes near one is matched again on that network (osmgap.gps.matching, Newson & Krumm's
HMM), along the stretches that may pass near a line only (a trip's fixes kilometres away cannot
change which roads it takes beside the line). Then, per suggestion:

- a trip *uses* it when its matched route runs along at least ``min_cover`` of its length and at
  least one of its fixes matched onto it is *clear* and *heads along it*. Clear: every mapped
  road is at least ``clear_m`` (or the traces' own sigma, if larger) farther from the fix than
  the line is. Heads along: the trip moves (from the fix before to the fix after) within
  ``max_turn_deg`` of the line's direction there. A route the matcher only infers between two
  sparse fixes may be a shortcut it prefers, not the way driven; a fix as close to another road
  (at a junction, or where a line runs beside a road) may have been on that road; a trip that
  crosses the line (on a road missing from both) leaves one fix on it, moving across;
- a trip *passes* it when its matched route runs through one of the junctions that join the line
  to the map (or, for a line joined nowhere, along a mapped road within ``pass_m``) and its route
  does not run along the line;
- ``min_trips`` users, at least ``confirm_share`` of the trips there, confirm it (a busy road's
  noisy fixes land anywhere beside it, now and then on a line and heading along it). No user, at least ``min_passing`` passers, and routes along it
  for at most ``demote_share`` of the trips there (the matcher may route a stray trip along any
  line) demote it. Absence is weaker evidence than presence: a driveway may be on nobody's route,
  so demotion only halves the confidence. Nobody coming by is ``no_coverage``; nothing changes
  then, nor in between. A line that runs beside a mapped road for ``beside_share`` of its length
  is never demoted: the matcher puts its traffic on that road (one carriageway of a dual one).

For ``unsupported_osm_way`` it is the reverse, on the OSM way's own pieces: trips along it show the
way exists (its suggestion is demoted); passers that never use it confirm the suggestion.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely.geometry import LineString

from osmgap.conflate.osmindex import index_osm
from osmgap.core.aoi import reproject
from osmgap.core.datamodel import WGS84, RoadNetwork, Suggestion
from osmgap.core.traces import SHAPELY_BLOCK, GpsTraces
from osmgap.gps.evidence import noise_sigma
from osmgap.gps.matching import MatchParams, PieceUsage, route_limit, trip_pieces
from osmgap.gps.network import RoadGraph, road_graph, with_lines
from osmgap.gps.tiling import match_all

VERDICTS = ("confirmed", "demoted", "unchanged", "no_coverage")
UNSUPPORTED = "unsupported_osm_way"


@dataclass(frozen=True)
class SupportParams:
    matching: MatchParams = field(default_factory=MatchParams)
    min_cover: float = 0.5  # of the line's length a trip's matched route must run along
    min_trips: int = 2  # one trip can be a vehicle crossing a car park
    confirm_share: float = 0.05  # ... and this share of the trips there: a busy road's noise lands anywhere
    clear_m: float = 10.0  # 1 sigma of GPS error (more if the traces are noisier): a fix no nearer the line than this to another road may be on it
    beside_m: float = 25.0  # a line with ``beside_share`` of its length this close to a mapped road ...
    beside_share: float = 0.5  # ... is never demoted: the matcher cannot tell it from that road
    max_turn_deg: float = 45.0  # between the trip's heading at a fix and the line's direction
    min_passing: int = 5  # trips through its junctions that never turn onto it, to demote it
    demote_share: float = 0.02  # ... while the routes of at most this share of the trips there run along it
    pass_m: float = 50.0  # a line joined to no road: traffic on mapped roads this close passes it
    near_m: float = 200.0  # trips with a fix this close to some line are matched again ...
    context_fixes: int = 2  # ... along the stretches that may come that close, with this many fixes either side
    raise_share: float = 0.5  # confirmed: this share of the remaining doubt goes
    demote_factor: float = 0.5


@dataclass
class Use:
    """The trips that use one line, those whose route runs along it (users included: a route can
    be inferred between sparse fixes), and those that pass it by."""

    users: int
    routed: int
    passing: int

    @property
    def support(self) -> float | None:
        """Users over all trips that could have used it (None when none came by)."""
        total = self.routed + self.passing
        return self.users / total if total else None


def apply_gps_support(suggestions: list[Suggestion], traces: GpsTraces, roads: RoadNetwork,
                      params: SupportParams = SupportParams()) -> dict[str, int]:
    """Judge every line suggestion by the trips of ``traces`` (metric) matched on ``roads`` plus
    the suggestions; confidence and ``evidence['gps_*']`` change in place. Returns the count of
    each verdict."""
    counts = dict.fromkeys(VERDICTS, 0)
    lines = [(s, reproject(s.geometry, WGS84, traces.crs)) for s in suggestions if s.geometry.geom_type == "LineString"]
    if not lines:
        return counts
    osm = index_osm(roads, traces.crs)
    new = [(s, line) for s, line in lines if s.kind != UNSUPPORTED]
    network, _ = with_lines(road_graph(osm), [line for _, line in new])
    added = {id(s): -1 - k for k, (s, _) in enumerate(new)}
    osm_tree = shapely.STRtree(osm.lines)

    def sources(s: Suggestion, line: LineString) -> np.ndarray:
        """The network sources of what is judged: the added line, or the OSM way itself."""
        if s.kind != UNSUPPORTED:
            return np.array([added[id(s)]])
        near = osm_tree.query(line, predicate="dwithin", distance=0.5)
        return near[shapely.equals_exact(osm.lines[near], line, tolerance=0.5)]

    judged = [(s, line, sources(s, line)) for s, line in lines]
    index = _Index(network, _usage(network, traces, [line for _, line in lines], params,
                                   np.concatenate([src for *_, src in judged])))
    for s, line, src in judged:
        own = index.pieces_from(src)
        use = judge_use(index, own, line, params)
        beside = _beside_mapped(index, own, line, params)
        verdict = _verdict(use, s.kind, params, beside)
        before = s.confidence
        if verdict == "confirmed":
            s.confidence = before + (1.0 - before) * params.raise_share
        elif verdict == "demoted":
            s.confidence = before * params.demote_factor
        counts[verdict] += 1
        support = use.support
        s.evidence.update({"gps_trips": use.users, "gps_trips_routed": use.routed, "gps_trips_passing": use.passing,
                           "gps_support": None if support is None else round(support, 3),
                           "gps_beside_mapped": beside, "gps_verdict": verdict,
                           "confidence_before_gps": round(before, 3)})
    return counts


@dataclass
class Usage:
    """The matched trips near the lines: what their routes cover (``metres``: trip, piece,
    metres) and which of their fixes are clear on a piece (``clear``: trip, piece)."""

    metres: tuple[np.ndarray, np.ndarray, np.ndarray]
    clear: tuple[np.ndarray, np.ndarray]


def _ranges(keys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Positions in the sorted ``keys`` of every element equal to one of ``values``."""
    lo, hi = np.searchsorted(keys, values, "left"), np.searchsorted(keys, values, "right")
    return np.concatenate([np.arange(a, b) for a, b in zip(lo.tolist(), hi.tolist())] or [np.zeros(0, np.int64)])


class _Index:
    """What judging each line needs, built once for all of them (a city has thousands of
    suggestions): the network's spatial index, its pieces by source and by end node, and the
    usage rows by piece."""

    def __init__(self, network: RoadGraph, usage: Usage) -> None:
        self.network = network
        self.tree = shapely.STRtree(network.lines)
        n = len(network)
        by_source = np.argsort(network.source, kind="stable")
        self.source_keys, self.source_piece = network.source[by_source], by_source
        ends = np.r_[network.u, network.v]
        by_node = np.argsort(ends, kind="stable")
        self.node_keys, self.node_piece = ends[by_node], np.r_[np.arange(n), np.arange(n)][by_node]
        trip, piece, metres = usage.metres
        o = np.argsort(piece, kind="stable")
        self.trip, self.piece, self.metres = trip[o], piece[o], metres[o]
        clear_trip, clear_piece = usage.clear
        o = np.argsort(clear_piece, kind="stable")
        self.clear_trip, self.clear_piece = clear_trip[o], clear_piece[o]

    def pieces_from(self, sources: np.ndarray) -> np.ndarray:
        """The pieces cut from these sources (OSM line indices, or -1 - k for the k-th added line), sorted."""
        return np.sort(self.source_piece[_ranges(self.source_keys, sources)])

    def pieces_at(self, nodes: np.ndarray) -> np.ndarray:
        return np.unique(self.node_piece[_ranges(self.node_keys, nodes)])

    def rows_on(self, pieces: np.ndarray) -> np.ndarray:
        return _ranges(self.piece, pieces)

    def clear_trips_on(self, pieces: np.ndarray) -> np.ndarray:
        return self.clear_trip[_ranges(self.clear_piece, pieces)]


def _usage(network: RoadGraph, traces: GpsTraces, lines: list[LineString], params: SupportParams,
           judged: np.ndarray) -> Usage:
    """Match the trips that come within ``near_m`` of a line on ``network``; fixes are read
    (clear, heading along) only on the pieces cut from the ``judged`` sources (the suggestions'
    own), not on every road the trips drove."""
    gap = _nearest_line_m(traces, lines)
    near_trips = np.isin(traces.trip, np.unique(traces.trip[gap <= params.near_m]))
    whole, gap = traces.take(near_trips), gap[near_trips]
    log = PieceUsage()
    clear_m = params.clear_m
    sub = whole
    if len(whole) and len(network):
        pieces = trip_pieces(whole, params.matching)
        limit = route_limit(whole, pieces, params.matching)
        window = _within_reach(whole, pieces, gap, params.near_m, params.context_fixes)
        sub, pieces = whole.take(window), _cut(pieces, window)
        del whole
        matches = match_all(network, limit, sub, pieces, params.matching, log)
        clear_m = max(clear_m, noise_sigma(matches))
    trip, piece, fix = log.fixes()
    on = np.isin(network.source[piece], judged)
    trip, piece, fix = trip[on], piece[on], fix[on]
    ok = _clear(network, piece, sub.x[fix], sub.y[fix], clear_m) & _heading_along(network, piece, sub, fix, params)
    return Usage(log.metres(), (trip[ok], piece[ok]))


def _nearest_line_m(traces: GpsTraces, lines: list[LineString]) -> np.ndarray:
    """Per fix: metres to the nearest line (the fixes made points a block at a time)."""
    tree = shapely.STRtree(lines)
    gap = np.full(len(traces), np.inf)
    for s in range(0, len(traces), SHAPELY_BLOCK):
        block = slice(s, s + SHAPELY_BLOCK)
        (fix, _), metres = tree.query_nearest(shapely.points(traces.x[block], traces.y[block]),
                                              return_distance=True, all_matches=False)  # one row a fix
        gap[s + fix] = metres
    return gap


def _within_reach(traces: GpsTraces, pieces: np.ndarray, gap: np.ndarray, reach_m: float, context: int) -> np.ndarray:
    """The fixes worth matching again: those whose step from the fix before or to the fix after (in
    their trip piece) may pass within ``reach_m`` of a line (``gap``: each fix's distance to the
    nearest line), and ``context`` fixes either side of each such stretch (the HMM's start). A trip's other fixes, kilometres away on its route, cannot
    change which roads it takes by the lines (a city's trips pass a suggestion once in a long drive)."""
    step = traces.step_lengths()
    step[np.r_[True, pieces[1:] != pieces[:-1]]] = 0.0  # no step into a piece's first fix
    step = np.nan_to_num(step)
    near = gap <= reach_m + np.maximum(step, np.r_[step[1:], 0.0])  # the longer of the steps in and out
    grown = near.copy()
    for k in range(1, context + 1):  # a fix k before or after a near one, in the same piece
        same = pieces[k:] == pieces[:-k]
        grown[:-k] |= near[k:] & same
        grown[k:] |= near[:-k] & same
    return grown


def _cut(pieces: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Piece ids of the kept fixes, a new piece wherever fixes between two kept ones were left out."""
    index = np.flatnonzero(keep)
    kept = pieces[index]
    start = np.ones(len(index), bool)
    start[1:] = (kept[1:] != kept[:-1]) | (np.diff(index) > 1)
    return np.cumsum(start) - 1


def _clear(network: RoadGraph, piece: np.ndarray, x: np.ndarray, y: np.ndarray, clear_m: float) -> np.ndarray:
    """Per fix matched onto ``piece``: is every mapped road at least ``clear_m`` farther away?"""
    points = shapely.points(x, y)
    own = shapely.distance(points, network.lines[piece]) if len(piece) else np.zeros(0)
    fix, other = shapely.STRtree(network.lines).query(points, predicate="dwithin", distance=own + clear_m)
    crowding = (other != piece[fix]) & (network.source[other] >= 0)  # mapped roads; suggestions are not roads yet
    crowded = np.zeros(len(piece), bool)
    crowded[fix[crowding]] = True
    return ~crowded


def _heading_along(network: RoadGraph, piece: np.ndarray, traces: GpsTraces, fix: np.ndarray,
                   params: SupportParams) -> np.ndarray:
    """Per fix matched onto ``piece``: does its trip move along the piece there (from the fix
    before to the fix after, within ``max_turn_deg`` either way)?"""
    n = len(traces)
    before = np.where((fix > 0) & (traces.trip[np.maximum(fix - 1, 0)] == traces.trip[fix]), fix - 1, fix)
    after = np.where((fix < n - 1) & (traces.trip[np.minimum(fix + 1, n - 1)] == traces.trip[fix]), fix + 1, fix)
    move = np.column_stack([traces.x[after] - traces.x[before], traces.y[after] - traces.y[before]])
    lines = network.lines[piece]
    at = shapely.line_locate_point(lines, shapely.points(traces.x[fix], traces.y[fix]))
    length = shapely.length(lines)
    a = shapely.get_coordinates(shapely.line_interpolate_point(lines, np.clip(at - 5.0, 0.0, length)))
    b = shapely.get_coordinates(shapely.line_interpolate_point(lines, np.clip(at + 5.0, 0.0, length)))
    tangent = b - a
    norm = np.linalg.norm(move, axis=1) * np.linalg.norm(tangent, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.abs(np.sum(move * tangent, axis=1)) / norm
    return np.nan_to_num(cos) >= np.cos(np.radians(params.max_turn_deg))


def judge_use(index: _Index, own: np.ndarray, line: LineString, params: SupportParams = SupportParams()) -> Use:
    """The trips that use the pieces ``own`` (sorted; together ``line``) and those that pass them by."""
    rows = index.rows_on(own)
    length = shapely.length(index.network.lines[own]) if len(own) else np.zeros(0)
    clipped = np.minimum(index.metres[rows], length[np.searchsorted(own, index.piece[rows])])
    trips_on, at = np.unique(index.trip[rows], return_inverse=True)
    covering = trips_on[np.bincount(at, clipped, len(trips_on)) >= params.min_cover * float(length.sum())]
    used = np.intersect1d(covering, index.clear_trips_on(own))
    passing = np.setdiff1d(np.unique(index.trip[index.rows_on(_passing_pieces(index, own, line, params))]), covering)
    return Use(len(used), len(covering), len(passing))


def _passing_pieces(index: _Index, own: np.ndarray, line: LineString, params: SupportParams) -> np.ndarray:
    """The other pieces at the junctions joining ``own`` to the network; if there are none, the
    mapped pieces within ``pass_m`` of ``line``."""
    network = index.network
    joins = np.setdiff1d(index.pieces_at(np.union1d(network.u[own], network.v[own])), own)
    if len(joins):
        return joins
    near = index.tree.query(line, predicate="dwithin", distance=params.pass_m)
    return near[~np.isin(near, own) & (network.source[near] >= 0)]


def _beside_mapped(index: _Index, own: np.ndarray, line: LineString, params: SupportParams) -> bool:
    """Does ``line`` run beside a mapped road (one carriageway of a dual one, a service road
    along a street) for ``beside_share`` of its length?"""
    network = index.network
    near = index.tree.query(line, predicate="dwithin", distance=params.beside_m)
    mapped = near[(network.source[near] >= 0) & ~np.isin(near, own)]
    if not len(mapped) or line.length == 0:
        return False
    zone = shapely.union_all(shapely.buffer(network.lines[mapped], params.beside_m))
    return line.intersection(zone).length >= params.beside_share * line.length


def _verdict(use: Use, kind: str, params: SupportParams, beside: bool = False) -> str:
    if use.routed == 0 and use.passing == 0:
        return "no_coverage"
    driven = use.users >= params.min_trips and use.users >= params.confirm_share * (use.routed + use.passing)
    undriven = (use.users == 0 and use.passing >= params.min_passing and not beside
                and use.routed <= params.demote_share * (use.routed + use.passing))
    if kind == UNSUPPORTED:  # traffic on an OSM way says the way is real
        driven, undriven = undriven, driven
    return "confirmed" if driven else "demoted" if undriven else "unchanged"
