"""Candidate roads from any line file: ML detections published by others, official open road
data, GPS-derived lines. Read with geopandas/pyogrio (GeoJSON, GeoPackage, Shapefile, anything
GDAL reads), clipped to the AOI, and turned into the same kind of road graph imagery gives.

Each candidate keeps a ``confidence`` (its own ``confidence`` or ``score`` property, 0-1 or
0-100, else a default) and a ``highway`` class when the source has one; lines whose class says
they are not roads (footway, cycleway, path, ...) are left out, as OSM's own are.

Nothing else of a line is read, and what is read is checked against the one tag vocabulary
(osmgap.core.osmtags): a class that is no road class becomes 'road', a level value OSM does not
document is dropped, a confidence that is no number gets the default; one warning names the
file and counts them. A stranger's file can so never put a tag of its own into the outputs.

A source may also say which level a line lies on, with OSM's ``tunnel``, ``bridge`` and
``layer`` properties. A source with any of those columns is *levelled*: a line without them is
on the surface, and conflation lets no OSM way on another level explain it (a road over a mapped
tunnel is still missing). A source with none of them (imagery, GPS, most detections) is
unlevelled: the level of its lines is not known.
"""
from __future__ import annotations

import io
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from osmgap.core.aoi import Aoi
from osmgap.core.datamodel import WGS84
from osmgap.core.osmtags import (
    LEVEL_KEYS,
    NOT_ROADS,
    UNKNOWN_CLASS,
    read_level_tags,
    road_class,
    warn_dropped,
    way_level,
)
from osmgap.errors import InputError, one_line

CONFIDENCE_COLUMNS = ("confidence", "score")


def load_candidates(path: str | Path, aoi: Aoi, default_confidence: float) -> gpd.GeoDataFrame:
    """Candidate road lines inside ``aoi``: WGS84 LineStrings with ``confidence`` and ``highway``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "candidates file not found")
    try:
        frame = _read_file(path)
    except Exception as exc:  # pyogrio/GDAL raise many types for unreadable or foreign files
        raise InputError(path, f"cannot read road lines ({one_line(exc)})") from None
    if frame.geometry is None or len(frame) == 0:
        raise InputError(path, "holds no features")
    frame = frame[frame.geometry.notna() & ~frame.geometry.is_empty]
    lines = frame[frame.geometry.geom_type.isin(["LineString", "MultiLineString"])]
    if len(lines) == 0:
        raise InputError(path, "holds no LineString or MultiLineString features")
    lines = _to_wgs84(lines, path)
    dropped: Counter = Counter()
    out = gpd.GeoDataFrame({"confidence": _confidence(lines, default_confidence, path, dropped),
                            "highway": _highway(lines, dropped), **_level_columns(lines, dropped)},
                           geometry=lines.geometry.values, crs=WGS84)
    out = out[~out["highway"].isin(NOT_ROADS)].explode(index_parts=False).reset_index(drop=True)
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
    return clipped


def _read_file(path: Path) -> gpd.GeoDataFrame:
    """The file's features. GDAL takes UTF-8 paths only, so a name that is not (undecodable bytes,
    which Python keeps as lone surrogates) is read from the file's bytes instead."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        with warnings.catch_warnings():  # GDAL's in-memory copy has no extension, which it remarks on
            warnings.filterwarnings("ignore", "File /vsimem/", RuntimeWarning)
            return gpd.read_file(io.BytesIO(path.read_bytes()))
    return gpd.read_file(path)


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
    return frame.to_crs(WGS84)


def _given(value: Any) -> Any:
    """A cell's value, None where the source gives none (None, NaN, pandas' NA)."""
    return None if np.ndim(value) == 0 and bool(pd.isna(value)) else value


def _confidence(frame: gpd.GeoDataFrame, default: float, path: Path, dropped: Counter) -> np.ndarray:
    """The source's own confidence/score, as 0-1; a percentage scale is recognised. A value that
    is no finite number gets ``default`` and is counted in ``dropped``."""
    columns = {c.lower(): c for c in frame.columns}
    name = next((columns[c] for c in CONFIDENCE_COLUMNS if c in columns), None)
    if name is None:
        return np.full(len(frame), default, float)
    values = pd.to_numeric(frame[name], errors="coerce").to_numpy(float)
    given = np.asarray([_given(v) is not None and str(v).strip() != "" for v in frame[name].astype(object)], bool)
    dropped["confidence"] += int((given & ~np.isfinite(values)).sum())
    finite = values[np.isfinite(values)]
    if len(finite) and (finite.min() < 0 or finite.max() > 100):
        raise InputError(path, f"'{name}' values must lie in 0-1 (or 0-100), got {finite.min():g}..{finite.max():g}")
    if len(finite) and finite.max() > 1:
        values = values / 100.0
    return np.where(np.isfinite(values), values, default)


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


def _highway(frame: gpd.GeoDataFrame, dropped: Counter) -> np.ndarray:
    """The ``highway`` class where the source gives a road class or a class that is no road;
    'road' (unknown class) otherwise, counting the values that were neither in ``dropped``."""
    if "highway" not in frame.columns:
        return np.full(len(frame), UNKNOWN_CLASS, dtype=object)
    out = []
    for value in frame["highway"].astype(object):
        text = "" if _given(value) is None else str(value).strip()
        cls = road_class(text) or (text.lower() if text.lower() in NOT_ROADS else None)
        if cls is None and text:
            dropped["highway"] += 1
        out.append(cls or UNKNOWN_CLASS)
    return np.asarray(out, dtype=object)
