"""Where evidence meets OSM: the OSM point an end of a piece of evidence joins, and how far the
piece is walked along its candidate line to get there.

A candidate that leaves a mapped way is unexplained only from some metres out, where it leaves the
way's reach; the piece osmgap suggests must start where the candidate actually meets or forks from
the way, on the way (osmgap.conflate.gaps). Every sample is given its nearest OSM segment (ties to
the smallest OSM id, so a junction is always given to the same way), each piece end is walked
along its candidate's explained samples to the one closest to OSM, and there attached to the
nearest point of that segment, or to its vertex when one is that near (joining an existing node
needs no change to the OSM way).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from osmgap.conflate.osmindex import OsmIndex
from osmgap.conflate.params import ConflateParams
from osmgap.core.segments import Pairs, Samples

WALK_SLACK_M = 1.5  # a piece is walked back to the last point this close to its best approach
MAX_WALK_M = 400.0  # how far a piece may be walked back along a candidate that keeps closing in
TIE_M = 1.0  # OSM ways this much farther than the nearest count as equally near (junctions)


@dataclass(frozen=True)
class Join:
    """An end of a gap on an OSM segment; ``vertex`` when it sits on an existing OSM vertex."""

    end: int
    segment: int
    vertex: int | None
    xy: tuple[float, float]


def nearest_segment(pairs: Pairs, osm: OsmIndex, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per sample: distance to the nearest OSM segment and that segment (-1 where none).

    Among ways within TIE_M of the nearest, the one with the smallest OSM id wins, so a point at
    a junction is always given to the same way whatever sub-metre noise it carries.
    """
    dmin = np.full(n, np.inf)
    np.minimum.at(dmin, pairs.sample, pairs.distance)
    seg = np.full(n, -1)
    close = pairs.distance <= dmin[pairs.sample] + TIE_M
    idx = np.flatnonzero(close)
    # per sample the smallest OSM id, then the nearest, then the first pair: three passes of
    # minima (a sort of the pairs by the three took 7x as long)
    by = pairs.sample[idx]
    for of_pairs in (lambda i: osm.id_rank[osm.segs.line[pairs.segment[i]]], lambda i: pairs.distance[i]):
        key = of_pairs(idx)
        best = np.full(n, np.inf)
        np.minimum.at(best, by, key)
        idx, by = idx[key == best[by]], by[key == best[by]]
    first = np.full(n, len(pairs.sample))
    np.minimum.at(first, by, idx)
    found = first < len(pairs.sample)
    seg[found] = pairs.segment[first[found]]
    return dmin, seg


def walk_to_osm(origins: np.ndarray, direction: int, pts: Samples, ok: np.ndarray,
             nearest: tuple[np.ndarray, np.ndarray], osm: OsmIndex,
             params: ConflateParams) -> tuple[np.ndarray, list[Join | None]]:
    """Where the pieces that end at samples ``origins`` really end, walking ``direction`` (-1
    back, +1 on), and the OSM point each joins there (None: it ends where it is).

    At a candidate edge's own end the piece ends there. Otherwise the explained points beyond it
    lie in some OSM way's reach; the piece is extended to the first of them that comes (within
    WALK_SLACK_M) as close to that way as any, i.e. to where the candidate meets or forks from
    the way. Past the usual reach, the walk goes on only while the candidate still closes in on
    OSM: a link that leaves a motorway at a shallow angle is new all the way to where it forks.
    Every walk at once, as flat arrays (a loop per piece was half a second at 100 km2).
    """
    dmin, seg = nearest
    origins = np.asarray(origins, int)
    walk, pos, k, offsets, length = _walks(origins, direction, pts, ok)
    walked = np.abs(pts.along[k] - pts.along[origins[walk]])
    closing_stops = (pos > 0) & (dmin[k] > dmin[np.where(pos > 0, k - direction, k)] + WALK_SLACK_M / 6)
    stops = (walked > MAX_WALK_M) | ((walked > params.tolerance_m + params.near_m) & closing_stops)
    window = np.minimum(_first_per_walk(stops, pos, offsets, length), length)  # the points walked over
    inside = pos < window[walk]
    d = np.where(inside, dmin[k], np.inf)
    closest = np.full(len(origins), np.inf)
    walked_any = length > 0
    if walked_any.any():
        closest[walked_any] = np.minimum.reduceat(d, offsets[walked_any])
    best_pos = _first_per_walk(inside & (d <= closest[walk] + WALK_SLACK_M), pos, offsets, length)
    found = window > 0
    best = np.where(found, origins + direction * (np.where(found, best_pos, 0) + 1), origins)
    joins: list[Join | None] = [None] * len(origins)
    attached = attach_points(pts.xy[best[found]], seg[best[found]], osm, params, end=0 if direction < 0 else -1)
    for i, join in zip(np.flatnonzero(found).tolist(), attached):
        joins[i] = join
    return pts.along[best], joins


def _walks(origins: np.ndarray, direction: int, pts: Samples,
           ok: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The samples each walk from ``origins`` passes over, flat, in walking order: the run of
    explained (``ok``) samples next to its origin on the same line. Per sample of any walk: the
    walk's index, its position in the walk and its sample; per walk: where it begins in them, and
    how many samples it passes (0: the candidate edge ends at its origin)."""
    n = len(pts)
    first = np.clip(origins + direction, 0, n - 1)
    steps = (origins + direction >= 0) & (origins + direction < n) & (pts.line[first] == pts.line[origins]) & ok[first]
    new_run = np.r_[True, (ok[1:] != ok[:-1]) | (pts.line[1:] != pts.line[:-1])]
    run = np.cumsum(new_run) - 1
    run_first = np.flatnonzero(new_run)
    run_last = np.r_[run_first[1:] - 1, n - 1]
    ahead = run_last[run[first]] - first if direction > 0 else first - run_first[run[first]]
    length = np.where(steps, ahead + 1, 0)
    offsets = np.cumsum(length) - length
    walk = np.repeat(np.arange(len(origins)), length)
    pos = np.arange(int(length.sum())) - offsets[walk]
    return walk, pos, first[walk] + direction * pos, offsets, length


def _first_per_walk(flags: np.ndarray, pos: np.ndarray, offsets: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Per walk, the position of its first flagged sample (a large number where none is)."""
    out = np.full(len(length), np.iinfo(np.int64).max)
    walked = length > 0
    if walked.any():
        out[walked] = np.minimum.reduceat(np.where(flags, pos, np.iinfo(np.int64).max), offsets[walked])
    return out


def attach_point(xy: np.ndarray, segment: int, osm: OsmIndex, params: ConflateParams, end: int) -> Join:
    """The point of an OSM segment nearest ``xy``, moved onto the segment's vertex when that is
    within node_snap_m (joining an existing node needs no change to the OSM way)."""
    return attach_points(np.asarray(xy, float).reshape(1, 2), np.asarray([segment]), osm, params, end)[0]


def attach_points(xy: np.ndarray, segments: np.ndarray, osm: OsmIndex, params: ConflateParams,
                  end: int | np.ndarray) -> list[Join]:
    """:func:`attach_point` of many points (``xy``: (n, 2)), each on its own segment, with its
    own ``end`` or all with one."""
    segments = np.asarray(segments, int)
    a, b = osm.segs.a[segments], osm.segs.b[segments]
    d, rel = b - a, np.asarray(xy, float) - a
    t = np.clip((rel[:, 0] * d[:, 0] + rel[:, 1] * d[:, 1]) / (d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1]), 0.0, 1.0)
    p = a + t[:, None] * d
    to_a = np.hypot(p[:, 0] - a[:, 0], p[:, 1] - a[:, 1])
    to_b = np.hypot(p[:, 0] - b[:, 0], p[:, 1] - b[:, 1])
    snap = np.minimum(to_a, to_b) <= params.node_snap_m
    vertex = osm.segs.vertex[segments] + (to_a > to_b)
    p = np.where(snap[:, None], osm.vertex_xy[np.where(snap, vertex, 0)], p)
    ends = np.broadcast_to(end, segments.shape).tolist()
    return [Join(e, s, v if on_vertex else None, (x, y))
            for e, s, v, on_vertex, (x, y) in zip(ends, segments.tolist(), vertex.tolist(), snap.tolist(), p.tolist())]
