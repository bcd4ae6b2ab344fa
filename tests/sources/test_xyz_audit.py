"""Audit T's tile-server findings: a page served as a tile, the URL as messages print it, and a
tight cache pruning the tiles a run is about to read."""
from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

import pytest

from osmgap.core.aoi import load_aoi
from osmgap.errors import InputError
from osmgap.sources.imagery import check_resolution
from osmgap.sources.tile_fetcher import TileFetcher
from osmgap.sources.xyz import measure_xyz_coverage, open_xyz
from tests.sources.test_xyz import ZOOM, _options
from tests.tileserver import TileServer

KEY = "SECRET123"


@pytest.fixture()
def server(paris: Path):
    with TileServer(paris / "image.tif") as srv:
        yield srv
    TileFetcher._shared.clear()  # each test a process of its own: no tiles, digests or "absent" held over


def test_a_login_page_served_as_a_tile_is_one_clear_line_without_retries(paris, tmp_path, server):
    """A login wall answers 200 with HTML: retrying cannot mend it, and the error says what came
    (not PIL's "<_io.BytesIO object at 0x...>"), with the key masked though the page quotes it."""
    server.tile = lambda z, x, y: f"<!DOCTYPE html><html><body>Please log in (key {KEY} expired)".encode()
    options = replace(_options(server, tmp_path), url=server.url + f"?key={KEY}")
    with pytest.raises(InputError) as err:
        open_xyz(options, load_aoi(str(paris)).geometry)
    said = str(err.value)
    assert "instead of an image" in said and "Please log in" in said, said
    assert KEY not in said and "BytesIO" not in said and "\n" not in said
    assert len(server.log.times) == 1  # asked once


def test_the_tile_url_in_messages_keeps_its_double_slash(paris, tmp_path, server):
    """``Path`` made "http://" "http:/": a URL copied from a message or the summary did not work."""
    xyz = open_xyz(replace(_options(server, tmp_path), zoom=16), load_aoi(str(paris)).geometry)
    warning = check_resolution(xyz, 0.5)
    assert warning is not None and f"WARNING: {server.url.split('{')[0]}" in warning, warning
    assert xyz.path.startswith("http://")


def test_a_tight_cache_keeps_the_tiles_the_run_is_about_to_read(paris, tmp_path, server):
    """The AOI's stale tiles are revalidated (304) one by one while the cache is pruned: the ones
    not reached yet are this run's, not "unused, oldest", so another server's newer tiles go first
    and no tile under the AOI is downloaded again."""
    server.caching.etag = True
    aoi = load_aoi(str(paris))
    options = replace(_options(server, tmp_path, concurrency=1), zoom=ZOOM + 1)  # ~20 tiles, revalidated in turn
    measure_xyz_coverage(open_xyz(options, aoi.geometry), aoi)
    ours = list((tmp_path / "cache").rglob("*.tile"))
    size = sum(p.stat().st_size for p in ours)
    for path in ours:  # kept a week ago: stale, asked for again with their ETag
        when = time.time() - 7 * 86400
        os.utime(path, (when, when))
    other = tmp_path / "cache" / "0123456789abcdef" / "18"  # another server's tiles, written just now
    for i in range(4):
        (other / str(i)).mkdir(parents=True)
        (other / str(i) / "0.tile").write_bytes(b"x" * 2**19)
    TileFetcher._shared.clear()  # the next run, in a process of its own
    tight = replace(options, cache_max_mb=-(-(size + 2**20) // 2**20))  # ours fit, the others' do not
    asked = len(server.log.statuses)
    measure_xyz_coverage(open_xyz(tight, aoi.geometry), aoi)
    assert set(server.log.statuses[asked:]) == {304}  # nothing downloaded again
    assert all(p.exists() for p in ours)
