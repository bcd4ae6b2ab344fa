"""Lines through the lone off-map fixes of sparse traces, where those of several trips line up.

On sparse traces each lone off-map fix is drawn as a disc of the GPS error (osmgap.gps.evidence):
the road ran somewhere inside it. On a short missing road the discs pile up into a blob as wide
as it is long (only the middle of a block lies farther than ``off_m`` from the streets at its
ends, so that is where its off-map fixes are), and a blob's skeleton is a stub that no road graph
keeps. The fixes themselves line up along the road, though: a cluster of them clearly longer
than wide is drawn as the line through it (its principal axis, over the fixes' extent), for the
distinct trips it holds, and only the fixes of clusters that do not line up stay discs.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree


@dataclass(frozen=True)
class FixLineParams:
    link_m: float = 16.0  # fixes this close are one cluster (2 sigma of a city receiver's error)
    min_trips: int = 2  # one vehicle's fixes line up along wherever it drove, road or car park
    min_fixes: int = 4  # a line needs points to lie along; two or three fixes are any shape
    min_elongation: float = 2.0  # spread along the axis over spread across it
    max_length_m: float = 100.0  # a longer cluster may bend with its road: its discs draw it


@dataclass
class FixLines:
    """Segments ((n, 2) start and end points) with the trips behind each (lists of trip ids), and
    per fix whether it is left to be drawn as a disc."""

    start: np.ndarray
    end: np.ndarray
    trips: list[np.ndarray]
    disc: np.ndarray

    @classmethod
    def none(cls, fixes: int) -> FixLines:
        """No line: every one of ``fixes`` fixes a disc."""
        return cls(np.zeros((0, 2)), np.zeros((0, 2)), [], np.ones(fixes, bool))


def fix_lines(x: np.ndarray, y: np.ndarray, trip: np.ndarray, params: FixLineParams = FixLineParams()) -> FixLines:
    """The lines through the clusters of fixes (x, y of ``trip``) that line up; the rest stay discs."""
    n = len(x)
    disc = np.ones(n, bool)
    starts: list[np.ndarray] = []
    ends: list[np.ndarray] = []
    owners: list[np.ndarray] = []
    if n >= params.min_fixes:
        xy = np.column_stack([x, y])
        pairs = cKDTree(xy).query_pairs(params.link_m, output_type="ndarray")
        links = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
        _, label = connected_components(links, directed=False)
        for members in np.split(np.argsort(label, kind="stable"), np.flatnonzero(np.diff(np.sort(label))) + 1):
            trips = np.unique(trip[members])
            if len(members) < params.min_fixes or len(trips) < params.min_trips:
                continue
            segment = _line_through(xy[members], params)
            if segment is None:
                continue
            starts.append(segment[0])
            ends.append(segment[1])
            owners.append(trips)
            disc[members] = False
    if not starts:
        return FixLines.none(n)
    return FixLines(np.array(starts), np.array(ends), owners, disc)


def _line_through(xy: np.ndarray, params: FixLineParams) -> np.ndarray | None:
    """The principal axis of ``xy`` over the points' extent along it ((2, 2)), or None when they do
    not line up or reach too far."""
    centre = xy.mean(axis=0)
    spread, axes = np.linalg.eigh(np.cov((xy - centre).T))
    along = axes[:, 1]
    if spread[1] <= 0 or np.sqrt(spread[1] / max(spread[0], 1e-9)) < params.min_elongation:
        return None
    t = (xy - centre) @ along
    if t.max() - t.min() > params.max_length_m:
        return None
    return np.vstack([centre + t.min() * along, centre + t.max() * along])
