"""Candidate roads from the road sources people have: ML detections published by others, official
open road data, GPS-derived lines, another OSM extract. Read as they are published, clipped to the
AOI, and turned into the same kind of road graph imagery gives:

- ``.osm``/``.osm.pbf``/``.osm.bz2``: with osmgap's own OSM reader (osmgap.sources.osm), so an
  older or third-party extract is read exactly as the OSM input is, level tags included;
- Microsoft RoadDetections TSVs (osmgap.sources.roaddetections);
- GeoParquet, Overture transportation segments included (osmgap.sources.overture);
- anything else GDAL reads (GeoJSON, GeoPackage, Shapefile), with geopandas/pyogrio.

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
``layer`` properties. A source with any of those columns is *levelled*: a line without them is
on the surface, and conflation lets no OSM way on another level explain it (a road over a mapped
tunnel is still missing). A source with none of them (imagery, GPS, most detections) is
unlevelled: the level of its lines is not known.
"""
from __future__ import annotations

import io
import logging
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from osmgap.core.aoi import Aoi, check_earth_crs
from osmgap.core.datamodel import WGS84
from osmgap.core.osmtags import (
    LEVEL_KEYS,
    NOT_ROADS,
    UNKNOWN_CLASS,
    clean_text,
    line_class,
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
Reader = Callable[[Path, Aoi], gpd.GeoDataFrame]


def load_candidates(path: str | Path, aoi: Aoi, default_confidence: float) -> gpd.GeoDataFrame:
    """Candidate road lines inside ``aoi``: WGS84 LineStrings with ``confidence`` and ``highway``;
    ``attrs["confidence_column"]`` names the source's column the confidences came from, None when
    it has none and every line got ``default_confidence``."""
    path = Path(path)
    read = _reader(path)
    if not (path.is_file() or (path.is_dir() and read is read_overture)):
        raise InputError(path, "candidates file not found")
    try:
        frame = read(path, aoi)
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
    frame = frame[usable]
    lines = frame[frame.geometry.geom_type.isin(["LineString", "MultiLineString"])]
    if len(lines) == 0:
        raise InputError(path, "holds no LineString or MultiLineString features")
    lines = finite_lines(lines, path)
    lines = _to_wgs84(lines, path)
    dropped: Counter = Counter()
    highway = _highway(lines, path, dropped)
    confidence, column = _confidence(lines, default_confidence, path, dropped)
    out = gpd.GeoDataFrame({"confidence": confidence,
                            "highway": highway, **_level_columns(lines, dropped)},
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
    return clipped


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


def _read_file(path: Path, aoi: Aoi | None = None) -> gpd.GeoDataFrame:
    """The file's features, through GDAL. GDAL takes UTF-8 paths only, so a name that is not
    (undecodable bytes, which Python keeps as lone surrogates) is read from the file's bytes instead."""
    check_gdal_file(path)
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        with warnings.catch_warnings():  # GDAL's in-memory copy has no extension, which it remarks on
            warnings.filterwarnings("ignore", "File /vsimem/", RuntimeWarning)
            return gpd.read_file(io.BytesIO(path.read_bytes()), on_invalid="ignore")
    layers = [str(name) for name, kind in pyogrio.list_layers(path) if kind is None or "line" in str(kind).lower()
              or str(kind).lower() in ("unknown", "geometry", "geometrycollection")]
    # a geometry GEOS cannot hold (a line of one point) reads as none, left out by the caller with the rest
    if len(layers) <= 1:  # one layer of lines (or none: the caller says what the file holds)
        return gpd.read_file(path, layer=layers[0], on_invalid="ignore") if layers else gpd.read_file(path)
    log.info("%s: reading its %d layers of lines: %s", clean_text(path), len(layers), ", ".join(layers))
    frames = [gpd.read_file(path, layer=name, on_invalid="ignore") for name in layers]  # a GeoPackage's roads by class
    for name, frame in zip(layers, frames):
        if frame.crs is None:
            raise InputError(path, f"layer {clean_text(name)!r} has no CRS")
    return gpd.GeoDataFrame(pd.concat([f.to_crs(WGS84) for f in frames], ignore_index=True), crs=WGS84)


def candidate_tags(frame: pd.DataFrame) -> list[dict] | None:
    """Per line: its ``tunnel``/``bridge``/``layer`` values when the frame is levelled (has any
    of those columns), None when it is not."""
    keys = [k for k in LEVEL_KEYS if k in frame.columns]
    if not keys:
        return None
    values = zip(*(frame[k].tolist() for k in keys))
    return [{k: v for k, v in zip(keys, row) if isinstance(v, (str, int, float)) and not pd.isna(v)} for row in values]


def candidate_levels(frame: pd.DataFrame) -> np.ndarray:
    """Per line: its level (osmgap.core.osmtags.way_level) when the frame is levelled, NaN when not."""
    tags = candidate_tags(frame)
    return np.full(len(frame), np.nan) if tags is None else np.asarray([way_level(t) for t in tags], float)


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


def _confidence(frame: gpd.GeoDataFrame, default: float, path: Path, dropped: Counter) -> tuple[np.ndarray, str | None]:
    """The source's own confidence/score, as 0-1, and its column (None: the source has none, and
    every line gets ``default``); a percentage scale is recognised. A value that is no finite
    number gets ``default`` and is counted in ``dropped``."""
    columns = {c.lower(): c for c in frame.columns}
    name = next((columns[c] for c in CONFIDENCE_COLUMNS if c in columns), None)
    if name is None:
        return np.full(len(frame), default, float), None
    values = pd.to_numeric(frame[name], errors="coerce").to_numpy(float)
    given = np.asarray([_given(v) is not None and str(v).strip() != "" for v in frame[name].astype(object)], bool)
    dropped["confidence"] += int((given & ~np.isfinite(values)).sum())
    finite = values[np.isfinite(values)]
    if len(finite) and (finite.min() < 0 or finite.max() > 100):
        raise InputError(path, f"'{name}' values must lie in 0-1 (or 0-100), got {finite.min():g}..{finite.max():g}")
    if len(finite) and finite.max() > 1:
        values = values / 100.0
    return np.where(np.isfinite(values), values, default), name


def _level_columns(frame: gpd.GeoDataFrame, dropped: Counter) -> dict[str, np.ndarray]:
    """The source's ``tunnel``/``bridge``/``layer`` columns (any letter case) as the tags a way on
    that level carries (osmgap.core.osmtags.read_level_tags), None where a line has none or its
    value was dropped (counted in ``dropped``); no column when the source has none of them."""
    columns = {c.lower(): c for c in frame.columns}
    keys = [k for k in LEVEL_KEYS if k in columns]
    checked = []
    for row in zip(*(frame[columns[k]].astype(object).tolist() for k in keys)):
        tags, bad = read_level_tags({k: _given(v) for k, v in zip(keys, row)})
        dropped.update(bad)
        checked.append(tags)
    return {k: np.asarray([t.get(k) for t in checked], dtype=object) for k in keys}


def _highway(frame: gpd.GeoDataFrame, path: Path, dropped: Counter) -> np.ndarray:
    """Each line's class by ``line_class`` (the OSM readers' rule): a road class; None where the
    source gives a highway value that is no road class (the line is left out); 'road' where it
    gives none, or a text that is no highway value (counted in ``dropped``). Lines left out for a
    value that is not a common non-road class (footway, path, ...) are named in one warning: a
    source with a class vocabulary of its own would lose every line."""
    column = "highway" if "highway" in frame.columns else {c.lower(): c for c in frame.columns}.get("highway")  # HIGHWAY: an ESRI DBF's
    if column is None:
        return np.full(len(frame), UNKNOWN_CLASS, dtype=object)
    texts = ["" if _given(v) is None else str(v).strip() for v in frame[column].astype(object)]
    out = np.asarray([line_class(t) for t in texts], dtype=object)
    dropped["highway"] += sum(cls == UNKNOWN_CLASS and t.lower() not in ("", UNKNOWN_CLASS) for t, cls in zip(texts, out))
    odd = Counter(t for t, cls in zip(texts, out) if cls is None and t.lower() not in NOT_ROADS)
    if odd:
        values = ", ".join(f"{clean_text(v, 40)}: {n}" for v, n in odd.most_common(5))
        log.warning("%s: left out %d line(s) whose highway is no road class (%s%s); OSM ways of such a class are "
                    "not read either", clean_text(path), sum(odd.values()), values, ", ..." if len(odd) > 5 else "")
    return out
