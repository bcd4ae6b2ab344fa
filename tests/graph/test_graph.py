"""Graph extraction on real road masks (SpaceNet Vegas centreline mask)."""
from dataclasses import replace

import networkx as nx
import numpy as np
import pytest
from affine import Affine
from rasterio.warp import transform_bounds

from osmgap.core.aoi import utm_crs_for
from osmgap.core.datamodel import ProbabilityRaster
from osmgap.core.grid import grid_over
from osmgap.graph.skeleton import GraphParams, extract_graph, graph_length_m
from osmgap.sources.imagery import WindowReader, open_imagery


@pytest.fixture(scope="module")
def vegas_mask(vegas) -> ProbabilityRaster:
    im = open_imagery(vegas / "road_mask.tif")
    crs = utm_crs_for(-115.23, 36.14)
    grid = grid_over(transform_bounds("EPSG:4326", crs, *im.bounds_wgs84), crs, 1.0)
    with WindowReader(im, grid) as r:
        m, _ = r.read_all()
    return ProbabilityRaster(m[0], grid.transform, grid.crs)


def test_graph_length_matches_labelled_roads(vegas_mask):
    graph = extract_graph(vegas_mask)
    assert graph.graph["crs"].to_epsg() == 32611
    # SpaceNet labels 1.03 km of centreline in this chip
    assert 0.9 < graph_length_m(graph) / 1030 < 1.1
    for _, _, d in graph.edges(data=True):
        assert d["length"] == pytest.approx(d["geometry"].length) and d["length"] > 0
    # edges are simplified polylines, not pixel chains
    assert max(len(d["geometry"].coords) for _, _, d in graph.edges(data=True)) < 60


def test_edges_join_at_shared_nodes(vegas_mask):
    graph = extract_graph(vegas_mask)
    for u, v, d in graph.edges(data=True):
        ends = {d["geometry"].coords[0], d["geometry"].coords[-1]}
        for n in (u, v):
            node = (graph.nodes[n]["x"], graph.nodes[n]["y"])
            assert min(np.hypot(node[0] - e[0], node[1] - e[1]) for e in ends) < 1.5


def _paint_branch(raster: ProbabilityRaster, graph: nx.Graph, length_m: float, half_px: int,
                  slant_deg: float = 0.0) -> np.ndarray:
    """A copy of the mask with a straight branch painted from the middle of the longest road, at
    right angles to it turned by ``slant_deg``: a controlled edit of the real mask."""
    longest = max(graph.edges(data=True), key=lambda e: e[2]["length"])[2]["geometry"]
    mid = longest.interpolate(0.5, normalized=True)
    ahead = longest.interpolate(0.5 * longest.length + 2)
    dx, dy = (ahead.x - mid.x) / mid.distance(ahead), (ahead.y - mid.y) / mid.distance(ahead)
    cos, sin = np.cos(np.radians(slant_deg)), np.sin(np.radians(slant_deg))
    nx_, ny_ = -dy * cos + dx * sin, dx * cos + dy * sin
    prob = raster.prob.copy()
    for step in np.arange(0, length_m, 0.25):
        col, row = ~raster.transform @ (mid.x + nx_ * step, mid.y + ny_ * step)
        prob[int(row) - half_px:int(row) + half_px + 1, int(col) - half_px:int(col) + half_px + 1] = 1.0
    return prob


def test_spurs_and_specks_are_removed(vegas_mask):
    base = extract_graph(vegas_mask)
    prob = _paint_branch(vegas_mask, base, 9, 1)  # a 9 m stub: a skeleton artefact
    assert prob[5:10, 5:10].max() == 0
    prob[5:10, 5:10] = 1.0  # a lone 5x5 m speck far from any road
    edited = extract_graph(ProbabilityRaster(prob, vegas_mask.transform, vegas_mask.crs))
    assert abs(graph_length_m(edited) - graph_length_m(base)) < 3
    dead_ends = lambda g: sum(1 for _, d in g.degree() if d == 1)  # noqa: E731
    assert dead_ends(edited) == dead_ends(base)
    assert nx.number_connected_components(edited) == nx.number_connected_components(base)


@pytest.mark.parametrize("slant_deg,length_m", [(30, 13), (30, 14), (35, 14), (45, 14)])
def test_no_spur_shorter_than_the_limit_survives_on_a_slant(vegas_mask, slant_deg, length_m):
    """A slanted stub's skeleton is a staircase of pixels longer than the line it follows: spurs are
    judged on the simplified line, as a tiled run's stitching judges them (11.5-11.9 m spurs, 12.1 m
    or more of pixels, used to survive here, and made tiled and uncut graphs differ)."""
    base = extract_graph(vegas_mask)
    prob = _paint_branch(vegas_mask, base, length_m, 1, slant_deg)
    graph = extract_graph(ProbabilityRaster(prob, vegas_mask.transform, vegas_mask.crs))
    limit = GraphParams().spur_m
    for u, v, d in graph.edges(data=True):
        if sorted((graph.degree(u), graph.degree(v)))[0] == 1 and max(graph.degree(u), graph.degree(v)) >= 3:
            assert d["length"] >= limit


def test_long_dead_end_branch_is_kept(vegas_mask):
    """Pruning must not eat real dead-end roads: a 30 m branch survives."""
    base = extract_graph(vegas_mask)
    prob = _paint_branch(vegas_mask, base, 30, 2)
    edited = extract_graph(ProbabilityRaster(prob, vegas_mask.transform, vegas_mask.crs))
    assert graph_length_m(edited) - graph_length_m(base) > 20


def test_empty_probability_gives_empty_graph(vegas_mask):
    empty = ProbabilityRaster(np.zeros_like(vegas_mask.prob), vegas_mask.transform, vegas_mask.crs)
    assert extract_graph(empty).number_of_edges() == 0


def test_threshold_matters(vegas_mask):
    assert extract_graph(vegas_mask, GraphParams(threshold=1.01)).number_of_edges() == 0


def _blob_raster(shape_mask: np.ndarray, px_m: float = 4.0) -> ProbabilityRaster:
    """Mechanics only: a blob of probability 1 on a 4 m grid, as GPS evidence is drawn."""
    return ProbabilityRaster(shape_mask.astype(np.float32), Affine(px_m, 0, 0, 0, -px_m, 0), "EPSG:32616")


def test_dead_ends_reach_the_ends_of_their_blob_and_a_round_blob_stays_a_stub():
    """A blob 56 m long and 28 m wide skeletonises to ~28 m, half its width short at each end;
    with ``extend_ends`` its line spans the blob, and still joins its nodes. A rounder blob shows
    little direction and is not drawn out to its length."""
    long_blob = np.zeros((40, 40), bool)
    long_blob[13:20, 10:24] = True  # 7 x 14 px = 28 x 56 m
    params = GraphParams(min_blob_m2=0.0, max_hole_m2=0.0, spur_m=0.0, min_component_m=0.0, simplify_m=1.0)
    plain = extract_graph(_blob_raster(long_blob), params)
    drawn = extract_graph(_blob_raster(long_blob), replace(params, extend_ends=True))
    assert graph_length_m(plain) <= 40.0
    (u, v, d), = drawn.edges(data=True)
    xs = sorted(x for x, _ in (d["geometry"].coords[0], d["geometry"].coords[-1]))
    assert xs[0] == pytest.approx(40.0, abs=4.0) and xs[1] == pytest.approx(96.0, abs=4.0)  # the blob's two ends
    ends = {d["geometry"].coords[0], d["geometry"].coords[-1]}
    assert ends == {(drawn.nodes[n]["x"], drawn.nodes[n]["y"]) for n in (u, v)}
    yy, xx = np.mgrid[0:40, 0:40]
    roundish = ((xx - 20) / 5) ** 2 + ((yy - 20) / 4) ** 2 <= 1  # 40 x 32 m: an 8 m skeleton
    assert graph_length_m(extract_graph(_blob_raster(roundish), params)) == pytest.approx(8.0, abs=2.0)
    # each end goes at most the edge's own length: 24 m, not the blob's 40 m
    assert graph_length_m(extract_graph(_blob_raster(roundish), replace(params, extend_ends=True))) <= 26.0


def test_mask_closing_equals_scipys_binary_closing(vegas_mask):
    """osmgap closes the road mask with two separable filters for speed; it must close exactly as
    scipy's binary_closing by a 3 x 3 square does, roads touching the raster's edge included."""
    from scipy import ndimage

    from osmgap.graph.skeleton import _close

    rng = np.random.default_rng(0)
    real = vegas_mask.prob >= 0.5
    speckled = real ^ (rng.random(real.shape) < 0.05)  # holes and specks down to one pixel, on the edges too
    for mask in (real, speckled, speckled[::2, 1::3]):
        expected = ndimage.binary_closing(mask, structure=np.ones((3, 3)), iterations=1)
        assert expected.any() and not expected.all()
        np.testing.assert_array_equal(_close(mask), expected)


def test_pixel_graphs_past_sknws_16_bit_limits():
    """sknw numbers nodes in a 16-bit image (from 10) and returns 16-bit rows and columns: with
    more than 65,525 nodes in one raster (a 100 km2 AOI extracted in one piece) the labels
    wrapped and the process crashed; a column past 32,767 came back negative. osmgap runs sknw's
    kernels on 32-bit labels and 64-bit indices."""
    from osmgap.graph.skeleton import pixel_graph

    side, pitch = 115, 11  # 13,225 separate crosses of 5 nodes and 4 edges each: 66,125 nodes
    cross = np.zeros((pitch, pitch), bool)
    cross[5, 1:10] = cross[1:10, 5] = True
    skeleton = np.tile(cross, (side, side))
    graph = pixel_graph(skeleton)
    assert graph.number_of_nodes() == 5 * side * side and graph.number_of_edges() == 4 * side * side
    centres = np.array([d["o"] for _, d in graph.nodes(data=True)])
    assert centres.min() >= 0 and centres.max() < side * pitch
    assert {graph.degree(n) for n in graph} == {1, 4}

    wide = np.zeros((12, 40_000), bool)
    wide[6, 100:39_000] = True  # a line from column 100 to 38,999
    ((u, v, data),) = pixel_graph(wide).edges(data=True)
    ends = sorted(tuple(graph_node) for graph_node in data["pts"][[0, -1]].tolist())
    assert ends == [(6, 100), (6, 38_999)]
