"""What an HTTP answer says about keeping it (RFC 9111), for osmgap's disk caches.

Why: a tile server says how long its tiles stay good (``Cache-Control: max-age``, ``Expires``)
and how to ask again cheaply (``ETag``, ``Last-Modified``: a conditional request answered "304
Not Modified" sends no body). Volunteer-run servers ask clients to follow these headers
(OpenStreetMap's tile usage policy does), and JOSM does (the server's lifetime, capped at four
weeks; seven days when it gives none). osmgap caps every lifetime at its own (a weekly run must
see its week's imagery) and revalidates a stale tile instead of downloading it again.

Only what a private cache of GET answers needs is read: ``no-store`` (keep nothing on disk),
``no-cache`` / ``max-age`` (with ``Age``), ``Expires`` against ``Date``, and how long past its
lifetime a kept answer may stand in for one the server fails to give (``stale-if-error``, RFC
5861; none where ``no-cache`` or ``must-revalidate`` forbid it, RFC 9111 4.2.4). Validators are kept only
in their standard shapes (an entity tag of visible ASCII, an HTTP date), so nothing a server sent
can travel back to it as anything but what it was.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from email.utils import format_datetime

from osmgap.core.http import Response, http_date_seconds

ETAG = re.compile(r'(W/)?"[\x21\x23-\x7e]{0,200}"')  # RFC 9110 8.8.3, ASCII only, at most ~200 chars
MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d{1,12})\"?\s*(?:,|$)", re.IGNORECASE)
STALE_IF_ERROR = re.compile(r"(?:^|,)\s*stale-if-error\s*=\s*\"?(\d{1,12})\"?\s*(?:,|$)", re.IGNORECASE)


@dataclass(frozen=True)
class Keeping:
    """How to keep one answer: ``store`` (may it go to disk), ``fresh_s`` (seconds it may be used
    without asking; 0: ask every time), the validators to ask with (None when not given), and
    ``stale_s``: seconds past ``fresh_s`` it may still be used while the server fails."""

    store: bool
    fresh_s: float
    etag: str | None = None
    last_modified: str | None = None
    stale_s: float = 0.0

    def conditional_headers(self) -> dict[str, str]:
        """The headers of a request that asks whether the kept answer is still current."""
        out = {}
        if self.etag:
            out["If-None-Match"] = self.etag
        if self.last_modified:
            out["If-Modified-Since"] = self.last_modified
        return out


def keeping(response: Response, default_s: float, cap_s: float, now: float, stale_s: float = 0.0) -> Keeping:
    """What ``response`` (a 200 or a 304) allows: its freshness lifetime (``default_s`` when it
    gives none), capped at ``cap_s``, less what it has already spent in caches on its way
    (``Age``); ``now``: the local clock (epoch seconds) when it came. ``stale_s``: how long past
    that a failing server's answer may be stood in for when the server says nothing, and the
    most it may say (``stale-if-error``)."""
    directives = _directives(response.header("Cache-Control") or "")
    store = "no-store" not in directives
    lifetime = _lifetime(response, directives, now)
    fresh = default_s if lifetime is None else lifetime
    age = response.header("Age") or ""
    if age.strip().isdigit():
        fresh -= float(age.strip())
    return Keeping(store, min(max(fresh, 0.0), cap_s), etag_of(response.header("ETag")),
                   http_date(response.header("Last-Modified")), _stale_if_error(response, directives, stale_s))


def _stale_if_error(response: Response, directives: set[str], most_s: float) -> float:
    """Seconds past its lifetime the answer may stand in while the server fails: none where the
    server asks for every use to be checked, what it says (at most ``most_s``), else ``most_s``."""
    if directives & {"no-cache", "must-revalidate"}:
        return 0.0
    found = STALE_IF_ERROR.search(response.header("Cache-Control") or "")
    return min(float(found.group(1)), most_s) if found else most_s


def _directives(value: str) -> set[str]:
    return {part.split("=", 1)[0].strip().lower() for part in value.split(",") if part.strip()}


def _lifetime(response: Response, directives: set[str], now: float) -> float | None:
    """Seconds of freshness the server gave (None: it gave none, or none osmgap can read)."""
    if "no-cache" in directives:
        return 0.0
    value = response.header("Cache-Control") or ""
    found = MAX_AGE.search(value)
    if found:
        return float(found.group(1))
    if "max-age" in directives:
        return 0.0  # present but unreadable: RFC 9111 4.2.1 treats it as stale
    expires = response.header("Expires")
    if expires is None:
        return None
    when = http_date_seconds(expires)
    if when is None:
        return 0.0  # "Expires: 0" and other invalid dates mean already expired (RFC 9111 5.3)
    sent = http_date_seconds(response.header("Date") or "")
    return when - (sent if sent is not None else now)


def etag_of(value: str | None) -> str | None:
    """An entity tag as RFC 9110 writes one, else None (never sent back)."""
    value = (value or "").strip()
    return value if ETAG.fullmatch(value) else None


def http_date(value: str | None) -> str | None:
    """An HTTP date rewritten in the one format RFC 9110 prefers, else None."""
    when = http_date_seconds(value or "")
    return None if when is None else format_datetime(dt.datetime.fromtimestamp(when, dt.timezone.utc), usegmt=True)
