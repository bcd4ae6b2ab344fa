"""OSM roads from a GeoJSON export of OSM ways (osmium export, Overpass turbo, osm2pgsql-style).

No node ids, so the RoadNetwork's ``nodes`` stays empty. Each line feature is a way classed by its
``highway`` (else ``type``) property and identified by ``osm_id`` (or the ``@id`` those exporters
write; their node and relation features are no ways); a way whose geometry is empty,
missing, not a line or has NaN coordinates is listed as unreadable, so no road is suggested where
it may lie. ``amenity=parking`` polygons are the parking lots. A line classed as something other
than a road that may look like one (``highway=footway``, ``construction``: osmgap.core.osmtags.
mapped_otherwise) is one of the RoadNetwork's ``other_ways``.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry import LineString, shape
from shapely.geometry.base import BaseGeometry

from osmgap.core.aoi import Aoi
from osmgap.core.datamodel import NO_GEOMETRY, NOT_A_LINE, NOT_FINITE, RoadNetwork
from osmgap.core.memory import collector_paused
from osmgap.core.osmtags import OTHER_WAY_KEYS, ROAD_CLASSES, mapped_otherwise, way_level
from osmgap.errors import InputError, one_line
from osmgap.sources import osmways
from osmgap.sources.osm_extent import check_reaches_aoi, union_bounds

# OSM ids are positive 64-bit integers; an id a float carries is exact only up to 2**53.
MAX_OSM_ID = 2**63 - 1
MAX_FLOAT_ID = 2**53


def load_geojson(path: Path, aoi: Aoi) -> RoadNetwork:
    """Roads of ``aoi`` from a GeoJSON of OSM ways: no node ids, so ``nodes`` stays empty. A way
    whose geometry is empty, missing, not a line or has NaN coordinates is listed as unreadable
    (the lines through the finite vertices of its line parts are still ways)."""
    doc = _read_json(path)
    if isinstance(doc, dict) and isinstance(doc.get("elements"), list):  # Overpass's JSON, saved to a file
        from osmgap.sources.overpass import load_overpass_answer

        return load_overpass_answer(path, aoi)
    features = _features(doc, path)
    way_features = [(i, f) for i, f in enumerate(features) if _is_way(f) and _osm_type(f) in ("way", None)]
    if features and not any(_is_line(f.get("geometry")) for _, f in way_features):
        raise InputError(path, "GeoJSON holds no LineString or MultiLineString features")
    ways: list[osmways.Way] = []
    unreadable: list[osmways.Unreadable] = []
    others: list[osmways.OtherWay] = []
    for i, f in way_features:
        read, problem = _way_from_feature(f, i, path)
        ways += read
        unreadable += [problem] if problem is not None else []
        others += _other_ways(f) if not read and problem is None else []
    lots = [lot for lot in map(_lot_from_feature, features) if lot]
    clipped = osmways.clip_to_aoi(ways, aoi)
    if not clipped:  # an unmapped place, or the wrong file: where do the file's roads lie?
        check_reaches_aoi(path, aoi, union_bounds([w.geometry.bounds for w in ways if not w.geometry.is_empty]))
    return osmways.road_network(clipped, {}, source=str(path), fmt="geojson",
                                lots=osmways.clip_lots(lots, aoi), unreadable=osmways.near_aoi(unreadable, aoi),
                                others=osmways.near_other_ways(others, aoi))


def _read_json(path: Path) -> Any:
    """The parsed JSON document of ``path``; InputError when it is none."""
    try:
        with collector_paused():  # a parsed document has no cycles to collect
            doc = json.loads(path.read_bytes().decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise InputError(path, "not UTF-8 text (a binary file?): expected GeoJSON") from None
    except OSError as exc:  # no permission: the user's input, exit 2
        raise InputError(path, f"cannot read ({exc.strerror or exc})") from None
    except json.JSONDecodeError as exc:
        raise InputError(path, f"not valid JSON ({one_line(exc)})") from None
    except RecursionError:
        raise InputError(path, "JSON nested too deeply to be GeoJSON") from None
    return doc


def _features(doc: Any, path: Path) -> list[dict[str, Any]]:
    """The features of a FeatureCollection or single Feature; InputError for anything else."""
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
    """A line feature, or one classed as a road whose geometry is a polygon (a closed way, such as
    a roundabout, that an exporter made an area), a collection or missing: an OSM way the export
    mangled, which must not go unnoticed."""
    geometry = feature.get("geometry")
    if _is_line(geometry):
        return True
    mangled = not geometry or (isinstance(geometry, dict) and geometry.get("type") in (
        "GeometryCollection", "Polygon", "MultiPolygon"))
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
                      path: Path) -> tuple[list[osmways.Way], osmways.Unreadable | None]:
    """The way of one feature and, when it could not be read whole, what is known of it (the way is
    then the lines through the finite vertices of its line parts); no way when its highway class
    is not a road."""
    props = _properties(feature)
    osm_id = _way_id(feature)
    if osm_id is None:
        raise InputError(path, f"feature {index} has no usable osm_id property (a positive integer below 2^63, or "
                               f"an @id such as 'way/123' as Overpass turbo and osmium export write it; got "
                               f"{str(props.get('osm_id', props.get('@id', feature.get('id'))))[:40]!r})")
    class_key, highway = _road_class(props)
    if highway is None and _mapped_otherwise(props) is not None:
        return [], None  # a railway=rail line, say: an other way (_other_ways), no road of unknown class
    highway = highway or "road"
    if highway not in ROAD_CLASSES:
        return [], None
    geometry, reason = _way_geometry(feature.get("geometry"), index, path)
    tags = {k: str(v) for k, v in props.items()
            if isinstance(v, str) and v not in ("", "None") and k not in ("osm_id", "@id", "@type", "id", class_key)}
    tags["highway"] = highway
    way = osmways.Way(osm_id=osm_id, highway=highway, version=None, node_ids=None, tags=tags, geometry=geometry)
    if reason is None:
        return [way], None
    parts = _parts(geometry)
    lines = [osmways.known_line(shapely.get_coordinates(part)) for part in parts if part.geom_type == "LineString"]
    pieces = [replace(way, geometry=g) for g in lines if g is not None]
    # NaN vertices: the stretches they leave unknown; anything else unreadable: all of it
    known = (shapely.geometrycollections([osmways.unknown_stretches(shapely.get_coordinates(p)) for p in parts])
             if reason == NOT_FINITE else geometry)
    return pieces, osmways.Unreadable(osm_id, reason, known)


def _other_ways(feature: dict[str, Any]) -> list[osmways.OtherWay]:
    """A line feature classed as something other than a road that may look like one, as the
    lines through the finite vertices of its parts (none for any other feature)."""
    props = _properties(feature)
    what = _mapped_otherwise(props)
    osm_id = _way_id(feature)
    if what is None or osm_id is None or not _is_line(feature.get("geometry")):
        return []
    try:
        geometry = shape(feature["geometry"])
    except (ValueError, TypeError, AttributeError, KeyError, IndexError, shapely.errors.ShapelyError):
        return []
    lines = [osmways.known_line(shapely.get_coordinates(part)) for part in _parts(geometry)]
    level = way_level(_other_way_tags(props))
    return [osmways.OtherWay(osm_id, what, line, level) for line in lines if line is not None]


def _other_way_tags(props: dict[str, Any]) -> dict[str, str]:
    """The properties osmgap.core.osmtags.mapped_otherwise and way_level read, as tags; the
    class (``highway``, else ``type``) as ``highway``."""
    tags = {k: str(v) for k, v in props.items() if k in OTHER_WAY_KEYS and v is not None and k != "highway"}
    _, value = _road_class(props)
    return {**tags, "highway": value} if value else tags


def _mapped_otherwise(props: dict[str, Any]) -> str | None:
    return mapped_otherwise(_other_way_tags(props))


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
    if geometry.geom_type in ("Polygon", "MultiPolygon"):  # a closed road way exported as an area: its ring
        geometry = shapely.line_merge(geometry.boundary)
    if geometry.geom_type == "LineString":  # nearly every way: no parts to take apart
        return geometry, None if geometry.length > 0 else NOT_A_LINE
    if any(p.geom_type != "LineString" or p.length == 0 for p in _parts(geometry)):
        return geometry, NOT_A_LINE
    return geometry, None


def _lot_from_feature(feature: dict[str, Any]) -> osmways.Lot | None:
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
    raw = _osm_id_said(feature)
    relation = _osm_type(feature) == "relation"
    osm_id = _parse_osm_id(raw.removeprefix("relation/") if isinstance(raw, str) else raw)
    parking = props.get("parking")
    return osmways.Lot("relation" if relation else "way", osm_id, str(parking) if parking else None, polygon)


# Where exporters put a way's id: our own ``osm_id``; osmium export's ``@id`` (a number, with
# ``@type``); Overpass turbo's ``@id`` property and feature ``id`` ("way/123").
_ID_KEYS = ("osm_id", "@id")


def _osm_id_said(feature: dict[str, Any]) -> Any:
    """The feature's id as its exporter wrote it (``_ID_KEYS``, then the feature's own ``id``)."""
    props = _properties(feature)
    own = feature.get("id")  # a bare number there is a row number, not an OSM id
    return next((props[k] for k in _ID_KEYS if props.get(k) is not None),
                own if isinstance(own, str) and "/" in own else None)


def _osm_type(feature: dict[str, Any]) -> str | None:
    """'node', 'way' or 'relation' where the exporter says which OSM object a feature is (osmium's
    ``@type``, turbo's "relation/5"); None where it does not."""
    said = _properties(feature).get("@type")
    if isinstance(said, str) and said:
        return said
    value = _osm_id_said(feature)
    kind, slash, _ = value.partition("/") if isinstance(value, str) else ("", "", "")
    return kind if slash else None


def _way_id(feature: dict[str, Any]) -> int | None:
    """The way id of a feature (``_ID_KEYS``, or its own ``id`` as 'way/N'); None if it has none."""
    return _parse_osm_id(_osm_id_said(feature))


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
