"""Candidate road files (GeoJSON, GeoPackage, Shapefile) made from real OSM ways, and the road
graph built from them: merged and split at junctions, bare crossings left alone."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import LineString, Point

from osmgap.conflate.gapscore import deletion_experiment
from osmgap.core.datamodel import WGS84
from osmgap.core.osmtags import LEVEL_KEYS, way_level
from osmgap.errors import InputError
from osmgap.graph.lines import build_line_graph, candidate_graph
from osmgap.sources.candidates import candidate_levels, load_candidates
from tests.roads import extent_aoi


def _frame(kotka) -> gpd.GeoDataFrame:
    ways = kotka.ways
    return gpd.GeoDataFrame({"score": np.linspace(40, 90, len(ways)), "highway": ways["highway"].to_numpy().copy()},
                            geometry=ways.geometry.values, crs=WGS84)


@pytest.mark.parametrize("suffix, driver", [(".geojson", "GeoJSON"), (".gpkg", "GPKG"), (".shp", "ESRI Shapefile")])
def test_every_format_reads_the_same_roads(kotka, tmp_path, suffix, driver):
    src = _frame(kotka)
    src.loc[0, "highway"] = "footway"  # not a road: left out, as OSM's own footways are
    path = tmp_path / f"roads{suffix}"
    src.to_crs("EPSG:3067" if driver != "GeoJSON" else WGS84).to_file(path, driver=driver)
    got = load_candidates(path, extent_aoi(kotka), default_confidence=0.75)
    assert len(got) == len(src) - 1 and got.crs == WGS84
    assert got["confidence"].between(0.4, 0.9).all()  # a 0-100 score read as a share
    assert set(got["highway"]) <= set(src["highway"]) - {"footway"}
    crs = extent_aoi(kotka).metric_crs
    assert got.to_crs(crs).length.sum() == pytest.approx(src.iloc[1:].to_crs(crs).length.sum(), rel=1e-4)


def test_an_esri_export_s_upper_case_highway_field_is_read(kotka, tmp_path):
    """A Shapefile's DBF field is HIGHWAY: read as any case of it, so footways stay out and classes
    stay (they were all suggested as highway=road)."""
    src = _frame(kotka).rename(columns={"highway": "HIGHWAY"})
    src.loc[0, "HIGHWAY"] = "footway"
    path = tmp_path / "roads.shp"
    src.to_file(path, driver="ESRI Shapefile")
    got = load_candidates(path, extent_aoi(kotka), default_confidence=0.75)
    assert len(got) == len(src) - 1 and set(got["highway"]) == set(src["HIGHWAY"]) - {"footway"}


def test_every_layer_of_lines_in_a_geopackage_is_read(kotka, tmp_path):
    """Roads split by class into layers, after a layer of buildings: only the first layer was read
    (half the roads, silently), or a polygon layer first ended the run ("holds no LineString")."""
    src = _frame(kotka)
    path = tmp_path / "roads.gpkg"
    gpd.GeoDataFrame(geometry=src.geometry.buffer(0.0001).values, crs=WGS84).to_file(path, layer="buildings")
    half = len(src) // 2
    src.iloc[:half].to_file(path, layer="roads_a")
    src.iloc[half:].to_crs("EPSG:3067").to_file(path, layer="roads_b")  # layers in CRSs of their own
    got = load_candidates(path, extent_aoi(kotka), default_confidence=0.75)
    crs = extent_aoi(kotka).metric_crs
    assert got.to_crs(crs).length.sum() == pytest.approx(src.to_crs(crs).length.sum(), rel=1e-4)


def test_a_line_of_one_point_is_left_out_with_a_warning(kotka, tmp_path, caplog):
    """GEOS holds no line of one point: one such feature refused the whole file."""
    src = _frame(kotka).iloc[:20]
    doc = json.loads(src.to_json())
    doc["features"].append({"type": "Feature", "properties": {},
                            "geometry": {"type": "LineString", "coordinates": [[26.95, 60.53]]}})
    path = _write(tmp_path, "roads.geojson", json.dumps(doc))
    got = load_candidates(path, extent_aoi(kotka), default_confidence=0.75)
    assert len(got) >= 20 and "1 feature(s) without a usable geometry" in caplog.text


def test_defaults_when_the_source_says_nothing(kotka, tmp_path):
    path = tmp_path / "bare.geojson"
    gpd.GeoDataFrame(geometry=kotka.ways.geometry.values, crs=WGS84).to_file(path, driver="GeoJSON")
    got = load_candidates(path, extent_aoi(kotka), default_confidence=0.66)
    assert (got["confidence"] == 0.66).all() and (got["highway"] == "road").all()


def _write(tmp_path: Path, name: str, content: bytes | str) -> Path:
    p = tmp_path / name
    p.write_bytes(content if isinstance(content, bytes) else content.encode())
    return p


BAD = {
    "missing": (lambda t, k: t / "nope.geojson", "not found"),
    "garbage": (lambda t, k: _write(t, "x.gpkg", b"\x00\x01 not a database"), "cannot read road lines"),
    "points_only": (lambda t, k: _write(t, "p.geojson", json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [26.95, 60.53]}}]})),
        "no LineString"),
    "elsewhere": (lambda t, k: _write(t, "far.geojson", json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": {"type": "LineString", "coordinates": [[2.28, 48.98], [2.29, 48.99]]}}]})),
        "inside the AOI"),
    "bad_score": (lambda t, k: _write(t, "s.geojson", json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"confidence": 250}, "geometry": {"type": "LineString",
                                                                              "coordinates": [[26.95, 60.53], [26.951, 60.531]]}}]})),
        "0-1"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_candidate_files_are_input_errors(kotka, tmp_path, case):
    build, text = BAD[case]
    path = build(tmp_path, kotka)
    with pytest.raises(InputError) as err:
        load_candidates(path, extent_aoi(kotka), default_confidence=0.75)
    assert text in str(err.value) and path.name in str(err.value) and "\n" not in str(err.value)


def test_pieces_of_one_road_merge_and_a_junction_splits(kotka):
    """A real way cut into three pieces (an edit) becomes one edge again; a real way whose end
    stops 0.6 m short of another way's side (an edit) is snapped there and splits it."""
    crs = extent_aoi(kotka).metric_crs
    metric = kotka.ways.to_crs(crs)
    longest = metric.geometry.iloc[int(np.argmax(metric.length))]
    thirds = [shapely.ops.substring(longest, a * longest.length / 3, (a + 1) * longest.length / 3) for a in range(3)]
    g = build_line_graph(np.asarray(thirds, dtype=object), np.full(3, 0.5), np.full(3, "road", dtype=object), crs)
    assert g.number_of_edges() == 1
    (_, _, data), = g.edges(data=True)
    assert data["length"] == pytest.approx(longest.length, abs=0.01)
    mid = longest.interpolate(0.5, normalized=True)
    normal = np.array(longest.interpolate(0.5 * longest.length + 1).coords[0]) - np.array(mid.coords[0])
    side = np.array([-normal[1], normal[0]]) / np.hypot(*normal)
    stub = LineString([np.array(mid.coords[0]) + 0.6 * side, np.array(mid.coords[0]) + 40 * side])
    g = build_line_graph(np.asarray([longest, stub], dtype=object), np.full(2, 0.5), np.full(2, "road", dtype=object), crs)
    assert g.number_of_edges() == 3 and sorted(d for _, d in g.degree())[-1] == 3


def test_bare_crossings_stay_apart(kotka):
    """Real ways that cross without a shared node (bridges) are no junction of the graph."""
    crs = extent_aoi(kotka).metric_crs
    metric = kotka.ways.to_crs(crs)
    bridges = metric[[t.get("bridge") == "yes" for t in metric["tags"]]]
    crossing = [(b, o) for b in bridges.geometry for o in metric.geometry if shapely.crosses(b, o)]
    assert crossing
    g = candidate_graph(kotka.ways.assign(confidence=0.5), crs)
    nodes = shapely.points([(d["x"], d["y"]) for _, d in g.nodes(data=True)])
    for b, o in crossing:
        for p in shapely.get_parts(shapely.intersection(b, o)):
            shared = {tuple(c) for c in b.coords} & {tuple(c) for c in o.coords}
            if isinstance(p, Point) and (p.x, p.y) not in shared:
                assert shapely.distance(nodes, p).min() > 0.5


@pytest.mark.parametrize("suffix, driver", [(".geojson", "GeoJSON"), (".gpkg", "GPKG")])
def test_tunnel_bridge_and_layer_properties_give_edges_their_level(helsinki, tmp_path, suffix, driver):
    """Helsinki's real ways with their tunnel/bridge/layer tags as properties: a levelled source.
    Each line's level is OSM's (layer, else -1 for a tunnel, +1 for a bridge, 0); the graph keeps
    lines on different levels apart, and each edge carries its level."""
    ways = helsinki.ways
    src = gpd.GeoDataFrame({"highway": ways["highway"].to_numpy(),
                            **{k: [t.get(k) for t in ways["tags"]] for k in LEVEL_KEYS}},
                           geometry=ways.geometry.values, crs=WGS84)
    path = tmp_path / f"roads{suffix}"
    src.to_file(path, driver=driver)
    got = load_candidates(path, extent_aoi(helsinki), default_confidence=0.75)
    assert len(got) == len(src)
    levels = candidate_levels(got)
    assert (levels == [way_level(t) for t in ways["tags"]]).all()
    assert {-3, -1, 0, 1} <= set(levels.tolist())  # tunnels at layer -3, bridges, the surface
    crs = extent_aoi(helsinki).metric_crs
    g = candidate_graph(got, crs)
    edges = [d for _, _, d in g.edges(data=True)]
    assert all("level" in d for d in edges) and {d["level"] for d in edges} == set(levels.tolist())
    # lines on different levels that meet end to end (a ramp into a tunnel) are two edges
    assert g.number_of_edges() > candidate_graph(got.drop(columns=list(LEVEL_KEYS)), crs).number_of_edges()


def test_a_source_without_level_properties_is_unlevelled(kotka, tmp_path):
    path = tmp_path / "roads.geojson"
    _frame(kotka).to_file(path, driver="GeoJSON")
    got = load_candidates(path, extent_aoi(kotka), default_confidence=0.75)
    assert not set(LEVEL_KEYS) & set(got.columns) and np.isnan(candidate_levels(got)).all()
    assert not any("level" in d for _, _, d in candidate_graph(got, extent_aoi(kotka).metric_crs).edges(data=True))


def test_the_benchmark_candidates_are_levelled_as_a_file_of_them_is(kotka, tmp_path):
    """bench/conflation.py's candidates (osmgap.conflate.gapscore) carry the ways' level tags in the
    columns a GeoJSON of them read through --candidates has."""
    exp = deletion_experiment(kotka, seed=1)
    path = tmp_path / "cands.geojson"
    exp.candidates.to_file(path, driver="GeoJSON")
    read = load_candidates(path, exp.aoi, default_confidence=0.75)
    assert set(LEVEL_KEYS) <= set(exp.candidates.columns)
    assert (candidate_levels(exp.candidates) == candidate_levels(read)).all()
    assert (candidate_levels(exp.candidates) != 0).any()  # Kotka has bridges


@pytest.mark.parametrize("suffix, driver", [(".geojson", "GeoJSON"), (".gpkg", "GPKG")])
def test_values_outside_the_vocabulary_are_dropped_with_one_warning(helsinki, tmp_path, caplog, suffix, driver):
    """Real Helsinki ways with their real level tags, four of them given hostile values: those
    values are dropped (the line keeps its geometry: a 'road' of unknown level with the default
    confidence), every other line keeps its own, and one warning names the file and counts them."""
    ways = helsinki.ways
    src = gpd.GeoDataFrame({"highway": ways["highway"].to_numpy().copy(), "confidence": np.full(len(ways), "0.8"),
                            **{k: [t.get(k) for t in ways["tags"]] for k in LEVEL_KEYS}},
                           geometry=ways.geometry.values, crs=WGS84)
    src.loc[0, "tunnel"] = "yes;highway=motorway;name=Injected Name;fixme=ok to upload"
    src.loc[1, "layer"] = "7"
    src.loc[2, "highway"] = "motorway;name=Injected Name"
    src.loc[3, "confidence"] = "0.9;fixme=ok"
    path = tmp_path / f"roads{suffix}"
    src.to_file(path, driver=driver)
    with caplog.at_level(logging.WARNING):
        got = load_candidates(path, extent_aoi(helsinki), default_confidence=0.75)
    assert len(got) == len(src)
    assert pd.isna(got.loc[0, "tunnel"]) and pd.isna(got.loc[1, "layer"]) and got.loc[2, "highway"] == "road"
    assert got.loc[3, "confidence"] == 0.75 and (got.loc[4:, "confidence"] == 0.8).all()
    levels = candidate_levels(got)
    assert (levels[4:] == [way_level(t) for t in ways["tags"].iloc[4:]]).all()
    assert (got.loc[4:, "highway"].to_numpy() == src.loc[4:, "highway"].to_numpy()).all()
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warning.startswith(f"{path}: dropped 4 value(s)")
    assert "(confidence: 1, highway: 1, layer: 1, tunnel: 1)" in warning
