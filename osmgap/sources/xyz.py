"""Imagery from XYZ/TMS tile servers (``{z}/{x}/{y}`` URL templates, as in JOSM and iD entries).

The source presents itself like a GeoTIFF (osmgap.sources.imagery): an imagery description and
a window reader on the analysis grid, so the rest of the pipeline does not know the difference.
A window is read by fetching the web-mercator tiles under it and warping their mosaic onto the
window. Tile servers are shared and flaky, so fetching is polite and careful: a disk cache that
follows the server's caching headers (osmgap.core.http_cache: its lifetime, between MIN_FRESH_S
and TILE_MAX_AGE_S, since imagery and coverage change; a stale tile is asked for with its ETag or
Last-Modified, and a "304 Not Modified" costs the server no body; ``no-store`` tiles stay in
memory for the run; a kept tile stands in for one the server fails to send, up to STALE_IF_ERROR_S
past its lifetime, with a warning), a limit on concurrent requests, and osmgap's one HTTP client and retry policy (osmgap.core.http:
its User-Agent, capped and jittered backoff on timeouts, 429, 5xx, truncated or undecodable
tiles, ``Retry-After`` honoured), and a one-line InputError on 401/403/404 or another status
(a wrong URL or key is not going to fix itself) or when the retries run out.

Servers cover only part of the world. Past the tile under the AOI's centre (which tells a wrong
URL: a 404 there is an error), a tile the server says it does not have (404, 204, Bing's
``X-VE-Tile-Info: no-tile``), a transparent part of a tile and a tile of one colour (the "no
imagery here" placeholder some servers send) are no coverage: no evidence, and measured before the
run (:func:`measure_xyz_coverage`) so that conflation and the weekly state look only where the
server showed imagery, as they do for an image file's nodata.
"""
from __future__ import annotations

import hashlib
import io
import logging
import math
import threading
import time
import urllib.parse
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import numpy as np
from affine import Affine
from PIL import Image
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from osmgap.core.aoi import Aoi
from osmgap.core.grid import Grid
from osmgap.core.http import (
    GaveUp,
    HttpClient,
    Refused,
    Response,
    Retryable,
    RetryPolicy,
    public_url,
    raise_if_retryable,
    redact,
    retry,
    url_secrets,
)
from osmgap.core.http_cache import Keeping, keeping
from osmgap.errors import InputError, ServiceError
from osmgap.sources.imagery import Coverage, Imagery, WindowReader, coverage_of, measure_coverage, warp_window
from osmgap.sources.tile_cache import CachedTile, TileCache

WEB_MERCATOR = CRS.from_epsg(3857)
HALF_WORLD_M = 20037508.342789244
MAX_LAT = 85.05112878
DEFAULT_CACHE_DIR = Path("~/.cache/osmgap/xyz")
MAX_TILE_BYTES = 32 * 2**20
MAX_TILE_PX = 1024  # a side: tile servers send 256 or 512 (1024 at most for "@4x"); more is no tile
FATAL_STATUS = {401: "refused the credentials (401 Unauthorized)", 403: "refused access (403 Forbidden)",
                404: "has no such tile (404 Not Found): check the URL template and zoom"}
NO_TILE_STATUS = frozenset({204, 404})  # past the first tile: "no imagery here", as JOSM reads them
NO_TILE_HEADER = ("X-VE-Tile-Info", "no-tile")  # Bing's placeholder tiles say so (JOSM's <no-tile-header>)
TILE_MAX_AGE_S = 6 * 86400  # a weekly run fetches the server's imagery of its week, not its first week's
MIN_FRESH_S = 3600.0  # a run reads a tile once per window over it: asked once an hour at most (as JOSM)
# a failing server's kept tiles stand in for it this long past their lifetime (or what its
# stale-if-error says, if less): imagery changes over months, and a weekly run on a month-old copy
# of the same tiles is worth more than no run; a tile never kept still fails the run
STALE_IF_ERROR_S = 30 * 86400
FAILING_PAUSE_S = 300.0  # after the retries ran out, kept tiles stand in unasked this long (a circuit breaker)
MAX_UNSTORED_BYTES = 256 * 2**20  # no-store tiles held in memory for the run, at most
COVERAGE_CELLS = 16  # a tile's coverage is judged on this many cells a side (16 px of a 256 px tile)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class XyzOptions:
    """A tile server as an imagery entry describes it, and how hard to try it."""

    url: str
    zoom: int
    attribution: str = ""
    licence: str = "unknown"
    cache_dir: Path | None = None
    concurrency: int = 4  # requests in flight at once, per process
    retries: int = 4  # after the first try
    backoff_s: float = 1.0  # first wait; doubles on each retry (up to 60 s, less some jitter)
    timeout_s: float = 20.0
    max_retry_after_s: float = 120.0  # a server that asks for a longer pause is not waited for

    @property
    def policy(self) -> RetryPolicy:
        return RetryPolicy(retries=self.retries, backoff_s=self.backoff_s, max_retry_after_s=self.max_retry_after_s)


@dataclass(frozen=True)
class XyzImagery:
    """An XYZ source, with the attributes of :class:`Imagery` that the pipeline reads."""

    options: XyzOptions
    path: Path
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


def tile_url(template: str, z: int, x: int, y: int) -> str:
    """Fill a template: ``{z} {x} {y}``, ``{-y}`` (TMS rows count from the south) and ``{switch:a,b}``."""
    url = template.replace("{z}", str(z)).replace("{zoom}", str(z)).replace("{x}", str(x))
    url = url.replace("{-y}", str(2 ** z - 1 - y)).replace("{y}", str(y))
    if "{switch:" in url:
        start = url.index("{switch:")
        end = url.index("}", start)
        choices = url[start + 8:end].split(",")
        url = url[:start] + choices[(x + y) % len(choices)] + url[end + 1:]
    return url


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
    return XyzImagery(options, Path(public_url(url)), res)  # messages may name it: no key in it


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


class TileFetcher:
    """Downloads and decodes tiles of one server, through a disk cache, politely."""

    _shared: dict[XyzOptions, TileFetcher] = {}
    _shared_lock = threading.Lock()

    def __init__(self, options: XyzOptions):
        self.options = options
        root = Path(options.cache_dir or DEFAULT_CACHE_DIR).expanduser()
        self.cache = TileCache(root / hashlib.sha256(options.url.encode()).hexdigest()[:16], TILE_MAX_AGE_S,
                               STALE_IF_ERROR_S)
        self.http = HttpClient(timeout=options.timeout_s, max_bytes=MAX_TILE_BYTES)
        self.slots = threading.Semaphore(max(1, options.concurrency))
        self.absent: set[tuple[int, int, int]] = set()  # tiles the server said it does not have
        self.unstored: dict[tuple[int, int, int], CachedTile] = {}  # no-store tiles, for this process
        self._unstored_bytes = 0
        self._unstored_lock = threading.Lock()
        self.stood_in: dict[tuple[int, int, int], float] = {}  # tiles kept past their lifetime used instead: how far (s)
        self.failing: tuple[float, Exception] | None = None  # when (monotonic s) the server last gave up, and how

    @classmethod
    def for_options(cls, options: XyzOptions) -> TileFetcher:
        """One fetcher (one session, one concurrency limit) per server and process."""
        with cls._shared_lock:
            if options not in cls._shared:
                cls._shared[options] = cls(options)
            return cls._shared[options]

    def get(self, z: int, x: int, y: int, probe: bool = False) -> np.ndarray | None:
        """The tile as (4, h, w) uint8 RGBA, from the cache while it is fresh; a stale one is
        revalidated, and stands in while the server fails (:meth:`_stand_in`); None where the
        server has no tile (remembered for this process only: coverage may come by next week).
        For the ``probe`` (the first tile asked for) a 404 is an error: the URL is wrong."""
        key = (z, x, y)
        kept = self.unstored.get(key) or self.cache.load(z, x, y)
        pixels = None
        if kept is not None:
            try:
                pixels = decode_tile(kept.body)
            except (ValueError, TileFormatError):  # damaged, or kept by an osmgap that read such tiles
                self.cache.forget(z, x, y)  # fetched again
                kept = None
            if pixels is not None and kept is not None and kept.fresh(time.time()):
                return pixels
        if key in self.absent:
            return None
        can_stand_in = pixels is not None and kept is not None and kept.usable_on_error(time.time())
        failing = self.failing
        if can_stand_in and failing is not None and time.monotonic() < failing[0] + FAILING_PAUSE_S:
            self._stand_in(key, cast(CachedTile, kept), failing[1])  # not asked: each tile would wait out the retries
            return pixels
        try:
            got = self._download(tile_url(self.options.url, z, x, y), probe, kept)
        except ServerFailing as exc:
            self.failing = (time.monotonic(), exc.error)
            if not can_stand_in:
                raise exc.error from None
            self._stand_in(key, cast(CachedTile, kept), exc.error)
            return pixels
        self.failing = None
        if got is None:
            self.absent.add(key)
            self.cache.forget(z, x, y)  # the server no longer has it
            return None
        body, keep, new_pixels = got
        keep = replace(keep, fresh_s=max(keep.fresh_s, MIN_FRESH_S))
        now = time.time()
        self.cache.store(z, x, y, body, keep, now)
        if not keep.store:
            self._hold(key, CachedTile(body, now + keep.fresh_s, stale_until=now + keep.fresh_s + keep.stale_s))
        return pixels if new_pixels is None else new_pixels

    def _stand_in(self, key: tuple[int, int, int], kept: CachedTile, error: Exception) -> None:
        """Note a kept tile used past its lifetime because the server failed: warned once per
        process (then per tile with -v); the run's summary says how many (:func:`stand_in_warning`)."""
        late_s = max(0.0, time.time() - kept.fresh_until)
        with self._unstored_lock:
            first = not self.stood_in
            self.stood_in[key] = max(late_s, self.stood_in.get(key, 0.0))
        say = log.warning if first else log.info
        say("%s; using the tile %s/%s/%s kept %.1f days past its lifetime instead", error, *key, late_s / 86400)

    def _hold(self, key: tuple[int, int, int], tile: CachedTile) -> None:
        """Keep a no-store tile in memory for the run (while the held ones stay under MAX_UNSTORED_BYTES)."""
        with self._unstored_lock:
            before = self.unstored.pop(key, None)
            self._unstored_bytes -= len(before.body) if before is not None else 0
            if self._unstored_bytes + len(tile.body) <= MAX_UNSTORED_BYTES:
                self.unstored[key] = tile
                self._unstored_bytes += len(tile.body)

    def cached(self, z: int, x: int, y: int) -> Path:
        """Where tile z/x/y is kept (forgotten by unlinking it)."""
        return self.cache.path(z, x, y)

    def _download(self, url: str, probe: bool, kept: CachedTile | None) -> tuple[bytes, Keeping, np.ndarray | None] | None:
        """The tile's bytes, how to keep them and its pixels (None: the ``kept`` tile's, which the
        server said is current), or None where there is no tile; under the retry policy, the wait
        between tries spent outside the concurrency limit."""
        try:
            return retry(lambda: self._attempt(url, probe, kept), self.options.policy, sleep=time.sleep)
        except GaveUp as exc:
            said = f"tile server {redact(str(exc), url_secrets(url))}"
            if exc.last.startswith(("ConnectionError", "ConnectTimeout")):  # never reached: check the URL (exit 2)
                raise ServerFailing(InputError(public_url(url), said)) from None
            raise ServerFailing(ServiceError(public_url(url), said)) from None  # reached, and failing: the server's (exit 1)
        except Refused as exc:
            raise ServiceError(public_url(url), f"tile server: {redact(str(exc), url_secrets(url))}") from None

    def _attempt(self, url: str, probe: bool, kept: CachedTile | None) -> tuple[bytes, Keeping, np.ndarray | None] | None:
        asked = kept.revalidation().conditional_headers() if kept is not None else {}
        with self.slots:
            response = self.http.send("GET", url, headers=asked)
        if response.status == 304 and asked and kept is not None:  # still current: the kept bytes
            keep = self._keeping(response)
            return kept.body, replace(keep, etag=keep.etag or kept.etag,
                                      last_modified=keep.last_modified or kept.last_modified), None
        no_tile = response.status in NO_TILE_STATUS or response.header(NO_TILE_HEADER[0]) == NO_TILE_HEADER[1]
        if no_tile and not (probe and response.status in FATAL_STATUS):
            return None
        if response.status in FATAL_STATUS:
            raise InputError(public_url(url), f"tile server {FATAL_STATUS[response.status]}")
        raise_if_retryable(response, "GET tile", url_secrets(url))
        if response.status != 200:
            raise InputError(public_url(url), f"tile server answered HTTP {response.status}")
        try:
            return response.body, self._keeping(response), decode_tile(response.body)
        except ValueError as exc:
            raise Retryable(str(exc)) from None
        except TileFormatError as exc:
            raise InputError(public_url(url), f"tile server sends {exc}") from None

    @staticmethod
    def _keeping(response: Response) -> Keeping:
        return keeping(response, TILE_MAX_AGE_S, TILE_MAX_AGE_S, time.time(), STALE_IF_ERROR_S)  # no lifetime given: osmgap's week


class ServerFailing(Exception):
    """The retries ran out (unreachable, timeouts, 429, 5xx): ``error`` is what the run fails
    with unless a kept tile may stand in."""

    def __init__(self, error: InputError | ServiceError):
        super().__init__(str(error))
        self.error = error


def stand_in_warning(imagery: XyzImagery) -> str | None:
    """What the run's summary says when this process used kept tiles past their lifetime because
    the server failed (coverage is measured here first, over every tile of the AOI)."""
    stood_in = TileFetcher.for_options(imagery.options).stood_in
    if not stood_in:
        return None
    return (f"WARNING: tile server {public_url(imagery.options.url)} failed: {len(stood_in)} tile(s) were read from "
            f"osmgap's cache up to {max(stood_in.values()) / 86400:.1f} days past the lifetime the server gave them; "
            "the imagery may be older than a fresh run would see")


class TileFormatError(Exception):
    """A tile osmgap cannot read as imagery whatever the retries: the user's choice of server."""


def decode_tile(raw: bytes) -> np.ndarray:
    """PNG/JPEG/WebP bytes -> (4, h, w) uint8 RGBA (alpha 255 where the tile has none: a
    transparent pixel is no imagery, the "no coverage" tile servers send); ValueError when
    truncated, not an image or larger than any tile (decoding a "pixel bomb" is not tried)."""
    try:
        with Image.open(io.BytesIO(raw)) as img:
            if max(img.size) > MAX_TILE_PX:
                raise ValueError(f"a tile of {img.size[0]}x{img.size[1]} px, larger than tile servers send")
            if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
                raise TileFormatError(f"{img.mode} tiles (16-bit or float grey): osmgap reads 8-bit tiles")
            img.load()  # decodes fully: a truncated file raises here, not later
            rgba = np.asarray(img.convert("RGBA"))
    except (OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ValueError(f"corrupt or truncated tile ({exc})") from None
    return np.ascontiguousarray(rgba.transpose(2, 0, 1))


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


def imagery_fingerprint(imagery: AnyImagery) -> dict[str, Any]:
    """What identifies the imagery's content for the tile store: the file's size and time, or
    the server's URL and zoom."""
    out = dict(imagery.provenance())
    if isinstance(imagery, Imagery):
        stat = Path(imagery.path).stat()
        out.update(size=stat.st_size, mtime_ns=stat.st_mtime_ns, stretch=[v.tolist() for v in imagery.stretch])
    return out

