"""Overture Maps transportation segments (GeoParquet), read directly: a file, or a folder of them
as Overture publishes them (``theme=transportation/type=segment/*.parquet``).

The layout, from Overture's schema reference (docs.overturemaps.org/schema/reference/
transportation/segment, road_class, road_subclass): a WKB ``geometry`` column (the GeoParquet
primary column, WGS84), a ``bbox`` struct (``xmin``/``xmax``/``ymin``/``ymax``), ``subtype``
(``road``, ``rail``, ``water``), ``class`` (motorway, trunk, primary, secondary, tertiary,
residential, living_street, unclassified, service, pedestrian, track, footway, steps, path,
cycleway, bridleway, unknown) and ``subclass`` (link, sidewalk, crosswalk, parking_aisle,
driveway, alley, cycle_crossing).

Only ``subtype = road`` rows whose bbox meets the AOI's are read (pyarrow pushes the filter down
to the row groups, so a city is read from a country file without loading it). Overture's road
classes are OSM's own highway values, ``unknown`` is OSM's ``highway=road`` and a ``link``
subclass is OSM's ``*_link``; the class then goes through the same filter as OSM's ways
(osmgap.core.osmtags.line_class): footways, paths, steps, cycleways and bridleways are left out.
Segments are read unlevelled (their ``road_flags``/``level_rules`` hold for stretches, which are
not split here), so an OSM tunnel is never what one duplicates.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError, ProjError

from osmgap.core.aoi import Aoi
from osmgap.core.datamodel import WGS84
from osmgap.errors import InputError

SUFFIXES = (".parquet", ".geoparquet")
LINKED = frozenset({"motorway", "trunk", "primary", "secondary", "tertiary"})  # OSM has <class>_link
UNKNOWN = "unknown"


def is_geoparquet(path: Path) -> bool:
    """A GeoParquet file by its name, or a folder holding some (Overture's partitioned layout)."""
    if path.is_dir():
        return any(p.name.lower().endswith(SUFFIXES) for p in path.rglob("*"))
    return path.name.lower().endswith(SUFFIXES)


def read_overture(path: Path, aoi: Aoi) -> gpd.GeoDataFrame:
    """Road segments near the AOI as lines with an OSM ``highway`` class (None: not given). A
    GeoParquet without Overture's ``class`` column is read as any line file: its own columns."""
    schema = _schema(path)
    names = set(schema.names)
    overture = "class" in names
    wanted = ["class", "subclass"] if overture else [n for n in schema.names if n.lower() in _GENERIC]
    table_filter = _near(schema, aoi)
    if overture and "subtype" in names:
        table_filter = _and(table_filter, pc.field("subtype") == "road")
    kwargs: dict[str, Any] = {"filters": table_filter} if table_filter is not None else {}
    frame = gpd.read_parquet(path, columns=[*wanted, _geometry_column(schema)], **kwargs)
    if not overture:
        return frame
    subclass = frame["subclass"] if "subclass" in frame.columns else [None] * len(frame)
    highway = [osm_class(c, s) for c, s in zip(frame["class"], subclass)]
    return gpd.GeoDataFrame({"highway": np.asarray(highway, dtype=object)}, geometry=frame.geometry.values,
                            crs=frame.crs)


def osm_class(cls: Any, subclass: Any) -> str | None:
    """OSM's highway value for an Overture class and subclass; None where it gives no class."""
    if not isinstance(cls, str) or cls in ("", UNKNOWN):
        return None
    return f"{cls}_link" if subclass == "link" and cls in LINKED else cls


_GENERIC = {"highway", "confidence", "score", "tunnel", "bridge", "layer"}  # what candidates read of any file


def _schema(path: Path) -> pa.Schema:
    try:
        return ds.dataset(path, format="parquet", partitioning="hive").schema
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(path, f"cannot read GeoParquet ({str(exc).splitlines()[0][:200]})") from None


def _geometry_column(schema: pa.Schema) -> str:
    """The GeoParquet primary geometry column (``geo`` metadata), else ``geometry``."""
    meta = json.loads((schema.metadata or {}).get(b"geo", b"{}"))
    return str(meta.get("primary_column", "geometry"))


def _near(schema: pa.Schema, aoi: Aoi) -> pc.Expression | None:
    """Rows whose ``bbox`` struct meets the AOI's bounds; None when the file has no such column, or
    its CRS cannot be read."""
    field = schema.field("bbox") if "bbox" in schema.names else None
    if field is None or not pa.types.is_struct(field.type) or not {"xmin", "xmax", "ymin", "ymax"} <= {
            f.name for f in field.type}:
        return None
    bounds = _bounds_in_file_crs(schema, aoi)
    if bounds is None:
        return None
    minx, miny, maxx, maxy = bounds
    box = pc.field("bbox", "xmin") <= maxx
    box = box & (pc.field("bbox", "xmax") >= minx) & (pc.field("bbox", "ymin") <= maxy)
    return box & (pc.field("bbox", "ymax") >= miny)


def _bounds_in_file_crs(schema: pa.Schema, aoi: Aoi) -> tuple[float, float, float, float] | None:
    """The AOI's bounds in the CRS the ``bbox`` column is in: the geometry's CRS where the ``geo``
    metadata declares the column its bbox covering (GeoParquet 1.1, as geopandas and GDAL write it;
    in metres for a projected file, compared with lon/lat no row was ever near the AOI), else
    lon/lat, as Overture's own bbox is. None where that CRS is not known or not read."""
    meta = json.loads((schema.metadata or {}).get(b"geo", b"{}"))
    column = (meta.get("columns") or {}).get(_geometry_column(schema)) or {}
    if "bbox" not in (column.get("covering") or {}):
        return aoi.bounds
    given = column.get("crs", "OGC:CRS84")  # GeoParquet: absent is OGC:CRS84, null an unknown CRS
    if given is None:
        return None
    try:
        crs = CRS.from_json_dict(given) if isinstance(given, dict) else CRS.from_user_input(given)
        return Transformer.from_crs(WGS84, crs, always_xy=True).transform_bounds(*aoi.bounds, densify_pts=21)
    except (CRSError, ProjError):
        return None


def _and(a: pc.Expression | None, b: pc.Expression) -> pc.Expression:
    return b if a is None else a & b
