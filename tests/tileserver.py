"""A local XYZ tile server for tests: web-mercator PNG/JPEG tiles cut from real imagery.

Tiles are warped on request from a real GeoTIFF (the Paris sample) onto the tile's
EPSG:3857 footprint, so a client sees what a real imagery server would send. Switches make it
misbehave the ways real servers do: a fixed error status, 429 with Retry-After for the first N
requests, an error page that quotes the URL asked for, slow answers, truncated bodies, corrupt images. It counts requests and the most that
were in flight at once. ``caching`` makes it send caching headers (Cache-Control, Expires, an ETag
of the tile's bytes and ``edition``, Last-Modified) and answer conditional requests with 304; the
log keeps each request's conditional headers.
"""
from __future__ import annotations

import hashlib
import io
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from PIL import Image
from rasterio.enums import Resampling
from rasterio.warp import reproject

from osmgap.sources.tile_cache import TileCache
from osmgap.sources.tile_fetcher import TILE_MAX_AGE_S
from tests.loopback import LoopbackServer

HALF_WORLD_M = 20037508.342789244
TILE_PX = 256


@dataclass
class Faults:
    status: int | None = None  # answer every request with this status
    too_many: int = 0  # the first N requests get 429
    retry_after: str = "1"
    slow_s: float = 0.0  # wait before answering
    truncate: int = 0  # the first N tiles are cut short (Content-Length says more)
    corrupt: bool = False  # every tile is a broken image (consistent Content-Length)
    echo: int = 0  # the first N requests get 503 with a page quoting the requested URL, as CDNs' do
    broken_header: bool = False  # every answer has a header line without a colon (urllib3 warns, quoting the URL)
    no_imagery: Callable[[int, int, int], bool] | None = None  # (z, x, y): the server has no such tile,
    no_tile: str = "404"  # and says so as: 404, 204, "transparent" PNG, "one-colour" PNG, "bing" (a header)


@dataclass
class Caching:
    headers: dict[str, str] = field(default_factory=dict)  # sent with every tile and 304: Cache-Control, Expires, Date...
    etag: bool = False  # an ETag from the tile's bytes and ``edition``
    last_modified: str | None = None
    edition: int = 0  # a new edition changes every ETag (new imagery)
    raw_etag: str | None = None  # sent as the ETag instead (a hostile server)


@dataclass
class Log:
    times: list[float] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    conditions: list[dict[str, str]] = field(default_factory=list)  # If-None-Match / If-Modified-Since of each tile request
    in_flight: int = 0
    max_in_flight: int = 0


class TileServer:
    """``with TileServer(image) as srv: srv.url`` -> ``http://127.0.0.1:PORT/{z}/{x}/{y}.png``."""

    def __init__(self, image: Path, fmt: str = "png"):
        self.image = Path(image)
        self.fmt = fmt
        self.faults = Faults()
        self.caching = Caching()
        self.log = Log()
        self._lock = threading.Lock()
        self._src = rasterio.open(self.image)
        self._loopback = LoopbackServer(self._handler())

    @property
    def url(self) -> str:
        return f"{self._loopback.origin}/{{z}}/{{x}}/{{y}}.{self.fmt}"

    def __enter__(self) -> TileServer:
        self._loopback.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._loopback.stop()
        self._src.close()

    def tile(self, z: int, x: int, y: int) -> bytes:
        """The tile warped from the image (black outside it), encoded as PNG or JPEG."""
        span = 2 * HALF_WORLD_M / 2 ** z
        dst = np.zeros((3, TILE_PX, TILE_PX), np.uint8)
        transform = Affine(span / TILE_PX, 0, -HALF_WORLD_M + x * span, 0, -span / TILE_PX, HALF_WORLD_M - y * span)
        with self._lock:  # one GDAL dataset, many threads
            reproject(rasterio.band(self._src, [1, 2, 3]), dst, dst_transform=transform, dst_crs="EPSG:3857",
                      resampling=Resampling.bilinear, dst_nodata=0)
        buf = io.BytesIO()
        Image.fromarray(dst.transpose(1, 2, 0)).save(buf, format="PNG" if self.fmt == "png" else "JPEG", quality=92)
        return buf.getvalue()

    def _cache_headers(self, body: bytes) -> dict[str, str]:
        c = self.caching
        out = dict(c.headers)
        if c.etag:
            out["ETag"] = f'"{hashlib.sha256(body + bytes([c.edition])).hexdigest()[:16]}"'
        if c.raw_etag is not None:
            out["ETag"] = c.raw_etag
        if c.last_modified:
            out["Last-Modified"] = c.last_modified
        return out

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                with server._lock:
                    server.log.in_flight += 1
                    server.log.max_in_flight = max(server.log.max_in_flight, server.log.in_flight)
                    n = len(server.log.times)
                    server.log.times.append(time.monotonic())
                self._counted = True
                try:
                    self._answer(n)
                finally:
                    self._leave()

            def _leave(self) -> None:
                """Out of the in-flight count before the last byte goes: once the client has the
                whole answer it may send its next request, and this thread may not have returned."""
                if self._counted:
                    self._counted = False
                    with server._lock:
                        server.log.in_flight -= 1

            def _answer(self, n: int) -> None:
                f = server.faults
                if f.slow_s:
                    time.sleep(f.slow_s)
                if f.status is not None:
                    return self._send(f.status, b"no")
                if n < f.echo:
                    return self._send(503, f"<h1>503</h1> upstream failed for {self.path}".encode())
                if n < f.too_many:
                    return self._send(429, b"slow down", {"Retry-After": f.retry_after})
                try:
                    z, x, y = (int(p.split(".")[0]) for p in self.path.strip("/").split("/")[-3:])
                except ValueError:
                    return self._send(400, b"bad path")
                if f.no_imagery is not None and f.no_imagery(z, x, y):
                    return self._no_tile(f.no_tile)
                if server._src.closed:  # a slow answer outliving its test: nobody is waiting
                    self.close_connection = True
                    return None
                body = server.tile(z, x, y)
                asked = {k: v for k, v in self.headers.items() if k.lower() in ("if-none-match", "if-modified-since")}
                server.log.conditions.append(asked)
                cache = server._cache_headers(body)
                if "ETag" in cache and asked.get("If-None-Match") == cache["ETag"] or \
                        "If-None-Match" not in asked and cache.get("Last-Modified") and \
                        asked.get("If-Modified-Since") == cache["Last-Modified"]:
                    return self._not_modified(cache, len(body))
                if f.corrupt:
                    return self._send(200, body[: len(body) // 2])
                if n < f.too_many + f.truncate:
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    server.log.statuses.append(200)
                    self._leave()
                    self.wfile.write(body[: len(body) // 2])
                    self.close_connection = True
                    return
                self._send(200, body, cache)

            def _no_tile(self, form: str) -> None:
                """"No imagery here", in each of the ways real servers say it."""
                if form in ("404", "204"):
                    return self._send(int(form), b"" if form == "204" else b"no tile")
                pixels = np.zeros((TILE_PX, TILE_PX, 4), np.uint8)  # transparent
                if form == "one-colour":
                    pixels[:] = (204, 204, 204, 255)
                elif form == "bing":  # a camera glyph on grey, with Bing's header
                    pixels[:] = (230, 230, 230, 255)
                    pixels[96:160, 80:176, :3] = 120
                buf = io.BytesIO()
                Image.fromarray(pixels).save(buf, format="PNG")
                headers = {"X-VE-Tile-Info": "no-tile"} if form == "bing" else {}
                return self._send(200, buf.getvalue(), headers)

            def _not_modified(self, headers: dict[str, str], length: int) -> None:
                """304, no body, and the Content-Length the 200 would have had (RFC 9110 8.6 allows it)."""
                self.send_response(304)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(length))
                self.end_headers()
                server.log.statuses.append(304)
                self._leave()

            def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", f"image/{server.fmt}")
                self.send_header("Content-Length", str(len(body)))
                if server.faults.broken_header:
                    self._headers_buffer.append(b"X-Broken-Header-Line\r\n")  # type: ignore[attr-defined]
                self.end_headers()
                server.log.statuses.append(status)
                self._leave()
                self.wfile.write(body)

        return Handler


def kept_body(path: Path) -> bytes:
    """The bytes of the tile kept at ``path`` (CACHE/z/x/y.tile)."""
    kept = TileCache(path.parents[2], TILE_MAX_AGE_S).load(int(path.parents[1].name), int(path.parent.name),
                                                           int(path.stem))
    assert kept is not None, path
    return kept.body
