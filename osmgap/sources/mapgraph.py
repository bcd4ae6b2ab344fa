"""The road graph of the mapconstruction benchmark (``vertices``: id,x,y; ``edges``:
id,from,to,flag) as OSM-like ways, so the OSM side of a GPS benchmark loads like any OSM export.

The benchmark stores straight segments between vertices (median ~30 m); a street between two
junctions is a chain of them. Chains are merged into one way each, so deleting a "way" deletes a
street block, as deleting an OSM way would, not a sliver between two shape points. Way ids are
the smallest edge id of the chain (stable, not real OSM ids).
"""
from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
from shapely.geometry import LineString

from osmgap.errors import InputError
from osmgap.sources.gps import check_coordinates


def read_mapconstruction_graph(vertices: Path, edges: Path, crs: str) -> gpd.GeoDataFrame:
    """Ways (``osm_id``, ``highway``='road', ``geometry``) in ``crs``, one per junction-to-junction chain."""
    try:
        v = np.loadtxt(vertices, delimiter=",", ndmin=2)
        e = np.loadtxt(edges, delimiter=",", ndmin=2).astype(np.int64)
    except (ValueError, OSError) as exc:
        raise InputError(f"{vertices} / {edges}", f"not a mapconstruction graph ({exc})") from None
    check_coordinates(v[:, 1], v[:, 2], crs, vertices, what="vertex")  # read in --gps-crs: say when that is wrong
    xy = {int(i): (x, y) for i, x, y in v[:, :3]}
    graph = nx.Graph()
    for eid, a, b in e[:, :3]:
        if a != b and a in xy and b in xy and not graph.has_edge(a, b):
            graph.add_edge(int(a), int(b), id=int(eid))
    ids, lines = [], []
    for chain in _chains(graph):
        ids.append(min(graph.edges[u, w]["id"] for u, w in zip(chain[:-1], chain[1:])))
        lines.append(LineString([xy[n] for n in chain]))
    return gpd.GeoDataFrame({"osm_id": ids, "highway": "road"}, geometry=lines, crs=crs)


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
