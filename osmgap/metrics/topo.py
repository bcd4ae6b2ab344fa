"""TOPO precision/recall/F1 of a proposed road graph (Biagioni & Eriksson, 2012).

"Holes and marbles": from a seed location on the true roads, walk the true graph outwards up to
``radius_m`` along the network and drop a hole every ``spacing_m``; from the same seed snapped to
the proposed graph, walk the proposal the same way and drop a marble every ``spacing_m``. A
marble falls into a hole when the hole lies within ``match_m`` (each hole takes one marble; the
count is a maximum one-to-one matching). Over many seeds, precision is matched marbles / marbles
and recall matched holes / holes. Unlike pixel scores, a road that is present but cut off from the
seed's neighbourhood costs recall, so TOPO sees connectivity locally where APLS sees it globally.

A seed whose location has no proposal edge within ``match_m`` drops no marbles. With no marble
at all precision is 1 by convention (nothing wrong was proposed); F1 is then 0 unless there was
nothing to find either.
"""
from __future__ import annotations

import networkx as nx
import numpy as np
from scipy.sparse.csgraph import maximum_bipartite_matching
from scipy.spatial import cKDTree

from osmgap.metrics.linenet import LineNet, distances_from

SPACING_M = 5.0
MATCH_M = 4.0  # the same tolerance as APLS's snapping
RADIUS_M = 300.0
SEEDS = 100


def topo(truth: nx.Graph, proposal: nx.Graph, spacing_m: float = SPACING_M, match_m: float = MATCH_M,
         radius_m: float = RADIUS_M, seeds: int = SEEDS, seed: int = 0) -> dict[str, float]:
    """TOPO precision, recall and F1 pooled over ``seeds`` random seed locations on ``truth``."""
    gt, prop = LineNet.from_graph(truth), LineNet.from_graph(proposal)
    totals = np.zeros(4)  # matched marbles, marbles, matched holes, holes
    for xy in seed_locations(gt, seeds, np.random.default_rng(seed)):
        totals += topo_at_seed(gt, prop, xy, spacing_m, match_m, radius_m)
    precision = totals[0] / totals[1] if totals[1] else 1.0
    recall = totals[2] / totals[3] if totals[3] else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"topo_precision": float(precision), "topo_recall": float(recall), "topo_f1": float(f1)}


def seed_locations(net: LineNet, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` points spread uniformly by length over the network's edges."""
    if not net.edges:
        return np.zeros((0, 2))
    lengths = np.array([line.length for _, _, line in net.edges])
    at = rng.uniform(0, lengths.sum(), count)
    edge = np.searchsorted(np.cumsum(lengths), at, side="right").clip(max=len(lengths) - 1)
    starts = np.concatenate([[0.0], np.cumsum(lengths)[:-1]])
    return np.array([net.edges[e][2].interpolate(a - starts[e]).coords[0] for e, a in zip(edge, at)])


def topo_at_seed(truth: LineNet, proposal: LineNet, xy: tuple[float, float], spacing_m: float = SPACING_M,
                 match_m: float = MATCH_M, radius_m: float = RADIUS_M) -> np.ndarray:
    """[matched marbles, marbles, matched holes, holes] around one seed location."""
    holes = points_around(truth, xy, spacing_m, radius_m, match_m)
    marbles = points_around(proposal, xy, spacing_m, radius_m, match_m)
    matched = matched_pairs(marbles, holes, match_m)
    return np.array([matched, len(marbles), matched, len(holes)], float)


def points_around(net: LineNet, xy: tuple[float, float], spacing_m: float, radius_m: float,
                  snap_m: float) -> np.ndarray:
    """Points every ``spacing_m`` along ``net`` within ``radius_m`` network distance of the network
    point nearest ``xy`` (none when that point is farther than ``snap_m``): nodes, then edge interiors
    measured from each edge's start."""
    net = net.around(xy, radius_m + snap_m)  # all that a walk of radius_m from within snap_m reaches
    start = net.nearest(np.asarray([xy], float), snap_m)[0]
    if start is None:
        return np.zeros((0, 2))
    net, (seed_node,) = net.split([start])
    dist = distances_from(net.to_nx(), seed_node, cutoff=radius_m)
    points = [net.nodes[n] for n in dist]
    for u, v, line in net.edges:
        du, dv = dist.get(u, np.inf), dist.get(v, np.inf)
        if min(du, dv) > radius_m:
            continue
        along = np.arange(spacing_m, line.length - 1e-9, spacing_m)
        keep = along[np.minimum(du + along, dv + line.length - along) <= radius_m]
        points.extend(line.interpolate(s).coords[0] for s in keep)
    return np.asarray(points, float).reshape(-1, 2)


def matched_pairs(marbles: np.ndarray, holes: np.ndarray, match_m: float) -> int:
    """Size of the largest one-to-one matching of marbles to holes within ``match_m``."""
    if len(marbles) == 0 or len(holes) == 0:
        return 0
    near = cKDTree(marbles).sparse_distance_matrix(cKDTree(holes), match_m, output_type="coo_matrix")
    if near.nnz == 0:
        return 0
    near.data[:] = 1.0  # an exact zero distance is still a match
    matching = maximum_bipartite_matching(near.tocsr(), perm_type="column")
    return int(np.count_nonzero(matching >= 0))
