"""What an HTTP answer says about keeping it: lifetimes as RFC 9111 reads them, capped at osmgap's
own, and validators kept only in their standard shapes."""
from __future__ import annotations

from email.utils import formatdate

import pytest

from osmgap.core.http import Response
from osmgap.core.http_cache import etag_of, http_date, keeping

DAY = 86400.0
NOW = 1_796_000_000.0  # 2026-11-30


def _keep(headers: dict[str, str], default_s: float = 6 * DAY, cap_s: float = 6 * DAY):
    return keeping(Response(200, b"", headers), default_s, cap_s, NOW)


@pytest.mark.parametrize("headers,fresh", [
    ({}, 6 * DAY),  # no lifetime given: the default
    ({"Cache-Control": "public, max-age=7200"}, 7200.0),
    ({"cache-control": "max-age=7200", "Age": "200"}, 7000.0),  # time spent in caches on the way counts
    ({"Cache-Control": "max-age=31536000, immutable"}, 6 * DAY),  # a year: osmgap's week first
    ({"Cache-Control": "no-cache"}, 0.0),
    ({"Cache-Control": "max-age=0, must-revalidate"}, 0.0),
    ({"Cache-Control": "max-age=soon"}, 0.0),  # unreadable: stale (RFC 9111 4.2.1)
    ({"Cache-Control": "s-maxage=7200"}, 6 * DAY),  # for shared caches, not this one
    ({"Expires": "Sat, 28 Nov 2026 10:00:00 GMT", "Date": "Sat, 28 Nov 2026 09:00:00 GMT"}, 3600.0),
    ({"Expires": "0"}, 0.0),  # invalid dates are already expired (RFC 9111 5.3)
    ({"Expires": "Thu, 01 Jan 1970 00:00:00 GMT"}, 0.0),
    ({"Cache-Control": "max-age=60", "Expires": "Thu, 01 Jan 2099 00:00:00 GMT"}, 60.0),  # max-age wins
])
def test_lifetimes(headers, fresh):
    keep = _keep(headers)
    assert keep.store
    assert keep.fresh_s == pytest.approx(fresh)


def test_expires_without_a_date_counts_from_the_local_clock():
    an_hour_on = formatdate(NOW + 3600, usegmt=True)
    assert _keep({"Expires": an_hour_on}).fresh_s == pytest.approx(3600.0)
    assert _keep({"Expires": an_hour_on, "Date": formatdate(NOW - 600, usegmt=True)}).fresh_s == pytest.approx(4200.0)


def test_no_store_is_not_stored():
    assert not _keep({"Cache-Control": "private, no-store"}).store
    assert _keep({"Cache-Control": "private"}).store


def test_validators_travel_back_only_in_their_standard_shapes():
    keep = _keep({"ETag": 'W/"tile-17"', "Last-Modified": "Wed, 02 Dec 2026 10:00:00 +0000"})
    assert keep.conditional_headers() == {"If-None-Match": 'W/"tile-17"',
                                          "If-Modified-Since": "Wed, 02 Dec 2026 10:00:00 GMT"}
    for bad in ("tile-17", '"a b"', '"caf\u00e9"', '"' + "x" * 500 + '"', '"x"; rm', ""):
        assert etag_of(bad) is None, bad
    assert http_date("yesterday") is None and http_date(None) is None
    assert _keep({"ETag": "unquoted", "Last-Modified": "never"}).conditional_headers() == {}


@pytest.mark.parametrize("cache_control,stale", [
    ("", 30 * DAY),  # the server says nothing: osmgap's allowance
    ("max-age=7200, stale-if-error=86400", DAY),  # RFC 5861: what the server allows
    ("max-age=7200, stale-if-error=31536000", 30 * DAY),  # a year: osmgap's allowance first
    ("max-age=7200, must-revalidate", 0.0),  # every use checked (RFC 9111 4.2.4): never stood in
    ("no-cache, stale-if-error=86400", 0.0),
    ("max-age=7200, stale-if-error=later", 30 * DAY),  # unreadable: as if unsaid
])
def test_how_long_a_failing_servers_answer_may_stand_in(cache_control, stale):
    headers = {"Cache-Control": cache_control} if cache_control else {}
    assert keeping(Response(200, b"", headers), 6 * DAY, 6 * DAY, NOW, 30 * DAY).stale_s == stale
