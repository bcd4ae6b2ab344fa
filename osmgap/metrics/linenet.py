"""A road graph as plain oriented lines, for the graph metrics (APLS, TOPO).

Both metrics need the same three things from a road graph: put extra nodes on edges (control
points, snapped nodes, seeds), find the nearest point of the network to a location, and measure
distances along the network. networkx graphs from ``osmgap.graph.skeleton`` or ``osmgap.graph.lines`` store
an edge's geometry without saying which end is ``u``; here every line runs from ``u`` to ``v``, so
a distance along an edge means the same thing everywhere.
"""
from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import TypeVar

import networkx as nx
import numpy as np
import shapely
from shapely.geometry import LineString, Point
from shapely.geometry.base import BaseGeometry
from shapely.ops import substring

END_EPS_M = 1e-6  # a point this close to an edge's end is that end's node


@dataclass
class LineNet:
    """Nodes (id -> (x, y)) and edges (u, v, line from u to v) in metres."""

    nodes: dict[int, tuple[float, float]] = field(default_factory=dict)
    edges: list[tuple[int, int, LineString]] = field(default_factory=list)
    _tree: shapely.STRtree | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def from_graph(cls, graph: nx.Graph) -> LineNet:
        """From a (Multi)Graph with node ``x``/``y`` and optional edge ``geometry`` (else straight)."""
        ids = {n: i for i, n in enumerate(graph.nodes)}
        net = cls({ids[n]: (float(d["x"]), float(d["y"])) for n, d in graph.nodes(data=True)})
        for u, v, data in graph.edges(data=True):
            pu, pv = net.nodes[ids[u]], net.nodes[ids[v]]
            line = data.get("geometry") or LineString([pu, pv])
            first = line.coords[0]
            if u != v and np.hypot(first[0] - pv[0], first[1] - pv[1]) < np.hypot(first[0] - pu[0], first[1] - pu[1]):
                line = LineString(line.coords[::-1])
            if line.length > 0:
                net.edges.append((ids[u], ids[v], line))
        return net

    @property
    def length(self) -> float:
        return float(sum(line.length for _, _, line in self.edges))

    def to_nx(self) -> nx.MultiGraph:
        """The network for path searches: edge weight ``length`` in metres."""
        graph = nx.MultiGraph()
        graph.add_nodes_from(self.nodes)
        graph.add_edges_from((u, v, {"length": line.length}) for u, v, line in self.edges)
        return graph

    def _new_node(self, xy: tuple[float, float]) -> int:
        node = max(self.nodes, default=-1) + 1
        self.nodes[node] = (float(xy[0]), float(xy[1]))
        return node

    def split(self, points: list[tuple[int, float]]) -> tuple[LineNet, list[int]]:
        """A copy with a node at each (edge index, distance along) and the node id of each point.

        A point at an edge's end is that end's node; several points on one edge split it once,
        in order; equal points share a node.
        """
        net = LineNet(dict(self.nodes), [])
        per_edge: dict[int, list[tuple[float, int]]] = {}
        for i, (edge, dist) in enumerate(points):
            per_edge.setdefault(edge, []).append((dist, i))
        ids = [-1] * len(points)
        for e, (u, v, line) in enumerate(self.edges):
            cuts = sorted(per_edge.get(e, []))
            prev_node, prev_dist = u, 0.0
            for dist, i in cuts:
                if dist <= prev_dist + END_EPS_M:
                    ids[i] = prev_node
                    continue
                if dist >= line.length - END_EPS_M:
                    ids[i] = v
                    continue
                node = net._new_node(line.interpolate(dist).coords[0])
                net.edges.append((prev_node, node, substring(line, prev_dist, dist)))
                ids[i], prev_node, prev_dist = node, node, dist
            net.edges.append((prev_node, v, substring(line, prev_dist, line.length) if prev_dist else line))
        return net, ids

    def around(self, xy: tuple[float, float], reach_m: float) -> LineNet:
        """The edges (whole, in order) that come within ``reach_m`` of ``xy``, and their nodes.
        Every path of length up to L from a point within d of ``xy`` runs on these when
        ``reach_m`` >= L + d, so distances up to L are those of the whole network: TOPO's walks
        see only this much of it (rebuilding the whole network per seed took most of an
        ``osmgap eval`` of 100 km2)."""
        if not self.edges:
            return LineNet(dict(self.nodes), [])
        near = np.sort(self._edge_tree().query(shapely.Point(xy), predicate="dwithin", distance=reach_m))
        edges = [self.edges[i] for i in near]
        ends = {n for u, v, _ in edges for n in (u, v)}
        return LineNet({n: at for n, at in self.nodes.items() if n in ends}, edges)

    def crop(self, window: BaseGeometry) -> LineNet:
        """The network inside ``window`` (a polygon): edges inside kept, edges crossing its border
        cut there, a new node at each cut (the way a chip cuts a city's roads)."""
        if not self.edges:
            return LineNet({}, [])
        net = LineNet({}, [])
        fresh = max(self.nodes, default=-1) + 1  # the next id no node of this network has
        for e in np.sort(self._edge_tree().query(window, predicate="intersects")):
            u, v, line = self.edges[e]
            if window.contains(line):
                net.nodes[u], net.nodes[v] = self.nodes[u], self.nodes[v]
                net.edges.append((u, v, line))
                continue
            for part in shapely.get_parts(line.intersection(window)):
                if part.geom_type != "LineString" or part.length <= 0:
                    continue
                a, b = part.coords[0], part.coords[-1]
                start = line.project(Point(a))  # the part runs along the line from u to v
                ends = []
                for end, at in ((a, start), (b, start + part.length)):
                    if at <= END_EPS_M:
                        node = u
                    elif at >= line.length - END_EPS_M:
                        node = v
                    else:
                        node, fresh = fresh, fresh + 1
                    net.nodes[node] = self.nodes[node] if node in (u, v) else (float(end[0]), float(end[1]))
                    ends.append(node)
                net.edges.append((ends[0], ends[1], part))
        return net

    def _edge_tree(self) -> shapely.STRtree:
        """A spatial index of the edges, built once (a LineNet's edges are not changed after it is
        built: ``split`` and the others make new ones)."""
        if self._tree is None:
            self._tree = shapely.STRtree([line for _, _, line in self.edges])
        return self._tree

    def nearest(self, xy: np.ndarray, max_dist: float) -> list[tuple[int, float] | None]:
        """(edge index, distance along it) of the nearest network point to each location, or None
        when no edge lies within ``max_dist``."""
        if not self.edges or len(xy) == 0:
            return [None] * len(xy)
        lines = np.array([line for _, _, line in self.edges], dtype=object)
        tree = shapely.STRtree(lines)
        points = shapely.points(np.asarray(xy, float))
        (src, edge_idx), dists = tree.query_nearest(points, max_distance=max_dist, return_distance=True,
                                                    all_matches=False)
        out: list[tuple[int, float] | None] = [None] * len(xy)
        for s, e, d in zip(src, edge_idx, dists):
            if d <= max_dist:
                out[int(s)] = (int(e), float(lines[e].project(Point(points[s]))))
        return out


def densify(net: LineNet, spacing_m: float) -> LineNet:
    """A copy with a node every ``spacing_m`` along every edge (APLS control points)."""
    points = [(e, k * spacing_m) for e, (_, _, line) in enumerate(net.edges)
              for k in range(1, int(np.ceil(line.length / spacing_m)))]
    return net.split(points)[0]


_Node = TypeVar("_Node", bound=Hashable)


def distances_from(graph: nx.MultiGraph, source: _Node, cutoff: float | None = None) -> dict[_Node, float]:
    """Shortest network distance (m) from ``source`` to every node it reaches (within ``cutoff``)."""
    return nx.single_source_dijkstra_path_length(graph, source, cutoff=cutoff, weight="length")
