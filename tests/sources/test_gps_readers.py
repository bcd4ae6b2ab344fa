"""GPS readers on real traces: GPX, CSV and mapconstruction files are written from real Chicago
UIC shuttle trips (coordinates and times as recorded), then read back; malformed files fail
with one clear InputError naming the file and the row."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pyproj import Transformer
from shapely.geometry import box

from osmgap.cli import main
from osmgap.core.aoi import Aoi
from osmgap.errors import InputError
from osmgap.sources.gps import GpsSource, load_traces, parse_column_mapping, read_file, read_gps

UTM = "EPSG:32616"


@pytest.fixture(scope="module")
def trip(chicago_gps) -> pd.DataFrame:
    """Real trip 3: x, y (UTM), t, and lon/lat."""
    raw = np.loadtxt(chicago_gps / "trips" / "trip_3.txt")
    lon, lat = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True).transform(raw[:, 0], raw[:, 1])
    return pd.DataFrame({"x": raw[:, 0], "y": raw[:, 1], "t": raw[:, 2], "lon": lon, "lat": lat})


def _iso(t: float) -> str:
    return pd.Timestamp(t, unit="s", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def _gpx(trip: pd.DataFrame, path: Path) -> Path:
    half = len(trip) // 2
    pts = "".join(f'<trkpt lat="{r.lat:.7f}" lon="{r.lon:.7f}"><time>{_iso(r.t)}</time></trkpt>'
                  for r in trip.iloc[:half].itertuples())
    rte = "".join(f'<rtept lat="{r.lat:.7f}" lon="{r.lon:.7f}"/>' for r in trip.iloc[half:].itertuples())
    wpt = "".join(f'<wpt lat="{r.lat:.7f}" lon="{r.lon:.7f}"><name>stop</name></wpt>' for r in trip.iloc[:3].itertuples())
    path.write_text('<?xml version="1.0"?><gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1">'
                    f"{wpt}<trk><name>a</name><trkseg>{pts}</trkseg></trk><rte>{rte}</rte></gpx>")
    return path


def test_gpx_tracks_routes_and_waypoints(trip, tmp_path):
    t = read_file(_gpx(trip, tmp_path / "t.gpx"))
    half = len(trip) // 2
    assert len(t) == len(trip) + 3 and t.trips == 5  # 3 waypoints + 1 track segment + 1 route
    np.testing.assert_allclose(np.sort(t.x), np.sort(np.r_[trip.lon, trip.lon[:3]]), atol=1e-6)
    timed = np.isfinite(t.t)
    assert timed.sum() == half  # only the track points carry a time
    np.testing.assert_allclose(np.sort(t.t[timed]), np.sort(trip.t[:half]))
    for k in np.unique(t.trip):  # each trip's points are contiguous
        where = np.flatnonzero(t.trip == k)
        assert np.all(np.diff(where) == 1)


def test_files_in_different_crs_read_together(trip, chicago_gps, tmp_path):
    """A GPX (always WGS84) beside a mapconstruction trip in UTM: both end up in lon/lat."""
    t = read_gps([_gpx(trip, tmp_path / "t.gpx"), chicago_gps / "trips" / "trip_3.txt"], GpsSource(crs=UTM))
    assert len(t) == 2 * len(trip) + 3 and t.trips == 6
    np.testing.assert_allclose(t.x[t.trip == t.trip[-1]], trip.lon, atol=1e-7)


def test_csv_with_column_mapping_and_iso_time(trip, tmp_path):
    csv = tmp_path / "fleet.csv"
    frame = pd.DataFrame({"VEH": np.where(np.arange(len(trip)) % 2, "bus-7", "bus-9"), "LONGITUDE": trip.lon,
                          "LATITUDE": trip.lat, "STAMP": [_iso(v) for v in trip.t], "KMH": 36.0})
    frame.to_csv(csv, index=False)
    mapping = parse_column_mapping("lon=LONGITUDE, lat=LATITUDE,time=STAMP,speed=KMH,trip=VEH")
    t = read_file(csv, GpsSource(columns=mapping))
    assert len(t) == len(trip) and t.trips == 2
    assert np.all(np.diff(t.trip) >= 0)  # grouped by vehicle, rows in order within it
    odd = t.trip == t.trip[-1]
    np.testing.assert_allclose(np.sort(t.t), np.sort(trip.t))
    assert np.all(np.diff(t.t[odd]) > 0) and np.all(t.speed == 36.0)
    with pytest.raises(InputError, match="maps lat to 'NOPE'"):
        read_file(csv, GpsSource(columns={"lon": "LONGITUDE", "lat": "NOPE"}))
    with pytest.raises(InputError, match="FIELD=COLUMN"):
        parse_column_mapping("longitude:LON")


def test_csv_default_names_and_stated_crs(trip, tmp_path):
    csv = tmp_path / "utm.csv"
    trip.rename(columns={"t": "timestamp"})[["x", "y", "timestamp"]].to_csv(csv, index=False)
    t = read_file(csv, GpsSource(crs=UTM))
    np.testing.assert_allclose(t.x, trip.x)
    np.testing.assert_allclose(t.t, trip.t)


@pytest.mark.parametrize("interleaved", [False, True])
def test_csv_trips_are_read_contiguous_in_row_order(trip, tmp_path, interleaved):
    """Two real trips in one CSV, grouped by trip or with their rows interleaved (as a database
    export may give them): either way each trip comes out whole, its rows in file order."""
    a, b = trip.assign(trip="a"), trip.assign(trip="b", x=trip.x + 1000.0)
    rows = pd.concat([a, b]).sort_index(kind="stable") if interleaved else pd.concat([a, b])
    csv = tmp_path / "two.csv"
    rows.rename(columns={"t": "timestamp"})[["trip", "x", "y", "timestamp"]].to_csv(csv, index=False)
    t = read_file(csv, GpsSource(crs=UTM))
    assert t.trips == 2 and np.all(np.diff(t.trip) >= 0)
    np.testing.assert_allclose(t.x, np.r_[trip.x, trip.x + 1000.0])
    np.testing.assert_allclose(t.t, np.r_[trip.t, trip.t])


def test_fields_a_csv_lacks_cost_no_memory_per_fix(trip, tmp_path, monkeypatch):
    """A CSV of millions of fixes without speed and bearing, read in chunks: those fields stay one
    NaN seen n times (stop 41: two arrays of NaN were 16 bytes a fix), also in a selection of the
    fixes; a file that has them reads its values."""
    import osmgap.sources.gps as gps

    monkeypatch.setattr(gps, "CSV_CHUNK_ROWS", 30)  # the real trip (100 fixes) in four chunks
    bare, full = tmp_path / "bare.csv", tmp_path / "full.csv"
    trip.rename(columns={"t": "timestamp"})[["x", "y", "timestamp"]].to_csv(bare, index=False)
    speed = np.arange(len(trip), dtype=float) / 10
    trip.assign(speed=speed).rename(columns={"t": "timestamp"})[["x", "y", "timestamp", "speed"]].to_csv(full, index=False)
    t = read_file(bare, GpsSource(crs=UTM))
    assert len(t) == len(trip) >= 100
    some = t.take(np.arange(len(t)) % 3 == 0)
    for traces in (t, some, t.take(np.arange(5, 40)), t.take(slice(10, 20))):
        for field in (traces.speed, traces.bearing):
            assert field.strides == (0,) and len(field) == len(traces.x) and np.isnan(field).all()
    np.testing.assert_allclose(some.x, trip.x[::3])
    assert len(t.take(np.zeros(len(t), bool)).speed) == 0
    with_speed = read_file(full, GpsSource(crs=UTM))
    np.testing.assert_allclose(with_speed.speed, speed)
    assert with_speed.speed.strides != (0,) and with_speed.bearing.strides == (0,)


@pytest.mark.parametrize("unit, per_second", [("milliseconds", 1e3), ("microseconds", 1e6), ("nanoseconds", 1e9)])
def test_unix_times_in_finer_units_are_read_as_seconds(trip, tmp_path, caplog, unit, per_second):
    """Phone apps and databases often export unix times in milliseconds; read as seconds, every
    step of a trip looked like minutes of silence and cut each fix off alone."""
    csv = tmp_path / "phone.csv"
    pd.DataFrame({"lon": trip.lon, "lat": trip.lat, "time": (trip.t * per_second).astype(np.int64)}).to_csv(csv, index=False)
    t = read_file(csv)
    np.testing.assert_allclose(t.t, trip.t)
    assert f"times read as {unit}" in caplog.text and "phone.csv" in caplog.text
    caplog.clear()
    trip[["lon", "lat", "t"]].rename(columns={"t": "time"}).to_csv(csv, index=False)  # seconds stay seconds
    np.testing.assert_allclose(read_file(csv).t, trip.t)
    assert "times read as" not in caplog.text


def test_mapconstruction_directory_reads_every_trip(chicago_gps):
    t = read_gps([chicago_gps / "trips"], GpsSource(crs=UTM))
    assert len(t) == 118_360 and t.trips == 889  # the data README's counts
    assert -87.70 < t.x.min() and t.x.max() < -87.60 and 41.85 < t.y.min() and t.y.max() < 41.90  # UIC, Chicago
    with pytest.raises(InputError, match="give --gps-crs"):
        read_gps([chicago_gps / "trips" / "trip_0.txt"])


@pytest.mark.parametrize("name,body,problem", [
    ("bad.txt", "446097.6 4636565.4 1301806255.0\n446077.0 oops 1301806259.0\n", r"line 2: expected 'x y unix_time'"),
    ("short.txt", "446097.6 4636565.4 1301806255.0\n446077.0 4636565.1\n", r"line 2: expected 'x y unix_time'"),
    ("empty.txt", "", "holds no GPS points"),
    ("bad.csv", "lon,lat\n-87.65,41.87\n-87.65,north\n", r"row 3: lat 'north' is not a number"),
    ("gap.csv", "lon,lat\n-87.65,41.87\n,41.88\n", r"row 3: lon is empty or NaN$"),
    ("nan.csv", "lon,lat\nnan,41.87\n", r"row 2: lon is empty or NaN$"),
    ("inf.csv", "lon,lat\n-87.65,41.87\n-87.65,inf\n", r"row 3: lat inf is not a finite number$"),
    ("nocol.csv", "a,b\n1,2\n", "no lon column"),
    ("empty.gpx", '<gpx xmlns="http://www.topografix.com/GPX/1/1"><trk><trkseg></trkseg></trk></gpx>', "holds no GPS points"),
    ("badpt.gpx", '<gpx><trk><trkseg><trkpt lat="41.8" lon="x"/></trkseg></trk></gpx>', "point 1: lat/lon missing"),
    ("broken.gpx", "<gpx><trk><trkseg><trkpt", "not a GPX file"),
    ("badtime.gpx", '<gpx><wpt lat="41.8" lon="-87.6"><time>yesterday</time></wpt></gpx>', "not ISO 8601"),
    ("deg.csv", "lon,lat\n446097.6,4636565.4\n", r"point 1: \(446098, 4.63657e\+06\) is not lon/lat degrees"),
    ("data.bin", "x", "unknown GPS format"),
])
def test_malformed_files_raise_clear_errors(tmp_path, name, body, problem):
    path = tmp_path / name
    path.write_text(body)
    with pytest.raises(InputError, match=problem) as err:
        read_file(path, GpsSource(crs=UTM if name.endswith(".txt") else None))
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_wrong_crs_is_refused(chicago_gps, tmp_path):
    trips = chicago_gps / "trips" / "trip_0.txt"
    with pytest.raises(InputError, match="not lon/lat degrees"):
        read_file(trips, GpsSource(crs="EPSG:4326"))
    with pytest.raises(InputError, match="outside the area of use of EPSG:32616"):
        read_file(_utm_far_away(tmp_path), GpsSource(crs="EPSG:32616"))
    # a plausible but wrong zone: the points land in Ohio, not in the AOI
    chicago = Aoi(box(-87.68, 41.86, -87.64, 41.88), "uic", "test")
    with pytest.raises(InputError, match="none of the .* GPS points lies in the AOI uic"):
        load_traces([trips], GpsSource(crs="EPSG:32617"), chicago)
    near, info = load_traces([trips], GpsSource(crs=UTM), chicago)
    assert 0 < len(near) <= info["points_read"] and info["trips"] == 1


def test_the_summary_names_the_crs_each_file_was_read_in(trip, chicago_gps, tmp_path):
    """--gps-crs places CSV and text coordinates only: a GPX given beside it was read as WGS84, and
    the summary (and the message when nothing lands in the AOI) must not say it was read in UTM."""
    chicago = Aoi(box(-87.68, 41.86, -87.64, 41.88), "uic", "test")
    gpx = _gpx(trip, tmp_path / "t.gpx")
    assert load_traces([gpx], GpsSource(crs=UTM), chicago)[1]["crs"] == "EPSG:4326"
    both = load_traces([gpx, chicago_gps / "trips" / "trip_3.txt"], GpsSource(crs=UTM), chicago)[1]
    assert both["crs"] == "EPSG:32616 and EPSG:4326"
    elsewhere = Aoi(box(2.28, 48.98, 2.29, 48.99), "paris", "test")
    with pytest.raises(InputError, match="read as EPSG:4326; check the AOI$"):  # no --gps-crs to try
        load_traces([gpx], GpsSource(crs=UTM), elsewhere)


def _utm_far_away(tmp_path: Path) -> Path:
    """Lon/lat written where UTM metres belong: -87.6 m east is 500 km west of the zone."""
    path = tmp_path / "swapped.txt"
    path.write_text("-87.6497 41.8792 1301806255\n")
    return path


def test_cli_refuses_bad_gps_and_writes_nothing(chicago_gps, tmp_path, capsys):
    out = tmp_path / "out"
    bad = tmp_path / "bad.gpx"
    bad.write_text('<gpx><trk><trkseg><trkpt lat="41.8" lon="x"/></trkseg></trk></gpx>')
    code = main(["diff", "--aoi=-87.68,41.86,-87.64,41.88", "--osm", str(tmp_path / "none.geojson"),
                 "--gps", str(bad), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert err.strip().count("\n") == 0 and "bad.gpx: point 1" in err
