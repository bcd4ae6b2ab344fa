"""Routing impact: the detour through the OSM network that a suggested connection removes.

A suggestion joined to OSM at two points A and B shortens the trip A -> B from the OSM network
distance d(A, B) to the suggestion's own length L. The network is directed: a way tagged
``oneway=yes`` (or ``1``/``true``; a roundabout or a motorway unless ``oneway=no``) is driven
only from its first node to its last, ``oneway=-1`` only the other way, so d(A, B) and d(B, A)
may differ; the new road itself is taken as two-way, and its impact is the larger of the two
savings, max(d(A, B), d(B, A)) - L (never negative). A misconnection joins two ways at their
crossing, L = 0. Distances are searched only up to a cap: a detour beyond it, or no path at all,
counts as the cap, which keeps every answer a finite number MapRoulette rules can compare.

Each distance is a bidirectional Dijkstra over the OSM vertices (CSR arrays: forward from A
over the edges as driven, backward from B over the reversed edges), stopped as soon as the two
search radii add up to the best path or the cap, so a typical connection explores a few dozen
vertices; points in different connected components are answered without a search.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from osmgap.conflate.osmindex import OsmIndex

DETOUR_CAP_M = 5000.0
AT_VERTEX_M = 0.01


@dataclass(frozen=True)
class Anchor:
    """A point on an OSM segment (``t`` in [0, 1] from its start) where a suggestion joins."""

    segment: int
    t: float


class Network:
    """The OSM ways as a directed weighted graph of vertex keys (shared vertices = junctions)."""

    def __init__(self, osm: OsmIndex):
        self.osm = osm
        n = int(osm.vertex_key.max()) + 1 if len(osm.vertex_key) else 0
        self.seg_dir = osm.direction[osm.segs.line] if len(osm.direction) else np.zeros(0, int)
        ka = osm.vertex_key[osm.segs.vertex]
        kb = osm.vertex_key[osm.segs.vertex + 1]
        w = np.maximum(osm.segs.length, 1e-6)
        fwd, bwd = self.seg_dir >= 0, self.seg_dir <= 0
        rows, cols, w = np.r_[ka[fwd], kb[bwd]], np.r_[kb[fwd], ka[bwd]], np.r_[w[fwd], w[bwd]]
        # two ways over the same pair of nodes: keep the shorter edge (a sparse matrix would
        # add the two lengths up)
        order = np.lexsort((w, cols, rows))
        rows, cols, w = rows[order], cols[order], w[order]
        first = np.r_[True, (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])]
        keep = first & (rows != cols)
        matrix = coo_matrix((w[keep], (rows[keep], cols[keep])), shape=(n, n)).tocsr()
        back = matrix.T.tocsr()
        # per search side: (indptr, indices, weights) of the edges it follows
        self.csr = ((matrix.indptr, matrix.indices, matrix.data), (back.indptr, back.indices, back.data))
        self.component = connected_components(matrix, directed=False)[1] if n else np.zeros(0, int)

    def starts(self, a: Anchor, leaving: bool) -> list[tuple[int, float]]:
        """The segment ends that can be reached from an anchor (``leaving``), or from which it
        can be reached, with the distances along the segment."""
        v = self.osm.segs.vertex[a.segment]
        length = float(self.osm.segs.length[a.segment])
        d = int(self.seg_dir[a.segment])
        start = (int(self.osm.vertex_key[v]), a.t * length)
        end = (int(self.osm.vertex_key[v + 1]), (1 - a.t) * length)
        # leaving forwards reaches the end, backwards the start; arriving forwards comes from the start
        ahead, behind = (end, start) if leaving else (start, end)
        # a point on a vertex is at that vertex, whichever way its segment may be driven
        return [p for p, ok in ((ahead, d >= 0), (behind, d <= 0)) if ok or p[1] <= AT_VERTEX_M]

    def distance(self, a: Anchor, b: Anchor, cap: float) -> float:
        """Network distance from anchor ``a`` to anchor ``b`` as driven, at most ``cap``."""
        sa, sb = self.starts(a, leaving=True), self.starts(b, leaving=False)
        key = int(self.osm.vertex_key[self.osm.segs.vertex[a.segment]])
        other = int(self.osm.vertex_key[self.osm.segs.vertex[b.segment]])
        if self.component[key] != self.component[other]:
            return cap
        best = cap
        if a.segment == b.segment:
            d: float = int(self.seg_dir[a.segment])
            if (b.t >= a.t and d >= 0) or (b.t <= a.t and d <= 0):
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
            other_dist = dist[1 - side]
            indptr, indices, weights = self.csr[side]
            for k in range(indptr[v], indptr[v + 1]):
                u, nd = int(indices[k]), d + float(weights[k])
                if nd < dist[side].get(u, np.inf):
                    dist[side][u] = nd
                    heapq.heappush(heaps[side], (nd, u))
                    if u in other_dist:
                        best = min(best, nd + other_dist[u])
        return best


def detours(osm: OsmIndex, pairs: list[tuple[Anchor, Anchor, float]], cap_m: float = DETOUR_CAP_M) -> list[float]:
    """For each (A, B, L): max(0, max(d(A, B), d(B, A)) - L) in metres, d capped at ``cap_m``."""
    if not pairs:
        return []
    net = Network(osm)
    out = []
    for a, b, length in pairs:
        there = net.distance(a, b, cap_m)
        back = there if there >= cap_m else net.distance(b, a, cap_m)
        out.append(max(0.0, max(there, back) - length))
    return out
