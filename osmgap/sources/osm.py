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
import http.client
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

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
from osmgap.core.datamodel import PARKING_COLUMNS, WAY_COLUMNS, WGS84, RoadNetwork
from osmgap.errors import InputError, one_line

# highway=* values a vehicle can drive on (or that imagery shows as a road surface); paths,
# steps, platforms, indoor corridors and unbuilt ways are not what a road model detects.
ROAD_CLASSES: frozenset[str] = frozenset({
    "motorway", "trunk", "primary", "secondary", "tertiary",
    "motorway_link", "trunk_link", "primary_link", "secondary_link", "tertiary_link",
    "unclassified", "residential", "living_street", "service", "road", "track",
    "pedestrian", "busway",
})

# amenity=parking areas with no aisles a road source sees: a garage underground, parking along
# the carriageway (a lane, a strip on the kerb, a lay-by); a missing street beside one is a street
NOT_LOTS: frozenset[str] = frozenset({"underground", "street_side", "lane", "inline", "on_kerb",
                                      "half_on_kerb", "shoulder", "layby"})

# File suffixes osmium reads (it picks the decoder and decompressor from the name).
_OSMIUM_SUFFIXES = {".osm.pbf": "pbf", ".pbf": "pbf", ".osm": "osm-xml", ".osm.bz2": "osm-xml",
                    ".osm.gz": "osm-xml"}
_GEOJSON_SUFFIXES = (".geojson", ".json")

OVERPASS_URL = "https://overpass-api.de/api/interpreter"
OVERPASS_SPEC = "overpass"
OVERPASS_TIMEOUT_S = 180  # server-side [timeout:]; the client waits a little longer
OVERPASS_RETRIES = 3  # retries after the first attempt
OVERPASS_BACKOFF_S = 5.0  # first wait; doubles on each retry
DEFAULT_CACHE_DIR = Path("~/.cache/osmgap/overpass")
# What a busy or flaky Overpass server (or network) raises; a bad query is not retried.
_RETRYABLE = (opx.OverpassGatewayTimeout, opx.OverpassTooManyRequests, opx.OverpassError,
              opx.OverpassUnknownHTTPStatusCode, opx.OverpassUnknownContentType,
              urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError,
              ValueError)

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


NodeTable = dict[int, tuple[int | None, float, float]]


def load_osm(spec: str, aoi: Aoi, cache_dir: Path | None = None) -> RoadNetwork:
    """Read the OSM roads of ``aoi`` from a file or (``spec == 'overpass'``) the Overpass API."""
    if spec == OVERPASS_SPEC:
        return load_overpass(aoi, cache_dir)
    path = Path(spec)
    if not path.is_file():
        raise InputError(path, "OSM file not found")
    fmt = _file_format(path)
    if fmt == "geojson":
        return load_geojson(path, aoi)
    if fmt is None:
        raise InputError(path, "unknown OSM file type: expected .osm, .osm.pbf, .osm.bz2, "
                               ".geojson or .json, or the word 'overpass'")
    return load_osmium_file(path, aoi, fmt)


def _file_format(path: Path) -> str | None:
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
        ways = clip_to_aoi(_scan_road_ways(path, aoi), aoi)
        wanted = {n for w in ways for n in (w.node_ids or ())}
        nodes = _scan_nodes(path, wanted) if wanted else {}
        lots = clip_lots(_scan_parking(path), aoi)
    except RuntimeError as exc:  # osmium reports corrupt, truncated or unreadable input so
        raise InputError(path, f"cannot read OSM data ({one_line(exc)})") from None
    return _network(ways, nodes, source=str(path), fmt=fmt, lots=lots)


def _scan_road_ways(path: Path, aoi: Aoi) -> list[_Way]:
    """Road ways whose bbox meets the AOI's bbox, geometry from the file's node locations."""
    road_filter = TagFilter(*(("highway", c) for c in sorted(ROAD_CLASSES)))
    processor = (osmium.FileProcessor(str(path), osmium.osm.NODE | osmium.osm.WAY)
                 .with_locations()
                 .with_filter(EntityFilter(osmium.osm.WAY))
                 .with_filter(road_filter))
    minx, miny, maxx, maxy = aoi.bounds
    ways: list[_Way] = []
    for w in processor:
        coords = [(n.lon, n.lat) for n in w.nodes if n.location.valid()]
        if len(coords) < 2 or not _bbox_overlaps(coords, minx, miny, maxx, maxy):
            continue
        tags = dict(w.tags)
        ways.append(_Way(osm_id=w.id, highway=tags["highway"], version=w.version or None,
                         node_ids=[n.ref for n in w.nodes], tags=tags,
                         geometry=LineString(coords)))
    return ways


def _bbox_overlaps(coords: list[tuple[float, float]], minx: float, miny: float,
                   maxx: float, maxy: float) -> bool:
    """Cheap rejection before any shapely geometry is built."""
    xs, ys = zip(*coords)
    return min(xs) <= maxx and max(xs) >= minx and min(ys) <= maxy and max(ys) >= miny


def _scan_nodes(path: Path, node_ids: set[int]) -> NodeTable:
    """id -> (version, lon, lat) for ``node_ids``; ids absent from the file are left out."""
    processor = (osmium.FileProcessor(str(path), osmium.osm.NODE)
                 .with_filter(IdFilter(node_ids)))
    return {n.id: (n.version or None, n.location.lon, n.location.lat)
            for n in processor if n.location.valid()}


def _scan_parking(path: Path) -> list[_Lot]:
    """``amenity=parking`` areas, assembled by osmium from closed ways and multipolygon
    relations; a lot whose nodes the extract lacks (cut at its border) cannot be, and is left out."""
    lot_filter = TagFilter(("amenity", "parking"))
    processor = osmium.FileProcessor(str(path)).with_areas(lot_filter).with_filter(lot_filter)
    wkb = osmium.geom.WKBFactory()
    lots: list[_Lot] = []
    for obj in processor:
        if not obj.is_area():
            continue
        try:
            geometry = shapely.from_wkb(wkb.create_multipolygon(obj))
        except RuntimeError:  # osmium: an invalid location or ring
            continue
        lots.append(_Lot("way" if obj.from_way() else "relation", obj.orig_id(), obj.tags.get("parking"), geometry))
    return lots


# --- GeoJSON exports of OSM ways -------------------------------------------------------


def load_geojson(path: Path, aoi: Aoi) -> RoadNetwork:
    """Roads of ``aoi`` from a GeoJSON of OSM ways: no node ids, so ``nodes`` stays empty."""
    features = _geojson_features(path)
    lines = [f for f in features if _is_line(f.get("geometry"))]
    if features and not lines:
        raise InputError(path, "GeoJSON holds no LineString or MultiLineString features")
    ways = [w for w in (_way_from_feature(f, i, path) for i, f in enumerate(lines)) if w]
    lots = [lot for lot in map(_lot_from_feature, features) if lot]
    return _network(clip_to_aoi(ways, aoi), {}, source=str(path), fmt="geojson", lots=clip_lots(lots, aoi))


def _geojson_features(path: Path) -> list[dict[str, Any]]:
    """The features of a FeatureCollection or single Feature; InputError for anything else."""
    try:
        doc = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(path, f"not valid JSON ({one_line(exc)})") from None
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


def _way_from_feature(feature: dict[str, Any], index: int, path: Path) -> _Way | None:
    """A _Way from one line feature; None when its highway class is not a road."""
    props = feature.get("properties") or {}
    osm_id = _parse_osm_id(props.get("osm_id"))
    if osm_id is None:
        raise InputError(path, f"feature {index} has no usable osm_id property "
                               f"(got {props.get('osm_id')!r})")
    class_key = "highway" if props.get("highway") else "type"
    highway = str(props.get(class_key) or "road")
    if highway not in ROAD_CLASSES:
        return None
    try:
        geometry = shapely.force_2d(shape(feature["geometry"]))
    except Exception as exc:  # shapely raises several types for malformed coordinates
        raise InputError(path, f"feature {index} has malformed geometry ({one_line(exc)})") from None
    tags = {k: str(v) for k, v in props.items()
            if isinstance(v, str) and v not in ("", "None") and k not in ("osm_id", class_key)}
    tags["highway"] = highway
    return _Way(osm_id=osm_id, highway=highway, version=None, node_ids=None, tags=tags,
                geometry=geometry)


def _lot_from_feature(feature: dict[str, Any]) -> _Lot | None:
    """A parking lot from a Polygon/MultiPolygon feature tagged ``amenity=parking``, else None
    (a malformed polygon is skipped: lots only refine what kind of road a suggestion is)."""
    props = feature.get("properties") or {}
    geometry = feature.get("geometry")
    if props.get("amenity") != "parking" or not isinstance(geometry, dict) \
            or geometry.get("type") not in ("Polygon", "MultiPolygon"):
        return None
    try:
        polygon = shapely.force_2d(shape(geometry))
    except Exception:  # shapely raises several types for malformed coordinates
        return None
    raw = props.get("osm_id", props.get("@id"))
    relation = isinstance(raw, str) and raw.startswith("relation/")
    osm_id = _parse_osm_id(raw.removeprefix("relation/") if relation else raw)
    parking = props.get("parking")
    return _Lot("relation" if relation else "way", osm_id, str(parking) if parking else None, polygon)


def _parse_osm_id(value: Any) -> int | None:
    """27236016, 27236016.0, '27236016' or 'way/27236016' -> 27236016; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = value.removeprefix("way/").strip()
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, (int, float)) and float(value).is_integer() and value > 0:
        return int(value)
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
    """Overpass JSON or XML -> overpy.Result; raises overpy's errors for server remarks."""
    api = overpy.Overpass()
    return api.parse_xml(raw) if raw.lstrip().startswith(b"<") else api.parse_json(raw)


def _query_with_retries(url: str, query: str) -> tuple[bytes, overpy.Result]:
    """Ask Overpass, backing off exponentially while the server is busy or unreachable."""
    attempt = 0
    while True:
        try:
            raw = _http_post(url, query, OVERPASS_TIMEOUT_S + 30)
            return raw, _parse_overpass(raw)
        except opx.OverpassBadRequest as exc:
            raise InputError(OVERPASS_SPEC, f"Overpass rejected the query ({one_line(exc)})") from None
        except _RETRYABLE as exc:
            if attempt == OVERPASS_RETRIES:
                raise InputError(OVERPASS_SPEC, f"Overpass API at {url} failed {attempt + 1} "
                                                f"times, last: {one_line(exc)}") from None
            time.sleep(OVERPASS_BACKOFF_S * 2 ** attempt)
            attempt += 1


def _http_post(url: str, query: str, timeout_s: float) -> bytes:
    """POST the query; HTTP errors become overpy's exceptions (overpy itself has no timeout)."""
    body = urllib.parse.urlencode({"data": query}).encode("utf-8")
    request = urllib.request.Request(url, data=body, headers={"User-Agent": "osmgap"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.read()
    except urllib.error.HTTPError as exc:
        raise _overpy_error(exc.code, query) from exc


def _overpy_error(status: int, query: str) -> opx.OverPyException:
    if status == 400:
        return opx.OverpassBadRequest(query.encode("utf-8"), msgs=[])
    if status == 429:
        return opx.OverpassTooManyRequests()
    if status == 504:
        return opx.OverpassGatewayTimeout()
    return opx.OverpassUnknownHTTPStatusCode(status)


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


def _network(ways: list[_Way], nodes: NodeTable, source: str, fmt: str,
             lots: list[_Lot] = ()) -> RoadNetwork:
    """The RoadNetwork of clipped ways and lots; ``nodes`` trimmed to the nodes the ways use."""
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
    provenance = {"source": source, "format": fmt, "ways": len(frame), "parking_lots": len(parking),
                  **PROVENANCE_BASE}
    return RoadNetwork(ways=frame, nodes={k: v for k, v in nodes.items() if k in used},
                       provenance=provenance, parking=parking)
