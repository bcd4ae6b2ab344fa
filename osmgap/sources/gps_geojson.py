"""Read GPS traces from GeoJSON (``.geojson``, ``.json``, gzip'd) into ``GpsTraces``.

GPX converted to GeoJSON (togeojson, Mapbox's and QGIS's converters, ogr2ogr) or a tracker's
own export:

- a LineString feature is a trip, and each part of a MultiLineString one too; per-point times come
  from a ``coordTimes`` or ``times`` property (togeojson; also under ``coordinateProperties``), a
  list as long as the line (a list per part for a MultiLineString), ISO 8601 or unix seconds;
  without one the trip has no times. A third coordinate (elevation) is ignored.
- Point features are lone fixes: grouped into trips by a trip or vehicle property, found by the
  names CSV columns are (``osmgap.sources.gps_layout``; ``--gps-columns trip=PROPERTY``), in file
  order, a vehicle's cut where it fell silent as in a CSV; timed by a time property. Without a
  trip property each point is an observation of its own, as a GPX waypoint is, and the log says so.
- Coordinates are WGS84 lon/lat (RFC 7946), whatever ``--gps-crs`` says; a legacy (2008) ``crs``
  member naming another CRS, as ogr2ogr and QGIS write for a projected layer, is honoured: the
  coordinates are in it and refusing them would only make the mapper reproject a file that says
  what it holds.

Anything else (a Polygon, a time list of the wrong length, a coordinate that is not a number, a
file with no line or point) is an ``InputError`` naming the file and the feature. The whole
document is loaded at once (``json``): a million fixes take a few hundred MB while read.
"""
from __future__ import annotations

import gzip
import json
import logging
import math
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from osmgap.core.datamodel import WGS84
from osmgap.core.traces import GpsTraces, concat, from_arrays
from osmgap.errors import InputError, nesting_refused, one_line
from osmgap.sources.gps import TripKeys, cut_vehicle_trips, iso_seconds, parse_crs, times_in_seconds
from osmgap.sources.gps_layout import csv_columns, describe_trip_columns, names_vehicles

log = logging.getLogger(__name__)

TIME_LISTS = ("coordTimes", "times")  # togeojson's names; newer versions nest them in coordinateProperties
POINT_FIELDS = ("time", "speed", "bearing", "trip")  # properties of Point features read, as CSV columns
LINES = ("LineString", "MultiLineString")
WGS84_NAMES = {"urn:ogc:def:crs:ogc:1.3:crs84", "urn:ogc:def:crs:ogc::crs84", "ogc:crs84", "crs84",
               "epsg:4326", "urn:ogc:def:crs:epsg::4326", "urn:ogc:def:crs:epsg:6.6:4326"}


def read_geojson(path: Path, columns: dict[str, str] | None = None) -> GpsTraces:
    """The lines and points of a GeoJSON file in its CRS (see the module docstring)."""
    doc = _load(path)
    crs = _crs_member(doc, path)
    lines, points = _Lines(), _Points()
    skipped = 0
    for k, feature in enumerate(_features(doc, path), 1):
        geometry = feature.get("geometry")
        if geometry is None:  # RFC 7946 allows a feature without geometry: no point to read
            skipped += 1
            continue
        if not isinstance(geometry, dict):
            raise InputError(path, f"feature {k}: geometry is not a GeoJSON object")
        kind = geometry.get("type")
        props = feature.get("properties") or {}
        if not isinstance(props, dict):
            raise InputError(path, f"feature {k}: properties is not an object")
        if kind in LINES:
            lines.add(geometry, props, k, path)
        elif kind == "Point":
            points.add(geometry.get("coordinates"), props, k, path)
        else:
            raise InputError(path, f"feature {k}: a {kind if isinstance(kind, str) else 'geometry without a type'} "
                                   "is no GPS trace (expected LineString, MultiLineString or Point features)")
    if skipped:
        log.info("%s: %d feature%s without geometry skipped", path, skipped, "" if skipped == 1 else "s")
    parts = [p for p in (lines.traces(crs), points.traces(crs, columns or {}, path, only=not lines.xy)) if p is not None]
    if not parts:
        raise InputError(path, "holds no LineString, MultiLineString or Point feature with a coordinate")
    traces = concat(parts)
    if crs == WGS84:
        _check_lon_lat(traces, path)
    return traces


def _load(path: Path) -> Any:
    try:
        gz = path.name.lower().endswith(".gz")
        with (gzip.open(path, "rb") if gz else open(path, "rb")) as f:
            raw = f.read()
        with nesting_refused(path, "JSON"):
            return json.loads(raw)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise InputError(path, f"not a whole gzip file ({one_line(exc)})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(path, f"not a GeoJSON file ({one_line(exc)[:160]})") from None


def _features(doc: Any, path: Path) -> list[dict[str, Any]]:
    """The features of a FeatureCollection, a Feature, or a bare geometry (as one feature)."""
    kind = doc.get("type") if isinstance(doc, dict) else None
    if kind == "FeatureCollection":
        features = doc.get("features")
        if not isinstance(features, list):
            raise InputError(path, "FeatureCollection without a 'features' list")
        for k, f in enumerate(features, 1):
            if not isinstance(f, dict) or f.get("type") != "Feature":
                raise InputError(path, f"feature {k}: not a GeoJSON Feature")
        return features
    if kind == "Feature":
        return [doc]
    if kind in (*LINES, "Point", "MultiPoint", "Polygon", "MultiPolygon", "GeometryCollection"):
        return [{"type": "Feature", "geometry": doc, "properties": {}}]
    raise InputError(path, "not GeoJSON: expected a FeatureCollection, a Feature or a geometry at the top level")


def _crs_member(doc: dict[str, Any], path: Path) -> str:
    """WGS84, or the CRS a legacy ``crs`` member names (``{"type": "name", "properties": {"name": ...}}``)."""
    member = doc.get("crs")
    if member is None:
        return WGS84
    name = member.get("properties", {}).get("name") if isinstance(member, dict) and member.get("type") == "name" else None
    if not isinstance(name, str) or not isinstance(member.get("properties"), dict):
        raise InputError(path, "its 'crs' member names no CRS (only {\"type\": \"name\"} is read; GeoJSON is "
                               "WGS84 lon/lat without one)")
    if name.strip().lower() in WGS84_NAMES:  # lon/lat order in GeoJSON, whatever EPSG:4326's own axis order
        return WGS84
    parse_crs(name, path)  # an unknown or local CRS is an InputError
    log.info("%s: coordinates read in %s, as its legacy 'crs' member says", path, name)
    return name


def _check_lon_lat(traces: GpsTraces, path: Path) -> None:
    """Degrees beyond +-180/90 in a file that names no CRS: projected coordinates, which
    ``--gps-crs`` does not place (GeoJSON is WGS84), so check_crs's hint would mislead."""
    bad = np.flatnonzero((np.abs(traces.x) > 180) | (np.abs(traces.y) > 90))
    if len(bad):
        raise InputError(path, f"point {bad[0] + 1}: ({traces.x[bad[0]]:g}, {traces.y[bad[0]]:g}) is not lon/lat "
                               "degrees, as GeoJSON is (RFC 7946; --gps-crs does not apply to it): reproject it to "
                               "EPSG:4326, or name its CRS in a 'crs' member")


def _positions(coords: Any, path: Path, where: str) -> np.ndarray:
    """An n x 2 array of a list of positions (a third number, elevation, dropped)."""
    if not isinstance(coords, list):
        raise InputError(path, f"{where}: coordinates are not a list of positions")
    numbers = (int, float)
    for i, p in enumerate(coords):
        if not (isinstance(p, list) and len(p) >= 2 and type(p[0]) in numbers and type(p[1]) in numbers
                and math.isfinite(p[0]) and math.isfinite(p[1])):
            raise InputError(path, f"{where}, point {i + 1}: {json.dumps(p)[:60]} is not a position of finite numbers")
    return np.array([p[:2] for p in coords], float).reshape(-1, 2)


def _seconds(values: list[Any], path: Path, point: str, first: int = 0) -> np.ndarray:
    """Unix seconds of a list of times: numbers as unix seconds, text as ISO 8601 (the GPX
    reader's parsing), null as no time; an error names ``point`` ``first + i + 1``. Text that is a
    number is unix seconds too (an export that quotes every value)."""
    values = [_number(v) if isinstance(v, str) and _number(v) is not None else v for v in values]
    texts: list[str | None] = [v if isinstance(v, str) else None for v in values]
    out = iso_seconds(texts, path, first, point)
    for i, v in enumerate(values):
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            out[i] = float(v)
        elif v is not None and not isinstance(v, str):
            raise InputError(path, f"{point} {first + i + 1}: time {json.dumps(v)[:40]} is neither unix seconds "
                                   "nor ISO 8601")
    return out


def _number(text: str) -> float | None:
    """``text`` as a finite number, or None."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _time_list(props: dict[str, Any]) -> tuple[str, Any]:
    """The per-point time list of a line feature, and the name it came by ('' when none)."""
    nested = props.get("coordinateProperties")
    for source in (props, nested if isinstance(nested, dict) else {}):
        for name in TIME_LISTS:
            if source.get(name) is not None:
                return name, source[name]
    return "", None


@dataclass
class _Lines:
    """Each line (each part of a multi-line) as a trip."""

    xy: list[np.ndarray] = field(default_factory=list)
    t: list[np.ndarray] = field(default_factory=list)

    def add(self, geometry: dict[str, Any], props: dict[str, Any], k: int, path: Path) -> None:
        coords: Any = geometry.get("coordinates")
        multi = geometry["type"] == "MultiLineString"
        if multi and not isinstance(coords, list):
            raise InputError(path, f"feature {k}: coordinates are not a list of lines")
        parts: list[Any] = coords if multi else [coords]
        per_part: list[Any] = []
        name, times = _time_list(props)
        if times is not None:
            if not isinstance(times, list):
                raise InputError(path, f"feature {k}: {name} is not a list of times")
            if multi and all(isinstance(x, list) for x in times):
                per_part = times  # togeojson: a list per part
            elif multi and len(parts) == 1:
                per_part = [times]
            elif multi:  # one flat list for every part: cut it where the parts end
                sizes = [len(p) if isinstance(p, list) else 0 for p in parts]
                if len(times) != sum(sizes):
                    raise InputError(path, f"feature {k}: {name} holds {len(times)} times for {sum(sizes)} points")
                per_part = np.split(np.array(times, dtype=object), np.cumsum(sizes)[:-1])
            else:
                per_part = [times]
            if len(per_part) != len(parts):
                raise InputError(path, f"feature {k}: {name} holds {len(per_part)} lists of times for {len(parts)} lines")
        for j, part in enumerate(parts):
            where = f"feature {k}" + (f", line {j + 1}" if multi else "")
            xy = _positions(part, path, where)
            if times is None:
                t = np.full(len(xy), np.nan)
            else:
                values = list(per_part[j])
                if len(values) != len(xy):
                    raise InputError(path, f"{where}: {name} holds {len(values)} times for {len(xy)} points")
                t = _seconds(values, path, f"{where}, point")
            if len(xy):
                self.xy.append(xy)
                self.t.append(t)

    def traces(self, crs: str) -> GpsTraces | None:
        if not self.xy:
            return None
        xy = np.concatenate(self.xy)
        trip = np.repeat(np.arange(len(self.xy), dtype=np.int32), [len(p) for p in self.xy])
        return from_arrays(xy[:, 0], xy[:, 1], crs, t=np.concatenate(self.t), trip=trip)


@dataclass
class _Points:
    """Point features: their positions, properties and feature numbers, grouped at the end."""

    xy: list[np.ndarray] = field(default_factory=list)
    props: list[dict[str, Any]] = field(default_factory=list)
    feature: list[int] = field(default_factory=list)

    def add(self, coords: Any, props: dict[str, Any], k: int, path: Path) -> None:
        self.xy.append(_positions([coords], path, f"feature {k}"))
        self.props.append(props)
        self.feature.append(k)

    def traces(self, crs: str, given: dict[str, str], path: Path, only: bool) -> GpsTraces | None:
        """The points as trips; ``only``: the file has no line (lone points beside lines are
        waypoints, as GPX converters write them, and not worth a warning)."""
        if not self.xy:
            return None
        names = list(dict.fromkeys(n for p in self.props for n in p))
        mapping = csv_columns(names, {f: c for f, c in given.items() if f in POINT_FIELDS}, path, POINT_FIELDS,
                              what="property")
        xy = np.concatenate(self.xy)
        n = len(xy)
        t = self._seconds(mapping.get("time"), path) if "time" in mapping else None
        speed, bearing = (self._numbers(mapping.get(f), f, path) if f in mapping else None for f in ("speed", "bearing"))
        trip, lone, keys = self._trips(mapping, given, names)
        traces = from_arrays(xy[:, 0], xy[:, 1], crs, t=t, trip=trip, speed=speed, bearing=bearing)
        traces = traces.take(np.argsort(traces.trip, kind="stable"))  # a trip's points together, in file order
        blank = keys.blank(traces.trip, path, mapping["trip"], "point") if "trip" in mapping and not lone else None
        if lone and only:
            log.warning("%s: %d Point features and %s: each point is a lone observation, a trip of its own, and no "
                        "route can be read from one fix; export the track as a LineString, or name the property "
                        "that tells trips apart with --gps-columns trip=PROPERTY", path, n, lone)
        elif names_vehicles(mapping, given):
            vehicles = traces.trips
            traces = cut_vehicle_trips(times_in_seconds(traces, path), path, f"a vehicle's points, property {mapping['trip']!r}")
            log.info("%s: points grouped by property %r: %d vehicle%s cut into %d trips where silent", path,
                     mapping["trip"], vehicles, "" if vehicles == 1 else "s", traces.trips)
        elif not lone:
            if blank is not None:
                traces = cut_vehicle_trips(times_in_seconds(traces, path), path,
                                           f"points with an empty {mapping['trip']!r}", only=blank)
            log.info("%s: points grouped into %d trips by %s", path, traces.trips,
                     describe_trip_columns(mapping).replace("column", "property"))
        return traces

    def _trips(self, mapping: dict[str, str], given: dict[str, str], names: list[str]) -> tuple[np.ndarray, str, TripKeys]:
        """Trip id per point (in order of first appearance; points without one as in a CSV,
        ``TripKeys``), why each point is alone ('' if not), and the keys."""
        n = len(self.props)
        keys = TripKeys()
        if "trip" not in mapping:
            return (np.arange(n, dtype=np.int32), f"no property telling trips apart (properties: {', '.join(names) or 'none'})",
                    keys)
        key = keys.keys(pd.Series([_key(p.get(mapping["trip"])) for p in self.props], dtype=object))
        if "segment" in mapping:
            key = key + pd.Series(["\x1f" + _key(p.get(mapping["segment"])) for p in self.props], dtype=object)
        trip = keys.ids(key)
        if keys.count == n > 1 and "trip" not in given:  # a feature number, not a trip
            return trip, f"property {mapping['trip']!r} holds a different value on every point (a number, not a trip)", keys
        return trip, "", keys

    def _seconds(self, name: str | None, path: Path) -> np.ndarray:
        """Times of every point at once (one ISO 8601 parse); a bad one is named by its feature."""
        values = self._values(name)
        try:
            return _seconds(values, path, "Point feature")
        except InputError:
            for k, v in zip(self.feature, values):
                _seconds([v], path, "feature", k - 1)  # raises for the first bad one, naming its feature
            raise

    def _values(self, name: str | None) -> list[Any]:
        return [p.get(name) for p in self.props] if name else []

    def _numbers(self, name: str | None, what: str, path: Path) -> np.ndarray:
        out = np.full(len(self.props), np.nan)
        for i, v in enumerate(self._values(name)):
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                out[i] = float(v)
            elif v is not None:
                raise InputError(path, f"feature {self.feature[i]}: {what} {json.dumps(v)[:40]} is not a number")
        return out


def _key(value: Any) -> str:
    """A property value as a trip key ('' when absent)."""
    return "" if value is None else value if isinstance(value, str) else json.dumps(value, sort_keys=True)
