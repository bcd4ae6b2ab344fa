"""OpenStreetMap roads of an AOI, from a .osm/.osm.pbf file, a GeoJSON export, or Overpass.

Whatever the source, the result is the same ``RoadNetwork``: road ways only (``ROAD_CLASSES``),
clipped to the AOI polygon, in WGS84. Sources with node ids (.osm, .pbf, Overpass) also fill
``RoadNetwork.nodes`` with id -> (version, lon, lat) for every node of a kept way, so a JOSM
writer can attach new ways to existing nodes with their real ids and versions. Every source also
gives the AOI's parking lots (``amenity=parking`` areas: closed ways and multipolygon relations,
or GeoJSON polygons), clipped to the AOI, as ``RoadNetwork.parking``: conflation reports the
roads it finds inside them as parking aisles (osmgap.conflate.parking).
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import geopandas as gpd
import numpy as np
import osmium
import overpy
import overpy.exception as opx
import pandas as pd
import shapely
from osmium.filter import EntityFilter, IdFilter, TagFilter
from shapely.geometry import LineString, Point, Polygon, shape
from shapely.geometry.base import BaseGeometry

from osmgap.core.aoi import Aoi
from osmgap.core.atomic import write_bytes_atomic
from osmgap.core.datamodel import (  # why a road way could not be read whole: RoadNetwork.unreadable's reason
    CUT_AT_EDGE,
    MISSING_NODES,
    NO_GEOMETRY,
    NOT_A_LINE,
    NOT_FINITE,
    PARKING_COLUMNS,
    UNREADABLE_COLUMNS,
    WAY_COLUMNS,
    WGS84,
    RoadNetwork,
)
from osmgap.core.http import GaveUp, HttpClient, Refused, Retryable, RetryPolicy, raise_if_retryable, retry, server_text
from osmgap.core.osmtags import ROAD_CLASSES  # the one vocabulary; re-exported here
from osmgap.errors import InputError, one_line

# amenity=parking areas with no aisles a road source sees: a garage underground, parking along
# the carriageway (a lane, a strip on the kerb, a lay-by); a missing street beside one is a street
NOT_LOTS: frozenset[str] = frozenset({"underground", "street_side", "lane", "inline", "on_kerb",
                                      "half_on_kerb", "shoulder", "layby"})

# File suffixes osmium reads (it picks the decoder and decompressor from the name).
_OSMIUM_SUFFIXES = {".osm.pbf": "pbf", ".pbf": "pbf", ".osm": "osm-xml", ".osm.bz2": "osm-xml",
                    ".osm.gz": "osm-xml"}
_GEOJSON_SUFFIXES = (".geojson", ".json")

log = logging.getLogger(__name__)

# An unreadable way whose known positions lie this close to the AOI (degrees, >= 34 m up to 70
# degrees of latitude) is kept: conflation keeps suggestions well clear of it.
UNREADABLE_REACH_DEG = 0.001
# OSM ids are positive 64-bit integers; an id a float carries is exact only up to 2**53.
MAX_OSM_ID = 2**63 - 1
MAX_FLOAT_ID = 2**53

OVERPASS_URL = "https://overpass-api.de/api/interpreter"
OVERPASS_SPEC = "overpass"
OVERPASS_TIMEOUT_S = 180  # server-side [timeout:]; the client waits a little longer
OVERPASS_RETRIES = 3  # retries after the first attempt
OVERPASS_BACKOFF_S = 5.0  # first wait; doubles on each retry (osmgap.core.http's policy)
OVERPASS_POLICY = RetryPolicy(retries=OVERPASS_RETRIES, backoff_s=OVERPASS_BACKOFF_S, max_backoff_s=120.0,
                              max_retry_after_s=600.0)
OVERPASS_MAX_BYTES = 2 * 2**30  # a large AOI's answer is hundreds of MB; more is no Overpass answer
DEFAULT_CACHE_DIR = Path("~/.cache/osmgap/overpass")

PROVENANCE_BASE = {"licence": "ODbL", "attribution": "© OpenStreetMap contributors"}


@dataclass(frozen=True)
class _Way:
    """One road way as read, before clipping; ``geometry`` is WGS84 lon/lat."""

    osm_id: int
    highway: str
    version: int | None
    node_ids: list[int] | None
    tags: dict[str, str]
    geometry: BaseGeometry


@dataclass(frozen=True)
class _Lot:
    """One parking lot as read, before clipping; ``geometry`` is a WGS84 (Multi)Polygon."""

    osm_type: str  # 'way' or 'relation'; 'way' for a GeoJSON feature without a relation id
    osm_id: int | None
    parking: str | None
    geometry: BaseGeometry


@dataclass(frozen=True)
class _Unreadable:
    """A road way that could not be read whole; ``geometry`` (WGS84): where its unknown parts may
    lie (``_unknown_stretches``), or all of it when it is no line; empty when nothing is known."""

    osm_id: int | None
    reason: str
    geometry: BaseGeometry


NodeTable = dict[int, tuple[int | None, float, float]]


def load_osm(spec: str, aoi: Aoi, cache_dir: Path | None = None, graph_crs: str | None = None) -> RoadNetwork:
    """Read the OSM roads of ``aoi`` from a file, (``spec == 'overpass'``) the Overpass API, or a
    mapconstruction graph (``VERTICES,EDGES`` or a folder holding both) in ``graph_crs``."""
    if spec == OVERPASS_SPEC:
        return load_overpass(aoi, cache_dir)
    graph_files = mapconstruction_files(spec)
    if graph_files is not None:
        return load_mapconstruction(graph_files, aoi, graph_crs)
    path = Path(spec)
    if not path.is_file():
        raise InputError(path, "OSM file not found")
    fmt = file_format(path)
    if fmt == "geojson":
        return load_geojson(path, aoi)
    if fmt is None:
        raise InputError(path, "unknown OSM file type: expected .osm, .osm.pbf, .osm.bz2, "
                               ".geojson or .json, or the word 'overpass'")
    return load_osmium_file(path, aoi, fmt)


def mapconstruction_files(spec: str) -> tuple[Path, Path] | None:
    """(vertices, edges) when ``spec`` names a mapconstruction graph, the way GPS benchmarks ship
    their map: ``VERTICES,EDGES`` or a folder holding one ``*vertices*.txt`` and one ``*edges*.txt``."""
    if "," in spec:
        vertices, edges = (Path(part) for part in spec.split(",", 1))
        for path in (vertices, edges):
            if not path.is_file():
                raise InputError(path, "mapconstruction graph file not found (--osm VERTICES,EDGES)")
        return vertices, edges
    folder = Path(spec)
    if not folder.is_dir():
        return None
    found = [sorted(folder.glob(f"*{part}*.txt")) for part in ("vertices", "edges")]
    if any(len(files) != 1 for files in found):
        raise InputError(folder, "a folder given as --osm must hold one *vertices*.txt and one *edges*.txt "
                                 "(a mapconstruction graph)")
    return found[0][0], found[1][0]


def load_mapconstruction(files: tuple[Path, Path], aoi: Aoi, crs: str | None) -> RoadNetwork:
    """Roads of ``aoi`` from a mapconstruction graph: one way per junction-to-junction chain
    (osmgap.sources.mapgraph), class ``road``, no tags, node ids or versions."""
    from osmgap.sources.mapgraph import read_mapconstruction_graph  # only for benchmark graphs

    if crs is None:
        raise InputError(files[0], "a mapconstruction graph has bare coordinates: give their CRS with --gps-crs")
    frame = read_mapconstruction_graph(*files, crs).to_crs(WGS84)
    ways = [_Way(osm_id=int(i), highway="road", version=None, node_ids=None, tags={"highway": "road"}, geometry=g)
            for i, g in zip(frame.osm_id, frame.geometry)]
    return _network(clip_to_aoi(ways, aoi), {}, source=f"{files[0]},{files[1]}", fmt="mapconstruction")


def file_format(path: Path) -> str | None:
    """'pbf', 'osm-xml' or 'geojson' from the file name; None when osmgap cannot read it."""
    name = path.name.lower()
    for suffix in sorted(_OSMIUM_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return _OSMIUM_SUFFIXES[suffix]
    if name.endswith(_GEOJSON_SUFFIXES):
        return "geojson"
    return None


# --- .osm / .osm.pbf through osmium ------------------------------------------------------


def load_osmium_file(path: Path, aoi: Aoi, fmt: str = "pbf") -> RoadNetwork:
    """Roads of ``aoi`` from an OSM XML or PBF file, with node ids and versions.

    Two streaming passes keep Python objects to the few that matter: the first sees only road
    ways (filtered in C++) with node locations; the second only the nodes of kept ways.
    """
    try:
        read, unreadable = _scan_road_ways(path, aoi)
        ways = clip_to_aoi(read, aoi)
        wanted = {n for w in ways for n in (w.node_ids or ())}
        nodes = _scan_nodes(path, wanted) if wanted else {}
        lots = clip_lots(_scan_parking(path), aoi)
    except (RuntimeError, osmium.InvalidLocationError) as exc:  # how osmium reports corrupt,
        # truncated or unreadable input, and a coordinate such as lat="nan"
        raise InputError(path, f"cannot read OSM data ({one_line(exc)[:200]})") from None
    return _network(ways, nodes, source=str(path), fmt=fmt, lots=lots, unreadable=_near(unreadable, aoi))


def _scan_road_ways(path: Path, aoi: Aoi) -> tuple[list[_Way], list[_Unreadable]]:
    """Road ways whose bbox meets the AOI's bbox, geometry from the file's node locations; a way
    with nodes the file lacks (an extract cut at its border, a broken file) is the line through
    its known nodes (it does connect them) and is also listed as unreadable, with where its
    unknown nodes may lie."""
    road_filter = TagFilter(*(("highway", c) for c in sorted(ROAD_CLASSES)))
    processor = (osmium.FileProcessor(str(path), osmium.osm.NODE | osmium.osm.WAY)
                 .with_locations()
                 .with_filter(EntityFilter(osmium.osm.WAY))
                 .with_filter(road_filter))
    reach = _reach(aoi)
    ways: list[_Way] = []
    unreadable: list[_Unreadable] = []
    for w in cast("Iterable[osmium.osm.Way]", processor):  # the entity filter passes ways only
        xy = np.array([(n.lon, n.lat) if n.location.valid() else (np.nan, np.nan) for n in w.nodes],
                      dtype=float).reshape(-1, 2)
        known = xy[np.isfinite(xy).all(axis=1)]
        if len(known) and not _bbox_overlaps(known, reach):
            continue
        tags = dict(w.tags)
        way = _Way(osm_id=w.id, highway=tags["highway"], version=w.version or None,
                   node_ids=[n.ref for n in w.nodes], tags=tags, geometry=LineString())
        line = _known_line(xy)
        if line is not None:
            ways.append(replace(way, geometry=line))
        if len(known) < len(xy):
            unreadable.append(_Unreadable(w.id, _why_missing(xy), _unknown_stretches(xy)))
        elif line is None:  # one node, none, or all in one place: no line, but a road is there
            unreadable.append(_Unreadable(w.id, NOT_A_LINE, Point(known[0]) if len(known) else Point()))
    return ways, unreadable


def _reach(aoi: Aoi) -> tuple[float, float, float, float]:
    """The AOI's bbox grown by UNREADABLE_REACH_DEG."""
    minx, miny, maxx, maxy = aoi.bounds
    m = UNREADABLE_REACH_DEG
    return minx - m, miny - m, maxx + m, maxy + m


def _bbox_overlaps(xy: np.ndarray, bounds: tuple[float, float, float, float]) -> bool:
    """Cheap rejection before any shapely geometry is built."""
    minx, miny, maxx, maxy = bounds
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    return lo[0] <= maxx and hi[0] >= minx and lo[1] <= maxy and hi[1] >= miny


def _known_line(xy: np.ndarray) -> LineString | None:
    """The line through the known (finite) vertices of ``xy`` (n, 2); None when they make none."""
    known = xy[np.isfinite(xy).all(axis=1)]
    line = LineString(known) if len(known) >= 2 else None
    return line if line is not None and line.length > 0 else None


def _why_missing(xy: np.ndarray) -> str:
    """CUT_AT_EDGE when only vertices before the first or after the last known one are missing:
    what cutting an extract at a bbox leaves (by far the commonest cause; the rest of the way lies
    outside the extract), whether or not the file still says its bbox. Else MISSING_NODES."""
    known = np.flatnonzero(np.isfinite(xy).all(axis=1))
    return CUT_AT_EDGE if len(known) and known[-1] - known[0] + 1 == len(known) else MISSING_NODES


def _unknown_stretches(xy: np.ndarray) -> BaseGeometry:
    """Where the unknown vertices of a way lie, as far as its known ones tell: a run of unknown
    vertices between two known ones lies about on the segment joining them; a run at an end
    starts at the known vertex it follows (a way cut at the border of an extract, whose unknown
    part lies outside it, gives just that point). Empty when no vertex is known."""
    ok = np.isfinite(xy).all(axis=1)
    known = np.flatnonzero(ok)
    if not len(known):
        return Point()
    clues: list[BaseGeometry] = []
    if known[0] > 0:
        clues.append(Point(xy[known[0]]))
    if known[-1] < len(xy) - 1:
        clues.append(Point(xy[known[-1]]))
    for a, b in zip(known[:-1], known[1:]):
        if b - a > 1:
            clues.append(LineString([xy[a], xy[b]]))
    return clues[0] if len(clues) == 1 else shapely.geometrycollections(clues)  # none: empty


def _scan_nodes(path: Path, node_ids: set[int]) -> NodeTable:
    """id -> (version, lon, lat) for ``node_ids``; ids absent from the file are left out."""
    processor = (osmium.FileProcessor(str(path), osmium.osm.NODE)
                 .with_filter(IdFilter(node_ids)))
    return {n.id: (n.version or None, n.location.lon, n.location.lat)
            for n in cast("Iterable[osmium.osm.Node]", processor) if n.location.valid()}


def _scan_parking(path: Path) -> list[_Lot]:
    """``amenity=parking`` areas, assembled by osmium from closed ways and multipolygon
    relations; a lot whose nodes the extract lacks (cut at its border) cannot be, and is left out."""
    lot_filter = TagFilter(("amenity", "parking"))
    processor = osmium.FileProcessor(str(path)).with_areas(lot_filter).with_filter(lot_filter)
    wkb = osmium.geom.WKBFactory()
    lots: list[_Lot] = []
    for obj in cast("Iterable[osmium.osm.OSMObject[Any]]", processor):  # a data file holds no changesets
        if not obj.is_area():
            continue
        assert isinstance(obj, osmium.osm.Area)  # what is_area() tests
        try:
            geometry = shapely.from_wkb(wkb.create_multipolygon(obj))
        except RuntimeError:  # osmium: an invalid location or ring
            continue
        lots.append(_Lot("way" if obj.from_way() else "relation", obj.orig_id(), obj.tags.get("parking"), geometry))
    return lots


# --- GeoJSON exports of OSM ways -------------------------------------------------------


def load_geojson(path: Path, aoi: Aoi) -> RoadNetwork:
    """Roads of ``aoi`` from a GeoJSON of OSM ways: no node ids, so ``nodes`` stays empty. A way
    whose geometry is empty, missing, not a line or has NaN coordinates is listed as unreadable
    (the lines through the finite vertices of its line parts are still ways)."""
    features = _geojson_features(path)
    way_features = [(i, f) for i, f in enumerate(features) if _is_way(f)]
    if features and not any(_is_line(f.get("geometry")) for _, f in way_features):
        raise InputError(path, "GeoJSON holds no LineString or MultiLineString features")
    ways: list[_Way] = []
    unreadable: list[_Unreadable] = []
    for i, f in way_features:
        read, problem = _way_from_feature(f, i, path)
        ways += read
        unreadable += [problem] if problem is not None else []
    lots = [lot for lot in map(_lot_from_feature, features) if lot]
    return _network(clip_to_aoi(ways, aoi), {}, source=str(path), fmt="geojson", lots=clip_lots(lots, aoi),
                    unreadable=_near(unreadable, aoi))


def _geojson_features(path: Path) -> list[dict[str, Any]]:
    """The features of a FeatureCollection or single Feature; InputError for anything else."""
    try:
        doc = json.loads(path.read_bytes().decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise InputError(path, "not UTF-8 text (a binary file?): expected GeoJSON") from None
    except json.JSONDecodeError as exc:
        raise InputError(path, f"not valid JSON ({one_line(exc)})") from None
    except RecursionError:
        raise InputError(path, "JSON nested too deeply to be GeoJSON") from None
    if isinstance(doc, dict) and doc.get("type") == "FeatureCollection":
        features = doc.get("features")
    elif isinstance(doc, dict) and doc.get("type") == "Feature":
        features = [doc]
    else:
        features = None
    if not isinstance(features, list) or not all(isinstance(f, dict) for f in features):
        raise InputError(path, "GeoJSON must be a FeatureCollection (or Feature) of OSM ways")
    return features


def _is_line(geometry: Any) -> bool:
    return isinstance(geometry, dict) and geometry.get("type") in ("LineString", "MultiLineString")


def _is_way(feature: dict[str, Any]) -> bool:
    """A line feature, or one classed as a road whose geometry is a collection or missing: an OSM
    way the export mangled, which must not go unnoticed."""
    geometry = feature.get("geometry")
    if _is_line(geometry):
        return True
    mangled = not geometry or (isinstance(geometry, dict) and geometry.get("type") == "GeometryCollection")
    return mangled and _road_class(_properties(feature))[1] in ROAD_CLASSES


def _properties(feature: dict[str, Any]) -> dict[str, Any]:
    props = feature.get("properties")
    return props if isinstance(props, dict) else {}


def _road_class(props: dict[str, Any]) -> tuple[str, str | None]:
    """(the property that classes the way, its value): ``highway``, else ``type`` (osm2pgsql-style
    exports); the value None when neither is set."""
    key = "highway" if props.get("highway") else "type"
    value = props.get(key)
    return key, str(value) if value else None


def _way_from_feature(feature: dict[str, Any], index: int,
                      path: Path) -> tuple[list[_Way], _Unreadable | None]:
    """The way of one feature and, when it could not be read whole, what is known of it (the way is
    then the lines through the finite vertices of its line parts); no way when its highway class
    is not a road."""
    props = _properties(feature)
    osm_id = _parse_osm_id(props.get("osm_id"))
    if osm_id is None:
        raise InputError(path, f"feature {index} has no usable osm_id property (a positive integer below 2^63; "
                               f"got {str(props.get('osm_id'))[:40]!r})")
    class_key, highway = _road_class(props)
    highway = highway or "road"
    if highway not in ROAD_CLASSES:
        return [], None
    geometry, reason = _way_geometry(feature.get("geometry"), index, path)
    tags = {k: str(v) for k, v in props.items()
            if isinstance(v, str) and v not in ("", "None") and k not in ("osm_id", class_key)}
    tags["highway"] = highway
    way = _Way(osm_id=osm_id, highway=highway, version=None, node_ids=None, tags=tags, geometry=geometry)
    if reason is None:
        return [way], None
    parts = _parts(geometry)
    lines = [_known_line(shapely.get_coordinates(part)) for part in parts if part.geom_type == "LineString"]
    pieces = [replace(way, geometry=g) for g in lines if g is not None]
    # NaN vertices: the stretches they leave unknown; anything else unreadable: all of it
    known = (shapely.geometrycollections([_unknown_stretches(shapely.get_coordinates(p)) for p in parts])
             if reason == NOT_FINITE else geometry)
    return pieces, _Unreadable(osm_id, reason, known)


def _parts(geometry: BaseGeometry) -> np.ndarray:
    """The single parts of a geometry: a collection's members, then their parts."""
    return shapely.get_parts(shapely.get_parts(geometry))


def _way_geometry(geojson: Any, index: int, path: Path) -> tuple[BaseGeometry, str | None]:
    """A feature's 2D geometry, and why it is no usable line (None when it is one)."""
    if not geojson:
        return LineString(), NO_GEOMETRY
    try:
        with np.errstate(invalid="ignore"):  # NaN coordinates are found below, not warned about
            geometry = shapely.force_2d(shape(geojson))
    except Exception as exc:  # shapely raises several types for malformed coordinates
        raise InputError(path, f"feature {index} has malformed geometry ({one_line(exc)[:200]})") from None
    if geometry.is_empty:
        return geometry, NO_GEOMETRY
    if not np.isfinite(shapely.get_coordinates(geometry)).all():
        return geometry, NOT_FINITE
    if geometry.geom_type == "LineString":  # nearly every way: no parts to take apart
        return geometry, None if geometry.length > 0 else NOT_A_LINE
    if any(p.geom_type != "LineString" or p.length == 0 for p in _parts(geometry)):
        return geometry, NOT_A_LINE
    return geometry, None


def _lot_from_feature(feature: dict[str, Any]) -> _Lot | None:
    """A parking lot from a Polygon/MultiPolygon feature tagged ``amenity=parking``, else None
    (a malformed polygon is skipped: lots only refine what kind of road a suggestion is)."""
    props = _properties(feature)
    geometry = feature.get("geometry")
    if props.get("amenity") != "parking" or not isinstance(geometry, dict) \
            or geometry.get("type") not in ("Polygon", "MultiPolygon"):
        return None
    try:
        with np.errstate(invalid="ignore"):
            polygon = shapely.force_2d(shape(geometry))
    except Exception:  # shapely raises several types for malformed coordinates
        return None
    if not np.isfinite(shapely.get_coordinates(polygon)).all():
        return None
    raw = props.get("osm_id", props.get("@id"))
    relation = isinstance(raw, str) and raw.startswith("relation/")
    osm_id = _parse_osm_id(cast(str, raw).removeprefix("relation/") if relation else raw)
    parking = props.get("parking")
    return _Lot("relation" if relation else "way", osm_id, str(parking) if parking else None, polygon)


def _parse_osm_id(value: Any) -> int | None:
    """27236016, 27236016.0, '27236016' or 'way/27236016' -> 27236016; None otherwise (also for
    an id beyond OSM's 64 bits, or a float too large to carry an exact integer, such as 1e30)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.removeprefix("way/").strip()
        value = int(text) if text.isdigit() else _float_or_none(text)
    if isinstance(value, float):
        if not (value.is_integer() and 0 < value <= MAX_FLOAT_ID):
            return None
        value = int(value)
    if isinstance(value, int) and 0 < value <= MAX_OSM_ID:
        return value
    return None


def _float_or_none(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


# --- Overpass API ----------------------------------------------------------------------


def overpass_query(aoi: Aoi, timeout_s: int = OVERPASS_TIMEOUT_S) -> str:
    """Overpass QL for the road ways and parking lots (ways and multipolygon relations) in the
    AOI's bbox, with their members, nodes and versions."""
    minx, miny, maxx, maxy = aoi.bounds
    classes = "|".join(sorted(ROAD_CLASSES))
    bbox = f"({miny:.7f},{minx:.7f},{maxy:.7f},{maxx:.7f})"
    return (f"[out:json][timeout:{timeout_s}];\n"
            f'(way["highway"~"^({classes})$"]{bbox};\n'
            f' way["amenity"="parking"]{bbox};\n'
            f' relation["amenity"="parking"]["type"="multipolygon"]{bbox};);\n'
            "(._;>;);\nout meta;\n")


def overpass_cache_path(query: str, cache_dir: Path | None = None,
                        url: str = OVERPASS_URL) -> Path:
    """Where the response to ``query`` is cached: the same query never hits the server twice."""
    key = hashlib.sha256(f"{url}\n{query}".encode()).hexdigest()
    return Path(cache_dir or DEFAULT_CACHE_DIR).expanduser() / f"{key}.json"


def load_overpass(aoi: Aoi, cache_dir: Path | None = None, url: str = OVERPASS_URL) -> RoadNetwork:
    """Roads of ``aoi`` from Overpass, from the disk cache when the query was answered before."""
    query = overpass_query(aoi)
    cache = overpass_cache_path(query, cache_dir, url)
    result = _read_cached(cache)
    if result is None:
        raw, result = _query_with_retries(url, query)
        write_bytes_atomic(cache, raw)
    ways, nodes = _ways_from_overpass(result)
    lots = clip_lots(_lots_from_overpass(result), aoi)
    return _network(clip_to_aoi(ways, aoi), nodes, source=OVERPASS_SPEC, fmt="overpass", lots=lots)


def _read_cached(cache: Path) -> overpy.Result | None:
    """The cached result, or None when there is none or it is unreadable (then re-fetch)."""
    if not cache.is_file():
        return None
    try:
        return _parse_overpass(cache.read_bytes())
    except (ValueError, opx.OverPyException):
        return None


def _parse_overpass(raw: bytes) -> overpy.Result:
    """Overpass JSON or XML -> overpy.Result; overpy's errors for server remarks, ValueError
    for anything that is not an Overpass answer. overpy reads any XML or JSON as a result, so an
    HTML "rate limited" page would be an empty area, every road of it "missing": the root is
    checked first."""
    api = overpy.Overpass()
    try:
        if raw.lstrip().startswith(b"<"):
            if not re.search(rb"<osm[\s>/]", raw[:4096]):
                raise ValueError("not an Overpass answer: XML or HTML without an <osm> root")
            return api.parse_xml(raw)
        doc = json.loads(raw, parse_float=Decimal)  # as overpy reads it
        if not isinstance(doc, dict) or not isinstance(doc.get("elements"), list):
            raise ValueError("not an Overpass answer: JSON without an elements list")
        if doc.get("remark"):
            raise opx.OverpassRuntimeError(msg=str(doc["remark"]))
        return overpy.Result.from_json(doc, api=api)
    except (opx.OverPyException, ValueError):
        raise
    except Exception as exc:  # KeyError, TypeError, XML parse errors, ...: a garbled answer
        raise ValueError(f"not an Overpass answer ({type(exc).__name__})") from None


def _query_with_retries(url: str, query: str) -> tuple[bytes, overpy.Result]:
    """Ask Overpass under osmgap's one retry policy (osmgap.core.http): a busy server (429,
    504, a "runtime error" remark), a dropped connection or a garbled answer is tried again
    after a capped, jittered backoff or the server's Retry-After; a rejected query is not."""
    def attempt() -> tuple[bytes, overpy.Result]:
        try:
            raw = _http_post(url, query, OVERPASS_TIMEOUT_S + 30)
            return raw, _parse_overpass(raw)
        except opx.OverpassBadRequest as exc:
            raise InputError(OVERPASS_SPEC, f"Overpass rejected the query ({one_line(exc)[:300]})") from None
        except (opx.OverPyException, ValueError) as exc:
            raise Retryable(f"{type(exc).__name__}: {one_line(exc)[:200]}") from None

    try:
        return retry(attempt, OVERPASS_POLICY, sleep=time.sleep)
    except GaveUp as exc:
        raise InputError(OVERPASS_SPEC, f"Overpass API at {url} {exc}") from None
    except Refused as exc:
        raise InputError(OVERPASS_SPEC, f"Overpass API at {url}: {exc}") from None


def _http_post(url: str, query: str, timeout_s: float) -> bytes:
    """POST the query, once: 400 becomes overpy's bad-request error with the server's words,
    408/429/5xx a Retryable carrying the server's Retry-After, any other status an InputError."""
    r = _overpass_client().send("POST", url, data={"data": query}, timeout=(10.0, timeout_s))
    if r.status == 400:
        raise opx.OverpassBadRequest(query.encode("utf-8"), msgs=[server_text(r)])
    raise_if_retryable(r, "Overpass")
    if r.status != 200:
        raise InputError(OVERPASS_SPEC, f"Overpass API at {url} answered HTTP {r.status}: {server_text(r)}")
    return r.body


_client: list[HttpClient] = []


def _overpass_client() -> HttpClient:
    """One session per process (keep-alive), made on first use."""
    if not _client:
        _client.append(HttpClient(max_bytes=OVERPASS_MAX_BYTES))
    return _client[0]


def _ways_from_overpass(result: overpy.Result) -> tuple[list[_Way], NodeTable]:
    """Road ways and all their nodes from an overpy result that includes the ways' nodes."""
    ways: list[_Way] = []
    nodes: NodeTable = {}
    for way in result.ways:
        tags = dict(way.tags)
        if tags.get("highway") not in ROAD_CLASSES:
            continue
        try:
            way_nodes = way.get_nodes(resolve_missing=False)
        except opx.DataIncomplete:
            raise InputError(OVERPASS_SPEC, f"Overpass response lacks nodes of way {way.id}") from None
        for n in way_nodes:
            nodes[n.id] = (n.attributes.get("version"), float(n.lon), float(n.lat))
        if len(way_nodes) < 2:
            continue
        ways.append(_Way(osm_id=way.id, highway=tags["highway"],
                         version=way.attributes.get("version"),
                         node_ids=[n.id for n in way_nodes], tags=tags,
                         geometry=LineString([nodes[n.id][1:] for n in way_nodes])))
    return ways, nodes


def _lots_from_overpass(result: overpy.Result) -> list[_Lot]:
    """Parking lots from closed ``amenity=parking`` ways and multipolygon relations; one whose
    members or nodes the answer lacks is left out."""
    lots: list[_Lot] = []
    for way in result.ways:
        if way.tags.get("amenity") == "parking":
            rings = _way_lines([way])
            polygon = _polygon(rings, []) if rings and rings[0].is_closed else None
            if polygon is not None:
                lots.append(_Lot("way", way.id, way.tags.get("parking"), polygon))
    for rel in result.relations:
        if rel.tags.get("amenity") != "parking" or rel.tags.get("type") != "multipolygon":
            continue
        try:
            members = [(m.role, m.resolve(resolve_missing=False))
                       for m in rel.members if isinstance(m, overpy.RelationWay)]
        except opx.DataIncomplete:
            continue
        outer = _way_lines([w for role, w in members if role != "inner"])
        polygon = _polygon(outer, _way_lines([w for role, w in members if role == "inner"]))
        if polygon is not None:
            lots.append(_Lot("relation", rel.id, rel.tags.get("parking"), polygon))
    return lots


def _way_lines(ways: list[overpy.Way]) -> list[LineString]:
    """The lon/lat lines of ``ways``; empty when any way lacks its nodes."""
    lines = []
    for way in ways:
        try:
            coords = [(float(n.lon), float(n.lat)) for n in way.get_nodes(resolve_missing=False)]
        except opx.DataIncomplete:
            return []
        if len(coords) >= 2:
            lines.append(LineString(coords))
    return lines


def _polygon(outer: list[LineString], inner: list[LineString]) -> BaseGeometry | None:
    """The area the outer rings (ways joined end to end) enclose less the inner ones; None when
    the outer ways close no ring."""
    def area(lines: list[LineString]) -> BaseGeometry:
        return shapely.union_all(shapely.get_parts(shapely.polygonize(lines))) if lines else Polygon()
    shape_ = area(outer)
    if shape_.is_empty:
        return None
    return _polygonal(shapely.difference(shapely.make_valid(shape_), shapely.make_valid(area(inner))))


# --- clipping and assembly --------------------------------------------------------------


def clip_to_aoi(ways: list[_Way], aoi: Aoi) -> list[_Way]:
    """Ways cut to the AOI polygon: one LineString piece per stretch inside, osm_id kept.

    Ways wholly inside keep their exact geometry, so their vertices still equal node coords.
    """
    if not ways:
        return []
    area = shapely.from_wkb(shapely.to_wkb(aoi.geometry))  # a private copy to prepare
    shapely.prepare(area)
    geoms = np.array([w.geometry for w in ways], dtype=object)
    hits = shapely.intersects(area, geoms)
    inside = shapely.covers(area, geoms)
    clipped: list[_Way] = []
    for way, hit, whole in zip(ways, hits, inside):
        if not hit:
            continue
        if whole and way.geometry.geom_type == "LineString" and way.geometry.length > 0:
            clipped.append(way)  # inside, one line: itself (a third of loading 40k ways went to taking it apart)
            continue
        cut = way.geometry if whole else shapely.intersection(way.geometry, area)
        clipped.extend(replace(way, geometry=piece) for piece in _line_pieces(cut, way.geometry))
    return clipped


def clip_lots(lots: list[_Lot], aoi: Aoi) -> list[_Lot]:
    """Parking lots cut to the AOI polygon; those with no parking aisles (NOT_LOTS) left out."""
    lots = [lot for lot in lots if lot.parking not in NOT_LOTS]
    if not lots:
        return []
    area = shapely.from_wkb(shapely.to_wkb(aoi.geometry))
    shapely.prepare(area)
    geoms = np.array([shapely.make_valid(lot.geometry) for lot in lots], dtype=object)
    hits = shapely.intersects(area, geoms)
    cut = [_polygonal(shapely.intersection(g, area)) if hit else None for g, hit in zip(geoms, hits)]
    return [replace(lot, geometry=g) for lot, g in zip(lots, cut) if g is not None]


def _polygonal(geom: BaseGeometry) -> BaseGeometry | None:
    """The polygons of ``geom`` (a clip may leave lines and points), one (Multi)Polygon; None if none."""
    parts = [g for g in shapely.get_parts(geom) if g.geom_type in ("Polygon", "MultiPolygon") and g.area > 0]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else shapely.multipolygons(shapely.get_parts(parts))


def _line_pieces(geom: BaseGeometry, original: BaseGeometry) -> list[LineString]:
    """The non-degenerate LineStrings of a clip result, merged where they join, in way order."""
    lines = [g for g in shapely.get_parts(shapely.get_parts(geom))
             if g.geom_type == "LineString" and g.length > 0]
    if len(lines) > 1:
        # directed: never reverse a piece, direction matters for oneway roads
        merged = shapely.line_merge(shapely.multilinestrings(lines), directed=True)
        lines = sorted(shapely.get_parts(merged), key=lambda g: original.project(Point(g.coords[0])))
    return lines


def _near(unreadable: list[_Unreadable], aoi: Aoi) -> list[_Unreadable]:
    """The unreadable ways that may lie in the AOI: near it, or nobody knows where."""
    return [u for u in unreadable
            if u.geometry.is_empty or shapely.dwithin(aoi.geometry, u.geometry, UNREADABLE_REACH_DEG)]


def _unreadable_warning(roads: RoadNetwork) -> str | None:
    """One line on the road ways the source could not read whole, naming the source; None when
    there were none."""
    bad = roads.unreadable
    if not len(bad):
        return None
    why = ", ".join(f"{reason}: {n}" for reason, n in bad["reason"].value_counts().items())
    ids = [str(i) for i in bad["osm_id"] if i is not None]
    named = f"; way{'s' * (len(ids) > 1)} {', '.join(ids[:5])}{' ...' * (len(ids) > 5)}" if ids else ""
    text = (f"WARNING: {roads.provenance.get('source')}: {len(bad)} road way{'s' * (len(bad) > 1)} could not be "
            f"read whole ({why}{named}); no road is suggested where their unread parts may lie")
    unlocated = int(bad.geometry.is_empty.sum())
    if unlocated:
        text += f"; {unlocated} of them have no known position, so a suggested road may duplicate one"
    return text


def _network(ways: list[_Way], nodes: NodeTable, source: str, fmt: str,
             lots: Sequence[_Lot] = (), unreadable: Sequence[_Unreadable] = ()) -> RoadNetwork:
    """The RoadNetwork of clipped ways, lots and unreadable ways; ``nodes`` trimmed to the nodes
    the ways use. Unreadable ways are warned about here, once per source read."""
    used = {n for w in ways for n in (w.node_ids or ())}
    columns = {
        "osm_id": pd.Series([w.osm_id for w in ways], dtype="int64"),
        "highway": pd.Series([w.highway for w in ways], dtype=object),
        "version": pd.Series([w.version for w in ways], dtype=object),  # object: None stays None
        "node_ids": pd.Series([w.node_ids for w in ways], dtype=object),
        "tags": pd.Series([w.tags for w in ways], dtype=object),
    }
    frame = gpd.GeoDataFrame({c: columns[c] for c in WAY_COLUMNS},
                             geometry=gpd.GeoSeries([w.geometry for w in ways], crs=WGS84))
    parking = gpd.GeoDataFrame({"osm_type": pd.Series([lot.osm_type for lot in lots], dtype=object),
                                "osm_id": pd.Series([lot.osm_id for lot in lots], dtype=object),
                                "parking": pd.Series([lot.parking for lot in lots], dtype=object)},
                               geometry=gpd.GeoSeries([lot.geometry for lot in lots], crs=WGS84))[
        [*PARKING_COLUMNS, "geometry"]]
    bad = gpd.GeoDataFrame({"osm_id": pd.Series([u.osm_id for u in unreadable], dtype=object),
                            "reason": pd.Series([u.reason for u in unreadable], dtype=object)},
                           geometry=gpd.GeoSeries([u.geometry for u in unreadable], crs=WGS84))[
        [*UNREADABLE_COLUMNS, "geometry"]]
    provenance = {"source": source, "format": fmt, "ways": len(frame), "parking_lots": len(parking),
                  **({"unreadable_ways": len(bad)} if len(bad) else {}), **PROVENANCE_BASE}
    roads = RoadNetwork(ways=frame, nodes={k: v for k, v in nodes.items() if k in used},
                        provenance=provenance, parking=parking, unreadable=bad)
    warning = _unreadable_warning(roads)
    if warning:
        log.warning(warning)
    return roads
