"""missing_road: the parts of candidate roads that no OSM way explains, joined to the OSM network.

Points every few metres along every candidate edge are tested against the OSM segments near
them (osmgap.core.segments.covered). Runs of unexplained points become pieces; a piece that was cut
where the candidate entered an OSM way's reach is walked back along the candidate to where it
actually meets that way, so a new road ends on the road it joins instead of a tolerance short
of it. Pieces that meet at a candidate junction are merged; free ends that stop just short of
an OSM way are joined to it. What is left is filtered: too short, no body beyond the tolerance
(a sliver), running beside an OSM way (a sidewalk or a duplicate), or not confident.

Candidates that say which level they lie on (a tunnel, a bridge, a layer: levelled sources, see
osmgap.sources.candidates) are measured only against OSM ways on their own level: a road over a
mapped tunnel, or a tunnel under a mapped street, is not explained by it nor its duplicate.
Candidates of unknown level (imagery, GPS) are measured against every way, except that an OSM
tunnel is never what they duplicate (they see the surface only). Pieces of evidence with
different tunnel/bridge/layer tags are never merged into one gap: where the level changes (a tunnel
portal, a bridge's end) the gap is cut, so each gap lies on one level and carries that level's tags
for the way a mapper draws, and the pieces meet at one free end, the node their ways share. They
stay one network for the length tests, so a short ramp into a long tunnel is reported with it.
"""
from __future__ import annotations

from collections.abc import Callable, Set
from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely.geometry import LineString

from osmgap.conflate.alignment import Probe
from osmgap.conflate.joins import TIE_M, Join, attach_points, nearest_segment, walk_to_osm
from osmgap.conflate.osmindex import OsmIndex
from osmgap.conflate.params import ConflateParams
from osmgap.core.osmtags import NO_SEPARATION, from_level_key
from osmgap.core.segments import (
    Pairs,
    Samples,
    covered,
    cut_many,
    explode,
    label_changes,
    merge_pieces,
    near_pairs,
    runs,
    sample,
    weighted_majority,
    weighted_mean,
)

CONNECTOR_BODY_M = 3.0  # a connection must leave OSM's reach for at least this long
FREE_END_ANGLE_DEG = 60.0  # a free end joins an OSM way within free_end_reach_m if the way lies ahead of it
FREE_END_SIDE_M = 8.0  # ... and no farther to the side of its heading than this
MIN_PIECE_M = 5.0  # no part of a gap network shorter than this is worth a task of its own
MIN_BRANCH_M = 10.0  # nor a branch of one that does not join OSM at both its ends (a task for a sliver)
MIN_CARRIAGEWAY_APART_M = 5.0  # the two halves of a dual carriageway: at least a lane and a kerb apart
CONTINUES_DEG = 40.0  # two gaps meeting on an OSM way this close to straight on are one road ...
INWARD_M = 10.0  # ... measured over this much of each
END_MOVE_M = 0.1  # a gap end this close to the OSM point it joins moves there (reprojection, offset noise)


@dataclass
class Gap:
    """A missing road in the metric CRS, with the OSM ways its ends join."""

    line: LineString
    joins: list[Join]
    confidence: float
    highway: str
    evidence: dict = field(default_factory=dict)
    level: float = float("nan")  # osmgap.core.osmtags.way_level; NaN: not known
    level_tags: dict = field(default_factory=dict)  # its tunnel/bridge/layer as the evidence gave them


@dataclass
class Candidates:
    """Candidate road edges (metric) with the confidence, class, level (NaN: not known) and
    level tags (osmgap.core.osmtags.level_key; '' on the surface or not known) each one carries."""

    lines: np.ndarray
    confidence: np.ndarray
    highway: np.ndarray
    level: np.ndarray | None = None
    tags: np.ndarray | None = None

    def level_keys(self) -> np.ndarray:
        return np.full(len(self.lines), "", dtype=object) if self.tags is None else np.asarray(self.tags, dtype=object)

    def levels(self) -> np.ndarray:
        return np.full(len(self.lines), np.nan) if self.level is None else np.asarray(self.level, float)


def find_gaps(cands: Candidates, pr: Probe, osm: OsmIndex, params: ConflateParams,
              score: Callable[[list[LineString]], np.ndarray] | None = None,
              dropped: dict[str, int] | None = None) -> list[Gap]:
    """``missing_road`` gaps of the candidates ``pr`` probed; ``score(lines) -> confidences``
    overrides the candidates' own scores (the probability raster, when there is one);
    ``dropped`` counts the gaps filtered out, by reason."""
    pts = pr.pts
    level = cands.levels()
    pairs = on_level(pr.pairs, level[pts.line], pts, shapely.length(cands.lines), osm, params.near_m)
    ok = covered(pairs, osm.segs, len(pts), params.near_m, params.tolerance_m, params.max_angle_deg)
    nearest = nearest_segment(pairs, osm, len(pts))
    first, last = runs(~ok, pts.line)
    start, joins_back = walk_to_osm(first, -1, pts, ok, nearest, osm, params)
    stop, joins_on = walk_to_osm(last, +1, pts, ok, nearest, osm, params)
    spans = [(line, a, b, j0, j1) for line, a, b, j0, j1
             in zip(pts.line[first].tolist(), start.tolist(), stop.tolist(), joins_back, joins_on) if b - a > 0.05]
    owners = [sp[0] for sp in spans]
    pieces = list(cut_many(cands.lines, np.asarray(owners, int), np.asarray([sp[1] for sp in spans]),
                           np.asarray([sp[2] for sp in spans])))
    ends: dict[tuple[int, int], tuple[Join, tuple[float, float]]] = {}
    for piece, (_, _, _, join0, join1) in zip(pieces, spans):
        for join, xy in ((join0, piece.coords[0]), (join1, piece.coords[-1])):
            if join is not None:
                ends[_key(xy)] = (join, xy)
    owner = np.asarray(owners, int)
    keys = cands.level_keys()
    # two pieces walked to the same point of a candidate meet on an OSM way: two gaps, not one;
    # nor are pieces on different levels one gap (a ramp and its tunnel: each keeps its own tags)
    portals = label_changes(pieces, [str(k) for k in keys[owner]]) - set(ends) if pieces else set()
    merged, holder = merge_pieces(pieces, apart=set(ends) | portals)
    lengths = shapely.length(np.asarray(pieces, dtype=object)) if pieces else np.zeros(0)
    conf: np.ndarray | list[float] = weighted_mean(holder, cands.confidence[owner], lengths, len(merged)) if pieces else []
    highway = weighted_majority(holder, cands.highway[owner], lengths, len(merged)) if pieces else []
    levels = weighted_majority(holder, np.asarray([f"{v:g}" for v in level[owner]], dtype=object), lengths,
                               len(merged), default="nan") if pieces else []
    tags = weighted_majority(holder, keys[owner], lengths, len(merged), default="") if pieces else []
    # scored on the evidence, not on a free end's join: GPS evidence stops up to 30 m short
    # of the street it joins, where the map explains the trips and the raster holds nothing
    scores = score(merged) if score is not None and merged else conf
    gaps = _joined(merged, _end_joins(merged, ends, osm, params, portals))
    for gap, c, h, lv, t in zip(gaps, scores, highway, levels, tags):
        gap.confidence = float(c)
        gap.highway = h
        gap.level = float(lv)
        gap.level_tags = from_level_key(t)
    return _filter(gaps, osm, params, {} if dropped is None else dropped, portals)


def on_level(pairs: Pairs, level: np.ndarray, pts: Samples, lengths: np.ndarray, osm: OsmIndex,
             reach_m: float) -> Pairs:
    """The pairs whose OSM way lies on the level of their sample (``level``: per sample, NaN
    where not known, and then every pair is kept), and those where a line's end meets the end of
    a way on another level within ``reach_m`` (a bridge and the road onto it join there).
    ``lengths``: the length of each line the samples lie on."""
    lv = level[pairs.sample]
    keep = np.isnan(lv) | (lv == osm.level[osm.segs.line[pairs.segment]])
    if keep.all():
        return pairs
    along = pts.along[pairs.sample]
    line_end = (along <= reach_m) | (along >= lengths[pts.line[pairs.sample]] - reach_m)
    xy = pts.xy[pairs.sample]
    seg = pairs.segment
    to_start = np.where(osm.segs.first[seg], np.hypot(*(xy - osm.segs.a[seg]).T), np.inf)
    to_end = np.where(osm.segs.last[seg], np.hypot(*(xy - osm.segs.b[seg]).T), np.inf)
    keep |= line_end & (np.minimum(to_start, to_end) <= reach_m)
    return Pairs(pairs.sample[keep], pairs.segment[keep], pairs.distance[keep], pairs.t[keep], pairs.angle[keep])


def _key(xy: tuple[float, ...]) -> tuple[int, int]:
    return round(xy[0] * 100), round(xy[1] * 100)


def _joined(lines: list[LineString], joins: list[dict[int, Join]]) -> list[Gap]:
    """Each line extended at each end to the OSM point it joins (``joins``: per line, by end, 0 or
    -1); an end within END_MOVE_M of that point is moved onto it instead. Two gaps that meet on an
    OSM way end at the same point: extended by a stub of a few centimetres each, they would share
    the stub (JOSM: overlapping highways). All lines' vertices in one array, the lines built in one
    call (a line at a time was 0.4 s at 100 km2)."""
    if not lines:
        return []
    coords, owner = shapely.get_coordinates(np.asarray(lines, dtype=object), return_index=True)
    counts = np.bincount(owner, minlength=len(lines))
    first = np.cumsum(counts) - counts
    at_end = {0: first, -1: first + counts - 1}
    ends_xy = {end: coords[at].tolist() for end, at in at_end.items()}
    added = {end: np.zeros(len(lines), bool) for end in (0, -1)}
    added_xy = {end: np.zeros((len(lines), 2)) for end in (0, -1)}
    kept: list[list[Join]] = [[] for _ in lines]
    for i, by_end in enumerate(joins):
        for end in (0, -1):
            join = by_end.get(end)
            if join is None:
                continue
            kept[i].append(Join(end, join.segment, join.vertex, join.xy))
            xy = ends_xy[end][i]
            if np.hypot(join.xy[0] - xy[0], join.xy[1] - xy[1]) > END_MOVE_M:
                added[end][i], added_xy[end][i] = True, join.xy
            else:
                coords[at_end[end][i]] = join.xy
    size = counts + added[0] + added[-1]
    start = np.cumsum(size) - size
    out = np.empty((int(size.sum()), 2))
    out[start[owner] + np.arange(len(coords)) - first[owner] + added[0][owner]] = coords
    out[start[added[0]]] = added_xy[0][added[0]]
    out[(start + size - 1)[added[-1]]] = added_xy[-1][added[-1]]
    built = shapely.linestrings(out, indices=np.repeat(np.arange(len(lines)), size))
    return [Gap(line, joined, 0.0, "road") for line, joined in zip(built, kept)]


def _end_joins(lines: list[LineString], walked: dict, osm: OsmIndex, params: ConflateParams,
               portals: Set[tuple[int, int]] = frozenset()) -> list[dict[int, Join]]:
    """Per line, the join of each end: where it was walked to; else, for an end that stops just
    short of an OSM way it is heading for (a detection that fades out before the junction), that
    way; else none. A real cul-de-sac next to another road is not heading for it, and is left
    alone: joining it would be the almost-junction JOSM warns about, without evidence. An end at
    one of ``portals`` (where the gap meets its continuation on another level) joins nothing:
    its continuation is there."""
    out: list[dict[int, Join]] = [{} for _ in lines]
    free = []
    coords, owner = shapely.get_coordinates(np.asarray(lines, dtype=object), return_index=True)
    counts = np.bincount(owner, minlength=len(lines))
    last = np.cumsum(counts) - 1
    first = last - counts + 1
    ends = {0: (coords[first], coords[first + 1]), -1: (coords[last], coords[last - 1])}  # each end, the vertex inside
    keys = {end: [_key(xy) for xy in at.tolist()] for end, (at, _) in ends.items()}
    for i in range(len(lines)):
        for end in (0, -1):
            found = walked.get(keys[end][i])
            if found:
                out[i][end] = found[0]
            elif keys[end][i] not in portals:
                at, inner = ends[end][0][i], ends[end][1][i]
                free.append((i, end, at, at - inner))
    if free and len(osm.segs):
        xy = np.asarray([f[2] for f in free], float)
        probe = Samples(xy, np.arange(len(xy)), np.zeros(len(xy)), np.zeros_like(xy), np.zeros(len(xy), int))
        pairs = near_pairs(probe, osm.segs, params.free_end_reach_m)
        ahead: dict[int, list[tuple[float, int, Join]]] = {}
        ends = np.asarray([f[1] for f in free], int)[pairs.sample]
        joins = attach_points(xy[pairs.sample], pairs.segment, osm, params, ends)
        for f, k, join in zip(pairs.sample.tolist(), pairs.segment.tolist(), joins):
            _, _, p, outward = free[f]
            run = _run_ahead(np.asarray(join.xy) - p, outward)
            if run is not None:
                ahead.setdefault(f, []).append((run, int(osm.osm_id[osm.segs.line[k]]), join))
        for f, options in ahead.items():
            nearest = min(run for run, _, _ in options)
            _, _, join = min((o for o in options if o[0] <= nearest + TIE_M), key=lambda o: (o[1], o[0]))
            out[free[f][0]][free[f][1]] = join
    return out


def _run_ahead(gap: np.ndarray, outward: np.ndarray) -> float | None:
    """How far an end heading ``outward`` runs to reach a point ``gap`` away: the gap's length
    over the cosine of its angle off the heading, so a way straight ahead wins over a nearer one
    off to the side (GPS evidence stops 20-30 m short of the street it joins, where another way's
    end may lie nearer); None beyond FREE_END_ANGLE_DEG off the heading or FREE_END_SIDE_M to
    its side (a 30 m reach at 60 degrees would end 26 m to the side). An end on the way runs 0."""
    norm = float(np.hypot(*gap) * np.hypot(*outward))
    if norm == 0:
        return 0.0
    cos = float(np.dot(gap, outward)) / norm
    if cos < np.cos(np.radians(FREE_END_ANGLE_DEG)):
        return None
    if float(np.hypot(*gap)) * np.sqrt(max(0.0, 1.0 - cos * cos)) > FREE_END_SIDE_M:
        return None
    return float(np.hypot(*gap)) / cos


def _nearest(pairs: Pairs, mask: np.ndarray, n: int) -> np.ndarray:
    """Per sample, the distance to the nearest segment of the pairs in ``mask`` (inf: none)."""
    best = np.full(n, np.inf)
    np.minimum.at(best, pairs.sample[mask], pairs.distance[mask])
    return best


def _beside_carriageways(pairs: Pairs, pts: Samples, osm: OsmIndex, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per sample: is it beside a oneway way (``mask``: the pairs that are), and is that a lone
    half of a dual carriageway whose other half it could be?

    Not where oneway ways lie on both sides of it (a centreline between two mapped halves,
    which a source drawing the road as one line gives), nor where one lies closer than
    MIN_CARRIAGEWAY_APART_M (the one-way street itself, drawn a little off: two carriageways are
    at least a lane and a kerb apart)."""
    n = len(pts)
    seg = pairs.segment[mask]
    t = np.clip(pairs.t[mask], 0.0, 1.0)[:, None]
    foot = osm.segs.a[seg] + t * (osm.segs.b[seg] - osm.segs.a[seg])
    to_way = foot - pts.xy[pairs.sample[mask]]
    unit = pts.unit[pairs.sample[mask]]
    left = unit[:, 0] * to_way[:, 1] - unit[:, 1] * to_way[:, 0] > 0
    sample = pairs.sample[mask]
    beside = np.bincount(sample, minlength=n) > 0
    on_left = np.bincount(sample[left], minlength=n) > 0
    on_right = np.bincount(sample[~left], minlength=n) > 0
    on_top = np.bincount(sample[pairs.distance[mask] < MIN_CARRIAGEWAY_APART_M], minlength=n) > 0
    return beside, beside & ~(on_left & on_right) & ~on_top


def _filter(gaps: list[Gap], osm: OsmIndex, params: ConflateParams, dropped: dict[str, int],
            portals: Set[tuple[int, int]] = frozenset()) -> list[Gap]:
    """Drop slivers, parallel duplicates, short and unconfident gaps, counting each reason in
    ``dropped``; record on the others what they were measured at. A gap cut at a level change
    (an end in ``portals``) is part of a road, not a stub: no shortest piece applies to it."""
    if not gaps:
        return []
    segs = explode(np.asarray([g.line for g in gaps], dtype=object))
    pts = sample(segs, params.step_m)
    pairs = near_pairs(pts, osm.segs, params.parallel_max_m, source=segs)
    pairs = on_level(pairs, np.asarray([g.level for g in gaps], float)[pts.line], pts,
                     shapely.length(np.asarray([g.line for g in gaps], dtype=object)), osm, params.near_m)
    ok = covered(pairs, osm.segs, len(pts), params.near_m, params.tolerance_m, params.max_angle_deg)
    line_of = osm.segs.line[pairs.segment]
    oneway = (osm.direction != 0)[line_of]
    # a tunnel beside the evidence is no surface road it could duplicate, nor is the outline of
    # a mapped area (a pedestrian square, a service yard): a street along a square's edge is a street
    unlike = _not_a_lane(osm)[line_of]
    beside = (pairs.angle <= params.parallel_angle_deg) & ~pairs.beyond_line_end(osm.segs) & ~unlike
    parallel = pairs.any_per_sample(beside & ~oneway, len(pts))
    paired_oneway, lone = _beside_carriageways(pairs, pts, osm, beside & oneway)
    parallel |= paired_oneway & ~lone  # between the two halves, or on top of one: the road again
    # beside a lone half, the other half it may be, unless a two-way way is nearer still
    paired_oneway &= lone & (_nearest(pairs, beside & oneway, len(pts)) < _nearest(pairs, beside & ~oneway, len(pts)))
    spacing = np.r_[np.diff(pts.along), 0.0]
    spacing[np.r_[pts.line[1:] != pts.line[:-1], True]] = 0.0
    body = np.bincount(pts.line, weights=spacing * ~ok, minlength=len(gaps))
    share = np.bincount(pts.line, weights=parallel & ~paired_oneway, minlength=len(gaps)) / np.maximum(
        1, np.bincount(pts.line, minlength=len(gaps)))
    label = _networks(gaps)
    lengths = shapely.length(np.asarray([g.line for g in gaps], dtype=object))
    net_length = np.bincount(label, weights=lengths)[label]
    net_body = np.bincount(label, weights=body)[label]
    net_ways: dict[int, set[int]] = {}
    for gap, lab in zip(gaps, label.tolist()):
        net_ways.setdefault(lab, set()).update(int(osm.segs.line[j.segment]) for j in gap.joins)
    kept = []
    for i, gap in enumerate(gaps):
        connector = len(net_ways[label[i]]) >= 2
        cut = bool(portals) and any(_key(gap.line.coords[end]) in portals for end in (0, -1))
        reason = _rejection(gap, float(net_length[i]), float(net_body[i]), float(share[i]), connector, params, cut)
        if reason:
            dropped[reason] = dropped.get(reason, 0) + 1
            continue
        gap.evidence.update(unexplained_m=round(float(body[i]), 1), beside_osm_share=round(float(share[i]), 2))
        kept.append(gap)
    return _drop_overlaps(kept, params, dropped)


def _rejection(gap: Gap, length: float, body: float, share: float, connector: bool,
               params: ConflateParams, cut: bool = False) -> str | None:
    """Why a gap is not reported, or None. ``length`` and ``body`` are those of the network of
    gaps it belongs to: a side street of a missing estate is short, the estate is not. A network
    that connects two different OSM ways may be short; anything else must be min_length_m long
    and run min_body_m out of OSM's reach. A piece ``cut`` from its continuation on another level
    may be shorter than MIN_PIECE_M; one of a longer network that is not a connection of its own
    must be MIN_BRANCH_M (its mapper draws the road across it anyway)."""
    if gap.line.length < MIN_PIECE_M and not cut:
        return "too_short"
    branch = length > gap.line.length + 0.5 and len({j.end for j in gap.joins}) < 2
    if branch and gap.line.length < MIN_BRANCH_M and not cut:  # a junction sliver of a longer missing road
        return "too_short"
    if length < (params.min_connector_m if connector else params.min_length_m):
        return "too_short"
    if body < (CONNECTOR_BODY_M if connector else params.min_body_m):
        return "sliver"
    if share >= params.parallel_share:
        return "beside_osm_way"
    if gap.confidence < params.min_confidence:
        return "low_confidence"
    return None


def _networks(gaps: list[Gap]) -> np.ndarray:
    """Label gaps that belong to one missing road network: gaps meeting at free (not OSM-joined)
    ends, and gaps that continue each other straight across the OSM way they both join (a
    missing road crossing a mapped one, or passing a side street that is mapped, is cut there
    into pieces; the stub beyond the last junction is as much that road as the rest of it)."""
    parent = list(range(len(gaps)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    seen: dict[tuple[int, int], int] = {}
    crossing: dict[tuple[int, int], list[tuple[int, np.ndarray]]] = {}
    lines = np.asarray([g.line for g in gaps], dtype=object)
    ends = {0: shapely.get_coordinates(shapely.get_point(lines, 0)).tolist(),
            -1: shapely.get_coordinates(shapely.get_point(lines, -1)).tolist()}
    inward = _inward(lines)
    for i, gap in enumerate(gaps):
        joined = {j.end for j in gap.joins}
        for end in (0, -1):
            key = _key(ends[end][i])
            if end in joined:
                crossing.setdefault(key, []).append((i, inward[end][i]))
            elif key in seen:
                parent[root(i)] = root(seen[key])
            else:
                seen[key] = i
    straight = -np.cos(np.radians(CONTINUES_DEG))
    for meeting in crossing.values():
        for a in range(len(meeting)):
            for b in range(a + 1, len(meeting)):
                (i, u), (k, v) = meeting[a], meeting[b]
                if i != k and float(np.dot(u, v)) <= straight:
                    parent[root(i)] = root(k)
    return np.array([root(i) for i in range(len(gaps))], int)


def _inward(lines: np.ndarray) -> dict[int, np.ndarray]:
    """Per end (0, -1), per line: the unit vector from that end towards a point INWARD_M into it."""
    lengths = shapely.length(lines)
    d = np.minimum(INWARD_M, lengths / 2)
    out = {}
    for end, at in ((0, d), (-1, lengths - d)):
        v = shapely.get_coordinates(shapely.line_interpolate_point(lines, at)) - \
            shapely.get_coordinates(shapely.get_point(lines, end))
        n = np.hypot(v[:, 0], v[:, 1])
        out[end] = np.where(n[:, None] > 0, v / np.where(n > 0, n, 1.0)[:, None], v)
    return out


def _not_a_lane(osm: OsmIndex) -> np.ndarray:
    """Per OSM way: a tunnel or an area outline (``area=yes``), which no parallel line beside it
    can be a sidewalk, service lane or duplicate of."""
    return np.array([str(t.get("tunnel", "no")).lower() not in NO_SEPARATION or is_area(t) for t in osm.tags], bool)


def is_area(tags: dict) -> bool:
    """An ``area=yes`` highway: the outline of a square or yard, not a road centreline."""
    return str(tags.get("area", "no")).strip().lower() in ("yes", "1", "true")


def _drop_overlaps(gaps: list[Gap], params: ConflateParams, dropped: dict[str, int]) -> list[Gap]:
    """Two candidates of one road (overlapping sources, both carriageway lines) report once."""
    gaps = sorted(gaps, key=lambda g: -g.line.length)
    lines = np.asarray([g.line for g in gaps], dtype=object)
    corridors = shapely.buffer(lines, params.near_m)
    li, ci = shapely.STRtree(corridors).query(lines, predicate="intersects")
    level = np.asarray([g.level for g in gaps], float)
    # only a longer (earlier) gap on the same level can make a shorter one redundant
    apart = (level[li] != level[ci]) & ~np.isnan(level[li]) & ~np.isnan(level[ci])
    earlier = (ci < li) & ~apart
    li, ci = li[earlier], ci[earlier]
    overlap = shapely.length(shapely.intersection(lines[li], corridors[ci])) if len(li) else np.zeros(0)
    keep = np.ones(len(gaps), bool)
    order = np.argsort(li, kind="stable")
    li, ci, overlap = li[order], ci[order], overlap[order]
    bounds = np.flatnonzero(np.r_[True, li[1:] != li[:-1], True]) if len(li) else np.zeros(1, int)
    for a, b in zip(bounds[:-1], bounds[1:]):
        i = li[a]
        keep[i] = overlap[a:b][keep[ci[a:b]]].sum() < 0.7 * gaps[i].line.length
    dropped["overlaps_another"] = dropped.get("overlaps_another", 0) + int((~keep).sum())
    return [g for g, k in zip(gaps, keep) if k]
