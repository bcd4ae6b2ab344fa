"""APLS on small graphs whose scores are worked out by hand in each test, plus real data."""
import networkx as nx
import pytest
from shapely.geometry import LineString

from osmgap.metrics.apls import apls


def graph(*lines: list[tuple[float, float]]) -> nx.Graph:
    """A road graph in metres: one edge per polyline, nodes at the polylines' ends (shared ends join)."""
    g = nx.Graph()
    for coords in lines:
        u, v = coords[0], coords[-1]
        for n in (u, v):
            g.add_node(n, x=n[0], y=n[1])
        g.add_edge(u, v, geometry=LineString(coords))
    return g


STRAIGHT = graph([(0, 0), (100, 0)])  # 100 m: nodes at x=0 and 100, a control point at x=50


def test_identical_graphs_score_one():
    assert apls(STRAIGHT, STRAIGHT)["apls"] == pytest.approx(1.0)


def test_half_a_road():
    # truth A(0) C(50) B(100); proposal 0..50 (no control point: 50 m is not more than 50 m).
    # truth onto proposal: A->0, C->50, B has no edge within 4 m. Pairs: (A,C) L=50, L'=50 -> 0;
    # (A,B) and (C,B) missing -> 1 each. Half = 1 - 2/3 = 1/3.
    # proposal onto truth: pair (0,50) L=50, L'=50 -> 0. Half = 1.
    # APLS = 2 * (1/3) * 1 / (1/3 + 1) = 0.5
    s = apls(STRAIGHT, graph([(0, 0), (50, 0)]))
    assert s["apls_gt_onto_prop"] == pytest.approx(1 / 3)
    assert s["apls_prop_onto_gt"] == pytest.approx(1.0)
    assert s["apls"] == pytest.approx(0.5)


def test_detour_costs_its_extra_length():
    # truth A(0,0)-B(40,0), 40 m. Proposal A-P(20,15)-B: two 25 m edges, 50 m.
    # truth onto proposal: A and B snap exactly; (A,B): |40-50|/40 = 0.25 -> half 0.75.
    # proposal onto truth: P is 15 m from the truth, missing. (A,B): |50-40|/50 = 0.2;
    # (A,P), (P,B) missing -> 1. Half = 1 - 2.2/3 = 0.8/3.
    # APLS = 2 * 0.75 * (0.8/3) / (0.75 + 0.8/3) = 0.4 / (3.05/3) = 1.2/3.05
    s = apls(graph([(0, 0), (40, 0)]), graph([(0, 0), (20, 15)], [(20, 15), (40, 0)]))
    assert s["apls_gt_onto_prop"] == pytest.approx(0.75)
    assert s["apls_prop_onto_gt"] == pytest.approx(0.8 / 3)
    assert s["apls"] == pytest.approx(1.2 / 3.05)


def test_snapping_stops_at_four_metres():
    # offset 3 m: every node snaps to its twin, all path lengths equal -> 1.
    assert apls(STRAIGHT, graph([(0, 3), (100, 3)]))["apls"] == pytest.approx(1.0)
    # offset 5 m: nothing snaps either way, every pair is missing -> 0.
    assert apls(STRAIGHT, graph([(0, 5), (100, 5)]))["apls"] == pytest.approx(0.0)


def test_a_break_makes_every_crossing_path_missing():
    # truth A(0) C(50) B(100); proposal 0..45 and 55..100 (a 10 m break).
    # truth onto proposal: C is 5 m from both pieces -> missing. (A,B): no path -> 1;
    # (A,C), (C,B) missing -> 1. Half = 0, so APLS = 0 however good the other half is.
    # proposal onto truth: pairs within a piece only (no path across): (0,45), (55,100) equal -> half 1.
    s = apls(STRAIGHT, graph([(0, 0), (45, 0)], [(55, 0), (100, 0)]))
    assert s["apls_gt_onto_prop"] == pytest.approx(0.0)
    assert s["apls_prop_onto_gt"] == pytest.approx(1.0)
    assert s["apls"] == 0.0


def test_empty_graphs():
    assert apls(STRAIGHT, nx.Graph())["apls"] == 0.0
    assert apls(nx.Graph(), STRAIGHT)["apls"] == 0.0
    assert apls(nx.Graph(), nx.Graph())["apls"] == 1.0


def test_real_osm_graph_against_a_shifted_copy(paris, paris_aoi):
    """The Paris chip's real OSM ways: a copy shifted 2 m scores nearly 1 (dead ends and junctions
    snap a metre or two along), shifted 6 m far lower."""
    from shapely import affinity

    from osmgap.graph.lines import build_line_graph
    from osmgap.sources.osm import load_osm

    ways = load_osm(str(paris / "osm_roads.geojson"), paris_aoi).ways.to_crs(paris_aoi.metric_crs)
    lines = ways.geometry.to_numpy()
    truth = build_line_graph(lines, [1.0] * len(lines), ways["highway"].to_numpy(), paris_aoi.metric_crs)
    for dx, low, high in ((2.0, 0.95, 1.0), (6.0, 0.0, 0.6)):
        moved = build_line_graph([affinity.translate(g, dx, dx) for g in lines], [1.0] * len(lines),
                                 ways["highway"].to_numpy(), paris_aoi.metric_crs)
        # a diagonal shift of dx in x and y is dx*sqrt(2) away: 2.8 m snaps, 8.5 m does not (except
        # where a road runs diagonally)
        assert low <= apls(truth, moved)["apls"] <= high
