"""GPS points as flat numpy arrays, and the edits benchmarks make to them.

One array per attribute, one element per point, points of a trip contiguous and in time order:
the layout every later stage vectorises over (a trip boundary is where ``trip`` changes).
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

import numba
import numpy as np

from osmgap.core.aoi import crs_transformer

# fixes turned into shapely geometries at a time: each point holds ~0.2 KB while it lives, so
# millions at once cost gigabytes (1.9 million fixes, four points each: +700 MB of peak memory)
SHAPELY_BLOCK = 100_000


@dataclass
class GpsTraces:
    """Points of one or more trips in ``crs``.

    ``t`` is unix seconds (NaN when the source has no time), ``speed`` m/s as recorded (NaN when
    absent), ``bearing`` degrees (NaN when absent), ``trip`` an int32 id, unique per trip.
    """

    x: np.ndarray
    y: np.ndarray
    t: np.ndarray
    speed: np.ndarray
    bearing: np.ndarray
    trip: np.ndarray
    crs: Any

    def __len__(self) -> int:
        return len(self.x)

    @property
    def trips(self) -> int:
        return int(np.count_nonzero(np.bincount(self.trip))) if len(self) else 0  # ids are small ints

    def take(self, mask_or_index: np.ndarray | slice) -> GpsTraces:
        """The points selected by a boolean mask or an index array (order kept); a field that is one
        value seen n times (from_arrays' missing ones) stays one value."""
        n = _selected_count(mask_or_index, len(self))
        return replace(self, **{f.name: _pick(getattr(self, f.name), mask_or_index, n) for f in _ARRAYS})

    def to_crs(self, crs: Any) -> GpsTraces:
        x, y = crs_transformer(self.crs, crs).transform(self.x, self.y)
        return replace(self, x=np.asarray(x, float), y=np.asarray(y, float), crs=crs)

    def within(self, bounds: tuple[float, float, float, float]) -> GpsTraces:
        minx, miny, maxx, maxy = bounds
        return self.take((self.x >= minx) & (self.x <= maxx) & (self.y >= miny) & (self.y <= maxy))

    def crop(self, bounds: tuple[float, float, float, float]) -> GpsTraces:
        """The points within ``bounds``, each trip cut into pieces (trips of their own, renumbered
        0, 1, ...) where it left them: the fixes either side of a stretch outside are no step the
        vehicle made, and kept as consecutive fixes of one trip they would ask the matcher to
        explain a straight chord across the cut-out part."""
        minx, miny, maxx, maxy = bounds
        kept = np.flatnonzero((self.x >= minx) & (self.x <= maxx) & (self.y >= miny) & (self.y <= maxy))
        starts = np.ones(len(kept), bool)
        starts[1:] = (np.diff(kept) != 1) | (self.trip[kept[1:]] != self.trip[kept[:-1]])
        return replace(self.take(kept), trip=(np.cumsum(starts) - 1).astype(np.int32))

    def same_trip_as_previous(self) -> np.ndarray:
        """True where a point continues the trip of the point before it."""
        out = np.zeros(len(self), bool)
        out[1:] = self.trip[1:] == self.trip[:-1]
        return out

    def intervals(self) -> np.ndarray:
        """Seconds since the trip's previous point (NaN at a trip's first point or without time)."""
        dt = np.full(len(self), np.nan)
        cont = self.same_trip_as_previous()
        dt[1:] = np.where(cont[1:], self.t[1:] - self.t[:-1], np.nan)
        return dt

    def steps_back_in_time(self) -> tuple[int, int]:
        """How many points are earlier than the point before them in their trip (rows out of
        order, or a receiver's clock reset), and of how many steps with a time."""
        dt = self.intervals()
        return int((dt < 0).sum()), int(np.isfinite(dt).sum())

    def step_lengths(self) -> np.ndarray:
        """Metres since the trip's previous point (NaN at a trip's first point); metric CRS only."""
        d = np.full(len(self), np.nan)
        cont = self.same_trip_as_previous()
        d[1:] = np.where(cont[1:], np.hypot(np.diff(self.x), np.diff(self.y)), np.nan)
        return d

    def speeds(self) -> np.ndarray:
        """Recorded speed where there is one, else distance over time from the previous point."""
        dt = self.intervals()
        with np.errstate(invalid="ignore", divide="ignore"):
            derived = np.where(dt > 0, self.step_lengths() / dt, np.nan)
        return np.where(np.isfinite(self.speed), self.speed, derived)


_ARRAYS = [f for f in fields(GpsTraces) if f.name != "crs"]


def _constant(a: np.ndarray) -> bool:
    """Is ``a`` one value seen n times (a view with no stride, as from_arrays gives a missing field)?"""
    return a.ndim == 1 and len(a) > 0 and a.strides == (0,)


def _pick(a: np.ndarray, selection: np.ndarray | slice, n: int) -> np.ndarray:
    return np.broadcast_to(a[:1], (n,)) if _constant(a) else a[selection]


def _selected_count(selection: np.ndarray | slice, n: int) -> int:
    if isinstance(selection, slice):
        return len(range(*selection.indices(n)))
    selection = np.asarray(selection)
    return int(np.count_nonzero(selection)) if selection.dtype == bool else len(selection)


def _joined(arrays: list[np.ndarray]) -> np.ndarray:
    """The arrays end to end; if every non-empty one is the same missing value (NaN seen n times),
    that value seen as often, not an array of it (24 bytes a fix for the three fields a CSV of
    millions of fixes often lacks)."""
    filled = [a for a in arrays if len(a)]
    if filled and all(_constant(a) and np.isnan(a[0]) for a in filled):
        return np.broadcast_to(filled[0][:1], (sum(len(a) for a in arrays),))
    return np.concatenate(arrays)


def concat(parts: list[GpsTraces], renumber: bool = True) -> GpsTraces:
    """Traces of several sources as one; trip ids are renumbered so they stay unique, unless
    the parts already share one numbering (chunks of one file)."""
    if not parts:
        raise ValueError("no traces to concatenate")
    if len(parts) == 1:  # nothing to renumber or join: no copy of a file's millions of fixes
        return parts[0]
    offsets = np.cumsum([0] + [int(p.trip.max()) + 1 if len(p) else 0 for p in parts[:-1]]) if renumber else [0] * len(parts)
    arrays = {f.name: _joined([getattr(p, f.name) for p in parts]) for f in _ARRAYS}
    arrays["trip"] = np.concatenate([p.trip + np.int32(o) for p, o in zip(parts, offsets)]).astype(np.int32)
    return GpsTraces(**arrays, crs=parts[0].crs)


def from_arrays(x: np.ndarray, y: np.ndarray, crs: Any, t: np.ndarray | None = None, trip: np.ndarray | None = None,
                speed: np.ndarray | None = None, bearing: np.ndarray | None = None) -> GpsTraces:
    """Traces from bare arrays; what is not given is NaN (one trip when ``trip`` is None), as one
    read-only value seen n times: the paths GPS discovery draws number millions of points, and
    three arrays of NaN took 24 bytes a point."""
    n = len(x)
    nan = np.broadcast_to(np.float64(np.nan), (n,))
    return GpsTraces(np.asarray(x, float), np.asarray(y, float),
                     nan if t is None else np.asarray(t, float),
                     nan if speed is None else np.asarray(speed, float),
                     nan if bearing is None else np.asarray(bearing, float),
                     np.zeros(n, np.int32) if trip is None else np.asarray(trip, np.int32), crs)


# --- edits for benchmarks and augmentation (Sun et al., CVPR 2019) --------------------------


def keep_trips(traces: GpsTraces, share: float, seed: int = 0) -> GpsTraces:
    """A random ``share`` of the trips, whole: fewer vehicles, same sampling."""
    ids = np.flatnonzero(np.bincount(traces.trip))
    rng = np.random.default_rng(seed)
    kept = rng.choice(ids, size=max(1, int(round(share * len(ids)))), replace=False)
    return traces.take(np.isin(traces.trip, kept))


def resample(traces: GpsTraces, interval_s: float) -> GpsTraces:
    """Each trip's first point, then every point at least ``interval_s`` after the last one
    kept: a receiver logging less often."""
    if not np.isfinite(traces.t).all():
        raise ValueError("resampling needs a time on every point")
    return traces.take(_resample_mask(traces.t, traces.same_trip_as_previous(), float(interval_s)))


@numba.njit(cache=True)
def _resample_mask(t: np.ndarray, continues: np.ndarray, interval_s: float) -> np.ndarray:
    keep = np.zeros(len(t), np.bool_)
    last = 0.0
    for i in range(len(t)):
        if not continues[i] or t[i] - last >= interval_s:
            keep[i] = True
            last = t[i]
    return keep


def add_noise(traces: GpsTraces, sigma_m: float, seed: int = 0) -> GpsTraces:
    """Independent Gaussian noise of ``sigma_m`` metres on each coordinate (metric CRS)."""
    rng = np.random.default_rng(seed)
    return replace(traces, x=traces.x + rng.normal(0, sigma_m, len(traces)),
                   y=traces.y + rng.normal(0, sigma_m, len(traces)))
