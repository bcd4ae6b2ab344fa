"""OSM road loading from real extracts: .pbf, .osm XML, GeoJSON and a recorded Overpass answer.

Counts are checked against an independent plain-osmium read of the same file, so a filter or
clipping bug shows up as a mismatch rather than as a number someone copied from the output.
"""
from __future__ import annotations

import bz2
import json
import os
import re
import shutil
import time
from dataclasses import replace
from pathlib import Path

import osmium
import overpy.exception as opx
import pytest
import shapely
from shapely.geometry import LineString, Polygon

from osmgap.core.aoi import Aoi, load_aoi
from osmgap.core.datamodel import PARKING_COLUMNS, WAY_COLUMNS, RoadNetwork
from osmgap.core.osmtags import OTHER_LINES
from osmgap.errors import InputError, ServiceError
from osmgap.export.report import osm_as_of
from osmgap.sources import osm, osm_geojson, overpass
from osmgap.sources.osm import ROAD_CLASSES, load_osm
from osmgap.sources.overpass import overpass_cache_path, overpass_query

TEST_DATA = Path(__file__).parent.parent / "data"
OVERPASS_FIXTURE = TEST_DATA / "overpass_west_oakland.json"

# AOIs inside each file's extent, chosen so that some ways cross their edges.
CASES = {
    "helsinki": ("helsinki.osm.pbf", "24.940,60.166,24.950,60.176", 411),
    "oakland": ("west-oakland.osm", "-122.30258,37.80615,-122.29825,37.80914", 23),
}


class _AllHighways(osmium.SimpleHandler):
    """Every highway=* way of a file with its full geometry: the reference the loader must match."""

    def __init__(self) -> None:
        super().__init__()
        self.ways: dict[int, tuple[str, LineString | None, list[int]]] = {}

    def way(self, w: osmium.osm.Way) -> None:
        if "highway" not in w.tags:
            return
        coords = [(n.lon, n.lat) for n in w.nodes if n.location.valid()]
        located = [n.ref for n in w.nodes if n.location.valid()]
        geom = LineString(coords) if len(coords) > 1 else None
        self.ways[w.id] = (w.tags["highway"], geom, located)


def _reference(path: Path, aoi: Aoi) -> dict[int, tuple[str, LineString, list[int]]]:
    """Highway ways (any class) whose full geometry meets the AOI."""
    handler = _AllHighways()
    handler.apply_file(str(path), locations=True)
    return {i: v for i, v in handler.ways.items() if v[1] is not None and v[1].intersects(aoi.geometry)}


@pytest.fixture(scope="module", params=sorted(CASES))
def loaded(request, data: Path):
    """(network, reference ways, aoi, expected distinct ways) for each real OSM file."""
    name, bbox, expected = CASES[request.param]
    aoi = load_aoi(bbox)
    path = data / "osm" / name
    return load_osm(str(path), aoi), _reference(path, aoi), aoi, expected


def test_road_way_counts_match_independent_read(loaded):
    net, ref, _, expected = loaded
    roads = {i for i, (hw, _, _) in ref.items() if hw in ROAD_CLASSES}
    assert set(net.ways.osm_id) == roads
    assert net.ways.osm_id.nunique() == expected
    assert net.provenance["ways"] == len(net.ways) >= expected
    assert net.provenance["licence"] == "ODbL"


def test_only_road_classes_and_no_footways(loaded):
    net, ref, _, _ = loaded
    assert set(net.ways.highway) <= ROAD_CLASSES
    assert not {"footway", "path", "cycleway", "steps", "construction"} & ROAD_CLASSES
    footways = {i for i, (hw, _, _) in ref.items() if hw == "footway"}
    assert footways, "the AOI should contain footways for this test to mean anything"
    assert not footways & set(net.ways.osm_id)


def test_ways_mapped_as_something_else_are_other_ways(loaded):
    """Footways, cycleways, paths and roads under construction are no roads, but a road source
    may show them as roads: they are kept apart (RoadNetwork.other_ways), as the file has them."""
    net, ref, aoi, _ = loaded
    others = {i: hw for i, (hw, _, _) in ref.items() if hw in OTHER_LINES["highway"]}
    assert {hw for hw in others.values()} >= {"footway"}
    loaded = dict(zip(net.other_ways.osm_id, net.other_ways.what))
    assert {i: loaded.get(i) for i in others} == {i: f"highway={hw}" for i, hw in others.items()}
    assert all(shapely.dwithin(aoi.geometry, g, 0.001) for g in net.other_ways.geometry)  # and those just outside
    assert not set(loaded) & set(net.ways.osm_id)
    assert not {i for i, (hw, _, _) in ref.items() if hw == "platform"} & set(loaded)  # beside roads: not read
    assert all(g.equals_exact(ref[i][1], 0) for i, g in zip(net.other_ways.osm_id, net.other_ways.geometry) if i in ref)


def test_steps_and_corridors_are_other_ways_and_platforms_are_not(loaded):
    """A source holding every highway=* line gave Helsinki's steps and indoor corridors back as
    missing roads; bus platforms along the curb stay unread (read, they hid deleted streets)."""
    net, ref, _, _ = loaded
    kinds = set(net.other_ways.what)
    for kind in ("steps", "corridor", "platform"):
        if any(hw == kind for hw, _, _ in ref.values()):
            assert (f"highway={kind}" in kinds) == (kind != "platform"), kind
    if net.provenance["source"].endswith("helsinki.osm.pbf"):
        assert "highway=steps" in kinds


def test_schema(loaded):
    net, _, _, _ = loaded
    assert list(net.ways.columns) == WAY_COLUMNS + ["geometry"]
    assert net.ways.crs.to_epsg() == 4326
    assert set(net.ways.geom_type) == {"LineString"}
    assert all(isinstance(t, dict) and t["highway"] == hw for t, hw in zip(net.ways.tags, net.ways.highway))


def test_versions_and_node_table(loaded):
    net, ref, _, _ = loaded
    assert all(isinstance(v, int) and v > 0 for v in net.ways.version)
    assert all(isinstance(v, int) and v > 0 for v, _, _ in net.nodes.values())
    located = {n for osm_id in net.ways.osm_id for n in ref[osm_id][2]}
    assert set(net.nodes) == located  # every located node of a kept way, nothing else
    uncut = 0
    for row in net.ways.itertuples():
        assert [n for n in row.node_ids if n in net.nodes] == ref[row.osm_id][2]
        if row.geometry.equals_exact(ref[row.osm_id][1], 0):
            uncut += 1
            ends = [n for n in row.node_ids if n in net.nodes]
            assert net.nodes[ends[0]][1:] == pytest.approx(row.geometry.coords[0], abs=1e-9)
            assert net.nodes[ends[-1]][1:] == pytest.approx(row.geometry.coords[-1], abs=1e-9)
    assert uncut > 0


def test_geometries_clipped_to_aoi(loaded):
    net, ref, aoi, _ = loaded
    fence = aoi.geometry.buffer(1e-9)
    assert all(fence.covers(g) for g in net.ways.geometry)
    crossing = [i for i in set(net.ways.osm_id) if not aoi.geometry.covers(ref[i][1])]
    assert crossing, "some way should cross the AOI edge"
    for osm_id in crossing:
        pieces = net.ways.geometry[net.ways.osm_id == osm_id]
        assert sum(p.length for p in pieces) < ref[osm_id][1].length - 1e-9


def test_way_that_leaves_and_reenters_becomes_pieces(data: Path):
    name, bbox, _ = CASES["helsinki"]
    net = load_osm(str(data / "osm" / name), load_aoi(bbox))
    repeated = net.ways.osm_id[net.ways.osm_id.duplicated()]
    assert len(repeated) > 0
    pieces = net.ways[net.ways.osm_id == repeated.iloc[0]]
    assert len(pieces) >= 2 and not pieces.geometry.iloc[0].intersects(pieces.geometry.iloc[1])
    assert pieces.version.nunique() == 1


def test_bz2_xml_reads_like_plain_xml(data: Path, tmp_path: Path):
    name, bbox, _ = CASES["oakland"]
    plain = data / "osm" / name
    packed = tmp_path / "west-oakland.osm.bz2"
    packed.write_bytes(bz2.compress(plain.read_bytes()))
    a, b = load_osm(str(plain), load_aoi(bbox)), load_osm(str(packed), load_aoi(bbox))
    assert b.provenance["format"] == "osm-xml"
    assert list(a.ways.osm_id) == list(b.ways.osm_id) and a.nodes == b.nodes


def test_aoi_without_roads_is_an_empty_network(data: Path):
    """An unmapped place inside the extract (a ~100 x 100 m spot of Kotka no road reaches)."""
    net = load_osm(str(data / "osm" / "kotka.osm.pbf"), load_aoi("26.9332,60.5252,26.9348,60.5258"))
    assert len(net) == 0 and net.nodes == {}
    assert list(net.ways.columns) == WAY_COLUMNS + ["geometry"]
    assert net.provenance["ways"] == 0 and "warning" not in net.provenance


@pytest.mark.parametrize("name", ["kotka.osm.pbf", "west-oakland.osm", "no-bounds.osm", "kotka.geojson"])
def test_a_file_of_another_place_is_refused_not_read_as_unmapped(name: str, data: Path, tmp_path: Path):
    """Diffed against roads of elsewhere every road would look missing: the file is named, with
    where its data lies. Without a declared area (no <bounds>, GeoJSON) its roads say where."""
    path = data / "osm" / name
    if name == "no-bounds.osm":
        path = tmp_path / name
        path.write_text(re.sub(r"<bounds[^>]*/>", "", (data / "osm" / "west-oakland.osm").read_text()))
        assert "<bounds" not in path.read_text()
    elif name == "kotka.geojson":
        path = tmp_path / name
        load_osm(str(data / "osm" / "kotka.osm.pbf"), load_aoi("26.93,60.52,26.97,60.54")).ways.to_file(path)
    with pytest.raises(InputError) as err:
        load_osm(str(path), load_aoi("10.0,50.0,10.01,50.01"))
    assert err.value.source == str(path) or Path(err.value.source) == path
    assert "no road in or near the AOI" in str(err.value) and "the file covers lon" in str(err.value)


def test_an_extract_covering_part_of_the_aoi_is_warned_about(data: Path, caplog):
    net = load_osm(str(data / "osm" / "helsinki.osm.pbf"), load_aoi("24.940,60.166,24.970,60.176"))
    assert len(net) > 0  # the ways of the covered part
    assert "covers only 45% of the AOI" in net.provenance["warning"] and net.provenance["warning"] in caplog.text


def _kotka_as_of(data: Path, path: Path, current: str) -> Path:
    """Real Kotka, its header saying its data was current at ``current`` (as a Geofabrik or
    ``osmium extract`` file says)."""
    header = osmium.io.Header()
    header.set("osmosis_replication_timestamp", current)
    with osmium.SimpleWriter(str(path), header=header) as w:
        for obj in osmium.FileProcessor(str(data / "osm" / "kotka.osm.pbf")):
            w.add(obj)
    return path


def test_an_old_extract_is_warned_about_and_every_extract_says_how_old_its_roads_are(data: Path, tmp_path: Path,
                                                                                     caplog):
    """Diffed against an old extract, every road mapped since looks missing, and a weekly run
    said nothing of it."""
    import datetime as dt

    aoi = load_aoi("26.9300,60.5200,26.9699,60.5400")  # the Kotka extract's roads
    plain = load_osm(str(data / "osm" / "kotka.osm.pbf"), aoi)
    assert plain.provenance["newest_road_edit"] == "2019-01-23T19:21:14Z"  # the file has no header time
    assert "extract_time" not in plain.provenance and "days ago" not in plain.provenance.get("warning", "")
    old = load_osm(str(_kotka_as_of(data, tmp_path / "old.osm.pbf", "2019-02-01T00:00:00Z")), aoi)
    assert old.provenance["extract_time"] == "2019-02-01T00:00:00Z"
    assert "its data is from 2019-02-01" in old.provenance["warning"] and "use a fresh extract" in caplog.text
    today = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    fresh = load_osm(str(_kotka_as_of(data, tmp_path / "fresh.osm.pbf", today)), aoi)
    assert fresh.provenance["extract_time"] == today and "days ago" not in fresh.provenance.get("warning", "")
    assert len(fresh) == len(old) == len(plain)
    # and the weekly report dates each one in a line (osmgap.export.report.osm_as_of)
    assert osm_as_of(old.provenance) == ("OSM of the last run: old.osm.pbf, data as of 2019-02-01 00:00 UTC "
                                         "(the file's header); newest road edit in the AOI 2019-01-23.")
    assert osm_as_of(plain.provenance).startswith("OSM of the last run: kotka.osm.pbf, file written ")


def test_a_file_josm_saved_with_new_nodes_reads_as_uploaded_data_does(data: Path, tmp_path: Path):
    """A JOSM layer's new objects have negative ids and no version; osmium's location index holds
    positive ids only, so every way of them read as "nodes missing from the file"."""
    original = data / "osm" / "west-oakland.osm"
    text = re.sub(r'(<node id="|<nd ref="|<way id=")(\d+)', r"\1-\2", original.read_text())
    josm = tmp_path / "josm.osm"
    josm.write_text(re.sub(r' version="\d+"', "", text))
    aoi = load_aoi(CASES["oakland"][1])
    a, b = load_osm(str(original), aoi), load_osm(str(josm), aoi)
    assert len(b.unreadable) == 0 and len(b) == len(a) > 20
    assert sorted(-b.ways.osm_id) == sorted(a.ways.osm_id)
    assert sorted(g.wkb for g in b.ways.geometry) == sorted(g.wkb for g in a.ways.geometry)
    assert b.nodes == {}  # new nodes are no OSM nodes a suggestion could join by id


def test_a_closed_road_way_exported_as_a_polygon_is_its_ring(data: Path, tmp_path: Path):
    """Exporters often write a closed way (a roundabout, a service loop) as a Polygon: read it as
    the way it is, not dropped (its road would then be suggested as missing)."""
    aoi = load_aoi(CASES["helsinki"][1])
    net = load_osm(str(data / "osm" / "helsinki.osm.pbf"), aoi)
    rings = net.ways[net.ways.geometry.is_ring & (net.ways.highway == "service")]
    assert len(rings) >= 2
    frame = net.ways[["osm_id", "highway", "geometry"]].copy()
    frame.loc[rings.index, "geometry"] = [Polygon(g.coords) for g in rings.geometry]
    path = tmp_path / "areas.geojson"
    frame.to_file(path, driver="GeoJSON")
    back = load_osm(str(path), aoi)
    assert len(back.unreadable) == 0 and sorted(back.ways.osm_id) == sorted(net.ways.osm_id)
    again = back.ways.set_index("osm_id").geometry
    for osm_id, ring in zip(rings.osm_id, rings.geometry):
        assert again[osm_id].equals(ring), osm_id


def test_paris_sample_geojson(paris: Path, paris_aoi: Aoi):
    net = load_osm(str(paris / "osm_roads.geojson"), paris_aoi)
    assert len(net) == 10
    assert 27236016 in set(net.ways.osm_id)
    assert all(type(i) is int for i in net.ways.osm_id.tolist())
    assert set(net.ways.highway) <= {"residential", "tertiary"}
    assert net.ways.version.isna().all() and net.ways.node_ids.isna().all()
    assert net.nodes == {} and net.provenance["format"] == "geojson"
    assert not net.ways.has_z.any()
    assert all(paris_aoi.geometry.buffer(1e-9).covers(g) for g in net.ways.geometry)


# --- Overpass, from a recorded answer; the network must never be touched -----------------

OVERPASS_BBOX = "-122.3040,37.8035,-122.2975,37.8085"


def _fixture_elements() -> tuple[dict[int, dict], dict[int, dict]]:
    doc = json.loads(OVERPASS_FIXTURE.read_text(encoding="utf-8"))
    by_type = {t: {e["id"]: e for e in doc["elements"] if e["type"] == t} for t in ("node", "way")}
    return by_type["node"], by_type["way"]


def _assert_matches_fixture(net: RoadNetwork) -> None:
    nodes, ways = _fixture_elements()
    assert sorted(net.ways.osm_id) == sorted(ways)
    for row in net.ways.itertuples():
        assert row.version == ways[row.osm_id]["version"]
        assert row.node_ids == ways[row.osm_id]["nodes"]
        assert row.tags == ways[row.osm_id]["tags"]
        first = nodes[row.node_ids[0]]
        assert row.geometry.coords[0] == pytest.approx((first["lon"], first["lat"]))
    assert net.nodes == {i: (e["version"], e["lon"], e["lat"]) for i, e in nodes.items()}
    assert net.provenance["source"] == "overpass" and net.provenance["format"] == "overpass"


def test_overpass_answers_from_cache_offline(tmp_path: Path, no_network):
    aoi = load_aoi(OVERPASS_BBOX)
    cache = overpass_cache_path(overpass_query(aoi), tmp_path)
    cache.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(OVERPASS_FIXTURE, cache)
    _assert_matches_fixture(load_osm("overpass", aoi, cache_dir=tmp_path))


def test_overpass_query_asks_for_roads_with_meta():
    query = overpass_query(load_aoi(OVERPASS_BBOX))
    assert "out meta" in query and "(._;>;);" in query
    assert "37.8035000,-122.3040000,37.8085000,-122.2975000" in query  # s,w,n,e
    roads = query.split(";")[1]  # the road ways' line: footways are asked for only as other ways
    assert "residential" in roads and "footway" not in roads
    assert ('way["highway"~"^(abandoned|bridleway|bus_guideway|construction|corridor|cycleway|disused|escape|footway|path|'
            'proposed|raceway|steps|trail)$"]') in query


def test_overpass_retries_with_backoff_then_caches(tmp_path: Path, monkeypatch):
    calls: list[str] = []
    sleeps: list[float] = []

    def flaky(url: str, query: str, timeout_s: float) -> bytes:
        calls.append(query)
        if len(calls) <= 2:
            raise opx.OverpassGatewayTimeout()
        return OVERPASS_FIXTURE.read_bytes()

    monkeypatch.setattr(overpass, "_http_post", flaky)
    monkeypatch.setattr(overpass.time, "sleep", sleeps.append)
    monkeypatch.setattr(overpass, "OVERPASS_POLICY", replace(overpass.OVERPASS_POLICY, jitter=0.0))  # exact waits
    aoi = load_aoi(OVERPASS_BBOX)
    _assert_matches_fixture(load_osm("overpass", aoi, cache_dir=tmp_path))
    assert len(calls) == 3 and sleeps == [overpass.OVERPASS_BACKOFF_S, 2 * overpass.OVERPASS_BACKOFF_S]
    assert overpass_cache_path(overpass_query(aoi), tmp_path).read_bytes() == OVERPASS_FIXTURE.read_bytes()

    monkeypatch.setattr(overpass, "_http_post", lambda *a: pytest.fail("cache not used"))
    _assert_matches_fixture(load_osm("overpass", aoi, cache_dir=tmp_path))


def test_overpass_answers_no_run_reads_any_more_are_removed(tmp_path: Path, monkeypatch):
    """Each new AOI (or edit of one) is a new query, and a large AOI's answer is hundreds of MB:
    an answer past its age is asked again anyway, so it goes when a new one is kept; files that are
    not osmgap's cache entries stay."""
    monkeypatch.setattr(overpass, "_http_post", lambda *a: OVERPASS_FIXTURE.read_bytes())
    day_ago = time.time() - 86400
    expired, fresh, temp, young_temp = ("a" * 64 + ".json", "b" * 64 + ".json", "." + "c" * 64 + ".json.x1y2z3ab",
                                        "." + "d" * 64 + ".json.k9m8n7pq")
    others = ("notes.json", "a" * 63 + ".json", "e" * 64 + ".geojson")
    for name in (expired, fresh, temp, young_temp, *others):
        (tmp_path / name).write_bytes(b"{}")
        if name not in (fresh, young_temp):
            os.utime(tmp_path / name, (day_ago, day_ago))
    aoi = load_aoi(OVERPASS_BBOX)
    _assert_matches_fixture(load_osm("overpass", aoi, cache_dir=tmp_path))
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {fresh, young_temp, *others, overpass_cache_path(overpass_query(aoi), tmp_path).name}


def test_overpass_gives_up_with_a_service_error(tmp_path: Path, monkeypatch):
    """A server that stays busy is the server's failure (exit 1), not the user's input (exit 2)."""
    def busy(url: str, query: str, timeout_s: float) -> bytes:
        raise opx.OverpassTooManyRequests()

    monkeypatch.setattr(overpass, "_http_post", busy)
    monkeypatch.setattr(overpass.time, "sleep", lambda s: None)
    with pytest.raises(ServiceError, match="overpass.*4 times"):
        load_osm("overpass", load_aoi(OVERPASS_BBOX), cache_dir=tmp_path)
    assert not list(tmp_path.iterdir())  # a failure is never cached


# --- bad input --------------------------------------------------------------------------


def _truncated_pbf(tmp: Path, data: Path) -> Path:
    src = (data / "osm" / "kotka.osm.pbf").read_bytes()
    path = tmp / "truncated.osm.pbf"
    path.write_bytes(src[: len(src) // 2])
    return path


def _renamed_copy(tmp: Path, data: Path) -> Path:
    path = tmp / "roads.txt"
    shutil.copy(data / "osm" / "west-oakland.osm", path)
    return path


def _geojson(tmp: Path, name: str, features: list[dict]) -> Path:
    path = tmp / name
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


_LINE = {"type": "LineString", "coordinates": [[2.2813, 48.9812], [2.2820, 48.9815]]}

BAD_INPUTS = {
    "missing": (lambda tmp, data: tmp / "nowhere.osm.pbf", "not found"),
    "truncated_pbf": (_truncated_pbf, "cannot read"),
    "unknown_extension": (_renamed_copy, "unknown OSM file type"),
    "no_osm_id": (lambda tmp, data: _geojson(tmp, "no_id.geojson", [
        {"type": "Feature", "properties": {"highway": "residential"}, "geometry": _LINE}]), "osm_id"),
    "points_only": (lambda tmp, data: _geojson(tmp, "points.geojson", [
        {"type": "Feature", "properties": {"osm_id": 1},
         "geometry": {"type": "Point", "coordinates": [2.2813, 48.9812]}}]), "no LineString"),
    "invalid_json": (lambda tmp, data: _write(tmp / "broken.json", '{"type": "FeatureCollection", '),
                     "not valid JSON"),
}


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_raises_input_error_naming_the_file(case, tmp_path: Path, data: Path, paris_aoi: Aoi):
    make, problem = BAD_INPUTS[case]
    path = make(tmp_path, data)
    with pytest.raises(InputError, match=problem) as info:
        load_osm(str(path), paris_aoi)
    assert path.name in str(info.value)
    assert "\n" not in str(info.value)


# --- parking lots (amenity=parking areas) -------------------------------------------------

# Lots osmium can assemble in each real extract, less those with no aisles (osm.NOT_LOTS:
# Helsinki's two parking=inline strips); Helsinki's 4 other closed lots are cut by the
# extract's edge (nodes missing) and cannot be.
LOTS = {"helsinki.osm.pbf": 24, "kotka.osm.pbf": 10, "west-oakland.osm": 2}
WORLD = "-179.9,-85,179.9,85"


def _reference_lots(path: Path) -> dict[int, tuple[str | None, Polygon | None]]:
    """Every closed amenity=parking way: its parking tag and polygon (None when a node is missing)."""
    lots: dict[int, tuple[str | None, Polygon | None]] = {}

    class Lots(osmium.SimpleHandler):
        def way(self, w: osmium.osm.Way) -> None:
            if w.tags.get("amenity") == "parking" and w.is_closed():
                xy = [(n.lon, n.lat) for n in w.nodes if n.location.valid()]
                lots[w.id] = (w.tags.get("parking"), Polygon(xy) if len(xy) == len(w.nodes) >= 4 else None)

    Lots().apply_file(str(path), locations=True)
    return lots


@pytest.mark.parametrize("name", sorted(LOTS))
def test_parking_lots_of_real_extracts(name: str, data: Path):
    path = data / "osm" / name
    net = load_osm(str(path), load_aoi(WORLD))
    ref = _reference_lots(path)
    whole = {i for i, (kind, polygon) in ref.items() if polygon is not None and kind not in osm.NOT_LOTS}
    assert len(net.parking) == len(whole) == LOTS[name] == net.provenance["parking_lots"]
    assert list(net.parking.columns) == PARKING_COLUMNS + ["geometry"] and net.parking.crs == "EPSG:4326"
    assert set(net.parking.osm_id) == whole and set(net.parking.osm_type) == {"way"}
    for row in net.parking.itertuples():
        polygon = ref[row.osm_id][1]
        assert row.parking == ref[row.osm_id][0]
        assert row.geometry.symmetric_difference(polygon).area <= 1e-6 * polygon.area


def test_parking_lots_are_clipped_to_the_aoi(data: Path):
    path = data / "osm" / "kotka.osm.pbf"
    osm_id, (_, polygon) = max(((i, v) for i, v in _reference_lots(path).items() if v[1] is not None),
                               key=lambda item: item[1][1].area)
    minx, miny, maxx, maxy = polygon.bounds
    aoi = load_aoi(f"{minx - 0.01},{miny - 0.01},{(minx + maxx) / 2},{maxy + 0.01}")  # the lot's west half
    net = load_osm(str(path), aoi)
    (cut,) = net.parking.geometry[net.parking.osm_id == osm_id]
    assert 0.2 * polygon.area < cut.area < 0.8 * polygon.area
    assert all(aoi.geometry.buffer(1e-9).covers(g) for g in net.parking.geometry)
    assert len(load_osm(str(path), load_aoi("26.9332,60.5252,26.9348,60.5258")).parking) == 0  # no lot there


def test_parking_lots_from_geojson(kotka, tmp_path: Path):
    """Kotka's roads and lots in one GeoJSON (as an export of OSM has them): lines are roads,
    amenity=parking polygons are lots."""
    lots = kotka.parking.assign(amenity="parking")
    doc = json.loads(kotka.ways[["osm_id", "highway", "geometry"]].to_json())
    doc["features"] += json.loads(lots[["osm_id", "amenity", "parking", "geometry"]].to_json())["features"]
    path = tmp_path / "kotka.geojson"
    path.write_text(json.dumps(doc))
    net = load_osm(str(path), load_aoi(WORLD))
    assert len(net) == len(kotka) and len(net.parking) == len(kotka.parking) == 10
    assert sorted(net.parking.osm_id) == sorted(kotka.parking.osm_id)


def _from_answer(doc: dict, tmp_path: Path) -> RoadNetwork:
    """The OSM that Overpass's answer ``doc`` gives for the recorded AOI, read from the cache."""
    aoi = load_aoi(OVERPASS_BBOX)
    cache = overpass_cache_path(overpass_query(aoi), tmp_path)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(doc))
    return load_osm("overpass", aoi, cache_dir=tmp_path)


def test_overpass_query_asks_for_parking_lots():
    query = overpass_query(load_aoi(OVERPASS_BBOX))
    assert 'way["amenity"="parking"]' in query and 'relation["amenity"="parking"]["type"="multipolygon"]' in query


def test_overpass_parking_lots_from_cache(tmp_path: Path, data: Path, no_network):
    """The recorded answer plus West Oakland's two real lots, as Overpass returns them (ways with
    their nodes), and the surface lot's way once more as the outer member of a relation."""
    doc = json.loads(OVERPASS_FIXTURE.read_text(encoding="utf-8"))
    lots = {w.id: ([n.ref for n in w.nodes], dict(w.tags))
            for w in osmium.FileProcessor(str(data / "osm" / "west-oakland.osm"), osmium.osm.WAY)
            if w.tags.get("amenity") == "parking"}
    wanted = {n for refs, _ in lots.values() for n in refs}
    nodes = [{"type": "node", "id": n.id, "lat": n.location.lat, "lon": n.location.lon, "version": n.version}
             for n in osmium.FileProcessor(str(data / "osm" / "west-oakland.osm"), osmium.osm.NODE) if n.id in wanted]
    surface = next(i for i, (_, tags) in lots.items() if tags.get("parking") == "surface")
    doc["elements"] += nodes + [{"type": "way", "id": i, "nodes": refs, "tags": tags, "version": 1}
                                for i, (refs, tags) in lots.items()]
    doc["elements"].append({"type": "relation", "id": 1, "version": 1,
                            "members": [{"type": "way", "ref": surface, "role": "outer"}],
                            "tags": {"type": "multipolygon", "amenity": "parking"}})
    net = _from_answer(doc, tmp_path)
    assert sorted(net.ways.osm_id) == sorted(_fixture_elements()[1])  # lots are no roads
    assert sorted(zip(net.parking.osm_type, net.parking.osm_id)) == sorted(
        [("way", i) for i in lots] + [("relation", 1)])
    way_lot, rel_lot = (net.parking.geometry[(net.parking.osm_type == t) & (net.parking.osm_id == i)].iloc[0]
                        for t, i in (("way", surface), ("relation", 1)))
    assert way_lot.area > 0 and way_lot.symmetric_difference(rel_lot).area < 1e-6 * way_lot.area


def test_overpass_other_ways_from_cache(tmp_path: Path, data: Path, no_network):
    """The recorded answer plus West Oakland's real footways and cycleway with their nodes, as
    Overpass returns them: other ways, not roads."""
    doc = json.loads(OVERPASS_FIXTURE.read_text(encoding="utf-8"))
    paths = {w.id: ([n.ref for n in w.nodes], dict(w.tags))
             for w in osmium.FileProcessor(str(data / "osm" / "west-oakland.osm"), osmium.osm.WAY)
             if w.tags.get("highway") in ("footway", "cycleway")}
    wanted = {n for refs, _ in paths.values() for n in refs}
    nodes = {n.id: (n.location.lon, n.location.lat)
             for n in osmium.FileProcessor(str(data / "osm" / "west-oakland.osm"), osmium.osm.NODE) if n.id in wanted}
    doc["elements"] += [{"type": "node", "id": i, "lon": lon, "lat": lat, "version": 1} for i, (lon, lat) in nodes.items()]
    doc["elements"] += [{"type": "way", "id": i, "nodes": refs, "tags": tags, "version": 1}
                        for i, (refs, tags) in paths.items()]
    net = _from_answer(doc, tmp_path)
    assert sorted(net.ways.osm_id) == sorted(_fixture_elements()[1])  # footways are no roads
    near = {i for i, (refs, _) in paths.items()
            if shapely.dwithin(load_aoi(OVERPASS_BBOX).geometry, LineString([nodes[n] for n in refs]), 0.001)}
    assert near and dict(zip(net.other_ways.osm_id, net.other_ways.what)) == {
        i: f"highway={paths[i][1]['highway']}" for i in near}


def test_geojson_other_ways(kotka, tmp_path: Path):
    """An OSM GeoJSON export's cycleways, footways and railways are other ways (a railway line is
    no road of unknown class); a feature of another kind (a platform) is neither a road nor one of
    them."""
    aoi = load_aoi("26.9300,60.5200,26.9699,60.5400")
    path = _geojson(tmp_path, "kotka.geojson", [
        {"type": "Feature", "properties": {"osm_id": int(r.osm_id), "highway": "residential"},
         "geometry": shapely.geometry.mapping(r.geometry)} for r in kotka.ways.itertuples()][:20] + [
        {"type": "Feature", "properties": {"osm_id": int(r.osm_id), r.what.split("=")[0]: r.what.split("=")[1]},
         "geometry": shapely.geometry.mapping(r.geometry)} for r in kotka.other_ways.itertuples()] + [
        {"type": "Feature", "properties": {"osm_id": 1, "highway": "platform"},
         "geometry": shapely.geometry.mapping(kotka.other_ways.geometry.iloc[0])}])
    net = load_osm(str(path), aoi)
    assert len(net.ways.osm_id.unique()) == 20 and 1 not in set(net.other_ways.osm_id)
    assert sorted(zip(net.other_ways.osm_id, net.other_ways.what)) == sorted(
        zip(kotka.other_ways.osm_id, kotka.other_ways.what))


# --- ways osmgap cannot read whole (RoadNetwork.unreadable) ---------------------------------


def _ways_with_missing_nodes(path: Path) -> dict[int, list[tuple[float, float]]]:
    """Road ways with a node the file lacks, by a plain osmium read: id -> its known locations."""
    found: dict[int, list[tuple[float, float]]] = {}

    class Missing(osmium.SimpleHandler):
        def way(self, w: osmium.osm.Way) -> None:
            if w.tags.get("highway") in ROAD_CLASSES and not all(n.location.valid() for n in w.nodes):
                found[w.id] = [(n.lon, n.lat) for n in w.nodes if n.location.valid()]

    Missing().apply_file(str(path), locations=True)
    return found


def test_ways_cut_at_the_extract_edge_are_listed_with_their_last_known_node(data: Path, caplog):
    """Kotka is a real extract cut at its bbox: the ways leaving it lack their outer nodes. Their
    part inside is read as before; where the rest may lie starts at their last known node."""
    path = data / "osm" / "kotka.osm.pbf"
    net = load_osm(str(path), load_aoi(WORLD))
    bad, known = net.unreadable, _ways_with_missing_nodes(path)
    assert set(bad.osm_id) == set(known) and len(bad) == net.provenance["unreadable_ways"] == 35
    assert set(bad.reason) == {osm.CUT_AT_EDGE} and set(bad.geometry.geom_type) == {"Point"}
    for row in bad.itertuples():
        assert tuple(row.geometry.coords[0]) in (known[row.osm_id][0], known[row.osm_id][-1])
    assert str(path) in caplog.text and "35 road ways could not be read whole" in caplog.text


def test_way_with_interior_nodes_missing_is_its_known_line_and_listed(data: Path, tmp_path: Path, caplog):
    text = (data / "osm" / "west-oakland.osm").read_text()
    way = 6340506
    refs = re.findall(r'<nd ref="(\d+)"/>', re.search(rf'<way id="{way}".*?</way>', text, re.S).group(0))
    for ref in refs[1:-1]:
        text = re.sub(rf'\s*<node id="{ref}"[^>]*?(/>|>.*?</node>)', "", text, flags=re.S)
    path = tmp_path / "holes.osm"
    path.write_text(text)
    whole = load_osm(str(data / "osm" / "west-oakland.osm"), load_aoi(WORLD))
    net = load_osm(str(path), load_aoi(WORLD))
    row = net.unreadable[net.unreadable.osm_id == way].iloc[0]
    ends = whole.ways[whole.ways.osm_id == way].geometry.iloc[0].coords
    assert row.reason == osm.MISSING_NODES
    assert row.geometry.equals(LineString([ends[0], ends[-1]]))  # the unknown stretch runs between them
    assert net.ways[net.ways.osm_id == way].geometry.iloc[0].equals(row.geometry)  # it does connect them
    assert f"{path}: " in caplog.text and str(way) in caplog.text


def _paris_doc(paris: Path, geometry: object) -> dict:
    doc = json.loads((paris / "osm_roads.geojson").read_text())
    doc["features"][3]["geometry"] = geometry(doc["features"][3]["geometry"]) if callable(geometry) else geometry
    return doc


def _nan_middle(g: dict) -> dict:
    return {**g, "coordinates": [g["coordinates"][0], [float("nan"), float("nan"), 0.0], *g["coordinates"][2:]]}


@pytest.mark.parametrize("geometry, reason, located, pieces", [
    (_nan_middle, osm.NOT_FINITE, True, 1),
    (lambda g: {"type": "GeometryCollection", "geometries": [g, {"type": "Point", "coordinates": [2.282, 48.982]}]},
     osm.NOT_A_LINE, True, 1),
    ({"type": "LineString", "coordinates": []}, osm.NO_GEOMETRY, False, 0),
    (None, osm.NO_GEOMETRY, False, 0),
])
def test_geojson_way_that_is_no_line_is_listed(paris: Path, paris_aoi: Aoi, tmp_path: Path, caplog,
                                               geometry, reason, located, pieces):
    """The Paris ways with one mangled: it is listed as unreadable (with where it may lie when
    anything is known), its readable line parts are still ways, no shapely warning escapes."""
    path = tmp_path / "roads.geojson"
    path.write_text(json.dumps(_paris_doc(paris, geometry)))
    net = load_osm(str(path), paris_aoi)
    assert len(net.unreadable) == 1 and net.unreadable.reason.iloc[0] == reason
    assert net.unreadable.osm_id.iloc[0] == 27237458 and (not net.unreadable.geometry.iloc[0].is_empty) == located
    assert (net.ways.osm_id == 27237458).sum() == pieces and len(net) == 9 + pieces
    assert str(path) in caplog.text and ("no known position" in caplog.text) != located


@pytest.mark.parametrize("value, parsed", [
    (27236016, 27236016), (27236016.0, 27236016), ("27236016", 27236016), ("way/27236016", 27236016),
    ("27236016.0", 27236016), (2**63 - 1, 2**63 - 1), (2**63, None), (2**64, None), (1e30, None),
    (float(2**53 + 2), None), (27236016.5, None), (float("nan"), None), (float("inf"), None), (-5, None),
    (0, None), (True, None), ("abc", None), (None, None), ([1], None),
])
def test_osm_id_must_be_an_exact_64_bit_id(value, parsed):
    assert osm_geojson._parse_osm_id(value) == parsed
