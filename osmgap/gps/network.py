"""The OSM ways as a directed road network for map matching: pieces between junctions, oneway honoured.

A map matcher routes between junctions, so every way is cut where it shares a vertex with another
way (or with itself) and at its ends; vertices at the same metric spot (1 cm) are one node, which
is how junctions are found with or without OSM node ids (osmgap.conflate.osmindex). Each piece is
one directed edge per way it may be driven (``oneway``, implied on roundabouts and motorways).
Every road class osmgap loads is kept: a trace along any mapped road is explained by the map.
Extra lines (candidates to verify) can be added; their ends are joined to the nearest piece,
which is cut there.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import LineString
from shapely.ops import substring

from osmgap.conflate.osmindex import OsmIndex

JOIN_M = 25.0  # an added line's end this close to a mapped road is joined to it


@dataclass
class RoadGraph:
    """Undirected pieces (metric LineStrings) with their end nodes and how they may be driven.

    ``direction``: +1 only first -> last vertex, -1 only last -> first, 0 both.
    ``source``: per piece, the OSM line it comes from (-1 - k for the k-th added line)."""

    lines: np.ndarray
    u: np.ndarray
    v: np.ndarray
    direction: np.ndarray
    source: np.ndarray

    def __len__(self) -> int:
        return len(self.lines)

    def directed(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(edge id, piece, from node, to node) of every directed edge; edge id = 2 * piece (+1 reversed)."""
        piece = np.arange(len(self.lines))
        fwd, bwd = self.direction >= 0, self.direction <= 0
        ids = np.concatenate([2 * piece[fwd], 2 * piece[bwd] + 1])
        pieces = np.concatenate([piece[fwd], piece[bwd]])
        src = np.concatenate([self.u[fwd], self.v[bwd]])
        dst = np.concatenate([self.v[fwd], self.u[bwd]])
        return ids, pieces, src, dst

    def node_xy(self) -> dict[int, tuple[float, float]]:
        """Position of every node (the ends of the pieces)."""
        start = shapely.get_coordinates(shapely.get_point(self.lines, 0))
        end = shapely.get_coordinates(shapely.get_point(self.lines, -1))
        out = {int(n): (float(x), float(y)) for n, (x, y) in zip(self.u, start)}
        out.update({int(n): (float(x), float(y)) for n, (x, y) in zip(self.v, end)})
        return out


def road_graph(osm: OsmIndex) -> RoadGraph:
    """The OSM ways of ``osm`` cut at junctions and way ends."""
    counts = shapely.get_num_coordinates(osm.lines)
    ends = np.zeros(len(osm.vertex_key), bool)
    ends[osm.line_ends.ravel()] = True
    cut = ends | (osm.key_uses[osm.vertex_key] > 1)
    lines, u, v, direction, source = [], [], [], [], []
    start = 0
    for line, n in enumerate(counts.tolist()):
        xy = osm.vertex_xy[start:start + n]
        at = np.flatnonzero(cut[start:start + n])
        for a, b in zip(at[:-1], at[1:]):
            if np.any(np.diff(xy[a:b + 1], axis=0)):  # a ring from a node back to itself is a piece too
                lines.append(LineString(xy[a:b + 1]))
                u.append(osm.vertex_key[start + a])
                v.append(osm.vertex_key[start + b])
                direction.append(osm.direction[line])
                source.append(line)
        start += n
    return RoadGraph(np.asarray(lines, dtype=object), np.asarray(u, np.int64), np.asarray(v, np.int64),
                     np.asarray(direction, np.int64), np.asarray(source, np.int64))


def with_lines(graph: RoadGraph, extra: list[LineString], join_m: float = JOIN_M) -> tuple[RoadGraph, np.ndarray]:
    """``graph`` plus ``extra`` lines (two-way), each end joined to the nearest piece within
    ``join_m`` (cut there) or left as a new dead end. Returns the graph and, per extra line, its
    piece index."""
    lines = list(graph.lines)
    u, v = graph.u.tolist(), graph.v.tolist()
    direction, source = graph.direction.tolist(), graph.source.tolist()
    next_node = int(max(graph.u.max(initial=0), graph.v.max(initial=0))) + 1
    piece_of = []
    nearest = _NearestPiece(lines)
    for added, line in enumerate(extra):
        nodes = []
        coords = np.array(line.coords)
        for end in (0, -1):
            point = shapely.Point(coords[end])
            k = nearest(point, join_m)
            if k is not None:
                node, next_node = _cut(lines, u, v, direction, source, k, point, next_node)
                piece = lines[k]
                coords[end] = piece.coords[0] if node == u[k] else piece.coords[-1]
            else:
                node, next_node = next_node, next_node + 1
            nodes.append(node)
        piece_of.append(len(lines))
        lines.append(LineString(coords))
        u.append(nodes[0])
        v.append(nodes[1])
        direction.append(0)
        source.append(-1 - added)
    return RoadGraph(np.asarray(lines, dtype=object), np.asarray(u, np.int64), np.asarray(v, np.int64),
                     np.asarray(direction, np.int64), np.asarray(source, np.int64)), np.asarray(piece_of, np.int64)


class _NearestPiece:
    """The piece nearest a point, while pieces are cut (a cut piece only shrinks, so the index's
    old box still holds it) and new ones appended (checked one by one until ``REBUILD`` of them
    make a new index worth it): one index per ``REBUILD`` added pieces, not one per line end."""

    REBUILD = 256

    def __init__(self, lines: list) -> None:
        self.lines = lines
        self._index()

    def _index(self) -> None:
        self.size = len(self.lines)
        self.tree = shapely.STRtree(self.lines)

    def __call__(self, point: shapely.Point, within_m: float) -> int | None:
        if len(self.lines) - self.size > self.REBUILD:
            self._index()
        near = np.r_[self.tree.query(point, predicate="dwithin", distance=within_m), np.arange(self.size, len(self.lines))]
        if not len(near):
            return None
        d = shapely.distance(np.asarray([self.lines[k] for k in near.tolist()], dtype=object), point)
        best = int(np.argmin(d))
        return int(near[best]) if d[best] <= within_m else None


def _cut(lines: list, u: list, v: list, direction: list, source: list, k: int, point: shapely.Point,
         next_node: int) -> tuple[int, int]:
    """Cut piece ``k`` at the point nearest ``point``: piece ``k`` keeps the first part (ending at
    the new node), a new piece gets the rest. Returns the node there and the next free node id.
    Cutting at (or next to) an existing node joins that node instead."""
    line = lines[k]
    at = line.project(point)
    if at < 1.0:
        return u[k], next_node
    if at > line.length - 1.0:
        return v[k], next_node
    node = next_node
    lines.append(substring(line, at, line.length))
    u.append(node)
    v.append(v[k])
    direction.append(direction[k])
    source.append(source[k])
    lines[k] = substring(line, 0.0, at)
    v[k] = node
    return node, next_node + 1
