"""Tiles of one XYZ/TMS server, fetched politely and kept: osmgap's one tile client.

Tile servers are shared and flaky. So: a disk cache that follows the server's caching headers
(osmgap.core.http_cache, osmgap.sources.tile_cache: its lifetime, between MIN_FRESH_S and
TILE_MAX_AGE_S, since imagery and coverage change; a stale tile is asked for with its ETag or
Last-Modified, and a "304 Not Modified" costs the server no body; ``no-store`` tiles stay in memory
for the run; a kept tile stands in for one the server fails to send, up to STALE_IF_ERROR_S past
its lifetime, with a warning), a limit on concurrent requests, and osmgap's one HTTP client and
retry policy (osmgap.core.http: its User-Agent, capped and jittered backoff on timeouts, 429, 5xx,
truncated or undecodable tiles, ``Retry-After`` honoured), and a one-line InputError on 401/403/404
or another status, or a page (HTML, JSON, text: a login wall) served as a tile (a wrong URL or key is
not going to fix itself), or when the retries run out.
What the tiles show (coverage, windows on the analysis grid) is osmgap.sources.xyz's.
"""
from __future__ import annotations

import hashlib
import io
import logging
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from osmgap.core.http import (
    GaveUp,
    HttpClient,
    Refused,
    Response,
    Retryable,
    RetryPolicy,
    raise_if_retryable,
    retry,
)
from osmgap.core.http_cache import Keeping, keeping
from osmgap.core.secrets import never_log, public_url, redact, url_secrets
from osmgap.errors import InputError, ServiceError
from osmgap.sources.tile_cache import CachedTile, Pruned, TileCache, prune

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
FAILING_PAUSE_S = 300.0  # after the retries ran out, kept tiles stand in unasked this long (a circuit breaker),
MAX_FAILING_PAUSE_S = 86400.0  # or as long as the server's Retry-After asked, up to a day
MAX_UNSTORED_BYTES = 256 * 2**20  # no-store tiles held in memory for the run, at most
# the tile cache's budget, every server's tiles together: ~1,500 km2 of 25 KB zoom-18 tiles at 50° N (JOSM keeps 512 MB,
# for browsing; a weekly run over a large AOI that evicted its own tiles would download them all again)
CACHE_MAX_MB = 4096
# a run prunes the cache each time it has written this share of the budget: a run over a large AOI
# stays near the budget while it runs instead of filling the disk and pruning after (a walk of
# the cache costs ~1 s per 100,000 tiles, so at most 8 walks per budget's worth of tiles)
PRUNE_EVERY_SHARE = 1 / 8

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
    cache_max_mb: int = CACHE_MAX_MB  # the whole tile cache's budget (:func:`prune_cache`)
    retries: int = 4  # after the first try
    backoff_s: float = 1.0  # first wait; doubles on each retry (up to 60 s, less some jitter)
    timeout_s: float = 20.0
    max_retry_after_s: float = 120.0  # a server that asks for a longer pause is not waited for

    @property
    def policy(self) -> RetryPolicy:
        return RetryPolicy(retries=self.retries, backoff_s=self.backoff_s, max_retry_after_s=self.max_retry_after_s)



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


class TileFetcher:
    """Downloads and decodes tiles of one server, through a disk cache, politely."""

    _shared: dict[XyzOptions, TileFetcher] = {}
    _shared_lock = threading.Lock()

    def __init__(self, options: XyzOptions):
        self.options = options
        never_log(*url_secrets(options.url))
        self.cache = TileCache(cache_root(options) / hashlib.sha256(options.url.encode()).hexdigest()[:16], TILE_MAX_AGE_S,
                               STALE_IF_ERROR_S)
        self.http = HttpClient(timeout=options.timeout_s, max_bytes=MAX_TILE_BYTES)
        self.slots = threading.Semaphore(max(1, options.concurrency))
        self.absent: set[tuple[int, int, int]] = set()  # tiles the server said it does not have
        self.unstored: dict[tuple[int, int, int], CachedTile] = {}  # no-store tiles, for this process
        self._unstored_bytes = 0
        self._lock = threading.Lock()  # guards unstored and stood_in
        self.stood_in: dict[tuple[int, int, int], float] = {}  # tiles kept past their lifetime used instead: how far (s)
        self.failing: tuple[float, Exception] | None = None  # until when (monotonic s) not to ask, and why
        self.used: set[tuple[int, int, int]] = set()  # tiles this process read or will: the cache keeps them last
        self.digests: dict[tuple[int, int, int], bytes] = {}  # a hash of each tile's bytes as this process got them
        self._written = 0  # bytes kept on disk since the cache was last pruned (_kept)
        self._pruning = threading.Lock()
        self.pruned_in_use = 0  # this process's tiles the budget had no room for while it ran

    @classmethod
    def for_options(cls, options: XyzOptions) -> TileFetcher:
        """One fetcher (one session, one concurrency limit) per server and process."""
        with cls._shared_lock:
            if options not in cls._shared:
                cls._shared[options] = cls(options)
            return cls._shared[options]

    def use(self, keys: Iterable[tuple[int, int, int]]) -> None:
        """Count tiles about to be read as used: a prune meanwhile keeps them last."""
        with self._lock:
            self.used.update(keys)

    def digest(self, key: tuple[int, int, int]) -> bytes | None:
        """A hash of the bytes of tile ``key`` as this process last got it, ``b"absent"`` where the
        server had none; None when not asked for yet."""
        return b"absent" if key in self.absent else self.digests.get(key)

    def _got(self, key: tuple[int, int, int], body: bytes) -> None:
        self.digests[key] = hashlib.blake2b(body, digest_size=16).digest()

    def get(self, z: int, x: int, y: int, probe: bool = False) -> np.ndarray | None:
        """The tile as (4, h, w) uint8 RGBA, from the cache while it is fresh; a stale one is
        revalidated, and stands in while the server fails (:meth:`_stand_in`); None where the
        server has no tile (remembered for this process only: coverage may come by next week).
        For the ``probe`` (the first tile asked for) a 404 is an error: the URL is wrong."""
        key = (z, x, y)
        self.used.add(key)
        kept = self.unstored.get(key) or self.cache.load(z, x, y)
        pixels = None
        if kept is not None:
            try:
                pixels = decode_tile(kept.body)
            except (ValueError, TileFormatError):  # damaged, or kept by an osmgap that read such tiles
                self.cache.forget(z, x, y)  # fetched again
                kept = None
            if pixels is not None and kept is not None and kept.fresh(time.time()):
                self._got(key, kept.body)
                return pixels
        if key in self.absent:
            return None
        fallback = kept if pixels is not None and kept is not None and kept.usable_on_error(time.time()) else None
        failing = self.failing
        if fallback is not None and failing is not None and time.monotonic() < failing[0]:
            self._stand_in(key, fallback, failing[1])  # not asked: each tile would wait out the retries
            self._got(key, fallback.body)
            return pixels
        try:
            got = self._download(tile_url(self.options.url, z, x, y), probe, kept)
        except ServerFailing as exc:
            pause = max(FAILING_PAUSE_S, min(exc.retry_after or 0.0, MAX_FAILING_PAUSE_S))
            self.failing = (time.monotonic() + pause, exc.error)
            if fallback is None:
                raise exc.error from None
            self._stand_in(key, fallback, exc.error)
            self._got(key, fallback.body)
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
        if keep.store:
            self._kept(len(body))
        else:
            self._hold(key, CachedTile(body, now + keep.fresh_s, stale_until=now + keep.fresh_s + keep.stale_s))
        self._got(key, body)
        return pixels if new_pixels is None else new_pixels

    def _kept(self, size: int) -> None:
        """Count a tile written to the cache; once PRUNE_EVERY_SHARE of the budget is written,
        prune the cache back under it while the run goes on (this process's tiles last, its
        oldest first: the windows it read long ago), one thread at a time."""
        budget = self.options.cache_max_mb * 2**20
        with self._lock:
            self._written += size
            due = self._written >= budget * PRUNE_EVERY_SHARE
            if due:
                self._written = 0
        if due and self._pruning.acquire(blocking=False):
            try:
                done = self.prune()
                self.pruned_in_use += done.in_use_removed
            finally:
                self._pruning.release()

    def prune(self) -> Pruned:
        """The whole cache back under its budget, the tiles this process read kept last."""
        return prune(cache_root(self.options), self.options.cache_max_mb * 2**20,
                     [self.cached(*key) for key in list(self.used)])

    def _stand_in(self, key: tuple[int, int, int], kept: CachedTile, error: Exception) -> None:
        """Note a kept tile used past its lifetime because the server failed: warned once per
        process (then per tile with -v); the run's summary says how many (:func:`stand_in_warning`)."""
        late_s = max(0.0, time.time() - kept.fresh_until)
        with self._lock:
            first = not self.stood_in
            self.stood_in[key] = max(late_s, self.stood_in.get(key, 0.0))
        say = log.warning if first else log.info
        say("%s; using the tile %s/%s/%s kept %.1f days past its lifetime instead", error, *key, late_s / 86400)

    def stood_in_so_far(self) -> dict[tuple[int, int, int], float]:
        """A copy of :attr:`stood_in`, taken while no thread adds to it."""
        with self._lock:
            return dict(self.stood_in)

    def add_stood_in(self, stood: Mapping[tuple[int, int, int], float]) -> None:
        """Count another process's stand-ins of this server (a Dask worker's) as this one's."""
        with self._lock:
            for key, late_s in stood.items():
                self.stood_in[key] = max(late_s, self.stood_in.get(key, 0.0))

    def _hold(self, key: tuple[int, int, int], tile: CachedTile) -> None:
        """Keep a no-store tile in memory for the run (while the held ones stay under MAX_UNSTORED_BYTES)."""
        with self._lock:
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
            raise ServerFailing(ServiceError(public_url(url), said), exc.retry_after) from None  # the server's (exit 1)
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
            page = not_an_image(response)
            if page:  # a login wall, a captive portal, an "API key invalid" page: no retry mends it
                raise InputError(public_url(url), f"tile server answered {redact(page, url_secrets(url))} "
                                                  "instead of an image: check the URL, key and access") from None
            raise Retryable(str(exc)) from None
        except TileFormatError as exc:
            raise InputError(public_url(url), f"tile server sends {exc}") from None

    @staticmethod
    def _keeping(response: Response) -> Keeping:
        return keeping(response, TILE_MAX_AGE_S, TILE_MAX_AGE_S, time.time(), STALE_IF_ERROR_S)  # no lifetime given: osmgap's week


def cache_root(options: XyzOptions) -> Path:
    """The folder of every server's cached tiles."""
    return Path(options.cache_dir or DEFAULT_CACHE_DIR).expanduser()


def prune_cache(options: XyzOptions) -> str | None:
    """After a run: the tile cache back under its budget (osmgap.sources.tile_cache.prune), the
    tiles this process read kept last. Returns the run's warning when even they did not fit: the
    next run downloads them again, which costs the server what the cache is there to spare it."""
    fetcher = TileFetcher.for_options(options)
    done = fetcher.prune()
    if done.removed:
        log.info("tile cache: %d tiles removed, %.0f MB kept (budget %d MB)", done.removed, done.kept_bytes / 2**20,
                 options.cache_max_mb)
    removed = done.in_use_removed + fetcher.pruned_in_use  # now, and while the run went on
    if not removed:
        return None
    warning = (f"WARNING: the tiles this run read take more than the tile cache's budget (--xyz-cache-mb "
               f"{options.cache_max_mb}): {removed} of them were removed, and the next run downloads them again; "
               "give a larger --xyz-cache-mb")
    log.warning(warning)
    return warning


PAGE_TYPES = ("text/", "html", "json", "xml")  # Content-Types of a page, not a tile
PAGE_START = (b"<", b"{", b"[")  # what a page (HTML, XML, JSON) starts with, whatever its Content-Type says
PAGE_QUOTED = 80  # characters of the page quoted in the error


def not_an_image(response: Response) -> str | None:
    """For an undecodable 200: what the server sent, when it is a page rather than a damaged tile
    (its Content-Type and first words, on one line); None for what may be a tile cut short."""
    kind = (response.header("Content-Type") or "").split(";")[0].strip().lower()
    start = response.body.lstrip()[:PAGE_QUOTED * 4]
    if not (any(t in kind for t in PAGE_TYPES) or start.startswith(PAGE_START)):
        return None
    text = " ".join(start.decode("utf-8", "replace").split())[:PAGE_QUOTED]
    return f"{kind or 'a page'}" + (f' ("{text}")' if text else "")


class ServerFailing(Exception):
    """The retries ran out (unreachable, timeouts, 429, 5xx): ``error`` is what the run fails
    with unless a kept tile may stand in; ``retry_after``: how long the server asked not to be
    asked (seconds), if it did."""

    def __init__(self, error: InputError | ServiceError, retry_after: float | None = None):
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


class TileFormatError(Exception):
    """A tile osmgap cannot read as imagery whatever the retries: the user's choice of server."""


def decode_tile(raw: bytes) -> np.ndarray:
    """PNG/JPEG/WebP bytes -> (4, h, w) uint8 RGBA (alpha 255 where the tile has none: a
    transparent pixel is no imagery, the "no coverage" tile servers send); ValueError when
    truncated, not an image or larger than any tile (decoding a "pixel bomb" is not tried)."""
    buf = io.BytesIO(raw)
    try:
        with Image.open(buf) as img:
            if max(img.size) > MAX_TILE_PX:
                raise ValueError(f"a tile of {img.size[0]}x{img.size[1]} px, larger than tile servers send")
            if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
                raise TileFormatError(f"{img.mode} tiles (16-bit or float grey): osmgap reads 8-bit tiles")
            img.load()  # decodes fully: a truncated file raises here, not later
            rgba = np.asarray(img.convert("RGBA"))
    except (OSError, SyntaxError, Image.DecompressionBombError) as exc:
        said = str(exc).replace(f" {buf!r}", "")  # PIL names the stream: "<_io.BytesIO object at 0x...>"
        raise ValueError(f"corrupt or truncated tile ({said})") from None
    return np.ascontiguousarray(rgba.transpose(2, 0, 1))
