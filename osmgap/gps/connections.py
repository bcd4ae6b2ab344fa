"""Missing connections: where sparse traces show a detour the map forces but not where the road runs.

At 60-90 s sampling two fixes lie 500 m or more apart; when the route the map allows between them
is much longer than the straight line (a *detour*, osmgap.gps.evidence), a road is missing between
them, but a straight chord that long would cut across blocks: its geometry is unknown. So nothing
is drawn. The matched positions of the two fixes are snapped to the nearest network nodes
(junctions or way ends of the OSM roads), detours of different trips whose ends lie within
``cluster_m`` of each other are one cluster, and a cluster driven by at least ``min_trips``
distinct trips, whose median detour is at least ``min_detour_m``, becomes a ``missing_connection``
if the map itself makes the same detour between the two nodes (their shortest route along the
network is at least ``min_detour_m`` longer than the straight line; on the Chicago bench at 30 s
this raised precision from 0.62/0.88/0.75 to 0.71/0.93/0.73 over seeds 0/1/2, and changed
nothing at 60 and 90 s). Where the off-map fixes of several trips lie along the straight line
between the two nodes and chain it in steps no longer than a chord osmgap draws anyway, the road's
course is known after all: such a connection is drawn as evidence, like a chord (``traced_straight``).

Representation (kept the same in every output): a ``Suggestion`` of kind ``missing_connection``
whose geometry is the 2-point WGS84 LineString between the two OSM nodes, with ``evidence``
``{"geometry": "unknown", "from_node", "to_node", "detour_m", "trips", "trip_ids"}``. The node ids
are OSM node ids where the input has them, else osmgap's own network node keys. The line is not
a road: the JOSM file leaves it out (osmgap.export.josm draws only new-geometry kinds); GeoJSON
and MapRoulette keep it with an instruction to trace the road from imagery if there is one.
Precision first: a lone trip's detour is a bus turning round or a matching error, and every
suggestion costs a mapper's time, hence the two-trip minimum.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from scipy.cluster.hierarchy import DisjointSet
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree
from shapely.geometry import LineString

from osmgap.conflate.osmindex import OsmIndex
from osmgap.core.aoi import reproject
from osmgap.core.datamodel import MISSING_CONNECTION, WGS84, Suggestion
from osmgap.core.traces import GpsTraces
from osmgap.gps.evidence import Unexplained
from osmgap.gps.matching import Matches
from osmgap.gps.network import RoadGraph

KIND = MISSING_CONNECTION


@dataclass(frozen=True)
class ConnectionParams:
    min_chord_m: float = 100.0  # shorter detour chords are drawn as lines (EvidenceParams.chord_max_m)
    min_trips: int = 2  # distinct trips: one trip's detour is a turnaround or a matching error
    min_detour_m: float = 200.0  # median extra route the map forces: less is not worth a mapper's look
    cluster_m: float = 150.0  # detour ends of two trips this close (each end) are the same connection
    node_m: float = 80.0  # an end farther than this from every network node joins no node
    along_m: float = 20.0  # the straight line this close to a mapped road runs along it
    min_gap_m: float = 80.0  # the stretch of the line along no mapped road: shorter, and the map has the road
    # a connection is drawn straight when off-map fixes of >= min_trips trips lie along the line
    # between its nodes (within along_fix_m) and chain it with no gap over fix_gap_m, the longest
    # step osmgap draws straight (EvidenceParams.chord_max_m): see traced_straight
    along_fix_m: float = 12.0
    fix_gap_m: float = 100.0
    # and most of the off-map fixes around the line (within around_m) lie on it: fixes scattered over
    # a car park or a campus also reach along a line crossing it
    around_m: float = 40.0
    on_line_share: float = 0.7


@dataclass
class Connection:
    """Two network nodes (metric positions ``a``/``b``) a road seems to join, the median detour it
    removes and the distinct trips that show it."""

    from_node: int
    to_node: int
    a: tuple[float, float]
    b: tuple[float, float]
    detour_m: float
    trip_ids: list[int]


def missing_connections(traces: GpsTraces, matches: Matches, found: Unexplained, network: RoadGraph,
                        params: ConnectionParams = ConnectionParams()) -> list[Connection]:
    """The connections that at least ``min_trips`` distinct trips' long detours show (see the module)."""
    a, b, extra = found.detour_a, found.detour_b, found.detour_m
    chord = np.hypot(traces.x[b] - traces.x[a], traces.y[b] - traces.y[a])
    pick = (chord > params.min_chord_m) & np.isfinite(extra) & matches.matched[a] & matches.matched[b]
    a, b, extra = a[pick], b[pick], extra[pick]
    if not len(a) or not len(network):
        return []
    ends = np.column_stack([matches.mx[a], matches.my[a], matches.mx[b], matches.my[b]])
    # one order per pair (west end first): a connection has no direction
    flip = (ends[:, 0] > ends[:, 2]) | ((ends[:, 0] == ends[:, 2]) & (ends[:, 1] > ends[:, 3]))
    ends[flip] = ends[flip][:, [2, 3, 0, 1]]
    groups = _clusters(ends, params.cluster_m)
    xy = network.node_xy()
    keys = np.fromiter(xy.keys(), np.int64)
    tree = cKDTree(np.asarray(list(xy.values())))
    trip = traces.trip[a]
    out: dict[tuple[int, int], Connection] = {}
    for members in groups:
        trips = np.unique(trip[members])
        detour = float(np.median(extra[members]))
        if len(trips) < params.min_trips or detour < params.min_detour_m:
            continue
        centre = ends[members].mean(axis=0)
        dist, at = tree.query(centre.reshape(2, 2))
        if np.any(dist > params.node_m) or at[0] == at[1]:
            continue
        pair = (int(keys[at[0]]), int(keys[at[1]]))
        known = out.get(tuple(sorted(pair)))  # type: ignore[arg-type]
        ids = sorted(set(trips.tolist()) | (set(known.trip_ids) if known else set()))
        out[tuple(sorted(pair))] = Connection(pair[0], pair[1], xy[pair[0]], xy[pair[1]],  # type: ignore[index]
                                              max(detour, known.detour_m if known else 0.0), ids)
    roads = shapely.STRtree(network.lines)
    kept = [c for c in out.values() if len(c.trip_ids) >= params.min_trips and _unmapped(c, network, roads, params)]
    return [c for c, route in zip(kept, _routes(network, kept)) if route - _straight(c) >= params.min_detour_m]


def traced_straight(connections: list[Connection], traces: GpsTraces, found: Unexplained,
                    params: ConnectionParams = ConnectionParams()) -> tuple[list[tuple[Connection, np.ndarray]],
                                                                            list[Connection]]:
    """(drawn, the rest): the connections whose road the trips show running straight between the two
    nodes, each with the distinct trips whose off-map fixes lie along it. On a grid of streets a missing
    block is a straight line between two junctions; where the off-map fixes of several trips lie along
    that line, no consecutive two of them (nor a node and the fix next to it) farther apart than a step
    osmgap draws straight anyway, and most of the off-map fixes around it lie on it, the line is known
    and is drawn as evidence like any chord, not reported as a connection of unknown course.
    (Chicago, bench/gps.py, seeds 0-2, stop 35: precision kept or up on every row, recall of driven
    length up to +0.05 at 30 s; with half the fixes on the line instead of 70 %, seed 1 at 60 s lost
    0.11 of precision to a line across a campus.)"""
    off = np.flatnonzero(found.off)
    if not connections or not len(off):
        return [], list(connections)
    fixes = shapely.points(traces.x[off], traces.y[off])
    tree = shapely.STRtree(fixes)
    drawn, rest = [], []
    for c in connections:
        line = LineString([c.a, c.b])
        near = off[tree.query(line, predicate="dwithin", distance=params.along_fix_m)]
        around = tree.query(line, predicate="dwithin", distance=params.around_m)
        trips = np.unique(traces.trip[near])
        at = np.sort(shapely.line_locate_point(line, shapely.points(traces.x[near], traces.y[near])))
        steps = np.diff(np.r_[0.0, at, line.length])
        lined_up = len(near) >= params.on_line_share * len(around)  # not a car park's scatter
        if len(trips) >= params.min_trips and steps.max() <= params.fix_gap_m and lined_up:
            drawn.append((c, trips))
        else:
            rest.append(c)
    return drawn, rest


def _straight(c: Connection) -> float:
    return float(np.hypot(c.a[0] - c.b[0], c.a[1] - c.b[1]))


def _routes(network: RoadGraph, connections: list[Connection]) -> np.ndarray:
    """The shortest way along the network (either direction) between each connection's two nodes
    (inf where none): the trips' detours may come from where their fixes lay, not from the nodes,
    and a pair the map already joins closely is no missing connection."""
    if not connections:
        return np.zeros(0)
    nodes, index = np.unique(np.r_[network.u, network.v], return_inverse=True)
    u, v = index[:len(network)], index[len(network):]
    graph = coo_matrix((shapely.length(network.lines), (u, v)), shape=(len(nodes), len(nodes))).tocsr()
    at = {int(k): i for i, k in enumerate(nodes.tolist())}
    sources = sorted({at[c.from_node] for c in connections})
    table = dijkstra(graph, directed=False, indices=sources)
    row = {s: k for k, s in enumerate(sources)}
    return np.asarray([table[row[at[c.from_node]], at[c.to_node]] for c in connections])


def _unmapped(c: Connection, network: RoadGraph, roads: shapely.STRtree, params: ConnectionParams) -> bool:
    """Whether at least ``min_gap_m`` of the straight line between the two nodes runs along no mapped
    road (within ``along_m``); else the map has the road and the detour is a connectivity fault."""
    line = LineString([c.a, c.b])
    near = network.lines[roads.query(line, "dwithin", params.along_m)]
    gap = line.difference(shapely.union_all(shapely.buffer(near, params.along_m))) if len(near) else line
    return bool(not gap.is_empty and gap.length >= params.min_gap_m)


def _clusters(ends: np.ndarray, reach_m: float) -> list[np.ndarray]:
    """Groups of detours whose two ends both lie within ``reach_m`` of another member's (single link)."""
    tree = cKDTree(ends)
    sets = DisjointSet(range(len(ends)))
    for i, j in tree.query_pairs(reach_m * np.sqrt(2.0)):
        if max(np.hypot(*(ends[i, :2] - ends[j, :2])), np.hypot(*(ends[i, 2:] - ends[j, 2:]))) <= reach_m:
            sets.merge(i, j)
    return [np.fromiter(s, np.int64) for s in sets.subsets()]


def osm_node_ids(osm: OsmIndex, connections: list[Connection]) -> dict[int, int]:
    """Network node key -> OSM node id of the connections' nodes, where the input has node ids."""
    keys, first = np.unique(osm.vertex_key, return_index=True)
    vertex = dict(zip(keys.tolist(), first.tolist()))
    out = {}
    for key in {k for c in connections for k in (c.from_node, c.to_node)}:
        nid = osm.node_id(vertex[key]) if key in vertex else None
        if nid is not None:
            out[key] = nid
    return out


def instruction(detour_m: float) -> str:
    """What a mapper reads (GeoJSON ``evidence_instruction``, so MapRoulette tasks carry it too)."""
    return (f"GPS trips detour {detour_m:.0f} m between these two junctions: is a road missing between them? "
            "Trace it from imagery if so; the line is only the straight gap, not the road.")


def as_suggestions(connections: list[Connection], crs: object, node_id: dict[int, int] | None = None) -> list[Suggestion]:
    """The connections as ``missing_connection`` suggestions (WGS84; see the module for the format);
    ``node_id``: network node key -> OSM node id, where the input has them."""
    ids = node_id or {}
    out = []
    for c in connections:
        line = reproject(LineString([c.a, c.b]), crs, WGS84)
        f, t = ids.get(c.from_node, c.from_node), ids.get(c.to_node, c.to_node)
        out.append(Suggestion(
            id=f"{KIND}-{min(f, t)}-{max(f, t)}", kind=KIND, geometry=line,
            length_m=float(np.hypot(c.a[0] - c.b[0], c.a[1] - c.b[1])),
            confidence=float(min(1.0, len(c.trip_ids) / 5.0)), routing_impact=round(c.detour_m, 1),
            evidence={"geometry": "unknown", "from_node": f, "to_node": t, "detour_m": round(c.detour_m, 1),
                      "trips": len(c.trip_ids), "trip_ids": c.trip_ids, "instruction": instruction(c.detour_m)}))
    return out
