"""Which files of a GPS folder, and which columns of a GPS CSV, hold the traces.

Kept apart from the readers (``osmgap.sources.gps``) because both are guesses about how other
tools lay out their exports, and each guess says in the log what it decided: a wrong guess (every
vehicle read as one zig-zag trip, or a README read as coordinates) changes every figure downstream.
"""
from __future__ import annotations

import gzip
import logging
import re
import zlib
from pathlib import Path

from osmgap.errors import InputError

log = logging.getLogger(__name__)

GPX_SUFFIXES = (".gpx", ".gpx.gz")
CSV_SUFFIXES = (".csv", ".csv.gz")  # pandas reads a gzip'd CSV by its name
TEXT_SUFFIXES = (".txt",)
GEOJSON_SUFFIXES = (".geojson", ".geojson.gz", ".json", ".json.gz")
# in a folder a .geojson is read; a .json only when it looks like GeoJSON (a manifest or a tool's
# settings beside the traces is no trace)
GEOJSON_NAMED = (".geojson", ".geojson.gz")
KNOWN_SUFFIXES = GPX_SUFFIXES + CSV_SUFFIXES + GEOJSON_SUFFIXES + TEXT_SUFFIXES
SKIPPED_NAMED = 5  # skipped files named in the warning; the rest are counted

CSV_FIELDS = ("lon", "lat", "time", "speed", "bearing", "trip")
# Column names recognised without a mapping, normalised (lower case, spaces and hyphens as '_'),
# in order of preference.
CSV_ALIASES = {
    "lon": ("lon", "lng", "long", "longitude", "x"),
    "lat": ("lat", "latitude", "y"),
    "time": ("time", "timestamp", "unix_time", "datetime", "t"),
    "speed": ("speed", "speed_mps", "velocity"),
    "bearing": ("bearing", "heading", "course", "azimuth"),
    # a trip before the vehicle that drove it (a vehicle's day is many trips), a row serial last;
    # track_fid is QGIS/ogr2ogr's track number in a GPX's track_points layer
    "trip": ("trip", "trip_id", "tripid", "track_fid", "track", "track_id", "trackid", "trajectory",
             "trajectory_id", "traj_id", "vehicle_id", "vehicleid", "vehicle", "veh_id", "device_id", "deviceid",
             "device", "unit_id", "unitid", "unit", "tracker_id", "tracker", "imei", "car_id", "bus_id", "taxi_id",
             "driver_id", "user_id", "userid", "id"),
}
# the trip aliases that name who drove, not one drive: a vehicle's (device's, user's) rows are a
# day or more of driving, cut into trips where it fell silent (osmgap.sources.gps.cut_vehicle_trips)
VEHICLE_ALIASES = frozenset(CSV_ALIASES["trip"][CSV_ALIASES["trip"].index("vehicle_id"):CSV_ALIASES["trip"].index("id")])
# a track's segments are apart in time (the receiver lost its fix): one trip each, as in the GPX
TRACK_SEGMENT = {"track_fid": "track_seg_id"}
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_MAPCONSTRUCTION_LINE = re.compile(rf"\s*{_NUMBER}\s+{_NUMBER}\s+{_NUMBER}\s*")


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


def normalised(name: str) -> str:
    """A column name as the aliases spell it: ``Vehicle ID`` -> ``vehicle_id``."""
    return re.sub(r"[\s\-]+", "_", name.strip().lstrip("\ufeff").lower())


def csv_columns(header: list[str], given: dict[str, str], path: Path, fields: tuple[str, ...] = CSV_FIELDS,
                what: str = "column") -> dict[str, str]:
    """Field -> column (``what``: or GeoJSON property) for ``fields``: the mapping given, else the
    first alias present; lon and lat required where asked for. A found track_fid brings its
    track_seg_id as the field ``segment`` (a trip per segment)."""
    lower: dict[str, str] = {}
    for h in header:
        lower.setdefault(normalised(h), h)
    out: dict[str, str] = {}
    for fld in fields:
        if fld in given:
            if given[fld] not in header:
                raise InputError(path, f"--gps-columns maps {fld} to {given[fld]!r}, which is not a {what} "
                                       f"({what}s: {', '.join(header) or 'none'})")
            out[fld] = given[fld]
            continue
        found = next((lower[a] for a in CSV_ALIASES[fld] if a in lower), None)
        if found is not None and found not in out.values():
            out[fld] = found
    for fld in ("lon", "lat"):
        if fld in fields and fld not in out:
            raise InputError(path, f"no {fld} column (columns: {', '.join(header)}); name it with --gps-columns {fld}=COLUMN")
    segment = lower.get(TRACK_SEGMENT.get(normalised(out.get("trip", "")), ""))
    if "trip" not in given and segment is not None and segment not in out.values():
        out["segment"] = segment
    return out


def names_vehicles(mapping: dict[str, str], given: dict[str, str]) -> bool:
    """Whether the trip column was found by a vehicle's name (``vehicle_id``, ``imei``, ...), not
    given with --gps-columns nor split by track segment: its rows are then cut into trips."""
    return ("trip" in mapping and "trip" not in given and "segment" not in mapping
            and normalised(mapping["trip"]) in VEHICLE_ALIASES)


def describe_trip_columns(mapping: dict[str, str]) -> str:
    """How the log names the column(s) that told trips apart."""
    if "segment" in mapping:
        return f"columns {mapping['trip']!r} and {mapping['segment']!r} (a trip per track segment)"
    return f"column {mapping['trip']!r}"


def gps_files_in(folder: Path) -> list[Path]:
    """The files of ``folder`` osmgap reads as GPS traces, in name order; the others are skipped
    with one warning naming them (hidden files silently). A ``.txt`` is read as mapconstruction
    traces when its first line looks like ``x y unix_time``, or when the folder holds nothing else
    to read (then the reader's error says what is wrong with it): a README beside the traces is
    not coordinates."""
    try:
        entries = sorted(f for f in folder.iterdir() if f.is_file() and not f.name.startswith("."))
    except OSError as exc:
        raise InputError(folder, f"cannot list the folder ({exc.strerror or exc})") from None
    known = [f for f in entries if f.name.lower().endswith(GPX_SUFFIXES + CSV_SUFFIXES + GEOJSON_NAMED)
             or (f.name.lower().endswith(GEOJSON_SUFFIXES) and looks_like_geojson(f))]
    texts = [f for f in entries if f.name.lower().endswith(TEXT_SUFFIXES)]
    traces = [f for f in texts if looks_like_mapconstruction(f)]
    chosen = set(known + (traces if known or traces else texts))
    files = [f for f in entries if f in chosen]
    skipped = [f.name for f in entries if f not in chosen]
    if not files:
        held = f" (it holds {_some(skipped)})" if skipped else ""
        raise InputError(folder, f"directory holds no .gpx, .csv, .geojson or .txt GPS files{held}")
    if skipped:
        log.warning("%s: skipped %d file%s that osmgap does not read as GPS traces (kinds it reads: .gpx, .gpx.gz, "
                    ".csv, .csv.gz, .geojson, .geojson.gz, .txt as mapconstruction 'x y unix_time'): %s", folder, len(skipped),
                    "" if len(skipped) == 1 else "s", _some(skipped))
    return files


def _some(names: list[str]) -> str:
    more = len(names) - SKIPPED_NAMED
    return ", ".join(names[:SKIPPED_NAMED]) + (f" and {more} more" if more > 0 else "")


def looks_like_mapconstruction(path: Path) -> bool:
    """Whether the first non-blank line of ``path`` is three numbers (``x y unix_time``)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return True  # read it, and let the reader's error name the problem
    first = next((line for line in head.decode("utf-8", "replace").splitlines() if line.strip()), "")
    return bool(_MAPCONSTRUCTION_LINE.fullmatch(first))


_GEOJSON_TYPE = re.compile(r'"type"\s*:\s*"(FeatureCollection|Feature|LineString|MultiLineString|Point)"')


def looks_like_geojson(path: Path) -> bool:
    """Whether the start of a .json (or .json.gz) names a GeoJSON type a trace can be."""
    try:
        with (gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")) as f:
            head = f.read(4096)
    except (OSError, EOFError, zlib.error):
        return True  # read it, and let the reader's error name the problem
    return bool(_GEOJSON_TYPE.search(head.decode("utf-8", "replace")))
