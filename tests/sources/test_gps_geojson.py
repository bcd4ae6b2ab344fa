"""GeoJSON GPS traces, written from real Chicago UIC shuttle trips as GPX-to-GeoJSON converters
(togeojson, ogr2ogr, QGIS) write them, read back: they must give the same points, times and trips
as the mapconstruction files they came from. Malformed files fail with one InputError line naming
the file and the feature."""
from __future__ import annotations

import gzip
import json
import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from osmgap.errors import InputError
from osmgap.sources.gps import GpsSource, read_file, read_gps
from osmgap.sources.gps_layout import gps_files_in
from tests.sources.chicago_trips import UTM, chicago_trips

TRIPS = (3, 5, 7)


@pytest.fixture(scope="module")
def trips(chicago_gps) -> dict[int, pd.DataFrame]:
    """Real trips 3, 5 and 7: x, y (UTM), t (unix seconds), lon, lat."""
    return chicago_trips(chicago_gps, TRIPS)


def _iso(t: float) -> str:
    return pd.Timestamp(t, unit="s", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def _line(trip: pd.DataFrame) -> list[list[float]]:
    return [[round(a, 7), round(b, 7), 181.5] for a, b in zip(trip.lon, trip.lat)]  # elevation, as GPX has it


def _write(path: Path, doc: object) -> Path:
    text = json.dumps(doc)
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def _collection(*features: dict) -> dict:
    return {"type": "FeatureCollection", "features": list(features)}


def _feature(geometry: dict, **props: object) -> dict:
    return {"type": "Feature", "properties": props, "geometry": geometry}


def _togeojson(trips: dict[int, pd.DataFrame]) -> dict:
    """togeojson's output for a GPX of three tracks: trip 3 a LineString with ISO coordTimes, trips
    5 and 7 two segments of one track, a MultiLineString with a list of unix-second times per part
    (as newer converters nest them under coordinateProperties)."""
    a, b, c = (trips[k] for k in TRIPS)
    return _collection(
        _feature({"type": "LineString", "coordinates": _line(a)}, name="trip 3", coordTimes=[_iso(t) for t in a.t]),
        _feature({"type": "MultiLineString", "coordinates": [_line(b), _line(c)]}, name="trips 5 and 7",
                 coordinateProperties={"times": [b.t.tolist(), c.t.tolist()]}))


@pytest.mark.parametrize("name", ["track.geojson", "track.json", "track.geojson.gz"])
def test_lines_are_trips_with_their_times_like_the_mapconstruction_files(trips, chicago_gps, tmp_path, name):
    """Each LineString and each part of a MultiLineString is a trip, timed by coordTimes/times;
    read as the mapconstruction trips they were written from (to 1e-7 degrees, times exact)."""
    got = read_gps([_write(tmp_path / name, _togeojson(trips))], GpsSource(crs=UTM))  # --gps-crs: not for GeoJSON
    want = read_gps([chicago_gps / "trips" / f"trip_{k}.txt" for k in TRIPS], GpsSource(crs=UTM))
    assert got.trips == 3 and len(got) == len(want)
    np.testing.assert_array_equal(got.trip, want.trip)
    np.testing.assert_allclose(got.x, want.x, atol=2e-7)
    np.testing.assert_allclose(got.y, want.y, atol=2e-7)
    np.testing.assert_array_equal(got.t, want.t)


def test_lines_without_times_and_a_bare_geometry(trips, tmp_path):
    """No time list: the trip has no times. A file holding one bare LineString is one trip."""
    a = trips[3]
    got = read_file(_write(tmp_path / "bare.geojson", {"type": "LineString", "coordinates": _line(a)}))
    assert got.trips == 1 and len(got) == len(a) and np.isnan(got.t).all()
    np.testing.assert_allclose(got.x, a.lon, atol=2e-7)


def test_points_grouped_by_a_vehicle_property_and_cut_where_silent(trips, tmp_path, caplog):
    """Point features (a tracker's export): a ``vehicle_id`` property groups them, fixes of two
    vehicles interleaved in time; one vehicle drove trips 3 and 7 (days apart): two trips, read as
    the mapconstruction files are."""
    rows = pd.concat([trips[3].assign(v="bus-1"), trips[5].assign(v="bus-2"), trips[7].assign(v="bus-1")])
    rows = rows.sort_values("t", kind="stable")
    doc = _collection(*(_feature({"type": "Point", "coordinates": [r.lon, r.lat]}, vehicle_id=r.v, time=_iso(r.t))
                        for r in rows.itertuples()))
    with caplog.at_level(logging.INFO, logger="osmgap.sources.gps_geojson"):
        got = read_file(_write(tmp_path / "fleet.geojson", doc))
    assert got.trips == 3 and got.steps_back_in_time()[0] == 0
    for k in TRIPS:
        mine = got.trip[np.flatnonzero(np.isclose(got.t, trips[k].t.iloc[0]))[0]]
        np.testing.assert_array_equal(got.t[got.trip == mine], trips[k].t)
        np.testing.assert_allclose(got.x[got.trip == mine], trips[k].lon)
    assert "points grouped by property 'vehicle_id': 2 vehicles cut into 3 trips where silent" in caplog.text


def test_points_without_a_trip_property_are_lone_observations(trips, tmp_path, caplog):
    """As GPX waypoints: every point a trip of its own, and the log says why nothing can be routed
    (a unique ``id`` per feature is a number, not a trip)."""
    a = trips[3]
    doc = _collection(*(_feature({"type": "Point", "coordinates": [r.lon, r.lat, 180]}, id=i,
                                 time=int(r.t) if i % 2 else f"{r.t:.0f}")  # unix seconds, some quoted
                        for i, r in enumerate(a.itertuples())))
    got = read_file(_write(tmp_path / "points.geojson", doc))
    assert got.trips == len(a)
    np.testing.assert_array_equal(got.t, a.t)
    warning = next(r.getMessage() for r in caplog.records if "lone observation" in r.getMessage())
    assert f"points.geojson: {len(a)} Point features and property 'id' holds a different value on every point" in warning
    assert "--gps-columns trip=PROPERTY" in warning and "\n" not in warning
    caplog.clear()  # beside a track they are its waypoints (togeojson writes GPX wpt so): no warning
    doc["features"].append(_feature({"type": "LineString", "coordinates": _line(a)}))
    assert read_file(_write(tmp_path / "both.geojson", doc)).trips == len(a) + 1
    assert "lone observation" not in caplog.text


def test_legacy_crs_member_is_honoured(trips, chicago_gps, tmp_path):
    """ogr2ogr writes a projected layer with a 2008-style ``crs`` member: read in that CRS."""
    a = trips[3]
    doc = _collection(_feature({"type": "LineString", "coordinates": a[["x", "y"]].values.tolist()},
                               times=a.t.tolist()))
    doc["crs"] = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32616"}}
    got = read_gps([_write(tmp_path / "utm.geojson", doc)])
    want = read_gps([chicago_gps / "trips" / "trip_3.txt"], GpsSource(crs=UTM))
    np.testing.assert_allclose(got.x, want.x, atol=1e-9)
    np.testing.assert_allclose(got.y, want.y, atol=1e-9)
    doc["crs"] = {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}}  # WGS84 named: degrees
    with pytest.raises(InputError, match=r"point 1: \(444980, 4\.63548e\+06\) is not lon/lat degrees, as GeoJSON"):
        read_file(_write(tmp_path / "wgs.geojson", doc))


LINE = {"type": "LineString", "coordinates": [[-87.65, 41.87], [-87.651, 41.871]]}


@pytest.mark.parametrize("doc, problem", [
    (_collection(_feature({"type": "Polygon", "coordinates": [[[-87.65, 41.87], [-87.6, 41.87], [-87.6, 41.9],
                                                                [-87.65, 41.87]]]})),
     "feature 1: a Polygon is no GPS trace"),
    (_collection(_feature(LINE, coordTimes=["2011-04-06T12:52:33Z"])), "feature 1: coordTimes holds 1 times for 2 points"),
    (_collection(_feature({"type": "MultiLineString", "coordinates": [LINE["coordinates"]] * 2},
                          coordTimes=[[1, 2], [3]])), "feature 1, line 2: coordTimes holds 1 times for 2 points"),
    (_collection(_feature(LINE), _feature({"type": "LineString", "coordinates": [[-87.65, 41.87], ["-87.6", 41.8]]})),
     r"feature 2, point 2: \[\"-87.6\", 41.8\] is not a position of finite numbers"),
    (_collection(_feature({"type": "Point", "coordinates": [-87.65]})), "feature 1, point 1: .* is not a position"),
    (_collection(_feature(LINE, times=["2011-04-06T12:52:33Z", "noon"])), "feature 1, point 2: time 'noon' is not ISO 8601"),
    (_collection(_feature({"type": "Point", "coordinates": [-87.65, 41.87]}, time="noon")),
     "feature 1: time 'noon' is not ISO 8601"),
    (_collection(), "holds no LineString, MultiLineString or Point feature"),
    (_collection(_feature(None)), "holds no LineString, MultiLineString or Point feature"),
    ({"type": "Topology"}, "not GeoJSON: expected a FeatureCollection"),
    (_collection(_feature({"type": "LineString", "coordinates": [[446097.6, 4636565.4], [446098.6, 4636565.4]]})),
     r"point 1: \(446098, 4\.63657e\+06\) is not lon/lat degrees, as GeoJSON is .*--gps-crs does not apply"),
    ({**_collection(_feature(LINE)), "crs": {"type": "link", "properties": {"href": "x.prj"}}},
     "its 'crs' member names no CRS"),
    ({**_collection(_feature(LINE)), "crs": {"type": "name", "properties": {"name": "EPSG:999999"}}},
     "unknown CRS 'EPSG:999999'"),
])
def test_malformed_geojson_raises_one_line_errors(tmp_path, doc, problem):
    path = _write(tmp_path / "bad.geojson", doc)
    with pytest.raises(InputError, match=problem) as err:
        read_file(path, GpsSource(crs=UTM))
    assert str(path) in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("body, problem", [
    ("{\"type\": \"FeatureCollection\", \"features\": [", "not a GeoJSON file"),
    ("[" * (sys.getrecursionlimit() + 100) + "]" * (sys.getrecursionlimit() + 100), "JSON nested too deeply to read"),
])
def test_broken_json_is_one_line_error(tmp_path, body, problem):
    path = tmp_path / "broken.geojson"
    path.write_text(body)
    with pytest.raises(InputError, match=problem) as err:
        read_file(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_folder_reads_geojson_but_not_a_json_that_is_none(trips, tmp_path, caplog):
    """A folder's .geojson is read, a .json only if it is GeoJSON (a manifest beside the traces is
    skipped, and said)."""
    _write(tmp_path / "a.geojson", _togeojson(trips))
    _write(tmp_path / "b.json", _collection(_feature(LINE)))
    _write(tmp_path / "manifest.json", {"source": "fleet export", "vehicles": 2})
    assert [f.name for f in gps_files_in(tmp_path)] == ["a.geojson", "b.json"]
    assert "skipped 1 file that osmgap does not read as GPS traces" in caplog.text and "manifest.json" in caplog.text
    assert read_gps([tmp_path]).trips == 4
