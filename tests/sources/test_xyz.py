"""XYZ imagery against a local tile server that serves tiles cut from the real Paris imagery:
the windows match the GeoTIFF's, the cache saves requests, and every server fault ends in a
retry or a one-line error."""
from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

import numpy as np
import pytest

from osmgap.cli import main
from osmgap.core.aoi import load_aoi
from osmgap.errors import InputError, ServiceError
from osmgap.sources.imagery import WindowReader, analysis_grid, open_imagery
from osmgap.sources.tile_fetcher import XyzOptions, decode_tile, tile_url
from osmgap.sources.xyz import XyzWindowReader, open_xyz
from tests.conftest import PROJECT
from tests.tileserver import TileServer, kept_body

ZOOM = 18  # ~0.39 m pixels at Paris' latitude, like the 0.3 m source


@pytest.fixture()
def server(paris: Path):
    with TileServer(paris / "image.tif") as srv:
        yield srv


def _options(srv: TileServer, tmp: Path, **kw) -> XyzOptions:
    return XyzOptions(srv.url, ZOOM, "test tiles", "CC-BY-4.0", cache_dir=tmp / "cache",
                      **{"backoff_s": 0.05, "timeout_s": 5.0, **kw})


def _read(paris: Path, options: XyzOptions):
    aoi = load_aoi(str(paris))
    xyz = open_xyz(options, aoi.geometry)
    grid = analysis_grid(xyz, aoi.geometry, aoi.metric_crs, 1.0)
    return grid, XyzWindowReader(xyz, grid).read_all()


@pytest.mark.parametrize("fmt", ["png", "jpg"])
def test_windows_match_the_geotiff(paris, tmp_path, fmt):
    with TileServer(paris / "image.tif", fmt=fmt) as srv:
        grid, (data, valid) = _read(paris, _options(srv, tmp_path))
    aoi = load_aoi(str(paris))
    imagery = open_imagery(paris / "image.tif")
    assert grid == analysis_grid(imagery, aoi.geometry, aoi.metric_crs, 1.0)
    ref, ref_valid = WindowReader(imagery, grid).read_all()
    both = valid & ref_valid
    assert both.mean() > 0.99
    assert np.abs(data - ref)[:, both].mean() < 0.02  # two resamplings (and JPEG) apart
    assert np.corrcoef(data[:, both].ravel(), ref[:, both].ravel())[0, 1] > 0.98


def test_cache_answers_the_second_read(paris, tmp_path, server):
    _read(paris, _options(server, tmp_path))
    n = len(server.log.times)
    assert n > 4
    _read(paris, _options(server, tmp_path))
    assert len(server.log.times) == n


def test_a_cached_tile_is_fetched_again_a_week_later(paris, tmp_path, server):
    """The cache kept a tile for ever: a weekly run never saw the server's new imagery, nor the
    coverage that came where it had sent a placeholder."""
    import os

    _read(paris, _options(server, tmp_path))
    n = len(server.log.times)
    cached = sorted((tmp_path / "cache").rglob("*.tile"))
    week_ago = time.time() - 7 * 86400
    for tile in cached[:3]:
        os.utime(tile, (week_ago, week_ago))
    _read(paris, _options(server, tmp_path))
    assert len(server.log.times) == n + 3
    assert all(time.time() - tile.stat().st_mtime < 60 for tile in cached)


def test_damaged_cache_entry_is_fetched_again(paris, tmp_path, server):
    _read(paris, _options(server, tmp_path))
    cached = sorted((tmp_path / "cache").rglob("*.tile"))
    whole = cached[0].read_bytes()
    cached[0].write_bytes(whole[:-len(kept_body(cached[0])) // 2])  # the image cut short
    cached[1].write_bytes(whole[:30])  # the line saying how long it keeps cut short
    n = len(server.log.times)
    _read(paris, _options(server, tmp_path))
    assert len(server.log.times) == n + 2
    for path in cached[:2]:
        decode_tile(kept_body(path))  # whole again


def test_429_waits_as_retry_after_says(paris, tmp_path, server):
    server.faults.too_many, server.faults.retry_after = 2, "1"
    _read(paris, _options(server, tmp_path, concurrency=1))
    assert server.log.statuses[:2] == [429, 429]
    t = server.log.times
    assert t[1] - t[0] >= 0.9 and t[2] - t[1] >= 0.9  # backoff alone would be 0.05 s, 0.1 s


@pytest.mark.parametrize("status,words", [(401, "401 Unauthorized"), (403, "403 Forbidden"), (404, "404 Not Found")])
def test_auth_and_missing_tiles_are_input_errors(paris, tmp_path, server, status, words):
    server.faults.status = status
    with pytest.raises(InputError, match=words) as err:
        _read(paris, _options(server, tmp_path))
    assert err.value.source.startswith("http://127.0.0.1")
    assert len(server.log.times) == 1  # not retried


def test_timeouts_retry_then_fail(paris, tmp_path, server):
    server.faults.slow_s = 1.0
    with pytest.raises(ServiceError, match="failed 3 times, last: .*Timeout"):
        _read(paris, _options(server, tmp_path, timeout_s=0.2, retries=2))
    assert len(server.log.times) == 3


def test_truncated_download_is_retried(paris, tmp_path, server):
    server.faults.truncate = 1  # the server's first request is cut short
    _read(paris, _options(server, tmp_path, concurrency=1))
    with_fault = len(server.log.times)
    _read(paris, _options(server, tmp_path / "clean", concurrency=1))
    assert with_fault == len(server.log.times) - with_fault + 1  # the same tiles, and the cut one once more
    for tile in (tmp_path / "cache").rglob("*.tile"):
        decode_tile(kept_body(tile))  # nothing half-written reached the cache


def test_corrupt_tiles_fail_clearly_and_are_not_cached(paris, tmp_path, server):
    server.faults.corrupt = True
    with pytest.raises(ServiceError, match="corrupt or truncated tile"):
        _read(paris, _options(server, tmp_path, retries=1))
    assert not list((tmp_path / "cache").rglob("*.tile"))


def test_concurrency_limit(paris, tmp_path, server):
    server.faults.slow_s = 0.05
    _read(paris, _options(server, tmp_path, concurrency=2))
    assert server.log.max_in_flight == 2


def test_url_templates():
    assert tile_url("https://t/{z}/{x}/{y}.png", 3, 4, 5) == "https://t/3/4/5.png"
    assert tile_url("https://t/{zoom}/{x}/{-y}.png", 3, 4, 5) == "https://t/3/4/2.png"  # TMS rows from the south
    assert tile_url("https://{switch:a,b}.t/{z}/{x}/{y}", 1, 0, 1) == "https://b.t/1/0/1"


def test_diff_on_xyz_imagery(paris, tmp_path, server):
    """The whole diff reads the tile server like the GeoTIFF and records attribution and licence."""
    out = tmp_path / "out"
    rc = main(["diff", "--aoi", str(paris / "aoi.geojson"), "--osm", str(paris / "osm_roads.geojson"),
               "--xyz", server.url, "--xyz-zoom", str(ZOOM), "--xyz-attribution", "Test tiles (c) SpaceNet",
               "--xyz-licence", "CC-BY-SA-4.0", "--cache-dir", str(tmp_path / "cache"), "--out", str(out),
               "--tile", "64", "--overlap", "16"])  # 3 x 4 model windows, so that tiles can share them out
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["imagery"]["path"] == server.url and summary["imagery"]["zoom"] == ZOOM
    assert summary["imagery"]["attribution"] == "Test tiles (c) SpaceNet"
    assert summary["imagery"]["licence"] == "CC-BY-SA-4.0"
    assert summary["predicted_road_km"] > 0.1  # the roads of the chip are seen through the tiles
    assert "Test tiles (c) SpaceNet" in (out / "suggestions.osm").read_text()
    assert (out / "overview.png").stat().st_size > 10_000

    tiled = tmp_path / "tiled"  # the same through tiles: the tile reader serves the tiled path too
    assert main(["diff", "--aoi", str(paris / "aoi.geojson"), "--osm", str(paris / "osm_roads.geojson"),
                 "--xyz", server.url, "--xyz-zoom", str(ZOOM), "--xyz-attribution", "Test tiles (c) SpaceNet",
                 "--xyz-licence", "CC-BY-SA-4.0", "--cache-dir", str(tmp_path / "cache"), "--out", str(tiled),
                 "--tile", "64", "--overlap", "16", "--workers", "0", "--tile-size", "96", "--tile-margin", "32"]) == 0
    again = json.loads((tiled / "summary.json").read_text())
    grid = again["grid"]  # the AOI and 40 m of context around it, where the server has tiles
    assert again["tiles"]["tiles"] == math.ceil(grid["width"] / 96) * math.ceil(grid["height"] / 96) > 1
    assert again["predicted_road_km"] == pytest.approx(summary["predicted_road_km"], rel=0.01)
    assert again["suggestions"] == summary["suggestions"]


def test_a_key_in_the_tile_url_reaches_no_output_and_no_log(paris, tmp_path, server, caplog):
    """Without ``--xyz-attribution`` the outputs name the source by its URL, and the first answer is
    a CDN's error page quoting the URL asked for: the key is masked everywhere."""
    caplog.set_level(logging.INFO)  # what -v shows; urllib3's DEBUG lines never reach the user
    server.faults.echo = 1
    out = tmp_path / "out"
    assert main(["diff", "--aoi", str(paris / "aoi.geojson"), "--osm", str(paris / "osm_roads.geojson"),
                 "--xyz", server.url + "?access_token=SEKRIT42", "--xyz-zoom", str(ZOOM), "--cache-dir",
                 str(tmp_path / "cache"), "--out", str(out)]) == 0
    assert server.log.statuses[0] == 503 and "retry 1 of" in caplog.text  # the page was seen and logged
    assert "SEKRIT42" not in caplog.text
    assert "access_token=***" in (out / "suggestions.osm").read_text()  # named, masked
    for f in out.rglob("*"):
        assert b"SEKRIT42" not in f.read_bytes(), f


def test_a_library_that_logs_the_tile_url_logs_it_masked(paris, tmp_path, server, caplog):
    """A server's answer with a malformed header line makes urllib3 warn, quoting the URL it
    fetched, key and all (shown with -v): the key is masked there too."""
    server.faults.broken_header = True
    assert main(["-v", "diff", "--aoi", str(paris / "aoi.geojson"), "--osm", str(paris / "osm_roads.geojson"),
                 "--candidates", str(paris / "osm_roads.geojson"), "--xyz", server.url + "?api=SEKRIT42",
                 "--xyz-zoom", str(ZOOM), "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "out")]) == 0
    assert "Failed to parse headers" in caplog.text and "api=***" in caplog.text
    assert "SEKRIT42" not in caplog.text
    for f in (tmp_path / "out").rglob("*"):
        assert b"SEKRIT42" not in f.read_bytes(), f


def test_unreachable_server_is_an_input_error(paris, tmp_path):
    options = XyzOptions("http://127.0.0.1:9/{z}/{x}/{y}.png", ZOOM, cache_dir=tmp_path, retries=1, backoff_s=0.01,
                         timeout_s=1.0)
    started = time.monotonic()
    with pytest.raises(InputError, match="failed 2 times, last: ConnectionError"):
        open_xyz(options, load_aoi(str(paris)).geometry)
    assert time.monotonic() - started < 10


NO_TILE_FORMS = ["404", "204", "transparent", "one-colour", "bing"]


def _no_imagery_north_or_east(server: TileServer, paris: Path, form: str) -> tuple[float, float]:
    """The server has imagery only in the AOI's south-west: north of the row and east of the column
    of the tile under its centre it has none, and says so as ``form``. Returns that tile's north
    latitude and east longitude."""
    from osmgap.sources.xyz import lonlat_to_tile

    centre = load_aoi(str(paris)).geometry.centroid
    cx, cy = lonlat_to_tile(centre.x, centre.y, ZOOM)
    server.faults.no_imagery, server.faults.no_tile = (lambda z, x, y: x > cx or y < cy), form
    n = 2 ** ZOOM
    north = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * cy / n))))
    return north, (cx + 1) / n * 360 - 180


@pytest.mark.parametrize("form", NO_TILE_FORMS)
def test_a_server_covering_part_of_the_aoi_is_measured_and_read_as_no_imagery_there(paris, tmp_path, server, form):
    """Past the tile under the AOI's centre, a tile the server does not have was an error (404) or
    read as imagery (a transparent, blank or placeholder tile): now no coverage, measured, and
    asked for once."""
    from osmgap.sources.xyz import measure_xyz_coverage

    aoi = load_aoi(str(paris))
    full = measure_xyz_coverage(open_xyz(_options(server, tmp_path / "full"), aoi.geometry), aoi)
    assert full.aoi_share == pytest.approx(1.0)
    north, east = _no_imagery_north_or_east(server, paris, form)
    xyz = open_xyz(_options(server, tmp_path / "part"), aoi.geometry)
    part = measure_xyz_coverage(xyz, aoi)
    assert 0.2 < part.aoi_share < 0.8
    west_, south_, east_, north_ = part.area_wgs84.bounds
    assert east_ == pytest.approx(east, abs=2e-5) and north_ == pytest.approx(north, abs=2e-5)
    grid = analysis_grid(xyz, aoi.geometry, aoi.metric_crs, 1.0)
    data, valid = XyzWindowReader(xyz, grid).read_all()
    assert valid[-grid.height // 8:, : grid.width // 8].all()  # the south-west corner
    assert not valid[: grid.height // 8].any() and not valid[:, -grid.width // 8:].any()  # north, east
    assert (data[:, ~valid] == 0).all()
    asked = len(server.log.times)
    XyzWindowReader(xyz, grid).read_all()  # a missing tile is not kept on disk (coverage may come) but
    assert len(server.log.times) == asked  # is not asked for again in the same run


@pytest.mark.parametrize("form", ["404", "transparent"])
def test_a_week_the_server_shows_less_of_the_aoi_calls_no_gap_there_fixed(paris, tmp_path, server, form, monkeypatch):
    """A weekly run on a tile server: the week the server has no imagery over the gaps (a 404 ended
    the run; a transparent tile was read as imagery without roads), they were all reported "fixed:
    no longer detected" and would have left their MapRoulette challenge. Now the run goes on, says
    how much of the AOI it saw, and leaves the gaps it could not see open."""
    import sqlite3

    state = tmp_path / "state.sqlite"

    def week(name: str, when: str) -> dict:
        monkeypatch.setenv("OSMGAP_NOW", when)
        assert main(["diff", "--aoi", str(PROJECT / "sample_aoi" / "paris-1447-demo"), "--xyz", server.url,
                     "--xyz-zoom", str(ZOOM), "--cache-dir", str(tmp_path / name / "cache"),
                     "--out", str(tmp_path / name), "--state", str(state)]) == 0
        return json.loads((tmp_path / name / "summary.json").read_text())

    first = week("w1", "2025-01-06T04:00:00Z")
    gaps = [f["geometry"]["coordinates"] for f in
            json.loads((tmp_path / "w1" / "suggestions.geojson").read_text())["features"]]
    north, east = _no_imagery_north_or_east(server, paris, form)
    outside = [sum(x > east or y > north for x, y in line) / len(line) for line in gaps]
    assert first["suggestions"] == 3 and sum(o >= 0.5 for o in outside) >= 2, outside  # where week 2 sees nothing
    second = week("w2", "2025-01-13T04:00:00Z")
    assert 0.2 < second["coverage"]["imagery_aoi_share"] < 0.8
    assert any("covers only" in w for w in second["warnings"])
    with sqlite3.connect(state) as db:
        assert db.execute("SELECT status, count(*) FROM suggestions GROUP BY status").fetchall() == [("open", 3)]
