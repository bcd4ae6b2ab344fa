"""Routing impact on the real Helsinki network, checked against networkx's Dijkstra on a graph
built independently from the OSM node ids of the same ways."""
from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from pyproj import Transformer

from osmgap.osmindex import index_osm
from osmgap.routing import DETOUR_CAP_M, Anchor, Network, detours

from tests.roads import extent_aoi, without


def _node_graph(roads, crs) -> nx.Graph:
    """Nodes are OSM node ids, edges consecutive nodes of a way, weight the metric length."""
    to_metric = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    xy = {n: to_metric.transform(lon, lat) for n, (_, lon, lat) in roads.nodes.items()}
    g = nx.Graph()
    for ids in roads.ways["node_ids"]:
        for a, b in zip(ids[:-1], ids[1:]):
            if a in xy and b in xy:
                g.add_edge(a, b, weight=float(np.hypot(xy[a][0] - xy[b][0], xy[a][1] - xy[b][1])))
    return g


def _anchor_at_node(osm, node_xy) -> Anchor:
    """The anchor on a segment that starts or ends at the vertex at ``node_xy``."""
    v = int(np.argmin(np.hypot(*(osm.vertex_xy - node_xy).T)))
    seg = int(osm.segment_at_vertex[v])
    return Anchor(seg, 0.0 if osm.segs.vertex[seg] == v else 1.0)


def test_network_distances_equal_networkx(helsinki):
    crs = extent_aoi(helsinki).metric_crs
    rng = np.random.default_rng(3)
    gone = [int(i) for i in rng.choice(helsinki.ways["osm_id"].to_numpy(), 40, replace=False)]
    edited = without(helsinki, gone)
    osm = index_osm(edited, crs)
    net = Network(osm)
    oracle = _node_graph(edited, crs)
    to_metric = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    nodes = sorted(oracle.nodes)
    checked = 0
    for a, b in rng.choice(nodes, size=(60, 2)):
        ours = net.distance(_anchor_at_node(osm, to_metric.transform(*helsinki.nodes[a][1:])),
                            _anchor_at_node(osm, to_metric.transform(*helsinki.nodes[b][1:])), DETOUR_CAP_M)
        try:
            theirs = min(nx.dijkstra_path_length(oracle, a, b, weight="weight"), DETOUR_CAP_M)
        except nx.NetworkXNoPath:
            theirs = DETOUR_CAP_M
        assert ours == pytest.approx(theirs, abs=0.05)
        checked += theirs < DETOUR_CAP_M
    assert checked >= 30  # most pairs are connected: the comparison is not all caps


def test_detour_is_what_the_new_connection_saves(helsinki):
    """A suggestion of length L between A and B saves d(A, B) - L; one whose ends are already
    close through the network saves nothing."""
    crs = extent_aoi(helsinki).metric_crs
    osm = index_osm(helsinki, crs)
    net = Network(osm)
    a = Anchor(0, 0.0)
    far = Anchor(len(osm.segs) // 2, 0.5)
    d = net.distance(a, far, DETOUR_CAP_M)
    assert 0 < d < DETOUR_CAP_M
    saved, none = detours(osm, [(a, far, 10.0), (a, far, d + 50.0)])
    assert saved == pytest.approx(d - 10.0) and none == 0.0
