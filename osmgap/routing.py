"""Routing impact: the detour through the OSM network that a suggested connection removes.

A suggestion joined to OSM at two points A and B shortens the trip A -> B from the OSM network
distance d(A, B) to the suggestion's own length L; its impact is d - L (never negative). A
misconnection joins two ways at their crossing, L = 0. The network is undirected (a mapper
fixes geometry first; turn and oneway rules are a router's business) and searched only up to a
cap: a detour beyond it, or no path at all, counts as the cap, which keeps every answer a
finite number MapRoulette rules can compare.

Each distance is a bidirectional Dijkstra over the OSM vertices (CSR arrays), stopped as soon
as the two search radii add up to the best path or the cap, so a typical connection explores a
few dozen vertices; points in different connected components are answered without a search.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from osmgap.osmindex import OsmIndex

DETOUR_CAP_M = 5000.0


@dataclass(frozen=True)
class Anchor:
    """A point on an OSM segment (``t`` in [0, 1] from its start) where a suggestion joins."""

    segment: int
    t: float


class Network:
    """The OSM ways as an undirected weighted graph of vertex keys (shared vertices = junctions)."""

    def __init__(self, osm: OsmIndex):
        self.osm = osm
        n = int(osm.vertex_key.max()) + 1 if len(osm.vertex_key) else 0
        ka = osm.vertex_key[osm.segs.vertex]
        kb = osm.vertex_key[osm.segs.vertex + 1]
        w = np.maximum(osm.segs.length, 1e-6)
        rows, cols, w = np.r_[ka, kb], np.r_[kb, ka], np.r_[w, w]
        # two ways over the same pair of nodes: keep the shorter edge (a sparse matrix would
        # add the two lengths up)
        order = np.lexsort((w, cols, rows))
        rows, cols, w = rows[order], cols[order], w[order]
        first = np.r_[True, (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])]
        keep = first & (rows != cols)
        matrix = coo_matrix((w[keep], (rows[keep], cols[keep])), shape=(n, n)).tocsr()
        self.indptr, self.indices, self.weights = matrix.indptr, matrix.indices, matrix.data
        self.component = connected_components(matrix, directed=False)[1] if n else np.zeros(0, int)

    def starts(self, a: Anchor) -> list[tuple[int, float]]:
        """The two segment ends of an anchor with their distances from it."""
        v = self.osm.segs.vertex[a.segment]
        length = float(self.osm.segs.length[a.segment])
        return [(int(self.osm.vertex_key[v]), a.t * length), (int(self.osm.vertex_key[v + 1]), (1 - a.t) * length)]

    def distance(self, a: Anchor, b: Anchor, cap: float) -> float:
        """Network distance between two anchors, at most ``cap``."""
        sa, sb = self.starts(a), self.starts(b)
        if self.component[sa[0][0]] != self.component[sb[0][0]]:
            return cap
        best = cap
        if a.segment == b.segment:
            best = min(best, abs(a.t - b.t) * float(self.osm.segs.length[a.segment]))
        dist: list[dict[int, float]] = [{}, {}]
        heaps: list[list[tuple[float, int]]] = [[], []]
        for side, starts in enumerate((sa, sb)):
            for v, d in starts:
                if d < dist[side].get(v, np.inf):
                    dist[side][v] = d
                    heapq.heappush(heaps[side], (d, v))
        for v, d in dist[0].items():
            if v in dist[1]:
                best = min(best, d + dist[1][v])
        done: list[set[int]] = [set(), set()]
        while heaps[0] and heaps[1]:
            if heaps[0][0][0] + heaps[1][0][0] >= best:
                break
            side = 0 if heaps[0][0][0] <= heaps[1][0][0] else 1
            d, v = heapq.heappop(heaps[side])
            if v in done[side]:
                continue
            done[side].add(v)
            other = dist[1 - side]
            for k in range(self.indptr[v], self.indptr[v + 1]):
                u, nd = int(self.indices[k]), d + float(self.weights[k])
                if nd < dist[side].get(u, np.inf):
                    dist[side][u] = nd
                    heapq.heappush(heaps[side], (nd, u))
                    if u in other:
                        best = min(best, nd + other[u])
        return best


def detours(osm: OsmIndex, pairs: list[tuple[Anchor, Anchor, float]], cap_m: float = DETOUR_CAP_M) -> list[float]:
    """For each (A, B, L): max(0, min(d(A, B), cap) - L) in metres."""
    if not pairs:
        return []
    net = Network(osm)
    return [max(0.0, net.distance(a, b, cap_m) - length) for a, b, length in pairs]
