"""The plain data that flows between osmgap's stages.

Stages exchange these and nothing richer, so each stage can be tested alone (see DESIGN.md).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from affine import Affine
from rasterio.crs import CRS
from shapely.geometry import LineString, Point

from osmgap.core.grid import Grid

if TYPE_CHECKING:  # geopandas (with pandas, ~100 MB) only where road tables are made: not in a graph worker
    import geopandas as gpd

WGS84 = "EPSG:4326"

# Columns of RoadNetwork.ways besides geometry.
WAY_COLUMNS = ["osm_id", "highway", "version", "node_ids", "tags"]
# Columns of RoadNetwork.parking besides geometry.
PARKING_COLUMNS = ["osm_type", "osm_id", "parking"]
# Columns of RoadNetwork.other_ways besides geometry.
OTHER_WAY_COLUMNS = ["osm_id", "what", "level"]
# Columns of RoadNetwork.unreadable besides geometry, and its reasons.
UNREADABLE_COLUMNS = ["osm_id", "reason"]
MISSING_NODES = "nodes missing from the file"
CUT_AT_EDGE = "cut at the edge of the extract"  # only nodes past its first/last known one missing
NO_GEOMETRY = "no geometry"
NOT_FINITE = "NaN or infinite coordinates"
NOT_A_LINE = "not a line"


def no_parking() -> gpd.GeoDataFrame:
    """An empty ``RoadNetwork.parking``: a source without parking lots."""
    import geopandas as gpd

    return gpd.GeoDataFrame({c: [] for c in PARKING_COLUMNS}, geometry=gpd.GeoSeries([], crs=WGS84))


def no_other_ways() -> gpd.GeoDataFrame:
    """An empty ``RoadNetwork.other_ways``: a source that gives roads only."""
    import geopandas as gpd

    return gpd.GeoDataFrame({c: [] for c in OTHER_WAY_COLUMNS}, geometry=gpd.GeoSeries([], crs=WGS84))


def no_unreadable() -> gpd.GeoDataFrame:
    """An empty ``RoadNetwork.unreadable``: every way of the source was read whole."""
    import geopandas as gpd

    return gpd.GeoDataFrame({c: [] for c in UNREADABLE_COLUMNS}, geometry=gpd.GeoSeries([], crs=WGS84))


@dataclass
class RoadNetwork:
    """OSM roads of an AOI.

    ``ways``: GeoDataFrame in WGS84 with columns ``osm_id`` (int), ``highway`` (str),
    ``version`` (int or None), ``node_ids`` (list of int or None), ``tags`` (dict) and
    LineString ``geometry``. ``nodes`` maps node id -> (version, lon, lat) where the source
    has node ids (.osm/.pbf), so new ways can join existing nodes; it is empty otherwise.
    ``node_tags``: the tags of those nodes that have any (crossings, signals, barriers), written
    with a node a new way joins so that the file, merged into a JOSM data layer, changes no tag.
    ``provenance`` records where the roads came from (path or 'overpass', licence).
    ``parking``: the AOI's mapped parking lots (``amenity=parking`` areas, clipped to the AOI,
    WGS84 Polygon/MultiPolygon ``geometry`` with ``osm_type`` 'way'/'relation', ``osm_id`` and
    the ``parking`` tag or None), where missing roads are parking aisles; empty by default.
    ``unreadable``: road ways of the AOI the source could not give whole (nodes missing from an
    extract, NaN or no coordinates, a geometry that is no line), with ``osm_id`` (or None), a
    ``reason`` and the WGS84 ``geometry`` of what is known of them (the line or points through
    their known nodes). Conflation treats where they lie as mapped: it never suggests a road where
    the input has a way osmgap could not read. Their readable stretches are in ``ways``.
    ``other_ways``: the AOI's ways mapped as something other than a road that may look like one
    (osmgap.core.osmtags.mapped_otherwise: footways, cycleways, roads under construction,
    runways), with ``osm_id``, ``what`` (``highway=footway``), ``level`` (osmgap.core.osmtags.
    way_level: 0 on the surface, -1 in a tunnel, its layer) and WGS84 LineString ``geometry``:
    a road seen along one is mapped, not missing; empty where the source gives roads only.
    """

    ways: gpd.GeoDataFrame
    nodes: dict[int, tuple[int | None, float, float]] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    parking: gpd.GeoDataFrame = field(default_factory=no_parking)
    unreadable: gpd.GeoDataFrame = field(default_factory=no_unreadable)
    node_tags: dict[int, dict[str, str]] = field(default_factory=dict)
    other_ways: gpd.GeoDataFrame = field(default_factory=no_other_ways)

    def __len__(self) -> int:
        return len(self.ways)


@dataclass
class ProbabilityRaster:
    """Road probability in [0, 1] on a georeferenced grid; never a bare array past the model."""

    prob: np.ndarray  # float32, shape (H, W)
    transform: Affine
    crs: CRS

    @property
    def resolution(self) -> tuple[float, float]:
        return abs(self.transform.a), abs(self.transform.e)

    @property
    def grid(self) -> Grid:
        """The grid the raster lies on."""
        return Grid(self.transform, self.prob.shape[1], self.prob.shape[0], self.crs)


# two OSM nodes that GPS trips detour between: a road is missing there, its course unknown (osmgap.gps.connections)
MISSING_CONNECTION = "missing_connection"
SUGGESTION_KINDS = ("missing_road", "missing_link", "misconnection", "unsupported_osm_way", MISSING_CONNECTION)


@dataclass(frozen=True)
class Attachment:
    """Where one end of a suggested way meets an existing OSM way.

    ``end`` is 0 (first vertex) or -1 (last vertex); ``node_id`` is the existing OSM node at
    that vertex when the OSM input has node ids and one lies there, else None (then a mapper
    has to join the end to way ``way_id`` by hand, and the JOSM file says so in ``fixme``).
    """

    end: int
    way_id: int
    node_id: int | None = None


@dataclass
class Suggestion:
    """One thing a mapper should look at.

    ``id`` is stable across runs (see osmgap.conflate.ids); ``geometry`` is WGS84: a LineString, or a
    Point for a ``misconnection``. ``attachments`` lists the OSM way ids the suggestion refers
    to, ``joins`` how its ends connect to them; ``routing_impact`` is the detour in metres that
    the suggestion removes from the OSM network (0 when it connects nothing new).
    ``level_tags``: the ``tunnel``/``bridge``/``layer`` tags the new way carries, as levelled
    evidence gave them (osmgap.core.osmtags.level_tags); empty on the surface or where the
    evidence does not say.
    """

    id: str
    kind: str
    geometry: LineString | Point
    length_m: float
    confidence: float
    highway: str = "road"
    priority: int = 1
    evidence: dict[str, Any] = field(default_factory=dict)
    attachments: list[int] = field(default_factory=list)
    joins: list[Attachment] = field(default_factory=list)
    routing_impact: float | None = None
    level_tags: dict[str, str] = field(default_factory=dict)
