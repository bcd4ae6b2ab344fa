"""GPS traces -> rasters on a metric grid: point count, Gaussian KDE (optionally log), distinct
trips, mean sampling interval and mean speed per pixel, and the road likelihood of coverage;
points and trips in a corridor along a line (``TrafficIndex``, for benches and tests).

Counts of raw points depend on how often receivers sample and how long buses stand at stops;
the number of distinct trips that drove through a place does not. So discovery reads trip
coverage: each trip's path (consecutive points joined where they are close enough to be on one
road) is drawn once, blurred by the GPS error, and summed over trips.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import shapely
from scipy import ndimage
from scipy.spatial import cKDTree
from shapely.geometry import LineString

from osmgap.core.datamodel import ProbabilityRaster
from osmgap.core.grid import Grid
from osmgap.core.traces import GpsTraces

BLOCK_POINTS = 500_000


@dataclass(frozen=True)
class DensityParams:
    sigma_m: float = 8.0  # GPS error of a consumer receiver in a city: 5-10 m
    max_gap_m: float = 150.0  # consecutive points farther apart may not be on one straight road
    trips_for_half: float = 2.0  # trips along a line that make it an even bet that a road is there


@dataclass
class GpsRasters:
    """Per-pixel rasters on ``grid`` (float32, NaN where a mean has no sample)."""

    grid: Grid
    count: np.ndarray  # raw points per pixel
    kde: np.ndarray  # points per m2, Gaussian kernel of sigma_m (log1p of it when log=True)
    trips: np.ndarray  # distinct trips whose path crosses the pixel
    interval_s: np.ndarray  # mean seconds since the previous point of the same trip
    speed_mps: np.ndarray  # mean speed (recorded, else derived from consecutive points)


def pixel_index(grid: Grid, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flat pixel index of each point on ``grid`` and a mask of the points inside it."""
    t = grid.transform
    col = np.floor((x - t.c) / t.a).astype(np.int64)
    row = np.floor((y - t.f) / t.e).astype(np.int64)
    inside = (col >= 0) & (col < grid.width) & (row >= 0) & (row < grid.height)
    return row * grid.width + col, inside


def density_rasters(traces: GpsTraces, grid: Grid, params: DensityParams = DensityParams(),
                    log: bool = False) -> GpsRasters:
    """All rasters of ``traces`` (already in ``grid.crs``) on ``grid``."""
    n = grid.width * grid.height
    idx, inside = pixel_index(grid, traces.x, traces.y)
    count = np.bincount(idx[inside], minlength=n).astype(np.float32)
    px = abs(grid.transform.a)
    kde = ndimage.gaussian_filter(count, params.sigma_m / px, mode="constant") / np.float32(px * px)
    if log:
        kde = np.log1p(kde)
    return GpsRasters(grid, count.reshape(grid.height, grid.width), kde.reshape(grid.height, grid.width),
                      trip_counts(traces, grid, params), _pixel_mean(traces.intervals(), idx, inside, grid),
                      _pixel_mean(traces.speeds(), idx, inside, grid))


def _pixel_mean(values: np.ndarray, idx: np.ndarray, inside: np.ndarray, grid: Grid) -> np.ndarray:
    ok = inside & np.isfinite(values)
    n = grid.width * grid.height
    total = np.bincount(idx[ok], weights=values[ok], minlength=n)
    k = np.bincount(idx[ok], minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(k > 0, total / k, np.nan).astype(np.float32).reshape(grid.height, grid.width)


def densify(traces: GpsTraces, step_m: float, max_gap_m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x, y, trip of points every ``step_m`` along each trip's path (metric CRS), joining
    consecutive points no farther than ``max_gap_m`` apart; the points themselves are included."""
    d = traces.step_lengths()
    joined = np.flatnonzero(np.isfinite(d) & (d <= max_gap_m) & (d > step_m))
    extra = np.ceil(d[joined] / step_m).astype(np.int64) - 1  # points strictly between the two
    owner = np.repeat(joined, extra)
    first = np.cumsum(extra) - extra
    k = np.arange(len(owner)) - np.repeat(first, extra) + 1
    frac = k / np.repeat(extra + 1, extra)
    x = traces.x[owner - 1] + frac * (traces.x[owner] - traces.x[owner - 1])
    y = traces.y[owner - 1] + frac * (traces.y[owner] - traces.y[owner - 1])
    return (np.concatenate([traces.x, x]), np.concatenate([traces.y, y]),
            np.concatenate([traces.trip, traces.trip[owner]]))


def trip_counts(traces: GpsTraces, grid: Grid, params: DensityParams = DensityParams(),
                trip_of: np.ndarray | None = None) -> np.ndarray:
    """Distinct trips whose densified path crosses each pixel (float32, H x W). With ``trip_of``,
    ``traces.trip`` numbers paths and ``trip_of[path]`` is the trip each belongs to: pieces of one
    trip are drawn apart but count once.

    Densified paths hold ~5x the points; they are made BLOCK_POINTS points at a time (blocks
    overlap by one point so no step is lost) and only their distinct (pixel, trip) keys are kept,
    so memory follows the traffic's footprint, not the point count."""
    px = abs(grid.transform.a)
    owner = np.arange(int(traces.trip.max()) + 1 if len(traces) else 1) if trip_of is None else np.asarray(trip_of)
    trips = np.int64(owner.max()) + 1 if len(owner) else np.int64(1)
    traces, owner = _reaching(traces, owner, grid, params.max_gap_m + px)
    keys = []
    for start in range(0, len(traces), BLOCK_POINTS):
        block = traces.take(slice(max(0, start - 1), start + BLOCK_POINTS))
        x, y, trip = densify(block, px / 2, params.max_gap_m)
        idx, inside = pixel_index(grid, x, y)
        keys.append(distinct(idx[inside] * trips + owner[trip[inside]]))
    pairs = distinct(np.concatenate(keys)) if keys else np.zeros(0, np.int64)
    return np.bincount(pairs // trips, minlength=grid.width * grid.height).astype(np.float32).reshape(
        grid.height, grid.width)


def _reaching(traces: GpsTraces, owner: np.ndarray, grid: Grid, reach_m: float) -> tuple[GpsTraces, np.ndarray]:
    """The points that can put a path on ``grid`` and the trip of each path (``owner``): those
    within ``reach_m`` (the longest step joined, and a pixel) of its bounds, each path cut where
    points were left out. A step from a point left out is longer than ``reach_m`` to any pixel,
    so it is never joined or never reaches one: the counts on ``grid`` are the same, and a tile
    of a large area densifies only the traffic near it, not all of it."""
    minx, miny, maxx, maxy = grid.bounds
    keep = ((traces.x >= minx - reach_m) & (traces.x <= maxx + reach_m)
            & (traces.y >= miny - reach_m) & (traces.y <= maxy + reach_m))
    if keep.all():
        return traces, owner
    idx = np.flatnonzero(keep)
    starts = np.r_[True, (np.diff(idx) != 1) | (traces.trip[idx[1:]] != traces.trip[idx[:-1]])] if len(idx) else keep[:0]
    path = (np.cumsum(starts) - 1).astype(np.int32)
    return replace(traces.take(idx), trip=path), owner[traces.trip[idx[starts]]]


def fix_discs(x: np.ndarray, y: np.ndarray, grid: Grid, radius_m: float, params: DensityParams = DensityParams(),
              ) -> np.ndarray:
    """Per pixel, the fixes (x, y) within ``radius_m``, in :func:`trip_counts`'s units: divided by
    the line-to-peak factor that :func:`road_likelihood` multiplies by, so that where ``k`` discs
    overlap it reads ``k`` trips. Each fix must be a different trip's, or lie farther than
    2 x ``radius_m`` from its trip's others (then no two discs of a trip overlap)."""
    if not len(x):  # dense traces have none: no convolution over the whole grid
        return np.zeros((grid.height, grid.width), np.float32)
    px = abs(grid.transform.a)
    idx, inside = pixel_index(grid, x, y)
    fixes = np.bincount(idx[inside], minlength=grid.width * grid.height).astype(np.float32).reshape(
        grid.height, grid.width)
    r = int(round(radius_m / px))
    dy, dx = np.mgrid[-r:r + 1, -r:r + 1]
    discs = ndimage.convolve(fixes, (dx ** 2 + dy ** 2 <= r ** 2).astype(np.float32), mode="constant")
    return discs / (math.sqrt(2 * math.pi) * params.sigma_m / px)


def distinct(keys: np.ndarray) -> np.ndarray:
    """The distinct values of ``keys``, sorted (np.unique is ~100x slower than a plain sort on
    millions of int64 here: numpy 2 sorts them with a different kernel)."""
    keys = np.sort(keys)
    return keys[np.r_[True, keys[1:] != keys[:-1]]] if len(keys) else keys


def road_likelihood(trips: np.ndarray, grid: Grid, params: DensityParams = DensityParams()) -> ProbabilityRaster:
    """How likely each pixel is on a road, from trip coverage.

    The trip raster is blurred by the GPS error and scaled so that one trip's path scores ~1 on
    its line (a Gaussian across a 1-pixel line peaks at px / (sqrt(2 pi) sigma)); ``n`` trips
    along a line then give p = 1 - 2^(-n / trips_for_half): 0.5 at trips_for_half.
    """
    return likelihood(blurred_trips(trips, grid, params), grid, params)


def likelihood(blurred: np.ndarray, grid: Grid, params: DensityParams = DensityParams()) -> ProbabilityRaster:
    """:func:`road_likelihood` of trips already blurred (:func:`blurred_trips`)."""
    prob = 1.0 - np.exp2(-blurred / params.trips_for_half)
    return ProbabilityRaster(prob.astype(np.float32), grid.transform, grid.crs)


def ridge_core(blurred: np.ndarray, prob: ProbabilityRaster, grid: Grid, share: float,
               reach_m: float) -> ProbabilityRaster:
    """``prob`` kept only where the ``blurred`` trips (:func:`blurred_trips`) reach ``share`` of
    their most within ``reach_m`` (0 elsewhere): the ridge of the traffic, not its skirt. The likelihood saturates (50
    trips along a line still give p >= 0.5 two blurs and a disc away), so a busy short road drew a
    blob as wide as it was long, whose skeleton was a stub, and a busy road's skirt reached
    across the streets beside it. At half the local maximum the core is the traffic's
    full width at half maximum, the same for 3 trips or 300."""
    size = 2 * int(round(reach_m / abs(grid.transform.a))) + 1
    core = blurred >= share * ndimage.maximum_filter(blurred, size=size)
    return ProbabilityRaster(np.where(core, prob.prob, 0.0).astype(np.float32), prob.transform, prob.crs)


def blurred_trips(trips: np.ndarray, grid: Grid, params: DensityParams = DensityParams()) -> np.ndarray:
    """The trip raster blurred by the GPS error, in trips along a line (see :func:`road_likelihood`)."""
    sigma_px = params.sigma_m / abs(grid.transform.a)
    return ndimage.gaussian_filter(trips, sigma_px, mode="constant") * (math.sqrt(2 * math.pi) * sigma_px)


@dataclass
class Traffic:
    points: int
    trips: int
    length_m: float

    @property
    def per_100m(self) -> float:
        return 100.0 * self.points / max(self.length_m, 1.0)


class TrafficIndex:
    """GPS points (metric) indexed for corridor counts: points within ``corridor_m`` of points
    every ``step_m`` along a line (a KD-tree over the point arrays; no per-point objects)."""

    def __init__(self, traces: GpsTraces, corridor_m: float = 15.0, step_m: float = 5.0):
        self.traces = traces
        self.corridor_m, self.step_m = corridor_m, step_m
        self.tree = cKDTree(np.column_stack([traces.x, traces.y])) if len(traces) else None

    def along(self, line: LineString) -> Traffic:
        """Points and distinct trips within the corridor of ``line``."""
        if self.tree is None or line.length == 0:
            return Traffic(0, 0, line.length)
        n = max(2, int(np.ceil(line.length / self.step_m)) + 1)
        xy = shapely.get_coordinates(shapely.line_interpolate_point(line, np.linspace(0, line.length, n)))
        hits = self.tree.query_ball_point(xy, self.corridor_m, return_sorted=False)
        idx = distinct(np.concatenate([np.asarray(h, np.int64) for h in hits]))
        return Traffic(len(idx), len(distinct(self.traces.trip[idx])), line.length)
