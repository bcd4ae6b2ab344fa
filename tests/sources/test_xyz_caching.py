"""The tile cache follows the server's caching headers, against the local tile server of real
Paris tiles: a stale tile is asked for with its validators and a 304 costs the server no body,
new imagery under a stale tile replaces it, the server's lifetime is kept (between an hour and
osmgap's week), no-store tiles never reach the disk, validators a server sent in no standard
shape never travel back, and kept tiles stand in for a failing server's within what it allows."""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from osmgap.cli import main
from osmgap.core.aoi import load_aoi
from osmgap.errors import InputError, ServiceError
from osmgap.sources.tile_cache import MAGIC
from osmgap.sources.tile_fetcher import (
    CACHE_MAX_MB,
    MIN_FRESH_S,
    PRUNE_EVERY_SHARE,
    STALE_IF_ERROR_S,
    TILE_MAX_AGE_S,
    TileFetcher,
    prune_cache,
)
from osmgap.sources.xyz import measure_any_coverage, open_xyz, stand_in_warning
from osmgap.workspace.store import Store
from tests.sources.test_xyz import ZOOM, _options, _read
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
        head["stale_until"] -= seconds
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


def test_kept_tiles_stand_in_for_a_failing_server_with_a_warning(paris, tmp_path, server, caplog):
    """A weekly run whose tile server is down reads last week's tiles, and says so; a tile it
    never kept still fails the run, as does one kept longer ago than STALE_IF_ERROR_S allows."""
    _, (first, _) = _read(paris, _options(server, tmp_path))
    _later(tmp_path / "cache", TILE_MAX_AGE_S + 3 * 86400)  # nine days on: every tile 3 days past its lifetime
    server.faults.status = 503
    TileFetcher._shared.clear()
    n = len(server.log.statuses)
    with caplog.at_level(logging.INFO, logger="osmgap.sources.tile_fetcher"):
        options = _options(server, tmp_path, retries=1)
        _, (again, _) = _read(paris, options)
    np.testing.assert_array_equal(again, first)
    tiles = len(list((tmp_path / "cache").rglob("*.tile")))
    # once the retries ran out, kept tiles stand in unasked: only the tiles already in flight asked
    assert len(server.log.statuses) - n <= options.concurrency * 2 < tiles
    warned = [r for r in caplog.records if r.levelno == logging.WARNING and r.name == "osmgap.sources.tile_fetcher"]
    assert len(warned) == 1 and "failed 2 times, last: HTTP 503" in warned[0].getMessage()
    said = stand_in_warning(open_xyz(options, _aoi(paris)))
    assert said is not None and f"{tiles} tile(s)" in said and "3.0 days past" in said
    one = next(iter((tmp_path / "cache").rglob("*.tile")))
    kept, stat = one.read_bytes(), one.stat()
    one.unlink()  # one tile never kept
    TileFetcher._shared.clear()
    with pytest.raises(ServiceError, match="HTTP 503"):
        _read(paris, options)
    one.write_bytes(kept)
    os.utime(one, (stat.st_atime, stat.st_mtime))
    _later(tmp_path / "cache", STALE_IF_ERROR_S)  # kept too long ago to stand in
    TileFetcher._shared.clear()
    with pytest.raises(ServiceError, match="HTTP 503"):
        _read(paris, options)


@pytest.mark.parametrize("cache_control,late_s,stands_in", [
    ("max-age=7200, stale-if-error=86400", 7200 + 3600, True),
    ("max-age=7200, stale-if-error=86400", 7200 + 2 * 86400, False),  # past what the server allows
    ("max-age=7200, must-revalidate", 7200 + 60, False),  # every use checked: never stood in
])
def test_a_kept_tile_stands_in_only_as_long_as_the_server_allows(paris, tmp_path, server, cache_control, late_s,
                                                                stands_in):
    server.caching.headers = {"Cache-Control": cache_control}
    _read(paris, _options(server, tmp_path))
    _later(tmp_path / "cache", late_s)
    server.faults.status = 500
    TileFetcher._shared.clear()
    if stands_in:
        _read(paris, _options(server, tmp_path, retries=0))
        assert TileFetcher.for_options(_options(server, tmp_path, retries=0)).stood_in
    else:
        with pytest.raises(ServiceError, match="HTTP 500"):
            _read(paris, _options(server, tmp_path, retries=0))


def test_kept_tiles_stand_in_for_a_server_that_cannot_be_reached(paris, tmp_path):
    with TileServer(paris / "image.tif") as srv:
        options = _options(srv, tmp_path, retries=1)
        _, (first, _) = _read(paris, options)
    _later(tmp_path / "cache", TILE_MAX_AGE_S + 60)
    TileFetcher._shared.clear()
    _, (again, _) = _read(paris, options)  # the port is closed now: connection refused
    np.testing.assert_array_equal(again, first)
    assert stand_in_warning(open_xyz(options, _aoi(paris))) is not None
    TileFetcher._shared.clear()


@pytest.mark.parametrize("status", [401, 403])
def test_a_refusal_is_an_answer_not_an_outage(paris, tmp_path, server, status):
    """A key revoked or access withdrawn is not stood in for by last week's tiles."""
    _read(paris, _options(server, tmp_path))
    _later(tmp_path / "cache", TILE_MAX_AGE_S + 60)
    server.faults.status = status
    TileFetcher._shared.clear()
    with pytest.raises(InputError, match=str(status)):
        _read(paris, _options(server, tmp_path))


def _aoi(paris: Path):
    return load_aoi(str(paris)).geometry


def test_a_diff_whose_tile_server_is_down_runs_on_its_kept_tiles_and_says_so(paris, tmp_path, server, monkeypatch):
    from osmgap.core import http

    monkeypatch.setattr(http.time, "sleep", lambda s: None)
    args = ["diff", "--aoi", str(paris / "aoi.geojson"), "--osm", str(paris / "osm_roads.geojson"), "--xyz", server.url,
            "--xyz-zoom", str(ZOOM), "--cache-dir", str(tmp_path / "cache")]
    assert main([*args, "--out", str(tmp_path / "first")]) == 0
    _later(tmp_path / "cache", TILE_MAX_AGE_S + 86400)
    server.faults.status = 503
    TileFetcher._shared.clear()
    assert main([*args, "--out", str(tmp_path / "down")]) == 0
    first, down = (json.loads((tmp_path / d / "summary.json").read_text()) for d in ("first", "down"))
    said = [w for w in down["warnings"] if "tile(s) were read from osmgap's cache" in w]
    assert len(said) == 1 and "1.0 days past" in said[0]
    assert not any("osmgap's cache" in w for w in first["warnings"])
    assert (down["suggestions"], down["predicted_road_km"]) == (first["suggestions"], first["predicted_road_km"])


def test_the_summary_counts_the_kept_tiles_a_dask_worker_read_too(paris, tmp_path, server):
    """The main process measures coverage on the tiles under the AOI; a worker process reads every
    tile under the AOI's bounding box (here a triangle's: twice its area). The worker's stand-ins
    reach the summary, which counts what the same tiling counts in one process."""
    x0, y0, x1, y1 = _aoi(paris).bounds
    triangle = tmp_path / "triangle.geojson"
    triangle.write_text(json.dumps({"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x0, y1], [x0, y0]]]}))
    args = ["diff", "--aoi", str(triangle), "--osm", str(paris / "osm_roads.geojson"), "--xyz", server.url,
            "--xyz-zoom", str(ZOOM), "--cache-dir", str(tmp_path / "cache"), "--tile", "64", "--overlap", "16",
            "--tile-size", "96", "--tile-margin", "32"]
    assert main([*args, "--workers", "0", "--out", str(tmp_path / "first")]) == 0
    _later(tmp_path / "cache", TILE_MAX_AGE_S + 86400)
    server.faults.too_many, server.faults.retry_after = 10**6, "3600"  # busy: kept tiles stand in unasked, no waits
    counts = {}
    for workers in ("0", "1"):
        TileFetcher._shared.clear()
        out = tmp_path / f"workers{workers}"
        assert main([*args, "--workers", workers, "--out", str(out)]) == 0
        said = [w for w in json.loads((out / "summary.json").read_text())["warnings"] if "osmgap's cache" in w]
        assert len(said) == 1, said
        counts[workers] = int(said[0].split(" failed: ")[1].split(" tile(s)")[0])
    TileFetcher._shared.clear()
    options = replace(_options(server, tmp_path), cache_dir=tmp_path / "cache" / "xyz")  # the CLI's
    measure_any_coverage(open_xyz(options, load_aoi(str(triangle)).geometry), load_aoi(str(triangle)))
    under_aoi = len(TileFetcher.for_options(options).stood_in)
    assert counts["1"] == counts["0"] > under_aoi, (counts, under_aoi)


def test_after_a_run_the_tile_cache_is_back_under_its_budget(paris, tmp_path, server):
    """The run's own tiles stay when they fit, even when they were written before others (a fresh
    tile read from the cache is not written again); of the others, the oldest written go first."""
    args = ["diff", "--aoi", str(paris / "aoi.geojson"), "--osm", str(paris / "osm_roads.geojson"),
            "--candidates", str(paris / "osm_roads.geojson"), "--xyz", server.url, "--xyz-zoom", str(ZOOM),
            "--cache-dir", str(tmp_path / "cache")]  # candidates: the tiles are only drawn, no model runs
    assert main([*args, "--out", str(tmp_path / "first")]) == 0
    ours = list((tmp_path / "cache").rglob("*.tile"))
    size = sum(p.stat().st_size for p in ours)
    assert ours and size < 4 * 2**20
    for path in ours:  # kept two days ago: still fresh, so this run reads them without writing them
        when = path.stat().st_mtime - 2 * 86400
        os.utime(path, (when, when))
    other = tmp_path / "cache" / "xyz" / "0123456789abcdef" / "18"  # another server's, from yesterday
    old = []
    for i in range(3):
        old.append(other / str(i) / "0.tile")
        old[-1].parent.mkdir(parents=True)
        old[-1].write_bytes(b"x" * 2**20)
        when = time.time() - 86400 + i * 60
        os.utime(old[-1], (when, when))
    requests = len(server.log.statuses)
    budget_mb = -(-(size + 2**20) // 2**20)  # room for ours and one old tile, not two
    assert main([*args, "--out", str(tmp_path / "again"), "--xyz-cache-mb", str(budget_mb)]) == 0
    assert len(server.log.statuses) == requests  # all read from the cache
    assert [p.exists() for p in old] == [False, False, True]
    assert all(p.exists() for p in ours)
    assert not any("budget" in w for w in json.loads((tmp_path / "again" / "summary.json").read_text())["warnings"])


def test_a_run_whose_tiles_do_not_fit_the_budget_says_so(paris, tmp_path, server):
    """Its tiles are removed oldest first, down to the budget, and the warning says the next run
    downloads them again."""
    options = replace(_options(server, tmp_path), cache_max_mb=1)
    _read(paris, options)
    fetcher = TileFetcher.for_options(options)
    assert prune_cache(options) is None  # 20 tiles, 0.3 MB
    for key in list(fetcher.used)[:3]:  # as if three tiles of the run were large ones
        fetcher.cached(*key).write_bytes(b"x" * 2**19)
    said = prune_cache(options)
    assert said is not None and "(--xyz-cache-mb 1)" in said and "next run downloads them again" in said
    assert sum(p.stat().st_size for p in (tmp_path / "cache").rglob("*.tile")) <= 2**20


def test_the_budget_the_help_gives_is_the_one_used(capsys):
    from osmgap.cli import build_parser
    from osmgap.tools.options import xyz_options

    args = build_parser().parse_args(["diff", "--aoi", "a.geojson", "--out", "o", "--xyz", "http://t/{z}/{x}/{y}.png"])
    options = xyz_options(args)
    assert options is not None and options.cache_max_mb == CACHE_MAX_MB
    with pytest.raises(SystemExit):
        main(["diff", "--help"])
    assert f"(default {CACHE_MAX_MB})" in " ".join(capsys.readouterr().out.split())


def test_recording_a_run_in_the_state_reads_neither_tiles_nor_osm_again(paris, tmp_path, server, monkeypatch):
    """Coverage of a tile server is every tile of the AOI decoded, and OSM may be a large extract:
    ``--state`` records what the run measured and loaded, not a second reading."""
    from osmgap.jobs import diff

    calls = {"coverage": 0, "osm": 0}

    def counted(name, fn):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return fn(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(diff, "measure_any_coverage", counted("coverage", diff.measure_any_coverage))
    monkeypatch.setattr(diff, "load_osm", counted("osm", diff.load_osm))
    state = tmp_path / "osmgap.sqlite"
    assert main(["diff", "--aoi", str(paris / "aoi.geojson"), "--osm", str(paris / "osm_roads.geojson"),
                 "--xyz", server.url, "--xyz-zoom", str(ZOOM), "--cache-dir", str(tmp_path / "cache"),
                 "--out", str(tmp_path / "out"), "--state", str(state), "--name", "paris"]) == 0
    assert calls == {"coverage": 1, "osm": 1}
    with Store(state, create=False) as store:
        assert len(store.runs("paris")) == 1


@pytest.mark.parametrize("retry_after,asked_again", [("3600", False), (None, True)])
def test_kept_tiles_stand_in_unasked_as_long_as_a_busy_server_asks(paris, tmp_path, server, monkeypatch, retry_after,
                                                                 asked_again):
    """A server that answers 429 "Retry-After: 3600" is not asked again ten minutes later, as
    osmgap's own 5-minute pause would; without a Retry-After it is."""
    from osmgap.sources import tile_fetcher

    _read(paris, _options(server, tmp_path))
    _later(tmp_path / "cache", TILE_MAX_AGE_S + 60)
    if retry_after:
        server.faults.too_many, server.faults.retry_after = 10**6, retry_after  # more than osmgap waits: gives up
    else:
        server.faults.status = 503
    TileFetcher._shared.clear()
    options = _options(server, tmp_path, retries=0)
    _read(paris, options)
    n = len(server.log.statuses)
    clock = time.monotonic() + 600  # ten minutes on
    monkeypatch.setattr(tile_fetcher.time, "monotonic", lambda: clock)
    _read(paris, options)
    assert (len(server.log.statuses) > n) == asked_again


def test_a_run_keeps_the_cache_under_its_budget_while_it_runs(paris, tmp_path, server):
    """A run over a large AOI used to write every tile first and prune after, so the cache grew
    past its budget by the run's whole size (a disk filled before the prune). Now the cache is
    pruned as the run writes: another server's old tiles go while the run still reads."""
    options = replace(_options(server, tmp_path), cache_max_mb=1)
    old = tmp_path / "cache" / "0123456789abcdef" / "18" / "1"
    old.mkdir(parents=True)
    for i in range(8):  # 2 MB of another server's tiles, written long ago
        tile = old / f"{i}.tile"
        tile.write_bytes(b"x" * 2**18)
        os.utime(tile, (time.time() - 86400, time.time() - 86400))
    _read(paris, options)  # ~0.3 MB of the run's own tiles written: more than an eighth of the budget
    ours = [TileFetcher.for_options(options).cached(*key) for key in TileFetcher.for_options(options).used]
    on_disk = sum(p.stat().st_size for p in (tmp_path / "cache").rglob("*.tile"))
    # pruned before the run ended: over the budget by at most what was written since the last prune
    assert on_disk <= 2**20 * (1 + PRUNE_EVERY_SHARE) and len(list(old.glob("*.tile"))) < 4
    assert all(p.exists() for p in ours)
    assert prune_cache(options) is None  # the run's own tiles fitted: nothing to say


def test_the_run_s_own_tiles_removed_while_it_ran_are_said_after_it(paris, tmp_path, server):
    """The warning that the next run downloads them again counts the run's tiles the budget had
    no room for while it ran, not only those the last prune removed."""
    options = replace(_options(server, tmp_path), cache_max_mb=1)
    _read(paris, options)
    fetcher = TileFetcher.for_options(options)
    for key in list(fetcher.used)[:3]:  # as if three tiles of the run were large ones
        fetcher.cached(*key).write_bytes(b"x" * 2**19)
    fetcher._kept(2**19)  # the run writes on: a prune is due
    assert sum(p.stat().st_size for p in (tmp_path / "cache").rglob("*.tile")) <= 2**20
    said = prune_cache(options)  # the last prune finds the cache under its budget
    assert said is not None and "(--xyz-cache-mb 1)" in said and "next run downloads them again" in said
