"""GPS files as an audit of real exports found them, written from real Chicago UIC shuttle trips:
rows without a trip id, GPX points outside any track segment, traces cropped to the AOI, a
lon/lat CSV beside the benchmark's projected graph, and common CSV layouts that were refused
without saying what to do. Each was read wrong, or refused unhelpfully, before."""
from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box

from osmgap.cli import main
from osmgap.core.aoi import Aoi
from osmgap.errors import InputError
from osmgap.sources.gps import GpsSource, load_traces, read_file
from tests.sources.chicago_trips import UTM, chicago_trips

TRIPS = (3, 5, 7, 10)  # recorded on four different days, ~2-3 s apart


@pytest.fixture(scope="module")
def trips(chicago_gps) -> dict[int, pd.DataFrame]:
    """Real trips (lon, lat, time)."""
    return {k: f.rename(columns={"t": "time"})[["lon", "lat", "time"]]
            for k, f in chicago_trips(chicago_gps, TRIPS).items()}


def _sizes(t) -> list[int]:
    return np.bincount(t.trip).tolist()


# --- rows with an empty trip id -------------------------------------------------------------------


@pytest.mark.parametrize("timed", [True, False])
def test_rows_with_an_empty_trip_id_are_never_joined(trips, tmp_path, caplog, timed):
    """Trips 5 and 7 with their trip_id left blank, each between trips that have one: they were one
    trip (joined on ''), a chord from trip 5's end to trip 7's start days later. Each run of blank
    rows is now a trip of its own, with or without times, and a warning counts them."""
    ids = {3: "a", 5: "", 10: "c", 7: ""}
    rows = pd.concat([trips[k].assign(trip_id=i) for k, i in ids.items()])
    csv = tmp_path / "blank.csv"
    (rows if timed else rows.drop(columns="time")).to_csv(csv, index=False)
    t = read_file(csv)
    assert _sizes(t) == [len(trips[k]) for k in ids]
    blank = len(trips[5]) + len(trips[7])
    assert f"{blank} rows with an empty 'trip_id', in 2 runs of consecutive rows" in caplog.text


def test_adjacent_blank_trips_are_cut_where_silent_and_geojson_points_alike(trips, tmp_path):
    """Trips 5 and 7 blank and adjacent (one run): days apart, so cut where silent as a file with
    no trip column is. GeoJSON Point features without their trip property are read the same way."""
    ids = {3: "a", 5: "", 7: ""}
    rows = pd.concat([trips[k].assign(trip_id=i) for k, i in ids.items()])
    csv = tmp_path / "adjacent.csv"
    rows.to_csv(csv, index=False)
    assert _sizes(read_file(csv)) == [len(trips[k]) for k in ids]
    features = [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [r.lon, r.lat]},
                 "properties": {"time": r.time, **({"trip": r.trip_id} if r.trip_id else {})}}
                for r in pd.concat([rows, trips[10].assign(trip_id="")]).itertuples()]
    gj = tmp_path / "points.geojson"
    gj.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    assert _sizes(read_file(gj)) == [len(trips[k]) for k in (3, 5, 7, 10)]


# --- GPX track points outside any trkseg ----------------------------------------------------------


def test_gpx_track_points_outside_trkseg_are_a_trip_per_track(trips, tmp_path, caplog):
    """<trkpt> straight under <trk> (invalid, seen in the wild), no times: every track joined into
    one trip, nothing to cut it. Now a trip per track, said in a warning; segments still count."""
    def points(k: int) -> str:
        return "".join(f'<trkpt lat="{r.lat:.7f}" lon="{r.lon:.7f}"/>' for r in trips[k].itertuples())

    body = "".join(f"<trk><name>{k}</name>{points(k)}</trk>" for k in (3, 5, 7)) + f"<trk><trkseg>{points(10)}</trkseg></trk>"
    gpx = tmp_path / "noseg.gpx"
    gpx.write_text(f'<?xml version="1.0"?><gpx version="1.1" xmlns="http://www.topografix.com/GPX/1/1">{body}</gpx>')
    t = read_file(gpx)
    assert _sizes(t) == [len(trips[k]) for k in TRIPS]
    stray = sum(len(trips[k]) for k in (3, 5, 7))
    assert f"{stray} track points lie outside any <trkseg> (not valid GPX)" in caplog.text


# --- cropping to the AOI --------------------------------------------------------------------------


def test_a_trip_leaving_and_reentering_the_aoi_is_cut_there(chicago_gps):
    """Real trip 19 leaves the AOI (plus its 200 m margin) and comes back 4 min later: its exit
    and re-entry fixes were kept as one step, a ~500 m straight chord across the part cropped
    away. Now two pieces, and no step longer than the trip's own longest."""
    aoi = Aoi(box(-87.675, 41.862, -87.655, 41.875), "uic", "test")
    trip = chicago_gps / "trips" / "trip_19.txt"
    near, info = load_traces([trip], GpsSource(crs=UTM), aoi)
    assert near.trips == info["trips"] == 2
    whole = read_file(trip, GpsSource(crs=UTM))
    assert np.nanmax(near.step_lengths()) <= np.nanmax(whole.step_lengths())


# --- a lon/lat CSV with the benchmark's projected graph -------------------------------------------


def test_osm_crs_places_the_graph_apart_from_a_lon_lat_csv(trips, chicago_gps, tmp_path, capsys):
    """--gps-crs placed both the CSV and the graph, so no value worked for a lon/lat CSV and the
    UTM graph, and each error pointed at the other. --osm-crs gives the graph's own; the error
    without it names it."""
    csv = tmp_path / "lonlat.csv"
    trips[3].to_csv(csv, index=False)
    args = ["diff", "--aoi=-87.668,41.869,-87.660,41.875", "--osm", str(chicago_gps), "--gps", str(csv)]
    assert main([*args, "--out", str(tmp_path / "refused")]) == 2
    assert "give their CRS with --osm-crs EPSG:N" in capsys.readouterr().err
    assert main([*args, "--osm-crs", UTM, "--out", str(tmp_path / "out")]) == 0
    gps = json.loads((tmp_path / "out" / "summary.json").read_text())["gps"]
    assert gps["crs"] == "EPSG:4326" and gps["points"] > 0


# --- common CSV layouts ---------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["tab", "excel_sep"])
def test_tab_separated_and_excel_sep_line_are_read(trips, tmp_path, layout):
    """A tab-separated export, and Excel's 'sep=;' first line (decimal commas): refused as 'no lon
    column' before; read like the plain CSV now."""
    path = tmp_path / f"{layout}.csv"
    if layout == "tab":
        trips[3].to_csv(path, index=False, sep="\t")
    else:
        path.write_text("sep=;\n" + trips[3].to_csv(index=False, sep=";", decimal=","))
    t = read_file(path)
    assert len(t) == len(trips[3]) and t.trips == 1
    np.testing.assert_allclose(t.x, trips[3].lon, atol=1e-9)
    np.testing.assert_array_equal(t.t, trips[3].time)


@pytest.mark.parametrize("columns, problem", [
    ("gpsbabel", "a time of day without its date (a separate date column, as GPSBabel's unicsv writes, is not read)"),
    ("us", "a date whose day and month order is the locale's and cannot be told; write one column of ISO 8601"),
])
def test_times_in_other_layouts_are_refused_saying_what_to_write(trips, tmp_path, columns, problem):
    """GPSBabel's unicsv (Date and Time columns) and Excel's US dates were refused as 'neither unix
    seconds nor ISO 8601', which did not say what to change."""
    stamps = pd.to_datetime(trips[3].time, unit="s")
    rows = trips[3][["lon", "lat"]].assign(
        **({"Date": stamps.dt.strftime("%Y/%m/%d"), "Time": stamps.dt.strftime("%H:%M:%S")} if columns == "gpsbabel"
           else {"Timestamp": stamps.dt.strftime("%m/%d/%Y %H:%M")}))
    path = tmp_path / f"{columns}.csv"
    rows.to_csv(path, index=False)
    with pytest.raises(InputError, match="row 2: time .* is neither unix seconds nor ISO 8601: " + problem.replace("(", r"\(")
                       .replace(")", r"\)")):
        read_file(path)


# --- several vehicles in one file without a vehicle column ----------------------------------------


def test_interleaved_vehicles_without_a_vehicle_column_are_warned_about(trips, tmp_path, caplog):
    """Four real trips moved into one hour and sorted by time, as a fleet log without a vehicle
    column is: read as one vehicle (the documented rule), but only an INFO line said so, and the
    summary's hint was 'are the times right?'. A warning now names the likely cause and the option."""
    start = trips[3].time.iloc[0]
    rows = pd.concat([trips[k].assign(time=trips[k].time - trips[k].time.iloc[0] + start + 3 * i)
                      for i, k in enumerate(TRIPS)]).sort_values("time", kind="stable")
    csv = tmp_path / "fleet.csv"
    rows.to_csv(csv, index=False)
    with caplog.at_level(logging.WARNING):
        read_file(csv)
        assert "looks like several vehicles' fixes in one file" in caplog.text
        assert "--gps-columns trip=COLUMN" in caplog.text
        caplog.clear()
        for k in TRIPS:  # one vehicle's rows, each trip alone: no such warning
            trips[k].to_csv(csv, index=False)
            read_file(csv)
        assert "several vehicles" not in caplog.text
