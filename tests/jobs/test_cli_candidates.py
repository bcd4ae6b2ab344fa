"""`osmgap diff --candidates` end to end on real OSM (Kotka): the OSM input is the real extract
with some ways deleted (written back out with osmium, node ids and versions intact), the
candidates are all real ways. Then JOSM's own validator reads the connected suggestions."""
from __future__ import annotations

import base64
import datetime as dt
import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import geopandas as gpd
import numpy as np
import osmium
import pytest
import shapely
from PIL import Image
from shapely.geometry import LineString

from osmgap.cli import main
from osmgap.core.osmtags import FINISHED_CONSTRUCTION
from tests.cli import osmgap_cli
from tests.fake_maproulette import FakeMapRoulette
from tests.josm import josm_merge, josm_validate, severity
from tests.roads import as_candidates

pytestmark = pytest.mark.slow

DELETED = (62061739, 369836409, 75553162)  # a residential street, a parking aisle, a connector
BBOX = "26.9300,60.5200,26.9699,60.5400"



def _kotka_without(data: Path, ways: tuple[int, ...], path: Path) -> Path:
    """The real Kotka extract with these ways deleted, written with osmium (ids, versions intact)."""
    return _extract_without(data / "osm" / "kotka.osm.pbf", ways, path)


def _extract_without(source: Path, ways: tuple[int, ...], path: Path) -> Path:
    """A real extract with these ways deleted, written with osmium (ids, versions intact)."""
    with osmium.SimpleWriter(str(path)) as w:
        for obj in osmium.FileProcessor(str(source)):
            if not (obj.is_way() and obj.id in ways):
                w.add(obj)
    return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, data, kotka) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("cands")
    edited = _kotka_without(data, DELETED, d / "kotka-edited.osm")
    cands = d / "roads.geojson"
    kotka.ways[["highway", "geometry"]].to_file(cands, driver="GeoJSON")
    osm_geojson = d / "osm.geojson"
    kept = kotka.ways[~kotka.ways["osm_id"].isin(DELETED)]
    kept[["osm_id", "highway", "geometry"]].to_file(osm_geojson, driver="GeoJSON")
    shifted = d / "shifted.gpkg"
    metric = kotka.ways[["highway", "geometry"]].to_crs("EPSG:3067")
    metric.set_geometry(metric.geometry.translate(6.0, 5.0)).to_file(shifted, driver="GPKG")
    return {"osm": edited, "candidates": cands, "osm_geojson": osm_geojson, "shifted": shifted}


@pytest.fixture(scope="module")
def run_pbf(inputs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("diff") / "out"
    proc = osmgap_cli("diff", "--aoi", BBOX, "--osm", str(inputs["osm"]), "--candidates", str(inputs["candidates"]),
                   "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return out


def test_outputs_and_summary(run_pbf):
    assert sorted(p.name for p in run_pbf.iterdir()) == ["maproulette.geojson", "overview.png", "suggestions.geojson",
                                                          "suggestions.osm", "summary.json"]
    s = json.loads((run_pbf / "summary.json").read_text())
    assert s["evidence"] == "candidates" and s["candidates"]["lines"] == 209
    assert "imagery" not in s
    # the one warning: the extract's ways cut at its edge (the OSM reader's, said in every output)
    assert [w for w in s["warnings"] if "could not be read whole" not in w] == []
    assert s["offset_m"]["applied"] and s["offset_m"]["magnitude_m"] < 0.3
    assert s["suggestions"] >= 3 and set(s["by_kind"]) <= {"missing_road", "missing_link", "misconnection"}
    feats = json.loads((run_pbf / "suggestions.geojson").read_text())["features"]
    for f in feats:
        p = f["properties"]
        assert p["priority"] in (0, 1, 2) and p["routing_impact"] >= 0 and p["evidence_source"] == "roads.geojson"


def test_new_ways_join_existing_nodes_and_josm_accepts_them(run_pbf, tmp_path):
    root = ET.fromstring((run_pbf / "suggestions.osm").read_bytes())
    existing = {n.get("id") for n in root.findall("node") if int(n.get("id")) > 0}
    assert existing and all(n.get("version") for n in root.findall("node") if int(n.get("id")) > 0)
    refs = {nd.get("ref") for w in root.findall("way") for nd in w.findall("nd")}
    assert existing <= refs  # every existing node written is one a new way joins
    for w in root.findall("way"):
        tags = {t.get("k"): t.get("v") for t in w.findall("tag")}
        assert set(tags) == {"highway", "fixme"} and not any(k.startswith(("osmgap:", "conn", "dupe")) for k in tags)
    issues = josm_validate(run_pbf / "suggestions.osm", tmp_path)
    assert [i for i in issues if severity(i) == "Errors"] == []


def _published_cooperatively(out: Path, tmp_path: Path, monkeypatch) -> tuple[dict, str]:
    """The tasks the run in ``out`` makes on a fake MapRoulette, published with osmChanges, and the
    challenge's instruction."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with FakeMapRoulette() as fake:
        monkeypatch.setenv("MAPROULETTE_API_KEY", fake.api_key)
        assert main(["publish", "--out", str(out), "--challenge", "osmgap test", "--project", "1",
                     "--api-url", fake.url, "--cooperative", "--source-cleared"]) == 0
        assert not fake.violations
        return fake.tasks_of(1001), fake.challenges[1001]["instruction"]


def test_a_cooperative_task_is_joined_to_the_nodes_its_ends_land_on(run_pbf, inputs, tmp_path, monkeypatch):
    """A MapRoulette cooperative task's pre-drawn way made a new node on top of each existing node
    its ends land on: merged onto the mapper's data layer, the road joined nothing and JOSM flagged
    duplicate nodes. Its ends are now those nodes, referenced by id, as in suggestions.osm; JOSM
    itself merges every task's osmChange onto the real extract."""
    out = tmp_path / "ws" / "run"
    shutil.copytree(run_pbf, out)
    tasks, instruction = _published_cooperatively(out, tmp_path, monkeypatch)
    assert "evidence_retag_way" not in instruction  # no task of this run is a proposed road
    props = {f["id"]: f["properties"] for f in json.loads((out / "suggestions.geojson").read_text())["features"]}
    changes, joined = [], 0
    for name, task in tasks.items():
        if task.cooperative is None:
            continue
        osc = base64.b64decode(task.cooperative["file"]["content"])
        refs = [int(nd.get("ref")) for nd in ET.fromstring(osc).findall("create/way/nd")]
        loose = []
        for end, ref, node in (("first", refs[0], props[name].get("first_node")),
                               ("last", refs[-1], props[name].get("last_node"))):
            assert ref == node if node is not None else ref < 0
            joined += node is not None
            loose += [end] if node is None else []
        fixme = ET.fromstring(osc).find("create/way/tag[@k='fixme']").get("v")
        assert ("join its" in fixme) == bool(loose) and all(f"its {e} node" in fixme for e in loose if len(loose) == 1)
        changes.append(tmp_path / f"{name}.osc")
        changes[-1].write_bytes(osc)
    osm_ends = [nd.get("ref") for w in ET.fromstring((out / "suggestions.osm").read_bytes()).findall("way")
                for nd in (w.findall("nd")[0], w.findall("nd")[-1]) if int(nd.get("ref")) > 0]
    assert joined == len(osm_ends) > 0  # every end suggestions.osm joins to a node, the tasks join too
    merged = josm_merge(inputs["osm"], changes)
    assert merged["conflicts"] == 0 and len(merged["ways"]) == len(changes)
    nodes = [n for way in merged["ways"] for n in way]
    assert all(complete for _, _, complete, *_ in nodes)  # every referenced node is in the data layer
    assert sum(not new for _, new, *_ in nodes) == joined
    existing = {(round(lon, 7), round(lat, 7)) for _, new, _, lon, lat, _ in nodes if not new}
    assert not [n for n in nodes if n[1] and (round(n[3], 7), round(n[4], 7)) in existing]  # no duplicate node
    assert all(referrers >= 2 for _, new, _, _, _, referrers in nodes if not new)  # a junction with the map


def test_a_detection_source_that_sees_paths_suggests_only_the_missing_roads(data, kotka, inputs, tmp_path):
    """A road source without classes (ML detections) also holds Kotka's real cycleways, footways
    and paths, which OSM maps but not as roads: each came back as a "missing road" (140, 10 km,
    for the 3 deleted ways). Now only the deleted ways are suggested, and the rest is counted."""
    lines = [LineString([(n.lon, n.lat) for n in w.nodes])
             for w in osmium.FileProcessor(str(data / "osm" / "kotka.osm.pbf")).with_locations()
             .with_filter(osmium.filter.KeyFilter("highway"))
             if w.is_way() and len(w.nodes) > 1 and all(n.location.valid() for n in w.nodes)]
    detections = tmp_path / "detections.geojson"
    gpd.GeoDataFrame(geometry=lines, crs="EPSG:4326").to_file(detections, driver="GeoJSON")
    out = tmp_path / "out"
    proc = osmgap_cli("diff", "--aoi", BBOX, "--osm", str(inputs["osm"]), "--candidates", str(detections),
                      "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    left_out = summary["conflation"]["mapped_otherwise"]
    assert left_out["highway=cycleway"] >= 50 and left_out["highway=footway"] >= 10
    assert "along ways OSM maps as something other than a road" in proc.stdout
    deleted = kotka.ways[kotka.ways["osm_id"].isin(DELETED)].to_crs("EPSG:3067").geometry.union_all().buffer(5)
    feats = json.loads((out / "suggestions.geojson").read_text())["features"]
    suggested = gpd.GeoDataFrame.from_features(feats, crs="EPSG:4326").to_crs("EPSG:3067")
    assert len(suggested) >= 2 and all(deleted.intersection(g).length >= 0.8 * g.length for g in suggested.geometry)


def test_without_node_ids_the_fixme_names_the_way(inputs, tmp_path):
    out = tmp_path / "out"
    proc = osmgap_cli("diff", "--aoi", BBOX, "--osm", str(inputs["osm_geojson"]), "--candidates", str(inputs["candidates"]),
                   "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    root = ET.fromstring((out / "suggestions.osm").read_bytes())
    assert root.findall("way") and all(int(n.get("id")) < 0 for n in root.findall("node"))
    fixmes = [t.get("v") for t in root.iter("tag") if t.get("k") == "fixme"]
    assert any("to way 62061745" in f for f in fixmes)  # the street the deleted one continues
    issues = josm_validate(out / "suggestions.osm", tmp_path / "josm")
    assert [i for i in issues if severity(i) == "Errors"] == []


def test_shifted_source_is_realigned_and_warned_about_and_drawn_without_imagery(inputs, tmp_path):
    out = tmp_path / "out"
    proc = osmgap_cli("diff", "--aoi", BBOX, "--osm", str(inputs["osm"]), "--candidates", str(inputs["shifted"]),
                   "--unsupported", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    s = json.loads((out / "summary.json").read_text())
    assert s["offset_m"]["applied"]
    assert s["offset_m"]["east_m"] == pytest.approx(6.0, abs=0.5) and s["offset_m"]["north_m"] == pytest.approx(5.0, abs=0.5)
    assert any("off OSM" in w for w in s["warnings"])
    feats = json.loads((out / "suggestions.geojson").read_text())["features"]
    assert {f["properties"]["kind"] for f in feats} >= {"missing_road"}
    with Image.open(out / "overview.png") as im:
        colours = np.asarray(im.convert("RGB")).reshape(-1, 3)
    background = (colours == np.array([0xF4, 0xF4, 0xF0])).all(axis=1).mean()
    assert background > 0.3  # a plain ground, no imagery


@pytest.mark.parametrize("bad, text", [("garbage.geojson", "cannot read road lines"), ("points.geojson", "no LineString")])
def test_bad_candidates_exit_2_and_write_nothing(inputs, tmp_path, bad, text, capsys):
    path = tmp_path / bad
    path.write_text("{nonsense" if bad.startswith("garbage") else json.dumps(
        {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {},
                                                    "geometry": {"type": "Point", "coordinates": [26.95, 60.53]}}]}))
    out = tmp_path / "out"
    code = main(["diff", "--aoi", BBOX, "--osm", str(inputs["osm"]), "--candidates", str(path), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and bad in err and text in err
    assert not out.exists()


# Every mapped parking aisle of Kotka's real lots (service=parking_aisle, >= 40 m, mostly inside a lot).
AISLES = (369829301, 369836408, 369836409)


def test_roads_found_inside_mapped_parking_lots_are_low_priority_service(data, kotka, tmp_path):
    """The OSM input's own amenity=parking areas reach conflation: with the real aisles deleted
    and the ways given back as unclassed lines (as a model gives them), the aisles come back as
    highway=service parking aisles of priority 2, and the summary counts the lots."""
    edited = _kotka_without(data, AISLES, tmp_path / "kotka-no-aisles.osm")
    cands = tmp_path / "lines.geojson"
    kotka.ways[["geometry"]].to_file(cands, driver="GeoJSON")
    out = tmp_path / "out"
    proc = osmgap_cli("diff", "--aoi", BBOX, "--osm", str(edited), "--candidates", str(cands), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "summary.json").read_text())["osm"]["parking_lots"] == len(kotka.parking) == 10
    crs = kotka.ways.estimate_utm_crs()
    lots = shapely.union_all(shapely.buffer(np.asarray(kotka.parking.to_crs(crs).geometry.values, dtype=object), 3.0))
    aisles = kotka.ways[kotka.ways["osm_id"].isin(AISLES)].to_crs(crs).geometry.union_all().buffer(5.0)
    found = gpd.read_file(out / "suggestions.geojson").to_crs(crs)
    in_lots = found[found.geometry.intersection(lots).length >= 0.5 * found.geometry.length]
    assert in_lots.geometry.intersection(aisles).length.sum() >= 0.8 * kotka.ways[
        kotka.ways["osm_id"].isin(AISLES)].to_crs(crs).length.sum()
    assert (in_lots["highway"] == "service").all() and (in_lots["priority"] == 2).all()
    assert in_lots["evidence_parking_aisle"].fillna(False).astype(bool).all()


# A real one-way service tunnel of central Helsinki (tunnel=yes, layer=-3) under mapped streets.
TUNNEL = 27193233
HELSINKI_BBOX = "24.9440,60.1680,24.9530,60.1760"


def _levelled_helsinki_diff(data: Path, helsinki, deleted: tuple[int, ...], tmp_path: Path) -> Path:
    """`osmgap diff` of the real Helsinki extract without ``deleted``, all its ways given back as
    a levelled source (tunnel/bridge/layer kept); the output folder."""
    edited = _extract_without(data / "osm" / "helsinki.osm.pbf", deleted, tmp_path / "helsinki-edited.osm")
    cands = tmp_path / "levelled.geojson"
    as_candidates(helsinki.ways, levelled=True).to_file(cands, driver="GeoJSON")
    out = tmp_path / "out"
    proc = osmgap_cli("diff", "--aoi", HELSINKI_BBOX, "--osm", str(edited), "--candidates", str(cands), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return out


def _drawn_ways(path: Path, crs) -> list[tuple[dict, list[str], shapely.LineString]]:
    """The ways of a suggestions.osm: tags, node refs and line (in ``crs``)."""
    root = ET.fromstring(path.read_bytes())
    where = {n.get("id"): (float(n.get("lon")), float(n.get("lat"))) for n in root.findall("node")}
    drawn = []
    for w in root.findall("way"):
        refs = [nd.get("ref") for nd in w.findall("nd")]
        line = gpd.GeoSeries([shapely.LineString([where[r] for r in refs])], crs="EPSG:4326").to_crs(crs).iloc[0]
        drawn.append(({t.get("k"): t.get("v") for t in w.findall("tag")}, refs, line))
    return drawn


def test_a_deleted_tunnel_comes_back_as_a_tunnel_in_every_output(data, helsinki, tmp_path):
    """With the tunnel deleted from the real extract and all ways given back as a levelled source
    (its tunnel/bridge/layer properties kept), the tunnel comes back in suggestions.osm as new
    ways tagged tunnel=yes and layer=-3 (not a surface road drawn on the streets above it), joined
    to existing nodes only at their ends; JOSM reads the file without errors; both GeoJSON files
    carry the level as properties, and nothing on the surface gets one."""
    out = _levelled_helsinki_diff(data, helsinki, (TUNNEL,), tmp_path)
    crs = helsinki.ways.estimate_utm_crs()
    tunnel = helsinki.ways[helsinki.ways["osm_id"] == TUNNEL].to_crs(crs).geometry.iloc[0]
    drawn = _drawn_ways(out / "suggestions.osm", crs)
    along = [(tags, refs, line) for tags, refs, line in drawn if line.intersection(tunnel.buffer(2.0)).length >= 0.9 * line.length]
    assert sum(line.intersection(tunnel.buffer(2.0)).length for _, _, line in along) >= 0.9 * tunnel.length
    for tags, refs, _ in along:
        assert tags["tunnel"] == "yes" and tags["layer"] == "-3" and tags["highway"] == "service"
        assert all(int(r) < 0 for r in refs[1:-1])  # existing nodes only where it lands
    for tags, _, line in drawn:
        if line.intersection(tunnel.buffer(2.0)).length < 0.5 * line.length:
            assert not {"tunnel", "bridge", "layer"} & set(tags)
    issues = josm_validate(out / "suggestions.osm", tmp_path / "josm")
    assert [i for i in issues if severity(i) == "Errors"] == []

    found = gpd.read_file(out / "suggestions.geojson").to_crs(crs)
    on_tunnel = found.geometry.intersection(tunnel.buffer(2.0)).length >= 0.9 * found.geometry.length
    assert on_tunnel.sum() == len(along)
    assert (found.loc[on_tunnel, "tunnel"] == "yes").all() and (found.loc[on_tunnel, "layer"] == "-3").all()
    if "tunnel" in found.columns:
        assert found.loc[~on_tunnel, "tunnel"].isna().all()
    tasks = [json.loads(r)["features"][0] for r in (out / "maproulette.geojson").read_bytes().split(b"\x1e") if r.strip()]
    levelled = {t["id"]: (t["properties"].get("tunnel"), t["properties"].get("layer")) for t in tasks}
    assert sorted(levelled[i] for i in found.loc[on_tunnel, "id"]) == [("yes", "-3")] * len(along)


# The real surface service road (no level tags, 48 m) that leads into TUNNEL at its portal.
RAMP = 27193234


def test_a_deleted_ramp_and_its_tunnel_come_back_as_two_joined_ways_each_on_its_level(data, helsinki, tmp_path):
    """With the tunnel and the surface road into it both deleted from the real extract (all ways
    given back as a levelled source), the missing road is cut at the portal: in suggestions.osm
    the ramp is a way with no tunnel/bridge/layer tags and a fixme that asks for imagery, the
    tunnel a way tagged tunnel=yes, layer=-3 whose fixme asks for the portals, and the two share
    the node at the portal (the node the real ways share); JOSM reads it without errors. Both
    GeoJSON files carry the same split: the ramp without level properties, the tunnel with them."""
    out = _levelled_helsinki_diff(data, helsinki, (TUNNEL, RAMP), tmp_path)
    crs = helsinki.ways.estimate_utm_crs()
    real = helsinki.ways.set_index("osm_id").loc[[TUNNEL, RAMP]]
    tunnel, ramp = real.to_crs(crs).geometry
    (portal_id,) = set(real.loc[TUNNEL, "node_ids"]) & set(real.loc[RAMP, "node_ids"])
    _, lon, lat = helsinki.nodes[portal_id]
    portal = gpd.GeoSeries([shapely.Point(lon, lat)], crs="EPSG:4326").to_crs(crs).iloc[0]
    drawn = _drawn_ways(out / "suggestions.osm", crs)

    def along(road):
        return [d for d in drawn if d[2].intersection(road.buffer(2.0)).length >= 0.9 * d[2].length]

    (ramp_tags, ramp_refs, ramp_line), = along(ramp)
    assert ramp_line.length >= 0.9 * ramp.length
    assert not {"tunnel", "bridge", "layer"} & set(ramp_tags) and "check imagery" in ramp_tags["fixme"]
    in_tunnel = along(tunnel)
    for tags, _, _ in in_tunnel:
        assert tags["tunnel"] == "yes" and tags["layer"] == "-3" and tags["highway"] == "service"
        assert "portal" in tags["fixme"] and "check imagery" not in tags["fixme"]
    # the ramp ends at the portal, on the node where a tunnel way begins or ends
    (at_portal,) = [end for end in (ramp_refs[0], ramp_refs[-1])
                    if shapely.Point(ramp_line.coords[0 if end == ramp_refs[0] else -1]).distance(portal) <= 0.5]
    assert any(at_portal in (refs[0], refs[-1]) for _, refs, _ in in_tunnel)
    issues = josm_validate(out / "suggestions.osm", tmp_path / "josm")
    assert [i for i in issues if severity(i) == "Errors"] == []

    found = gpd.read_file(out / "suggestions.geojson").to_crs(crs)
    on_ramp = found.geometry.intersection(ramp.buffer(2.0)).length >= 0.9 * found.geometry.length
    on_tunnel = found.geometry.intersection(tunnel.buffer(2.0)).length >= 0.9 * found.geometry.length
    assert on_ramp.sum() == 1 and on_tunnel.sum() == len(in_tunnel)
    assert "tunnel" in found.columns and found.loc[on_ramp, "tunnel"].isna().all()
    assert (found.loc[on_tunnel, "tunnel"] == "yes").all() and (found.loc[on_tunnel, "layer"] == "-3").all()
    tasks = [json.loads(r)["features"][0] for r in (out / "maproulette.geojson").read_bytes().split(b"\x1e") if r.strip()]
    levelled = {t["id"]: (t["properties"].get("tunnel"), t["properties"].get("layer")) for t in tasks}
    assert [levelled[i] for i in found.loc[on_ramp, "id"]] == [(None, None)]
    assert sorted(levelled[i] for i in found.loc[on_tunnel, "id"]) == [("yes", "-3")] * len(in_tunnel)


def test_osm_conflation_and_writing_run_with_the_collector_paused(inputs, run_pbf, tmp_path, monkeypatch):
    """Those stages build no reference cycles, and the full passes that their allocations set off
    walked everything alive to free nothing (issue 17: conflation 7 -> 5.5 s at 100 km2): the diff
    pauses Python's collector there and only there, puts it back, and writes what the CLI did."""
    import gc

    import osmgap.jobs.diff as diff

    enabled: dict[str, bool] = {}

    def watched(name: str) -> None:
        real = getattr(diff, name)

        def call(*args, **kwargs):
            enabled[name] = gc.isenabled()
            return real(*args, **kwargs)
        monkeypatch.setattr(diff, name, call)

    for name in ("load_candidates", "load_osm", "conflate", "write_suggestion_files"):
        watched(name)
    out = tmp_path / "out"
    assert gc.isenabled()
    assert main(["diff", "--aoi", BBOX, "--osm", str(inputs["osm"]), "--candidates", str(inputs["candidates"]),
                 "--out", str(out)]) == 0
    assert enabled == {"load_candidates": True, "load_osm": False, "conflate": False, "write_suggestion_files": False}
    assert gc.isenabled()
    assert (out / "suggestions.osm").read_bytes() == (run_pbf / "suggestions.osm").read_bytes()


def _extract_retagged(source: Path, retag: dict[int, dict[str, str]], path: Path) -> Path:
    """A real extract with these ways' tags replaced (ids, versions, nodes intact), by osmium."""
    with osmium.SimpleWriter(str(path)) as w:
        for obj in osmium.FileProcessor(str(source)):
            if obj.is_way() and obj.id in retag:
                w.add(obj.replace(tags=retag[obj.id]))
            else:
                w.add(obj)
    return path


def test_a_road_osm_has_only_as_proposed_is_suggested_as_a_retag_of_that_way(data, inputs, tmp_path, monkeypatch):
    """New estates are mapped ahead of time as highway=proposed: a road seen there was either
    "missing" (and a cooperative task drew a second way on top of the proposed one), or, once
    such ways were read as mapped otherwise, dropped. It is suggested, naming the way to retag,
    and no cooperative task pre-draws it; a way retagged as a footway is still left out, and so is
    a road OSM keeps as razed (removed, but on old imagery: kept so that nobody draws it again)."""
    street, aisle, connector = DELETED  # a residential street, a parking aisle, a connector of real Kotka
    osm = _extract_retagged(data / "osm" / "kotka.osm.pbf",
                            {street: {"highway": "proposed", "proposed": "residential"},
                             aisle: {"highway": "footway"}, connector: {"razed:highway": "service"}},
                            tmp_path / "kotka-planned.osm.pbf")
    out = tmp_path / "ws" / "run"
    proc = osmgap_cli("diff", "--aoi", BBOX, "--osm", str(osm), "--candidates", str(inputs["candidates"]),
                      "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["conflation"]["retag_instead"] == {"highway=proposed": 1}
    assert summary["conflation"]["mapped_otherwise"] == {"highway=footway": 1, "razed:highway": 1}
    assert "Retag: 1 suggested road runs along a way OSM has as highway=proposed" in proc.stdout
    feats = json.loads((out / "suggestions.geojson").read_text())["features"]
    retag = [f for f in feats if f["properties"].get("evidence_retag_way") == street]
    assert len(retag) == 1 and retag[0]["properties"]["evidence_retag_way_now"] == "highway=proposed"
    fixmes = [t.get("v") for t in ET.fromstring((out / "suggestions.osm").read_bytes()).iter("tag") if t.get("k") == "fixme"]
    assert sum(f"OSM has way {street} here as highway=proposed: if built, retag that way rather than add this one"
               in f for f in fixmes) == 1
    tasks, instruction = _published_cooperatively(out, tmp_path, monkeypatch)
    assert "Where the task's evidence_retag_way names a way, OSM has this road as proposed" in instruction
    assert tasks[retag[0]["id"]].cooperative is None
    assert sum(t.cooperative is not None for t in tasks.values()) == len(tasks) - 1


def test_a_road_whose_construction_is_likely_finished_is_suggested_as_a_retag(inputs, data, tmp_path):
    """A road under construction nobody touched for two years (Osmose's "finished construction?"),
    or whose opening_date passed, is likely built and its way never retagged: a road seen along it
    is suggested as a retag of that way. One still being built (opening_date ahead) and a cycleway
    being built stay mapped otherwise. The real ways keep their real edit times (2012-2017)."""
    street, aisle, connector = DELETED
    osm = _extract_retagged(data / "osm" / "kotka.osm.pbf",
                            {street: {"highway": "construction", "construction": "residential"},
                             aisle: {"highway": "construction", "construction": "service", "opening_date": "2099-06"},
                             connector: {"highway": "construction", "construction": "cycleway"}},
                            tmp_path / "kotka-building.osm.pbf")
    out = tmp_path / "run"
    proc = osmgap_cli("diff", "--aoi", BBOX, "--osm", str(osm), "--candidates", str(inputs["candidates"]),
                      "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    conflation = json.loads((out / "summary.json").read_text())["conflation"]
    assert conflation["retag_instead"] == {FINISHED_CONSTRUCTION: 1}
    assert conflation["mapped_otherwise"] == {"highway=construction": 2}
    feats = json.loads((out / "suggestions.geojson").read_text())["features"]
    retag = [f for f in feats if f["properties"].get("evidence_retag_way") == street]
    assert len(retag) == 1 and retag[0]["properties"]["evidence_retag_way_now"] == FINISHED_CONSTRUCTION
    fixmes = [t.get("v") for t in ET.fromstring((out / "suggestions.osm").read_bytes()).iter("tag") if t.get("k") == "fixme"]
    assert sum(f"OSM has way {street} here as {FINISHED_CONSTRUCTION}: if built, retag that way" in f for f in fixmes) == 1


def test_a_weekly_run_on_an_extract_nobody_refreshed_says_so(inputs, tmp_path, monkeypatch):
    """The job that downloads the extract broke: every week osmgap diffed the same old file, and the
    roads mapped since looked missing, silently. A run a week after one that read the very same
    file (path, size, modification time) warns; a rerun the same day or a refreshed file does not."""
    import os

    osm = tmp_path / "kotka.osm"
    shutil.copy(inputs["osm"], osm)
    state = tmp_path / "state.sqlite"

    def week(name: str, when: str) -> list[str]:
        monkeypatch.setenv("OSMGAP_NOW", when)
        assert main(["diff", "--aoi", BBOX, "--osm", str(osm), "--candidates", str(inputs["candidates"]),
                     "--out", str(tmp_path / name), "--state", str(state), "--name", "kotka"]) == 0
        return [w for w in json.loads((tmp_path / name / "summary.json").read_text())["warnings"] if "same file" in w]

    assert week("w1", "2025-01-06T04:00:00Z") == [] and week("w1-again", "2025-01-06T09:00:00Z") == []
    (said,) = week("w2", "2025-01-13T04:00:00Z")
    assert said.startswith(f"WARNING: {osm}: the same file as the run of 2025-01-06 (6 days earlier")
    assert "refresh the extract" in said
    os.utime(osm, (osm.stat().st_atime, osm.stat().st_mtime + 3600))  # this week's download
    assert week("w3", "2025-01-20T04:00:00Z") == []
    # the weekly report dates the OSM of the last run, warned about or not: the file's time (Kotka's
    # header does not date its data) and the newest edit of its roads
    assert main(["report", "--out", str(tmp_path / "w3"), "--state", str(state), "--basemap", "none"]) == 0
    written = dt.datetime.fromtimestamp(osm.stat().st_mtime, dt.timezone.utc).strftime("%Y-%m-%d %H:%M")
    dated = (f"OSM of the last run: kotka.osm, file written {written} UTC (its header does not date its data); "
             "newest road edit in the AOI 2019-01-23.")
    assert dated in (tmp_path / "w3" / "report.md").read_text()
    assert f'<p id="osm-age">{dated}</p>' in (tmp_path / "w3" / "report.html").read_text()
