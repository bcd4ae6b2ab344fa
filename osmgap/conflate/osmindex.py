"""OSM roads prepared once for all conflation checks: metric lines, segments, vertices, dead ends.

Every check (gaps, links, crossings, support, routing) needs the same things from the OSM ways:
metric geometry, straight segments in an STRtree, which vertices are shared between ways (a
junction) or belong to one way end only (a dead end), and, to join new ways to existing nodes,
the exact WGS84 position and id of each vertex. Building them once keeps each check small.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import shapely

from osmgap.core.datamodel import RoadNetwork
from osmgap.core.osmtags import LEVEL_TAGS, NO_SEPARATION, coord_text, direction, way_level
from osmgap.core.segments import Segments, explode, point_groups


@dataclass
class OsmIndex:
    """The OSM ways of a RoadNetwork in a metric CRS, exploded into segments.

    ``vertex_xy``/``vertex_lonlat`` hold every vertex of every way in the same order
    (``Segments.vertex`` indexes them); ``vertex_key`` gives vertices at the same metric spot
    (1 cm) the same integer, which is how shared nodes are recognised even without node ids.
    """

    crs: object
    lines: np.ndarray
    osm_id: np.ndarray
    highway: np.ndarray
    tags: list[dict]
    segs: Segments
    vertex_xy: np.ndarray
    vertex_lonlat: np.ndarray
    vertex_key: np.ndarray
    node_ids: dict[tuple[str, str], int]

    def __len__(self) -> int:
        return len(self.lines)

    @cached_property
    def line_tree(self) -> shapely.STRtree:
        return shapely.STRtree(self.lines)

    @cached_property
    def line_of_vertex(self) -> np.ndarray:
        """The line each vertex belongs to."""
        return np.repeat(np.arange(len(self.lines)), shapely.get_num_coordinates(self.lines))

    @cached_property
    def segment_at_vertex(self) -> np.ndarray:
        """Per vertex: a segment that starts (else ends) there; -1 for a vertex with none."""
        out = np.full(len(self.vertex_xy), -1)
        out[self.segs.vertex + 1] = np.arange(len(self.segs))
        out[self.segs.vertex] = np.arange(len(self.segs))
        return out

    @cached_property
    def key_uses(self) -> np.ndarray:
        """How many way vertices share each vertex key (1 = used by one way, once)."""
        return np.bincount(self.vertex_key)

    @cached_property
    def line_ends(self) -> np.ndarray:
        """Vertex index of the first and last vertex of every line, shape (n, 2)."""
        counts = shapely.get_num_coordinates(self.lines)
        last = np.cumsum(counts) - 1
        return np.stack([last - counts + 1, last], axis=1)

    @cached_property
    def dead_end(self) -> np.ndarray:
        """Per vertex: a way end that no other way (nor another part of the same way) touches."""
        ends = np.zeros(len(self.vertex_key), bool)
        ends[self.line_ends.ravel()] = True
        return ends & (self.key_uses[self.vertex_key] == 1)

    @cached_property
    def id_rank(self) -> np.ndarray:
        """Per line: the rank of its OSM id among the distinct ids (sorting by it sorts by id)."""
        return np.unique(self.osm_id, return_inverse=True)[1].ravel()

    @cached_property
    def direction(self) -> np.ndarray:
        """Per line: how it may be driven (``direction``: +1, -1, or 0 both ways)."""
        return np.asarray([direction(t, h) for t, h in zip(self.tags, self.highway)], int)

    @cached_property
    def level(self) -> np.ndarray:
        """Per line: the level it lies on (way_level)."""
        return np.asarray([way_level(t) for t in self.tags], float)

    def node_id(self, vertex: int) -> int | None:
        """The existing OSM node (with a known version) at a vertex, if the input has node ids."""
        lon, lat = self.vertex_lonlat[vertex]
        return self.node_ids.get((coord_text(lon), coord_text(lat)))

    def on_own_level(self, line: int) -> bool:
        """Bridges, tunnels and layered ways may cross others without a junction."""
        tags = self.tags[line]
        if not any(key in tags for key in LEVEL_TAGS):  # most ways
            return False
        return any(str(tags.get(k, "")).strip().lower() not in NO_SEPARATION for k in LEVEL_TAGS)


def index_osm(roads: RoadNetwork, crs: object) -> OsmIndex:
    """Prepare ``roads`` for conflation in the metric ``crs``."""
    ways = roads.ways
    wgs = np.asarray(ways.geometry.values, dtype=object)
    metric = np.asarray(ways.to_crs(crs).geometry.values, dtype=object) if len(ways) else wgs
    keep = np.array([g is not None and g.geom_type == "LineString" and not g.is_empty for g in metric], bool)
    wgs, metric = wgs[keep], metric[keep]
    frame = ways[keep] if len(ways) else ways
    xy = shapely.get_coordinates(metric)
    lonlat = shapely.get_coordinates(wgs)
    key = _centimetre_keys(xy)
    node_ids = {(coord_text(lon), coord_text(lat)): nid
                for nid, (version, lon, lat) in roads.nodes.items() if version is not None and nid > 0}
    return OsmIndex(
        crs=crs, lines=metric, osm_id=frame["osm_id"].to_numpy(np.int64) if len(frame) else np.zeros(0, np.int64),
        highway=frame["highway"].to_numpy(object) if len(frame) else np.zeros(0, object),
        tags=list(frame["tags"]) if len(frame) else [], segs=explode(metric),
        vertex_xy=xy, vertex_lonlat=lonlat, vertex_key=key, node_ids=node_ids,
    )


def _centimetre_keys(xy: np.ndarray) -> np.ndarray:
    """Per point: the number of its centimetre cell among the distinct cells, in x-then-y order."""
    cells = np.round(xy * 100).astype(np.int64)
    return point_groups(cells[:, 0], cells[:, 1])[0]
