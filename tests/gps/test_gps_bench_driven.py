"""bench/gps.py's ``rec.on`` denominator: a deleted way counts as driven on only with traffic of its own."""
from __future__ import annotations

import numpy as np
from shapely.geometry import LineString

from bench.gps import driven_on
from osmgap.core.traces import from_arrays


def _trips(lanes: list[float], per_lane: int, step_m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mechanics only (no claim about roads): ``per_lane`` trips along y = lane, a fix every ``step_m``."""
    xs, ys, trips = [], [], []
    for k, (lane, n) in enumerate((lane, n) for lane in lanes for n in range(per_lane)):
        x = np.arange(0.0, 300.0, step_m) + n  # each trip's fixes at other places along the way
        xs.append(x)
        ys.append(np.full(len(x), lane))
        trips.append(np.full(len(x), k))
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(trips)


def test_a_way_beside_a_busy_kept_road_is_not_driven_on():
    kept = np.asarray([LineString([(0, 0), (300, 0)])], dtype=object)
    deleted = np.asarray([LineString([(0, 12), (300, 12)]), LineString([(0, 100), (300, 100)])], dtype=object)
    # traffic on the kept road (0.5 m off it) and on the far deleted way, a fix every 30 m per trip
    x, y, trip = _trips([0.5, 100.5], per_lane=3, step_m=30.0)
    traces = from_arrays(x, y, "EPSG:32616", trip=trip)
    assert driven_on(deleted, kept, traces, np.array([True, True])).tolist() == [False, True]
    # what the likelihood did not call driven stays out
    assert driven_on(deleted, kept, traces, np.array([True, False])).tolist() == [False, False]
    # one trip is not enough: a single receiver's path
    x, y, trip = _trips([100.5], per_lane=1, step_m=30.0)
    assert not driven_on(deleted, kept, from_arrays(x, y, "EPSG:32616", trip=trip), np.array([True, True])).any()
