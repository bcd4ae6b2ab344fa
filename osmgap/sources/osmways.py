"""OSM road ways as every OSM reader yields them, cut to the AOI and assembled into one RoadNetwork.

The readers (osmgap.sources.osm: .osm/.osm.pbf through osmium; osmgap.sources.osm_geojson;
osmgap.sources.overpass) differ in how they parse. What they read is the same: ``Way``, ``Lot`` and
``Unreadable`` records, and this module turns them into the RoadNetwork conflation relies on: road
ways clipped to the AOI polygon (one piece per stretch inside, direction kept), parking lots clipped
likewise, and the ways that could not be read whole, warned about once per source read.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import LineString, Point, Polygon
from shapely.geometry.base import BaseGeometry

from osmgap.core.aoi import Aoi
from osmgap.core.datamodel import (
    CUT_AT_EDGE,
    MISSING_NODES,
    OTHER_WAY_COLUMNS,
    PARKING_COLUMNS,
    UNREADABLE_COLUMNS,
    WAY_COLUMNS,
    WGS84,
    RoadNetwork,
)

# amenity=parking areas with no aisles a road source sees: a garage underground, parking along
# the carriageway (a lane, a strip on the kerb, a lay-by); a missing street beside one is a street
NOT_LOTS: frozenset[str] = frozenset({"underground", "street_side", "lane", "inline", "on_kerb",
                                      "half_on_kerb", "shoulder", "layby"})

# An unreadable way whose known positions lie this close to the AOI (degrees, >= 34 m up to 70
# degrees of latitude) is kept: conflation keeps suggestions well clear of it.
UNREADABLE_REACH_DEG = 0.001

PROVENANCE_BASE = {"licence": "ODbL", "attribution": "© OpenStreetMap contributors"}

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Way:
    """One road way as read, before clipping; ``geometry`` is WGS84 lon/lat."""

    osm_id: int
    highway: str
    version: int | None
    node_ids: list[int] | None
    tags: dict[str, str]
    geometry: BaseGeometry


@dataclass(frozen=True)
class OtherWay:
    """A way mapped as something other than a road that may look like one
    (osmgap.core.osmtags.mapped_otherwise); ``geometry`` is a WGS84 LineString."""

    osm_id: int
    what: str
    geometry: LineString
    level: int = 0  # osmgap.core.osmtags.way_level


def near_other_ways(others: Sequence[OtherWay], aoi: Aoi) -> list[OtherWay]:
    """The ways within UNREADABLE_REACH_DEG of the AOI (a suggestion at its edge may run along
    one just outside), whole: only how near they run to a suggestion is read."""
    if not others:
        return []
    near = shapely.dwithin(aoi.geometry, np.array([o.geometry for o in others], dtype=object), UNREADABLE_REACH_DEG)
    return [o for o, keep in zip(others, near) if keep]


@dataclass(frozen=True)
class Lot:
    """One parking lot as read, before clipping; ``geometry`` is a WGS84 (Multi)Polygon."""

    osm_type: str  # 'way' or 'relation'; 'way' for a GeoJSON feature without a relation id
    osm_id: int | None
    parking: str | None
    geometry: BaseGeometry


@dataclass(frozen=True)
class Unreadable:
    """A road way that could not be read whole; ``geometry`` (WGS84): where its unknown parts may
    lie (``unknown_stretches``), or all of it when it is no line; empty when nothing is known."""

    osm_id: int | None
    reason: str
    geometry: BaseGeometry


NodeTable = dict[int, tuple[int | None, float, float]]
NodeTags = dict[int, dict[str, str]]  # the tags of the nodes of a NodeTable that have any


# --- what is known of a way with missing vertices ------------------------------------------


def known_line(xy: np.ndarray) -> LineString | None:
    """The line through the known (finite) vertices of ``xy`` (n, 2); None when they make none."""
    known = xy[np.isfinite(xy).all(axis=1)]
    line = LineString(known) if len(known) >= 2 else None
    return line if line is not None and line.length > 0 else None


def why_missing(xy: np.ndarray) -> str:
    """CUT_AT_EDGE when only vertices before the first or after the last known one are missing:
    what cutting an extract at a bbox leaves (by far the commonest cause; the rest of the way lies
    outside the extract), whether or not the file still says its bbox. Else MISSING_NODES."""
    known = np.flatnonzero(np.isfinite(xy).all(axis=1))
    return CUT_AT_EDGE if len(known) and known[-1] - known[0] + 1 == len(known) else MISSING_NODES


def unknown_stretches(xy: np.ndarray) -> BaseGeometry:
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


def polygon_of_rings(outer: list[LineString], inner: list[LineString]) -> BaseGeometry | None:
    """The area the outer rings (ways joined end to end) enclose less the inner ones; None when
    the outer ways close no ring."""
    def area(lines: list[LineString]) -> BaseGeometry:
        return shapely.union_all(shapely.get_parts(shapely.polygonize(lines))) if lines else Polygon()
    shape_ = area(outer)
    if shape_.is_empty:
        return None
    return _polygonal(shapely.difference(shapely.make_valid(shape_), shapely.make_valid(area(inner))))


# --- clipping and assembly --------------------------------------------------------------


def clip_to_aoi(ways: list[Way], aoi: Aoi) -> list[Way]:
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
    clipped: list[Way] = []
    for way, hit, whole in zip(ways, hits, inside):
        if not hit:
            continue
        if whole and way.geometry.geom_type == "LineString" and way.geometry.length > 0:
            clipped.append(way)  # inside, one line: itself (a third of loading 40k ways went to taking it apart)
            continue
        cut = way.geometry if whole else shapely.intersection(way.geometry, area)
        clipped.extend(replace(way, geometry=piece) for piece in _line_pieces(cut, way.geometry))
    return clipped


def clip_lots(lots: list[Lot], aoi: Aoi) -> list[Lot]:
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


def near_aoi(unreadable: list[Unreadable], aoi: Aoi) -> list[Unreadable]:
    """The unreadable ways that may lie in the AOI: near it, or nobody knows where."""
    return [u for u in unreadable
            if u.geometry.is_empty or shapely.dwithin(aoi.geometry, u.geometry, UNREADABLE_REACH_DEG)]


def unreadable_warning(roads: RoadNetwork) -> str | None:
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


def road_network(ways: list[Way], nodes: NodeTable, source: str, fmt: str,
                 lots: Sequence[Lot] = (), unreadable: Sequence[Unreadable] = (), warning: str | None = None,
                 node_tags: NodeTags | None = None, others: Sequence[OtherWay] = ()) -> RoadNetwork:
    """The RoadNetwork of clipped ways, lots and unreadable ways; ``nodes`` trimmed to the nodes
    the ways use. Unreadable ways and the source's ``warning`` (in its provenance too) are
    warned about here, once per source read."""
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
    other = gpd.GeoDataFrame({"osm_id": pd.Series([o.osm_id for o in others], dtype="int64"),
                              "what": pd.Series([o.what for o in others], dtype=object),
                              "level": pd.Series([o.level for o in others], dtype="int64")},
                             geometry=gpd.GeoSeries([o.geometry for o in others], crs=WGS84))[
        [*OTHER_WAY_COLUMNS, "geometry"]]
    provenance = {"source": source, "format": fmt, "ways": len(frame), "parking_lots": len(parking),
                  **({"other_ways": len(other)} if len(other) else {}),
                  **({"unreadable_ways": len(bad)} if len(bad) else {}), **({"warning": warning} if warning else {}),
                  **PROVENANCE_BASE}
    roads = RoadNetwork(ways=frame, nodes={k: v for k, v in nodes.items() if k in used},
                        node_tags={k: v for k, v in (node_tags or {}).items() if k in used},
                        provenance=provenance, parking=parking, unreadable=bad, other_ways=other)
    for said in (unreadable_warning(roads), warning):
        if said:
            log.warning(said)
    return roads
