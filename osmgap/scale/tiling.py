"""Cut a large analysis grid into tiles, and stitch the tiles' road graphs back.

Why tiles: a country does not fit in memory as one raster. Two kinds of tile keep a tiled run
equal to an uncut one, with no work done twice:

1. Model tiles (:class:`WindowTile`, :func:`plan_window_tiles`): each takes a block of the uncut
   run's sliding windows (the same origins, blend weights and forward pass,
   :func:`osmgap.model.infer.accumulate_windows`), every window in exactly one tile, and returns
   the blend-weighted sum of its windows and the sum of their weights over the windows' extent.
   Neighbouring extents overlap by the window overlap; adding the sums there and dividing gives
   every pixel the value the uncut run gives it. Tile borders follow the window stride, so no
   window runs twice (a tile that owned pixels, not windows, re-ran every window reaching into
   its margin: 1.4x the windows at 2048 px tiles, 5.5x at 512 px).
2. Graph tiles (:class:`Tile`, :func:`plan_tiles`): a *core* (the pixels it owns) plus a *margin*
   of context on every side, cut from the assembled probabilities. Each extracts its graph over
   core + margin (so skeleton and cleanup near a seam see the same mask as the uncut run), keeps
   only the pieces inside its core, and :func:`stitch` joins the pieces that meet on a seam, so a
   road crossing a tile border is one edge again (and one suggestion). Stitching works on graphs,
   never on rasters.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import networkx as nx
import numpy as np
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree
from shapely.geometry import LineString, box
from shapely.ops import substring

from osmgap.core.datamodel import ProbabilityRaster
from osmgap.core.grid import Grid, window_grid
from osmgap.core.segments import point_groups
from osmgap.graph.skeleton import (
    GraphParams,
    _coords_from,
    _starts_at,
    clean_graph,
    drop_small_components,
    extract_graph,
    pixel_graph,
    prune_spurs,
    road_mask,
    to_metric_graph,
)

SEAM_SNAP_M = 2.0  # seam ends of neighbouring tiles closer than this are one node (simplify_m < this)
ON_SEAM_M = 1e-6
CUT_MATCH_M = 1e-6  # two tiles' cuts of one segment: the same point but for float rounding (~1e-9 m)


@dataclass(frozen=True)
class Tile:
    """One tile: its core (owned pixels) and its region (core + margin), as
    (row0, col0, row1, col1) half-open windows of the analysis grid."""

    row: int
    col: int
    core: tuple[int, int, int, int]
    region: tuple[int, int, int, int]

    @property
    def key(self) -> str:
        return f"r{self.row:05d}_c{self.col:05d}"


def plan_tiles(grid: Grid, tile_px: int, margin_px: int) -> list[Tile]:
    """Tiles of ``tile_px`` core pixels a side (the last ones smaller) covering ``grid``, row-major."""
    tile_px = max(1, int(tile_px))
    rows = list(range(0, grid.height, tile_px))
    cols = list(range(0, grid.width, tile_px))
    tiles = []
    for i, r0 in enumerate(rows):
        for j, c0 in enumerate(cols):
            r1, c1 = min(r0 + tile_px, grid.height), min(c0 + tile_px, grid.width)
            region = (max(0, r0 - margin_px), max(0, c0 - margin_px),
                      min(grid.height, r1 + margin_px), min(grid.width, c1 + margin_px))
            tiles.append(Tile(i, j, (r0, c0, r1, c1), region))
    return tiles


@dataclass(frozen=True)
class WindowTile:
    """One model tile: the origins of its sliding windows (rows x cols) and their extent, the
    (row0, col0, row1, col1) window of the analysis grid they cover."""

    row: int
    col: int
    rows: tuple[int, ...]
    cols: tuple[int, ...]
    extent: tuple[int, int, int, int]

    @property
    def key(self) -> str:
        return f"r{self.row:05d}_c{self.col:05d}"

    @property
    def origins(self) -> list[tuple[int, int]]:
        return [(r, c) for r in self.rows for c in self.cols]


def plan_window_tiles(grid: Grid, tile_px: int, window: int, overlap: int) -> list[WindowTile]:
    """The uncut run's sliding windows (``window`` px, ``overlap`` px, as
    :func:`osmgap.model.infer.window_size` shrinks them for a small grid) dealt into blocks of about
    ``tile_px`` pixels a side, row-major: each window in exactly one tile."""
    from osmgap.model.infer import tile_origins, window_size

    window, overlap = window_size(grid.height, grid.width, window, overlap)
    per = max(1, round(tile_px / max(1, window - overlap)))  # windows per tile side
    rows, cols = tile_origins(grid.height, window, overlap), tile_origins(grid.width, window, overlap)
    tiles = []
    for i in range(0, len(rows), per):
        for j in range(0, len(cols), per):
            rs, cs = tuple(rows[i:i + per]), tuple(cols[j:j + per])
            extent = (rs[0], cs[0], min(grid.height, rs[-1] + window), min(grid.width, cs[-1] + window))
            tiles.append(WindowTile(i // per, j // per, rs, cs, extent))
    return tiles


def window_box(grid: Grid, window: tuple[int, int, int, int]) -> shapely.Polygon:
    """The window's footprint in the grid's CRS."""
    r0, c0, r1, c1 = window
    x0, y0 = grid.transform @ (c0, r1)
    x1, y1 = grid.transform @ (c1, r0)
    return box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


def core_pieces(graph: nx.Graph, core: shapely.Polygon) -> list[LineString]:
    """The parts of the graph's edges inside the tile's core, cut where they leave it. Clipped to
    the rectangle, not intersected: an overlay drops repeated vertices and splits a line where it
    touches itself, and a raw pixel path must come back whole, vertex for vertex."""
    geoms = np.asarray([d["geometry"] for _, _, d in graph.edges(data=True)], dtype=object)
    if not len(geoms):
        return []
    parts = shapely.get_parts(shapely.clip_by_rect(geoms, *core.bounds))
    keep = (shapely.get_type_id(parts) == 1) & (shapely.length(parts) > 0)
    return list(parts[keep])


class TilePieces(list[LineString]):
    """A graph tile's raw pieces (a list of them, as any tile's) and, per piece end at a skeleton
    node (not a cut), the keys of sknw's order: ``ends[i, k]`` = (node's first pixel row, col, the
    pixel its edge was traced from row, col, the neighbour's index), in global pixels; -1 at a cut."""

    def __init__(self, lines: Iterable[LineString], ends: np.ndarray):
        super().__init__(lines)
        self.ends = ends  # (len(self), 2, 5) int64


NEIGHBOURS = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]  # sknw's order


def tile_pieces(prob: np.ndarray, grid: Grid, tile: Tile, params: GraphParams) -> list[LineString]:
    """The road pieces inside ``tile``'s core, from the graph of its region (``prob``: the
    probabilities over ``tile.region``).

    The pieces are the skeleton's raw pixel paths, placed by the whole grid's transform: simplified
    or pruned here, each tile simplified its own cut of a line (Douglas-Peucker keeps different
    vertices for a different stretch), and the stitched graph kept other vertices than the uncut
    run's, to which conflation reacts (6 x 6 Paris mosaic, 224 px tiles: 94 suggestions, not 93).
    :func:`stitch` cleans the joined lines as :func:`osmgap.graph.skeleton.extract_graph` does, in
    the uncut graph's order of nodes and edges (pruning and merging depend on it), which the keys
    give. Where dead ends are extended (which needs the tile's mask), the tile cleans its own graph."""
    region = window_grid(grid, tile.region)
    raster = ProbabilityRaster(prob, region.transform, region.crs)
    if params.extend_ends:
        return core_pieces(extract_graph(raster, params), window_box(grid, tile.core))
    from skimage.morphology import skeletonize

    skeleton = skeletonize(road_mask(raster, params))
    offset = np.asarray(tile.region[:2], np.int64)
    pixels = pixel_graph(skeleton, tile.region[:2])
    graph = to_metric_graph(pixels, grid.transform)
    padded = np.pad(skeleton, 1).astype(np.uint8)
    count = sum(np.roll(padded, (-dr, -dc), (0, 1)) for dr, dc in NEIGHBOURS)
    node_pixel = np.pad(padded.astype(bool) & (count != 2), 1)  # sknw's mark(); 2 px of padding: no bounds checks

    def end_key(node: int, edge_pixel: np.ndarray) -> list[int]:
        r, c = (edge_pixel - offset).tolist()
        first = min(map(tuple, pixels.nodes[node]["pts"].tolist()))
        traced = min((r + dr - 1, c + dc - 1, NEIGHBOURS.index((-dr + 1, -dc + 1)))
                     for dr in range(3) for dc in range(3) if (dr, dc) != (1, 1) and node_pixel[r + dr + 1, c + dc + 1])
        return [*first, traced[0] + int(offset[0]), traced[1] + int(offset[1]), traced[2]]

    geoms, keys = [], []
    for u, v, data in graph.edges(data=True):
        pts = pixels.edges[u, v]["pts"]
        start, end = (u, v) if _starts_at(data["geometry"], graph.nodes[u]) else (v, u)
        near_start = np.abs(pts[1] - pixels.nodes[start]["pts"]).max(axis=1).min() <= 1
        first_px, last_px = (pts[1], pts[-2]) if near_start else (pts[-2], pts[1])
        geoms.append(data["geometry"])
        keys.append([end_key(start, first_px), end_key(end, last_px)])
    if not geoms:
        return TilePieces([], np.zeros((0, 2, 5), np.int64))
    whole = np.asarray(geoms, dtype=object)
    parts, index = shapely.get_parts(shapely.clip_by_rect(whole, *window_box(grid, tile.core).bounds), return_index=True)
    keep = (shapely.get_type_id(parts) == 1) & (shapely.length(parts) > 0)
    parts, index = parts[keep], index[keep]
    ends = np.full((len(parts), 2, 5), -1, np.int64)
    key = np.asarray(keys, np.int64)
    for k, (at, whole_at) in enumerate(((0, 0), (-1, -1))):
        same = np.all(shapely.get_coordinates(shapely.get_point(parts, at))
                      == shapely.get_coordinates(shapely.get_point(whole[index], whole_at)), axis=1)
        ends[same, k] = key[index[same], k]
    return TilePieces(list(parts), ends)


def tiled_graph(read: Callable[[tuple[int, int, int, int]], np.ndarray], grid: Grid, params: GraphParams,
                tile_px: int, margin_px: int) -> nx.Graph:
    """The road graph of a raster too large to hold whole, extracted tile by tile in this process
    (``read``: a region's probabilities) and stitched."""
    return stitch(((tile, tile_pieces(read(tile.region), grid, tile, params))
                   for tile in plan_tiles(grid, tile_px, margin_px)), grid, params)


def stitch(tile_lines: Iterable[tuple[Tile, list[LineString]]], grid: Grid,
           params: GraphParams = GraphParams()) -> nx.Graph:
    """One road graph from the tiles' core pieces (:func:`tile_pieces`).

    A seam end is joined to the other tile's end of the same cut (within CUT_MATCH_M: both tiles
    cut the same segment); one that has none, to the nearest seam end of a neighbouring tile within
    SEAM_SNAP_M. Other ends are nodes where they coincide (they came from one node of one tile's
    graph). Lines cut by seams are joined back with the cut points left out (:func:`_join_cuts`),
    so raw pieces give back the uncut run's pixel paths, which are then cleaned as
    osmgap.graph.skeleton cleans them (simplified, spurs pruned, small components dropped,
    simplified again) in the uncut graph's order (:func:`_in_sknw_order`, where the tiles gave
    :class:`TilePieces`): the uncut run's edges, vertex for vertex, and a seam leaves no mark.
    """
    seam_x: set[float] = set()
    seam_y: set[float] = set()
    lines: list[tuple[int, LineString]] = []
    keyed: list[np.ndarray] = []
    for n, (tile, pieces) in enumerate(tile_lines):
        cb = window_box(grid, tile.core).bounds
        full = window_box(grid, (0, 0, grid.height, grid.width)).bounds
        seam_x.update(x for x in (cb[0], cb[2]) if full[0] < x < full[2])
        seam_y.update(y for y in (cb[1], cb[3]) if full[1] < y < full[3])
        if isinstance(pieces, TilePieces):
            keyed.append(pieces.ends)
        else:
            keyed.append(np.full((len(pieces), 2, 5), -1, np.int64))
        lines += [(n, line) for line in pieces]
    graph = nx.Graph(crs=grid.crs)
    if not lines:
        return graph
    # every piece's coordinates in one array (per piece, this was most of the stitching's time)
    xy, piece = shapely.get_coordinates(np.array([line for _, line in lines], dtype=object), return_index=True)
    count = np.bincount(piece, minlength=len(lines))
    first_last = np.column_stack([np.cumsum(count) - count, np.cumsum(count) - 1]).ravel()
    ends = xy[first_last]
    owner = np.repeat([n for n, _ in lines], 2)
    on_seam = _near_any(ends[:, 0], seam_x) | _near_any(ends[:, 1], seam_y)
    node_of = _seam_clusters(ends, owner, on_seam)
    coords = _node_coords(ends, node_of, on_seam)
    cuts = set(np.unique(node_of[on_seam]).tolist()) - set(np.unique(node_of[~on_seam]).tolist())
    xy[first_last] = [coords[int(n)] for n in node_of]  # each piece's ends moved onto its nodes
    geoms = shapely.linestrings(xy, indices=piece)
    end_keys = np.concatenate(keyed).reshape(-1, 5)
    node_key = {int(n): tuple(k[:2]) for n, k in zip(node_of, end_keys.tolist()) if k[0] >= 0}
    for i, geom in enumerate(geoms):
        u, v = int(node_of[2 * i]), int(node_of[2 * i + 1])
        if u == v:
            continue
        for node in (u, v):
            graph.add_node(node, x=coords[node][0], y=coords[node][1])
        traced = {n: tuple(k[2:]) for n, k in ((u, end_keys[2 * i].tolist()), (v, end_keys[2 * i + 1].tolist()))
                  if k[0] >= 0}
        if graph.has_edge(u, v):  # a second way between the same two nodes: keep it through a midpoint
            _add_through_midpoint(graph, u, v, geom)
            continue
        graph.add_edge(u, v, geometry=geom, length=geom.length, traced=traced)
    _join_cuts(graph, cuts)
    if node_key and all(n in node_key for n in graph) and all(len(d.get("traced", ())) == 2
                                                              for *_, d in graph.edges(data=True)):
        graph = _in_sknw_order(graph, node_key)  # else (pieces without keys, a doubled edge) as stitched
    for _, _, d in graph.edges(data=True):
        d.pop("traced", None)
    if params.extend_ends:  # the tiles cleaned and extended their own graphs (osmgap.scale.tiling.tile_pieces)
        prune_spurs(graph, params.spur_m)
        drop_small_components(graph, params.min_component_m)
    else:
        clean_graph(graph, params)
    return graph


def _add_through_midpoint(graph: nx.Graph, u: int, v: int, geom: LineString) -> None:
    """An edge ``geom`` from ``u`` to ``v`` beside the one there already, through a node at its
    middle (a graph holds one edge per pair of nodes)."""
    mid = max(graph.nodes) + 1
    x, y = geom.interpolate(0.5, normalized=True).coords[0]
    graph.add_node(mid, x=x, y=y)
    for a, b, part in ((u, mid, substring(geom, 0, 0.5, True)), (mid, v, substring(geom, 0.5, 1, True))):
        graph.add_edge(a, b, geometry=part, length=part.length)


def _join_cuts(graph: nx.Graph, cuts: set[int]) -> None:
    """Each chain of pieces through seam cuts (nodes of ``cuts`` with two edges) made one edge
    again, in place, the cut points left out: a cut adds a vertex on a segment of the uncut line,
    which simplification would keep. A chain closing on itself is dropped, as the uncut run drops
    a skeleton loop on one node (osmgap.graph.skeleton.to_metric_graph)."""
    for start in sorted(cuts):
        if start not in graph or graph.degree(start) != 2:
            continue
        chain, ends, paths, traced = [start], [], [], []
        for first in list(graph.neighbors(start)):  # walk both ways to the chain's ends
            prev, node, path = start, first, [_coords_from(graph.edges[start, first]["geometry"], graph.nodes[start])]
            while node in cuts and graph.degree(node) == 2 and node != start:
                chain.append(node)
                (nxt,) = [m for m in graph.neighbors(node) if m != prev] or [prev]
                path.append(_coords_from(graph.edges[node, nxt]["geometry"], graph.nodes[node]))
                prev, node = node, nxt
            traced.append(graph.edges[prev, node].get("traced", {}))
            ends.append(node)
            paths.append(path)
            if node == start:  # a ring of cuts only
                break
        graph.remove_nodes_from(chain)
        if len(ends) < 2 or ends[0] == ends[1]:
            continue  # a loop: dropped
        # from ends[0] back to start, then on to ends[1]; each cut point appears as the end of one
        # piece and the start of the next: both left out
        back = [p[::-1] for p in paths[0][::-1]]
        parts = back + paths[1]
        line = LineString(np.vstack([parts[0][:-1]] + [p[1:-1] for p in parts[1:-1]] + [parts[-1][1:]]))
        if graph.has_edge(ends[0], ends[1]):
            _add_through_midpoint(graph, ends[0], ends[1], line)
        else:
            graph.add_edge(ends[0], ends[1], geometry=line, length=line.length, traced={**traced[0], **traced[1]})


def _in_sknw_order(graph: nx.Graph, node_key: dict[int, tuple[int, ...]]) -> nx.Graph:
    """The stitched graph rebuilt in the order the uncut run's graph has (osmgap.graph.skeleton
    .pixel_graph, to_metric_graph): nodes by their first pixel in scan order, each edge running
    from its earlier node, added node by node in the order sknw traced them. Spur pruning and
    merging follow that order (of two spurs at a junction, the first is cut; a merged line runs
    as its first edge does), and simplification the direction of lines: in another order 2 of
    277 edges of the 6 x 6 Paris mosaic kept other vertices."""
    order = sorted(graph.nodes, key=node_key.__getitem__)
    rank = {n: i for i, n in enumerate(order)}
    out = nx.Graph(**graph.graph)
    out.add_nodes_from((n, graph.nodes[n]) for n in order)
    for n in order:
        later = [m for m in graph.neighbors(n) if rank[m] > rank[n]]
        for m in sorted(later, key=lambda m: min(graph.edges[n, m]["traced"].values())):
            data = dict(graph.edges[n, m])
            line = LineString(_coords_from(data["geometry"], graph.nodes[n]))
            out.add_edge(n, m, **{**data, "geometry": line})
    return out


def _node_coords(ends: np.ndarray, node_of: np.ndarray, on_seam: np.ndarray) -> dict[int, tuple[float, float]]:
    """Each stitched node's position: the mean of its ends that are a tile's own node (a junction
    stays where it is; seam cuts move to it), else of all its ends. Grouped in one pass: a loop over
    the nodes, each comparing against every end, took 8.7 s of a 100 km2 run. Averaged as offsets
    from one of the ends it averages, so ends that are one point give that point bit for bit (a
    mean of three equal coordinates is not always that coordinate: 1 ulp moved a node, and the
    uncut run's vertices are the goal)."""
    nodes, group = np.unique(node_of, return_inverse=True)
    inner = (~on_seam).astype(float)
    order = np.lexsort((on_seam, group))  # per node its ends, its own (not a cut) first
    ref = ends[order[np.searchsorted(group[order], np.arange(len(nodes)))]]
    offset = ends - ref[group]

    def sums(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n, x, y = (np.bincount(group, weights=w, minlength=len(nodes))
                   for w in (weight, offset[:, 0] * weight, offset[:, 1] * weight))
        return n, x, y

    (n_in, x_in, y_in), (n_all, x_all, y_all) = sums(inner), sums(np.ones(len(ends)))
    use_inner = n_in > 0
    x = ref[:, 0] + np.where(use_inner, x_in / np.maximum(n_in, 1), x_all / n_all)
    y = ref[:, 1] + np.where(use_inner, y_in / np.maximum(n_in, 1), y_all / n_all)
    return {int(n): (float(a), float(b)) for n, a, b in zip(nodes, x, y)}


def _near_any(values: np.ndarray, lines: set[float]) -> np.ndarray:
    """Per value: within ON_SEAM_M of one of ``lines`` (the nearest found by binary search)."""
    if not lines:
        return np.zeros(len(values), bool)
    s = np.asarray(sorted(lines))
    i = np.searchsorted(s, values)
    below, above = s[np.clip(i - 1, 0, len(s) - 1)], s[np.clip(i, 0, len(s) - 1)]
    return np.minimum(np.abs(values - below), np.abs(values - above)) <= ON_SEAM_M


def _rounded_keys(xy: np.ndarray) -> tuple[np.ndarray, int]:
    """Per point, a number shared by the points equal to 6 decimals, numbered in order of first
    appearance, and how many there are: what a dict of rounded tuples gives, without a Python
    call per point (0.6 s at 100 km2)."""
    group, first = point_groups(*np.round(xy, 6).T)
    rank = np.empty(len(first), int)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[group], len(first)


def _seam_clusters(ends: np.ndarray, owner: np.ndarray, on_seam: np.ndarray) -> np.ndarray:
    """A node number per piece end: equal coordinates share one; a seam end joins the other tile's
    end of the same cut (within CUT_MATCH_M, both on a seam) and, when it has none, ends of other
    tiles within SEAM_SNAP_M (connected components of the close pairs), whether or not those lie
    on the seam too: a junction just inside a neighbour's core is where such pieces end, and kept
    apart it would leave a split junction with a sub-metre loop. A cut's own partner comes first:
    snapped to a junction a pixel or two away as well, the line lost its pixels up to the seam."""
    node, count = _rounded_keys(ends)
    pairs = np.asarray(sorted(cKDTree(ends).query_pairs(SEAM_SNAP_M)) if len(ends) > 1 else [], int).reshape(-1, 2)
    pairs = pairs[(on_seam[pairs[:, 0]] | on_seam[pairs[:, 1]]) & (owner[pairs[:, 0]] != owner[pairs[:, 1]])]
    exact = (on_seam[pairs[:, 0]] & on_seam[pairs[:, 1]]
             & (np.hypot(*(ends[pairs[:, 0]] - ends[pairs[:, 1]]).T) <= CUT_MATCH_M))
    matched = np.zeros(len(ends), bool)
    matched[pairs[exact].ravel()] = True
    pairs = pairs[exact | ~(matched[pairs[:, 0]] | matched[pairs[:, 1]])]
    links = coo_matrix((np.ones(len(pairs)), (node[pairs[:, 0]], node[pairs[:, 1]])), shape=(count, count))
    _, label = connected_components(links, directed=False)
    return label[node]
