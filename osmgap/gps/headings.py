"""Lone off-map fixes drawn along the way their trips drove, where other trips agree.

On sparse traces (a fix every 30-90 s, 300-900 m apart) a lone off-map fix is drawn as a disc of
the GPS error (osmgap.gps.evidence): it says where the vehicle was, not which way the road ran, so
the discs of the trips that drove one missing road overlap only where their fixes fell close
together, and a road driven by a handful of trips left scattered discs and no ridge. The fixes
before and after say which way the trip went: where the steps into and out of the fix run the same
way (the trip drove straight through, not round a corner), the road runs that way there. Such a fix
is drawn as a short segment along that heading where the lone fixes of at least two other trips
lie on its line ahead or behind, heading the same way; a car park's or a campus's scatter points
every way, and its fixes stay discs. Fixes osmgap.gps.fixlines drew as a line are not drawn again.
Measured on the real Chicago traces at 10-90 s (docs/gps.md, stop 50): recall of deleted roads up
at 60-90 s, precision kept, nothing drawn on the complete map.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import chain

import numpy as np
from scipy.spatial import cKDTree

from osmgap.core.traces import GpsTraces
from osmgap.gps.density import distinct

CHUNK = 4096  # fixes judged at once


@dataclass(frozen=True)
class HeadingParams:
    half_length_m: float = 30.0  # drawn this far either side of the fix: the next trip's fix on the road overlaps it
    max_bend_deg: float = 20.0  # the steps into and out of the fix this close in direction: driven through
    line_m: float = 12.0  # another trip's fix this close to the line lies on the same road ...
    # ... if it also lies this far ahead or behind along it: fixes that line up within 12 m across at
    # 20 m along lie along the heading to within 31 degrees, while those of a bus route that turned
    # twice between its fixes (a chord across a block) bunch where the route crossed the road
    min_along_m: float = 20.0
    max_turn_deg: float = 30.0  # and heads the same way (either direction) within this
    min_other_trips: int = 2  # one more trip agreeing is chance on a grid of streets; two are a road


@dataclass
class HeadedFixes:
    """Segments ((n, 2) start and end points) along the heading of each drawn fix, the trip of
    each, and per fix given whether it is drawn so (the others stay discs)."""

    start: np.ndarray
    end: np.ndarray
    trip: np.ndarray
    drawn: np.ndarray

    @classmethod
    def none(cls, fixes: int) -> HeadedFixes:
        """No segment: every one of ``fixes`` fixes stays a disc."""
        return cls(np.zeros((0, 2)), np.zeros((0, 2)), np.zeros(0, np.int64), np.zeros(fixes, bool))


def headed_fixes(traces: GpsTraces, fixes: np.ndarray, pieces: np.ndarray,
                 params: HeadingParams = HeadingParams()) -> HeadedFixes:
    """The lone off-map ``fixes`` (indices into ``traces``; ``pieces``: the trip piece of every
    fix, osmgap.gps.matching.trip_pieces) whose heading is known and shared (module docstring)."""
    heading, known = _headings(traces, fixes, pieces, params.max_bend_deg)
    drawn = known & _shared(traces.x[fixes], traces.y[fixes], traces.trip[fixes], heading, known, params)
    at = np.column_stack([traces.x[fixes], traces.y[fixes]])[drawn]
    reach = heading[drawn] * params.half_length_m
    return HeadedFixes(at - reach, at + reach, traces.trip[fixes][drawn], drawn)


def _headings(traces: GpsTraces, fixes: np.ndarray, pieces: np.ndarray, max_bend_deg: float,
              ) -> tuple[np.ndarray, np.ndarray]:
    """Per fix the unit vector from the fix before it to the one after, and whether it holds: both
    neighbours in its trip piece, and the step in and the step out at most ``max_bend_deg`` apart
    (the trip drove straight through; a route that turned between its fixes gives a chord across
    the corner, which the trips of one bus route share)."""
    n = len(traces)
    before, after = np.maximum(fixes - 1, 0), np.minimum(fixes + 1, n - 1)
    known = (before < fixes) & (after > fixes) & (pieces[before] == pieces[fixes]) & (pieces[after] == pieces[fixes])
    into = np.column_stack([traces.x[fixes] - traces.x[before], traces.y[fixes] - traces.y[before]])
    out = np.column_stack([traces.x[after] - traces.x[fixes], traces.y[after] - traces.y[fixes]])
    lengths = np.hypot(into[:, 0], into[:, 1]) * np.hypot(out[:, 0], out[:, 1])
    known &= lengths > 0
    cos_bend = np.einsum("ij,ij->i", into, out) / np.where(known, lengths, 1.0)
    known &= cos_bend >= np.cos(np.radians(max_bend_deg))
    chord = into + out
    span = np.hypot(chord[:, 0], chord[:, 1])
    return chord / np.where(known, span, 1.0)[:, None], known


def _shared(x: np.ndarray, y: np.ndarray, trip: np.ndarray, heading: np.ndarray, known: np.ndarray,
            params: HeadingParams) -> np.ndarray:
    """Per fix: the lone fixes of at least ``min_other_trips`` other trips lie on its line, ahead or
    behind (``min_along_m`` to two half lengths along it), with a known heading within
    ``max_turn_deg`` of its own. Judged as arrays, CHUNK fixes at a time (a busy road's fixes each
    have thousands of others in reach: all pairs at once would not fit)."""
    out = np.zeros(len(x), bool)
    mine = np.flatnonzero(known)
    if len(mine) <= params.min_other_trips:
        return out
    xy = np.column_stack([x[mine], y[mine]])
    tree = cKDTree(xy)
    reach = float(np.hypot(2 * params.half_length_m, params.line_m))
    min_cos = float(np.cos(np.radians(params.max_turn_deg)))
    base = int(trip.max(initial=0)) + 1
    for lo in range(0, len(mine), CHUNK):
        near = tree.query_ball_point(xy[lo:lo + CHUNK], reach)
        sizes = np.fromiter(map(len, near), np.int64, len(near))
        i = np.repeat(np.arange(lo, lo + len(near)), sizes)
        j = np.fromiter(chain.from_iterable(near), np.int64, int(sizes.sum()))
        u, d = heading[mine[i]], xy[j] - xy[i]
        along, across = np.abs(np.einsum("ij,ij->i", d, u)), np.abs(d[:, 0] * u[:, 1] - d[:, 1] * u[:, 0])
        agree = ((along >= params.min_along_m) & (along <= 2 * params.half_length_m) & (across <= params.line_m)
                 & (np.abs(np.einsum("ij,ij->i", heading[mine[j]], u)) >= min_cos) & (trip[mine[i]] != trip[mine[j]]))
        seen = distinct(i[agree] * base + trip[mine[j[agree]]].astype(np.int64)) // base  # (fix, other trip) once
        out[mine[lo:lo + len(near)]] = np.bincount(seen - lo, minlength=len(near)) >= params.min_other_trips
    return out
