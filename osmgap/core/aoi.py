"""Area of interest: a WGS84 polygon plus the local metric CRS every distance is measured in."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import overload

import numpy as np
import shapely
from pyproj import CRS as ProjCRS
from pyproj import Transformer
from shapely.geometry import MultiPolygon, Polygon, box, shape
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

from osmgap.core.osmtags import clean_text
from osmgap.errors import InputError, one_line

log = logging.getLogger(__name__)

# An AOI across the antimeridian, written the naive way (an edge from 179.9 to -179.9), would be
# read as a 359.8-degree strip, and one split as RFC 7946 asks (parts touching -180 and 180) as
# an AOI around the globe measured in one UTM zone; osmgap asks for one AOI per side instead.
MAX_EDGE_LON_DEG = 180.0
ANTIMERIDIAN_ADVICE = "split it at 180 degrees into one AOI per side and run osmgap on each"
BBOX_NAME = "bbox"  # the name of a bbox AOI given no --name
MAX_NAME_CHARS = 200


@dataclass(frozen=True)
class Aoi:
    """``geometry`` is a (Multi)Polygon in lon/lat; ``metric_crs`` the UTM zone of its centre.
    ``warnings``: what was repaired while reading it (a self-intersecting polygon), for the summary."""

    geometry: Polygon | MultiPolygon
    name: str
    source: str
    warnings: tuple[str, ...] = ()

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        return tuple(self.geometry.bounds)

    @property
    def metric_crs(self) -> ProjCRS:
        return utm_crs_for(self.geometry.centroid.x, self.geometry.centroid.y)

    def to_metric(self, geom: BaseGeometry) -> BaseGeometry:
        return reproject(geom, "EPSG:4326", self.metric_crs)

    def area_km2(self) -> float:
        return self.to_metric(self.geometry).area / 1e6


def utm_crs_for(lon: float, lat: float) -> ProjCRS:
    """The WGS84 UTM zone CRS that contains (lon, lat): metres with little distortion."""
    zone = int((lon + 180) // 6) % 60 + 1
    return ProjCRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


@overload
def reproject(geom: np.ndarray, src: object, dst: object) -> np.ndarray: ...
@overload
def reproject(geom: BaseGeometry, src: object, dst: object) -> BaseGeometry: ...
def reproject(geom: BaseGeometry | np.ndarray, src: object, dst: object) -> BaseGeometry | np.ndarray:
    """``geom`` (or an array of geometries, transformed in one call) from ``src`` to ``dst``."""
    transformer = crs_transformer(src, dst)
    return shapely.transform(geom, lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1])))


def check_earth_crs(crs: object, where: str | Path) -> None:
    """An InputError for a CRS that places nothing on Earth (a local or engineering CRS: no
    transformation to lon/lat exists, and GDAL's error said only that)."""
    known = ProjCRS.from_user_input(crs) if not isinstance(crs, ProjCRS) else crs
    if not (known.is_geographic or known.is_projected):
        raise InputError(where, f"its CRS ({clean_text(known.name)[:60]}) is a local one that places nothing on Earth: "
                                "georeference it in a geographic or projected CRS (an EPSG code)")


def crs_transformer(src: object, dst: object) -> Transformer:
    """Building a Transformer costs ~0.3 ms; conflation reprojects thousands of suggestions."""
    try:
        return _cached_transformer(src, dst)
    except TypeError:  # an unhashable CRS object
        return Transformer.from_crs(src, dst, always_xy=True)


@lru_cache(maxsize=64)
def _cached_transformer(src: object, dst: object) -> Transformer:
    return Transformer.from_crs(src, dst, always_xy=True)


def parse_bbox(text: str) -> Polygon | None:
    """``minlon,minlat,maxlon,maxlat`` -> polygon, or None when ``text`` is not four numbers."""
    parts = text.split(",")
    if len(parts) != 4:
        return None
    try:
        minx, miny, maxx, maxy = (float(p) for p in parts)
    except ValueError:
        return None
    if -180 <= maxx < minx <= 180 and maxx + 360 - minx <= MAX_EDGE_LON_DEG and -90 <= miny < maxy <= 90:
        raise InputError(text, f"bbox crosses the antimeridian (minlon {minx:g} > maxlon {maxx:g}); {ANTIMERIDIAN_ADVICE}")
    if not (-180 <= minx < maxx <= 180 and -90 <= miny < maxy <= 90):
        raise InputError(text, "bbox must be minlon,minlat,maxlon,maxlat with min < max, in degrees")
    return box(minx, miny, maxx, maxy)


def load_aoi(spec: str, name: str | None = None) -> Aoi:
    """Read an AOI from a bbox string, a GeoJSON file, or a sample-AOI directory.

    Its name keys the AOI's history in a state file, so it comes from the AOI itself: ``name``
    (``--name``), else a sample directory's name, else the file's ``name`` (the Feature's
    property, or the FeatureCollection's own ``name`` member, or the one name all its features
    share), else the file's stem. A bbox has no name of its own: ``bbox`` (see
    :func:`is_bbox`; a state refuses to record one without ``--name``)."""
    given = check_name(name, "--name") if name is not None else None
    bbox = parse_bbox(spec)
    if bbox is not None:
        return Aoi(bbox, name=given or BBOX_NAME, source=spec)
    path = Path(spec)
    directory = path.is_dir()
    if directory:
        path = path / "aoi.geojson"
    if not path.is_file():
        raise InputError(spec, "AOI not found: expected a GeoJSON file, a sample AOI directory or minlon,minlat,maxlon,maxlat")
    doc = _read_json(path)
    geom, warnings = _polygon_from_geojson(doc, path)
    if given is None:
        own = None if directory else _name_in(doc, path)
        given = own or (path.parent.name if path.name == "aoi.geojson" else path.stem)
    return Aoi(geom, name=given, source=str(path), warnings=warnings)


def is_bbox(spec: str) -> bool:
    """``spec`` is a ``minlon,minlat,maxlon,maxlat`` AOI (which has no name of its own)."""
    return parse_bbox(spec) is not None


def check_name(name: str, where: str | Path) -> str:
    """An AOI name as osmgap keeps it (it keys the state, titles pages and challenges): one line
    any XML or JSON reader accepts, at most MAX_NAME_CHARS (``clean_text``); InputError naming
    ``where`` when nothing is left."""
    text = clean_text(name, MAX_NAME_CHARS)
    if not text.strip("\ufffd "):
        raise InputError(where, f"the AOI name {name!r} is empty once cleaned of control characters")
    return text


def _name_in(doc: object, path: Path) -> str | None:
    """The AOI file's own name: a Feature's ``name`` property, a FeatureCollection's ``name``
    member (as GDAL writes the layer name), or the ``name`` every feature of it shares."""
    if not isinstance(doc, dict):
        return None
    if doc.get("type") == "Feature":
        names = [_property_name(doc)]
    elif isinstance(doc.get("name"), str) and doc["name"].strip():
        names = [doc["name"]]
    else:
        names = [_property_name(f) for f in doc.get("features") or []]
    found = {n for n in names if n is not None}
    return check_name(found.pop(), path) if len(found) == 1 and None not in names else None


def _property_name(feature: object) -> str | None:
    props = feature.get("properties") if isinstance(feature, dict) else None
    value = props.get("name") if isinstance(props, dict) else None
    return value if isinstance(value, str) and value.strip() else None


def _read_json(path: Path) -> object:
    """The JSON document in ``path``; InputError for unreadable, binary, non-UTF-8 or absurdly
    nested files (Python's parser recurses once per level)."""
    try:
        text = path.read_bytes().decode("utf-8-sig")  # a BOM, as some Windows editors write, is fine
    except UnicodeDecodeError:
        raise InputError(path, "AOI is not UTF-8 text (a binary file?): expected GeoJSON") from None
    except OSError as exc:
        raise InputError(path, f"cannot read AOI ({exc.strerror or one_line(exc)})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(path, f"AOI is not valid JSON ({exc})") from None
    except RecursionError:
        raise InputError(path, "AOI JSON is nested too deeply to be GeoJSON") from None


def _geometries(doc: object, path: Path) -> list[object]:
    """The geometry objects of a FeatureCollection, a Feature or a bare geometry."""
    if not isinstance(doc, dict):
        raise InputError(path, "AOI GeoJSON must be an object")
    kind = doc.get("type")
    if kind == "FeatureCollection":
        features = doc.get("features")
        if not isinstance(features, list) or not all(isinstance(f, dict) for f in features):
            raise InputError(path, "AOI FeatureCollection must hold a list of Features")
        return [f.get("geometry") for f in features]
    if kind == "Feature":
        return [doc.get("geometry")]
    return [doc]


def _polygon_from_geojson(doc: object, path: Path) -> tuple[Polygon | MultiPolygon, tuple[str, ...]]:
    """The AOI (Multi)Polygon, and the warning when it had to be repaired."""
    polys: list[Polygon] = []
    for g in _geometries(doc, path):
        if not g:
            continue
        try:
            with np.errstate(invalid="ignore"):  # a NaN vertex is refused below, not warned about
                geom = shape(g)
        except Exception as exc:  # shapely raises several types for malformed geometry
            raise InputError(path, f"AOI geometry is malformed ({one_line(exc)[:200]})") from None
        if isinstance(geom, Polygon):
            polys.append(geom)
        elif isinstance(geom, MultiPolygon):
            polys.extend(geom.geoms)
        else:
            raise InputError(path, f"AOI must be a Polygon or MultiPolygon, got {geom.geom_type}")
    if not polys:
        raise InputError(path, "AOI GeoJSON holds no Polygon or MultiPolygon")
    result = _to_lonlat(polys[0] if len(polys) == 1 else MultiPolygon(polys), _named_crs(doc, path), path)
    _check_coordinates(result, path)
    warnings: tuple[str, ...] = ()
    if not result.is_valid:
        result, warnings = _repaired(result, path)
    if result.is_empty or result.area == 0:
        raise InputError(path, "AOI polygon is empty")
    return result, warnings


def _named_crs(doc: object, path: Path) -> ProjCRS | None:
    """The CRS a GeoJSON file names in its ``crs`` member (the 2008 GeoJSON spec's, which QGIS
    still writes for a layer saved in its own CRS), None when it names none. RFC 7946 dropped
    the member, but a file that has one means it: read in lon/lat, Lambert-93 metres are
    nowhere on Earth."""
    crs = doc.get("crs") if isinstance(doc, dict) else None
    if crs is None:
        return None
    name = crs.get("properties", {}).get("name") if isinstance(crs, dict) and isinstance(crs.get("properties"), dict) \
        else None
    if not isinstance(name, str):
        raise InputError(path, "AOI names its CRS in a form osmgap does not read (a 'crs' member without "
                               "properties.name): save it as GeoJSON in WGS84 (EPSG:4326)")
    try:
        return ProjCRS.from_user_input(name)
    except Exception:  # pyproj's CRSError, or what it raises for odd input
        raise InputError(path, f"AOI names a CRS osmgap does not know ({clean_text(name)[:80]!r}): save it as "
                               "GeoJSON in WGS84 (EPSG:4326)") from None


def _to_lonlat(geom: Polygon | MultiPolygon, crs: ProjCRS | None, path: Path) -> Polygon | MultiPolygon:
    """``geom`` in WGS84 lon/lat; it is already unless the file names another CRS. Edges are
    cut into 100 pieces of the AOI's extent first, so they bend as the projection bends them."""
    if crs is None or crs.equals(ProjCRS.from_epsg(4326), ignore_axis_order=True):
        return geom
    xy = shapely.get_coordinates(geom)
    if not np.isfinite(xy).all():
        raise InputError(path, "AOI has a coordinate that is not a finite number")
    minx, miny, maxx, maxy = geom.bounds
    step = max(maxx - minx, maxy - miny) / 100 or 1.0
    try:
        out = reproject(shapely.segmentize(geom, step), crs, "EPSG:4326")
    except Exception as exc:  # pyproj: a CRS it cannot transform from
        raise InputError(path, f"AOI cannot be brought from {crs.name} to WGS84 ({one_line(exc)[:120]})") from None
    if not np.isfinite(shapely.get_coordinates(out)).all():
        raise InputError(path, f"AOI lies outside the area where {crs.name} is defined")
    return out


def _check_coordinates(geom: BaseGeometry, path: Path) -> None:
    """Finite lon/lat degrees on one side of the antimeridian."""
    xy = shapely.get_coordinates(geom)
    if not np.isfinite(xy).all():
        raise InputError(path, "AOI has a coordinate that is not a finite number")
    minx, miny, maxx, maxy = geom.bounds
    if not (-180 <= minx <= maxx <= 360 and -90 <= miny <= maxy <= 90):
        raise InputError(path, "AOI coordinates are not lon/lat degrees within -180..180 and -90..90: GeoJSON is "
                               "WGS84; a file in another CRS must name it (a 'crs' member, as QGIS writes) or be "
                               "saved in EPSG:4326")
    if maxx > 180:
        raise InputError(path, f"AOI longitudes run past 180 degrees (to {maxx:g}): an AOI across the antimeridian? "
                               f"{ANTIMERIDIAN_ADVICE}")
    rings = [r for p in shapely.get_parts(geom) for r in (p.exterior, *p.interiors)]
    widest = max(float(np.abs(np.diff(np.asarray(r.coords)[:, 0])).max(initial=0.0)) for r in rings)
    if widest > MAX_EDGE_LON_DEG:
        raise InputError(path, f"AOI crosses the antimeridian (an edge spans {widest:.1f} degrees of longitude); "
                               f"{ANTIMERIDIAN_ADVICE}")
    if minx == -180 and maxx == 180:
        raise InputError(path, f"AOI touches both -180 and 180 degrees of longitude (an AOI split at the "
                               f"antimeridian, or the whole globe); {ANTIMERIDIAN_ADVICE}")


def _repaired(geom: BaseGeometry, path: Path) -> tuple[Polygon | MultiPolygon, tuple[str, ...]]:
    """``shapely.make_valid``'s polygons: a self-intersecting outline keeps every lobe (``buffer(0)``
    would keep one and silently drop the rest); the caller is warned, as the area may not be the
    one meant."""
    why = explain_validity(geom)
    parts = [p for p in shapely.get_parts(shapely.get_parts(shapely.make_valid(geom)))
             if isinstance(p, Polygon) and p.area > 0]
    if not parts:
        raise InputError(path, f"AOI polygon is invalid ({why}) and encloses no area")
    fixed = parts[0] if len(parts) == 1 else MultiPolygon(parts)
    warning = (f"WARNING: {path}: the AOI polygon is not valid ({why}); repaired with make_valid into "
               f"{len(parts)} polygon{'s' * (len(parts) > 1)}: check that this is the area meant")
    log.warning(warning)
    return fixed, (warning,)
