"""Lines as straight 2-point segments, and points sampled along them: the bulk geometry of conflation.

Conflation asks, for up to millions of points along candidate roads, which OSM ways run within a
few metres and in which direction. Shapely 2 answers "which segments lie within r of these points"
for all points at once from one STRtree; with the lines cut into straight segments every answer
has one direction, so "runs the same way" becomes an angle between two vectors and the whole
test stays in numpy, with no Python loop per line. Shapely's tree queries and numpy's arithmetic
let go of the GIL, so a large query runs in contiguous blocks on several threads, its answer the
one-thread answer (:func:`near_pairs`).
"""
from __future__ import annotations

from collections.abc import Callable, Set
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import shapely
from shapely.geometry import LineString, MultiLineString

from osmgap.core.threads import MAX_THREADS, in_order, usable_cores


@dataclass
class Segments:
    """Every straight segment of a set of lines, in the lines' (metric) CRS.

    ``line`` is the index of the line a segment belongs to, ``along`` the distance from that
    line's start to the segment's start; ``first``/``last`` mark a line's end segments, whose
    outer ends are the line's ends; ``vertex`` is the index of a segment's start in
    ``shapely.get_coordinates(lines)`` (its end is ``vertex + 1``), so a vertex can be traced
    back to the same vertex of the lines in another CRS.
    """

    a: np.ndarray
    b: np.ndarray
    line: np.ndarray
    along: np.ndarray
    first: np.ndarray
    last: np.ndarray
    vertex: np.ndarray
    lines: np.ndarray = field(repr=False)

    def __len__(self) -> int:
        return len(self.a)

    @cached_property
    def length(self) -> np.ndarray:
        return np.hypot(*(self.b - self.a).T)

    @cached_property
    def unit(self) -> np.ndarray:
        """Unit direction vectors (a -> b)."""
        return (self.b - self.a) / self.length[:, None]

    @cached_property
    def tree(self) -> shapely.STRtree:
        return shapely.STRtree(shapely.linestrings(np.stack([self.a, self.b], axis=1)))


def explode(lines: np.ndarray | list[LineString]) -> Segments:
    """The segments of ``lines`` (zero-length ones dropped), in line order."""
    lines = np.asarray(lines, dtype=object)
    coords, owner = shapely.get_coordinates(lines, return_index=True)
    same = owner[1:] == owner[:-1]
    a, b, line = coords[:-1][same], coords[1:][same], owner[:-1][same]
    vertex = np.flatnonzero(same)
    keep = np.hypot(*(b - a).T) > 0
    a, b, line, vertex = a[keep], b[keep], line[keep], vertex[keep]
    seg_len = np.hypot(*(b - a).T)
    start = np.r_[True, line[1:] != line[:-1]] if len(line) else np.zeros(0, bool)
    end = np.r_[line[1:] != line[:-1], True] if len(line) else np.zeros(0, bool)
    cum = np.cumsum(seg_len)
    group_start = np.maximum.accumulate(np.where(start, np.arange(len(line)), 0))
    along = cum - seg_len - (cum[group_start] - seg_len[group_start]) if len(line) else seg_len
    return Segments(a, b, line, along, start, end, vertex, lines)


@dataclass
class Samples:
    """Points every ``step`` metres along lines (each line's last vertex included).

    ``line``/``along`` locate each point on its line; ``unit`` is the direction of the segment it
    lies on; ``segment`` its index in the exploded lines. Points are ordered by line, then along.
    """

    xy: np.ndarray
    line: np.ndarray
    along: np.ndarray
    unit: np.ndarray
    segment: np.ndarray

    def __len__(self) -> int:
        return len(self.xy)


def sample(segs: Segments, step: float) -> Samples:
    """Points every ``step`` metres (at most) along each line of ``segs``."""
    if len(segs) == 0:
        return Samples(np.zeros((0, 2)), np.zeros(0, int), np.zeros(0), np.zeros((0, 2)), np.zeros(0, int))
    k = np.maximum(1, np.ceil(segs.length / step).astype(int))
    # k points from each segment's start, and the far end of every line's last segment closes
    # the line: point j of a segment lies at j / k of it (j = k: its end)
    count = k + segs.last
    seg = np.repeat(np.arange(len(segs)), count)
    offsets = np.cumsum(count) - count
    frac = (np.arange(len(seg)) - np.repeat(offsets, count)) / np.repeat(k, count)
    xy = segs.a[seg] + frac[:, None] * (segs.b[seg] - segs.a[seg])
    along = segs.along[seg] + frac * segs.length[seg]
    return Samples(xy, segs.line[seg], along, segs.unit[seg], seg)


@dataclass
class Pairs:
    """(sample, segment) pairs closer than a radius: distance, projection and angle of each."""

    sample: np.ndarray
    segment: np.ndarray
    distance: np.ndarray
    t: np.ndarray  # projection along the segment, unclipped: < 0 or > 1 lies beyond an end
    angle: np.ndarray  # degrees in [0, 90]: lines have no direction

    def beyond_line_end(self, segs: Segments) -> np.ndarray:
        """Pairs whose point lies past the end of the OSM line itself, not just of one segment."""
        return ((self.t < 0) & segs.first[self.segment]) | ((self.t > 1) & segs.last[self.segment])

    def any_per_sample(self, mask: np.ndarray, n: int) -> np.ndarray:
        return np.bincount(self.sample[mask], minlength=n) > 0


# A block of fewer points than this gains nothing from a thread of its own.
THREAD_BLOCK = 50_000


def query_threads(points: int) -> int:
    """Threads for a bulk query about ``points`` points: one per THREAD_BLOCK, at most the cores
    this process may use and MAX_THREADS."""
    return max(1, min(MAX_THREADS, usable_cores(), points // THREAD_BLOCK))


def _in_blocks(count: int, threads: int, work: Callable[[int, int], tuple[np.ndarray, ...]]) -> tuple[np.ndarray, ...]:
    """``work(start, stop)`` over ``threads`` contiguous blocks of range(count), one thread each,
    and its arrays concatenated in block order: what ``work(0, count)`` gives whenever the work of
    a range is the concatenation of its blocks'."""
    threads = min(threads, count)
    if threads <= 1:
        return work(0, count)
    bounds = np.linspace(0, count, threads + 1).astype(int)
    parts = list(in_order(lambda block: work(*block), zip(bounds[:-1].tolist(), bounds[1:].tolist()), threads))
    return tuple(np.concatenate(arrays) for arrays in zip(*parts))


def near_pairs(points: Samples, segs: Segments, radius: float, source: Segments | None = None) -> Pairs:
    """All (sample, segment) pairs within ``radius`` metres, from one bulk STRtree query.

    When the points were sampled from ``source`` (osmgap.core.segments.sample), the query runs per
    source segment instead of per point, several times fewer queries, and the pairs of each
    source segment are handed to its points and measured exactly. A query about many points runs
    in blocks of them (or of their source segments) on several threads; the pairs come out in the
    same order.
    """
    if len(points) == 0 or len(segs) == 0:
        empty = np.zeros(0)
        return Pairs(empty.astype(int), empty.astype(int), empty, empty, empty)
    tree, _ = segs.tree, segs.unit  # cached here, once, before any thread reads them
    per_source = np.bincount(points.segment, minlength=len(source)) if source is not None else None

    def measured(start: int, stop: int) -> tuple[np.ndarray, ...]:
        if source is None or per_source is None:
            pi, si = tree.query(shapely.points(points.xy[start:stop]), predicate="dwithin", distance=radius)
            pi = pi + start
        else:
            pi, si = _pairs_via_source(per_source, source, tree, radius, start, stop)
        return (pi, si, *_measure(points, segs, pi, si))

    # as many threads as the points call for, each a block of points or of the segments they lie on
    pi, si, dist, t, angle = _in_blocks(len(points) if source is None else len(source), query_threads(len(points)),
                                        measured)
    if source is not None:
        keep = dist <= radius
        pi, si, dist, t, angle = pi[keep], si[keep], dist[keep], t[keep], angle[keep]
    return Pairs(pi, si, dist, t, angle)


def _measure(points: Samples, segs: Segments, pi: np.ndarray, si: np.ndarray) -> tuple[np.ndarray, ...]:
    """Distance, projection along the segment and angle of each (point, segment) pair."""
    a, d = segs.a[si], segs.b[si] - segs.a[si]
    rel = points.xy[pi] - a
    t = np.einsum("ij,ij->i", rel, d) / np.einsum("ij,ij->i", d, d)
    closest = a + np.clip(t, 0, 1)[:, None] * d
    dist = np.hypot(*(points.xy[pi] - closest).T)
    cos = np.abs(np.einsum("ij,ij->i", points.unit[pi], segs.unit[si]))
    return dist, t, np.degrees(np.arccos(np.clip(cos, 0, 1)))


def _pairs_via_source(per_source: np.ndarray, source: Segments, tree: shapely.STRtree, radius: float,
                      start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """(point, segment) candidates: every point of each source segment from ``start`` to ``stop``
    (``per_source``: how many points each source segment has; points are ordered by source
    segment) that lies within ``radius`` of a segment in ``tree``; the caller keeps those that
    are really that close."""
    lines = shapely.linestrings(np.stack([source.a[start:stop], source.b[start:stop]], axis=1))
    ci, si = tree.query(lines, predicate="dwithin", distance=radius)
    ci = ci + start
    first = np.cumsum(per_source) - per_source
    n = per_source[ci]
    pair_of = np.repeat(np.arange(len(ci)), n)
    offset = np.arange(len(pair_of)) - np.repeat(np.cumsum(n) - n, n)
    return first[ci][pair_of] + offset, si[pair_of]


def runs(flags: np.ndarray, group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (inclusive) indices of maximal runs of True in ``flags`` within each group."""
    f = np.asarray(flags, bool)
    if not f.any():
        return np.zeros(0, int), np.zeros(0, int)
    new_group = np.r_[True, group[1:] != group[:-1]]
    starts = f & (new_group | ~np.r_[False, f[:-1]])
    last_in_group = np.r_[group[1:] != group[:-1], True]
    ends = f & (last_in_group | ~np.r_[f[1:], False])
    return np.flatnonzero(starts), np.flatnonzero(ends)


def point_groups(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points with equal ``(x, y)``: per point the number of its group, the groups numbered in
    x-then-y order (``np.unique(axis=0)``'s labels, from one two-key sort instead of its sort of a
    structured copy), and each group's first point."""
    if not len(x):
        return np.zeros(0, int), np.zeros(0, int)
    order = np.lexsort((y, x))  # stable: a group's first in order is its first point
    starts = np.r_[True, (x[order][1:] != x[order][:-1]) | (y[order][1:] != y[order][:-1])]
    group = np.empty(len(x), int)
    group[order] = np.cumsum(starts) - 1
    return group, order[starts]


def cut_many(lines: np.ndarray, which: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Pieces ``lines[which[k]]`` between ``start[k]`` and ``end[k]`` metres along, built in one
    go (shapely.ops.substring is pure Python and far slower)."""
    if not len(which):
        return np.zeros(0, dtype=object)
    coords, owner = shapely.get_coordinates(lines, return_index=True)
    counts = np.bincount(owner, minlength=len(lines))
    first = np.cumsum(counts) - counts
    step = np.r_[0.0, np.hypot(*np.diff(coords, axis=0).T)]
    step[first[counts > 0]] = 0.0
    cum = np.cumsum(step)
    cum -= np.repeat(cum[first], counts)
    out_xy, out_idx = [], []
    for k, (i, a, b) in enumerate(zip(which.tolist(), start.tolist(), end.tolist())):
        lo, hi = first[i], first[i] + counts[i]
        c, xy = cum[lo:hi], coords[lo:hi]
        a, b = max(0.0, a), min(float(c[-1]), b)
        inner = xy[(c > a) & (c < b)]
        ends = np.array([[np.interp(v, c, xy[:, 0]), np.interp(v, c, xy[:, 1])] for v in (a, b)])
        piece = np.vstack([ends[:1], inner, ends[1:]])
        out_xy.append(piece)
        out_idx.append(np.full(len(piece), k))
    return shapely.linestrings(np.vstack(out_xy), indices=np.concatenate(out_idx))


def covered(pairs: Pairs, segs: Segments, n: int, near_m: float, tolerance_m: float,
            max_angle: float) -> np.ndarray:
    """Per sample: does a line of ``segs`` account for it?

    Within ``near_m`` of a line any direction counts (a junction, or centreline noise); out to
    ``tolerance_m`` only a line running the same way (within ``max_angle`` degrees) that does not
    end before the sample does. Round end caps would swallow the first metres of a road that
    continues a mapped way; the direction test keeps a side street that leaves a mapped road at
    an angle from being explained by that road.
    """
    near = pairs.distance <= near_m
    along = (pairs.distance <= tolerance_m) & (pairs.angle <= max_angle) & ~pairs.beyond_line_end(segs)
    return pairs.any_per_sample(near | along, n)


def merge_pieces(pieces: list[LineString], apart: Set[tuple[int, int]] = frozenset()
                 ) -> tuple[list[LineString], np.ndarray]:
    """Join pieces where exactly two meet end to end, except at points whose centimetre key is
    in ``apart``; returns the merged lines and, for every piece, the index of the merged line
    that holds it (so attributes can follow the pieces)."""
    if not pieces:
        return [], np.zeros(0, int)
    merged = [g for g in shapely.get_parts(shapely.line_merge(MultiLineString(pieces))) if g.length > 0]
    if apart:
        merged = [part for g in merged for part in _split_at(g, apart)]
    mids = shapely.line_interpolate_point(np.asarray(pieces, dtype=object), 0.5, normalized=True)
    pi, mi = shapely.STRtree(merged).query(mids, predicate="dwithin", distance=0.01)
    holder = np.full(len(pieces), -1)
    holder[pi[::-1]] = mi[::-1]  # the first hit per piece
    # two copies of one stretch (ways that overlap) merge into two identical lines, and both
    # pieces find the first: a line no piece was given takes one that found it from a line with more
    orphans = set(range(len(merged))) - set(holder.tolist())
    if orphans:
        count = np.bincount(holder[holder >= 0], minlength=len(merged))
        for p, m in zip(pi.tolist(), mi.tolist()):
            if m in orphans and holder[p] >= 0 and count[holder[p]] > 1:
                count[holder[p]] -= 1
                holder[p], count[m] = m, 1
                orphans.discard(m)
    return merged, holder


def label_changes(pieces: list[LineString], labels: list[str]) -> set[tuple[int, int]]:
    """Centimetre keys of the points where pieces with different labels (levels: a bridge and
    the road leading onto it) meet end to end: ``merge_pieces(apart=...)`` keeps them apart."""
    seen: dict[tuple[int, int], set[str]] = {}
    for line, label in zip(pieces, labels):
        for xy in (line.coords[0], line.coords[-1]):
            seen.setdefault((round(xy[0] * 100), round(xy[1] * 100)), set()).add(label)
    return {key for key, found in seen.items() if len(found) > 1}


def _split_at(line: LineString, apart: Set[tuple[int, int]]) -> list[LineString]:
    """``line`` cut at its inner vertices whose centimetre key is in ``apart``."""
    xy = shapely.get_coordinates(line)
    cuts = [k for k in range(1, len(xy) - 1) if (round(xy[k, 0] * 100), round(xy[k, 1] * 100)) in apart]
    if not cuts:
        return [line]
    bounds = [0, *cuts, len(xy) - 1]
    return [LineString(xy[a:b + 1]) for a, b in zip(bounds[:-1], bounds[1:])]


def weighted_mean(groups: np.ndarray, values: np.ndarray, weights: np.ndarray, n: int) -> np.ndarray:
    """Per group (0..n-1): the mean of ``values`` weighted by ``weights``."""
    total = np.bincount(groups, weights=weights, minlength=n)
    return np.bincount(groups, weights=weights * values, minlength=n) / np.maximum(total, 1e-12)


def weighted_majority(groups: np.ndarray, labels: np.ndarray, weights: np.ndarray, n: int,
                      default: str = "road") -> list[str]:
    """Per group: the label with the largest total weight (ties: the first in sorted order)."""
    totals: dict[tuple[int, str], float] = {}
    for g, label, w in zip(groups.tolist(), [str(v) for v in labels], weights.tolist()):
        totals[(g, label)] = totals.get((g, label), 0.0) + w
    best: dict[int, tuple[float, str]] = {}
    for (g, label), total in sorted(totals.items()):
        if g not in best or total > best[g][0]:
            best[g] = (total, label)
    return [best.get(g, (0.0, default))[1] for g in range(n)]
