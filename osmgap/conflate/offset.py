"""The shift between the evidence (imagery prediction, candidate lines) and OSM, by cross-correlation.

Imagery is often 5-10 m off OSM, and a candidate set traced from such imagery carries the same
shift. Rasterized OSM (osmgap.graph.rasterize, per-class widths) and the evidence raster are
cross-correlated by FFT over a window of lags; the peak, refined to sub-pixel by a parabola
through its neighbours, is the shift. Large areas are measured on the windows with the most OSM
road, and their correlation surfaces summed, so the cost stays bounded.

Convention: ``east_m``/``north_m`` is where the evidence lies relative to OSM; subtracting it
from the evidence aligns it. The shift is applied only when the peak stands clearly above the
surface around it (``contrast``) and inside the lag window; otherwise it is reported, not used.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
from affine import Affine
from scipy import fft
from shapely.geometry import box

from osmgap.core.grid import Grid
from osmgap.graph.rasterize import rasterize_roads

MIN_CONTRAST = 0.3  # (peak - median of the lag window) / peak; flat surfaces say nothing
MIN_ROAD_PIXELS = 200  # per raster, summed over windows
WINDOW_PX = 1024
MAX_WINDOWS = 6

# (window grid) -> evidence raster on that grid, float32
EvidenceRaster = Callable[[Grid], np.ndarray]


@dataclass(frozen=True)
class Offset:
    east_m: float = 0.0
    north_m: float = 0.0
    contrast: float = 0.0
    applied: bool = False
    reason: str = "not estimated"

    @property
    def magnitude_m(self) -> float:
        return float(np.hypot(self.east_m, self.north_m))

    def summary(self) -> dict:
        return {"east_m": round(self.east_m, 2), "north_m": round(self.north_m, 2),
                "magnitude_m": round(self.magnitude_m, 2), "contrast": round(self.contrast, 3),
                "applied": self.applied, "reason": self.reason}

    @property
    def correction(self) -> tuple[float, float]:
        """The translation that moves the evidence onto OSM (zero when not applied)."""
        return (-self.east_m, -self.north_m) if self.applied else (0.0, 0.0)


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
        t = window.transform
        bounds = (t.c, t.f + t.e * window.height, t.c + t.a * window.width, t.f)
        near = ways.iloc[index.query(box(*bounds).buffer(50.0))]
        return rasterize_roads(near, window)
    return read


def estimate(evidence: EvidenceRaster, osm_ways: gpd.GeoDataFrame, grid: Grid,
             max_offset_m: float) -> Offset:
    """The offset of the evidence against ``osm_ways`` over ``grid`` (metric CRS, ~1 m pixels)."""
    if len(osm_ways) == 0:
        return Offset(reason="no OSM roads to compare with")
    osm_ways = osm_ways.to_crs(grid.crs)
    reference = lines_raster(osm_ways)
    res = abs(grid.transform.a)
    max_lag = max(1, int(np.ceil(max_offset_m / res)))
    total, road_px, evid_px = None, 0.0, 0.0
    for window in _busiest_windows(osm_ways, grid):
        ref = reference(window).astype(np.float32)
        ev = evidence(window).astype(np.float32)
        surface, n = cross_correlation_shift(ev, ref, max_lag)
        total = surface if total is None else total + surface
        road_px += n
        evid_px += float((ev > 0.5).sum())
    if total is None or road_px < MIN_ROAD_PIXELS or evid_px < MIN_ROAD_PIXELS:
        return Offset(reason="too little road in the evidence or in OSM to measure an offset")
    iy, ix = np.unravel_index(int(np.argmax(total)), total.shape)
    peak = float(total[iy, ix])
    contrast = (peak - float(np.median(total))) / peak if peak > 0 else 0.0
    dy, dx = iy - max_lag + _parabola(total, iy, ix, 0), ix - max_lag + _parabola(total, iy, ix, 1)
    east, north = dx * res, -dy * res  # rows grow southwards
    if max(abs(iy - max_lag), abs(ix - max_lag)) >= max_lag:
        return Offset(east, north, contrast, False, f"peak at the edge of the {max_offset_m:g} m search window")
    if contrast < MIN_CONTRAST:
        return Offset(east, north, contrast, False, "no clear correlation peak")
    return Offset(east, north, contrast, True, "cross-correlation peak")


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
