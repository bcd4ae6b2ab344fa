"""The road graph of the mapconstruction benchmark (``vertices``: id,x,y; ``edges``:
id,from,to,flag) as OSM-like ways, so the OSM side of a GPS benchmark loads like any OSM export.

The benchmark stores straight segments between vertices (median ~30 m); a street between two
junctions is a chain of them. Chains are merged into one way each, so deleting a "way" deletes a
street block, as deleting an OSM way would, not a sliver between two shape points. Way ids are
the smallest edge id of the chain (stable, not real OSM ids).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
from shapely.geometry import LineString, Point
from shapely.geometry.base import BaseGeometry

from osmgap.errors import InputError
from osmgap.sources.gps import check_coordinates


def read_mapconstruction_graph(vertices: Path, edges: Path, crs: str) -> gpd.GeoDataFrame:
    """Ways (``osm_id``, ``highway``='road', ``geometry``) in ``crs``, one per junction-to-junction chain."""
    return read_graph_and_defects(vertices, edges, crs)[0]


@dataclass(frozen=True)
class GraphDefects:
    """What of a graph could not be read: the edges to vertices it lacks, or to a vertex id
    given twice at different positions (``edges``: (edge id, where it may lie, in the graph's
    CRS: its known end, else empty)), and those vertex ids (``twice``). A cropped or edited graph
    has them; dropped silently, the street there would be suggested as missing."""

    edges: list[tuple[int, BaseGeometry]]
    twice: list[int]


def read_graph_and_defects(vertices: Path, edges: Path, crs: str) -> tuple[gpd.GeoDataFrame, GraphDefects]:
    """The graph's ways (``read_mapconstruction_graph``) and what of it could not be read."""
    try:
        v = np.loadtxt(vertices, delimiter=",", ndmin=2)
        e = np.loadtxt(edges, delimiter=",", ndmin=2).astype(np.int64)
    except (ValueError, OSError) as exc:
        raise InputError(f"{vertices} / {edges}", f"not a mapconstruction graph ({exc})") from None
    check_coordinates(v[:, 1], v[:, 2], crs, vertices, what="vertex")  # read in --gps-crs: say when that is wrong
    xy: dict[int, tuple[float, float]] = {}
    twice: set[int] = set()
    for i, x, y in v[:, :3]:
        if xy.setdefault(int(i), (x, y)) != (x, y):
            twice.add(int(i))
    for i in twice:  # which position is right is unknown
        del xy[i]
    graph = nx.Graph()
    lost: list[tuple[int, BaseGeometry]] = []
    for eid, a, b in e[:, :3]:
        if a in xy and b in xy:
            if a != b and not graph.has_edge(a, b):
                graph.add_edge(int(a), int(b), id=int(eid))
        else:
            known = [xy[n] for n in (a, b) if n in xy]
            lost.append((int(eid), Point(known[0]) if known else Point()))
    ids, lines = [], []
    for chain in _chains(graph):
        ids.append(min(graph.edges[u, w]["id"] for u, w in zip(chain[:-1], chain[1:])))
        lines.append(LineString([xy[n] for n in chain]))
    frame = gpd.GeoDataFrame({"osm_id": ids, "highway": "road"}, geometry=lines, crs=crs)
    return frame, GraphDefects(lost, sorted(twice))


def _chains(graph: nx.Graph) -> list[list[int]]:
    """Node sequences between nodes of degree other than 2 (pure loops start anywhere)."""
    seen: set[frozenset[int]] = set()
    out = []
    ends = [n for n in graph.nodes if graph.degree(n) != 2]
    for start in ends + list(graph.nodes):
        for nxt in graph.neighbors(start):
            if frozenset((start, nxt)) in seen:
                continue
            chain = [start, nxt]
            seen.add(frozenset((start, nxt)))
            while graph.degree(chain[-1]) == 2 and chain[-1] != start:
                step = next((m for m in graph.neighbors(chain[-1]) if frozenset((chain[-1], m)) not in seen), None)
                if step is None:
                    break
                seen.add(frozenset((chain[-1], step)))
                chain.append(step)
            out.append(chain)
    return out
