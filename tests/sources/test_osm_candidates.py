"""An OSM extract as ``--candidates`` (an older or a third-party one), and the one class filter both
sides share: OSM fed back as its own candidates, as .pbf, .osm or a GeoJSON export of every
highway=* way, gives no suggestion (Helsinki has 159 highway=trail ways, which the OSM reader
never loads; the candidates reader once kept them as 'road', and this export then gave 62 suggestions)."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import geopandas as gpd
import numpy as np
import osmium
import pytest
from shapely.geometry import LineString

from osmgap.cli import main
from osmgap.core.datamodel import WGS84
from osmgap.core.osmtags import LEVEL_KEYS, ROAD_CLASSES, way_level
from osmgap.sources.candidates import candidate_levels, load_candidates
from tests.roads import extent_aoi


def _bbox(path: Path) -> str:
    """The extract's own extent as a bbox AOI, a little inside it."""
    xy = np.array([(n.lon, n.lat) for n in osmium.FileProcessor(str(path), osmium.osm.NODE) if n.location.valid()])
    (minx, miny), (maxx, maxy) = xy.min(axis=0), xy.max(axis=0)
    pad_x, pad_y = 0.05 * (maxx - minx), 0.05 * (maxy - miny)
    return f"{minx + pad_x},{miny + pad_y},{maxx - pad_x},{maxy - pad_y}"


def _diff(aoi: str, osm: Path, candidates: Path, out: Path) -> dict:
    assert main(["diff", "--aoi", aoi, "--osm", str(osm), "--candidates", str(candidates), "--out", str(out)]) == 0
    return json.loads((out / "summary.json").read_text())


def test_an_extract_is_read_as_candidates_exactly_as_the_osm_input_is(helsinki, data, caplog):
    """Same ways, same classes (trail, footway, ... left out), each on its OSM level. The reader's
    warning about ways cut at the extract's edge is the OSM input's (no road is suggested there):
    a candidates extract does not give it."""
    with caplog.at_level(logging.WARNING):
        got = load_candidates(data / "osm" / "helsinki.osm.pbf", extent_aoi(helsinki), default_confidence=0.75)
    assert caplog.records == [] and helsinki.provenance["unreadable_ways"] > 0
    assert set(got["highway"]) <= ROAD_CLASSES and set(got["highway"]) == set(helsinki.ways["highway"])
    crs = extent_aoi(helsinki).metric_crs
    assert got.to_crs(crs).length.sum() == pytest.approx(helsinki.ways.to_crs(crs).length.sum(), rel=1e-6)
    assert set(LEVEL_KEYS) <= set(got.columns)  # OSM knows its levels: a levelled source
    assert sorted(candidate_levels(got)) == sorted(way_level(t) for t in helsinki.ways["tags"])
    assert (got["confidence"] == 0.75).all()


@pytest.mark.parametrize("name", ["kotka.osm.pbf", "west-oakland.osm"])
def test_osm_fed_back_as_its_own_candidates_gives_no_suggestion(data, tmp_path, name):
    path = data / "osm" / name
    summary = _diff(_bbox(path), path, path, tmp_path / "out")
    assert summary["evidence"] == "candidates" and summary["candidates"]["km"] > 1.0
    assert summary["suggestions"] == 0


@pytest.fixture(scope="module")
def export(data, tmp_path_factory) -> Path:
    """Every highway=* way of the real Helsinki extract, as ogr2ogr or QGIS would export it (footways,
    steps, platforms, over 100 trails, a 'crossing' way included)."""
    pbf = data / "osm" / "helsinki.osm.pbf"
    ways = [(w.tags["highway"], LineString([(n.lon, n.lat) for n in w.nodes]))
            for w in osmium.FileProcessor(str(pbf), osmium.osm.NODE | osmium.osm.WAY).with_locations()
            if w.is_way() and "highway" in w.tags and len(w.nodes) > 1 and all(n.location.valid() for n in w.nodes)]
    frame = gpd.GeoDataFrame({"highway": [h for h, _ in ways]}, geometry=[g for _, g in ways], crs=WGS84)
    assert (frame["highway"] == "trail").sum() > 100 and not set(frame["highway"]) <= ROAD_CLASSES
    path = tmp_path_factory.mktemp("export") / "helsinki-highways.geojson"
    frame.to_file(path, driver="GeoJSON")
    return path


def test_a_geojson_export_of_every_highway_way_gives_no_suggestion(data, tmp_path, export):
    pbf = data / "osm" / "helsinki.osm.pbf"
    summary = _diff(_bbox(pbf), pbf, export, tmp_path / "out")
    assert summary["suggestions"] == 0 and summary["candidates"]["km"] > 1.0


def test_classes_osm_does_not_load_are_left_out_and_the_unusual_ones_named(helsinki, export, caplog):
    """Footways, steps, ... are left out quietly, as every candidate source has them; 'trail' and
    'crossing' (no OSM road class, not common either) are named, so a source with a class
    vocabulary of its own does not lose its lines unnoticed."""
    with caplog.at_level(logging.WARNING):
        got = load_candidates(export, extent_aoi(helsinki), default_confidence=0.75)
    assert set(got["highway"]) == set(helsinki.ways["highway"])
    given = gpd.read_file(export)["highway"].value_counts()
    trails, crossings = int(given["trail"]), int(given["crossing"])
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warning == (f"{export}: left out {trails + crossings} line(s) whose highway is no road class "
                       f"(trail: {trails}, crossing: {crossings}); OSM ways of such a class are not read either")
