"""Road sources as people publish them, from audit C of ``--candidates``: a road given twice, a
score column with one value over 1, GIS booleans for bridges, a GeoPackage of many line layers,
empty-value markers, empty confidences, a projected GeoParquet, polygons, odd file names. Every
file is real Kotka OSM ways written in that form."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely.geometry import Polygon

from osmgap.cli import main
from osmgap.core.datamodel import WGS84
from osmgap.core.osmtags import CONFIDENCE_ASSUMED, way_level
from osmgap.errors import InputError
from osmgap.graph.lines import candidate_graph
from osmgap.sources.candidates import candidate_levels, confidence_assumed, load_candidates
from osmgap.tools.summary_lines import summary_lines
from tests.jobs.test_cli_candidates import BBOX, DELETED, _kotka_without
from tests.roads import as_candidates, extent_aoi


def _roads(kotka, **columns: object) -> gpd.GeoDataFrame:
    """Kotka's real road ways with their class and the given columns."""
    return gpd.GeoDataFrame({"highway": kotka.ways["highway"].to_numpy().copy(), **columns},
                            geometry=kotka.ways.geometry.values, crs=WGS84)


def _load(path: Path, kotka) -> gpd.GeoDataFrame:
    return load_candidates(path, extent_aoi(kotka), default_confidence=0.75)


def test_a_road_given_twice_is_one_road(kotka):
    """Every way twice, the copy reversed: merged end to end, the copies made lines that ran there
    and back (A->B->A), twice a road's length; now the graph is the one of the ways given once."""
    once = as_candidates(kotka.ways)
    copy = once.set_geometry(once.geometry.reverse())
    twice = gpd.GeoDataFrame(gpd.pd.concat([once, copy], ignore_index=True), crs=WGS84)
    crs = extent_aoi(kotka).metric_crs
    g1, g2 = candidate_graph(once, crs), candidate_graph(twice, crs)
    lengths = sorted(round(d["length"], 3) for _, _, d in g2.edges(data=True))
    assert lengths == sorted(round(d["length"], 3) for _, _, d in g1.edges(data=True))
    assert all(shapely.is_simple(d["geometry"]) or d["geometry"].is_closed for _, _, d in g2.edges(data=True))


def test_one_score_over_1_does_not_make_the_column_percent(kotka, tmp_path, caplog):
    """A 0-1 score with one 1.2 in it was read as percent: every line 0.006-0.009, every gap dropped."""
    scores = np.where(np.arange(len(kotka.ways)) % 2, 0.9, 0.6)
    scores[0] = 1.2
    path = tmp_path / "scored.geojson"
    _roads(kotka, score=scores).to_file(path, driver="GeoJSON")
    with caplog.at_level(logging.WARNING):
        got = _load(path, kotka)
    assert set(got["confidence"].round(6)) == {0.6, 0.9, 1.0} and got.attrs["confidence_scale"] == "0-1"
    assert "1 'score' value(s) over 1 (up to 1.2)" in caplog.text
    assert any("over 1" in w for w in got.attrs["warnings"])


def test_a_percent_column_of_whole_numbers_is_percent(kotka, tmp_path):
    """Most lines scored 0 or 1 % (a weak detector), a few 80: percent, as whole numbers say."""
    scores = np.where(np.arange(len(kotka.ways)) % 10 == 0, 80, np.arange(len(kotka.ways)) % 2)
    path = tmp_path / "pct.geojson"
    _roads(kotka, score=scores).to_file(path, driver="GeoJSON")
    got = _load(path, kotka)
    assert got["confidence"].max() == pytest.approx(0.8) and got.attrs["confidence_scale"] == "0-100"


def _bridge_tunnel(kotka) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which ways are bridges and tunnels, and the level OSM gives a way tagged only so."""
    tags = kotka.ways["tags"]
    bridge = np.asarray([t.get("bridge") not in (None, "no") for t in tags])
    tunnel = np.asarray([t.get("tunnel") not in (None, "no") for t in tags])
    expected = [way_level({"bridge": "yes"} if b else {}) if not t else -1 for b, t in zip(bridge, tunnel)]
    return bridge, tunnel, np.asarray(expected, float)


@pytest.mark.parametrize("form", ["bool_gpkg", "int_shp", "yn_gpkg", "text_geojson"])
def test_gis_booleans_for_bridge_and_tunnel_are_osm_levels(kotka, tmp_path, form):
    """bridge/tunnel as GeoPackage booleans, Shapefile 1/0, Y/N, 'true'/'false': every value was
    dropped and every bridge read as a road on the surface (a false missing road under each OSM bridge)."""
    bridge, tunnel, expected = _bridge_tunnel(kotka)
    assert bridge.any() and not tunnel.all()  # Kotka's roads have bridges (a tunnel column all false says "surface")
    encode = {"bool_gpkg": lambda v: v, "int_shp": lambda v: v.astype(int),
              "yn_gpkg": lambda v: np.where(v, "Y", "N"), "text_geojson": lambda v: np.where(v, "True", "false")}[form]
    suffix, driver = {"bool_gpkg": (".gpkg", "GPKG"), "int_shp": (".shp", "ESRI Shapefile"),
                      "yn_gpkg": (".gpkg", "GPKG"), "text_geojson": (".geojson", "GeoJSON")}[form]
    path = tmp_path / f"roads{suffix}"
    names = {"BRIDGE": encode(bridge), "TUNNEL": encode(tunnel)} if form == "yn_gpkg" else \
        {"bridge": encode(bridge), "tunnel": encode(tunnel)}
    _roads(kotka, **names).to_file(path, driver=driver)
    got = _load(path, kotka)
    assert len(got) == len(kotka.ways) and (candidate_levels(got) == expected).all()
    assert not got.attrs["warnings"]


def test_a_layer_column_of_names_and_a_float_layer_column(kotka, tmp_path):
    """QGIS's "Merge vector layers" writes the source layer's name into ``layer``: no level, so
    the source is unlevelled (it was "levelled", every line on the surface, bridges re-suggested);
    a float layer column (2.0) is OSM's layer."""
    path = tmp_path / "merged.geojson"
    _roads(kotka, layer=np.full(len(kotka.ways), "kotka_roads")).to_file(path, driver="GeoJSON")
    got = _load(path, kotka)
    assert np.isnan(candidate_levels(got)).all() and "'layer' column holds no number" in got.attrs["warnings"][0]
    levels = [float(t["layer"]) if "layer" in t else np.nan for t in kotka.ways["tags"]]
    path = tmp_path / "float.gpkg"
    _roads(kotka, layer=np.asarray(levels, float)).to_file(path, driver="GPKG")
    assert (candidate_levels(_load(path, kotka)) == np.nan_to_num(levels)).all()


def test_a_level_value_that_is_dropped_leaves_the_level_unknown(kotka, tmp_path):
    """A bridge value osmgap cannot read put the line on the surface; its level is not known."""
    bridge, _, expected = _bridge_tunnel(kotka)
    values = np.where(bridge, "yes", None).astype(object)
    first = int(np.flatnonzero(bridge)[0])
    values[first] = "sort of"
    path = tmp_path / "roads.geojson"
    _roads(kotka, bridge=values).to_file(path, driver="GeoJSON")
    levels = candidate_levels(_load(path, kotka))
    assert np.isnan(levels[first]) and np.isfinite(np.delete(levels, first)).all()


def test_a_geopackage_s_road_layer_is_read_not_its_other_lines(kotka, tmp_path):
    """Roads beside another layer of lines (fences, forest edges): that layer became "missing roads"."""
    path = tmp_path / "topo.gpkg"
    roads = _roads(kotka)
    roads.to_file(path, layer="roads", driver="GPKG")
    gpd.GeoDataFrame(geometry=roads.geometry.boundary.envelope.boundary.values, crs=WGS84).to_file(
        path, layer="other_lines", driver="GPKG")
    got = _load(path, kotka)
    assert len(got) == len(roads) and "not its other layers of lines (other_lines)" in got.attrs["warnings"][0]
    unnamed = tmp_path / "unnamed.gpkg"
    roads.to_file(unnamed, layer="a", driver="GPKG")
    roads.to_file(unnamed, layer="b", driver="GPKG")
    with pytest.raises(InputError, match=r"holds 2 layers of lines \('a', 'b'\) and none is named as roads"):
        _load(unnamed, kotka)


def test_one_layer_named_as_qgis_names_it(kotka, tmp_path):
    """A file whose layers of lines have no road-like name was refused with no way to say which one
    holds the roads; QGIS's ``FILE|layername=LAYER`` reads that layer alone."""
    path = tmp_path / "topo.gpkg"
    roads = _roads(kotka)
    roads.to_file(path, layer="b", driver="GPKG")
    gpd.GeoDataFrame(geometry=roads.geometry.boundary.envelope.boundary.values, crs=WGS84).to_file(
        path, layer="a", driver="GPKG")
    with pytest.raises(InputError, match=r"name the one to read as QGIS does, FILE\|layername=LAYER"):
        _load(path, kotka)
    got = _load(f"{path}|layername=b|geometrytype=LineString", kotka)
    assert len(got) == len(roads) and not got.attrs["warnings"]
    other = _load(f"{path}|layername=a", kotka)  # the other layer, as asked: the roads' envelopes
    assert other.geometry.length.sum() > 1.5 * got.geometry.length.sum()
    with pytest.raises(InputError, match=r"topo.gpkg: has no layer 'roads' \(its layers: 'b', 'a'\)"):
        _load(f"{path}|layername=roads", kotka)
    with pytest.raises(InputError, match="names no layer"):
        _load(f"{path}|layername=", kotka)
    odd = tmp_path / "x|layername=y.geojson"  # a file so named is that file
    roads.to_file(odd, driver="GeoJSON")
    assert len(_load(odd, kotka)) == len(roads)


def test_empty_value_markers_in_highway_are_no_class(kotka, tmp_path, caplog):
    """NULL, None, nan, null, N/A, unknown: how exports write an empty cell; the lines were left out."""
    markers = ["NULL", "None", "nan", "null", "N/A", "unknown", ""]
    highway = kotka.ways["highway"].to_numpy().copy()
    highway[:len(markers)] = markers
    path = tmp_path / "roads.geojson"
    gpd.GeoDataFrame({"highway": highway}, geometry=kotka.ways.geometry.values, crs=WGS84).to_file(path)
    with caplog.at_level(logging.WARNING):
        got = _load(path, kotka)
    assert len(got) == len(kotka.ways) and (got["highway"][:len(markers)] == "road").all()
    assert "left out" not in caplog.text and "dropped" not in caplog.text


def test_a_line_without_confidence_is_assumed_not_the_source_s(kotka, tmp_path):
    """Empty or non-numeric cells got 0.75, presented as the source's own figure."""
    confidence = np.full(len(kotka.ways), 0.95, dtype=object)
    confidence[:5] = None
    confidence[5] = "high"
    path = tmp_path / "roads.geojson"
    _roads(kotka, confidence=confidence).to_file(path, driver="GeoJSON")
    got = _load(path, kotka)
    assert got.attrs["confidence_column"] == "confidence"
    assert not got["confidence_given"][:6].any() and got["confidence_given"][6:].all()
    assumed = confidence_assumed(got, list(kotka.ways.geometry[:12]))
    assert assumed[:6].all() and not assumed[6:].any()
    assert "5 line(s) give no 'confidence'" in got.attrs["warnings"][0]


def test_a_projected_geoparquet_s_bbox_is_compared_in_its_crs(kotka, tmp_path):
    """GeoParquet 1.1's bbox column is in the file's CRS (metres): compared with lon/lat, refused."""
    path = tmp_path / "roads.parquet"
    _roads(kotka).to_crs("EPSG:3067").to_parquet(path, write_covering_bbox=True)
    assert len(_load(path, kotka)) == len(kotka.ways)


def test_polygons_are_left_out_with_a_warning_and_collections_read(kotka, tmp_path):
    """Polygons and GeometryCollections were skipped without a word (12 deleted streets gone)."""
    doc = json.loads(_roads(kotka).to_json())
    first, second = doc["features"][0], doc["features"][1]
    ring = first["geometry"]["coordinates"] + [first["geometry"]["coordinates"][0]]
    first["geometry"] = {"type": "Polygon", "coordinates": [ring]}
    second["geometry"] = {"type": "GeometryCollection", "geometries": [second["geometry"]]}
    path = tmp_path / "roads.geojson"
    path.write_text(json.dumps(doc))
    got = _load(path, kotka)
    assert len(got) == len(kotka.ways) - 1
    assert got.attrs["warnings"] == [f"{path}: 1 feature(s) that are no line left out (Polygon: 1)"]


@pytest.mark.parametrize("name", ["roads;v2.geojson", "roads!v2.gpkg", "roads\nv2.geojson"])
def test_a_file_name_gdal_reads_as_a_uri_is_read(kotka, tmp_path, name):
    path = tmp_path / name
    _roads(kotka).to_file(tmp_path / "plain.gpkg" if name.endswith("gpkg") else tmp_path / "plain.geojson")
    path.write_bytes((tmp_path / ("plain.gpkg" if name.endswith("gpkg") else "plain.geojson")).read_bytes())
    assert len(_load(path, kotka)) == len(kotka.ways)


def test_a_shapefile_named_as_a_uri_is_refused_by_name(kotka, tmp_path):
    path = tmp_path / "roads;v2.shp"
    _roads(kotka).to_file(tmp_path / "plain.shp")
    path.write_bytes((tmp_path / "plain.shp").read_bytes())
    with pytest.raises(InputError, match="a Shapefile whose path holds ';'"):
        _load(path, kotka)


def test_gaps_dropped_for_low_confidence_are_no_complete_map():
    """20 possible roads dropped for their confidence ended "the area looks completely mapped"."""
    summary = {"evidence": "candidates", "candidates": {"km": 25.6, "confidence_column": "score"},
               "coverage": {"area_analysed_km2": 2.9}, "osm_road_km": 23.0, "osm_ways": 132, "suggestions": 0,
               "conflation": {"tolerance_m": 2.5, "dropped": {"low_confidence": 20}}}
    last = summary_lines(summary, Path("out"))[2]
    assert "completely mapped" not in last.replace("not a completely mapped", "")
    assert last.startswith("Nothing suggested: 20 possible roads") and "'score' column" in last


def test_a_run_says_what_the_reader_warned_and_which_confidences_are_assumed(data, kotka, tmp_path):
    """End to end: the deleted ways given twice and without a confidence, beside a polygon: one
    suggestion per road, each saying its confidence is assumed, and the reader's warnings in
    summary.json, not only on stderr."""
    osm = _kotka_without(data, DELETED, tmp_path / "edited.osm")
    deleted = kotka.ways["osm_id"].isin(DELETED).to_numpy()
    roads = _roads(kotka, confidence=np.where(deleted, None, 0.9).astype(object))
    doc = json.loads(gpd.GeoDataFrame(gpd.pd.concat([roads, roads[deleted]]), crs=WGS84).to_json())
    doc["features"].append({"type": "Feature", "properties": {}, "geometry": Polygon(
        [(26.95, 60.53), (26.951, 60.53), (26.951, 60.531)]).__geo_interface__})
    path = tmp_path / "roads.geojson"
    path.write_text(json.dumps(doc))
    out = tmp_path / "out"
    assert main(["diff", "--aoi", BBOX, "--osm", str(osm), "--candidates", str(path), "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    said = [w for w in summary["warnings"] if str(path) in w]
    assert len(said) == 2 and "(Polygon: 1)" in said[0] and "give no 'confidence'" in said[1]
    features = json.loads((out / "suggestions.geojson").read_text())["features"]
    roads_found = [f for f in features if f["properties"]["kind"] == "missing_road"]
    assert roads_found and all(f["properties"]["evidence_confidence_source"] == CONFIDENCE_ASSUMED
                               for f in roads_found)
    assert all(shapely.is_simple(shapely.geometry.shape(f["geometry"])) for f in roads_found)
