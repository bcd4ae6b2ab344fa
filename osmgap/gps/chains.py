"""Chains of pieces: the road network with its pass-through nodes taken out, for the route table.

fastmm precomputes the shortest route from every node to every node within the route limit
(UBODT); at the 3 km a 90 s trace needs, that table is most of the matching time and memory, and
its rows grow with the square of the nodes in reach. A third of the nodes of an OSM network only
join two pieces (a way cut where it meets the next way end to end, or where a junction once was),
and a route never turns there. So the matcher sees chains: pieces joined at such nodes, when they
may be driven the same way, become one edge. Results are mapped back to the pieces (a position
on a chain lies on one piece; a stretch of a chain covers several), so nothing downstream sees
the chains.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from osmgap.gps.network import RoadGraph


@dataclass
class Chains:
    """Per chain: ``coords`` (along the chain), ``u``/``v`` (end nodes), ``direction`` (+1, -1, 0
    as RoadGraph's), and its pieces in order: ``piece`` (flat), ``forward`` (the piece runs the
    chain's way), ``start`` (metres from the chain's first vertex to the piece's), ``first``
    (offsets into the flat arrays, one more than there are chains), ``length`` (metres)."""

    coords: list[np.ndarray]
    u: np.ndarray
    v: np.ndarray
    direction: np.ndarray
    piece: np.ndarray
    forward: np.ndarray
    start: np.ndarray
    first: np.ndarray
    length: np.ndarray

    def __post_init__(self) -> None:
        # every chain's place on one line through all of them (a metre apart), so that one sorted
        # search finds the pieces at many positions on many chains
        self._base = np.r_[0.0, np.cumsum(self.length + 1.0)[:-1]]
        self._on_line = np.repeat(self._base, np.diff(self.first)) + self.start

    def __len__(self) -> int:
        return len(self.u)

    def directed(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(edge id, chain, from node, to node) of every directed chain edge: id 2 * chain (+1 reversed)."""
        chain = np.arange(len(self))
        fwd, bwd = self.direction >= 0, self.direction <= 0
        return (np.concatenate([2 * chain[fwd], 2 * chain[bwd] + 1]), np.concatenate([chain[fwd], chain[bwd]]),
                np.concatenate([self.u[fwd], self.v[bwd]]), np.concatenate([self.v[fwd], self.u[bwd]]))

    def along(self, edge: np.ndarray, offset: np.ndarray) -> np.ndarray:
        """Metres from the chain's first vertex of the points ``offset`` metres along directed ``edge``."""
        edge, offset = np.asarray(edge, np.int64), np.asarray(offset, float)
        return np.where(edge % 2 == 0, offset, self.length[edge // 2] - offset)

    def at(self, edge: np.ndarray, offset: np.ndarray) -> np.ndarray:
        """Index (into the flat piece arrays) of the piece at ``offset`` metres along directed chain ``edge``."""
        c = np.asarray(edge, np.int64) // 2
        i = np.searchsorted(self._on_line, self._base[c] + self.along(edge, offset), side="right") - 1
        return np.clip(i, self.first[c], self.first[c + 1] - 1)

    def piece_edges(self, edge: np.ndarray, offset: np.ndarray) -> np.ndarray:
        """The directed piece edge (2 * piece, +1 reversed) at ``offset`` metres along each directed chain ``edge``."""
        i = self.at(edge, offset)
        backwards = (np.asarray(edge) % 2 == 1) == self.forward[i]
        return 2 * self.piece[i] + backwards

    def piece_edge(self, edge: int, offset: float) -> int:
        return int(self.piece_edges(np.array([edge]), np.array([offset]))[0])

    def piece_metres(self, edge: int, begin: float, end: float) -> list[tuple[int, float]]:
        """(piece, metres) that the stretch from ``begin`` to ``end`` metres along directed chain
        ``edge`` covers; a stretch that runs back (``end < begin``, a standing vehicle's jitter)
        counts its negative length on the piece where it begins, as on an unchained edge."""
        c = edge // 2
        a, b = int(self.first[c]), int(self.first[c + 1])
        if b - a == 1:
            return [(int(self.piece[a]), end - begin)]
        if end <= begin:
            return [(self.piece_edge(edge, begin) // 2, end - begin)]
        lo, hi = sorted(self.along(np.array([edge, edge]), np.array([begin, end])).tolist())
        starts = self.start[a:b]
        ends = np.r_[starts[1:], self.length[c]]
        cover = np.minimum(ends, hi) - np.maximum(starts, lo)
        return [(int(self.piece[a + i]), float(cover[i])) for i in np.flatnonzero(cover > 0).tolist()]


def chains(graph: RoadGraph) -> Chains:
    """``graph``'s pieces joined at every node where exactly two pieces meet and may be driven the
    same way through it (a loop piece, and a ring of such nodes, keep one node)."""
    ends: dict[int, list[int]] = {}
    for k, (a, b) in enumerate(zip(graph.u.tolist(), graph.v.tolist())):
        ends.setdefault(a, []).append(k)
        ends.setdefault(b, []).append(k)
    direction = graph.direction.tolist()
    u, v = graph.u.tolist(), graph.v.tolist()

    def leaving(k: int, node: int) -> int:
        """How piece ``k`` may be driven away from ``node``: +1 only away, -1 only towards, 0 both."""
        return direction[k] if u[k] == node else -direction[k]

    def next_piece(k: int, node: int) -> int | None:
        """The piece a chain through ``node`` continues on after ``k``, if ``node`` only passes through."""
        at = ends[node]
        if len(at) != 2 or at[0] == at[1]:
            return None
        other = at[1] if at[0] == k else at[0]
        return other if leaving(other, node) == -leaving(k, node) else None

    used = np.zeros(len(graph), bool)
    out_coords, out_u, out_v, out_dir, piece, forward, start, first, length = [], [], [], [], [], [], [], [0], []
    lengths = shapely.length(graph.lines)
    for k in range(len(graph)):
        if used[k]:
            continue
        used[k] = True
        run = [(k, True)]
        for towards_end in (True, False):  # grow after v[k], then before u[k]
            node, cur = (v[k], k) if towards_end else (u[k], k)
            while (nxt := next_piece(cur, node)) is not None and not used[nxt]:
                used[nxt] = True
                fwd = u[nxt] == node  # the piece runs away from node: along the growth
                if towards_end:
                    run.append((nxt, fwd))
                else:
                    run.insert(0, (nxt, not fwd))
                node, cur = (v[nxt] if fwd else u[nxt]), nxt
        coords = [np.asarray(graph.lines[p].coords) if f else np.asarray(graph.lines[p].coords)[::-1] for p, f in run]
        out_coords.append(np.vstack([coords[0], *(c[1:] for c in coords[1:])]))
        p0, f0 = run[0]
        pl, fl = run[-1]
        out_u.append(u[p0] if f0 else v[p0])
        out_v.append(v[pl] if fl else u[pl])
        out_dir.append(direction[p0] if f0 else -direction[p0])
        metres = np.array([lengths[p] for p, _ in run])
        piece += [p for p, _ in run]
        forward += [f for _, f in run]
        start += np.r_[0.0, np.cumsum(metres)[:-1]].tolist()
        first.append(len(piece))
        length.append(float(metres.sum()))
    return Chains(out_coords, np.asarray(out_u, np.int64), np.asarray(out_v, np.int64), np.asarray(out_dir, np.int64),
                  np.asarray(piece, np.int64), np.asarray(forward, bool), np.asarray(start), np.asarray(first, np.int64),
                  np.asarray(length))
