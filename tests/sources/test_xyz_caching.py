"""The tile cache follows the server's caching headers, against the local tile server of real
Paris tiles: a stale tile is asked for with its validators and a 304 costs the server no body,
new imagery under a stale tile replaces it, the server's lifetime is kept (between an hour and
osmgap's week), no-store tiles never reach the disk, and validators a server sent in no
standard shape never travel back."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from osmgap.sources.tile_cache import MAGIC
from osmgap.sources.xyz import MIN_FRESH_S, TILE_MAX_AGE_S, TileFetcher
from tests.sources.test_xyz import _options, _read
from tests.tileserver import TileServer, kept_body

LAST_MODIFIED = "Tue, 01 Dec 2026 10:00:00 GMT"


@pytest.fixture()
def server(paris: Path):
    with TileServer(paris / "image.tif") as srv:
        yield srv
    TileFetcher._shared.clear()  # each run its own process: nothing held in memory for the next test


def _heads(cache: Path) -> dict[Path, dict]:
    out = {}
    for path in sorted(cache.rglob("*.tile")):
        raw = path.read_bytes()
        assert raw.startswith(MAGIC), path
        out[path] = json.loads(raw[len(MAGIC):raw.index(b"\n", len(MAGIC))])
    return out


def _later(cache: Path, seconds: float) -> None:
    """As if ``seconds`` had passed since the tiles were kept."""
    for path, head in _heads(cache).items():
        head["fresh_until"] -= seconds
        raw = path.read_bytes()
        path.write_bytes(MAGIC + json.dumps(head).encode() + raw[raw.index(b"\n", len(MAGIC)):])
        when = path.stat().st_mtime - seconds
        os.utime(path, (when, when))


def _since(server: TileServer, n: int) -> tuple[list[int], list[dict[str, str]]]:
    return server.log.statuses[n:], server.log.conditions[n:]


@pytest.mark.parametrize("validator", ["etag", "last-modified"])
def test_a_stale_tile_is_revalidated_and_a_304_sends_no_body(paris, tmp_path, server, validator):
    server.caching.headers = {"Cache-Control": "no-cache"}  # ask every time (osmgap: once an hour)
    server.caching.etag = validator == "etag"
    server.caching.last_modified = LAST_MODIFIED if validator == "last-modified" else None
    _, (first, _) = _read(paris, _options(server, tmp_path))
    n = len(server.log.statuses)
    assert n > 4 and set(server.log.statuses) == {200}
    _read(paris, _options(server, tmp_path))
    assert len(server.log.statuses) == n  # within the hour: from the cache
    _later(tmp_path / "cache", MIN_FRESH_S + 60)
    _, (again, _) = _read(paris, _options(server, tmp_path))
    statuses, asked = _since(server, n)
    assert statuses == [304] * n  # every tile asked once, none sent again
    header = "If-None-Match" if validator == "etag" else "If-Modified-Since"
    assert all(set(a) == {header} for a in asked)
    if validator == "last-modified":
        assert {a[header] for a in asked} == {LAST_MODIFIED}
    np.testing.assert_array_equal(again, first)
    _read(paris, _options(server, tmp_path))
    assert len(server.log.statuses) == 2 * n  # fresh again for the hour the 304 gave


def test_new_imagery_under_a_stale_tile_replaces_it(paris, tmp_path, server):
    server.caching.etag = True
    _read(paris, _options(server, tmp_path))
    before = {p: (h["etag"], kept_body(p)) for p, h in _heads(tmp_path / "cache").items()}
    n = len(server.log.statuses)
    _later(tmp_path / "cache", TILE_MAX_AGE_S + 60)  # a week on: no lifetime given, osmgap's week
    server.caching.edition = 1  # the server has new imagery (here: new tags for the same pixels)
    _read(paris, _options(server, tmp_path))
    statuses, asked = _since(server, n)
    assert statuses == [200] * n
    assert {a["If-None-Match"] for a in asked} == {etag for etag, _ in before.values()}
    after = _heads(tmp_path / "cache")
    assert all(after[p]["etag"] != etag and kept_body(p) == body for p, (etag, body) in before.items())


@pytest.mark.parametrize("cache_control,fresh_s", [
    ("max-age=7200", 7200.0),
    ("public, max-age=2592000", TILE_MAX_AGE_S),  # 30 days: osmgap's week first
    ("max-age=60", MIN_FRESH_S),  # a run reads a tile once per window over it: an hour at least
])
def test_the_servers_lifetime_is_kept_between_an_hour_and_a_week(paris, tmp_path, server, cache_control, fresh_s):
    server.caching.headers = {"Cache-Control": cache_control}
    started = time.time()
    _read(paris, _options(server, tmp_path))
    heads = _heads(tmp_path / "cache")
    assert heads and all(started + fresh_s - 1 <= h["fresh_until"] <= time.time() + fresh_s for h in heads.values())


def test_no_store_tiles_stay_in_memory_for_the_run_and_never_reach_the_disk(paris, tmp_path, server):
    _read(paris, _options(server, tmp_path))  # kept on disk first, as any server allows by default
    n = len(server.log.statuses)
    _later(tmp_path / "cache", TILE_MAX_AGE_S + 60)
    server.caching.headers = {"Cache-Control": "no-store"}
    _, (first, _) = _read(paris, _options(server, tmp_path))
    assert len(server.log.statuses) == 2 * n
    assert not list((tmp_path / "cache").rglob("*.tile"))  # and the older copies removed
    _, (again, _) = _read(paris, _options(server, tmp_path))
    assert len(server.log.statuses) == 2 * n  # the same run: held in memory
    np.testing.assert_array_equal(again, first)


@pytest.mark.parametrize("etag", ["not-quoted", '"' + "x" * 400 + '"', '"two words"'])
def test_a_validator_in_no_standard_shape_never_travels_back(paris, tmp_path, server, etag):
    server.caching.raw_etag = etag
    _read(paris, _options(server, tmp_path))
    n = len(server.log.statuses)
    assert all(h["etag"] is None for h in _heads(tmp_path / "cache").values())
    _later(tmp_path / "cache", TILE_MAX_AGE_S + 60)
    _read(paris, _options(server, tmp_path))
    statuses, asked = _since(server, n)
    assert statuses == [200] * n and all(a == {} for a in asked)


def test_a_tile_kept_by_an_older_osmgap_is_read_as_its_bytes(paris, tmp_path, server):
    _read(paris, _options(server, tmp_path))
    n = len(server.log.statuses)
    for path in (tmp_path / "cache").rglob("*.tile"):
        path.write_bytes(kept_body(path))  # bytes alone, as osmgap kept tiles before caching headers
    TileFetcher._shared.clear()
    _read(paris, _options(server, tmp_path))
    assert len(server.log.statuses) == n


def test_a_tile_written_later_than_now_is_asked_for_again(paris, tmp_path, server):
    """A clock set back makes every kept tile's age unknown: each is asked for again, with its ETag."""
    server.caching.etag = True
    _read(paris, _options(server, tmp_path))
    n = len(server.log.statuses)
    tomorrow = time.time() + 86400
    for path in (tmp_path / "cache").rglob("*.tile"):
        os.utime(path, (tomorrow, tomorrow))
    _read(paris, _options(server, tmp_path))
    statuses, asked = _since(server, n)
    assert statuses == [304] * n and all("If-None-Match" in a for a in asked)
