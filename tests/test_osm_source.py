"""OSM road loading from real extracts: .pbf, .osm XML, GeoJSON and a recorded Overpass answer.

Counts are checked against an independent plain-osmium read of the same file, so a filter or
clipping bug shows up as a mismatch rather than as a number someone copied from the output.
"""
from __future__ import annotations

import bz2
import json
import shutil
from pathlib import Path

import osmium
import overpy
import overpy.exception as opx
import pytest
from shapely.geometry import LineString

from osmgap.aoi import Aoi, load_aoi
from osmgap.datamodel import WAY_COLUMNS, RoadNetwork
from osmgap.errors import InputError
from osmgap.sources import osm
from osmgap.sources.osm import ROAD_CLASSES, load_osm, overpass_cache_path, overpass_query

TEST_DATA = Path(__file__).parent / "data"
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
    net = load_osm(str(data / "osm" / "kotka.osm.pbf"), load_aoi("10.0,50.0,10.01,50.01"))
    assert len(net) == 0 and net.nodes == {}
    assert list(net.ways.columns) == WAY_COLUMNS + ["geometry"]
    assert net.provenance["ways"] == 0


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


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to reach a server fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("network used")
    monkeypatch.setattr(osm, "_http_post", refuse)
    monkeypatch.setattr(overpy.Overpass, "query", refuse)
    monkeypatch.setattr("urllib.request.urlopen", refuse)


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
    assert "residential" in query and "footway" not in query


def test_overpass_retries_with_backoff_then_caches(tmp_path: Path, monkeypatch):
    calls: list[str] = []
    sleeps: list[float] = []

    def flaky(url: str, query: str, timeout_s: float) -> bytes:
        calls.append(query)
        if len(calls) <= 2:
            raise opx.OverpassGatewayTimeout()
        return OVERPASS_FIXTURE.read_bytes()

    monkeypatch.setattr(osm, "_http_post", flaky)
    monkeypatch.setattr(osm.time, "sleep", sleeps.append)
    aoi = load_aoi(OVERPASS_BBOX)
    _assert_matches_fixture(load_osm("overpass", aoi, cache_dir=tmp_path))
    assert len(calls) == 3 and sleeps == [osm.OVERPASS_BACKOFF_S, 2 * osm.OVERPASS_BACKOFF_S]
    assert overpass_cache_path(overpass_query(aoi), tmp_path).read_bytes() == OVERPASS_FIXTURE.read_bytes()

    monkeypatch.setattr(osm, "_http_post", lambda *a: pytest.fail("cache not used"))
    _assert_matches_fixture(load_osm("overpass", aoi, cache_dir=tmp_path))


def test_overpass_gives_up_with_input_error(tmp_path: Path, monkeypatch):
    def busy(url: str, query: str, timeout_s: float) -> bytes:
        raise opx.OverpassTooManyRequests()

    monkeypatch.setattr(osm, "_http_post", busy)
    monkeypatch.setattr(osm.time, "sleep", lambda s: None)
    with pytest.raises(InputError, match="overpass.*4 times"):
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
