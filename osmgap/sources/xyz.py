"""Imagery from XYZ/TMS tile servers (``{z}/{x}/{y}`` URL templates, as in JOSM and iD entries).

The source presents itself like a GeoTIFF (osmgap.sources.imagery): an imagery description and
a window reader on the analysis grid, so the rest of the pipeline does not know the difference.
A window is read by fetching the web-mercator tiles under it (osmgap.sources.tile_fetcher: the
one polite, cached tile client) and warping their mosaic onto the window.

Servers cover only part of the world. Past the tile under the AOI's centre (which tells a wrong
URL: a 404 there is an error), a tile the server says it does not have (404, 204, Bing's
``X-VE-Tile-Info: no-tile``), a transparent part of a tile and a tile of one colour (the "no
imagery here" placeholder some servers send) are no coverage: no evidence, and measured before the
run (:func:`measure_xyz_coverage`) so that conflation and the weekly state look only where the
server showed imagery, as they do for an image file's nodata.
"""
from __future__ import annotations

import hashlib
import math
import urllib.parse
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from osmgap.core.aoi import Aoi
from osmgap.core.grid import Grid
from osmgap.core.secrets import public_url
from osmgap.errors import InputError, ServiceError
from osmgap.sources.imagery import Coverage, Imagery, WindowReader, coverage_of, measure_coverage, warp_window
from osmgap.sources.tile_fetcher import TileFetcher, XyzOptions

WEB_MERCATOR = CRS.from_epsg(3857)
HALF_WORLD_M = 20037508.342789244
MAX_LAT = 85.05112878
COVERAGE_CELLS = 16  # a tile's coverage is judged on this many cells a side (16 px of a 256 px tile)


@dataclass(frozen=True)
class XyzImagery:
    """An XYZ source, with the attributes of :class:`Imagery` that the pipeline reads."""

    options: XyzOptions
    path: str  # the URL template, key masked; not a Path, which would make "http://" "http:/"
    resolution_m: float
    crs: CRS = WEB_MERCATOR
    bounds_wgs84: tuple[float, float, float, float] = (-180.0, -MAX_LAT, 180.0, MAX_LAT)
    band_indexes: list[int] = field(default_factory=lambda: [1, 2, 3])
    nodata: float | None = None
    dtype: str = "uint8"

    def provenance(self) -> dict[str, Any]:
        o = self.options
        return {"path": public_url(o.url), "source": "xyz", "zoom": o.zoom, "crs": "EPSG:3857",
                "resolution_m": round(self.resolution_m, 3), "dtype": self.dtype,
                "attribution": o.attribution, "licence": o.licence}


AnyImagery = Imagery | XyzImagery


def open_xyz(options: XyzOptions, aoi_wgs84: Any) -> XyzImagery:
    """Check the template and fetch one tile under the AOI, so a wrong URL, key or zoom is an
    InputError before any work (and any output) is done."""
    url = options.url
    if not url.startswith(("http://", "https://")):
        raise InputError(public_url(url), "XYZ URL must start with http:// or https://")
    if not ("{x}" in url and ("{y}" in url or "{-y}" in url) and ("{z}" in url or "{zoom}" in url)):
        raise InputError(public_url(url), "XYZ URL template needs {z}, {x} and {y} (or {-y} for TMS)")
    if not 0 <= options.zoom <= 24:
        raise InputError(public_url(url), f"zoom {options.zoom} is outside 0..24")
    try:
        _ = urllib.parse.urlsplit(url).port  # reading it checks it: 99999 or a name is no port
    except ValueError:
        raise InputError(public_url(url), "the URL's port is not a number from 1 to 65535") from None
    lon, lat = aoi_wgs84.centroid.x, aoi_wgs84.centroid.y
    x, y = lonlat_to_tile(lon, lat, options.zoom)
    fetcher = TileFetcher.for_options(options)
    tile = fetcher.get(options.zoom, x, y, probe=True)
    if tile is None or no_imagery(tile):
        fetcher.cached(options.zoom, x, y).unlink(missing_ok=True)  # asked again next time: coverage may come
        raise InputError(public_url(url), f"the tile under the AOI's centre ({options.zoom}/{x}/{y}) is blank: the "
                                          "server has no imagery there at this zoom (try a lower --xyz-zoom)")
    # ground size of the pixels the server sends (a 512 px "@2x" tile halves it; a 1 px tile is
    # refused later as far too coarse for the model)
    res = 2 * HALF_WORLD_M / tile.shape[2] / 2 ** options.zoom * math.cos(math.radians(lat))
    return XyzImagery(options, public_url(url), res)  # messages may name it: no key in it


def no_imagery(tile: np.ndarray) -> bool:
    """Whether an RGBA tile shows no imagery: transparent, or one colour where opaque (a
    placeholder; a real tile with a road in it is never one colour)."""
    shown = tile[:3][:, tile[3] > 0]
    return not shown.size or bool((shown == shown[:, :1]).all())


def measure_xyz_coverage(imagery: XyzImagery, aoi: Aoi) -> Coverage:
    """The AOI's coverage by the server's imagery: every tile under the AOI is fetched (into the
    cache that the segmentation then reads) and judged on COVERAGE_CELLS cells a side; what
    :func:`no_imagery` or the server calls no tile is not covered. InputError naming the server
    when nothing under the AOI is imagery."""
    z = imagery.options.zoom
    west, south, east, north = aoi.geometry.bounds
    xa, ya = lonlat_to_tile(west, north, z)
    xb, yb = lonlat_to_tile(east, south, z)
    keys = [(x, y) for y in range(ya, yb + 1) for x in range(xa, xb + 1)]
    fetcher = TileFetcher.for_options(imagery.options)
    fetcher.use((z, *k) for k in keys)  # a prune while they are fetched must not take the ones still to come
    n = COVERAGE_CELLS
    with ThreadPoolExecutor(max(1, imagery.options.concurrency)) as pool:
        cells = list(pool.map(lambda k: _covered_cells(fetcher.get(z, *k), n), keys))
    valid = np.zeros(((yb - ya + 1) * n, (xb - xa + 1) * n), bool)
    for (x, y), part in zip(keys, cells):
        valid[(y - ya) * n:(y - ya + 1) * n, (x - xa) * n:(x - xa + 1) * n] = part
    span = 2 * HALF_WORLD_M / 2 ** z
    transform = Affine(span / n, 0, -HALF_WORLD_M + xa * span, 0, -span / n, HALF_WORLD_M - ya * span)
    coverage = coverage_of(valid, transform, WEB_MERCATOR, aoi)
    if coverage.area_wgs84.is_empty:
        raise InputError(public_url(imagery.options.url), f"no usable imagery over the AOI: the server has no "
                                                          f"tile with imagery under it at zoom {z}")
    return coverage


def _covered_cells(tile: np.ndarray | None, n: int) -> np.ndarray:
    """(n, n) mask of the cells of a tile that are mostly opaque imagery."""
    if tile is None or no_imagery(tile):
        return np.zeros((n, n), bool)
    h, w = tile.shape[1:]
    rows = ((np.arange(4 * n) + 0.5) * h / (4 * n)).astype(int)  # 4 x 4 samples a cell, any tile size
    cols = ((np.arange(4 * n) + 0.5) * w / (4 * n)).astype(int)
    opaque = tile[3][np.ix_(rows, cols)] > 0
    return cast(np.ndarray, opaque.reshape(n, 4, n, 4).mean(axis=(1, 3)) >= 0.5)


def measure_any_coverage(imagery: AnyImagery, aoi: Aoi) -> Coverage:
    """The AOI's coverage by usable pixels of either kind of imagery."""
    if isinstance(imagery, XyzImagery):
        return measure_xyz_coverage(imagery, aoi)
    return measure_coverage(imagery, aoi)


def lonlat_to_tile(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2 ** z
    lat = max(-MAX_LAT, min(MAX_LAT, lat))
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return min(max(x, 0), n - 1), min(max(y, 0), n - 1)


StandIns = dict[tuple[int, int, int], float]  # tile (z, x, y) -> seconds past its lifetime when it stood in


def stand_ins(imagery: AnyImagery) -> StandIns:
    """A copy of the tiles this process used from the cache in the server's place so far (none
    for a file)."""
    if not isinstance(imagery, XyzImagery):
        return {}
    return TileFetcher.for_options(imagery.options).stood_in_so_far()


def add_stand_ins(imagery: AnyImagery, stood: StandIns) -> None:
    """Count another process's stand-ins (a Dask worker's: the tiles around its windows) in this
    process's, so the run's summary counts them too."""
    if stood and isinstance(imagery, XyzImagery):
        TileFetcher.for_options(imagery.options).add_stood_in(stood)


def stand_in_warning(imagery: XyzImagery) -> str | None:
    """What the run's summary says when the run used kept tiles past their lifetime because the
    server failed: this process's stand-ins and those its workers reported (:func:`add_stand_ins`)."""
    stood_in = stand_ins(imagery)
    if not stood_in:
        return None
    return (f"WARNING: tile server {public_url(imagery.options.url)} failed: {len(stood_in)} tile(s) were read from "
            f"osmgap's cache up to {max(stood_in.values()) / 86400:.1f} days past the lifetime the server gave them; "
            "the imagery may be older than a fresh run would see")


class XyzWindowReader:
    """Windows of a Grid read from tiles, like :class:`WindowReader` reads them from a file."""

    def __init__(self, imagery: XyzImagery, grid: Grid, resampling: Resampling = Resampling.bilinear):
        self.imagery = imagery
        self.grid = grid
        self.resampling = resampling
        self.fetcher = TileFetcher.for_options(imagery.options)

    def read(self, row: int, col: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """(3, h, w) float32 in [0, 1] and (h, w) valid mask; outside the grid is invalid."""
        data = np.zeros((3, height, width), np.float32)
        valid = np.zeros((height, width), bool)
        r0, c0 = max(row, 0), max(col, 0)
        r1, c1 = min(row + height, self.grid.height), min(col + width, self.grid.width)
        if r1 <= r0 or c1 <= c0:
            return data, valid
        dst_transform = self.grid.transform @ Affine.translation(c0, r0)
        x0, y1 = dst_transform @ (0, 0)
        x1, y0 = dst_transform @ (c1 - c0, r1 - r0)
        mosaic, src_transform = self._mosaic(transform_bounds(self.grid.crs, "EPSG:4326", x0, y0, x1, y1,
                                                              densify_pts=21))
        part, ok = warp_window(mosaic[:3], mosaic[3], src_transform, WEB_MERCATOR, self.grid,
                               Window(c0, r0, c1 - c0, r1 - r0), self.resampling)
        inner = (slice(r0 - row, r1 - row), slice(c0 - col, c1 - col))
        data[(slice(None),) + inner] = np.clip(part / 255.0, 0.0, 1.0) * ok  # ok: fully inside the fetched tiles
        valid[inner] = ok
        return data, valid

    def _mosaic(self, bounds: tuple[float, float, float, float]) -> tuple[np.ndarray, Affine]:
        """The tiles under lon/lat ``bounds`` (one tile of margin) as one array and its transform."""
        z = self.imagery.options.zoom
        xa, ya = lonlat_to_tile(bounds[0], bounds[3], z)
        xb, yb = lonlat_to_tile(bounds[2], bounds[1], z)
        n = 2 ** z
        xs = range(max(0, xa - 1), min(n - 1, xb + 1) + 1)
        ys = range(max(0, ya - 1), min(n - 1, yb + 1) + 1)
        keys = [(x, y) for y in ys for x in xs]
        with ThreadPoolExecutor(max(1, self.imagery.options.concurrency)) as pool:
            got = list(pool.map(lambda k: self.fetcher.get(z, *k), keys))
        tiles = [(k, t) for k, t in zip(keys, got) if t is not None]  # None: no tile there, no imagery
        shapes = Counter(t.shape[1:] for _, t in tiles) or Counter({(256, 256): 1})
        (size, width), _ = shapes.most_common(1)[0]
        odd = [(x, y, t) for (x, y), t in tiles if t.shape[1:] != (size, size)]
        if odd or size != width:
            for x, y, _ in odd:  # not kept: the next run asks for them again
                self.fetcher.cached(z, x, y).unlink(missing_ok=True)
            x, y, t = odd[0] if odd else (*tiles[0][0], tiles[0][1])
            raise ServiceError(public_url(self.imagery.options.url), f"tile {z}/{x}/{y} is {t.shape[2]}x{t.shape[1]} px, "
                                                                     f"most of the others {width}x{size}")
        mosaic = np.zeros((4, len(ys) * size, len(xs) * size), np.uint8)  # alpha 0: no imagery
        for (x, y), t in tiles:
            if not no_imagery(t):  # a placeholder's pixels are no imagery either
                r, c = (y - ys[0]) * size, (x - xs[0]) * size
                mosaic[:, r:r + size, c:c + size] = t
        span = 2 * HALF_WORLD_M / n
        transform = Affine(span / size, 0, -HALF_WORLD_M + xs[0] * span, 0, -span / size, HALF_WORLD_M - ys[0] * span)
        return mosaic, transform

    def read_all(self) -> tuple[np.ndarray, np.ndarray]:
        return self.read(0, 0, self.grid.height, self.grid.width)

    def close(self) -> None:
        pass

    def __enter__(self) -> XyzWindowReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_window_reader(imagery: AnyImagery, grid: Grid) -> WindowReader | XyzWindowReader:
    """The window reader for either kind of imagery."""
    if isinstance(imagery, XyzImagery):
        return XyzWindowReader(imagery, grid)
    return WindowReader(imagery, grid)


def imagery_name(imagery: AnyImagery, whole_path: bool = False) -> str:
    """How outputs and messages name the imagery: the file's name (or path), or the tile URL
    template with any key masked."""
    if isinstance(imagery, Imagery):
        return str(imagery.path) if whole_path else imagery.path.name
    return public_url(imagery.options.url)


def imagery_fingerprint(imagery: AnyImagery, grid: Grid) -> dict[str, Any]:
    """What identifies the imagery's content over ``grid`` for the tile store: the file's size and
    time, or the server's URL and zoom and a hash of the tiles it serves there
    (:func:`served_digest`: the URL alone would let a resumed weekly run reuse the model tiles of
    imagery the server has since replaced)."""
    out = dict(imagery.provenance())
    if isinstance(imagery, Imagery):
        stat = Path(imagery.path).stat()
        out.update(size=stat.st_size, mtime_ns=stat.st_mtime_ns, stretch=[v.tolist() for v in imagery.stretch])
    else:
        out.update(served=served_digest(imagery, grid))
    return out


def served_digest(imagery: XyzImagery, grid: Grid) -> str:
    """A hash of the bytes of every tile the windows over ``grid`` read (its bounds, one tile of
    margin, as :meth:`XyzWindowReader._mosaic` reads them), as this run gets them: those under the
    AOI were just fetched for its coverage (their digests were kept then), the rest are fetched
    now, into the cache the model reads."""
    z = imagery.options.zoom
    x0, y0 = grid.transform @ (0, 0)
    x1, y1 = grid.transform @ (grid.width, grid.height)
    west, south, east, north = transform_bounds(grid.crs, "EPSG:4326", min(x0, x1), min(y0, y1), max(x0, x1),
                                                max(y0, y1), densify_pts=21)
    xa, ya = lonlat_to_tile(west, north, z)
    xb, yb = lonlat_to_tile(east, south, z)
    last = 2 ** z - 1
    keys = [(z, x, y) for y in range(max(0, ya - 1), min(last, yb + 1) + 1)
            for x in range(max(0, xa - 1), min(last, xb + 1) + 1)]
    fetcher = TileFetcher.for_options(imagery.options)
    fetcher.use(keys)
    missing = [k for k in keys if fetcher.digest(k) is None]
    with ThreadPoolExecutor(max(1, imagery.options.concurrency)) as pool:
        list(pool.map(lambda k: fetcher.get(*k), missing))
    h = hashlib.sha256()
    for key in keys:
        h.update(fetcher.digest(key) or b"no tile")
    return h.hexdigest()[:16]

