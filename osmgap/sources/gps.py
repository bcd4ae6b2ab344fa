"""Read GPS traces from GPX, CSV and the mapconstruction text format into ``GpsTraces``.

- GPX 1.0/1.1: every ``trkseg`` and every ``rte`` is a trip; waypoints (``wpt``) are lone
  observations, one trip each. Always WGS84, whatever ``--gps-crs`` says.
- CSV: a header row; columns lon, lat and optional time, speed, bearing, trip, found by common
  names or given by a mapping (``lon=LONGITUDE,lat=LAT,time=ts``). Time is unix seconds (or
  milli-, micro-, nanoseconds, told apart by size) or ISO 8601. Coordinates are in ``crs``
  (WGS84 unless stated). Read in chunks of a million rows.
- mapconstruction (Biagioni and Eriksson's benchmark; ``.txt``): ``x y unix_time`` per line, one
  file per trip, in a CRS that must be stated, since the format does not say.
A directory stands for the files in it. Bad rows, coordinates impossible for the stated CRS and
files without points raise ``InputError`` naming the file and the row, because a silently
dropped row or a trace in the wrong hemisphere would quietly change every figure downstream.
"""
from __future__ import annotations

import logging
import math
import xml.etree.ElementTree as ET
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

from osmgap.core.aoi import _transformer, check_earth_crs
from osmgap.core.datamodel import WGS84
from osmgap.core.traces import GpsTraces, concat, from_arrays
from osmgap.errors import InputError, one_line
from osmgap.sources.osm_extent import show_bounds

log = logging.getLogger(__name__)

CSV_FIELDS = ("lon", "lat", "time", "speed", "bearing", "trip")
# Column names recognised without a mapping, lower-cased.
CSV_ALIASES = {
    "lon": ("lon", "lng", "long", "longitude", "x"),
    "lat": ("lat", "latitude", "y"),
    "time": ("time", "timestamp", "unix_time", "datetime", "t"),
    "speed": ("speed", "speed_mps", "velocity"),
    "bearing": ("bearing", "heading", "course", "azimuth"),
    "trip": ("trip", "trip_id", "track", "track_id", "vehicle", "id"),
}
CSV_CHUNK_ROWS = 1_000_000
# numeric times above these are not unix seconds (1e11 s is the year 5138) but finer units
UNIX_TIME_UNITS = ((1e17, 1e9, "nanoseconds"), (1e14, 1e6, "microseconds"), (1e11, 1e3, "milliseconds"))
GPX_SUFFIXES = (".gpx",)
CSV_SUFFIXES = (".csv",)
TEXT_SUFFIXES = (".txt",)
AREA_OF_USE_MARGIN_DEG = 1.0  # projected coordinates may stray a little beyond a zone's area of use


@dataclass(frozen=True)
class GpsSource:
    """How to read GPS files: the CRS of CSV/text coordinates and a CSV column mapping."""

    crs: str | None = None
    columns: dict[str, str] | None = None


def parse_column_mapping(text: str) -> dict[str, str]:
    """``lon=LONGITUDE,lat=LAT`` -> {'lon': 'LONGITUDE', 'lat': 'LAT'}; InputError when malformed."""
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, column = part.partition("=")
        if not sep or key.strip() not in CSV_FIELDS or not column.strip():
            raise InputError("--gps-columns", f"expected FIELD=COLUMN pairs with FIELD one of {', '.join(CSV_FIELDS)}; "
                                              f"got {part!r}")
        out[key.strip()] = column.strip()
    return out


def read_gps(paths: Iterable[str | Path], source: GpsSource = GpsSource()) -> GpsTraces:
    """All points of ``paths`` (files or directories), in WGS84 lon/lat, trips numbered apart."""
    files = _expand(paths)
    return concat([read_file(f, source).to_crs(WGS84) for f in files])  # files may differ in CRS


def read_file(path: Path, source: GpsSource = GpsSource()) -> GpsTraces:
    """One file's points in its own CRS, checked against it."""
    name = path.name.lower()
    try:
        if name.endswith(GPX_SUFFIXES):
            traces = read_gpx(path)
        elif name.endswith(CSV_SUFFIXES):
            traces = read_csv(path, source.crs or WGS84, source.columns)
        elif name.endswith(TEXT_SUFFIXES):
            if not source.crs:
                raise InputError(path, "mapconstruction traces (x y unix_time) do not say their CRS; give --gps-crs EPSG:N")
            traces = read_mapconstruction(path, source.crs)
        else:
            raise InputError(path, "unknown GPS format: expected .gpx, .csv or .txt (mapconstruction x y unix_time)")
    except OSError as exc:  # no permission, a folder named like a file: the user's input, exit 2
        raise InputError(path, f"cannot read ({exc.strerror or exc})") from None
    if len(traces) == 0:
        raise InputError(path, "holds no GPS points (empty track)")
    check_crs(traces, path)
    traces = _in_seconds(traces, path)
    back, steps = traces.steps_back_in_time()
    if back:
        log.warning("%s: %d of %d steps between fixes of a trip go back in time; trips are read in file order and "
                    "cut where time goes back: are the fixes in time order?", path, back, steps)
    return traces


def _in_seconds(traces: GpsTraces, path: Path) -> GpsTraces:
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
            try:
                inside = sorted(f for f in p.iterdir() if f.is_file() and f.name.lower().endswith(
                    GPX_SUFFIXES + CSV_SUFFIXES + TEXT_SUFFIXES))
            except OSError as exc:
                raise InputError(p, f"cannot list the folder ({exc.strerror or exc})") from None
            if not inside:
                raise InputError(p, "directory holds no .gpx, .csv or .txt GPS files")
            files.extend(inside)
        elif p.is_file():
            files.append(p)
        else:
            raise InputError(p, "GPS file not found")
    if not files:
        raise InputError(None, "no GPS file given")
    return files


def _crs(text: str, path: Path) -> ProjCRS:
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
    crs = _crs(crs_text, Path(path)) if isinstance(crs_text, str) else crs_text
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise InputError(path, "a coordinate is not a finite number")
    if crs.is_geographic:
        bad = np.flatnonzero((np.abs(x) > 180) | (np.abs(y) > 90))
        if len(bad):
            raise InputError(path, f"{what} {bad[0] + 1}: ({x[bad[0]]:g}, {y[bad[0]]:g}) is not lon/lat "
                                   f"degrees; projected coordinates need --gps-crs EPSG:N")
        return
    lon, lat = _transformer(crs, WGS84).transform(x, y)
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
    try:
        with _csv_errors(path):
            header = list(pd.read_csv(path, nrows=0).columns)
    except pd.errors.EmptyDataError:
        raise InputError(path, "holds no GPS points (empty file)") from None
    mapping = csv_columns(header, columns or {}, path)
    with _csv_errors(path):  # a bad byte or line may come a million rows after the header
        try:  # fast path: numbers parsed by pandas' C reader, no Python string per value
            parts = _read_csv_chunks(path, mapping, crs, numeric=True)
        except (pd.errors.ParserError, UnicodeDecodeError):
            raise
        except ValueError:  # a value that is not a number (an ISO time, or a bad row): name the row
            parts = _read_csv_chunks(path, mapping, crs, numeric=False)
    if not parts:
        return from_arrays(np.zeros(0), np.zeros(0), crs)
    traces = concat(parts, renumber=False)
    parts.clear()  # copied: freed before any sort, so a large file is held at most twice while read
    # rows of a trip may be scattered through the file; make each trip contiguous, rows in order
    # (trips are numbered as they first appear: a file grouped by trip is in order already)
    scattered = "trip" in mapping and bool(np.any(traces.trip[1:] < traces.trip[:-1]))
    return traces.take(np.argsort(traces.trip, kind="stable")) if scattered else traces


@contextmanager
def _csv_errors(path: Path) -> Iterator[None]:
    """pandas' parse and decode errors (a binary or non-UTF-8 file) as an InputError naming the file."""
    try:
        yield
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(path, f"not a CSV file of GPS points, or not UTF-8 ({one_line(exc)[:160]})") from None


def _read_csv_chunks(path: Path, mapping: dict[str, str], crs: str, numeric: bool) -> list[GpsTraces]:
    dtype = {c: ("float64" if numeric and f != "trip" else str) for f, c in mapping.items()}
    trip_ids: dict[str, int]
    parts, row0, trip_ids = [], 0, {}
    for chunk in pd.read_csv(path, usecols=list(mapping.values()), dtype=dtype, chunksize=CSV_CHUNK_ROWS):
        parts.append(_csv_chunk(chunk, mapping, crs, row0, path, trip_ids))
        row0 += len(chunk)
    return parts


def csv_columns(header: list[str], given: dict[str, str], path: Path) -> dict[str, str]:
    """Field -> column: the mapping given, else the first alias present; lon and lat required."""
    lower = {h.lower().strip(): h for h in header}
    out: dict[str, str] = {}
    for fld in CSV_FIELDS:
        if fld in given:
            if given[fld] not in header:
                raise InputError(path, f"--gps-columns maps {fld} to {given[fld]!r}, which is not a column "
                                       f"(columns: {', '.join(header)})")
            out[fld] = given[fld]
            continue
        found = next((lower[a] for a in CSV_ALIASES[fld] if a in lower), None)
        if found is not None and found not in out.values():
            out[fld] = found
    for fld in ("lon", "lat"):
        if fld not in out:
            raise InputError(path, f"no {fld} column (columns: {', '.join(header)}); name it with --gps-columns {fld}=COLUMN")
    return out


def _csv_chunk(chunk: pd.DataFrame, mapping: dict[str, str], crs: str, row0: int, path: Path,
               trip_ids: dict[str, int]) -> GpsTraces:
    def numeric(fld: str, required: bool) -> np.ndarray | None:
        if fld not in mapping:
            return None
        raw = chunk[mapping[fld]]
        values = pd.to_numeric(raw, errors="coerce").to_numpy(float)
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
        codes, names = pd.factorize(chunk[mapping["trip"]].fillna(""))
        ids = np.array([trip_ids.setdefault(n, len(trip_ids)) for n in names], np.int32)  # one per trip, not per point
        trip = ids[codes]
    lon, lat = cast(np.ndarray, numeric("lon", True)), cast(np.ndarray, numeric("lat", True))  # always mapped
    return from_arrays(lon, lat, crs, t=_times(chunk, mapping, row0, path),
                       trip=trip, speed=numeric("speed", False), bearing=numeric("bearing", False))


def _times(chunk: pd.DataFrame, mapping: dict[str, str], row0: int, path: Path) -> np.ndarray | None:
    """Unix seconds from numbers or ISO 8601 text."""
    if "time" not in mapping:
        return None
    raw = chunk[mapping["time"]]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(float, copy=True)
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
    cols = {k: array("d") for k in ("x", "y", "t")}
    trip = array("i")
    state = {"trip": -1, "n": 0}
    try:
        for event, elem in ET.iterparse(path, events=("start", "end")):
            tag = elem.tag.rsplit("}", 1)[-1]
            if event == "start":
                if tag in ("trkseg", "rte"):
                    state["trip"] += 1
                continue
            if tag in ("trkpt", "rtept", "wpt"):
                if tag == "wpt":
                    state["trip"] += 1
                _gpx_point(elem, cols, path, state)
                trip.append(max(state["trip"], 0))  # a stray trkpt outside any trkseg joins the first trip
                elem.clear()
            elif tag in ("trkseg", "trk", "rte"):
                elem.clear()  # cleared points would otherwise stay attached to their parent
    except ET.ParseError as exc:
        raise InputError(path, f"not a GPX file ({exc})") from None
    traces = from_arrays(np.frombuffer(cols["x"]), np.frombuffer(cols["y"]), WGS84, t=np.frombuffer(cols["t"]),
                         trip=np.frombuffer(trip, dtype=np.int32))
    return traces.take(np.argsort(traces.trip, kind="stable"))  # waypoints may sit between tracks


def _gpx_point(elem: ET.Element, cols: dict[str, array], path: Path, state: dict[str, int]) -> None:
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
    cols["t"].append(_gpx_time(elem, path, state["n"]))


def _gpx_time(elem: ET.Element, path: Path, n: int) -> float:
    node = next((c for c in elem if c.tag.rsplit("}", 1)[-1] == "time"), None)
    if node is None or not (node.text or "").strip():
        return math.nan
    assert node.text is not None  # not blank, checked above
    stamp = pd.to_datetime(node.text.strip(), errors="coerce", utc=True)
    if pd.isna(stamp):
        raise InputError(path, f"point {n}: time {node.text.strip()!r} is not ISO 8601")
    return stamp.timestamp()


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
    everything = read_gps(files, source)
    metric = everything.to_crs(aoi.metric_crs)
    minx, miny, maxx, maxy = aoi.to_metric(aoi.geometry).bounds
    m = AOI_MARGIN_M
    near = metric.within((minx - m, miny - m, maxx + m, maxy + m))
    if len(near) == 0:
        where = ", ".join(str(f) for f in files[:3]) + (" ..." if len(files) > 3 else "")
        lon, lat = everything.x, everything.y  # read_gps gives lon/lat
        raise InputError(where, f"none of the {len(everything):,} GPS points lies in the AOI {aoi.name} "
                                f"({show_bounds(aoi.bounds)}): they lie at "
                                f"{show_bounds((lon.min(), lat.min(), lon.max(), lat.max()))} "
                                f"read as {source.crs or WGS84}; check the AOI, or --gps-crs")
    return near, {**describe(near, len(files)), "points_read": len(everything),
                  "crs": source.crs or WGS84}
