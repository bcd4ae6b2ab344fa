"""What the map cannot explain: the evidence of missing roads left after map matching.

A trace along a mapped road is explained by it, however sparse or noisy; only the rest is evidence
(Chao et al., "Trajectories know where map is wrong"):

- *off-map runs*: consecutive fixes with no road within the GPS error (unmatched, or farther than
  ``off_m`` from their matched position); the run is drawn from the last fix on the map to the next
  one, so it starts and ends on the roads it joins. A lone off-map fix between two close ones is
  a receiver's outlier (1 % of fixes lie 25 m off in a city, and along a busy road the outliers of
  hundreds of trips would line up into a phantom road beside it); only a sparse receiver, whose
  neighbouring fixes lie ``single_fix_m`` apart, may see a short road once;
- *lone off-map fixes*: on sparse traces the steps into and out of an off-map fix are too long
  to draw (``chord_max_m``), but the fix itself lay on the road the vehicle drove: it is drawn as a
  disc of the GPS error (``fix_reach_m``), and where the lone fixes of several trips line up, the
  discs make the road (Chicago bench, 60-90 s: precision 0.45-0.56 -> 0.77-0.94);
- *detours*: two consecutive fixes whose matched route is much longer than the straight line
  between them (``detour_ratio`` and ``detour_min_m``), or that no route within the matcher's
  limit joins (where that limit holds ``detour_ratio`` times the step: a step longer than that may
  have a fair route the table never looked up): the map forces a way round that the vehicle did
  not drive. Their straight chord is
  the evidence where it is short enough (``chord_max_m``) to follow a road; a longer one cannot say
  where the road runs, only which two places it connects (osmgap.gps.connections).

``off_m`` follows the traces' own noise: sigma is read from the median distance of matched fixes to
their roads (0.674 sigma for a Gaussian across the road), and a fix counts as off only beyond
``off_sigmas`` of it (never under ``off_m``), so noisier receivers do not paint roads beside roads.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from osmgap.core.traces import GpsTraces
from osmgap.gps.matching import Matches

HALF_NORMAL_MEDIAN = 0.674  # median of |N(0, 1)|


@dataclass(frozen=True)
class EvidenceParams:
    off_m: float = 25.0  # 2.5x a city receiver's error: a fix this far from its road is not on it
    off_sigmas: float = 3.5
    detour_ratio: float = 2.0  # routed / straight: a turn between two fixes costs up to sqrt(2); twice is a way round
    detour_min_m: float = 150.0  # a shorter detour is a turn at a junction or round a block corner, not a missing road
    single_fix_m: float = 60.0  # a lone off-map fix counts only where its neighbours are this far apart (sparse)
    min_share: float = 0.2  # of the trips on the mapped roads nearby that must leave the map alike
    share_reach_m: float = 40.0
    # a longer chord cuts corners: it says where a road leads, not where it runs. Across a right-angle
    # turn a chord of L passes up to 0.35 L from the corner: 53 m at 150 m, 35 m at 100 m (Chicago at
    # 30 s, three seeds: precision 0.69-0.72 -> 0.81-0.96, recall of driven length 0.33-0.45 -> 0.23-0.30)
    chord_max_m: float = 100.0
    fix_reach_m: float = 16.0  # 2 sigma of a city receiver's error: the road a lone off-map fix was on runs this close


@dataclass
class Unexplained:
    """Fix pairs (``a`` -> ``b``, indices into the traces) the map cannot explain, with the trip
    of each: ``off`` pairs are steps into, within or out of off-map runs; ``detour`` pairs are
    consecutive matched fixes the map makes a vehicle drive round (``detour_m`` extra, NaN where no
    route joins them)."""

    off_a: np.ndarray
    off_b: np.ndarray
    detour_a: np.ndarray
    detour_b: np.ndarray
    detour_m: np.ndarray
    off_m: float
    off: np.ndarray  # per fix: off the map, in a run that counts

    def chords(self, traces: GpsTraces, max_m: float) -> tuple[np.ndarray, np.ndarray]:
        """(a, b) of every evidence step no longer than ``max_m``: off-map steps and short detours."""
        a = np.concatenate([self.off_a, self.detour_a])
        b = np.concatenate([self.off_b, self.detour_b])
        d = np.hypot(traces.x[b] - traces.x[a], traces.y[b] - traces.y[a])
        return a[d <= max_m], b[d <= max_m]


    def lone_fixes(self, traces: GpsTraces, max_m: float) -> np.ndarray:
        """Indices of the off-map fixes that no evidence step of at most ``max_m`` reaches: on
        sparse traces (a fix every 300-900 m) the steps are too long to draw, but each fix still
        lay on the road the vehicle drove, within the GPS error."""
        a, b = self.chords(traces, max_m)
        drawn = np.zeros(len(self.off), bool)
        drawn[a] = drawn[b] = True
        return np.flatnonzero(self.off & ~drawn)


def noise_sigma(matches: Matches) -> float:
    """The traces' GPS error (sigma, m), from the median distance of matched fixes to their roads."""
    offsets = matches.offset_m[matches.matched & np.isfinite(matches.offset_m)]
    return float(np.median(offsets)) / HALF_NORMAL_MEDIAN if len(offsets) else 0.0


def off_threshold(matches: Matches, params: EvidenceParams = EvidenceParams()) -> float:
    """Distance from the matched road beyond which a fix is off the map, from the traces' noise."""
    return max(params.off_m, params.off_sigmas * noise_sigma(matches))


def unexplained(traces: GpsTraces, matches: Matches, params: EvidenceParams = EvidenceParams(),
                known: BaseGeometry | None = None) -> Unexplained:
    """The off-map steps and detours of ``traces`` (metric) given their ``matches``. Only steps with
    both fixes inside ``known`` (where the map was loaded; None: everywhere) count: past the edge of
    an extract every fix is off the map."""
    off_m = off_threshold(matches, params)
    off = ~matches.matched | (matches.offset_m > off_m)
    inside = np.ones(len(traces), bool) if known is None else shapely.contains_xy(known, traces.x, traces.y)
    same = np.r_[False, matches.piece[1:] == matches.piece[:-1]]  # step i-1 -> i within one trip piece
    same[1:] &= inside[1:] & inside[:-1]
    off &= _real_runs(traces, off, same, params.single_fix_m)
    i = np.flatnonzero(same)
    touches_off = off[i] | off[i - 1]
    off_a, off_b = i[touches_off] - 1, i[touches_off]
    both_on = ~off[i] & ~off[i - 1]
    straight = np.hypot(traces.x[i] - traces.x[i - 1], traces.y[i] - traces.y[i - 1])
    route = matches.route_m[i]
    # no route within the limit shows a detour only where a route up to detour_ratio times the step fits in it
    no_route = both_on & ~matches.routed[i] & (params.detour_ratio * straight <= matches.limit_m)
    long_way = both_on & (route > params.detour_ratio * straight) & (route - straight > params.detour_min_m)
    pick = no_route | long_way
    return Unexplained(off_a, off_b, i[pick] - 1, i[pick], np.where(no_route, np.nan, route - straight)[pick], off_m,
                       off & inside)


def _real_runs(traces: GpsTraces, off: np.ndarray, same: np.ndarray, single_fix_m: float) -> np.ndarray:
    """Per fix: off the map and in a run that is no lone outlier (see the module docstring). A
    run's size is its places, not its fixes: a fix written twice (merged or re-exported logs
    repeat them) is one place, and a lone outlier written twice is still a lone outlier."""
    if not off.any():  # every fix on the map: no run to judge
        return off.copy()
    in_run = same & np.r_[False, off[:-1]]  # continues the off-map run of the fix before it
    start = off & ~in_run
    run = np.cumsum(start) - 1
    again = in_run & (np.diff(traces.x, prepend=np.nan) == 0) & (np.diff(traces.y, prepend=np.nan) == 0)
    runs = int(run.max()) + 1
    places = np.bincount(run[off], weights=(~again[off]).astype(float), minlength=runs)
    fixes = np.bincount(run[off], minlength=runs)
    first = np.flatnonzero(start)  # each run's first fix, in run order
    lone = places[run[first]] == 1
    a, last = first[lone], first[lone] + fixes[run[first]][lone] - 1
    b = np.minimum(last + 1, len(off) - 1)
    prev_ok = same[a]
    next_ok = (last + 1 < len(off)) & same[b]
    span = np.hypot(traces.x[b] - traces.x[a - 1], traces.y[b] - traces.y[a - 1])
    sparse = prev_ok & next_ok & (span >= single_fix_m)
    keep = off.copy()
    keep[np.isin(run, run[a[~sparse]]) & off] = False
    return keep
