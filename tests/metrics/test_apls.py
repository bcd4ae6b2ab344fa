"""APLS on small graphs whose scores are worked out by hand in each test, plus real data."""
import networkx as nx
import pytest
import shapely
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


def test_a_straight_road_cut_by_a_window_border_is_cut_there():
    from shapely.geometry import box

    from osmgap.metrics.linenet import LineNet

    net = LineNet.from_graph(STRAIGHT)
    left = net.crop(box(-10, -10, 30, 10))
    assert len(left.edges) == 1 and sorted(left.nodes.values()) == [(0.0, 0.0), (30.0, 0.0)]
    assert left.edges[0][2].length == pytest.approx(30.0)
    assert net.crop(box(200, -10, 300, 10)).edges == []
    whole = net.crop(box(-10, -10, 110, 10))
    assert whole.nodes == net.nodes and [e[:2] for e in whole.edges] == [e[:2] for e in net.edges]


def test_apls_by_windows_scores_each_window_as_a_chip(paris, paris_aoi):
    """On the Paris chip's real OSM ways against a copy shifted 2 m: one window over the whole
    chip is plain APLS; cut into four windows, no road length is lost or gained, and the mean of
    the four still sees a 2 m shift as nearly perfect."""
    from shapely import affinity
    from shapely.geometry import box

    from osmgap.graph.lines import build_line_graph
    from osmgap.metrics.apls import apls_by_windows
    from osmgap.metrics.linenet import LineNet
    from osmgap.sources.osm import load_osm

    ways = load_osm(str(paris / "osm_roads.geojson"), paris_aoi).ways.to_crs(paris_aoi.metric_crs)
    lines, hw = ways.geometry.to_numpy(), ways["highway"].to_numpy()
    truth = build_line_graph(lines, [1.0] * len(lines), hw, paris_aoi.metric_crs)
    moved = build_line_graph([affinity.translate(g, 2.0, 2.0) for g in lines], [1.0] * len(lines), hw,
                             paris_aoi.metric_crs)
    x0, y0, x1, y1 = shapely.total_bounds(lines)
    one = apls_by_windows(truth, moved, [box(x0 - 50, y0 - 50, x1 + 50, y1 + 50)])
    assert one["apls_windows"] == 1 and one["apls"] == apls(truth, moved)["apls"]
    xm, ym = (x0 + x1) / 2, (y0 + y1) / 2
    quarters = [box(a, b, c, d) for a, c in ((x0 - 50, xm), (xm, x1 + 50)) for b, d in ((y0 - 50, ym), (ym, y1 + 50))]
    net = LineNet.from_graph(truth)
    assert sum(net.crop(q).length for q in quarters) == pytest.approx(net.length, rel=1e-9)
    four = apls_by_windows(truth, moved, quarters)
    assert four["apls_windows"] == 4 and 0.8 < four["apls"] <= 1.0
