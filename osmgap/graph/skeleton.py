"""Road probability raster -> road graph (networkx) in a metric CRS.

Threshold, morphological cleanup, skeleton, graph by sknw, spur pruning, simplification.
Every edge carries ``geometry`` (LineString, CRS units = metres) and ``length`` (m); the graph
carries its ``crs``. Parameters are in metres, not pixels, so they mean the same at any resolution.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from types import ModuleType

import networkx as nx
import numpy as np
import shapely
from affine import Affine
from shapely.geometry import LineString
from shapely.geometry.base import BaseGeometry

from osmgap.core.datamodel import ProbabilityRaster


@cache
def _sknw() -> ModuleType:
    """sknw's module with its numba kernels recompiled with ``cache=True``, and its index-to-(row,
    col) kernel replaced by one in 64-bit integers (sknw's is 16-bit: columns past 32,767 wrapped).

    sknw jit-compiles without caching, which costs ~5 s in every process, more than the whole
    graph stage on a small AOI; cached, later runs load the compiled kernels in well under 1 s.
    Imported here, not at the top: numba and sknw cost ~0.2 s of start-up that candidates runs
    never need.
    """
    import numba
    import sknw.sknw

    module = sknw.sknw
    module.idx2rc = numba.njit(cache=True)(_rows_cols)  # before the kernels that call it compile
    for name in ("mark", "fill", "trace", "parse_struc"):
        kernel = getattr(module, name, None)
        if kernel is not None and hasattr(kernel, "py_func"):
            setattr(module, name, numba.njit(cache=True)(kernel.py_func))
    return module


def _rows_cols(index: np.ndarray, strides: np.ndarray) -> np.ndarray:
    """(row, col) of flat indices into sknw's padded buffer (whose strides are ``strides``), minus
    the padding; numba-compiled by :func:`_sknw`."""
    out = np.zeros((len(index), len(strides)), dtype=np.int64)
    for i in range(len(index)):
        rest = index[i]
        for j in range(len(strides)):
            out[i, j] = rest // strides[j]
            rest -= out[i, j] * strides[j]
    return out - 1


def pixel_graph(skeleton: np.ndarray, offset: tuple[int, int] = (0, 0)) -> nx.Graph:
    """sknw's graph of a skeleton: nodes with their pixels (``pts``) and rounded centre (``o``),
    edges with their pixel paths (``pts``) from centre to centre; ``offset``: the (row, col) of
    the skeleton's first pixel, added to every pixel before the centres are rounded (a graph tile's
    centres then round as the uncut run's do: half-way ties go to the even pixel, local or not).

    sknw's own ``build_sknw`` labels nodes in a 16-bit copy of the image, from 10 up, so a raster
    with more than 65,525 nodes (a 100 km2 AOI in one piece) overwrote its labels and crashed the
    process; this runs the same kernels on a 32-bit copy, and rounds the centres itself (sknw
    rounds them to 16 bits)."""
    sk = _sknw()
    image = np.pad(skeleton, 1).astype(np.uint32)
    neighbours = sk.neighbors(image.shape)
    strides = np.cumprod((1,) + image.shape[::-1][:-1])[::-1]
    sk.mark(image, neighbours)
    nodes, edges = sk.parse_struc(image, neighbours, strides, True, True)
    if any(offset):
        shift = np.asarray(offset, np.int64)
        nodes = [pixels + shift for pixels in nodes]
        edges = [(start, end, pts + shift) for start, end, pts in edges]
    graph = nx.Graph()
    centres = [np.round(pixels.mean(axis=0)) for pixels in nodes]
    graph.add_nodes_from((i, {"pts": pixels, "o": centres[i]}) for i, pixels in enumerate(nodes))
    for start, end, pts in edges:  # each path runs from a pixel of node ``start`` to one of node ``end``
        pts[0], pts[-1] = centres[start], centres[end]
        graph.add_edge(start, end, pts=pts)
    return graph


@dataclass(frozen=True)
class GraphParams:
    threshold: float = 0.5
    min_blob_m2: float = 150.0  # road blobs smaller than this are noise (a car, a roof edge)
    max_hole_m2: float = 60.0  # holes smaller than this inside a road are trees or cars
    spur_m: float = 12.0  # dead-end branches shorter than this are skeleton artefacts
    min_component_m: float = 25.0  # isolated pieces shorter than this are dropped
    simplify_m: float = 1.0
    # dead ends drawn out to the edge of their blob (_extend_dead_ends): a skeleton stops half the
    # blob's width short of each end, which on wide blobs (GPS evidence) is metres of road
    extend_ends: bool = False


def road_mask(raster: ProbabilityRaster, params: GraphParams) -> np.ndarray:
    """Thresholded, cleaned boolean road mask."""
    from skimage.morphology import remove_small_holes, remove_small_objects  # here: start-up candidates runs never need

    px_area = raster.resolution[0] * raster.resolution[1]
    mask = _close(raster.prob >= params.threshold)
    mask = remove_small_holes(mask, max_size=max(1, int(params.max_hole_m2 / px_area)))
    return remove_small_objects(mask, max_size=max(1, int(params.min_blob_m2 / px_area)))


def _close(mask: np.ndarray) -> np.ndarray:
    """``ndimage.binary_closing`` by a 3 x 3 square, bit for bit (outside the raster counts as no
    road, as there), as a maximum then a minimum filter: separable, 1.4-1.8x as fast on 2240 px."""
    from scipy import ndimage

    closed = ndimage.maximum_filter(mask.view(np.uint8), size=3, mode="constant", cval=0)
    return ndimage.minimum_filter(closed, size=3, mode="constant", cval=0).view(bool)


def extract_graph(raster: ProbabilityRaster, params: GraphParams = GraphParams()) -> nx.Graph:
    """The road graph of a probability raster; empty when no road survives cleanup."""
    mask = road_mask(raster, params)
    graph = skeleton_graph(mask, raster.transform)
    clean_graph(graph, params, mask, raster)
    graph.graph["crs"] = raster.crs
    return graph


def skeleton_graph(mask: np.ndarray, transform: Affine) -> nx.Graph:
    """The graph of the mask's skeleton before any cleanup: edges are the raw pixel paths."""
    from skimage.morphology import skeletonize  # here: see road_mask

    return to_metric_graph(pixel_graph(skeletonize(mask)), transform)


def clean_graph(graph: nx.Graph, params: GraphParams, mask: np.ndarray | None = None,
                raster: ProbabilityRaster | None = None) -> None:
    """:func:`skeleton_graph`'s graph cleaned as :func:`extract_graph` cleans it, in place:
    simplified, spurs pruned, (dead ends extended: ``params.extend_ends``, which needs the
    ``mask`` and its ``raster``), small components dropped, simplified again. Shared with the
    stitching of graph tiles, so a tiled graph is cleaned by the very same steps."""
    _simplify_edges(graph, params.simplify_m)
    prune_spurs(graph, params.spur_m)
    if params.extend_ends:
        if mask is None or raster is None:
            raise ValueError("extending dead ends needs the mask and its raster")
        _extend_dead_ends(graph, mask, raster)
    drop_small_components(graph, params.min_component_m)
    _simplify_edges(graph, params.simplify_m)  # again: chains merged by pruning join simplified pieces


def _simplify_edges(graph: nx.Graph, tolerance_m: float) -> None:
    """Edge geometries simplified, lengths remeasured. Done before spurs and components are judged
    by length: a staircase of skeleton pixels is longer than the road it follows, and a tiled run
    stitches simplified pieces, so measuring raw pixel paths here let a spur of 11.4 m (12.1 m of
    pixels) survive uncut and not tiled. All edges in one call to GEOS (one call per edge was a
    tenth of a large diff's graph extraction)."""
    edges = [data for _, _, data in graph.edges(data=True)]
    if not edges:
        return
    geoms = shapely.simplify(np.array([data["geometry"] for data in edges], dtype=object), tolerance_m)
    for data, geom, length in zip(edges, geoms, shapely.length(geoms).tolist()):
        data["geometry"], data["length"] = geom, length


def _extend_dead_ends(graph: nx.Graph, mask: np.ndarray, raster: ProbabilityRaster) -> None:
    """Each dead end carried on in its edge's heading to where its blob ends, in place.

    A skeleton ends half the blob's width inside it: 2 m on a road drawn by a model, 10-15 m on
    the 20-30 m wide blob that GPS evidence of a short busy block makes, whose 55 m then left a
    28 m skeleton, under the smallest component kept. An end goes at most as far as its edge was
    long, so a blob must already show a direction (at least 1.5x as long as wide to be drawn
    whole) and a round one stays the stub it was."""
    px = float(abs(raster.transform.a))
    inverse = ~raster.transform
    rows, cols = mask.shape
    reach_of = {frozenset((u, v)): d["length"] for u, v, d in graph.edges(data=True)}  # before any end moves
    for node in [n for n in graph.nodes if graph.degree(n) == 1]:
        (other,) = graph.neighbors(node)
        data = graph.edges[node, other]
        coords = np.asarray(data["geometry"].coords, float)
        starts_here = _starts_at(data["geometry"], graph.nodes[node])
        path = coords[::-1] if starts_here else coords  # ends at ``node``
        line = LineString(path)
        back = line.interpolate(max(0.0, line.length - 5 * px))  # over a jog of the skeleton
        heading = path[-1] - np.asarray(back.coords[0])
        norm = float(np.hypot(*heading))
        if norm == 0:
            continue
        heading /= norm
        limit = reach_of[frozenset((node, other))]
        reach = 0.0
        while reach + px / 2 <= limit:
            col, row = inverse @ tuple(path[-1] + (reach + px / 2) * heading)
            r, c = int(np.floor(row)), int(np.floor(col))
            if not (0 <= r < rows and 0 <= c < cols and mask[r, c]):
                break
            reach += px / 2
        if reach <= 0:
            continue
        end = path[-1] + reach * heading
        path = np.vstack([path, end])
        geom = LineString(path[::-1] if starts_here else path)
        graph.nodes[node].update(x=float(end[0]), y=float(end[1]))
        data.update(geometry=geom, length=geom.length)


def to_metric_graph(pixel_graph: nx.Graph, t: Affine) -> nx.Graph:
    """sknw's (row, col) pixel graph -> graph with metric coordinates (by the transform ``t``) and
    edge geometries.

    Every pixel goes through the transform in one array and every line is built in one call (per
    edge, this was a quarter of a large diff's graph extraction)."""

    def to_xy(rc: np.ndarray) -> np.ndarray:
        rows, cols = rc[:, 0] + 0.5, rc[:, 1] + 0.5
        return np.column_stack([t.c + cols * t.a + rows * t.b, t.f + cols * t.d + rows * t.e])

    graph = nx.Graph()
    names = list(pixel_graph.nodes)
    centre = {n: np.asarray(pixel_graph.nodes[n]["o"], float).reshape(2) for n in names}
    node_xy = to_xy(np.array([centre[n] for n in names]).reshape(-1, 2)).tolist()
    graph.add_nodes_from((n, {"x": x, "y": y}) for n, (x, y) in zip(names, node_xy))
    # a skeleton loop on one node (u == v) is a roundabout blob, kept only through its other edges
    edges = [(u, v, np.asarray(data["pts"], float).reshape(-1, 2))
             for u, v, data in pixel_graph.edges(data=True) if u != v]
    if not edges:
        return graph
    paths = []
    for u, v, pts in edges:
        start, end = centre[u], centre[v]
        if len(pts) and np.hypot(*(pts[0] - end)) < np.hypot(*(pts[0] - start)):
            pts = pts[::-1]
        paths.append(np.vstack([start, pts, end]))
    owner = np.repeat(np.arange(len(paths)), [len(p) for p in paths])
    geoms = shapely.linestrings(to_xy(np.concatenate(paths)), indices=owner)
    graph.add_edges_from((u, v, {"geometry": geom, "length": length})
                         for (u, v, _), geom, length in zip(edges, geoms, shapely.length(geoms).tolist()))
    return graph


def prune_spurs(graph: nx.Graph, spur_m: float) -> None:
    """Remove short dead-end edges hanging off junctions, repeatedly, in place."""
    changed = True
    while changed:
        changed = False
        for u, v, data in list(graph.edges(data=True)):
            if data["length"] >= spur_m:
                continue
            du, dv = graph.degree(u), graph.degree(v)
            if (du == 1 and dv >= 3) or (dv == 1 and du >= 3):
                graph.remove_edge(u, v)
                graph.remove_nodes_from([n for n in (u, v) if graph.degree(n) == 0])
                changed = True
        changed = _merge_degree_two(graph) or changed


def _merge_degree_two(graph: nx.Graph) -> bool:
    """Join the two edges at every node of degree 2 into one (pruning leaves such nodes)."""
    merged = False
    for n in [n for n in graph.nodes if graph.degree(n) == 2]:
        if n not in graph or graph.degree(n) != 2:
            continue
        (a, ga), (b, gb) = [(m, graph.edges[n, m]["geometry"]) for m in graph.neighbors(n)]
        if a == b or graph.has_edge(a, b):
            continue
        geom = LineString(np.vstack([_coords_from(ga, graph.nodes[a]), _coords_from(gb, graph.nodes[n])[1:]]))
        graph.remove_node(n)
        graph.add_edge(a, b, geometry=geom, length=geom.length)
        merged = True
    return merged


def _coords_from(line: LineString, node: dict) -> np.ndarray:
    """The line's coordinates, from its end at ``node``."""
    coords = shapely.get_coordinates(line)
    return coords if _starts_near(coords, node) else coords[::-1]


def _starts_at(line: LineString, node: dict) -> bool:
    return _starts_near(shapely.get_coordinates(line), node)


def _starts_near(coords: np.ndarray, node: dict) -> bool:
    """Whether ``coords`` start at ``node``: nearer it than they end."""
    (x, y), (xe, ye) = coords[0].tolist(), coords[-1].tolist()
    return (x - node["x"]) ** 2 + (y - node["y"]) ** 2 <= (xe - node["x"]) ** 2 + (ye - node["y"]) ** 2


def drop_small_components(graph: nx.Graph, min_length_m: float) -> None:
    """Remove the components shorter than ``min_length_m`` in all, in place (their lengths summed
    in one pass over the edges: a view of each component took a second at 100 km2)."""
    components = list(nx.connected_components(graph))
    label = {n: i for i, comp in enumerate(components) for n in comp}
    length = [0.0] * len(components)
    for u, _, d in graph.edges(data=True):
        length[label[u]] += d["length"]
    graph.remove_nodes_from([n for comp, total in zip(components, length) if total < min_length_m for n in comp])


def graph_length_m(graph: nx.Graph) -> float:
    return float(sum(d["length"] for _, _, d in graph.edges(data=True)))


def graph_length_within_m(graph: nx.Graph, area: BaseGeometry) -> float:
    """Metres of the graph's edges inside ``area`` (in the graph's CRS): a graph extracted with
    context around an area counts only the area's roads."""
    lines = np.asarray([d["geometry"] for _, _, d in graph.edges(data=True)], dtype=object)
    return float(shapely.length(shapely.intersection(lines, area)).sum()) if len(lines) else 0.0
