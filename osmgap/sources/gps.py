"""Read GPS traces from GPX, CSV and the mapconstruction text format into ``GpsTraces``.

- GPX 1.0/1.1 (or gzip'd, ``.gpx.gz``): every ``trkseg`` and every ``rte`` is a trip; waypoints
  (``wpt``) are lone observations, one trip each. Always WGS84, whatever ``--gps-crs`` says.
- CSV (or ``.csv.gz``): a header row; columns lon, lat and optional time, speed, bearing, trip,
  found by common names (``osmgap.sources.gps_layout``) or given by a mapping
  (``lon=LONGITUDE,lat=LAT,time=ts``). Time is unix seconds (or milli-, micro-, nanoseconds,
  told apart by size) or ISO 8601. Coordinates are in ``crs`` (WGS84 unless stated). Read in
  chunks of a million rows. A header with more ';' than ',' is European Excel's: ';' between
  fields, ',' as the decimal mark. A trip column found by a vehicle's name (``vehicle_id``,
  ``imei``, ...), or no trip column at all (the rows are one vehicle's), is cut into trips where
  the vehicle fell silent or its clock went back (``cut_vehicle_trips``).
- GeoJSON (``.geojson``, ``.json``, gzip'd; ``osmgap.sources.gps_geojson``): each LineString, and
  each part of a MultiLineString, is a trip, timed by a ``coordTimes``/``times`` property; Point
  features are lone fixes, grouped into trips by a trip or vehicle property as CSV columns are.
  WGS84 (RFC 7946) whatever ``--gps-crs`` says, unless a legacy ``crs`` member names another CRS.
- mapconstruction (Biagioni and Eriksson's benchmark; ``.txt``): ``x y unix_time`` per line, one
  file per trip, in a CRS that must be stated, since the format does not say.
A directory stands for the files in it that hold traces (``gps_layout.gps_files_in``). Bad rows, coordinates impossible for the stated CRS and
files without points raise ``InputError`` naming the file and the row, because a silently
dropped row or a trace in the wrong hemisphere would quietly change every figure downstream.
"""
from __future__ import annotations

import gzip
import logging
import math
import xml.etree.ElementTree as ET
import zlib
from array import array
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
from pyproj import CRS as ProjCRS
from pyproj.exceptions import CRSError

from osmgap.core.aoi import check_earth_crs, crs_transformer
from osmgap.core.datamodel import WGS84
from osmgap.core.traces import GpsTraces, concat, from_arrays
from osmgap.errors import InputError, one_line
from osmgap.sources.gps_layout import (
    CSV_SUFFIXES,
    GEOJSON_SUFFIXES,
    GPX_SUFFIXES,
    TEXT_SUFFIXES,
    csv_columns,
    describe_trip_columns,
    gps_files_in,
    names_vehicles,
)
from osmgap.sources.gps_layout import parse_column_mapping as parse_column_mapping  # where the CLI finds it
from osmgap.sources.osm_extent import show_bounds

log = logging.getLogger(__name__)

CSV_CHUNK_ROWS = 1_000_000
# numeric times above these are not unix seconds (1e11 s is the year 5138) but finer units
UNIX_TIME_UNITS = ((1e17, 1e9, "nanoseconds"), (1e14, 1e6, "microseconds"), (1e11, 1e3, "milliseconds"))
GPX_TIME_BATCH = 65_536  # GPX times parsed per pandas call: fast, and few strings held at once
AREA_OF_USE_MARGIN_DEG = 1.0  # projected coordinates may stray a little beyond a zone's area of use
# A vehicle's rows (a vehicle column, or a file with no trip column) become a new trip where it was
# silent for longer than this, or its clock went back by more: 5 min is the matcher's own cut
# (osmgap.gps.matching.MatchParams.max_gap_s; not imported: that would load fastmm to read a
# CSV), longer than a stop at a light or a bus stop and shorter than a parked driver's break. A
# vehicle that logs rarely keeps its trips whole until it is silent for TRIP_GAP_FACTOR of its
# usual interval: pings every 10 min cut at each would be lone fixes of as many "trips", and
# lone fixes of distinct trips lined up are evidence (osmgap.gps.headings) one vehicle must not
# give. Impossible jumps are not cut here: the matcher cuts the trip into pieces there.
TRIP_GAP_S = 300.0
TRIP_GAP_FACTOR = 10.0


@dataclass(frozen=True)
class GpsSource:
    """How to read GPS files: the CRS of CSV/text coordinates and a CSV column mapping."""

    crs: str | None = None
    columns: dict[str, str] | None = None


def read_gps(paths: Iterable[str | Path], source: GpsSource = GpsSource()) -> GpsTraces:
    """All points of ``paths`` (files or directories), in WGS84 lon/lat, trips numbered apart."""
    return _read_files(_expand(paths), source)[0]


def _read_files(files: list[Path], source: GpsSource) -> tuple[GpsTraces, str]:
    """The points of ``files`` in WGS84 and the CRS they were read in: ``--gps-crs`` places CSV and
    text coordinates only (GPX and GeoJSON say their own), so a summary that named it for a GPX file
    would mislead."""
    parts = [read_file(f, source) for f in files]
    read_as = sorted({_crs_name(p.crs) for p in parts})
    return concat([p.to_crs(WGS84) for p in parts]), " and ".join(read_as)  # files may differ in CRS


def _crs_name(crs: Any) -> str:
    return crs if isinstance(crs, str) else ProjCRS.from_user_input(crs).to_string()


def read_file(path: Path, source: GpsSource = GpsSource()) -> GpsTraces:
    """One file's points in its own CRS, checked against it."""
    name = path.name.lower()
    hint = ""
    try:
        if name.endswith(GPX_SUFFIXES):
            traces = read_gpx(path)
        elif name.endswith(CSV_SUFFIXES):
            traces, hint = _read_csv(path, source.crs or WGS84, source.columns)
        elif name.endswith(GEOJSON_SUFFIXES):
            from osmgap.sources.gps_geojson import read_geojson  # it uses this module's time parsing

            traces = read_geojson(path, source.columns)
        elif name.endswith(TEXT_SUFFIXES):
            if not source.crs:
                raise InputError(path, "mapconstruction traces (x y unix_time) do not say their CRS; give --gps-crs EPSG:N")
            traces = read_mapconstruction(path, source.crs)
        else:
            raise InputError(path, "unknown GPS format: expected .gpx, .gpx.gz, .csv, .csv.gz, .geojson, "
                                   ".geojson.gz, .json or .txt (mapconstruction x y unix_time)")
    except OSError as exc:  # no permission, a folder named like a file: the user's input, exit 2
        raise InputError(path, f"cannot read ({exc.strerror or exc})") from None
    if len(traces) == 0:
        raise InputError(path, "holds no GPS points (empty track)")
    check_crs(traces, path)
    traces = times_in_seconds(traces, path)
    back, steps = traces.steps_back_in_time()
    if back:
        log.warning("%s: %d of %d steps between fixes of a trip go back in time; trips are read in file order and "
                    "cut where time goes back: are the fixes in time order?%s", path, back, steps, hint)
    return traces


def times_in_seconds(traces: GpsTraces, path: Path) -> GpsTraces:
    """Unix times given in milliseconds (as many phone apps and databases export them), micro- or
    nanoseconds, turned into seconds: as seconds they would lie thousands of years ahead, and every
    step would read as silence, cutting each fix off alone."""
    t = traces.t[np.isfinite(traces.t)]
    typical = float(np.median(np.abs(t))) if len(t) else 0.0
    for above, per_second, unit in UNIX_TIME_UNITS:
        if typical > above:
            log.warning("%s: times read as %s since 1970 (as seconds they would lie after the year 5000)", path, unit)
            return replace(traces, t=traces.t / per_second)
    return traces


def _expand(paths: Iterable[str | Path]) -> list[Path]:
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(gps_files_in(p))
        elif p.is_file():
            files.append(p)
        else:
            raise InputError(p, "GPS file not found")
    if not files:
        raise InputError(None, "no GPS file given")
    return files


def parse_crs(text: str, path: Path) -> ProjCRS:
    try:
        crs = ProjCRS.from_user_input(text)
    except CRSError as exc:
        raise InputError(path, f"unknown CRS {text!r} ({exc})") from None
    check_earth_crs(crs, path)
    return crs


def check_crs(traces: GpsTraces, path: Path) -> None:
    """Refuse coordinates that cannot be in ``traces.crs``: degrees beyond +-180/90, or
    projected coordinates far outside the CRS's area of use (a wrong --gps-crs)."""
    check_coordinates(traces.x, traces.y, traces.crs, path)


def check_coordinates(x: np.ndarray, y: np.ndarray, crs_text: Any, path: Path | str, what: str = "point") -> None:
    """``check_crs`` for any coordinates (``what``: the word for one of them in the message)."""
    crs = parse_crs(crs_text, Path(path)) if isinstance(crs_text, str) else crs_text
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise InputError(path, "a coordinate is not a finite number")
    if crs.is_geographic:
        bad = np.flatnonzero((np.abs(x) > 180) | (np.abs(y) > 90))
        if len(bad):
            raise InputError(path, f"{what} {bad[0] + 1}: ({x[bad[0]]:g}, {y[bad[0]]:g}) is not lon/lat "
                                   f"degrees; projected coordinates need --gps-crs EPSG:N")
        return
    lon, lat = crs_transformer(crs, WGS84).transform(x, y)
    area = crs.area_of_use
    m = AREA_OF_USE_MARGIN_DEG
    outside = ~np.isfinite(lon) | ~np.isfinite(lat)
    if area is not None:
        outside |= (lon < area.west - m) | (lon > area.east + m) | (lat < area.south - m) | (lat > area.north + m)
    bad = np.flatnonzero(outside)
    if len(bad):
        raise InputError(path, f"{what} {bad[0] + 1}: ({x[bad[0]]:g}, {y[bad[0]]:g}) lies outside the "
                               f"area of use of {crs.to_string()}; is --gps-crs right?")


# --- mapconstruction ----------------------------------------------------------------


def read_mapconstruction(path: Path, crs: str) -> GpsTraces:
    """``x y unix_time`` per line (blank lines allowed), one trip per file."""
    rows = _numeric_rows(path, sep=r"\s+", names=["x", "y", "t"], what="'x y unix_time'")
    return from_arrays(rows["x"], rows["y"], crs, t=rows["t"])


def _numeric_rows(path: Path, sep: str, names: list[str], what: str) -> dict[str, np.ndarray]:
    """Whitespace-separated numeric columns; the first bad line is named in the error."""
    try:
        frame = pd.read_csv(path, sep=sep, header=None, names=names, dtype=str, engine="c",
                            skip_blank_lines=True, on_bad_lines="error")
    except pd.errors.EmptyDataError:
        return {n: np.zeros(0) for n in names}
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(path, f"not {what} per line ({str(exc).strip().splitlines()[-1]})") from None
    out = {}
    for n in names:
        values = pd.to_numeric(frame[n], errors="coerce").to_numpy(float)
        bad = np.flatnonzero(~np.isfinite(values))
        if len(bad):
            raise InputError(path, f"line {bad[0] + 1}: expected {what}, got {' '.join(map(str, frame.iloc[bad[0]].dropna()))!r}")
        out[n] = values
    return out


# --- CSV ------------------------------------------------------------------------------


def read_csv(path: Path, crs: str, columns: dict[str, str] | None = None) -> GpsTraces:
    """Points of a CSV file with a header row; see the module docstring for the columns."""
    return _read_csv(path, crs, columns)[0]


def _read_csv(path: Path, crs: str, columns: dict[str, str] | None) -> tuple[GpsTraces, str]:
    """``read_csv``, and what to add to a warning that fixes go back in time (no trip column)."""
    header, sep = _csv_header(path)
    mapping = csv_columns(header, columns or {}, path)
    fmt = {"sep": sep, "decimal": "," if sep == ";" else "."}
    with _csv_errors(path):  # a bad byte or line may come a million rows after the header
        try:  # fast path: numbers parsed by pandas' C reader, no Python string per value
            parts, trips = _read_csv_chunks(path, mapping, crs, fmt, numeric=True)
        except (pd.errors.ParserError, UnicodeDecodeError):
            raise
        except ValueError:  # a value that is not a number (an ISO time, or a bad row): name the row
            parts, trips = _read_csv_chunks(path, mapping, crs, fmt, numeric=False)
    if not parts:
        return from_arrays(np.zeros(0), np.zeros(0), crs), ""
    traces = concat(parts, renumber=False)
    parts.clear()  # copied: freed before any sort, so a large file is held at most twice while read
    if "trip" in mapping and trips == len(traces) > 1:  # a row serial, not a trip: every fix alone
        if "trip" not in (columns or {}):
            log.warning("%s: column %r holds a different value on every row (a row number, not a trip), so it is not "
                        "read as the trip: the rows are one vehicle's, in file order, cut into trips where silent; "
                        "name the column that tells trips apart with --gps-columns trip=COLUMN", path, mapping["trip"])
            mapping = {k: v for k, v in mapping.items() if k not in ("trip", "segment")}
            traces = replace(traces, trip=np.zeros(len(traces), np.int32))
        else:
            log.warning("%s: --gps-columns trip=%s holds a different value on every row: every fix is a trip of its "
                        "own, and no route can be read from one fix", path, mapping["trip"])
    # rows of a trip may be scattered through the file; make each trip contiguous, rows in order
    # (trips are numbered as they first appear: a file grouped by trip is in order already)
    scattered = "trip" in mapping and bool(np.any(traces.trip[1:] < traces.trip[:-1]))
    traces = traces.take(np.argsort(traces.trip, kind="stable")) if scattered else traces
    found = f" No trip column was found (columns: {', '.join(header)})"
    hint = "" if "trip" in mapping else (f"{found}: fixes of several vehicles in one file are then read as one trip; "
                                         "name the column that tells them apart with --gps-columns trip=COLUMN")
    vehicles = "trip" not in mapping or names_vehicles(mapping, columns or {})
    if vehicles:
        traces = times_in_seconds(traces, path)  # silences are judged in seconds (read_file's call is then a no-op)
        traces = cut_vehicle_trips(traces, path, f"a vehicle's rows, column {mapping['trip']!r}" if "trip" in mapping else "rows in file order",
                                   "" if "trip" in mapping else f"{found}: name the column that tells vehicles apart "
                                                                "with --gps-columns trip=COLUMN")
    if "trip" in mapping:
        cut = f" ({trips} vehicle{'' if trips == 1 else 's'} cut into trips where silent)" if vehicles else ""
        log.info("%s: trips told apart by %s: %d trip%s%s", path, describe_trip_columns(mapping), traces.trips,
                 "" if traces.trips == 1 else "s", cut)
    else:
        log.info("%s: no trip column (columns: %s): the rows are read as one vehicle, in file order, cut into trips "
                 "where silent: %d trip%s", path, ", ".join(header), traces.trips, "" if traces.trips == 1 else "s")
    return traces, hint


def cut_vehicle_trips(traces: GpsTraces, path: Path, what: str, hint: str = "") -> GpsTraces:
    """Each trip of ``traces`` taken as one vehicle's rows (contiguous, in file order) and cut into
    trips where it was silent, or its clock went back, for longer than ``TRIP_GAP_S`` (or
    ``TRIP_GAP_FACTOR`` times its median interval, if longer); said in the log where time went
    back (``what``: whose rows, ``hint``: what to add). Trips are renumbered 0, 1, ... in order."""
    dt = traces.intervals()  # NaN at a vehicle's first fix and where a fix has no time
    if not np.isfinite(dt).any():
        return traces
    typical = pd.Series(np.where(dt > 0, dt, np.nan)).groupby(traces.trip).transform("median").to_numpy()
    gap = np.maximum(TRIP_GAP_S, TRIP_GAP_FACTOR * np.nan_to_num(typical))
    with np.errstate(invalid="ignore"):
        silent, reset = dt > gap, dt < -gap
    if not (silent.any() or reset.any()):
        return traces
    if reset.any():
        log.warning("%s: time goes back by more than %d s at %d fix%s (%s): read as the logs of several vehicles, "
                    "or days, one after another, with a new trip at each.%s", path, int(TRIP_GAP_S), int(reset.sum()),
                    "" if reset.sum() == 1 else "es", what, hint)
    starts = ~traces.same_trip_as_previous() | silent | reset
    return replace(traces, trip=(np.cumsum(starts) - 1).astype(np.int32))


def _csv_header(path: Path) -> tuple[list[str], str]:
    """The header's column names and the separator: ',' unless the header holds more ';' than ','
    (European Excel's CSV, whose decimal mark is ','), said in the log."""
    try:
        with _csv_errors(path):
            header = [str(h) for h in pd.read_csv(path, nrows=0).columns]
            if sum(h.count(";") for h in header) < len(header):
                return header, ","
            header = [str(h) for h in pd.read_csv(path, nrows=0, sep=";").columns]
    except pd.errors.EmptyDataError:
        raise InputError(path, "holds no GPS points (empty file)") from None
    log.info("%s: read as semicolon-separated, with ',' as the decimal mark (as European Excel writes CSV)", path)
    return header, ";"


@contextmanager
def _csv_errors(path: Path) -> Iterator[None]:
    """pandas' parse and decode errors (a binary or non-UTF-8 file) as an InputError naming the file."""
    try:
        yield
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(path, f"not a CSV file of GPS points, or not UTF-8 ({one_line(exc)[:160]})") from None


def _read_csv_chunks(path: Path, mapping: dict[str, str], crs: str, fmt: dict[str, str],
                     numeric: bool) -> tuple[list[GpsTraces], int]:
    """The file's points, a chunk at a time, and how many distinct trips they hold."""
    dtype = {c: ("float64" if numeric and f not in ("trip", "segment") else str) for f, c in mapping.items()}
    trip_ids: dict[str, int]
    parts, row0, trip_ids = [], 0, {}
    for chunk in pd.read_csv(path, usecols=list(mapping.values()), dtype=dtype, chunksize=CSV_CHUNK_ROWS, **fmt):
        parts.append(_csv_chunk(chunk, mapping, crs, row0, path, trip_ids, fmt["decimal"]))
        row0 += len(chunk)
    return parts, len(trip_ids)


def _csv_chunk(chunk: pd.DataFrame, mapping: dict[str, str], crs: str, row0: int, path: Path,
               trip_ids: dict[str, int], decimal: str) -> GpsTraces:
    def numeric(fld: str, required: bool) -> np.ndarray | None:
        if fld not in mapping:
            return None
        raw = chunk[mapping[fld]]
        values = _to_numbers(raw, decimal)
        bad = ~np.isfinite(values) & (raw.notna().to_numpy() | required)
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            value = raw.iloc[k]
            problem = ("is empty or NaN" if pd.isna(value) else
                       f"{value!r} is not a number" if isinstance(value, str) else f"{value} is not a finite number")
            raise InputError(path, f"row {row0 + k + 2}: {fld} {problem}")
        return values

    trip = None
    if "trip" in mapping:
        key = chunk[mapping["trip"]].fillna("")
        if "segment" in mapping:  # a trip per track segment
            key = key + "\x1f" + chunk[mapping["segment"]].fillna("")
        codes, names = pd.factorize(key)
        ids = np.array([trip_ids.setdefault(n, len(trip_ids)) for n in names], np.int32)  # one per trip, not per point
        trip = ids[codes]
    lon, lat = cast(np.ndarray, numeric("lon", True)), cast(np.ndarray, numeric("lat", True))  # always mapped
    return from_arrays(lon, lat, crs, t=_times(chunk, mapping, row0, path, decimal),
                       trip=trip, speed=numeric("speed", False), bearing=numeric("bearing", False))


def _to_numbers(raw: pd.Series, decimal: str) -> np.ndarray:
    """Floats of a column (NaN where not a number); text read with ``decimal`` as the decimal mark."""
    if decimal != "." and not pd.api.types.is_numeric_dtype(raw.dtype):
        raw = raw.str.replace(decimal, ".", regex=False)
    return pd.to_numeric(raw, errors="coerce").to_numpy(float, copy=True)


def _times(chunk: pd.DataFrame, mapping: dict[str, str], row0: int, path: Path, decimal: str) -> np.ndarray | None:
    """Unix seconds from numbers or ISO 8601 text."""
    if "time" not in mapping:
        return None
    raw = chunk[mapping["time"]]
    values = _to_numbers(raw, decimal)
    text = ~np.isfinite(values) & raw.notna().to_numpy()
    if text.any():
        parsed = pd.to_datetime(raw[text], errors="coerce", utc=True, format="ISO8601")
        if parsed.isna().any():
            k = int(np.flatnonzero(text)[int(np.flatnonzero(parsed.isna().to_numpy())[0])])
            raise InputError(path, f"row {row0 + k + 2}: time {raw.iloc[k]!r} is neither unix seconds nor ISO 8601")
        values[text] = (parsed - pd.Timestamp("1970-01-01", tz="UTC")).dt.total_seconds().to_numpy()
    return values


# --- GPX ------------------------------------------------------------------------------


def read_gpx(path: Path) -> GpsTraces:
    """Track segments and routes as trips, waypoints as one-point trips (streamed with iterparse)."""
    cols = {k: array("d") for k in ("x", "y")}
    times = _GpxTimes(path)
    trip = array("i")
    state = {"trip": -1, "n": 0, "wpt": 0}
    gz = path.name.lower().endswith(".gz")
    try:
        with (gzip.open(path, "rb") if gz else open(path, "rb")) as f:
            for event, elem in ET.iterparse(f, events=("start", "end")):
                tag = elem.tag.rsplit("}", 1)[-1]
                if event == "start":
                    if tag in ("trkseg", "rte"):
                        state["trip"] += 1
                    continue
                if tag in ("trkpt", "rtept", "wpt"):
                    if tag == "wpt":
                        state["trip"] += 1
                        state["wpt"] += 1
                    _gpx_point(elem, cols, times, path, state)
                    trip.append(max(state["trip"], 0))  # a stray trkpt outside any trkseg joins the first trip
                    elem.clear()
                elif tag in ("trkseg", "trk", "rte"):
                    elem.clear()  # cleared points would otherwise stay attached to their parent
    except ET.ParseError as exc:
        raise InputError(path, f"not a GPX file ({exc})") from None
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise InputError(path, f"not a whole gzip file ({one_line(exc)})") from None
    if state["wpt"] and state["wpt"] == state["n"]:
        log.warning("%s: holds only waypoints (%d lone observations, no track or route): each is read as a trip of "
                    "its own, and no route can be read from one fix; export the track itself", path, state["wpt"])
    traces = from_arrays(np.frombuffer(cols["x"]), np.frombuffer(cols["y"]), WGS84, t=times.values(),
                         trip=np.frombuffer(trip, dtype=np.int32))
    return traces.take(np.argsort(traces.trip, kind="stable"))  # waypoints may sit between tracks


def _gpx_point(elem: ET.Element, cols: dict[str, array], times: _GpxTimes, path: Path, state: dict[str, int]) -> None:
    state["n"] += 1
    try:
        lon, lat = float(elem.attrib["lon"]), float(elem.attrib["lat"])
    except (KeyError, ValueError):
        raise InputError(path, f"point {state['n']}: lat/lon missing or not numbers "
                               f"({dict(elem.attrib)!r})") from None
    if not (math.isfinite(lon) and math.isfinite(lat)):
        raise InputError(path, f"point {state['n']}: lat/lon not finite")
    cols["x"].append(lon)
    cols["y"].append(lat)
    node = next((c for c in elem if c.tag.rsplit("}", 1)[-1] == "time"), None)
    times.add(node.text if node is not None else None)


class _GpxTimes:
    """A GPX file's point times as unix seconds, parsed ``GPX_TIME_BATCH`` at a time: one pandas
    call per point made a timed GPX 60 times slower to read than one without times, and holding
    every time string of a million-point file until the end would cost ~100 MB."""

    def __init__(self, path: Path):
        self.path = path
        self.parsed = array("d")
        self.pending: list[str | None] = []

    def add(self, text: str | None) -> None:
        self.pending.append(text)
        if len(self.pending) >= GPX_TIME_BATCH:
            self._flush()

    def values(self) -> np.ndarray:
        self._flush()
        return np.frombuffer(self.parsed)

    def _flush(self) -> None:
        self.parsed.extend(iso_seconds(self.pending, self.path, len(self.parsed)))
        self.pending.clear()


def iso_seconds(texts: list[str | None], path: Path, first: int, point: str = "point") -> np.ndarray:
    """Unix seconds of ISO 8601 ``texts`` (NaN where missing or blank); ``first``: how many points
    came before, ``point``: what the error calls one (``feature 3, point``)."""
    out = np.full(len(texts), np.nan)
    where = [i for i, s in enumerate(texts) if s and not s.isspace()]
    if not where:
        return out
    strings = [cast(str, texts[i]).strip() for i in where]
    stamps = pd.to_datetime(strings, errors="coerce", utc=True, format="ISO8601")
    seconds = np.round(stamps.as_unit("ns").asi8 / 1e9, 6)  # as Timestamp.timestamp() rounds
    for k in np.flatnonzero(stamps.isna()):  # a form ISO8601 parsing refuses: read it as pandas guesses
        stamp = pd.to_datetime(strings[k], errors="coerce", utc=True)
        if pd.isna(stamp):
            raise InputError(path, f"{point} {first + where[k] + 1}: time {strings[k]!r} is not ISO 8601")
        seconds[k] = stamp.timestamp()
    out[where] = seconds
    return out


def describe(traces: GpsTraces, files: int) -> dict[str, Any]:
    """What the summary says about the traces read."""
    dt = traces.intervals()
    dt = dt[np.isfinite(dt) & (dt > 0)]
    return {"files": files, "points": len(traces), "trips": traces.trips,
            "median_interval_s": round(float(np.median(dt)), 2) if len(dt) else None}


AOI_MARGIN_M = 200.0  # points just outside the AOI still tell how roads at its edge are driven


def load_traces(paths: Iterable[str | Path], source: GpsSource, aoi: Any) -> tuple[GpsTraces, dict[str, Any]]:
    """The points of ``paths`` near ``aoi`` (an osmgap.core.aoi.Aoi), in its metric CRS, and what
    the summary says about them; InputError when none lies inside the AOI (a wrong CRS, most
    likely, or traces of another place)."""
    files = _expand(paths)
    everything, read_as = _read_files(files, source)
    metric = everything.to_crs(aoi.metric_crs)
    minx, miny, maxx, maxy = aoi.to_metric(aoi.geometry).bounds
    m = AOI_MARGIN_M
    near = metric.within((minx - m, miny - m, maxx + m, maxy + m))
    if len(near) == 0:
        where = ", ".join(str(f) for f in files[:3]) + (" ..." if len(files) > 3 else "")
        lon, lat = everything.x, everything.y  # read_gps gives lon/lat
        hint = ", or --gps-crs" if any(f.name.lower().endswith(CSV_SUFFIXES + TEXT_SUFFIXES) for f in files) else ""
        raise InputError(where, f"none of the {len(everything):,} GPS points lies in the AOI {aoi.name} "
                                f"({show_bounds(aoi.bounds)}): they lie at "
                                f"{show_bounds((lon.min(), lat.min(), lon.max(), lat.max()))} "
                                f"read as {read_as}; check the AOI{hint}")
    return near, {**describe(near, len(files)), "points_read": len(everything), "crs": read_as}
