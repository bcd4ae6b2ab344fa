"""Candidate roads from the road sources people have: ML detections published by others, official
open road data, GPS-derived lines, another OSM extract. Read as they are published, clipped to the
AOI, and turned into the same kind of road graph imagery gives:

- ``.osm``/``.osm.pbf``/``.osm.bz2``: with osmgap's own OSM reader (osmgap.sources.osm), so an
  older or third-party extract is read exactly as the OSM input is, level tags included;
- Microsoft RoadDetections TSVs (osmgap.sources.roaddetections);
- GeoParquet, Overture transportation segments included (osmgap.sources.overture);
- anything else GDAL reads (GeoJSON, GeoPackage, Shapefile), with geopandas/pyogrio; one layer
  of a file of several named as QGIS names it, ``FILE|layername=LAYER``.

Each candidate keeps a ``confidence`` (its own ``confidence`` or ``score`` property, 0-1 or
0-100, else a default) and a ``highway`` class when the source has one. The class goes through
the one filter the OSM readers apply (osmgap.core.osmtags.line_class): a line whose class is no
road class (footway, path, trail, ...) is left out, as OSM's own ways of that class are never
read, so no class can be a "missing road" only because OSM's side did not load it.

Nothing else of a line is read, and what is read is checked against the one tag vocabulary
(osmgap.core.osmtags): a level value OSM does not document is dropped, a confidence that is no
number gets the default, a ``highway`` text that is no highway value at all (``motorway;name=X``)
is no class ('road'); one warning names the file and counts them, and one more the lines left out
for a class that is neither a road class nor a common non-road one (trail, bus_guideway, ...). A stranger's file can so never put a tag of its own into the outputs.

A source may also say which level a line lies on, with OSM's ``tunnel``, ``bridge`` and
``layer`` properties (GIS booleans read as OSM's values). A source with any of those columns is
*levelled*: a line without them is on the surface, and conflation lets no OSM way on another
level explain it (a road over a mapped tunnel is still missing); a line whose value was dropped
is of unknown level. A source with none of them (imagery, GPS, most detections) is unlevelled:
the level of its lines is not known.

The reader's warnings are logged and returned with the lines (``attrs["warnings"]``), for
summary.json.
"""
from __future__ import annotations

import io
import logging
import numbers
import re
import threading
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from shapely.geometry.base import BaseGeometry

from osmgap.core.aoi import Aoi, check_earth_crs
from osmgap.core.datamodel import WGS84
from osmgap.core.osmtags import (
    LEVEL_KEYS,
    NOT_ROADS,
    UNKNOWN_CLASS,
    clean_text,
    line_class,
    no_class_given,
    read_level_tags,
    warn_dropped,
    way_level,
)
from osmgap.errors import InputError, one_line
from osmgap.sources import osm, osmways
from osmgap.sources.gdal_files import check_gdal_file
from osmgap.sources.osm_extent import OsmElsewhere, show_bounds
from osmgap.sources.overture import is_geoparquet, read_overture
from osmgap.sources.roaddetections import is_roaddetections, read_roaddetections

log = logging.getLogger(__name__)

CONFIDENCE_COLUMNS = ("confidence", "score")
CONFIDENCE_GIVEN = "confidence_given"  # column: the line gave a confidence of its own (else it counted the default)
LEVEL_UNKNOWN = "level_unknown"  # column of a levelled source: the line's level value was dropped, its level unknown
TRUE_TEXTS = frozenset({"yes", "y", "true", "t", "1"})  # how GIS files write a boolean bridge/tunnel
FALSE_TEXTS = frozenset({"no", "n", "false", "f", "0"})
URI_CHARACTERS = (";", "!", "\n", "\r")  # GDAL reads a path holding one as a URI, and fails to find it
# a layer named as roads, in a few languages (NLS Finland's tieviiva); a word's start, so not railroads
ROAD_LAYER = re.compile(r"(?<![a-z])(road|street|highway|strasse|straße|tie|väg|vej|weg|rue|calle|carretera)",
                        re.IGNORECASE)
LAYER_NAME = "|layername="  # QGIS's data source URI of one layer, which its Layer Properties show to copy
Reader = Callable[[Path, Aoi], gpd.GeoDataFrame]


def load_candidates(path: str | Path, aoi: Aoi, default_confidence: float) -> gpd.GeoDataFrame:
    """Candidate road lines inside ``aoi``: WGS84 LineStrings with ``confidence``, ``confidence_given``
    (False where the line gave none and counted ``default_confidence``) and ``highway``.
    ``attrs["confidence_column"]`` names the source's column the confidences came from (None: it has
    none), ``attrs["confidence_scale"]`` how it was read ('0-1', '0-100'), and ``attrs["warnings"]``
    every warning the reading logged: they say some suggestions may be wrong or some roads unread,
    so the diff puts them into summary.json's warnings too, not only on stderr."""
    file, layer = _file_and_layer(path)
    with _Said() as said:
        lines = _load(file, aoi, default_confidence, layer)
    lines.attrs["warnings"] = said.texts
    return lines


class _Said(logging.Handler):
    """The warnings osmgap's loggers give on this thread while it is installed (a reader's own, and
    those of the helpers it calls: osmtags.warn_dropped, the RoadDetections reader)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.texts: list[str] = []
        self._thread = threading.get_ident()
        self._logger = logging.getLogger("osmgap")

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self._thread:
            self.texts.append(record.getMessage().removeprefix("WARNING: "))

    def __enter__(self) -> _Said:
        self._logger.addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        self._logger.removeHandler(self)


def _file_and_layer(path: str | Path) -> tuple[Path, str | None]:
    """The file and the one layer named in QGIS's way (``roads.gpkg|layername=tieviiva``), or the
    whole of ``path`` when no file is so named (a path that holds the text itself is a path)."""
    text = str(path)
    if LAYER_NAME not in text or Path(text).exists():
        return Path(text), None
    file, _, layer = text.rpartition(LAYER_NAME)
    layer = layer.split("|")[0]  # QGIS may add |geometrytype=... or |subset=... after the name
    if not layer:
        raise InputError(text, f"names no layer after {LAYER_NAME!r}")
    return Path(file), layer


def _load(path: Path, aoi: Aoi, default_confidence: float, layer: str | None = None) -> gpd.GeoDataFrame:
    read = _reader(path)
    if not (path.is_file() or (path.is_dir() and read is read_overture)):
        raise InputError(path, "candidates file not found")
    if layer is not None and read is not _read_file:
        raise InputError(path, f"is no file of layers that GDAL reads, so it has no layer {clean_text(layer)!r} to read")
    try:
        frame = read(path, aoi) if layer is None else _read_file(path, aoi, layer)
    except InputError:
        raise
    except Exception as exc:  # pyogrio/GDAL, pyarrow raise many types for unreadable or foreign files
        raise InputError(path, f"cannot read road lines ({one_line(exc)})") from None
    if frame.geometry is None or len(frame) == 0:
        raise InputError(path, "holds no features" if read is _read_file else "no candidate road line lies near the AOI")
    usable = frame.geometry.notna() & ~frame.geometry.is_empty
    if not usable.all():
        log.warning("WARNING: %s: %d feature(s) without a usable geometry (none, empty, or a line of one point) left "
                    "out", clean_text(path), int((~usable).sum()))
    lines = _lines_only(frame[usable], path)
    lines = finite_lines(lines, path)
    lines = _to_wgs84(lines, path)
    dropped: Counter = Counter()
    highway = _highway(lines, path, dropped)
    confidence, given, column, scale = _confidence(lines, default_confidence, path, dropped)
    out = gpd.GeoDataFrame({"confidence": confidence, CONFIDENCE_GIVEN: given,
                            "highway": highway, **_level_columns(lines, path, dropped)},
                           geometry=lines.geometry.values, crs=WGS84)
    out = out[pd.notna(highway)].explode(index_parts=False).reset_index(drop=True)
    out = out.set_geometry(shapely.force_2d(out.geometry.values), crs=WGS84)
    whole = out.geometry.covered_by(aoi.geometry).to_numpy()  # overlay would split self-crossing lines
    geoms = out.geometry.to_numpy().copy()
    geoms[~whole] = shapely.intersection(geoms[~whole], aoi.geometry)
    clipped = out.set_geometry(gpd.GeoSeries(geoms, crs=WGS84))
    clipped = clipped[~clipped.geometry.is_empty].explode(index_parts=False)
    clipped = clipped[clipped.geometry.geom_type == "LineString"].reset_index(drop=True)
    if len(clipped) == 0:
        raise InputError(path, "no candidate road line lies inside the AOI")
    warn_dropped(path, dropped)
    clipped.attrs["confidence_column"] = column
    clipped.attrs["confidence_scale"] = scale
    return clipped


def _lines_only(frame: gpd.GeoDataFrame, path: Path) -> gpd.GeoDataFrame:
    """The features that are lines, a GeometryCollection's lines read as one; every other feature
    (a polygon, a point) is left out with one warning counting them, as a road source's polygons
    (a square, a parking lot) are no road line, and 12 deleted streets given as polygons once
    vanished without a word. An InputError when no line is left."""
    geoms = frame.geometry.to_numpy().copy()
    collection = shapely.get_type_id(geoms) == 7
    geoms[collection] = [_lines_of(g) for g in geoms[collection]]
    line = np.isin(shapely.get_type_id(geoms), (1, 5))  # LineString, MultiLineString (None: -1)
    if not line.any():
        raise InputError(path, "holds no LineString or MultiLineString features")
    if not line.all():
        kinds = Counter(frame.geometry[~line].geom_type)
        log.warning("WARNING: %s: %d feature(s) that are no line left out (%s)", clean_text(path), int((~line).sum()),
                    ", ".join(f"{k}: {n}" for k, n in kinds.most_common()))
    return frame[line].set_geometry(gpd.GeoSeries(geoms[line], index=frame.index[line], crs=frame.crs))


def _lines_of(collection: Any) -> Any:
    """The lines of a GeometryCollection (nested multi-lines too) as one MultiLineString; None if it has none."""
    parts = shapely.get_parts(shapely.get_parts(collection))
    lines = parts[shapely.get_type_id(parts) == 1]
    return shapely.multilinestrings(lines) if len(lines) else None


def finite_lines(lines: gpd.GeoDataFrame, path: str | Path) -> gpd.GeoDataFrame:
    """``lines`` without those that have a NaN or infinite vertex (a broken export: no geometry
    operation can place them), with one warning; an InputError when none is left."""
    coords, index = shapely.get_coordinates(lines.geometry.to_numpy(), return_index=True)
    bad = np.zeros(len(lines), bool)
    bad[index[~np.isfinite(coords).all(axis=1)]] = True
    if bad.all():
        raise InputError(path, "every line has a NaN or infinite coordinate")
    if bad.any():
        log.warning("WARNING: %s: %d line(s) with a NaN or infinite coordinate left out", path, int(bad.sum()))
    return lines[~bad]


def _reader(path: Path) -> Reader:
    """How to read ``path``, from its name (and, for a zip file, what it holds)."""
    if osm.file_format(path) in ("pbf", "osm-xml"):
        return _read_osm
    if is_roaddetections(path):
        return read_roaddetections
    if is_geoparquet(path):
        return read_overture
    return _read_file


def _read_osm(path: Path, aoi: Aoi) -> gpd.GeoDataFrame:
    """The road ways of an OSM extract, read as the OSM input is (so the same classes are left
    out on both sides), with their ``tunnel``/``bridge``/``layer`` tags: a levelled source. The
    reader's warning about ways it could not read whole is for the OSM input (no road is suggested
    near them); here such a way is evidence as far as the file has it, so it is not given."""
    reader_log = logging.getLogger(osmways.__name__)  # where every OSM reader warns
    quiet = logging.Filter(name="osmgap.sources.candidates")  # passes no record of the OSM reader's
    reader_log.addFilter(quiet)
    try:
        ways = osm.load_osm(str(path), aoi).ways
    except OsmElsewhere as exc:  # its advice is for --osm
        raise InputError(path, f"no road in or near the AOI: the candidates file covers {show_bounds(exc.extent)}, "
                               f"the AOI is at {show_bounds(exc.area)}; give road lines of the AOI") from None
    finally:
        reader_log.removeFilter(quiet)
    levels = {k: np.asarray([t.get(k) for t in ways["tags"]], dtype=object) for k in LEVEL_KEYS}
    return gpd.GeoDataFrame({"highway": ways["highway"].to_numpy(object), **levels},
                            geometry=ways.geometry.values, crs=WGS84)


def _read_file(path: Path, aoi: Aoi | None = None, layer: str | None = None) -> gpd.GeoDataFrame:
    """The road layer's features, through GDAL: ``layer`` when named, else ``_road_layers``. GDAL takes UTF-8 paths only, and
    parses a path as a URI (';' starts parameters, '!' marks a member of an archive, a newline is
    cut): such a name is read from the file's bytes instead."""
    check_gdal_file(path)
    source: Path | io.BytesIO = path
    try:
        str(path).encode("utf-8")
        odd = next((c for c in URI_CHARACTERS if c in str(path)), None)
    except UnicodeEncodeError:  # undecodable bytes, which Python keeps as lone surrogates
        odd = "an undecodable byte"
    if odd is not None:
        if path.suffix.lower() == ".shp":  # its .dbf, .shx, .prj are other files, which no bytes bring
            raise InputError(path, f"GDAL cannot open a Shapefile whose path holds {odd!r}: rename it (and its "
                                   f"sidecar files)")
        source = io.BytesIO(path.read_bytes())
    with warnings.catch_warnings():  # GDAL's in-memory copy has no extension, which it remarks on
        warnings.filterwarnings("ignore", "File /vsimem/", RuntimeWarning)
        listed = [(str(name), str(kind)) for name, kind in pyogrio.list_layers(source)]
        layers = _road_layers(path, listed) if layer is None else [_named_layer(path, listed, layer)]
        # a geometry GEOS cannot hold (a line of one point) reads as none, left out by the caller with the rest
        if len(layers) <= 1:  # one layer of lines (or none: the caller says what the file holds)
            return gpd.read_file(source, layer=layers[0], on_invalid="ignore") if layers else gpd.read_file(source)
        frames = [gpd.read_file(source, layer=name, on_invalid="ignore") for name in layers]
    for name, frame in zip(layers, frames):
        if frame.crs is None:
            raise InputError(path, f"layer {clean_text(name)!r} has no CRS")
    return gpd.GeoDataFrame(pd.concat([f.to_crs(WGS84) for f in frames], ignore_index=True), crs=WGS84)


def _named_layer(path: Path, layers: list[tuple[str, str]], layer: str) -> str:
    """``layer`` when ``path`` holds it, else a clear error listing the layers it does hold."""
    if any(name == layer for name, _ in layers):
        return layer
    held = ", ".join(repr(clean_text(n, 60)) for n, _ in layers[:10]) + (", ..." if len(layers) > 10 else "")
    raise InputError(path, f"has no layer {clean_text(layer)!r} (its layers: {held})")


def _road_layers(path: Path, layers: list[tuple[str, str]]) -> list[str]:
    """The layers of ``path`` to read as roads: the only layer of lines, else those named as roads
    (``ROAD_LAYER``: a GeoPackage's roads split by class), said in a warning. A file with several
    layers of lines and none named so (a national topographic GeoPackage: roads beside railways,
    watercourses, boundaries) is refused: read whole, every line of it became a "missing road"."""
    lines = [name for name, kind in layers if kind == "None" or "line" in kind.lower()
             or kind.lower() in ("unknown", "geometry", "geometrycollection")]
    if len(lines) <= 1:
        return lines
    roads = [name for name in lines if ROAD_LAYER.search(name)]
    if not roads:
        named = ", ".join(repr(clean_text(n, 60)) for n in lines[:10]) + (", ..." if len(lines) > 10 else "")
        raise InputError(path, f"holds {len(lines)} layers of lines ({named}) and none is named as roads: name the one "
                               f"to read as QGIS does, FILE{LAYER_NAME}LAYER")
    if len(roads) < len(lines):
        log.warning("%s: read its layers of roads (%s), not its other layers of lines (%s)", clean_text(path),
                    ", ".join(clean_text(n, 60) for n in roads),
                    ", ".join(clean_text(n, 60) for n in lines if n not in roads))
    return roads


def candidate_tags(frame: pd.DataFrame) -> list[dict | None] | None:
    """Per line: its ``tunnel``/``bridge``/``layer`` values when the frame is levelled (has any
    of those columns), None for the lines whose level is not known (``LEVEL_UNKNOWN``); None
    when the frame is not levelled."""
    keys = [k for k in LEVEL_KEYS if k in frame.columns]
    if not keys:
        return None
    unknown = frame[LEVEL_UNKNOWN].to_numpy(bool) if LEVEL_UNKNOWN in frame.columns else np.zeros(len(frame), bool)
    values = zip(unknown.tolist(), *(frame[k].tolist() for k in keys))
    return [None if row[0] else {k: v for k, v in zip(keys, row[1:]) if isinstance(v, (str, int, float))
                                 and not pd.isna(v)} for row in values]


def candidate_levels(frame: pd.DataFrame) -> np.ndarray:
    """Per line: its level (osmgap.core.osmtags.way_level) when the frame is levelled and it is
    known, NaN when not."""
    tags = candidate_tags(frame)
    if tags is None:
        return np.full(len(frame), np.nan)
    return np.asarray([np.nan if t is None else way_level(t) for t in tags], float)


def confidence_assumed(frame: pd.DataFrame, geometries: Sequence[BaseGeometry]) -> np.ndarray:
    """Per suggestion geometry (WGS84): whether the lines it was drawn from gave no confidence of
    their own (they counted the default, a figure nobody measured, which its outputs must say): all
    when no line gave one, none when every line did, else by the candidate line nearest to five
    points along it (the majority)."""
    given = frame[CONFIDENCE_GIVEN].to_numpy(bool) if CONFIDENCE_GIVEN in frame.columns else np.zeros(len(frame), bool)
    if given.all() or not given.any() or not len(geometries):
        return np.full(len(geometries), not given.any())
    geoms = np.asarray(geometries, dtype=object)
    points = np.repeat(geoms, 5)  # a Point (a misconnection) is its own sample
    lineal = np.isin(shapely.get_type_id(points), (1, 5))
    where = np.tile(np.linspace(0.1, 0.9, 5), len(geoms))
    points[lineal] = shapely.line_interpolate_point(points[lineal], where[lineal], normalized=True)
    crs = frame.geometry.estimate_utm_crs()  # nearest in degrees is skewed away from the equator
    lines = frame.geometry.to_crs(crs).to_numpy()
    _, nearest = shapely.STRtree(lines).query_nearest(gpd.GeoSeries(points, crs=WGS84).to_crs(crs).to_numpy(),
                                                      all_matches=False)
    return (~given[nearest]).reshape(len(geoms), 5).mean(axis=1) > 0.5


def _to_wgs84(frame: gpd.GeoDataFrame, path: Path) -> gpd.GeoDataFrame:
    """Reproject to WGS84; a file without a CRS is taken as lon/lat only if it looks like it."""
    if frame.crs is None:
        minx, miny, maxx, maxy = frame.total_bounds
        if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
            raise InputError(path, "has no CRS and its coordinates are not lon/lat degrees")
        return frame.set_crs(WGS84)
    check_earth_crs(frame.crs, path)
    return frame.to_crs(WGS84)


def _given(value: Any) -> Any:
    """A cell's value, None where the source gives none (None, NaN, pandas' NA)."""
    return None if np.ndim(value) == 0 and bool(pd.isna(value)) else value


def _confidence(frame: gpd.GeoDataFrame, default: float, path: Path, dropped: Counter
                ) -> tuple[np.ndarray, np.ndarray, str | None, str | None]:
    """The source's own confidence/score as 0-1, whether each line gave one (an empty cell, or one
    that is no number, counted in ``dropped``, gets ``default``), its column and its scale ('0-1',
    '0-100'; None: the source has no such column). The scale is the file's, not one value's: a
    percentage when most values exceed 1, or all are whole numbers and some does (a lone 1.2 in a
    0-1 column read every line as percent once, and dropped every gap); a value over 1 in a 0-1
    column is read as 1, with a warning."""
    columns = {c.lower(): c for c in frame.columns}
    name = next((columns[c] for c in CONFIDENCE_COLUMNS if c in columns), None)
    if name is None:
        return np.full(len(frame), default, float), np.zeros(len(frame), bool), None, None
    values = pd.to_numeric(frame[name], errors="coerce").to_numpy(float)
    cells = frame[name].astype(object)
    said = np.asarray([_given(v) is not None and str(v).strip() != "" for v in cells], bool)
    given = np.isfinite(values)
    dropped["confidence"] += int((said & ~given).sum())
    if (~said).any():
        log.warning("%s: %d line(s) give no %r: each counts %g, a figure nobody measured, and its suggestions "
                    "say it is assumed", clean_text(path), int((~said).sum()), clean_text(name, 60), default)
    finite = values[given]
    if not len(finite):
        return np.full(len(frame), default, float), given, name, None
    if finite.min() < 0 or finite.max() > 100:
        raise InputError(path, f"'{name}' values must lie in 0-1 (or 0-100), got {finite.min():g}..{finite.max():g}")
    over = finite > 1
    if over.mean() > 0.5 or (over.any() and (finite == np.round(finite)).all()):
        return np.where(given, values / 100.0, default), given, name, "0-100"
    if over.any():
        log.warning("%s: %d %r value(s) over 1 (up to %g) in a column of 0-1 values read as 1", clean_text(path),
                    int(over.sum()), clean_text(name, 60), finite.max())
    return np.where(given, np.minimum(values, 1.0), default), given, name, "0-1"


def _level_columns(frame: gpd.GeoDataFrame, path: Path, dropped: Counter) -> dict[str, np.ndarray]:
    """The source's ``tunnel``/``bridge``/``layer`` columns (any letter case) as the tags a way on
    that level carries (osmgap.core.osmtags.read_level_tags, GIS booleans read as ``_level_value``),
    None where a line has none, and ``LEVEL_UNKNOWN``: the lines with a value that was dropped
    (counted in ``dropped``) and no valid one left, whose level is not known. Such a line is not on the surface: read so,
    each of a source's bridges was a missing road under an OSM bridge. No column when the source
    has none of them; a ``layer`` column of no number at all (QGIS's "Merge vector layers" names
    each line's source layer there) is not read."""
    columns = {c.lower(): c for c in frame.columns}
    keys = [k for k in LEVEL_KEYS if k in columns]
    if "layer" in keys and not _numbers_in(frame[columns["layer"]]):
        keys.remove("layer")
        log.warning("%s: its 'layer' column holds no number, so it is no OSM layer (a source layer's name?): "
                    "not read", clean_text(path))
    if not keys:
        return {}
    checked, unknown = [], []
    for row in zip(*(frame[columns[k]].astype(object).tolist() for k in keys)):
        tags, bad = read_level_tags({k: _level_value(k, _given(v)) for k, v in zip(keys, row)})
        dropped.update(bad)
        checked.append(tags)
        unknown.append(bool(bad) and not tags)  # a valid value left (tunnel beside a bad layer) still places it
    return {**{k: np.asarray([t.get(k) for t in checked], dtype=object) for k in keys},
            LEVEL_UNKNOWN: np.asarray(unknown, bool)}


def _numbers_in(column: pd.Series) -> bool:
    """Whether a column holds a number, or nothing at all (then it says nothing either way)."""
    values = column.astype(object)
    return bool(pd.to_numeric(values, errors="coerce").notna().any() or values.map(_given).isna().all())


def _level_value(key: str, value: Any) -> Any:
    """A ``tunnel``/``bridge`` cell as OSM's value: the booleans GIS files hold (True, 1, 'Y',
    'true', 't') are 'yes', their false ones (False, 0, 'N', 'false', 'f') None, the surface;
    anything else as given, for ``read_level_tags`` to check."""
    if key == "layer" or value is None:
        return value
    if isinstance(value, (bool, np.bool_, numbers.Real)):
        return {1.0: "yes", 0.0: None}.get(float(value), value)
    text = str(value).strip().lower()
    return "yes" if text in TRUE_TEXTS else None if text in FALSE_TEXTS else value


def _highway(frame: gpd.GeoDataFrame, path: Path, dropped: Counter) -> np.ndarray:
    """Each line's class by ``line_class`` (the OSM readers' rule): a road class; None where the
    source gives a highway value that is no road class (the line is left out); 'road' where it
    gives none (an empty cell, or a text saying so: ``no_class_given``), or a text that is no
    highway value (counted in ``dropped``). Lines left out for a value that is not a common
    non-road class (footway, path, ...) are named in one warning: a source with a class
    vocabulary of its own would lose every line."""
    column = "highway" if "highway" in frame.columns else {c.lower(): c for c in frame.columns}.get("highway")  # HIGHWAY: an ESRI DBF's
    if column is None:
        return np.full(len(frame), UNKNOWN_CLASS, dtype=object)
    texts = ["" if _given(v) is None else str(v).strip() for v in frame[column].astype(object)]
    out = np.asarray([line_class(t) for t in texts], dtype=object)
    dropped["highway"] += sum(cls == UNKNOWN_CLASS and not no_class_given(t) and t.lower() != UNKNOWN_CLASS
                              for t, cls in zip(texts, out))
    odd = Counter(t for t, cls in zip(texts, out) if cls is None and t.lower() not in NOT_ROADS)
    if odd:
        values = ", ".join(f"{clean_text(v, 40)}: {n}" for v, n in odd.most_common(5))
        log.warning("%s: left out %d line(s) whose highway is no road class (%s%s); OSM ways of such a class are "
                    "not read either", clean_text(path), sum(odd.values()), values, ", ..." if len(odd) > 5 else "")
    return out
