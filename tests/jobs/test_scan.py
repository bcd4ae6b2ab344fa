"""`osmgap scan` on the real sample AOI (Paris chip, real OSM), and its map in headless Chromium.

Zoom 18 (~100 m tiles) gives the 0.025 km2 chip six tiles, enough to tell tiles apart; the
default z16 puts the whole chip in one tile (checked too).
"""
from __future__ import annotations

import http.server
import json
import math
import re
import threading
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
import shapely
from PIL import Image
from shapely.geometry import shape

from osmgap.cli import main
from osmgap.core.aoi import reproject
from osmgap.jobs.scan import Tile, tile_at, tiles_over
from osmgap.sources.xyz import MAX_LAT
from tests.chromium import dump_dom, dump_dom_with_loopback, screenshot, with_click
from tests.conftest import PROJECT

pytestmark = pytest.mark.slow


def _scan(out: Path, *extra: str) -> dict:
    assert main(["scan", "--aoi", "sample_aoi/paris-1447", "--zoom", "18", "--out", str(out), *extra]) == 0
    return {f["properties"]["id"]: f for f in json.loads((out / "tiles.geojson").read_text())["features"]}


@pytest.fixture(scope="module")
def scanned(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("scan") / "paris"
    _scan(out)
    return out


@pytest.fixture(scope="module")
def tiles(scanned) -> dict:
    return {f["properties"]["id"]: f for f in json.loads((scanned / "tiles.geojson").read_text())["features"]}


def test_tile_arithmetic():
    assert Tile(0, 0, 0).bounds() == pytest.approx((-180, -MAX_LAT, 180, MAX_LAT))
    for z, x, y in [(16, 33183, 22511), (18, 132733, 90046), (3, 7, 0), (12, 0, 4095)]:
        t = Tile(z, x, y)
        w, s, e, n = t.bounds()
        assert tile_at((w + e) / 2, (s + n) / 2, z) == t  # the centre maps back to its tile
        children = tiles_over(t.polygon().buffer(-1e-9), z + 1)
        assert [c.parent(1) for c in children] == [t] * 4  # four children, inside their parent
    # the OSM wiki's form of the formula (ln(tan + sec)), as a cross-check, at the Eiffel tower
    lon, lat, n = 2.2945, math.radians(48.8583), 2 ** 16
    wiki = (int((lon + 180) / 360 * n), int((1 - math.log(math.tan(lat) + 1 / math.cos(lat)) / math.pi) / 2 * n))
    assert (tile_at(2.2945, 48.8583, 16).x, tile_at(2.2945, 48.8583, 16).y) == wiki == (33185, 22545)


def test_tiles_cover_the_aoi_and_only_it(scanned, tiles, paris_aoi):
    crs = paris_aoi.metric_crs
    aoi_m2 = paris_aoi.to_metric(paris_aoi.geometry).area
    parts = [reproject(shape(f["geometry"]).intersection(paris_aoi.geometry), "EPSG:4326", crs).area for f in tiles.values()]
    assert len(tiles) == 6 and all(p > 0 for p in parts)
    assert sum(parts) == pytest.approx(aoi_m2, rel=1e-6)  # tiles partition the AOI: no gap, no double count
    summary = json.loads((scanned / "summary.json").read_text())
    assert summary["tiles"] == 6 and summary["zoom"] == 18
    assert sorted(p["rank"] for p in (f["properties"] for f in tiles.values())) == list(range(1, 7))
    props = [f["properties"] for f in tiles.values()]
    assert any(0 < p["uncovered_m"] < p["predicted_m"] for p in props)  # OSM covers some, not all, of a tile's road
    for f in tiles.values():  # JOSM downloads the tile's scanned part, padded by 25 m (~0.0004 degrees)
        q = {k: float(v[0]) for k, v in parse_qs(f["properties"]["josm_query"]).items()}
        josm = shapely.box(q["left"], q["bottom"], q["right"], q["top"])
        cell = shape(f["geometry"])
        assert josm.contains(cell) and shapely.box(*cell.buffer(0.0006).bounds).contains(josm)
    assert summary["predicted_km"] > 0.1  # the model sees the chip's streets


def test_removing_osm_ways_raises_the_score_where_they_were(scanned, tiles, paris, tmp_path):
    """A controlled edit of real OSM: drop the two longest ways; tiles they crossed gain score
    (the model's road there is no longer covered); tiles far from them do not change."""
    doc = json.loads((paris / "osm_roads.geojson").read_text())
    metric = [reproject(shape(f["geometry"]), "EPSG:4326", "EPSG:32631") for f in doc["features"]]
    longest = sorted(range(len(metric)), key=lambda i: -metric[i].length)[:2]
    removed = shapely.union_all([shape(doc["features"][i]["geometry"]) for i in longest])
    doc["features"] = [f for i, f in enumerate(doc["features"]) if i not in longest]
    osm = tmp_path / "osm_minus_two.geojson"
    osm.write_text(json.dumps(doc))
    edited = _scan(tmp_path / "out", "--osm", str(osm))
    removed_m = reproject(removed, "EPSG:4326", "EPSG:32631")
    gained = 0.0
    for tid, f in tiles.items():
        before, after = f["properties"], edited[tid]["properties"]
        assert after["predicted_m"] == pytest.approx(before["predicted_m"])  # same imagery, same model
        assert after["score"] >= before["score"] - 0.1
        far = reproject(shape(f["geometry"]), "EPSG:4326", "EPSG:32631").distance(removed_m) > 12.5
        if far:
            assert after["score"] == pytest.approx(before["score"], abs=0.1)
        gained += after["score"] - before["score"]
    assert gained > 50  # metres of the model's road along the dropped ways now count as unmapped


def test_a_scan_reads_a_tile_server_as_it_reads_the_file(scanned, tiles, paris, tmp_path):
    """Most mappers have a tile server, not a GeoTIFF: the same chip served as XYZ tiles (zoom
    18, ~0.39 m pixels, warped from the file) scores the same tiles much as the file does."""
    from tests.tileserver import TileServer

    with TileServer(paris / "image.tif") as server:
        served = _scan(tmp_path / "xyz", "--xyz", server.url, "--xyz-zoom", "18", "--cache-dir", str(tmp_path / "cache"))
    summary = json.loads((tmp_path / "xyz" / "summary.json").read_text())
    assert summary["imagery"]["source"] == "xyz" and summary["imagery"]["path"] == server.url
    assert set(served) == set(tiles)
    file_m = sum(f["properties"]["predicted_m"] for f in tiles.values())
    xyz_m = sum(f["properties"]["predicted_m"] for f in served.values())
    assert file_m > 100 and xyz_m == pytest.approx(file_m, rel=0.25)
    assert list((tmp_path / "cache" / "xyz").rglob("*.tile"))


def test_a_demonstration_sample_is_scanned_as_its_diff_sees_it(scanned, tmp_path, capsys):
    """The demo sample takes three ways out of OSM for its diff; its scan did not, and found almost
    nothing where the diff finds 0.16 km. Now it sees the same OSM, and says so."""
    out = tmp_path / "demo"
    assert main(["scan", "--aoi", "sample_aoi/paris-1447-demo", "--zoom", "18", "--out", str(out)]) == 0
    demo, whole = (json.loads((d / "summary.json").read_text()) for d in (out, scanned))
    assert len(demo["demonstration"]["removed_osm_ids"]) == 3 and "demonstration" not in whole
    assert demo["osm_ways"] == whole["osm_ways"] - 3 and demo["uncovered_km"] > whole["uncovered_km"] + 0.05
    assert "This is a demonstration" in capsys.readouterr().out


def test_default_zoom_16_scores_the_chip_in_one_tile(tmp_path):
    out = tmp_path / "z16"
    assert main(["scan", "--aoi", "sample_aoi/paris-1447", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["zoom"] == 16 and summary["tiles"] == 1


def test_the_map_renders_every_tile_and_the_osm_roads_offline(scanned, tiles, paris, paris_aoi):
    """Every host name resolves to nothing: the basemap's tiles are asked for and missing, the
    scored tiles and the OSM roads are drawn all the same, and the list names places and km."""
    dom = dump_dom(scanned / "map.html")
    paths = re.findall(r'<path[^>]*class="[^"]*scan-tile tile-(\d+)-(\d+)-(\d+)', dom)
    assert sorted("/".join(p) for p in paths) == sorted(tiles)
    ways = json.loads((paris / "osm_roads.geojson").read_text())["features"]
    inside = sum(shape(w["geometry"]).intersects(paris_aoi.geometry) for w in ways)
    assert len(re.findall(r'<path[^>]*class="[^"]*osm-road', dom)) == inside > 5
    basemap = re.findall(r'<img[^>]*src="([^"]*)"[^>]*class="[^"]*leaflet-tile', dom) + \
        re.findall(r'<img[^>]*class="[^"]*leaflet-tile[^"]*"[^>]*src="([^"]*)"', dom)
    assert basemap and all(u.startswith("https://tile.openstreetmap.org/") for u in basemap)
    assert "OpenStreetMap</a> contributors" in dom
    assert "<script src=" not in dom and "<link" not in dom  # nothing but the basemap from outside the page
    summary = json.loads((scanned / "summary.json").read_text())
    assert summary["aoi"]["name"] == "paris-1447" and "paris-1447" in re.search(r'<h1 id="title">(.*?)</h1>', dom)[1]
    rows = re.findall(r'<tr class="top" data-tile="([^"]+)"><td>(\d+)</td><td>([^<]+)</td><td class="km">([^<]+)</td>', dom)
    scored = sorted((p for p in (f["properties"] for f in tiles.values()) if p["score"] > 0), key=lambda p: p["rank"])
    assert [r[0] for r in rows] == [p["id"] for p in scored] and scored
    assert re.search(r'<div id="ramp-key">', dom)  # the colour scale shows when a tile scored
    for (tid, rank, place, km), p in zip(rows, scored):  # the place: on the tile's unmapped road, in its scanned part
        assert shape(tiles[tid]["geometry"]).buffer(1e-6).contains(shapely.Point(p["lon"], p["lat"]))
        length = f"{p['score']:.0f} m" if p["score"] < 1000 else f"{p['score'] / 1000:.1f} km"
        assert place == f"{p['lat']:.5f}, {p['lon']:.5f}" and km == length and int(rank) == p["rank"]


def _page_data(page: Path) -> dict:
    """The data a map page inlines (``const DATA = {...};``)."""
    return json.loads(re.search(r"const DATA = (\{.*?\});\n", page.read_text())[1])


def test_the_map_draws_the_road_each_score_measures(scanned, tiles):
    """The red lines are the score: per tile, their length is the tile's uncovered_m."""
    data = _page_data(scanned / "map.html")
    drawn: dict[str, float] = {}
    for f in data["unmapped"]["features"]:
        line = reproject(shape(f["geometry"]), "EPSG:4326", "EPSG:32631")
        drawn[f["properties"]["tile"]] = drawn.get(f["properties"]["tile"], 0.0) + line.length
    for tid, f in tiles.items():
        assert drawn.get(tid, 0.0) == pytest.approx(f["properties"]["uncovered_m"], abs=0.5)
    assert sum(drawn.values()) > 5
    dom = dump_dom(scanned / "map.html")
    assert len(re.findall(r'<path[^>]*class="[^"]*unmapped-road', dom)) == len(data["unmapped"]["features"])


def test_screenshot_shows_the_scored_tiles(scanned, tiles):
    """test-artifacts/scanmap.png: the page as a mapper sees it (kept for the eye)."""
    png = screenshot(scanned / "map.html", PROJECT / "test-artifacts" / "scanmap.png", size=(1200, 800))
    with Image.open(png) as im:
        rgb = np.asarray(im.convert("RGB"))[:, :860].reshape(-1, 3).astype(int)  # the map, not the side panel
    warm = (rgb[:, 0] > 180) & (rgb[:, 0] - rgb[:, 2] > 60)  # yellow..red: tiles with a score
    grey = (np.abs(rgb[:, 0] - rgb[:, 2]) < 8) & (rgb[:, 0] > 200) & (rgb[:, 0] < 235)  # score 0
    assert warm.mean() > 0.02 and grey.mean() > 0.02


class _FakeJosm(http.server.BaseHTTPRequestHandler):
    """Answers like JOSM's remote control (200, "OK", CORS open) and records each request."""

    requests: list[str] = []

    def do_GET(self) -> None:
        type(self).requests.append(self.path)
        self.send_response(200)
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"OK\r\n")

    def log_message(self, *args) -> None:
        pass


def test_clicking_a_tile_asks_josm_to_load_it(scanned, tiles, tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeJosm)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        target = max(tiles.values(), key=lambda f: f["properties"]["score"])["properties"]
        page = with_click(scanned / "map.html", f"path.tile-{target['z']}-{target['x']}-{target['y']}",
                          tmp_path / "clicked.html")
        dom = dump_dom_with_loopback(page, f"?josm=http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
    assert len(_FakeJosm.requests) == 1
    url = urlsplit(_FakeJosm.requests[0])
    assert url.path == "/load_and_zoom"
    q = {k: [f"{float(v[0]):.7f}"] for k, v in parse_qs(url.query).items()}
    assert q == parse_qs(target["josm_query"])  # the box tiles.geojson gives, as it gives it
    assert f"Tile {target['id']}: loaded in JOSM" in dom
    assert "https://www.openstreetmap.org/edit?editor=id#map=19/" in dom  # the popup's iD link


def test_missing_leaflet_is_a_clear_error_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OSMGAP_LEAFLET_DIR", str(tmp_path / "no-leaflet"))
    out = tmp_path / "out"
    assert main(["scan", "--aoi", "sample_aoi/paris-1447", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "Leaflet 1.9.4" in err and "fetch_leaflet.sh" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


CHICAGO_CRS = "EPSG:32616"
CHICAGO_AREA = shapely.box(444700.0, 4635000.0, 445700.0, 4636100.0)  # ~1 km2 around the UIC campus


def test_gps_scan_scores_the_driven_roads_osm_lost(chicago_gps, chicago_ways, chicago_traces, tmp_path, capsys):
    """GPS alone (no imagery covers Chicago): a controlled edit of real OSM drops up to three long
    streets the shuttles drove (each with its twin: the graph has one edge per direction, and
    only streets with no other road within 20 m qualify; on this campus one does); the tiles they
    crossed gain about their length, the rest do not move."""
    ways = chicago_ways[chicago_ways.intersects(CHICAGO_AREA.buffer(300))]
    points = shapely.points(chicago_traces.x, chicago_traces.y)
    hits = np.bincount(shapely.STRtree(ways.geometry.to_numpy()).query(points, predicate="dwithin", distance=10.0)[1],
                       minlength=len(ways))
    inner = (ways.within(CHICAGO_AREA.buffer(-150)) & (ways.length >= 100) & (hits >= 500)).to_numpy()
    candidates = ways[inner].loc[lambda f: f.length.sort_values(ascending=False).index]
    # The graph holds each street once per direction: a seed goes with its twins (within 5 m).
    # A seed beside another road (one carriageway of a dual road) is skipped: the other one,
    # kept, would still cover the GPS ridge.
    groups: list = []
    for g in candidates.geometry:
        twins = ways.index[ways.geometry.hausdorff_distance(g) < 5.0]
        others = ways.drop(twins).geometry.union_all().buffer(20.0)
        if g.intersection(others).length < 0.2 * g.length and not any(set(twins) & set(t) for t in groups):
            groups.append(list(twins))
    assert groups
    dropped = ways.loc[[i for t in groups[:3] for i in t]]
    full, minus = tmp_path / "osm.geojson", tmp_path / "osm_minus.geojson"
    ways.to_crs("EPSG:4326").to_file(full, driver="GeoJSON")
    ways.drop(dropped.index).to_crs("EPSG:4326").to_file(minus, driver="GeoJSON")
    bbox = ",".join(f"{v:.6f}" for v in reproject(CHICAGO_AREA, CHICAGO_CRS, "EPSG:4326").bounds)

    def run(osm: Path, out: Path) -> dict:
        assert main(["scan", f"--aoi={bbox}", "--zoom", "17", "--osm", str(osm), "--gps", str(chicago_gps / "trips"),
                     "--gps-crs", CHICAGO_CRS, "--out", str(out)]) == 0
        return {f["properties"]["id"]: f for f in json.loads((out / "tiles.geojson").read_text())["features"]}

    before = run(full, tmp_path / "full")
    assert "with road in the GPS traces not in OSM" in capsys.readouterr().out  # no model ran: nothing "predicted"
    after = run(minus, tmp_path / "minus")
    graph = run(chicago_gps, tmp_path / "graph")  # the mapconstruction graph itself, its CRS from --gps-crs
    assert {t: f["properties"]["score"] for t, f in graph.items()} == \
        pytest.approx({t: f["properties"]["score"] for t, f in before.items()}, abs=0.1)
    summary = json.loads((tmp_path / "full" / "summary.json").read_text())
    assert summary["imagery"] is None and summary["uncovered_km"] < 0.05  # read as the diff reads it: all mapped
    lost = shapely.union_all(dropped.geometry.to_numpy())  # twins overlap: the union counts a street once
    gained = 0.0
    for tid, f in before.items():
        b, a = f["properties"], after[tid]["properties"]
        if reproject(shape(f["geometry"]), "EPSG:4326", CHICAGO_CRS).distance(lost) > 15:
            assert a["score"] == pytest.approx(b["score"], abs=0.1)
        gained += a["score"] - b["score"]
    assert gained > 0.6 * lost.length
