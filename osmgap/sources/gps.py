"""Read GPS traces from GPX, CSV and the mapconstruction text format into ``GpsTraces``.

- GPX 1.0/1.1 (or gzip'd, ``.gpx.gz``): every ``trkseg`` and every ``rte`` is a trip; waypoints
  (``wpt``) are lone observations, one trip each. Always WGS84, whatever ``--gps-crs`` says.
- CSV (or ``.csv.gz``): a header row; columns lon, lat and optional time, speed, bearing, trip,
  found by common names (``osmgap.sources.gps_layout``) or given by a mapping
  (``lon=LONGITUDE,lat=LAT,time=ts``). Time is unix seconds (or milli-, micro-, nanoseconds,
  told apart by size) or ISO 8601. Coordinates are in ``crs`` (WGS84 unless stated). Read in
  chunks of a million rows. A header with more ';' than ',' is European Excel's: ';' between
  fields, ',' as the decimal mark; more tabs, tab-separated; Excel's ``sep=X`` first line is
  honoured. Rows with an empty trip are never joined with others (``TripKeys``). A trip column
  found by a vehicle's name (``vehicle_id``, ``imei``, ...), or no trip column at all (the rows are one vehicle's), is cut into trips where
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
import re
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
# Rows of a file without a trip column that jump faster than a vehicle drives (the matcher's 180
# km/h, osmgap.gps.matching.MatchParams.max_speed_mps) from one row to the next at more than this
# share of the steps are several vehicles' fixes interleaved: one receiver's glitches are a few
# steps in a hundred, two vehicles' rows sorted by time alternate at nearly every step.
SEVERAL_VEHICLES_SPEED_MPS = 50.0
SEVERAL_VEHICLES_SHARE = 0.1
SEVERAL_VEHICLES_MIN_STEPS = 10


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
    """``check_crs`` for any coordinates (``what``: the word for one of them in the message; a
    ``vertex`` is a mapconstruction graph's, placed by --osm-crs, so the message names that option
    and not the traces' own: each pointing at the other left no way out)."""
    crs = parse_crs(crs_text, Path(path)) if isinstance(crs_text, str) else crs_text
    option, other = (("--osm-crs", " (--gps-crs in change and train)") if what == "vertex" else
                     ("--gps-crs", " (a mapconstruction graph as --osm takes its own from --osm-crs)"))
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise InputError(path, "a coordinate is not a finite number")
    if crs.is_geographic:
        bad = np.flatnonzero((np.abs(x) > 180) | (np.abs(y) > 90))
        if len(bad):
            raise InputError(path, f"{what} {bad[0] + 1}: ({x[bad[0]]:g}, {y[bad[0]]:g}) is not lon/lat "
                                   f"degrees; projected coordinates need {option} EPSG:N{other}")
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
                               f"area of use of {crs.to_string()}; is {option} right?{other}")


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
    header, fmt = _csv_header(path)
    mapping = csv_columns(header, columns or {}, path)
    with _csv_errors(path):  # a bad byte or line may come a million rows after the header
        try:  # fast path: numbers parsed by pandas' C reader, no Python string per value
            parts, keys = _read_csv_chunks(path, mapping, crs, fmt, numeric=True)
        except (pd.errors.ParserError, UnicodeDecodeError):
            raise
        except ValueError:  # a value that is not a number (an ISO time, or a bad row): name the row
            parts, keys = _read_csv_chunks(path, mapping, crs, fmt, numeric=False)
    if not parts:
        return from_arrays(np.zeros(0), np.zeros(0), crs), ""
    trips = keys.count
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
    blank = keys.blank(traces.trip, path, mapping["trip"], "row") if "trip" in mapping else None
    if vehicles or blank is not None:
        traces = times_in_seconds(traces, path)  # silences are judged in seconds (read_file's call is then a no-op)
        if "trip" not in mapping:
            whose, tell = "rows in file order", f"{found}: name the column that tells vehicles apart with --gps-columns trip=COLUMN"
        else:
            whose, tell = f"a vehicle's rows, column {mapping['trip']!r}" if vehicles else f"rows with an empty {mapping['trip']!r}", ""
        traces = cut_vehicle_trips(traces, path, whose, tell, only=None if vehicles else blank)
    if "trip" in mapping:
        cut = f" ({trips} vehicle{'' if trips == 1 else 's'} cut into trips where silent)" if vehicles else ""
        log.info("%s: trips told apart by %s: %d trip%s%s", path, describe_trip_columns(mapping), traces.trips,
                 "" if traces.trips == 1 else "s", cut)
    else:
        log.info("%s: no trip column (columns: %s): the rows are read as one vehicle, in file order, cut into trips "
                 "where silent: %d trip%s", path, ", ".join(header), traces.trips, "" if traces.trips == 1 else "s")
        _warn_if_several_vehicles(traces, path, found)
    return traces, hint


BLANK_KEY = "\x00blank "  # the key of a run of rows with an empty trip id: no file's id starts so


class TripKeys:
    """Trip ids of rows (CSV) or points (GeoJSON) by their trip value, numbered in order of first
    appearance across a file's chunks. An empty value says nothing about whose row it is, so such
    rows are never joined with others on it: each run of consecutive ones is a vehicle of its own,
    cut into trips where silent as a file without a trip column is (``blank``). A run is what a
    file grouped by trip gives for a trip whose id was left out, and adjacency in the file is the
    only sign rows with no id belong together; joined on '' as one key, unrelated trips days apart
    were one trip, a chord drawn from one's end to the other's start."""

    def __init__(self) -> None:
        self.known: dict[str, int] = {}
        self.blank_rows = 0
        self.blank_runs = 0
        self._in_run = False  # the previous chunk ended in a row with an empty value

    @property
    def count(self) -> int:
        return len(self.known)

    def keys(self, raw: pd.Series) -> pd.Series:
        """``raw`` trip values as keys; an empty one keyed by the number of its run."""
        text = raw.fillna("").astype(str)
        empty = text.str.strip().eq("").to_numpy()
        if not empty.any():
            self._in_run = False
            return text
        run = self.blank_runs + np.cumsum(empty & ~np.r_[self._in_run, empty[:-1]])
        self.blank_runs, self.blank_rows, self._in_run = int(run[-1]), self.blank_rows + int(empty.sum()), bool(empty[-1])
        return text.where(~empty, pd.Series(BLANK_KEY + run.astype(str), index=raw.index))

    def ids(self, keys: pd.Series) -> np.ndarray:
        """The trip id of each key (one dictionary look-up per trip, not per row)."""
        codes, names = pd.factorize(keys)
        return np.array([self.known.setdefault(n, len(self.known)) for n in names], np.int32)[codes]

    def blank(self, trip: np.ndarray, path: Path, column: str, row: str) -> np.ndarray | None:
        """Which fixes (trip ids ``trip``) had an empty trip value, said in a warning; None if none."""
        if not self.blank_rows:
            return None
        log.warning("%s: %d %s%s with an empty %r, in %d run%s of consecutive %ss: each run is read as a vehicle of "
                    "its own, never joined with other %ss, and cut into trips where silent; fill in %r to read "
                    "them otherwise", path, self.blank_rows, row, "" if self.blank_rows == 1 else "s", column,
                    self.blank_runs, "" if self.blank_runs == 1 else "s", row, row, column)
        return np.isin(trip, [i for k, i in self.known.items() if k.startswith(BLANK_KEY)])


def cut_vehicle_trips(traces: GpsTraces, path: Path, what: str, hint: str = "", only: np.ndarray | None = None) -> GpsTraces:
    """Each trip of ``traces`` taken as one vehicle's rows (contiguous, in file order) and cut into
    trips where it was silent, or its clock went back, for longer than ``TRIP_GAP_S`` (or
    ``TRIP_GAP_FACTOR`` times its median interval, if longer); said in the log where time went
    back (``what``: whose rows, ``hint``: what to add; ``only``: the fixes whose trips are so
    cut, default all). Trips are renumbered 0, 1, ... in order."""
    dt = traces.intervals()  # NaN at a vehicle's first fix and where a fix has no time
    if not np.isfinite(dt).any():
        return traces
    typical = pd.Series(np.where(dt > 0, dt, np.nan)).groupby(traces.trip).transform("median").to_numpy()
    gap = np.maximum(TRIP_GAP_S, TRIP_GAP_FACTOR * np.nan_to_num(typical))
    with np.errstate(invalid="ignore"):
        silent, reset = dt > gap, dt < -gap
    if only is not None:
        silent, reset = silent & only, reset & only
    if not (silent.any() or reset.any()):
        return traces
    if reset.any():
        log.warning("%s: time goes back by more than %d s at %d fix%s (%s): read as the logs of several vehicles, "
                    "or days, one after another, with a new trip at each.%s", path, int(TRIP_GAP_S), int(reset.sum()),
                    "" if reset.sum() == 1 else "es", what, hint)
    starts = ~traces.same_trip_as_previous() | silent | reset
    return replace(traces, trip=(np.cumsum(starts) - 1).astype(np.int32))


def _warn_if_several_vehicles(traces: GpsTraces, path: Path, found: str) -> None:
    """Warn when rows read as one vehicle's (no trip column) move faster than any vehicle between
    one row and the next, at many steps: a fleet's fixes interleaved in time, which the log's
    INFO line and the summary's tiny median interval did not point to (they asked whether the
    times were right)."""
    dt = traces.intervals()
    timed = np.isfinite(dt) & (dt >= 0)
    if timed.sum() < SEVERAL_VEHICLES_MIN_STEPS:
        return
    wgs = traces.to_crs(WGS84)
    metres = np.full(len(wgs), np.nan)  # equirectangular: steps of metres to kilometres
    metres[1:] = np.hypot(np.diff(wgs.x) * np.cos(np.radians(wgs.y[1:])) * 111_320.0, np.diff(wgs.y) * 110_540.0)
    with np.errstate(invalid="ignore"):
        jumps = timed & (metres > SEVERAL_VEHICLES_SPEED_MPS * np.maximum(dt, 1.0))
    if jumps.sum() > SEVERAL_VEHICLES_SHARE * timed.sum():
        positive = dt[timed & (dt > 0)]
        median = f"{np.median(positive):.2g} s" if len(positive) else "0 s"
        log.warning("%s: %d of %d steps between consecutive rows are faster than %d km/h (median interval %s): this "
                    "looks like several vehicles' fixes in one file, read as one vehicle's.%s: name the column that "
                    "tells vehicles apart with --gps-columns trip=COLUMN", path, int(jumps.sum()), int(timed.sum()),
                    round(SEVERAL_VEHICLES_SPEED_MPS * 3.6), median, found)


def _csv_header(path: Path) -> tuple[list[str], dict[str, Any]]:
    """The header's column names and how pandas reads the file: fields separated by ',', unless
    the first line holds more ';' (European Excel's CSV, whose decimal mark is ',') or more tabs
    (a tab-separated export); Excel's ``sep=X`` first line is skipped and honoured. Anything but
    ',' is said in the log."""
    try:
        with (gzip.open(path, "rt", encoding="utf-8-sig", errors="replace") if path.name.lower().endswith(".gz")
              else open(path, encoding="utf-8-sig", errors="replace")) as f:
            first = f.readline().strip()
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise InputError(path, f"not a whole gzip file ({one_line(exc)})") from None
    stated = re.fullmatch(r'"?sep=(.)"?[,;\t]*', first, re.IGNORECASE)
    counts = {s: first.count(s) for s in (",", ";", "\t")}  # a tie goes to ','
    sep = stated.group(1) if stated else max(counts, key=lambda s: counts[s])
    fmt: dict[str, Any] = {"sep": sep, "decimal": "," if sep == ";" else ".", "skiprows": 1 if stated else 0}
    try:
        with _csv_errors(path):
            header = [str(h) for h in pd.read_csv(path, nrows=0, sep=sep, skiprows=fmt["skiprows"]).columns]
    except pd.errors.EmptyDataError:
        raise InputError(path, "holds no GPS points (empty file)") from None
    if stated:
        log.info("%s: its first line %r names the separator, as Excel writes it: skipped and honoured", path, first)
    if sep == ";":
        log.info("%s: read as semicolon-separated, with ',' as the decimal mark (as European Excel writes CSV)", path)
    elif sep == "\t":
        log.info("%s: read as tab-separated", path)
    return header, fmt


@contextmanager
def _csv_errors(path: Path) -> Iterator[None]:
    """pandas' parse and decode errors (a binary or non-UTF-8 file) as an InputError naming the file."""
    try:
        yield
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(path, f"not a CSV file of GPS points, or not UTF-8 ({one_line(exc)[:160]})") from None


def _read_csv_chunks(path: Path, mapping: dict[str, str], crs: str, fmt: dict[str, Any],
                     numeric: bool) -> tuple[list[GpsTraces], TripKeys]:
    """The file's points, a chunk at a time, and their trips' keys."""
    dtype = {c: ("float64" if numeric and f not in ("trip", "segment") else str) for f, c in mapping.items()}
    parts: list[GpsTraces] = []
    row0, trip_keys = 0, TripKeys()
    for chunk in pd.read_csv(path, usecols=list(mapping.values()), dtype=dtype, chunksize=CSV_CHUNK_ROWS, **fmt):
        parts.append(_csv_chunk(chunk, mapping, crs, row0, path, trip_keys, fmt["decimal"]))
        row0 += len(chunk)
    return parts, trip_keys


def _csv_chunk(chunk: pd.DataFrame, mapping: dict[str, str], crs: str, row0: int, path: Path,
               trip_keys: TripKeys, decimal: str) -> GpsTraces:
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
        key = trip_keys.keys(chunk[mapping["trip"]])
        if "segment" in mapping:  # a trip per track segment
            key = key + "\x1f" + chunk[mapping["segment"]].fillna("")
        trip = trip_keys.ids(key)
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
            raise InputError(path, f"row {row0 + k + 2}: time {raw.iloc[k]!r} is neither unix seconds nor ISO 8601"
                                   f"{_time_hint(str(raw.iloc[k]))}")
        values[text] = (parsed - pd.Timestamp("1970-01-01", tz="UTC")).dt.total_seconds().to_numpy()
    return values


_TIME_OF_DAY = re.compile(r"\d{1,2}:\d{2}(:\d{2}(\.\d*)?)?")
_SLASHED_DATE = re.compile(r"\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}\b.*")


def _time_hint(value: str) -> str:
    """What to do about a time that could not be read, for the two layouts common exports write:
    a time of day whose date is in another column (GPSBabel's unicsv: Date, Time), and a date
    with the day and month in a locale's order (Excel: 04/03/2011 is April or March)."""
    value = value.strip()
    iso = "one column of ISO 8601 times (2011-04-03T04:50:55Z) or unix seconds"
    if _TIME_OF_DAY.fullmatch(value):
        return (f": a time of day without its date (a separate date column, as GPSBabel's unicsv writes, is not "
                f"read); write {iso}")
    if _SLASHED_DATE.fullmatch(value):
        return f": a date whose day and month order is the locale's and cannot be told; write {iso}"
    return ""


# --- GPX ------------------------------------------------------------------------------


def read_gpx(path: Path) -> GpsTraces:
    """Track segments and routes as trips, waypoints as one-point trips (streamed with iterparse).
    Track points outside any ``trkseg`` (invalid, but some exporters write a ``trk``'s points
    straight into it) are a trip per run of them, so per ``trk``: joined into one trip, as they
    were, separate tracks drew a chord from one's end to the next one's start."""
    cols = {k: array("d") for k in ("x", "y")}
    times = _GpxTimes(path)
    trip = array("i")
    state = {"trip": -1, "n": 0, "wpt": 0, "seg": 0, "bare": 0, "stray": 0}
    gz = path.name.lower().endswith(".gz")
    try:
        with (gzip.open(path, "rb") if gz else open(path, "rb")) as f:
            for event, elem in ET.iterparse(f, events=("start", "end")):
                tag = elem.tag.rsplit("}", 1)[-1]
                if event == "start":
                    if tag in ("trkseg", "rte"):
                        state["trip"] += 1
                    state["seg"] += tag == "trkseg"
                    state["bare"] = 0 if tag in ("trk", "trkseg", "rte") else state["bare"]
                    continue
                if tag in ("trkpt", "rtept", "wpt"):
                    if tag == "wpt":
                        state["trip"] += 1
                        state["wpt"] += 1
                        state["bare"] = 0
                    elif tag == "trkpt" and not state["seg"]:  # outside any trkseg: a run of them is a trip
                        state["trip"] += not state["bare"]
                        state["bare"], state["stray"] = 1, state["stray"] + 1
                    _gpx_point(elem, cols, times, path, state)
                    trip.append(max(state["trip"], 0))  # a stray rtept outside any rte joins the first trip
                    elem.clear()
                elif tag in ("trkseg", "trk", "rte"):
                    state["seg"] -= tag == "trkseg"
                    elem.clear()  # cleared points would otherwise stay attached to their parent
    except ET.ParseError as exc:
        raise InputError(path, f"not a GPX file ({exc})") from None
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise InputError(path, f"not a whole gzip file ({one_line(exc)})") from None
    if state["stray"]:
        log.warning("%s: %d track points lie outside any <trkseg> (not valid GPX): each <trk>'s are read as a trip "
                    "of their own", path, state["stray"])
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
    near = metric.crop((minx - m, miny - m, maxx + m, maxy + m))  # a trip leaving and re-entering: two pieces
    if len(near) == 0:
        where = ", ".join(str(f) for f in files[:3]) + (" ..." if len(files) > 3 else "")
        lon, lat = everything.x, everything.y  # read_gps gives lon/lat
        hint = ", or --gps-crs" if any(f.name.lower().endswith(CSV_SUFFIXES + TEXT_SUFFIXES) for f in files) else ""
        raise InputError(where, f"none of the {len(everything):,} GPS points lies in the AOI {aoi.name} "
                                f"({show_bounds(aoi.bounds)}): they lie at "
                                f"{show_bounds((lon.min(), lat.min(), lon.max(), lat.max()))} "
                                f"read as {read_as}; check the AOI{hint}")
    return near, {**describe(near, len(files)), "points_read": len(everything), "crs": read_as}
