"""OSM inputs as mappers save them, which osmgap misread (audit O): a file with its ways before
its nodes (Overpass turbo's ``out body; >; out skel qt;``), JOSM's deletions and its several
``<bounds>``, stale or unkeepable Overpass answers, a cropped mapconstruction graph, and the
GeoJSON that Overpass turbo and ``osmium export`` write. All derived from the real extracts in
tmp_path; no network (Overpass's answer is the recorded one)."""
from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import osmium
import pytest
from shapely.geometry import mapping

from osmgap.core.aoi import load_aoi
from osmgap.core.datamodel import MISSING_NODES, RoadNetwork
from osmgap.sources import overpass
from osmgap.sources.osm import ROAD_CLASSES, load_osm
from tests.sources.test_osm_source import OVERPASS_BBOX, OVERPASS_FIXTURE

OAKLAND_AOI = "-122.3025,37.8062,-122.2983,37.8091"  # inside west-oakland.osm's <bounds>
CAMPBELL_STREET = "6340506"  # a road way of the AOI
CHICAGO_AOI = "-87.67182,41.86975,-87.66582,41.87375"
SHAPE_POINT = "12558"  # a degree-2 vertex of the Chicago graph in CHICAGO_AOI; edges 7329 and 7330 meet there


@pytest.fixture(scope="module")
def oakland(data: Path) -> Path:
    return data / "osm" / "west-oakland.osm"


@pytest.fixture(scope="module")
def as_is(oakland: Path) -> RoadNetwork:
    return load_osm(str(oakland), load_aoi(OAKLAND_AOI))


def _edited(src: Path, dst: Path, edit) -> Path:
    """``src`` with ``edit(root)`` applied, written as XML to ``dst``."""
    tree = ET.parse(src)
    edit(tree.getroot())
    tree.write(dst, encoding="UTF-8", xml_declaration=True)
    return dst


def _same_roads(a: RoadNetwork, b: RoadNetwork) -> None:
    assert sorted(a.ways.osm_id) == sorted(b.ways.osm_id)
    assert sorted(g.wkb for g in a.ways.geometry) == sorted(g.wkb for g in b.ways.geometry)
    assert a.nodes == b.nodes and len(a.parking) == len(b.parking)
    assert sorted(a.other_ways.osm_id) == sorted(b.other_ways.osm_id)


def test_a_file_with_its_ways_before_their_nodes_reads_as_the_sorted_one(oakland, as_is, tmp_path, caplog):
    """osmium's location index knows only the nodes it has seen: every way read as "nodes missing
    from the file", and every road of the AOI was suggested."""
    def ways_first(root: ET.Element) -> None:
        order = {"bounds": 0, "way": 1, "node": 2, "relation": 3}
        children = sorted(root, key=lambda e: order[e.tag])  # stable: each kind keeps its order
        root[:] = children

    path = _edited(oakland, tmp_path / "turbo.osm", ways_first)
    net = load_osm(str(path), load_aoi(OAKLAND_AOI))
    assert len(as_is) > 20 and len(as_is.parking) and len(as_is.other_ways)
    _same_roads(net, as_is)
    assert len(net.unreadable) == 0 and "missing" not in caplog.text


@pytest.mark.parametrize("mark", [{"action": "delete"}, {"visible": "false"}])
def test_a_deleted_way_is_no_road(oakland, as_is, tmp_path, mark):
    """JOSM keeps a deletion not yet uploaded as action="delete" (osmium ignores it), and a
    deleted object may say visible="false": read as live, its road was never suggested."""
    def delete(root: ET.Element) -> None:
        root.find(f"way[@id='{CAMPBELL_STREET}']").attrib.update(mark)

    def remove(root: ET.Element) -> None:
        root.remove(root.find(f"way[@id='{CAMPBELL_STREET}']"))

    aoi = load_aoi(OAKLAND_AOI)
    net = load_osm(str(_edited(oakland, tmp_path / "deleted.osm", delete)), aoi)
    gone = load_osm(str(_edited(oakland, tmp_path / "removed.osm", remove)), aoi)
    assert int(CAMPBELL_STREET) in set(as_is.ways.osm_id) and int(CAMPBELL_STREET) not in set(net.ways.osm_id)
    assert sorted(net.ways.osm_id) == sorted(gone.ways.osm_id) and len(net.unreadable) == 0


def test_several_bounds_are_the_area_they_cover_together(oakland, tmp_path):
    """JOSM saves one <bounds> per download; osmium's header keeps the first, and a file covering
    the whole AOI was said to cover 48% of it."""
    def split(keep: tuple[int, ...]):
        def edit(root: ET.Element) -> None:
            whole = root.find("bounds")
            halves = [dict(whole.attrib, maxlon="-122.3005"), dict(whole.attrib, minlon="-122.3005")]
            index = list(root).index(whole)
            root.remove(whole)
            for i in reversed(keep):
                root.insert(index, ET.Element("bounds", halves[i]))
        return edit

    aoi = load_aoi(OAKLAND_AOI)
    both = load_osm(str(_edited(oakland, tmp_path / "both.osm", split((0, 1)))), aoi)
    west = load_osm(str(_edited(oakland, tmp_path / "west.osm", split((0,)))), aoi)
    assert "warning" not in both.provenance
    assert "covers only 48% of the AOI" in west.provenance["warning"]


def _answer_of(day: dt.datetime) -> bytes:
    doc = json.loads(OVERPASS_FIXTURE.read_text())
    doc["osm3s"]["timestamp_osm_base"] = day.strftime("%Y-%m-%dT%H:%M:%SZ")
    return json.dumps(doc).encode()


def test_overpass_data_days_old_is_warned_about(tmp_path, monkeypatch):
    """An Overpass server whose replication is stuck answers with old data: a file as old is
    warned about, its answer was not."""
    now = dt.datetime.now(dt.timezone.utc)
    answers = [_answer_of(now - dt.timedelta(days=200)), _answer_of(now - dt.timedelta(minutes=5))]
    monkeypatch.setattr(overpass, "_http_post", lambda *a: answers.pop(0))
    aoi = load_aoi(OVERPASS_BBOX)
    old = load_osm("overpass", aoi, cache_dir=tmp_path / "old")
    assert "overpass: its data is from" in old.provenance["warning"] and "(200 days ago)" in old.provenance["warning"]
    fresh = load_osm("overpass", aoi, cache_dir=tmp_path / "fresh")
    assert "warning" not in fresh.provenance and len(fresh) == len(old) > 0


def test_an_unwritable_overpass_cache_keeps_the_answer_in_memory(tmp_path, monkeypatch, caplog):
    """The answer was thrown away after Overpass had done the work, and the run failed (exit 1)."""
    asked: list[str] = []
    monkeypatch.setattr(overpass, "_http_post", lambda url, query, timeout: asked.append(query) or
                        OVERPASS_FIXTURE.read_bytes())
    (tmp_path / "afile").write_text("")
    aoi = load_aoi(OVERPASS_BBOX)
    with caplog.at_level(logging.WARNING):
        net = load_osm("overpass", aoi, cache_dir=tmp_path / "afile" / "sub")
    fine = load_osm("overpass", aoi, cache_dir=tmp_path / "cache")
    _same_roads(net, fine)
    assert len(asked) == 2 and "fetched" in net.provenance
    assert caplog.text.count("cannot keep Overpass's answer in") == 1 and "afile/sub" in caplog.text


def _chicago_graph(chicago_gps: Path, folder: Path, extra_vertex: str | None = None) -> str:
    """The Chicago graph without SHAPE_POINT, or with it given twice (``extra_vertex``)."""
    folder.mkdir()
    vertices = (chicago_gps / "chicago_vertices_osm.txt").read_text().splitlines()
    if extra_vertex is None:
        vertices = [line for line in vertices if line.split(",")[0] != SHAPE_POINT]
    else:
        vertices.append(extra_vertex)
    (folder / "vertices.txt").write_text("\n".join(vertices) + "\n")
    shutil.copy(chicago_gps / "chicago_edges_osm.txt", folder / "edges.txt")
    return f"{folder / 'vertices.txt'},{folder / 'edges.txt'}"


def test_a_graph_edge_to_a_vertex_it_lacks_is_unreadable(chicago_gps, tmp_path, caplog):
    """A cropped graph's edge was dropped silently, and the street there suggested as missing."""
    aoi = load_aoi(CHICAGO_AOI)
    whole = load_osm(f"{chicago_gps / 'chicago_vertices_osm.txt'},{chicago_gps / 'chicago_edges_osm.txt'}", aoi,
                     graph_crs="EPSG:32616")
    cropped = load_osm(_chicago_graph(chicago_gps, tmp_path / "cropped"), aoi, graph_crs="EPSG:32616")
    assert len(whole.unreadable) == 0
    assert sorted(cropped.unreadable.osm_id) == [7329, 7330] and set(cropped.unreadable.reason) == {MISSING_NODES}
    assert not cropped.unreadable.geometry.is_empty.any()  # each one's other end is known
    assert "2 road ways could not be read whole" in caplog.text

    x, y = next(line.split(",")[1:3] for line in (chicago_gps / "chicago_vertices_osm.txt").read_text().splitlines()
                if line.split(",")[0] == SHAPE_POINT)
    twice = load_osm(_chicago_graph(chicago_gps, tmp_path / "twice", f"{SHAPE_POINT},{float(x) + 40},{y}"), aoi,
                     graph_crs="EPSG:32616")
    assert sorted(twice.unreadable.osm_id) == [7329, 7330]
    assert f"1 vertex id given twice at different positions ({SHAPE_POINT})" in twice.provenance["warning"]


def _exported(oakland: Path, path: Path, feature) -> Path:
    """Every highway way of the real file as a GeoJSON feature (``feature(way id, geometry, tags)``)."""
    features = []
    for w in osmium.FileProcessor(str(oakland)).with_locations():
        if w.is_way() and w.tags.get("highway"):
            line = {"type": "LineString", "coordinates": [[n.lon, n.lat] for n in w.nodes]}
            features.append(feature(w.id, line, dict(w.tags)))
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


@pytest.mark.parametrize("style", ["turbo", "osmium"])
def test_geojson_of_overpass_turbo_and_osmium_export_is_read(oakland, as_is, tmp_path, style):
    """Both write the way's id as @id ("way/N", or N with @type), never osm_id: every such file
    was refused."""
    def turbo(i: int, line: dict, tags: dict) -> dict:
        return {"type": "Feature", "id": f"way/{i}", "properties": {"@id": f"way/{i}", **tags}, "geometry": line}

    def osmium_export(i: int, line: dict, tags: dict) -> dict:
        return {"type": "Feature", "properties": {"@type": "way", "@id": i, **tags}, "geometry": line}

    node = {"type": "Feature", "id": "node/1", "properties": {"@id": "node/1", "highway": "residential"},
            "geometry": mapping(as_is.ways.geometry.iloc[0])}  # not a way, whatever it looks like
    path = _exported(oakland, tmp_path / f"{style}.geojson", turbo if style == "turbo" else osmium_export)
    doc = json.loads(path.read_text())
    doc["features"].append(node)
    path.write_text(json.dumps(doc))
    net = load_osm(str(path), load_aoi(OAKLAND_AOI))
    assert set(net.ways.osm_id) == set(as_is.ways.osm_id) and set(net.ways.highway) <= ROAD_CLASSES
    assert not any(k.startswith("@") and k != "@timestamp" for tags in net.ways.tags for k in tags)


def test_a_saved_overpass_answer_reads_as_the_api_answer(tmp_path, monkeypatch):
    """Overpass turbo's raw data export (a JSON ``elements`` list) was refused as no GeoJSON."""
    monkeypatch.setattr(overpass, "_http_post", lambda *a: OVERPASS_FIXTURE.read_bytes())
    aoi = load_aoi(OVERPASS_BBOX)
    asked = load_osm("overpass", aoi, cache_dir=tmp_path / "cache")
    saved = tmp_path / "export.json"
    shutil.copy(OVERPASS_FIXTURE, saved)
    net = load_osm(str(saved), aoi)
    _same_roads(net, asked)
    assert net.provenance["format"] == "overpass-json" and net.provenance["extract_time"] == "2024-05-01T12:00:00Z"
    assert "export.json: its data is from 2024-05-01" in net.provenance["warning"]
