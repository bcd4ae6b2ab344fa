"""Overhead imagery from any GeoTIFF/COG that rasterio opens, read window by window.

Whatever the file's CRS, band count or bit depth, the model sees the same thing: three bands
scaled to [0, 1], resampled onto a north-up grid in the AOI's metric CRS at the model's ground
resolution. A WarpedVRT does the reprojection lazily, so only the blocks a window needs are read.
Imagery much finer than the grid (0.3 m pixels for a 1 m model) is first read decimated, as
``gdalwarp -ovr AUTO`` would: from the file's overviews when it has them, else averaged by GDAL
in the read, so a window costs about as many source pixels as it has (not 10-20x as many).
"""
from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from xml.sax.saxutils import escape

import numpy as np
import rasterio
import shapely
from affine import Affine
from pyproj import Geod
from rasterio.crs import CRS
from rasterio.enums import ColorInterp, MaskFlags, Resampling
from rasterio.env import get_gdal_config, set_gdal_config
from rasterio.errors import RasterioError
from rasterio.features import geometry_mask, shapes, sieve
from rasterio.vrt import WarpedVRT
from rasterio.warp import reproject as warp_array
from rasterio.warp import transform as warp_transform
from rasterio.warp import transform_bounds
from rasterio.windows import Window, from_bounds
from shapely.geometry import box, shape
from shapely.geometry.base import BaseGeometry

from osmgap.core.aoi import Aoi, check_earth_crs, reproject
from osmgap.core.grid import Grid, grid_over
from osmgap.core.stretch import robust_limits
from osmgap.errors import InputError, one_line
from osmgap.sources.gdal_files import check_gdal_file

if TYPE_CHECKING:
    from osmgap.sources.xyz import AnyImagery

log = logging.getLogger(__name__)

# Imagery this many times coarser than the model's ground resolution shows it no road (a 2-lane
# road is ~7 m wide: at 4 m/px it is two pixels for a model that learnt it at 1 m/px as seven);
# WARN_COARSER times coarser, it sees them blurred and misses the narrow ones.
MAX_COARSER = 4.0
WARN_COARSER = 1.5
# Coverage is measured on a decimated read of the AOI's window: at most this many pixels a side.
COVERAGE_SIDE_PX = 1024
# Below this share of the AOI covered by usable pixels, the summary warns that the rest was not looked at.
COVERAGE_WARN_SHARE = 0.95
# A blank image (one value everywhere) is told from a tiny AOI on coarse imagery by this many pixels.
MIN_BLANK_PX = 16
SPECK_PX = 4  # valid areas this small (decimated pixels) are noise, not imagery to analyse
# Imagery at least DECIMATE_FROM times finer than the grid (per axis) is read decimated, by whole
# source pixels averaged (GDAL takes the file's overviews where it has them), to between READ_FINER
# and 2 x READ_FINER times finer than the grid (0.3 m imagery for a 1 m model: 0.6 m), then warped
# onto it. Where the read pixels are at most BILINEAR_UP_TO times finer than the grid (on both axes)
# the warp is GDAL's plain 4-sample bilinear, which then skips no read pixel; else GDAL's kernel
# widened to each grid pixel's whole footprint. Reading 1.5-3x finer with the widened kernel always
# (stop 25) cost 0.061 s of CPU per 512 px window; this read 0.038 s, and 1-2x finer 0.036 s (stop
# 26). bench/generalize.py, stop 25's read / 1-2x finer / this read: Paris vs OSM F1@10m
# 0.791 / 0.773 / 0.788, Vegas F1@3m 0.715 / 0.708 / 0.718, Shanghai held out 0.518 / 0.513 / 0.520.
DECIMATE_FROM = 2.0
READ_FINER = 1.25
BILINEAR_UP_TO = 2.0
READ_CACHE_BYTES = 128 * 2**20  # GDAL's block cache for imagery reads (cap_block_cache)
# The source's edge pixels repeated this many times around a decimated read: room for the kernel of a
# pixel at the image's very edge. 2 called pixels up to ~1 m beyond the image valid, which cost the
# real chips up to 0.02 IoU.
EDGE_PX = 1
# pixels 0 in every band, no nodata declared: undeclared fill when at least this share (_stretch_limits)
FILL_SHARE = 0.01
FILL_SPECK_PX = 64  # all-zero areas smaller than this (decimated pixels) are dark scene, not fill (measure_coverage)


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
    # said once per run: the red, green and blue bands of a many-band image were a guess, or
    # undeclared fill was left out of the stretch
    warnings: tuple[str, ...] = ()
    zero_fill: bool = False  # undeclared fill found (_stretch_limits): 0 in every band is fill, not scene
    expanded: str | None = None  # a palette image's colours as RGB (a VRT's XML, :func:`_palette_rgb`): read instead

    def provenance(self) -> dict[str, Any]:
        return {
            "path": str(self.path), "crs": self.crs.to_string(), "resolution_m": round(self.resolution_m, 3),
            "dtype": self.dtype, "bands_used": self.band_indexes,
        }


def open_imagery(path: str | Path, bands: tuple[int, ...] | None = None) -> Imagery:
    """Inspect an imagery file; InputError if it is missing, unreadable or not georeferenced.
    ``bands``: the 1-based bands to read as red, green and blue (one band: read as grey), as the
    user chose them (``--bands``); None: :func:`_rgb_band_indexes` chooses."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "imagery file not found")
    check_gdal_file(path)
    try:
        src = rasterio.open(path)
    except RasterioError as exc:
        raise InputError(path, f"not a raster rasterio can read ({str(exc).splitlines()[0][:120]})") from None
    with src, read_errors(path):
        _check_georeferenced(src, path)
        if src.dtypes[0].startswith("complex"):
            raise InputError(path, f"{src.dtypes[0]} pixels (radar data?): osmgap reads optical imagery of integer or "
                                   "real values")
        bounds = transform_bounds(src.crs, "EPSG:4326", *src.bounds, densify_pts=21)
        res_m = _resolution_m(src)
        expanded = _palette_rgb(src, path) if src.colorinterp[0] == ColorInterp.palette else None
        with rasterio.open(expanded) if expanded else nullcontext(src) as view:
            chosen, guessed = (_chosen_bands(view, path, bands), None) if bands else _rgb_band_indexes(view, path)
            stretch, fill = _stretch_limits(view, chosen, path)
            nodata = view.nodata
        filled = (f"WARNING: {path}: {fill:.0%} of the image is 0 in every band and no nodata is declared: read as black, "
                  f"left out of the stretch; declare it (gdal_edit.py -a_nodata 0) if it is fill outside the scene"
                  if fill else None)
        warnings = tuple(w for w in (guessed, filled) if w)
        for warning in warnings:  # said by every verb that opens the file (diff also puts them in its summary)
            log.warning(warning)
        return Imagery(path, src.crs, bounds, res_m, chosen, nodata, "uint8" if expanded else src.dtypes[0], stretch,
                       warnings, fill > 0, expanded)


def _check_georeferenced(src: rasterio.io.DatasetReader, path: Path) -> None:
    """InputError unless ``src`` has a CRS and a north-up geotransform: the readers cut windows by
    bounds, which a grid turned by 90 degrees (or mirrored, or placed by GCPs alone) does not have."""
    gcps = src.gcps[0]
    t = src.transform
    warp = "warp it north-up first (gdalwarp IN.tif OUT.tif)"
    if gcps and t == Affine.identity():
        raise InputError(path, f"the image is georeferenced by {len(gcps)} ground control points only, not a "
                               f"geotransform: {warp}")
    if src.crs is None:
        raise InputError(path, "imagery has no CRS: it must be georeferenced (GeoTIFF with a CRS)")
    if t == Affine.identity():
        raise InputError(path, "imagery has no geotransform: it must be georeferenced")
    check_earth_crs(src.crs.to_wkt(), path)
    if abs(t.b) >= abs(t.a) or abs(t.d) >= abs(t.e):  # rows or columns run nearer north-south than east-west
        turn = math.degrees(math.atan2(-t.d, t.a))
        raise InputError(path, f"the image's pixel grid is turned {turn:.0f} degrees from north-up (a rotated "
                               f"geotransform): {warp}")
    if t.e > 0:
        raise InputError(path, f"the image is stored south-up (a positive pixel height): {warp}")
    if t.a < 0:
        raise InputError(path, f"the image is stored east-west mirrored (a negative pixel width): {warp}")


def _palette_rgb(src: rasterio.io.DatasetReader, path: Path) -> str:
    """A VRT (its XML, which GDAL opens as a file) of ``src``'s colour table applied, as red, green
    and blue bands (``gdal_translate -expand rgb``): a palette's indexes read as grey are no image
    (Paris chip, popularity-ordered palette: eval IoU 0.08; its colours as RGB 0.36). The source's
    mask (a nodata index, an internal mask) stays the image's mask."""
    source = f'<SourceFilename relativeToVRT="0">{escape(str(path.resolve()))}</SourceFilename>'
    bands = "".join(f'<VRTRasterBand dataType="Byte" band="{i}"><ColorInterp>{name}</ColorInterp><ComplexSource>'
                    f'{source}<SourceBand>1</SourceBand><ColorTableComponent>{i}</ColorTableComponent></ComplexSource>'
                    "</VRTRasterBand>" for i, name in enumerate(("Red", "Green", "Blue"), 1))
    mask = ("" if src.mask_flag_enums[0] == [MaskFlags.all_valid] else
            f'<MaskBand><VRTRasterBand dataType="Byte"><SimpleSource>{source}<SourceBand>mask,1</SourceBand>'
            "</SimpleSource></VRTRasterBand></MaskBand>")
    return (f'<VRTDataset rasterXSize="{src.width}" rasterYSize="{src.height}"><SRS>{escape(src.crs.to_wkt())}</SRS>'
            f'<GeoTransform>{", ".join(map(repr, src.transform.to_gdal()))}</GeoTransform>{bands}{mask}</VRTDataset>')


def open_source(imagery: Imagery) -> rasterio.io.DatasetReader:
    """The imagery's dataset as the model reads it (a palette image: its colours, :func:`_palette_rgb`)."""
    return rasterio.open(imagery.expanded or imagery.path)


def _resolution_m(src: rasterio.io.DatasetReader) -> float:
    """The ground size of a pixel at the image's centre (geometric mean of its sides), on the
    ellipsoid: a projected CRS's units are not ground metres (Web Mercator's pixel is 1/cos(lat)
    times its ground size: 1.5 at Paris, 2 at Helsinki)."""
    t = src.transform
    col, row = src.width / 2, src.height / 2
    xs, ys = zip(*(t @ (col, row), t @ (col + 1, row), t @ (col, row + 1)))
    lons, lats = warp_transform(src.crs, "EPSG:4326", list(xs), list(ys))
    geod = Geod(ellps="WGS84")
    across = geod.inv(lons[0], lats[0], lons[1], lats[1])[2]
    down = geod.inv(lons[0], lats[0], lons[2], lats[2])[2]
    return math.sqrt(across * down)


def _chosen_bands(src: rasterio.io.DatasetReader, path: Path, bands: tuple[int, ...]) -> list[int]:
    """The user's ``--bands``, checked against the file: one band (read as grey) or three."""
    if len(bands) not in (1, 3) or not all(1 <= b <= src.count for b in bands):
        raise InputError(path, f"--bands {','.join(map(str, bands))}: give one band or three, each 1 to {src.count} "
                               f"(the image has {src.count} band{'s' if src.count != 1 else ''})")
    return list(bands) * 3 if len(bands) == 1 else list(bands)


def _rgb_band_indexes(src: rasterio.io.DatasetReader, path: Path) -> tuple[list[int], str | None]:
    """Bands to feed as R, G, B, and a warning when that is a guess on a many-band image.

    Bands named red, green and blue (band descriptions) come first, then the colour
    interpretation, else the first three bands. A single-band (panchromatic) image is repeated
    three times; alpha bands are never used. GDAL tags the first three bands of any image written
    as RGB red, green and blue, so on a multispectral image (SpaceNet's WorldView-3 8-band:
    coastal, blue, green, yellow, red, ...) the tags say nothing of where red is: with five or more
    bands the choice is said, with the option that changes it. So is the first three of an image
    whose bands have neither names nor colours: 4-band files come as blue, green, red, NIR
    (PlanetScope) and as red, green, blue, NIR (NAIP) alike, and read the wrong way round the Paris
    chip's IoU fell from 0.37 to 0.08; a band named NIR does not tell the two apart.
    """
    names = {(d or "").strip().lower(): i + 1 for i, d in enumerate(src.descriptions)}
    if all(c in names for c in ("red", "green", "blue")):
        return [names["red"], names["green"], names["blue"]], None
    interp = list(src.colorinterp)
    by_interp = {ci: i + 1 for i, ci in enumerate(interp)}
    if all(c in by_interp for c in (ColorInterp.red, ColorInterp.green, ColorInterp.blue)):
        chosen = [by_interp[ColorInterp.red], by_interp[ColorInterp.green], by_interp[ColorInterp.blue]]
        how = "its colour interpretation"
    else:
        usable = [i + 1 for i, ci in enumerate(interp) if ci != ColorInterp.alpha] or [1]
        chosen, how = (usable[:3], "no band names red, green, blue") if len(usable) >= 3 else ([usable[0]] * 3, "")
    if src.count < 5 and not how.startswith("no band"):
        return chosen, None
    other = "WorldView-2/3 8-band: --bands 5,3,2" if src.count >= 5 else "blue, green, red (PlanetScope): --bands 3,2,1"
    return chosen, (f"WARNING: {path}: {src.count} bands; bands {','.join(map(str, chosen))} read as red, green, blue "
                    f"({how}); if the image orders its bands otherwise, choose them with --bands ({other})")


def _stretch_limits(src: rasterio.io.DatasetReader, bands: list[int],
                    path: Path) -> tuple[tuple[np.ndarray, np.ndarray], float]:
    """Per-band values that map to 0 and 1, from a decimated read of the whole image, and the
    share of its pixels left out of them as undeclared fill (see below).

    Every image, whatever its bit depth, is stretched between robust percentiles: an 11-bit pan
    chip uses a small part of 0..65535, and a dark 8-bit scene (median grey ~30) a small part of
    0..255, and the model sees roads in neither unless both look like its training images. On a
    well-exposed 8-bit image the stretch is close to 0..255 (bench/generalize.py: the Paris
    chip's IoU moves by 0.002; darkened to a median of 30 it scores as the original).
    Satellite chips often fill the area outside the scene with 0 without declaring it no-data
    (SpaceNet Shanghai: 67-84 % of three chips); counted, those zeros pulled every band's low
    limit to 0 and washed the scene out (a WorldView-3 8-band chip's IoU 0.39 -> 0.00). So where
    no nodata is declared and at least ``FILL_SHARE`` of the pixels are 0 in every band read,
    those pixels are left out of the percentiles (they are still read, as black).
    """
    scale = max(1, int(max(src.width, src.height) / 1024))
    shape = (max(1, src.height // scale), max(1, src.width // scale))
    distinct = list(dict.fromkeys(bands))  # a panchromatic image's one band is read (and measured) once
    arrays = [src.read(b, out_shape=shape, masked=True) for b in distinct]
    fill = np.zeros(shape, bool)
    if src.nodata is None:
        fill = np.logical_and.reduce([np.ma.getdata(a) == 0 for a in arrays])
        fill &= ~np.logical_or.reduce([np.ma.getmaskarray(a) for a in arrays])
        scene = [np.ma.getdata(a)[~fill] for a in arrays]
        # an all-black image is said by measure_coverage; one whose other pixels all hold one value
        # is a mask (0 / 255 roads), whose zeros are values, not fill
        if fill.mean() < FILL_SHARE or fill.all() or any(v.min() == v.max() for v in scene):
            fill[:] = False
    lows, highs = [], []
    for arr in arrays:
        vals = np.ma.getdata(arr)[~np.ma.getmaskarray(arr) & ~fill]
        vals = vals[np.isfinite(vals)]  # float imagery may mark no-data as NaN without declaring it
        if vals.size == 0:
            raise InputError(path, "imagery holds only nodata or NaN pixels: no usable imagery")
        lo, hi = robust_limits(vals)
        lows.append(lo)
        highs.append(hi)
    at = [distinct.index(b) for b in bands]
    return (np.asarray(lows, np.float32)[at], np.asarray(highs, np.float32)[at]), float(fill.mean())


@contextmanager
def read_errors(path: Path) -> Iterator[None]:
    """GDAL's read errors (a truncated or corrupt file: "Read failed") as an InputError naming the
    imagery file: rasterio's own message names no file."""
    try:
        yield
    except RasterioError as exc:
        raise InputError(path, f"cannot read the imagery: truncated or corrupt? ({one_line(exc)[:160]})") from None


def _no_overlap(imagery: AnyImagery) -> InputError:
    return InputError(imagery.path, f"imagery (bounds {', '.join(f'{v:.5f}' for v in imagery.bounds_wgs84)}) "
                                    "does not overlap the AOI")


# imagery predicted around an area, never counted: a road at the area's edge is seen with what
# surrounds it (a window cut at the edge and padded with blank shows the model a road end), and an
# area smaller than a window is not a small picture in a blank frame
CONTEXT_M = 40.0


def with_context(area_wgs84: BaseGeometry, metric_crs: Any) -> BaseGeometry:
    """``area_wgs84`` and CONTEXT_M around it, in WGS84: where to predict so that the area itself
    is predicted with context (the analysis grid is clipped to the imagery anyway)."""
    return reproject(reproject(area_wgs84, "EPSG:4326", metric_crs).buffer(CONTEXT_M, join_style="mitre"),
                     metric_crs, "EPSG:4326")


def analysis_grid(imagery: AnyImagery, aoi_wgs84: Any, metric_crs: Any, resolution_m: float) -> Grid:
    """The grid over AOI ∩ imagery footprint in the metric CRS; InputError if they do not overlap."""
    footprint = box(*imagery.bounds_wgs84)
    overlap = footprint.intersection(aoi_wgs84)
    if overlap.is_empty or overlap.area == 0:
        raise _no_overlap(imagery)
    crs = CRS.from_user_input(metric_crs)
    bounds = transform_bounds("EPSG:4326", crs, *overlap.bounds, densify_pts=21)
    return grid_over(bounds, crs, resolution_m)


@dataclass(frozen=True)
class Coverage:
    """How much of the AOI the imagery shows: ``area_wgs84``, the part of the AOI under usable
    pixels (not outside the image, not nodata, not NaN), the area actually analysed; its share of
    the AOI's area and its area."""

    area_wgs84: BaseGeometry
    aoi_share: float
    area_km2: float


def measure_coverage(imagery: Imagery, aoi: Aoi) -> Coverage:
    """The AOI's coverage by usable pixels, from a decimated read of the AOI's window of the image
    (at most COVERAGE_SIDE_PX a side, so a cheap look even at a large AOI). InputError naming
    the file when no pixel over the AOI is usable, or all usable ones hold one value (a blank
    image): a model shown nothing finds nothing, and "0 suggestions" would read as "all mapped".
    The undeclared zero fill found on opening (``Imagery.zero_fill``) is unusable as a declared
    nodata is: the model sees nothing there, so no road may vanish into it (osmgap change), and a
    diff, scan or weekly state must not read it as looked at and complete; specks of it are dark
    scene, not fill."""
    with read_errors(imagery.path), open_source(imagery) as src:
        crs = src.crs
        area = reproject(aoi.geometry, "EPSG:4326", crs)
        window = _window_over(src, area.bounds)
        if window is None:
            raise _no_overlap(imagery)
        scale = max(1, math.ceil(max(window.width, window.height) / COVERAGE_SIDE_PX))
        size = (max(1, round(window.height / scale)), max(1, round(window.width / scale)))
        bands = sorted(set(imagery.band_indexes))
        data = src.read(bands, window=window, out_shape=(len(bands), *size), masked=True)
        transform = src.window_transform(window) @ Affine.scale(window.width / size[1], window.height / size[0])
    inside = geometry_mask([area], out_shape=size, transform=transform, invert=True)
    if not inside.any():  # an AOI smaller than a (decimated) pixel holds no pixel centre
        inside = geometry_mask([area], out_shape=size, transform=transform, invert=True, all_touched=True)
    valid = cast(np.ndarray, ~np.ma.getmaskarray(data).any(axis=0) & np.isfinite(np.ma.getdata(data)).all(axis=0))
    if imagery.zero_fill:
        fill = (valid & (np.ma.getdata(data) == 0).all(axis=0)).astype(np.uint8)
        valid &= ~(sieve(fill, size=FILL_SPECK_PX) > 0 if fill.size > 16 * FILL_SPECK_PX else fill > 0)
    usable = valid & inside
    if not usable.any():
        raise InputError(imagery.path, "no usable imagery over the AOI: every pixel there is nodata or NaN")
    values = np.ma.getdata(data)[:, usable]
    if values.shape[1] >= MIN_BLANK_PX and (values.min(axis=1) == values.max(axis=1)).all():
        raise InputError(imagery.path, f"no usable imagery over the AOI: every pixel there holds the same value "
                                       f"({', '.join(f'{v:g}' for v in values[:, 0])}), a blank image")
    return coverage_of(valid, transform, crs, aoi)


def coverage_of(valid: np.ndarray, transform: Affine, crs: Any, aoi: Aoi) -> Coverage:
    """The Coverage of ``aoi`` by the usable cells of ``valid`` (a mask on ``transform`` in ``crs``):
    how both an image file's and a tile server's coverage are measured."""
    if not valid.any():
        return Coverage(shapely.Polygon(), 0.0, 0.0)
    shown = _polygons(aoi.geometry.intersection(reproject(_valid_outline(valid, transform), crs, "EPSG:4326")))
    return _coverage_by(shown, aoi)


def common_coverage(first: Coverage, second: Coverage, aoi: Aoi) -> Coverage:
    """The AOI's coverage by usable pixels of both images (osmgap change): only there can a road
    have appeared or vanished, so only that is analysed, and its share is what to warn about."""
    return _coverage_by(_polygons(first.area_wgs84.intersection(second.area_wgs84)), aoi)


def _coverage_by(shown: BaseGeometry, aoi: Aoi) -> Coverage:
    """The Coverage of ``aoi`` by ``shown`` (WGS84, inside the AOI): its share and area, measured once."""
    shown_km2 = aoi.to_metric(shown).area / 1e6 if not shown.is_empty else 0.0
    return Coverage(shown, min(1.0, shown_km2 / aoi.area_km2()), shown_km2)


def _valid_outline(valid: np.ndarray, transform: Affine) -> BaseGeometry:
    """The (multi)polygon of the valid pixels, specks of a few pixels left out, simplified to
    half a pixel."""
    cleaned = valid.astype(np.uint8)
    if cleaned.size > 16 * SPECK_PX:  # sieve wants an image much larger than a speck
        cleaned = sieve(cleaned, size=SPECK_PX)
    polygons = [shape(g) for g, v in shapes(cleaned, mask=cleaned.astype(bool), transform=transform) if v]
    if not polygons:  # all specks: keep them rather than nothing
        polygons = [shape(g) for g, v in shapes(valid.astype(np.uint8), mask=valid, transform=transform) if v]
    outline = shapely.union_all(polygons).simplify(abs(transform.a) / 2)
    return shapely.segmentize(outline, abs(transform.a) * 64)  # edges stay close when reprojected


def _polygons(geom: BaseGeometry) -> BaseGeometry:
    """The polygonal part of an intersection (which may add the lines and points where shapes touch)."""
    return shapely.union_all([g for g in shapely.get_parts(geom) if g.geom_type in ("Polygon", "MultiPolygon")])


def _window_over(src: rasterio.io.DatasetReader, bounds: tuple[float, float, float, float]) -> Window | None:
    """The whole-pixel window of ``src`` over ``bounds`` (in its CRS), cut to the image; None if empty."""
    w = from_bounds(*bounds, transform=src.transform)
    c0, r0 = max(0, math.floor(w.col_off)), max(0, math.floor(w.row_off))
    c1, r1 = min(src.width, math.ceil(w.col_off + w.width)), min(src.height, math.ceil(w.row_off + w.height))
    return Window(c0, r0, c1 - c0, r1 - r0) if c1 > c0 and r1 > r0 else None


def check_resolution(imagery: Any, model_resolution_m: float) -> str | None:
    """InputError naming the imagery when it is more than MAX_COARSER times coarser than the model's
    ground resolution (the model would see no road: resampling up adds no detail); a warning when
    it is more than WARN_COARSER times coarser; None when it suits the model."""
    ratio = imagery.resolution_m / model_resolution_m
    said = f"imagery is {imagery.resolution_m:.3g} m/px, {ratio:.1f} times coarser than the model's {model_resolution_m:g} m/px"
    if ratio > MAX_COARSER:
        raise InputError(imagery.path, f"{said}: roads are too few pixels wide to be seen; use imagery of at most "
                                       f"{MAX_COARSER * model_resolution_m:g} m/px")
    if ratio > WARN_COARSER:
        return f"WARNING: {imagery.path}: {said}: narrow roads may be missed"
    return None


def cap_block_cache() -> None:
    """Cap GDAL's block cache (process-wide) at READ_CACHE_BYTES unless $GDAL_CACHEMAX says
    otherwise: by default it may take 5 % of the machine's memory (1.2 GB on a 23 GB machine) and a
    large read fills it, so a run's memory grew with the area it read. Windows are read row by
    row, and their overlap with the previous window is all a cache saves."""
    if "GDAL_CACHEMAX" not in os.environ and int(get_gdal_config("GDAL_CACHEMAX") or 0) > READ_CACHE_BYTES:
        set_gdal_config("GDAL_CACHEMAX", READ_CACHE_BYTES)


def source_footprint(grid: Grid, window: Window, src_crs: Any, src_transform: Affine) -> Window:
    """The window of source pixels (fractional, unclipped) that ``window`` of the grid covers."""
    t = grid.transform @ Affine.translation(window.col_off, window.row_off)
    bounds = transform_bounds(grid.crs, src_crs, t.c, t.f + t.e * window.height, t.c + t.a * window.width, t.f,
                              densify_pts=21)
    return from_bounds(*bounds, transform=src_transform)


def source_pixels_per_grid_pixel(src: rasterio.io.DatasetReader, grid: Grid) -> tuple[float, float]:
    """How many of the source's pixels one grid pixel spans, along x and y."""
    w = source_footprint(grid, Window(0, 0, grid.width, grid.height), src.crs, src.transform)
    return abs(w.width) / grid.width, abs(w.height) / grid.height


def decimation(src: rasterio.io.DatasetReader, grid: Grid) -> tuple[int, int]:
    """Whole source pixels per decimated pixel along x and y: how much finer than ``grid`` the
    source is, rounded down (1: read at full resolution)."""
    ratios = source_pixels_per_grid_pixel(src, grid)
    return cast(tuple[int, int], tuple(max(1, int(r // READ_FINER)) if r >= DECIMATE_FROM else 1 for r in ratios))


def warp_scale(ratios: tuple[float, float], step: tuple[int, int]) -> tuple[float, float]:
    """GDAL's XSCALE/YSCALE for a source read decimated by ``step`` (source pixels per read pixel)
    when ``ratios`` source pixels span a grid pixel: 1 (the 4-sample bilinear) where the read
    pixels are at most BILINEAR_UP_TO times finer than the grid, else grid pixels per read pixel
    (the kernel widened to each grid pixel's footprint). Stated, not left to GDAL, which would
    derive it from each window's extents: fixed per reader, a pixel reads the same in every window."""
    left = (ratios[0] / step[0], ratios[1] / step[1])
    if max(left) <= BILINEAR_UP_TO:
        return 1.0, 1.0
    return 1 / left[0], 1 / left[1]


def warp_window(source: np.ndarray, alpha: np.ndarray, src_transform: Affine, src_crs: Any, grid: Grid,
                window: Window, resampling: Resampling,
                scale: tuple[float, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``source`` (bands, h, w) and its validity ``alpha`` (0..255) warped onto ``window`` of the
    grid: (bands, h, w) float32 and a (h, w) valid mask. As in a WarpedVRT, invalid source pixels
    (mostly invalid, for decimated ones) are left out of every pixel's kernel, and a pixel is valid
    when its kernel reaches a valid one. ``scale`` is GDAL's XSCALE/YSCALE, fixed per reader so
    that a pixel reads the same in every window: None lets GDAL widen the kernel to each grid
    pixel's footprint; the decimated file reader, whose pixels are already averaged to near the
    grid's size, keeps it narrow where that skips no pixel (:func:`warp_scale`). The source's edge
    pixels are repeated EDGE_PX times around it, so that the pixels along
    its very edge are not lost to a coarser source pixel (a WarpedVRT's kernel, scaled to the
    full-resolution source, reaches as far). Shared by the decimated file reader and the
    tile-server reader.

    Most windows lie inside imagery that is valid all over: there GDAL is asked without a source
    nodata, which takes it off its per-pixel mask checks for the same kernel (bit for bit the same
    pixels, tested; half the CPU). Any pixel that the source does not reach stays NaN, and then the
    window is warped again the masked way."""
    data = source.astype(np.float32)
    masked = not bool((alpha >= 127.5).all()) or not _covers(source.shape[1:], src_transform, src_crs, grid, window)
    if masked:
        data[:, alpha < 127.5] = np.nan
    data = np.pad(data, ((0, 0), (EDGE_PX, EDGE_PX), (EDGE_PX, EDGE_PX)), mode="edge")
    out = _warp(data, src_transform, src_crs, grid, window, resampling, scale, masked)
    if not masked and not np.isfinite(out).all():
        out = _warp(data, src_transform, src_crs, grid, window, resampling, scale, True)
    valid = cast(np.ndarray, np.isfinite(out).all(axis=0))
    out[:, ~valid] = 0.0
    return out, valid


def _covers(shape: tuple[int, ...], src_transform: Affine, src_crs: Any, grid: Grid, window: Window) -> bool:
    """Whether a source of ``shape`` reaches past ``window``'s footprint by two of its pixels on
    every side (room for the kernel): a window on the imagery's edge goes the masked way at once."""
    w = source_footprint(grid, window, src_crs, src_transform)
    cols = (w.col_off, w.col_off + w.width)
    rows = (w.row_off, w.row_off + w.height)
    return min(cols) >= 2 and min(rows) >= 2 and max(cols) <= shape[1] - 2 and max(rows) <= shape[0] - 2


# Unmasked, no nodata at all: a destination nodata alone (even with no source nodata) puts GDAL back on
# its per-pixel checks (0.11 s against 0.055 s per 512 px window); the NaN the destination starts
# with stays wherever nothing reached because it is not initialised.
_NODATA: dict[bool, dict[str, Any]] = {True: {"src_nodata": np.nan, "dst_nodata": np.nan},
                                       False: {"init_dest_nodata": False}}


def _warp(data: np.ndarray, src_transform: Affine, src_crs: Any, grid: Grid, window: Window,
          resampling: Resampling, scale: tuple[float, float] | None, masked: bool) -> np.ndarray:
    """One GDAL warp of the edge-padded ``data`` onto ``window``; NaN wherever nothing reached (and,
    ``masked``, NaN source pixels are left out of every kernel)."""
    out = np.full((data.shape[0], int(window.height), int(window.width)), np.nan, np.float32)
    warp_array(data, out, src_transform=src_transform @ Affine.translation(-EDGE_PX, -EDGE_PX), src_crs=src_crs,
               dst_transform=grid.transform @ Affine.translation(window.col_off, window.row_off), dst_crs=grid.crs,
               resampling=resampling, **_NODATA[masked], **({"XSCALE": scale[0], "YSCALE": scale[1]} if scale else {}))
    return out


class WindowReader:
    """Reads windows of a Grid from an imagery file, scaled to [0, 1], plus a validity mask.

    A source much finer than the grid is read decimated (:func:`decimation`): each window's
    footprint is read from the file at the decimated resolution (GDAL takes its overviews when
    present, else averages), on whole blocks of source pixels so that a pixel reads the same in
    every window, then warped onto the window.
    """

    def __init__(self, imagery: Imagery, grid: Grid, resampling: Resampling = Resampling.bilinear):
        self.imagery = imagery
        self.grid = grid
        self.resampling = resampling
        cap_block_cache()
        self._local = threading.local()
        self._handles: list[tuple[rasterio.io.DatasetReader, WarpedVRT | None]] = []
        self._lock = threading.Lock()
        src = open_source(imagery)
        self.step = decimation(src, grid)
        # no nodata, alpha or mask band: GDAL's mask is 255 everywhere, and reading it cost 0.013 s a window
        self._all_valid = src.mask_flag_enums[imagery.band_indexes[0] - 1] == [MaskFlags.all_valid]
        self._scale = warp_scale(source_pixels_per_grid_pixel(src, grid), self.step)
        self._adopt(src)

    def _adopt(self, src: rasterio.io.DatasetReader) -> tuple[rasterio.io.DatasetReader, WarpedVRT | None]:
        """``src`` (and its warped view, reading at full resolution) as the calling thread's handle."""
        # without a nodata value the warped view says every pixel is valid, past the image's edge
        # too (a tile in another CRS: its grid's corners, 9 % of a Massachusetts tile's): an alpha
        # band of its own says where the image is, unless the file has one GDAL masks by already
        alpha = self.imagery.nodata is None and ColorInterp.alpha not in src.colorinterp
        vrt = None if self.step != (1, 1) else WarpedVRT(
            src, crs=self.grid.crs, transform=self.grid.transform, width=self.grid.width, height=self.grid.height,
            resampling=self.resampling, src_nodata=self.imagery.nodata, nodata=self.imagery.nodata, add_alpha=alpha,
        )
        self._local.handle = (src, vrt)
        with self._lock:
            self._handles.append((src, vrt))
        return src, vrt

    def _handle(self) -> tuple[rasterio.io.DatasetReader, WarpedVRT | None]:
        """The calling thread's own dataset handle (GDAL's are not to be shared between threads), so
        that several threads may read windows at once: a GPU outruns one reading thread."""
        handle = getattr(self._local, "handle", None)
        return handle if handle is not None else self._adopt(open_source(self.imagery))

    def read(self, row: int, col: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """(3, h, w) float32 in [0, 1] and (h, w) bool valid mask; outside the grid is invalid."""
        data = np.zeros((3, height, width), np.float32)
        valid = np.zeros((height, width), bool)
        r0, c0 = max(row, 0), max(col, 0)
        r1, c1 = min(row + height, self.grid.height), min(col + width, self.grid.width)
        if r1 > r0 and c1 > c0:
            window = Window(c0, r0, c1 - c0, r1 - r0)
            inner = (slice(r0 - row, r1 - row), slice(c0 - col, c1 - col))
            with read_errors(self.imagery.path):
                src, vrt = self._handle()
                if vrt is None:
                    data[(slice(None),) + inner], valid[inner] = self._read_decimated(src, window)
                else:
                    data[(slice(None),) + inner] = vrt.read(self.imagery.band_indexes, window=window)
                    valid[inner] = vrt.read_masks(1, window=window) > 0
            valid &= np.isfinite(data).all(axis=0)  # NaN pixels of float imagery are no data
        lo, hi = self.imagery.stretch
        data = (data - lo[:, None, None]) / (hi - lo)[:, None, None]
        data[:, ~valid] = 0.0
        np.clip(data, 0.0, 1.0, out=data)
        return data, valid

    def _read_decimated(self, src: rasterio.io.DatasetReader, window: Window) -> tuple[np.ndarray, np.ndarray]:
        """The grid ``window`` from a decimated read of the source pixels under it (plus a few
        decimated pixels of context for the resampling kernel)."""
        kx, ky = self.step
        w = source_footprint(self.grid, window, src.crs, src.transform)
        pad = 3  # decimated pixels of context on every side
        c0 = max(0, (math.floor(min(w.col_off, w.col_off + w.width)) // kx - pad) * kx)
        r0 = max(0, (math.floor(min(w.row_off, w.row_off + w.height)) // ky - pad) * ky)
        c1 = min(src.width // kx * kx, (-(-math.ceil(max(w.col_off, w.col_off + w.width)) // kx) + pad) * kx)
        r1 = min(src.height // ky * ky, (-(-math.ceil(max(w.row_off, w.row_off + w.height)) // ky) + pad) * ky)
        shape = (int(window.height), int(window.width))
        if c1 <= c0 or r1 <= r0:
            return np.zeros((3, *shape), np.float32), np.zeros(shape, bool)
        src_window = Window(c0, r0, c1 - c0, r1 - r0)
        out_shape = ((r1 - r0) // ky, (c1 - c0) // kx)
        bands = self.imagery.band_indexes
        pixels = src.read(bands, window=src_window, out_shape=(len(bands), *out_shape), resampling=Resampling.average)
        alpha = (np.full(out_shape, 255, np.uint8) if self._all_valid else
                 src.read_masks(bands[0], window=src_window, out_shape=out_shape, resampling=Resampling.average))
        transform = src.window_transform(src_window) @ Affine.scale(kx, ky)
        return warp_window(pixels, alpha, transform, src.crs, self.grid, window, self.resampling, self._scale)

    def read_all(self) -> tuple[np.ndarray, np.ndarray]:
        return self.read(0, 0, self.grid.height, self.grid.width)

    def close(self) -> None:
        with self._lock:
            handles, self._handles = self._handles, []
        for src, vrt in handles:
            if vrt is not None:
                vrt.close()
            src.close()

    def __enter__(self) -> WindowReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
