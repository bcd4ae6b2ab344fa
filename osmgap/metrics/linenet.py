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
from shapely.ops import substring

END_EPS_M = 1e-6  # a point this close to an edge's end is that end's node


@dataclass
class LineNet:
    """Nodes (id -> (x, y)) and edges (u, v, line from u to v) in metres."""

    nodes: dict[int, tuple[float, float]] = field(default_factory=dict)
    edges: list[tuple[int, int, LineString]] = field(default_factory=list)

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
