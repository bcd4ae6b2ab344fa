"""The one way osmgap talks HTTP: Overpass, MapRoulette and tile servers all go through here.

Why one module: the servers osmgap uses are shared and mostly run by volunteers, and one of them
holds the user's MapRoulette key. So there is one User-Agent, one retry policy (what is
retried, how long to wait, when to give up) and one set of rules for secrets, and a fix to any
of them reaches all three clients:

- every request has timeouts: the connect timeout bounds connecting, the read timeout each wait
  for a byte, and the whole answer (status line, headers and body) must come within
  ``read_factor`` read timeouts of the request having been sent, else that attempt's own socket
  is cut (a server trickling a byte at a time cannot hold a cron run); an answer is read into
  memory only up to a cap;
- timeouts, dropped connections, truncated answers, 408, 429 and 5xx may pass: they are retried
  after a capped exponential backoff with jitter (so many clients do not come back in step),
  or after the server's ``Retry-After`` (seconds or an HTTP date) when it asks for longer; a
  server that asks for more than the policy's cap is not hammered early: osmgap gives up;
- redirects are followed here, not by ``requests``: a request that carries a secret header
  (the MapRoulette ``apiKey``, ``Authorization``, ``Cookie``) follows a redirect only to the
  same scheme, host and port, anything else is refused before the secret could travel;
- whatever a server said reaches a message only through :func:`server_text`, and every such
  message goes through :func:`redact`, so an error page that echoes the request's headers
  cannot put the key into a cron log.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import html
import json
import logging
import random
import re
import socket
import threading
import time
import unicodedata
import urllib.parse
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import HTTPError, LocationParseError, ReadTimeoutError
from urllib3.poolmanager import ProxyManager
from urllib3.response import HTTPResponse
from urllib3.util import parse_url

from osmgap import __version__
from osmgap.core.secrets import never_log, redact, url_secrets

log = logging.getLogger(__name__)

PROJECT_URL = "https://github.com/osmgap"
USER_AGENT = f"osmgap/{__version__} (+{PROJECT_URL})"
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})  # and any other 5xx
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
ALWAYS_SECRET = frozenset({"authorization", "proxy-authorization", "cookie"})
MAX_REDIRECTS = 5
MAX_BYTES = 512 * 2**20  # what one answer may hold in memory
READ_FACTOR = 3.0  # a whole answer (head and body) within this many read timeouts: a trickle does not hold osmgap
T = TypeVar("T")


class Retryable(Exception):
    """A failure that may pass (timeout, dropped connection, truncated or garbled answer, 429,
    5xx); ``retry_after`` is what the server asked for, in seconds, if it did."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class GaveUp(Exception):
    """The retries ran out, or the server asked for a longer wait than the policy allows;
    ``retry_after``: what the server's last answer asked for, in seconds, if it did."""

    def __init__(self, attempts: int, last: str, retry_after: float | None = None):
        super().__init__(f"failed {attempts} time{'s' if attempts != 1 else ''}, last: {last}")
        self.attempts = attempts
        self.last = last
        self.retry_after = retry_after


class Refused(Exception):
    """A request osmgap will not make or an answer it will not read: a secret would leave its
    host, too many redirects, an answer over the size cap. Retrying cannot help."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to try again. ``jitter`` takes up to that fraction off each
    backoff wait at random; a ``Retry-After`` is waited in full, up to ``max_retry_after_s``."""

    retries: int = 4  # after the first attempt
    backoff_s: float = 1.0  # first wait; doubles on each retry
    max_backoff_s: float = 60.0
    jitter: float = 0.5
    max_retry_after_s: float = 300.0

    def delay(self, attempt: int, retry_after: float | None, rand: float) -> float:
        """Seconds to wait before retry number ``attempt + 1`` (``rand`` in [0, 1))."""
        backoff = min(self.max_backoff_s, self.backoff_s * 2 ** attempt) * (1.0 - min(1.0, self.jitter) * rand)
        return max(backoff, retry_after or 0.0)


def retry(attempt: Callable[[], T], policy: RetryPolicy, *, sleep: Callable[[float], None] | None = None,
          rand: Callable[[], float] = random.random) -> T:
    """Call ``attempt`` until it returns; a :class:`Retryable` is waited out and tried again
    (``policy.retries`` times at most), anything else goes straight to the caller."""
    last = Retryable("not tried")
    retries = max(0, policy.retries)
    for n in range(retries + 1):
        try:
            return attempt()
        except Retryable as exc:
            last = exc
        if last.retry_after is not None and last.retry_after > policy.max_retry_after_s:
            raise GaveUp(n + 1, f"{last.message}; the server asks to wait {last.retry_after:.0f} s, "
                                f"more than the {policy.max_retry_after_s:.0f} s osmgap waits", last.retry_after) from None
        if n == retries:
            break
        wait = policy.delay(n, last.retry_after, rand())
        log.warning("%s; retry %d of %d in %.1f s", last.message, n + 1, retries, wait)
        (sleep or time.sleep)(wait)
    raise GaveUp(retries + 1, last.message, last.retry_after) from None


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """A ``Retry-After`` header as seconds from now: delay-seconds or an HTTP date (RFC 9110
    10.2.3); None when absent or unreadable, so the backoff applies."""
    if value is None:
        return None
    value = value.strip()
    if re.fullmatch(r"\d{1,12}(\.\d+)?", value):
        return float(value)
    when = http_date_seconds(value)
    return None if when is None else max(0.0, when - (time.time() if now is None else now))


def http_date_seconds(value: str) -> float | None:
    """An HTTP date (RFC 9110 5.6.7; GMT when it names no zone) as epoch seconds, None when unreadable."""
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        when = when.replace(tzinfo=dt.timezone.utc)
    try:
        return when.timestamp()
    except (OverflowError, OSError, ValueError):
        return None


@dataclass
class Response:
    """An answer read in full: status, body, headers (looked up without regard to case)."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)

    def json(self) -> Any:
        """The body as JSON (None when empty); ValueError when it is not JSON (nested too deep
        for the parser included: a server's answer must not be an internal error)."""
        try:
            return json.loads(self.body) if self.body else None
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None


def raise_if_retryable(response: Response, what: str, secrets: Iterable[str | None] = ()) -> None:
    """An answer that says "later" (408, 429, 5xx) becomes a :class:`Retryable` that carries
    the server's Retry-After and a redacted line of what it said."""
    if response.status in RETRY_STATUSES or response.status >= 500:
        said = server_text(response, secrets)
        raise Retryable(f"HTTP {response.status} on {what}{': ' + said if said else ''}",
                        retry_after_seconds(response.header("Retry-After")))


def server_text(response: Response, secrets: Iterable[str | None] = (), limit: int = 200) -> str:
    """What a server said, fit for one line of an error message: the JSON ``message`` when
    there is one, else its text without markup or control characters, from its ``Error:`` on if it
    says one; secrets masked."""
    secrets = list(secrets)
    text = response.body.decode("utf-8", "replace")
    try:
        doc = json.loads(text)
        if isinstance(doc, dict) and doc.get("message") not in (None, ""):
            text = str(doc["message"])
    except (ValueError, RecursionError):
        pass
    text = redact(text, secrets)
    text = re.sub(r"(?is)<(script|style)\b.*?</\1\s*>", " ", text)
    text = html.unescape(re.sub(r"<[^>]*>", " ", text))
    text = re.sub(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)?|.)", " ", text)  # terminal escapes
    text = "".join(c if unicodedata.category(c)[0] != "C" else " " for c in text)
    text = " ".join(redact(text, secrets).split())
    error = re.search(r"\bError\s*:", text)  # after a page's boilerplate (Overpass: its title and ODbL notice)
    text = text[error.start():] if error else text
    return text if len(text) <= limit else text[:limit] + "..."


def origin(url: str) -> tuple[str, str, int]:
    """Scheme, host and port: what a secret header is bound to, read as ``requests`` (urllib3)
    reads it, because that is the host the request goes to."""
    try:
        parts = parse_url(url)
    except LocationParseError:
        return "", "", 0
    scheme = (parts.scheme or "").lower()
    return scheme, (parts.host or "").lower().strip("[]"), parts.port or {"http": 80, "https": 443}.get(scheme, 0)


def ambiguous(url: str) -> bool:
    """True for an address that two readers would send to different hosts: a backslash, a
    space or a control character in it, or the standard library's host or port not urllib3's
    (``http://evil\\@home/`` is ``home`` to one and ``evil`` to the other). Such an address
    could carry a secret past the origin check, so it is never followed."""
    if any(c == "\\" or c <= " " or c == "\x7f" for c in url):
        return True
    parts = urllib.parse.urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return True
    scheme = parts.scheme.lower()
    return origin(url) != (scheme, (parts.hostname or "").lower(), port or {"http": 80, "https": 443}.get(scheme, 0))


def show_origin(url: str) -> str:
    scheme, host, port = origin(url)
    return f"{scheme}://{host}:{port}"


class HttpClient:
    """One ``requests`` session with osmgap's User-Agent, timeouts, a size cap and redirects
    that never carry a secret to another origin. One call is one attempt: wrap it in
    :func:`retry` for the policy."""

    def __init__(self, *, timeout: float | tuple[float, float] = (10.0, 60.0), secret_headers: Iterable[str] = (),
                 max_bytes: int = MAX_BYTES, max_redirects: int = MAX_REDIRECTS, read_factor: float = READ_FACTOR):
        self.read_factor = read_factor
        self.session = requests.Session()
        adapter = _WatchedAdapter()
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["User-Agent"] = USER_AGENT
        self.session.headers["Accept-Encoding"] = "gzip, deflate"  # what _read decodes and checks itself
        self.timeout = timeout
        self.secret_names = ALWAYS_SECRET | {h.lower() for h in secret_headers}
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects

    def secrets(self, headers: dict[str, str]) -> list[str]:
        """The values of the secret headers among ``headers``: what :func:`redact` masks."""
        return [v for k, v in headers.items() if k.lower() in self.secret_names and v]

    def send(self, method: str, url: str, *, headers: dict[str, str] | None = None, data: Any = None,
             timeout: float | tuple[float, float] | None = None) -> Response:
        """One request, redirects followed within the rules; a :class:`Retryable` when the
        connection fails or the answer is cut short, a :class:`Refused` when a rule says no."""
        headers = dict(headers or {})
        secrets = self.secrets(headers)
        never_log(*secrets, *url_secrets(url))  # a library's log line may quote the request (urllib3 does)
        home = origin(url)
        for _ in range(self.max_redirects + 1):
            response = self._once(method, url, headers, data, timeout or self.timeout)
            location = response.header("Location")
            if response.status not in REDIRECT_STATUSES or not location:
                return response
            try:
                target = urllib.parse.urljoin(url, location)
                scheme = urllib.parse.urlsplit(target).scheme
            except ValueError:  # "http://[::1/": not an address
                raise Refused(f"{method} {_path(url)}: redirected to an address that is no URL") from None
            if scheme not in ("http", "https"):
                raise Refused(f"{method} {_path(url)}: redirected to a non-HTTP address")
            if secrets and ambiguous(target):
                raise Refused(f"{method} {_path(url)}: the server redirected to an address that could name two "
                              f"hosts, so osmgap did not follow")
            if secrets and origin(target) != home:
                shown = redact(show_origin(target), secrets)
                raise Refused(f"{method} {_path(url)}: the server redirected to {shown}; osmgap sends its "
                              f"credentials only to {show_origin(url)}, so it did not follow")
            if response.status == 303 or (response.status in (301, 302) and method == "POST"):
                method, data = "GET", None
                headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
            url = target
        raise Refused(f"{method} {_path(url)}: more than {self.max_redirects} redirects")

    def _once(self, method: str, url: str, headers: dict[str, str], data: Any,
              timeout: float | tuple[float, float]) -> Response:
        read_s = timeout[1] if isinstance(timeout, tuple) else timeout
        deadline = _Deadline(self.read_factor * read_s)
        too_slow = f"no whole answer within {deadline.seconds:.0f} s"
        _attempt.deadline = deadline  # started by the connection once the request is sent
        try:
            with self.session.request(method, url, headers=headers, data=data, timeout=timeout,
                                      allow_redirects=False, stream=True) as r:
                body = self._read(r, method, url)
                if deadline.cut:
                    raise Retryable(too_slow)
                return Response(r.status_code, body, dict(r.headers))
        except requests.Timeout as exc:
            raise Retryable(type(exc).__name__) from None
        except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema, LocationParseError):
            raise Refused(f"{method} {_path(url)}: the address is no URL requests can open") from None
        except ValueError:  # requests reads a redirect's Location even when not following it
            raise Refused(f"{method} {_path(url)}: the answer redirects to an address that is no URL") from None
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError) as exc:
            if deadline.cut:
                raise Retryable(too_slow) from None
            raise Retryable(f"{type(exc).__name__}{_reason(exc)}") from None
        except ReadTimeoutError:  # urllib3's own, from the body _read streams undecoded
            raise Retryable("ReadTimeout") from None
        except HTTPError as exc:  # urllib3's: a body cut short (ProtocolError), ...
            if deadline.cut:
                raise Retryable(too_slow) from None
            raise Retryable(f"{type(exc).__name__}{_reason(exc)}") from None
        finally:
            _attempt.deadline = None
            deadline.stop()

    def _read(self, r: requests.Response, method: str, url: str) -> bytes:
        """The body, decoded here (gzip, deflate) so that a compressed stream cut short is a
        truncated answer, as a short plain one is (a decoder that is simply fed less says nothing);
        at most ``max_bytes`` decoded."""
        encoding = r.headers.get("Content-Encoding", "").strip().lower()
        decoder = zlib.decompressobj(32 + zlib.MAX_WBITS) if encoding in ("gzip", "x-gzip", "deflate") else None
        too_big = Refused(f"{method} {_path(url)}: the answer is larger than {self.max_bytes // 2**20} MiB")
        chunks, size, sent = [], 0, 0
        for chunk in r.raw.stream(1 << 16, decode_content=decoder is None and encoding not in ("", "identity")):
            sent += len(chunk)
            while chunk:
                try:
                    part = decoder.decompress(chunk, self.max_bytes + 1 - size) if decoder is not None else chunk
                except zlib.error as exc:
                    raise Retryable(f"garbled answer: its {encoding} stream does not decode ({exc})") from None
                chunk = decoder.unconsumed_tail if decoder is not None else b""
                size += len(part)
                if size > self.max_bytes:
                    raise too_big
                chunks.append(part)
        expected = r.headers.get("Content-Length", "")
        bodiless = method == "HEAD" or r.status_code in (204, 304)  # their Content-Length is the 200's (RFC 9110 8.6)
        if not bodiless and (decoder is not None or not encoding or encoding == "identity") \
                and expected.isdigit() and int(expected) != sent:
            raise Retryable(f"truncated answer: {sent} of {expected} bytes")
        if decoder is not None and sent and not decoder.eof:
            raise Retryable(f"truncated answer: its {encoding} stream ends early")
        return b"".join(chunks)


def _path(url: str) -> str:
    return urllib.parse.urlsplit(url).path or "/"


_LOCK = threading.Lock()  # who owns a connection, whether a deadline fired: one at a time
_attempt = threading.local()  # the deadline of the attempt this thread is making, while it makes it


class _Deadline:
    """The time one attempt has for its whole answer, counted from when its request was sent.

    The read timeout bounds each wait for a byte, not the answer: a server sending a byte every
    0.3 s, status line and headers included, would hold osmgap as long as it liked. So when the
    time is up the attempt's own socket is shut, and the read blocked on it fails. Threads share a
    client (tile fetches), so a deadline cuts only a connection its attempt still owns: one handed
    back to the pool after a whole answer may be another attempt's by then. A cut one is closed
    when handed back, never reused."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.cut = False
        self._conn: _WatchedConnection | None = None
        self._sock: Any = None  # the connection's, kept: http.client drops it from an answer that closes
        self._timer: threading.Timer | None = None

    def start(self, conn: _WatchedConnection) -> None:
        """The request went out on ``conn``: the clock starts (once an attempt), ``conn`` is ours."""
        with _LOCK:
            self._conn, self._sock, conn.deadline = conn, conn.sock, self
            if self.cut:  # only if urllib3 sent twice in one attempt: never wait anew
                _shut(self._sock)
            elif self._timer is None:
                self._timer = threading.Timer(self.seconds, self._fire)
                self._timer.daemon = True
                self._timer.start()

    def _fire(self) -> None:
        with _LOCK:
            if self._conn is not None and self._conn.deadline is self:
                self.cut = True
                _shut(self._sock)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        with _LOCK:
            if self._conn is not None and self._conn.deadline is self:
                self._conn.deadline = None


def _shut(sock: Any) -> None:
    """Shut a connection's socket, with the plain socket's shutdown also for TLS: ``SSLSocket``'s
    drops its TLS state under the reading thread, whose next read may then fail with a ValueError
    (a "no URL" Refused here) instead of reading the end of the stream."""
    with contextlib.suppress(OSError):
        if isinstance(sock, socket.socket):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        elif sock is not None:
            sock.shutdown(socket.SHUT_RDWR)


class _WatchedConnection(HTTPConnection):
    """urllib3's connection, which starts the current attempt's deadline when it has sent the
    request and waits for the status line."""

    deadline: _Deadline | None = None  # the attempt that owns this connection now, if any

    def getresponse(self) -> HTTPResponse:  # type: ignore[override]  # as urllib3 declares it
        deadline = getattr(_attempt, "deadline", None)
        if deadline is not None:
            deadline.start(self)
        return super().getresponse()


class _WatchedHTTPSConnection(HTTPSConnection, _WatchedConnection):
    """The same over TLS (HTTPSConnection's own methods first, then the watch)."""


def _handed_back(conn: object) -> None:
    """A connection handed back to its pool is no attempt's to cut; one that was cut is closed."""
    if isinstance(conn, _WatchedConnection):
        with _LOCK:
            deadline, conn.deadline = conn.deadline, None
        if deadline is not None and deadline.cut:
            conn.close()


class _WatchedPool(HTTPConnectionPool):
    ConnectionCls = _WatchedConnection

    def _put_conn(self, conn: Any) -> None:
        _handed_back(conn)
        super()._put_conn(conn)


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection

    def _put_conn(self, conn: Any) -> None:
        _handed_back(conn)
        super()._put_conn(conn)


_POOLS: dict[str, type[HTTPConnectionPool]] = {"http": _WatchedPool, "https": _WatchedHTTPSPool}


class _WatchedAdapter(HTTPAdapter):
    """``requests``' adapter with pools of watched connections, direct or through an HTTP proxy."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if isinstance(manager, ProxyManager):  # not SOCKS (PySocks is not installed): its pools are its own
            manager.pool_classes_by_scheme = _POOLS
        return manager


def _reason(exc: BaseException) -> str:
    """The operating system's words for a failed connection ("Connection refused"), if any:
    never the URL or headers that ``requests`` puts into its messages."""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            break
        if isinstance(seen, OSError) and seen.strerror:
            return f" ({seen.strerror})"
        nested = [a for a in getattr(seen, "args", ()) if isinstance(a, BaseException)]
        seen = getattr(seen, "reason", None) or (nested[0] if nested else None) or seen.__cause__ or seen.__context__
    return ""
