"""A vehicle's rows are many trips: CSVs written from real Chicago UIC shuttle trips (recorded on
different days) as fleet exports lay them out, with a vehicle column and no trip column, or with
no column naming anything. Each vehicle's day was read as one trip, so roads it drove on several
trips counted one trip, and two vehicles' logs one after another were one zig-zag trip."""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from pyproj import Transformer

from osmgap.sources.gps import GpsSource, read_file

UTM = "EPSG:32616"


@pytest.fixture(scope="module")
def trips(chicago_gps) -> dict[int, pd.DataFrame]:
    """Real trips 3, 5, 7 and 10 (lon, lat, time): recorded on four different days, ~2-3 s apart."""
    out = {}
    for k in (3, 5, 7, 10):
        raw = np.loadtxt(chicago_gps / "trips" / f"trip_{k}.txt")
        lon, lat = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True).transform(raw[:, 0], raw[:, 1])
        out[k] = pd.DataFrame({"lon": lon, "lat": lat, "time": raw[:, 2]})
    return out


def _trip_of(t, first_time: float) -> np.ndarray:
    """The times of the trip whose first fix is at ``first_time``."""
    k = t.trip[np.flatnonzero(t.t == first_time)[0]]
    return t.t[t.trip == k]


@pytest.mark.parametrize("unit", [1, 1000])
def test_a_vehicle_column_is_cut_into_trips_where_the_vehicle_fell_silent(trips, tmp_path, caplog, unit):
    """Two buses, rows sorted by time as a fleet export gives them: bus 1 drove trips 3, 7 and 10,
    bus 2 trip 5. Bus 1's three trips are three trips (days apart), each read as recorded; in
    milliseconds too. Named with --gps-columns trip=vehicle_id, the user's word stands."""
    rows = pd.concat([trips[3].assign(vehicle_id="bus-1"), trips[5].assign(vehicle_id="bus-2"),
                      trips[7].assign(vehicle_id="bus-1"), trips[10].assign(vehicle_id="bus-1")])
    csv = tmp_path / "fleet.csv"
    rows.sort_values("time", kind="stable").assign(time=lambda r: r.time * unit).to_csv(csv, index=False)
    with caplog.at_level(logging.INFO, logger="osmgap.sources.gps"):
        t = read_file(csv)
    assert t.trips == 4 and t.steps_back_in_time()[0] == 0
    for k in (3, 5, 7, 10):
        np.testing.assert_array_equal(_trip_of(t, trips[k].time.iloc[0]), trips[k].time)
    assert "trips told apart by column 'vehicle_id': 4 trips (2 vehicles cut into trips where silent)" in caplog.text
    assert read_file(csv, GpsSource(columns={"trip": "vehicle_id"})).trips == 2


def test_a_vehicle_that_logs_rarely_is_not_cut_at_every_fix(trips, tmp_path):
    """A tracker pinging every 10 min on two days (trip 3's and trip 7's days, 12 pings each): two
    trips, not 24 lone fixes that would count as 24 trips' evidence along the one route."""
    day = [pd.DataFrame({"lon": trips[k].lon.iloc[0], "lat": trips[k].lat.iloc[0],
                         "time": trips[k].time.iloc[0] + 600.0 * np.arange(12)}) for k in (3, 7)]
    csv = tmp_path / "pings.csv"
    pd.concat(day).assign(imei="356938035643809").to_csv(csv, index=False)
    t = read_file(csv)
    assert t.trips == 2 and np.bincount(t.trip).tolist() == [12, 12]


def test_no_trip_column_two_vehicles_logs_one_after_another_are_two_trips(trips, tmp_path, caplog):
    """No column names a vehicle: bus A's trip 3, then bus B's trip 5 moved to start 30 s after
    A's (time goes back ~5.5 min where B's rows begin) were read as one trip zig-zagging between
    them. Now: two trips, and a warning that says what was assumed. Trip 7 a day later, same file:
    a third trip (the vehicle was silent)."""
    a, b, c = trips[3], trips[5].copy(), trips[7]
    b["time"] += a.time.iloc[0] + 30 - b.time.iloc[0]
    csv = tmp_path / "two_buses.csv"
    pd.concat([a, b, c]).to_csv(csv, index=False)
    t = read_file(csv)
    assert t.trips == 3
    for rows in (a, b, c):
        np.testing.assert_array_equal(_trip_of(t, rows.time.iloc[0]), rows.time)
    warning = next(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert warning.startswith(f"{csv}: time goes back by more than 300 s at 1 fix (rows in file order): read as the "
                              "logs of several vehicles, or days, one after another, with a new trip at each")
    assert "--gps-columns trip=COLUMN" in warning and "\n" not in warning


def test_a_receiver_clock_jitter_is_no_new_trip(trips, tmp_path, caplog):
    """Two rows swapped (time goes back 3 s): still one trip, with the warning that fixes go back
    in time, as before; only a step back longer than a silence starts a trip."""
    rows = trips[3].copy()
    rows.iloc[[10, 11]] = rows.iloc[[11, 10]].to_numpy()
    csv = tmp_path / "swapped.csv"
    rows.to_csv(csv, index=False)
    t = read_file(csv)
    assert t.trips == 1 and "1 of 99 steps between fixes of a trip go back in time" in caplog.text
    # the same rows twice, as a phone app appends a re-export: the second copy is a new trip
    pd.concat([rows, rows]).to_csv(csv, index=False)
    assert read_file(csv).trips == 2
