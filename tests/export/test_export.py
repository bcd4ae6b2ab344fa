"""Exporters on real road geometry: JOSM .osm, suggestions.geojson and MapRoulette tasks."""
from __future__ import annotations

import json
import logging
import xml.etree.ElementTree as ET
from pathlib import Path

import networkx as nx
import numpy as np
import osmium
import pytest
from shapely.affinity import translate
from shapely.geometry import LineString, shape

from osmgap.conflate.conflate import stable_id
from osmgap.core.aoi import reproject, utm_crs_for
from osmgap.core.datamodel import WGS84, Suggestion
from osmgap.core.osmtags import ROAD_CLASSES, coord_text
from osmgap.export.geojson import (
    feature_lines,
    maproulette_lines,
    suggestions_feature_collection,
    write_maproulette,
    write_suggestions_geojson,
)
from osmgap.export.josm import osm_xml, write_josm
from tests.josm import JosmError, josm_validate, severity

# Two OSM ways of the sample that meet end to end (Rue Édouart / Édouard Vaillant) and a third.
JOINED_WAYS = (27236016, 27746679)
OTHER_WAY = 27237458
ODD_HIGHWAY = 'unclassified;"track" & <ford> é'  # free text from a candidate source: no road class
EXTRA = {"imagery_licence": "CC-BY-SA 4.0", "imagery_attribution": "SpaceNet © Maxar & co"}
BOUNDS = (2.28120139993, 48.9810359, 2.28291639993, 48.9827509)


def _shifted(geom: LineString, east_m: float = 30.0, north_m: float = 10.0) -> LineString:
    """A controlled edit of real geometry: the same road moved ~30 m, so it is new to OSM."""
    crs = utm_crs_for(*geom.coords[0][:2])
    return reproject(translate(reproject(geom, WGS84, crs), east_m, north_m), crs, WGS84)


@pytest.fixture(scope="module")
def suggestions(paris: Path) -> list[Suggestion]:
    features = json.loads((paris / "osm_roads.geojson").read_text())["features"]
    by_id = {int(f["properties"]["osm_id"]): LineString(shape(f["geometry"]).coords) for f in features}
    a, b = (_shifted(by_id[i]) for i in JOINED_WAYS)
    c = _shifted(by_id[OTHER_WAY])
    specs = [(a, "residential", 0.834), (b, "road", 0.61), (c, ODD_HIGHWAY, 0.5)]
    out = []
    for geom, highway, conf in specs:
        out.append(Suggestion(
            id=stable_id(geom), kind="missing_road", geometry=geom,
            length_m=float(reproject(geom, WGS84, utm_crs_for(2.28, 48.98)).length),
            confidence=conf, highway=highway, priority=2,
            evidence={"image_score": np.float32(conf), "gps_points": np.int64(7), "detail": {"n": 1}}))
    return out


@pytest.fixture(scope="module")
def osm_root(suggestions) -> ET.Element:
    parser = ET.XMLParser(target=ET.TreeBuilder(insert_comments=True))
    return ET.fromstring(osm_xml(suggestions, BOUNDS), parser=parser)


def _ways(root: ET.Element) -> list[ET.Element]:
    return root.findall("way")


def _tags(way: ET.Element) -> dict[str, str]:
    return {t.get("k"): t.get("v") for t in way.findall("tag")}


def _node_coords(root: ET.Element) -> dict[int, tuple[float, float]]:
    return {int(n.get("id")): (float(n.get("lon")), float(n.get("lat"))) for n in root.findall("node")}


def _written_class(s: Suggestion) -> str:
    """The highway a way is written with: its class when it is a road class, else 'road'."""
    return s.highway if s.highway in ROAD_CLASSES else "road"


def _osm_suggestion_ids(root: ET.Element) -> list[str]:
    return [next(c for c in w if c.tag is ET.Comment).text.strip() for w in _ways(root)]


def test_the_shifted_ways_still_share_an_endpoint(suggestions):
    a, b = suggestions[0].geometry, suggestions[1].geometry
    ends_a = {tuple(map(coord_text, p[:2])) for p in (a.coords[0], a.coords[-1])}
    ends_b = {tuple(map(coord_text, p[:2])) for p in (b.coords[0], b.coords[-1])}
    assert len(ends_a & ends_b) == 1


def test_root_upload_discouraged_and_the_aoi_in_a_comment(osm_root):
    assert osm_root.tag == "osm"
    assert osm_root.get("version") == "0.6"
    assert osm_root.get("upload") == "false"  # JOSM asks before an upload
    assert osm_root.get("generator").startswith("osmgap ")
    assert osm_root.get("locked") is None  # a locked layer could not be edited by the mapper
    assert osm_root.findall("bounds") == []  # JOSM would take the AOI for downloaded OSM data (test_josm_audit)
    (aoi,) = [c.text for c in osm_root if c.tag is ET.Comment and "Area of interest" in c.text]
    assert (f"lon {coord_text(BOUNDS[0])}..{coord_text(BOUNDS[2])}, "
            f"lat {coord_text(BOUNDS[1])}..{coord_text(BOUNDS[3])}.") in aoi


def test_new_objects_have_unique_negative_ids_and_no_version(osm_root):
    elements = osm_root.findall("node") + _ways(osm_root)
    ids = [int(e.get("id")) for e in elements]
    assert all(i < 0 for i in ids) and len(set(ids)) == len(ids) and -1 in ids
    assert all(e.get("version") is None and e.get("action") is None for e in elements)


def test_ways_carry_highway_and_fixme_only(osm_root, suggestions):
    ways = _ways(osm_root)
    assert len(ways) == len(suggestions)
    for way, s in zip(ways, suggestions):
        tags = _tags(way)
        assert set(tags) == {"highway", "fixme"}
        assert not any(k.startswith("osmgap:") for k in tags)
        assert tags["highway"] == _written_class(s)
        assert f"confidence {s.confidence:.2f}" in tags["fixme"]


def test_a_class_outside_the_vocabulary_is_written_as_road_with_one_warning_per_file(suggestions, tmp_path, caplog):
    """A free-text class (a candidate file's) never reaches a tag: the way is highway=road, and each
    file written says once, by name, how many values it dropped."""
    with caplog.at_level(logging.WARNING):
        write_josm(tmp_path / "s.osm", suggestions, BOUNDS)
        write_suggestions_geojson(tmp_path / "s.geojson", suggestions)
    data = (tmp_path / "s.osm").read_bytes()
    assert b"ford" not in data and b"track" not in data
    assert [_tags(w)["highway"] for w in _ways(ET.fromstring(data))] == ["residential", "road", "road"]
    assert json.loads((tmp_path / "s.geojson").read_text())["features"][2]["properties"]["highway"] == "road"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and all("dropped 1 value" in w and "highway: 1" in w for w in warnings)
    assert str(tmp_path / "s.osm") in warnings[0] and str(tmp_path / "s.geojson") in warnings[1]


INJECTED_LEVEL = {"tunnel": "yes;highway=motorway;name=Injected Name;fixme=ok to upload", "layer": "12",
                  "bridge": "viaduct", "name": "Injected Name", "fixme": "ok to upload"}


def test_level_tags_outside_the_vocabulary_are_dropped_in_every_file(suggestions, tmp_path, caplog):
    """A suggestion whose level tags carry an injection keeps only the valid ones (bridge=viaduct)
    in suggestions.osm and both GeoJSON files; nothing else becomes a tag or a property."""
    s = suggestions[0]
    bad = Suggestion(id=s.id, kind=s.kind, geometry=s.geometry, length_m=s.length_m, confidence=s.confidence,
                     highway="residential", level_tags=INJECTED_LEVEL)
    with caplog.at_level(logging.WARNING):
        write_josm(tmp_path / "s.osm", [bad], BOUNDS)
        write_maproulette(tmp_path / "mr.geojson", [bad])
    (way,) = _ways(ET.fromstring((tmp_path / "s.osm").read_bytes()))
    tags = _tags(way)
    assert set(tags) == {"highway", "fixme", "bridge"} and tags["bridge"] == "viaduct"
    assert tags["highway"] == "residential" and tags["fixme"].startswith("osmgap: possible missing road, bridge")
    props = json.loads((tmp_path / "mr.geojson").read_bytes()[1:])["features"][0]["properties"]
    assert props["bridge"] == "viaduct" and props["highway"] == "residential"
    assert not {"tunnel", "layer", "name", "fixme"} & set(props)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and all("dropped 4 value" in w for w in warnings)
    assert "fixme: 1, layer: 1, name: 1, tunnel: 1" in warnings[0]


def test_shared_endpoint_is_one_node(osm_root):
    way_a, way_b = (_ways(osm_root)[i].findall("nd") for i in (0, 1))
    ends_a = {way_a[0].get("ref"), way_a[-1].get("ref")}
    ends_b = {way_b[0].get("ref"), way_b[-1].get("ref")}
    assert len(ends_a & ends_b) == 1
    coords = list(_node_coords(osm_root).values())
    assert len(coords) == len(set(coords))  # no two nodes at one spot


def test_node_coordinates_round_trip(osm_root, suggestions):
    nodes = _node_coords(osm_root)
    for way, s in zip(_ways(osm_root), suggestions):
        written = [nodes[int(nd.get("ref"))] for nd in way.findall("nd")]
        expected = [(x, y) for x, y, *_ in s.geometry.coords]
        assert len(written) == len(expected)
        assert np.allclose(written, expected, atol=5e-8, rtol=0)


def test_osm_output_is_deterministic_and_written_atomically(suggestions, tmp_path):
    data = osm_xml(suggestions, BOUNDS)
    assert osm_xml(suggestions, BOUNDS) == data
    write_josm(tmp_path / "suggestions.osm", suggestions, BOUNDS)
    assert (tmp_path / "suggestions.osm").read_bytes() == data
    assert [p.name for p in tmp_path.iterdir()] == ["suggestions.osm"]


def test_a_way_joins_an_existing_osm_node_by_its_real_id(suggestions):
    lon, lat = suggestions[0].geometry.coords[0][:2]
    root = ET.fromstring(osm_xml(suggestions, BOUNDS, existing_nodes={30211871: (4, lon, lat)}))
    node = next(n for n in root.findall("node") if n.get("id") == "30211871")
    assert node.get("version") == "4" and node.get("action") is None
    assert _ways(root)[0].find("nd").get("ref") == "30211871"
    assert all(int(n.get("id")) < 0 for n in root.findall("node") if n is not node)


# A real street of central Helsinki that runs over a service tunnel (layer -3) for ~100 m.
STREET_OVER_TUNNEL = 29186154


@pytest.mark.parametrize("level_tags", [{}, {"tunnel": "yes", "layer": "-3"}, {"bridge": "yes"}])
def test_a_tunnel_or_bridge_joins_existing_nodes_only_at_its_ends(helsinki, level_tags, tmp_path):
    """The real line of a street, every vertex an existing node, as evidence of a new way: on the
    surface it joins the street at each node; in a tunnel or on a bridge it carries those tags
    and joins existing nodes only at its ends, where it lands: inner vertices at an existing node
    (a crossing with a way on another level) are left out, not connected nor duplicated; its
    fixme asks for what imagery cannot show (a tunnel's portals, a bridge's ends). JOSM reads it
    without errors."""
    way = helsinki.ways[helsinki.ways["osm_id"] == STREET_OVER_TUNNEL].iloc[0]
    geom = LineString(way.geometry.coords)
    s = Suggestion(id=stable_id(geom), kind="missing_road", geometry=geom, length_m=100.0, confidence=0.8,
                   highway="residential", level_tags=level_tags)
    root = ET.fromstring(osm_xml([s], tuple(geom.bounds), existing_nodes=helsinki.nodes))
    (w,) = _ways(root)
    refs = [int(nd.get("ref")) for nd in w.findall("nd")]
    tags = {t.get("k"): t.get("v") for t in w.findall("tag")}
    assert {k: v for k, v in tags.items() if k not in ("highway", "fixme")} == level_tags
    # no imagery shows a tunnel: its fixme asks for the portals; a bridge's for where it begins and ends
    assert ("check imagery" in tags["fixme"]) == (not level_tags)
    assert ("portal" in tags["fixme"]) == ("tunnel" in level_tags)
    assert ("bridge begins and ends" in tags["fixme"]) == ("bridge" in level_tags)
    at = {(coord_text(lon), coord_text(lat)): n for n, (_, lon, lat) in helsinki.nodes.items()}
    nodes = [at[coord_text(x), coord_text(y)] for x, y in geom.coords]  # the way's nodes inside the extract
    assert len(nodes) >= 4 and set(nodes) <= set(way.node_ids)
    assert refs == ([nodes[0], nodes[-1]] if level_tags else nodes)
    (tmp_path / "s.osm").write_bytes(osm_xml([s], tuple(geom.bounds), existing_nodes=helsinki.nodes))
    assert [i for i in josm_validate(tmp_path / "s.osm", tmp_path) if severity(i) == "Errors"] == []


def test_an_existing_node_a_way_joins_keeps_every_tag_it_has_in_osm(helsinki, data):
    """JOSM's Layer > Merge of two copies of a node with one version takes the merged file's: a
    junction written without its tags (a crossing, its tactile paving) lost them in the mapper's
    data layer, silently. The street's nodes are read back from the extract with osmium here."""
    way = helsinki.ways[helsinki.ways["osm_id"] == STREET_OVER_TUNNEL].iloc[0]
    geom = LineString(way.geometry.coords)
    s = Suggestion(id=stable_id(geom), kind="missing_road", geometry=geom, length_m=100.0, confidence=0.8,
                   highway="residential")
    root = ET.fromstring(osm_xml([s], tuple(geom.bounds), existing_nodes=helsinki.nodes,
                                 node_tags=helsinki.node_tags))
    written = {int(n.get("id")): {t.get("k"): t.get("v") for t in n.findall("tag")}
               for n in root.findall("node") if int(n.get("id")) > 0}
    real = {n.id: {t.k: t.v for t in n.tags} for n in osmium.FileProcessor(str(data / "osm" / "helsinki.osm.pbf"),
                                                                          osmium.osm.NODE) if n.id in written}
    assert written == real and sum(bool(t) for t in written.values()) >= 2  # crossings among them
    assert root.get("upload") == "false"  # discouraged, not blocked: merging it must not block the data layer


def test_an_existing_nodes_tags_are_written_exactly_or_the_node_is_not_joined(helsinki):
    """Runs of spaces, a tab, a newline and a 255-character value are written as they are (JOSM's
    merge takes the file's copy of a node of the same version: a cleaned value silently replaced
    the real one); a node with a tag XML cannot carry is not joined, so no copy of it is written."""
    way = helsinki.ways[helsinki.ways["osm_id"] == STREET_OVER_TUNNEL].iloc[0]
    geom = LineString(way.geometry.coords)
    s = Suggestion(id=stable_id(geom), kind="missing_road", geometry=geom, length_m=100.0, confidence=0.8,
                   highway="residential")
    ids = [n for n in way.node_ids if n in helsinki.nodes]
    awkward = {ids[0]: {"note": "check  the  signal\ttiming\nagain", "description": "é" * 255},
               ids[-1]: {"note": "bell\x07"}}
    root = ET.fromstring(osm_xml([s], tuple(geom.bounds), existing_nodes=helsinki.nodes,
                                 node_tags={**helsinki.node_tags, **awkward}))
    written = {int(n.get("id")): {t.get("k"): t.get("v") for t in n.findall("tag")} for n in root.findall("node")}
    assert written[ids[0]] == awkward[ids[0]]
    assert ids[-1] not in written


def test_kinds_that_are_not_new_roads_stay_out_of_the_osm_file(suggestions):
    s = suggestions[2]
    other = Suggestion(id=s.id, kind="unsupported_osm_way", geometry=s.geometry,
                       length_m=s.length_m, confidence=s.confidence)
    root = ET.fromstring(osm_xml([other], BOUNDS))
    assert root.findall("way") == [] and root.findall("node") == []


def test_geojson_features(suggestions):
    fc = suggestions_feature_collection(suggestions, EXTRA)
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == len(suggestions)
    for f, s in zip(fc["features"], suggestions):
        p = f["properties"]
        assert f["id"] == p["id"] == s.id
        assert f["geometry"]["type"] == "LineString"
        assert all(len(c) == 2 for c in f["geometry"]["coordinates"])
        assert p["kind"] == "missing_road" and p["highway"] == _written_class(s) and p["priority"] == 2
        assert p["length_m"] == round(s.length_m, 1) and p["confidence"] == round(s.confidence, 3)
        assert p["evidence_gps_points"] == 7 and isinstance(p["evidence_image_score"], float)
        assert "evidence_detail" not in p  # nested evidence is not flattened
        assert p["imagery_attribution"] == EXTRA["imagery_attribution"]


def test_suggestions_geojson_is_the_collection_one_feature_a_line(suggestions, tmp_path):
    """The file reads back as the collection built in memory, with each feature on a line of its
    own (compact, UTF-8 as it is); an empty run writes an empty collection; NaN is refused."""
    path = tmp_path / "s.geojson"
    write_suggestions_geojson(path, suggestions, EXTRA)
    text = path.read_text(encoding="utf-8")
    assert json.loads(text) == suggestions_feature_collection(suggestions, EXTRA)
    lines = text.splitlines()
    assert len(lines) == len(suggestions) + 2 and text.endswith("]}\n")
    for line, s in zip(lines[1:-1], suggestions, strict=True):
        assert json.loads(line.rstrip(","))["id"] == s.id
    write_suggestions_geojson(path, [], EXTRA)
    assert json.loads(path.read_text()) == {"type": "FeatureCollection", "features": []}
    with pytest.raises(ValueError, match="JSON compliant"):
        feature_lines({"type": "FeatureCollection", "features": [{"properties": {"x": float("nan")}}]})


def test_extra_properties_may_not_shadow_suggestion_fields(suggestions):
    with pytest.raises(ValueError, match="id"):
        suggestions_feature_collection(suggestions, {"id": "x"})


def test_osm_like_ids_are_refused(suggestions):
    s = suggestions[0]
    for bad in ("123", "way/123", "w123"):
        clone = Suggestion(id=bad, kind=s.kind, geometry=s.geometry, length_m=1.0, confidence=0.5)
        with pytest.raises(ValueError, match="OSM id"):
            maproulette_lines([clone])


def test_maproulette_line_by_line(suggestions, tmp_path):
    path = tmp_path / "maproulette.geojson"
    write_maproulette(path, suggestions, EXTRA)
    data = path.read_bytes()
    data.decode("ascii")
    records = data.split(b"\n")[:-1]
    assert data.endswith(b"\n") and len(records) == len(suggestions)
    for record, s in zip(records, suggestions):
        assert record.startswith(b"\x1e") and record.count(b"\x1e") == 1
        fc = json.loads(record[1:])
        assert fc["type"] == "FeatureCollection" and len(fc["features"]) == 1
        (feature,) = fc["features"]
        assert feature["id"] == feature["properties"]["id"] == s.id
        assert feature["properties"]["imagery_attribution"] == EXTRA["imagery_attribution"]


def test_same_ids_in_all_three_files(suggestions, tmp_path):
    write_josm(tmp_path / "s.osm", suggestions, BOUNDS)
    write_suggestions_geojson(tmp_path / "s.geojson", suggestions, EXTRA)
    write_maproulette(tmp_path / "mr.geojson", suggestions, EXTRA)
    parser = ET.XMLParser(target=ET.TreeBuilder(insert_comments=True))
    osm_ids = _osm_suggestion_ids(ET.fromstring((tmp_path / "s.osm").read_bytes(), parser=parser))
    geojson_ids = [f["id"] for f in json.loads((tmp_path / "s.geojson").read_text())["features"]]
    mr_ids = [json.loads(r[1:])["features"][0]["id"]
              for r in (tmp_path / "mr.geojson").read_bytes().splitlines()]
    assert osm_ids == geojson_ids == mr_ids == [s.id for s in suggestions]


josm = pytest.mark.slow  # runs JOSM; a missing JOSM fails the test (scripts/setup.sh --test installs it)


@pytest.mark.slow
@josm
def test_josm_reads_our_file_and_finds_no_errors(suggestions, tmp_path):
    path = tmp_path / "suggestions.osm"
    write_josm(path, suggestions, BOUNDS)
    issues = josm_validate(path, tmp_path)
    found = {(severity(i), i["properties"]["message"]) for i in issues}
    assert not [f for f in found if f[0] == "Errors"], found
    # JOSM did read the tags: the generic class gets its usual warning
    assert ("Warnings", "Unspecific highway type") in found, found


@pytest.mark.slow
@josm
@pytest.mark.parametrize("breakage", ["bad_xml", "missing_node"])
def test_josm_helper_raises_when_josm_cannot_read_the_file(suggestions, tmp_path, breakage):
    data = osm_xml(suggestions, BOUNDS)
    if breakage == "bad_xml":
        data = data.replace(b'v="road"', b'v="road & co"', 1)  # a bare '&': not XML
        assert b"road & co" in data
    else:
        data = b"".join(line + b"\n" for line in data.splitlines() if b"<node " not in line)
    path = tmp_path / "broken.osm"
    path.write_bytes(data)
    with pytest.raises(JosmError, match="could not validate"):
        josm_validate(path, tmp_path)


def test_overview_draws_each_layer_as_one_collection_on_a_decimated_read(paris, paris_aoi, suggestions, tmp_path,
                                                                         monkeypatch):
    """overview.png of the real chip with the suggestions above: OSM roads (cyan) and suggestions
    (red) are in the picture, drawn as line collections (no ``plot`` call per line); the imagery is
    read at the picture's resolution, at most MAX_SIDE_PX a side however fine the analysis grid
    (a coarser picture reads it decimated: tests/sources/test_imagery.py)."""
    import matplotlib.axes
    from PIL import Image

    from osmgap.core.datamodel import ProbabilityRaster
    from osmgap.export.overview import MAX_SIDE_PX, display_grid, read_backdrop, render_overview
    from osmgap.graph.skeleton import GraphParams, extract_graph
    from osmgap.sources.imagery import analysis_grid, open_imagery
    from osmgap.sources.osm import load_osm

    imagery = open_imagery(paris / "image.tif")
    fine = analysis_grid(imagery, paris_aoi.geometry, paris_aoi.metric_crs, 0.02)  # ~7,000 px a side
    shown = display_grid(fine, imagery)
    assert max(shown.width, shown.height) <= MAX_SIDE_PX < max(fine.width, fine.height)
    roads = load_osm(str(paris / "osm_roads.geojson"), paris_aoi)
    grid = analysis_grid(imagery, paris_aoi.geometry, paris_aoi.metric_crs, 1.0)
    band = np.zeros((grid.height, grid.width), np.float32)
    band[grid.height // 2 - 3:grid.height // 2 + 3, 10:-10] = 0.9  # one straight 'road' across the chip
    graph = extract_graph(ProbabilityRaster(band, grid.transform, grid.crs), GraphParams(threshold=0.5))
    plots = []
    original = matplotlib.axes.Axes.plot
    monkeypatch.setattr(matplotlib.axes.Axes, "plot", lambda self, *a, **k: plots.append(a) or original(self, *a, **k))
    render_overview(tmp_path / "overview.png", imagery, grid, roads.ways, graph, suggestions, "title", "footnote")
    assert plots == []  # every line went into a collection
    # the backdrop read beforehand (beside conflation, osmgap.jobs.early_writes) draws the same picture
    render_overview(tmp_path / "early.png", imagery, grid, roads.ways, graph, suggestions, "title", "footnote",
                    backdrop=read_backdrop(imagery, grid))
    assert (tmp_path / "early.png").read_bytes() == (tmp_path / "overview.png").read_bytes()
    with Image.open(tmp_path / "overview.png") as im:
        rgb = np.asarray(im.convert("RGB")).astype(int)
    red = (rgb[..., 0] > 220) & (rgb[..., 1] < 60) & (rgb[..., 2] < 100)
    cyan = (rgb[..., 0] < 60) & (rgb[..., 1] > 150) & (rgb[..., 2] > 180)
    assert red.sum() > 200 and cyan.sum() > 200


def test_overview_outlines_the_aoi_inside_the_context_the_model_saw(paris, paris_aoi, tmp_path):
    """diff predicts 40 m of imagery around the AOI: the picture shows it, so it outlines the AOI,
    the only part conflated."""
    from PIL import Image
    from shapely.geometry import box

    from osmgap.export.overview import render_overview
    from osmgap.sources.imagery import analysis_grid, open_imagery
    from osmgap.sources.osm import load_osm

    imagery = open_imagery(paris / "image.tif")
    grid = analysis_grid(imagery, paris_aoi.geometry, paris_aoi.metric_crs, 1.0)
    roads = load_osm(str(paris / "osm_roads.geojson"), paris_aoi)
    x0, y0, x1, y1 = paris_aoi.geometry.bounds
    inner = box(x0 + 0.25 * (x1 - x0), y0 + 0.25 * (y1 - y0), x0 + 0.75 * (x1 - x0), y0 + 0.75 * (y1 - y0))
    rgb = {}
    for name, aoi in (("without", None), ("with", inner)):
        render_overview(tmp_path / f"{name}.png", imagery, grid, roads.ways, nx.Graph(), [], "t", "f", aoi=aoi)
        with Image.open(tmp_path / f"{name}.png") as im:
            rgb[name] = np.asarray(im.convert("RGB")).astype(int)
    assert rgb["with"].shape == rgb["without"].shape
    whitened = (rgb["with"].min(axis=-1) > 200) & (rgb["without"].min(axis=-1) < 150)
    assert whitened.sum() > 400, whitened.sum()  # the outline: four sides of half the chip


def test_overview_draws_a_missing_connection_thin_and_dotted_with_its_two_ends(paris, paris_aoi, tmp_path):
    """The straight gap between two junctions is not the road: on the same line across the chip it
    paints a fraction of a drawn road's red, with a dot at each junction."""
    import networkx as nx
    from PIL import Image
    from shapely.geometry import LineString

    from osmgap.core.datamodel import MISSING_CONNECTION, Suggestion
    from osmgap.export.overview import render_overview
    from osmgap.sources.imagery import analysis_grid, open_imagery
    from osmgap.sources.osm import load_osm

    imagery = open_imagery(paris / "image.tif")
    grid = analysis_grid(imagery, paris_aoi.geometry, paris_aoi.metric_crs, 1.0)
    roads = load_osm(str(paris / "osm_roads.geojson"), paris_aoi)
    x0, y0, x1, y1 = paris_aoi.geometry.bounds
    line = LineString([(x0 + 0.2 * (x1 - x0), y0 + 0.15 * (y1 - y0)), (x0 + 0.8 * (x1 - x0), y0 + 0.15 * (y1 - y0))])
    red = {}
    for kind in ("missing_road", MISSING_CONNECTION):
        picture = tmp_path / f"{kind}.png"
        render_overview(picture, None, grid, roads.ways.iloc[:0], nx.Graph(),
                        [Suggestion(id="s", kind=kind, geometry=line, length_m=100.0, confidence=1.0)], "t", "f")
        with Image.open(picture) as im:
            rgb = np.asarray(im.convert("RGB")).astype(int)
        red[kind] = int(((rgb[..., 0] > 200) & (rgb[..., 1] < 90) & (rgb[..., 2] < 120)).sum())
    assert 0 < red[MISSING_CONNECTION] < 0.45 * red["missing_road"], red


@pytest.mark.parametrize("graph_ids", [False, True])
def test_a_loose_end_names_the_way_to_join_and_says_when_its_id_is_no_osm_id(suggestions, graph_ids):
    """A mapconstruction road graph (GPS benchmarks ship their map that way) numbers its ways
    itself: "join its first node to way 652" sent mappers to openstreetmap.org/way/652."""
    from dataclasses import replace

    from osmgap.core.datamodel import Attachment

    s = replace(suggestions[0], joins=[Attachment(0, 652)])
    root = ET.fromstring(osm_xml([s], BOUNDS, graph_ids=graph_ids))
    fixme = _ways(root)[0].find("tag[@k='fixme']").get("v")
    # graph edge ids are in no map a mapper opens: the end to join is given where it is (lat,lon)
    # (tests/export/test_josm_graph_joins.py has the whole text)
    lon, lat = s.geometry.coords[0]
    assert fixme.endswith(f"join its first node to the road at {lat:.5f},{lon:.5f} (mapconstruction graph edge "
                          "652, not OSM way)" if graph_ids else "join its first node to way 652")
