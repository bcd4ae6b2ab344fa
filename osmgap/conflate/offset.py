"""The shift between the evidence (imagery prediction, candidate lines) and OSM, by cross-correlation.

Imagery is often 5-10 m off OSM, and a candidate set traced from such imagery carries the same
shift. Rasterized OSM (osmgap.graph.rasterize, per-class widths) and the evidence raster are
cross-correlated by FFT over a window of lags; the peak, refined to sub-pixel by a parabola
through its neighbours, is the shift. Large areas are measured on the windows with the most OSM
road, and their correlation surfaces summed, so the cost stays bounded.

Convention: ``east_m``/``north_m`` is where the evidence lies relative to OSM; subtracting it
from the evidence aligns it.

A wrong offset moves every piece of evidence, so it is applied only on evidence that pins it
down; otherwise it is reported as not measured, with the reason:
- enough road: at least MIN_EVIDENCE_M of OSM road that the evidence shows at the shift, of it
  at least MIN_CROSS_M running across the main direction (roads in one direction only leave
  the shift along them free: a ridge, not a peak);
- a clear peak: it stands above the surface around it (``contrast``), the surface falls away
  from it in every direction (``sharpness``), no other local maximum comes near its height
  (``second_peak``: repeated street patterns), and it lies inside the lag window.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import cast

import geopandas as gpd
import numpy as np
import shapely
import shapely.affinity
from affine import Affine
from scipy import fft, ndimage
from shapely.geometry import box

from osmgap.core.grid import Grid
from osmgap.graph.rasterize import rasterize_roads

MIN_CONTRAST = 0.3  # (peak - median of the lag window) / peak; flat surfaces say nothing
MIN_ROAD_PIXELS = 200  # per raster, summed over windows
MIN_EVIDENCE_M = 400.0  # OSM road the evidence confirms at the shift: a few blocks of streets, twice what fooled it
MIN_CROSS_M = 100.0  # of it, length across the main direction (the orientation tensor's smaller eigenvalue)
MIN_SHARPNESS = 0.15  # share of the peak's height (above the median) lost SHARP_RADIUS_M away, in every direction
SHARP_RADIUS_M = 10.0  # half the widest road class (motorway, 20 m): a crossing's peak has fallen by then
MAX_SECOND_PEAK = 0.8  # another local maximum this high (share of the peak's height) makes the shift ambiguous
PEAK_CLEARANCE_M = 3.0  # local maxima nearer the peak than this are its own shoulders
SUPPORT_STEP_M = 2.0  # OSM is checked against the evidence every this many metres
SUPPORT_SLACK_M = 1.5  # evidence this near the shifted OSM point confirms it (pixel and vertex placement)
MIN_RUN_M = 25.0  # evidence must run along an OSM way this far: crossing a road (<= 20 m wide) confirms nothing
WINDOW_PX = 1024
MAX_WINDOWS = 6

# (window grid) -> evidence raster on that grid, float32
EvidenceRaster = Callable[[Grid], np.ndarray]


@dataclass(frozen=True)
class Offset:
    east_m: float = 0.0  # the correlation peak, applied or not
    north_m: float = 0.0
    contrast: float = 0.0
    applied: bool = False
    reason: str = "not estimated"
    peaked: bool = False  # a correlation surface was computed: the fields below mean something
    evidence_m: float = 0.0  # OSM road the evidence confirms at the peak's shift
    cross_m: float = 0.0  # of it, across the main direction
    sharpness: float = 0.0
    second_peak: float = 0.0

    @property
    def magnitude_m(self) -> float:
        return float(np.hypot(self.east_m, self.north_m))

    def summary(self) -> dict:
        """For summary.json: the offset when measured (and so applied), else None and why not;
        the peak's figures whenever one was computed. Finite numbers only (valid JSON)."""
        measured = {"east_m": _num(self.east_m, 2), "north_m": _num(self.north_m, 2),
                    "magnitude_m": _num(self.magnitude_m, 2)}
        out = {"measured": self.applied, "applied": self.applied, "reason": self.reason,
               **(measured if self.applied else dict.fromkeys(measured))}
        if self.peaked:
            out["peak"] = {**measured, "contrast": _num(self.contrast, 3), "sharpness": _num(self.sharpness, 3),
                           "second_peak": _num(self.second_peak, 3), "evidence_m": _num(self.evidence_m, 1),
                           "cross_m": _num(self.cross_m, 1)}
        return out

    @property
    def correction(self) -> tuple[float, float]:
        """The translation that moves the evidence onto OSM (zero when not applied)."""
        return (-self.east_m, -self.north_m) if self.applied else (0.0, 0.0)


def _num(value: float, digits: int) -> float | None:
    return round(float(value), digits) if np.isfinite(value) else None


@dataclass(frozen=True)
class _Peak:
    east_m: float
    north_m: float
    contrast: float
    sharpness: float
    second_peak: float
    at_edge: bool


def cross_correlation_shift(evidence: np.ndarray, reference: np.ndarray, max_lag: int) -> tuple[np.ndarray, float]:
    """Correlation of ``evidence`` against ``reference`` for lags |dy|,|dx| <= max_lag: a
    (2*max_lag+1)^2 surface whose centre is zero lag; entry [max_lag+dy, max_lag+dx] is the score
    of "evidence is reference moved dy rows down and dx columns right". Also returns the
    reference's pixel sum (how much road the window had)."""
    h, w = evidence.shape
    shape = (fft.next_fast_len(h + max_lag), fft.next_fast_len(w + max_lag))
    e = evidence - evidence.mean()  # a uniform background must not favour small lags
    spectrum = fft.rfft2(e, shape) * np.conj(fft.rfft2(reference, shape))
    corr = fft.irfft2(spectrum, shape)
    rows = np.r_[shape[0] - max_lag:shape[0], 0:max_lag + 1]
    cols = np.r_[shape[1] - max_lag:shape[1], 0:max_lag + 1]
    # circular index -k is a lag of -k; the padding keeps wrapped-around pixels out of the sum
    return corr[np.ix_(rows, cols)], float(reference.sum())


def lines_raster(ways: gpd.GeoDataFrame) -> EvidenceRaster:
    """Evidence from lines with a ``highway`` column, rasterized like OSM (per-class widths),
    only the lines that reach each window."""
    index = ways.sindex

    def read(window: Grid) -> np.ndarray:
        near = ways.iloc[index.query(box(*window.bounds).buffer(50.0))]
        return rasterize_roads(near, window)
    return read


def estimate(evidence: EvidenceRaster, osm_ways: gpd.GeoDataFrame, grid: Grid,
             max_offset_m: float) -> Offset:
    """The offset of the evidence against ``osm_ways`` over ``grid`` (metric CRS, ~1 m pixels);
    applied only when the evidence pins it down (module docstring)."""
    if len(osm_ways) == 0:
        return Offset(reason="no OSM roads to compare with")
    osm_ways = osm_ways.to_crs(grid.crs)
    reference = lines_raster(osm_ways)
    res = abs(grid.transform.a)
    max_lag = max(1, int(np.ceil(max_offset_m / res)))
    total, road_px, evid_px, seen = None, 0.0, 0.0, []
    for window in _busiest_windows(osm_ways, grid):
        ref = reference(window).astype(np.float32)
        ev = np.nan_to_num(evidence(window).astype(np.float32))  # nodata says nothing
        surface, n = cross_correlation_shift(ev, ref, max_lag)
        total = surface if total is None else total + surface
        road_px += n
        evid_px += float((ev > 0.5).sum())
        seen.append((window, ev))
    if total is None or road_px < MIN_ROAD_PIXELS or evid_px < MIN_ROAD_PIXELS:
        return Offset(reason="too little road in the evidence or in OSM to measure an offset")
    peak = _peak(total, max_lag, res)
    evidence_m, cross_m = _support(osm_ways, seen, (peak.east_m, peak.north_m))
    found = Offset(peak.east_m, peak.north_m, peak.contrast, False, "", True, evidence_m, cross_m,
                   peak.sharpness, peak.second_peak)
    problem = _doubt(found, peak.at_edge, max_offset_m)
    return replace(found, applied=problem is None, reason=problem or "cross-correlation peak")


def _doubt(found: Offset, at_edge: bool, max_offset_m: float) -> str | None:
    """Why ``found`` cannot be trusted, or None when the evidence supports it."""
    if at_edge:
        return f"not measured: peak at the edge of the {max_offset_m:g} m search window"
    if found.evidence_m < MIN_EVIDENCE_M:
        return (f"not measured: the evidence confirms only {found.evidence_m:.0f} m of OSM road "
                f"(at least {MIN_EVIDENCE_M:g} m needed)")
    if found.cross_m < MIN_CROSS_M:
        return (f"not measured: the confirmed roads run mostly one way ({found.cross_m:.0f} m across the main "
                f"direction, at least {MIN_CROSS_M:g} m needed)")
    if found.contrast < MIN_CONTRAST:
        return f"not measured: no clear correlation peak (contrast {found.contrast:.2f} < {MIN_CONTRAST:g})"
    if found.sharpness < MIN_SHARPNESS:
        return f"not measured: the correlation peak is a ridge (sharpness {found.sharpness:.2f} < {MIN_SHARPNESS:g})"
    if found.second_peak > MAX_SECOND_PEAK:
        return (f"not measured: a second correlation peak nearly as high ({found.second_peak:.2f} of the first; "
                "repeated street pattern?)")
    return None


def _peak(total: np.ndarray, max_lag: int, res: float) -> _Peak:
    """The highest lag of the surface, sub-pixel, in metres, and how clear a peak it is."""
    # numpy integer scalars, used as plain ints throughout
    iy, ix = cast("tuple[int, int]", np.unravel_index(int(np.argmax(total)), total.shape))
    peak, base = float(total[iy, ix]), float(np.median(total))
    height = peak - base
    contrast = height / peak if peak > 0 else 0.0
    dy, dx = iy - max_lag + _parabola(total, iy, ix, 0), ix - max_lag + _parabola(total, iy, ix, 1)
    at_edge = max(abs(iy - max_lag), abs(ix - max_lag)) >= max_lag
    if height <= 0:
        return _Peak(dx * res, -dy * res, contrast, 0.0, 1.0, at_edge)
    sharpness = _sharpness(total, iy, ix, peak, height, SHARP_RADIUS_M / res)
    second = _second_peak(total, iy, ix, base, height, max(2.0, PEAK_CLEARANCE_M / res))
    return _Peak(dx * res, -dy * res, contrast, sharpness, second, at_edge)  # rows grow southwards


def _sharpness(surface: np.ndarray, iy: int, ix: int, peak: float, height: float, radius_px: float) -> float:
    """The least share of the peak's height lost ``radius_px`` away, over 16 directions."""
    angles = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    rows, cols = iy + radius_px * np.sin(angles), ix + radius_px * np.cos(angles)
    ring = ndimage.map_coordinates(surface, [rows, cols], order=1, mode="nearest")
    return float(np.min(peak - ring) / height)


def _second_peak(surface: np.ndarray, iy: int, ix: int, base: float, height: float, clearance_px: float) -> float:
    """The highest other local maximum, as a share of the peak's height above ``base``."""
    is_max = ndimage.maximum_filter(surface, size=3) == surface
    yy, xx = np.indices(surface.shape)
    is_max &= np.hypot(yy - iy, xx - ix) > clearance_px
    if not is_max.any():
        return 0.0
    return float(max(0.0, (surface[is_max].max() - base) / height))


def _support(osm_metric: gpd.GeoDataFrame, windows: list[tuple[Grid, np.ndarray]],
             shift: tuple[float, float]) -> tuple[float, float]:
    """OSM road length that the evidence shows at ``shift``, and of it the length across the
    main direction: the smaller eigenvalue of the length-weighted orientation tensor (for two
    roads at right angles, the shorter one's length; for parallel roads, zero)."""
    ways = osm_metric.geometry.to_numpy()
    mid, length, angle, owner = _segments(ways[_reaching(ways, [w for w, _ in windows], shift)], SUPPORT_STEP_M)
    shown = np.zeros(len(length), bool)
    for window, ev in windows:
        slack = max(1, int(round(SUPPORT_SLACK_M / abs(window.transform.a))))
        road = ndimage.maximum_filter(ev > 0.5, size=2 * slack + 1)
        cols, rows = ~window.transform @ (mid[:, 0] + shift[0], mid[:, 1] + shift[1])
        r, c = np.floor(rows).astype(int), np.floor(cols).astype(int)
        inside = (r >= 0) & (c >= 0) & (r < road.shape[0]) & (c < road.shape[1])
        shown[inside] |= road[r[inside], c[inside]]
    shown = _long_runs(shown, owner, length, MIN_RUN_M)
    w, cos, sin = length[shown], np.cos(angle[shown]), np.sin(angle[shown])
    tensor = np.array([[np.sum(w * cos * cos), np.sum(w * cos * sin)], [np.sum(w * cos * sin), np.sum(w * sin * sin)]])
    return float(w.sum()), float(max(0.0, np.linalg.eigvalsh(tensor)[0]))


def _reaching(ways: np.ndarray, windows: list[Grid], shift: tuple[float, float]) -> np.ndarray:
    """Indices of the ``ways`` that reach a window when moved by ``shift``: only their pieces can
    show (a large AOI's whole OSM in 2 m pieces held 10.9 million of them, 1.8 GB at 21,700 km)."""
    boxes = shapely.union_all([box(*w.bounds) for w in windows])
    moved_back = shapely.affinity.translate(boxes, -shift[0], -shift[1])
    return np.unique(shapely.STRtree(ways).query(moved_back, predicate="intersects"))


def _segments(geoms: np.ndarray, step_m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Midpoints, lengths, directions and line index of ``geoms``'s pieces at most ``step_m``
    long, in order along each line."""
    parts = shapely.get_parts(shapely.segmentize(geoms, step_m))
    xy, owner = shapely.get_coordinates(parts, return_index=True)
    same = owner[1:] == owner[:-1]
    a, b = xy[:-1][same], xy[1:][same]
    d = b - a
    return (a + b) / 2, np.hypot(d[:, 0], d[:, 1]), np.arctan2(d[:, 1], d[:, 0]), owner[:-1][same]


def _long_runs(shown: np.ndarray, owner: np.ndarray, length: np.ndarray, min_m: float) -> np.ndarray:
    """``shown`` kept only in runs of consecutive pieces of one line at least ``min_m`` long."""
    continues = np.r_[False, shown[:-1] & (owner[1:] == owner[:-1])]
    run = np.cumsum(shown & ~continues) - 1  # run index of each shown piece
    if not shown.any():
        return shown
    run_m = np.bincount(run[shown], weights=length[shown])
    keep = np.zeros_like(shown)
    keep[shown] = run_m[run[shown]] >= min_m
    return keep


def _parabola(surface: np.ndarray, iy: int, ix: int, axis: int) -> float:
    """Sub-pixel position of the peak along one axis (0 when it sits on the border)."""
    idx = [iy, ix]
    if not 0 < idx[axis] < surface.shape[axis] - 1:
        return 0.0
    lo, hi = list(idx), list(idx)
    lo[axis] -= 1
    hi[axis] += 1
    a, b, c = surface[tuple(lo)], surface[iy, ix], surface[tuple(hi)]
    denom = a - 2 * b + c
    return float(np.clip(0.5 * (a - c) / denom, -0.5, 0.5)) if denom < 0 else 0.0


def _busiest_windows(osm_ways: gpd.GeoDataFrame, grid: Grid) -> list[Grid]:
    """The grid itself when small, else up to MAX_WINDOWS windows with the most OSM road."""
    if grid.width * grid.height <= (2 * WINDOW_PX) ** 2:
        return [grid]
    metric = osm_ways.to_crs(grid.crs).geometry
    mids = metric.interpolate(0.5, normalized=True)
    cols, rows = ~grid.transform @ (mids.x.to_numpy(), mids.y.to_numpy())
    wr, wc = (rows // WINDOW_PX).astype(int), (cols // WINDOW_PX).astype(int)
    inside = (rows >= 0) & (cols >= 0) & (rows < grid.height) & (cols < grid.width)
    weight = np.bincount(wr[inside] * 100_000 + wc[inside], weights=metric.length.to_numpy()[inside])
    busiest = np.argsort(weight)[::-1][:MAX_WINDOWS]
    out = []
    for cell in busiest[weight[busiest] > 0]:
        r, c = divmod(int(cell), 100_000)
        t = grid.transform @ Affine.translation(c * WINDOW_PX, r * WINDOW_PX)
        out.append(Grid(t, min(WINDOW_PX, grid.width - c * WINDOW_PX), min(WINDOW_PX, grid.height - r * WINDOW_PX), grid.crs))
    return out
