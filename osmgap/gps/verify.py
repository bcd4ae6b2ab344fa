"""Verify GPS candidates by re-matching: a candidate road stays only if it explains its trips.

Each edge of the evidence graph is added to the road network (osmgap.gps.network.with_lines), and
the trips that support it (off-map fixes or detour chords within ``support_m`` of it) are matched
again. A real missing road gives them a route: their fixes are back on the map and their detours
gone. A line drawn through scattered noise, or one the matcher would not route along (it leads
nowhere, or it cuts a corner no vehicle can drive), explains little and is dropped.
"""
from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from osmgap.core.traces import GpsTraces
from osmgap.gps.evidence import EvidenceParams, Unexplained, unexplained
from osmgap.gps.matching import Matches, MatchParams
from osmgap.gps.network import RoadGraph, with_lines
from osmgap.gps.tiling import match_all


@dataclass(frozen=True)
class VerifyParams:
    support_m: float = 30.0  # evidence this close to a candidate is what it must explain
    min_explained: float = 0.3  # of its supporting fixes and detours
    min_trips: int = 2  # distinct trips it explains


def verify(graph: nx.Graph, traces: GpsTraces, matches: Matches, found: Unexplained, network: RoadGraph,
           limit_m: float, match_params: MatchParams = MatchParams(), evidence_params: EvidenceParams = EvidenceParams(),
           params: VerifyParams = VerifyParams(), known: BaseGeometry | None = None) -> dict[str, int]:
    """Drop the edges of ``graph`` (in place) that re-matching shows explain too little; returns
    counts of kept and dropped edges."""
    edges = list(graph.edges)
    if not edges:
        return {"verified": 0, "dropped_unverified": 0}
    lines = np.asarray([graph.edges[e]["geometry"] for e in edges], dtype=object)
    detour_mid = shapely.points((traces.x[found.detour_a] + traces.x[found.detour_b]) / 2,
                                (traces.y[found.detour_a] + traces.y[found.detour_b]) / 2)
    off_fix = np.flatnonzero(found.off)
    tree = shapely.STRtree(lines)
    fix_edge, fix_idx = _near(tree, shapely.points(traces.x[off_fix], traces.y[off_fix]), params.support_m)
    det_edge, det_idx = _near(tree, detour_mid, params.support_m)
    trips = np.unique(np.r_[traces.trip[off_fix[fix_idx]], traces.trip[found.detour_b[det_idx]]])
    subset = np.flatnonzero(np.isin(traces.trip, trips))
    sub = traces.take(subset)
    added, _ = with_lines(network, list(lines))
    again = match_all(added, limit_m, sub, matches.piece[subset], match_params)
    after = unexplained(sub, again, evidence_params, known)
    where = np.full(len(traces), -1)
    where[subset] = np.arange(len(subset))
    fixed_fix = ~after.off[where[off_fix[fix_idx]]]
    still = np.zeros(len(sub), bool)
    still[after.detour_b] = True
    fixed_det = ~still[where[found.detour_b[det_idx]]]
    dropped = 0
    for k, e in enumerate(edges):
        mine = fix_edge == k
        mine_d = det_edge == k
        total = int(mine.sum() + mine_d.sum())
        ok = int(fixed_fix[mine].sum() + fixed_det[mine_d].sum())
        explained_trips = np.unique(np.r_[traces.trip[off_fix[fix_idx[mine & fixed_fix]]],
                                          traces.trip[found.detour_b[det_idx[mine_d & fixed_det]]]])
        if total == 0 or ok < params.min_explained * total or len(explained_trips) < params.min_trips:
            graph.remove_edge(*e)
            dropped += 1
    graph.remove_nodes_from([n for n in list(graph.nodes) if graph.degree(n) == 0])
    return {"verified": len(edges) - dropped, "dropped_unverified": dropped}


def _near(tree: shapely.STRtree, points: np.ndarray, distance: float) -> tuple[np.ndarray, np.ndarray]:
    """(edge, point) pairs within ``distance``; each point goes to its nearest edge only."""
    if not len(points):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    pt, edge = tree.query_nearest(points, max_distance=distance, all_matches=False)
    return edge, pt
