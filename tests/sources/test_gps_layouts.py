"""How other tools lay out GPS exports, written from real Chicago UIC shuttle trips: the trip
column of fleet and QGIS CSVs, European Excel's semicolons, folders holding files of other kinds,
gzip'd and waypoint-only GPX, and GPX times parsed in bulk (they were parsed one call a point)."""
from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pyproj import Transformer

import osmgap.sources.gps as gps
from osmgap.errors import InputError
from osmgap.sources.gps import GpsSource, read_file, read_gps

UTM = "EPSG:32616"


@pytest.fixture(scope="module")
def trips(chicago_gps) -> pd.DataFrame:
    """Real trips 3 and 5, rows sorted by time across both (as a fleet export gives them): trip,
    lon, lat, t."""
    parts = []
    for k in (3, 5):
        raw = np.loadtxt(chicago_gps / "trips" / f"trip_{k}.txt")
        lon, lat = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True).transform(raw[:, 0], raw[:, 1])
        parts.append(pd.DataFrame({"trip": f"bus-{k}", "lon": lon, "lat": lat, "t": raw[:, 2]}))
    both = pd.concat(parts, ignore_index=True)
    # trip 5 shifted into trip 3's hour, so the two vehicles' fixes interleave in time
    both.loc[both.trip == "bus-5", "t"] += parts[0].t.iloc[0] - parts[1].t.iloc[0] + 7
    return both.sort_values("t", kind="stable", ignore_index=True)


def _iso(t: float) -> str:
    return pd.Timestamp(t, unit="s", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def _gpx(path: Path, body: str) -> Path:
    path.write_text(f'<?xml version="1.0"?><gpx version="1.1" xmlns="http://www.topografix.com/GPX/1/1">{body}</gpx>')
    return path


def _trkseg(rows: pd.DataFrame) -> str:
    return "<trkseg>" + "".join(f'<trkpt lat="{r.lat:.7f}" lon="{r.lon:.7f}"><time>{_iso(r.t)}</time></trkpt>'
                                for r in rows.itertuples()) + "</trkseg>"


# --- 1. the trip column ---------------------------------------------------------------------------


@pytest.mark.parametrize("column", ["vehicle_id", "device_id", "Vehicle ID", "unit_id", "VEHICLE", "imei"])
def test_fleet_csv_vehicle_column_tells_trips_apart(trips, tmp_path, caplog, column):
    """A fleet export names its vehicles, and their fixes interleave in time: read as one trip
    they zig-zag between the buses, every other step going back in time."""
    csv = tmp_path / "fleet.csv"
    trips.rename(columns={"trip": column, "t": "time"}).to_csv(csv, index=False)
    with caplog.at_level(logging.INFO, logger="osmgap.sources.gps"):
        t = read_file(csv)
    assert t.trips == 2 and t.steps_back_in_time()[0] == 0
    for bus in ("bus-3", "bus-5"):  # each bus's fixes are one trip, in time order
        mine = trips[trips.trip == bus]
        k = t.trip[np.flatnonzero((t.x == mine.lon.iloc[0]) & (t.y == mine.lat.iloc[0]))[0]]
        np.testing.assert_allclose(t.t[t.trip == k], mine.t)
    assert f"trips told apart by column {column!r}: 2 trips" in caplog.text


def test_qgis_track_points_export_reads_a_trip_per_segment(trips, tmp_path, caplog):
    """QGIS / ogr2ogr write a GPX's track_points layer as X,Y,track_fid,track_seg_id,...: each
    track segment is a trip, as read from the GPX itself (track_fid was not recognised at all)."""
    bus3 = trips[trips.trip == "bus-3"].reset_index(drop=True)
    bus5 = trips[trips.trip == "bus-5"].reset_index(drop=True)
    half = len(bus3) // 2
    rows = pd.concat([bus3.assign(track_fid=0, track_seg_id=np.where(bus3.index < half, 0, 1)),
                      bus5.assign(track_fid=1, track_seg_id=0)], ignore_index=True)
    rows["track_seg_point_id"] = rows.groupby(["track_fid", "track_seg_id"]).cumcount()
    rows["ele"] = 180
    rows["time"] = [pd.Timestamp(v, unit="s").strftime("%Y/%m/%d %H:%M:%S+00") for v in rows.t]
    csv = tmp_path / "track_points.csv"
    rows.rename(columns={"lon": "X", "lat": "Y"})[
        ["X", "Y", "track_fid", "track_seg_id", "track_seg_point_id", "ele", "time"]].to_csv(csv, index=False)
    with caplog.at_level(logging.INFO, logger="osmgap.sources.gps"):
        t = read_file(csv)
    assert t.trips == 3 and len(t) == len(rows)
    np.testing.assert_allclose(t.t, rows.t)
    assert "columns 'track_fid' and 'track_seg_id' (a trip per track segment)" in caplog.text
    # --gps-columns trip=track_fid: the user asked for whole tracks
    assert read_file(csv, GpsSource(columns={"trip": "track_fid"})).trips == 2


def test_row_serial_is_not_taken_as_the_trip(trips, tmp_path, caplog):
    """An ``id`` column numbering the rows made every fix a trip of its own: nothing could be
    matched, and nothing said why."""
    bus3 = trips[trips.trip == "bus-3"]
    csv = tmp_path / "idcol.csv"
    pd.DataFrame({"id": np.arange(1, len(bus3) + 1), "lat": bus3.lat, "lon": bus3.lon, "time": bus3.t}).to_csv(csv, index=False)
    t = read_file(csv)
    assert t.trips == 1 and len(t) == len(bus3)
    np.testing.assert_allclose(t.t, bus3.t)
    assert "column 'id' holds a different value on every row" in caplog.text
    caplog.clear()
    t = read_file(csv, GpsSource(columns={"trip": "id"}))  # asked for: done, and said
    assert t.trips == len(bus3) and "--gps-columns trip=id holds a different value on every row" in caplog.text


def test_no_trip_column_says_so_when_time_goes_back(trips, tmp_path, caplog):
    """Two buses' fixes one bus after the other, with no column naming the bus: the warning that
    time goes back says no trip column was found, and how to name one. Time goes back ~6 min
    where bus 5's rows begin: that is read as a second vehicle's log, a trip of its own (it was
    one zig-zag trip: tests/sources/test_gps_vehicle_trips.py)."""
    csv = tmp_path / "mixed.csv"
    rows = trips.sort_values("trip", kind="stable").rename(columns={"trip": "bus_name"})
    rows[["bus_name", "lon", "lat", "t"]].to_csv(csv, index=False)
    t = read_file(csv)
    assert t.trips == 2
    warning = next(r.getMessage() for r in caplog.records if "time goes back by more than" in r.getMessage())
    assert "No trip column was found (columns: bus_name, lon, lat, t)" in warning
    assert "--gps-columns trip=COLUMN" in warning and "\n" not in warning


# --- 2. GPX times ----------------------------------------------------------------------------------


def test_gpx_times_are_parsed_in_bulk_with_the_same_results(trips, tmp_path, monkeypatch):
    """One pandas call a point made a timed GPX ~60 times slower to read than one without; in
    bulk, offsets, fractional seconds, missing and blank times read as before."""
    odd = ["2011-04-03T06:50:55+02:00", "2011-04-03T04:50:55.5Z", "2011-04-02T23:20:55.123456-05:30",
           "2011-04-03T04:50:55", "2011/04/03 04:50:55+00", "2011-04-03T04:50:55.123456789Z", None, "  "]
    bus3 = trips[trips.trip == "bus-3"].reset_index(drop=True)
    stamps = [_iso(v) for v in bus3.t]
    stamps[:len(odd)] = odd
    pts = "".join(f'<trkpt lat="{r.lat:.7f}" lon="{r.lon:.7f}">' + (f"<time>{s}</time>" if s is not None else "")
                  + "</trkpt>" for r, s in zip(bus3.itertuples(), stamps))
    path = _gpx(tmp_path / "t.gpx", f"<trk><trkseg>{pts}</trkseg></trk>")
    calls = []
    real = pd.to_datetime
    monkeypatch.setattr(gps.pd, "to_datetime", lambda *a, **k: calls.append(1) or real(*a, **k))
    t = read_file(path)
    monkeypatch.undo()
    assert len(calls) <= 2 < len(bus3)
    expected = [pd.Timestamp(s).timestamp() if s and s.strip() and pd.Timestamp(s).tz else
                pd.Timestamp(s, tz="UTC").timestamp() if s and s.strip() else np.nan for s in stamps]
    np.testing.assert_allclose(t.t, expected, rtol=0, atol=1e-6)
    assert np.isnan(t.t[6:8]).all() and t.t[1] == t.t[0] + 0.5 == t.t[3] + 0.5 == t.t[4] + 0.5


def test_gpx_time_errors_name_the_point_across_batches(tmp_path, monkeypatch):
    monkeypatch.setattr(gps, "GPX_TIME_BATCH", 3)
    pts = "".join(f'<trkpt lat="41.87" lon="-87.65"><time>2011-04-03T04:50:{k:02d}Z</time></trkpt>' for k in range(7))
    path = _gpx(tmp_path / "late.gpx", f"<trk><trkseg>{pts}<trkpt lat='41.87' lon='-87.65'><time>yesterday</time>"
                                       "</trkpt></trkseg></trk>")
    with pytest.raises(InputError, match=r"late.gpx: point 8: time 'yesterday' is not ISO 8601$"):
        read_file(path)
    ok = _gpx(tmp_path / "ok.gpx", f"<trk><trkseg>{pts}</trkseg></trk>")
    np.testing.assert_allclose(np.diff(read_file(ok).t), 1.0)


# --- 3. folders, gzip'd GPX ------------------------------------------------------------------------


def test_folder_reads_known_kinds_and_names_the_skipped_ones(trips, tmp_path, caplog):
    """A .gpx.gz and a .geojson are read; a README.txt, a .fit and a .kml are skipped with one
    warning naming them (the README stopped the run asking for the CRS of mapconstruction traces).
    GeoJSON used to be skipped too; it is read since GPS traces are read from GeoJSON."""
    bus3, bus5 = trips[trips.trip == "bus-3"], trips[trips.trip == "bus-5"]
    folder = tmp_path / "gps"
    folder.mkdir()
    _gpx(folder / "a.gpx", f"<trk>{_trkseg(bus3)}</trk>")
    with gzip.open(folder / "b.gpx.gz", "wt") as f:
        f.write(_gpx(tmp_path / "b.gpx", f"<trk>{_trkseg(bus5)}</trk>").read_text())
    bus5.to_csv(folder / "c.CSV", index=False)
    (folder / "README.txt").write_text("Exported from OsmAnd on 2024-05-01\n")
    (folder / "ride.fit").write_bytes(b"\x0e\x10FIT")
    line = {"type": "LineString", "coordinates": bus3[["lon", "lat"]].values.tolist()}
    (folder / "traces.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": line}]}))
    (folder / "ride.kml").write_text("<kml/>")
    (folder / ".DS_Store").write_bytes(b"\0")
    t = read_gps([folder])
    assert t.trips == 4 and len(t) == 2 * len(bus3) + 2 * len(bus5)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "skipped 3 files" in warnings[0]
    assert "README.txt, ride.fit, ride.kml" in warnings[0] and ".DS_Store" not in warnings[0]
    np.testing.assert_array_equal(read_file(folder / "b.gpx.gz").t, read_file(tmp_path / "b.gpx").t)


def test_mapconstruction_folder_skips_a_readme_but_single_files_are_unchanged(chicago_gps, tmp_path, caplog):
    folder = tmp_path / "trips"
    folder.mkdir()
    for k in (0, 1):
        (folder / f"trip_{k}.txt").write_text((chicago_gps / "trips" / f"trip_{k}.txt").read_text())
    (folder / "README.txt").write_text("Chicago shuttle traces, UTM zone 16N\n")
    assert read_gps([folder], GpsSource(crs=UTM)).trips == 2
    assert "skipped 1 file" in caplog.text and "README.txt" in caplog.text
    with pytest.raises(InputError, match=r"README.txt: line 1: expected 'x y unix_time'"):
        read_gps([folder / "README.txt"], GpsSource(crs=UTM))  # named on its own, it is read
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "notes.txt").write_text("lon lat time\n")  # nothing else to read: the reader says what is wrong
    with pytest.raises(InputError, match=r"notes.txt: line 1: expected 'x y unix_time'"):
        read_gps([alone], GpsSource(crs=UTM))
    other = tmp_path / "other"
    other.mkdir()
    (other / "ride.fit").write_bytes(b"FIT")
    with pytest.raises(InputError, match=r"holds no .gpx, .csv, .geojson or .txt GPS files \(it holds ride.fit\)$"):
        read_gps([other])


def test_damaged_gzip_gpx_is_one_line_error(tmp_path):
    path = tmp_path / "cut.gpx.gz"
    path.write_bytes(gzip.compress(b'<gpx><trk><trkseg><trkpt lat="41.8" lon="-87.6"/>' * 50)[:60])
    with pytest.raises(InputError) as err:
        read_file(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


# --- 4. European Excel CSV -------------------------------------------------------------------------


@pytest.mark.parametrize("iso", [False, True])
def test_semicolon_csv_with_decimal_commas_is_read(trips, tmp_path, caplog, iso):
    """European Excel writes ';' between fields and ',' as the decimal mark: the file was told
    it had no lon column, and to name one with --gps-columns, which could not help."""
    csv = tmp_path / "excel.csv"
    rows = trips.assign(time=[_iso(v) for v in trips.t] if iso else trips.t.astype(np.int64))
    csv.write_text(rows[["trip", "lat", "lon", "time"]].to_csv(sep=";", decimal=",", index=False))
    assert "41,8" in csv.read_text()
    with caplog.at_level(logging.INFO, logger="osmgap.sources.gps"):
        t = read_file(csv)
    assert t.trips == 2 and len(t) == len(trips)
    np.testing.assert_allclose(np.sort(t.x), np.sort(trips.lon))
    np.testing.assert_allclose(np.sort(t.t), np.sort(trips.t))
    assert "read as semicolon-separated" in caplog.text
    bad = tmp_path / "bad.csv"
    bad.write_text("lat;lon\n41,87;-87,65\n41,87;east\n")
    with pytest.raises(InputError, match=r"bad.csv: row 3: lon 'east' is not a number$"):
        read_file(bad)


# --- 5. waypoints only -----------------------------------------------------------------------------


def test_waypoints_only_gpx_says_so(trips, tmp_path, caplog):
    """A GPX of waypoints alone has no track: every fix is alone, and the run said only 'are the
    times right?'."""
    bus3 = trips[trips.trip == "bus-3"]
    wpts = "".join(f'<wpt lat="{r.lat:.7f}" lon="{r.lon:.7f}"><time>{_iso(r.t)}</time></wpt>' for r in bus3.itertuples())
    t = read_file(_gpx(tmp_path / "wpt.gpx", wpts))
    assert t.trips == len(bus3)
    assert f"holds only waypoints ({len(bus3)} lone observations, no track or route)" in caplog.text
    caplog.clear()
    read_file(_gpx(tmp_path / "both.gpx", wpts[:200].rsplit("<wpt", 1)[0] + f"<trk>{_trkseg(bus3)}</trk>"))
    assert "only waypoints" not in caplog.text
