"""Overhead imagery from any GeoTIFF/COG that rasterio opens, read window by window.

Whatever the file's CRS, band count or bit depth, the model sees the same thing: three bands
scaled to [0, 1], resampled onto a north-up grid in the AOI's metric CRS at the model's ground
resolution. A WarpedVRT does the reprojection lazily, so only the blocks a window needs are read.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import ColorInterp, Resampling
from rasterio.errors import RasterioIOError
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds
from shapely.geometry import box

from osmgap.core.grid import Grid, grid_over
from osmgap.errors import InputError

# Percentiles used to stretch >8-bit imagery to [0, 1]; robust to a few hot pixels.
STRETCH_PERCENTILES = (1.0, 99.0)


@dataclass
class Imagery:
    """An opened imagery file and what osmgap needs to know about it."""

    path: Path
    crs: CRS
    bounds_wgs84: tuple[float, float, float, float]
    resolution_m: float
    band_indexes: list[int]  # 1-based bands that become the model's R, G, B
    nodata: float | None
    dtype: str
    stretch: tuple[np.ndarray, np.ndarray]  # per-band low/high values mapped to 0 and 1

    def provenance(self) -> dict[str, Any]:
        return {
            "path": str(self.path), "crs": self.crs.to_string(), "resolution_m": round(self.resolution_m, 3),
            "dtype": self.dtype, "bands_used": self.band_indexes,
        }


def open_imagery(path: str | Path) -> Imagery:
    """Inspect an imagery file; InputError if it is missing, unreadable or not georeferenced."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "imagery file not found")
    try:
        src = rasterio.open(path)
    except RasterioIOError as exc:
        raise InputError(path, f"not a raster rasterio can read ({str(exc).splitlines()[0][:120]})") from None
    with src:
        if src.crs is None:
            raise InputError(path, "imagery has no CRS: it must be georeferenced (GeoTIFF with a CRS)")
        if src.transform == Affine.identity():
            raise InputError(path, "imagery has no geotransform: it must be georeferenced")
        bounds = transform_bounds(src.crs, "EPSG:4326", *src.bounds, densify_pts=21)
        res_m = _resolution_m(src)
        bands = _rgb_band_indexes(src)
        stretch = _stretch_limits(src, bands)
        return Imagery(path, src.crs, bounds, res_m, bands, src.nodata, src.dtypes[0], stretch)


def _resolution_m(src: rasterio.io.DatasetReader) -> float:
    rx, ry = src.res
    if src.crs.is_geographic:
        lat = (src.bounds.top + src.bounds.bottom) / 2
        return math.sqrt(rx * ry * 111_320.0 ** 2 * math.cos(math.radians(lat)))
    factor = src.crs.linear_units_factor[1] if src.crs.linear_units_factor else 1.0
    return math.sqrt(rx * ry) * factor


def _rgb_band_indexes(src: rasterio.io.DatasetReader) -> list[int]:
    """Bands to feed as R, G, B: by colour interpretation when tagged, else the first three.

    A single-band (panchromatic) image is repeated three times; alpha bands are never used.
    """
    interp = list(src.colorinterp)
    by_interp = {ci: i + 1 for i, ci in enumerate(interp)}
    if all(c in by_interp for c in (ColorInterp.red, ColorInterp.green, ColorInterp.blue)):
        return [by_interp[ColorInterp.red], by_interp[ColorInterp.green], by_interp[ColorInterp.blue]]
    usable = [i + 1 for i, ci in enumerate(interp) if ci != ColorInterp.alpha] or [1]
    if len(usable) >= 3:
        return usable[:3]
    return [usable[0]] * 3


def _stretch_limits(src: rasterio.io.DatasetReader, bands: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Per-band values that map to 0 and 1, from a decimated read of the whole image.

    8-bit imagery is used as it is (0..255); deeper imagery (e.g. 11-bit pan in uint16) is
    stretched between robust percentiles, because its useful range is a small part of 0..65535.
    """
    if src.dtypes[0] == "uint8":
        n = len(bands)
        return np.zeros(n, np.float32), np.full(n, 255.0, np.float32)
    scale = max(1, int(max(src.width, src.height) / 1024))
    shape = (max(1, src.height // scale), max(1, src.width // scale))
    lows, highs = [], []
    for b in bands:
        arr = src.read(b, out_shape=shape, masked=True)
        vals = arr.compressed() if np.ma.isMaskedArray(arr) else arr.ravel()
        if vals.size == 0:
            raise InputError(src.name, "imagery holds only nodata")
        lo, hi = np.percentile(vals, STRETCH_PERCENTILES)
        lows.append(lo)
        highs.append(hi if hi > lo else lo + 1)
    return np.asarray(lows, np.float32), np.asarray(highs, np.float32)


def analysis_grid(imagery: Imagery, aoi_wgs84: Any, metric_crs: Any, resolution_m: float) -> Grid:
    """The grid over AOI ∩ imagery footprint in the metric CRS; InputError if they do not overlap."""
    footprint = box(*imagery.bounds_wgs84)
    overlap = footprint.intersection(aoi_wgs84)
    if overlap.is_empty or overlap.area == 0:
        raise InputError(
            imagery.path,
            f"imagery (bounds {', '.join(f'{v:.5f}' for v in imagery.bounds_wgs84)}) does not overlap the AOI",
        )
    crs = CRS.from_user_input(metric_crs)
    bounds = transform_bounds("EPSG:4326", crs, *overlap.bounds, densify_pts=21)
    return grid_over(bounds, crs, resolution_m)


class WindowReader:
    """Reads windows of a Grid from an imagery file, scaled to [0, 1], plus a validity mask."""

    def __init__(self, imagery: Imagery, grid: Grid, resampling: Resampling = Resampling.bilinear):
        self.imagery = imagery
        self.grid = grid
        self._src = rasterio.open(imagery.path)
        self._vrt = WarpedVRT(
            self._src, crs=grid.crs, transform=grid.transform, width=grid.width, height=grid.height,
            resampling=resampling, src_nodata=imagery.nodata, nodata=imagery.nodata,
        )

    def read(self, row: int, col: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """(3, h, w) float32 in [0, 1] and (h, w) bool valid mask; outside the grid is invalid."""
        data = np.zeros((3, height, width), np.float32)
        valid = np.zeros((height, width), bool)
        r0, c0 = max(row, 0), max(col, 0)
        r1, c1 = min(row + height, self.grid.height), min(col + width, self.grid.width)
        if r1 > r0 and c1 > c0:
            window = rasterio.windows.Window(c0, r0, c1 - c0, r1 - r0)
            inner = (slice(r0 - row, r1 - row), slice(c0 - col, c1 - col))
            data[(slice(None),) + inner] = self._vrt.read(self.imagery.band_indexes, window=window)
            valid[inner] = self._vrt.read_masks(1, window=window) > 0
        lo, hi = self.imagery.stretch
        data = (data - lo[:, None, None]) / (hi - lo)[:, None, None]
        np.clip(data, 0.0, 1.0, out=data)
        data[:, ~valid] = 0.0
        return data, valid

    def read_all(self) -> tuple[np.ndarray, np.ndarray]:
        return self.read(0, 0, self.grid.height, self.grid.width)

    def close(self) -> None:
        self._vrt.close()
        self._src.close()

    def __enter__(self) -> WindowReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
