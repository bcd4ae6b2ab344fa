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
from osmgap.graph.skeleton import GraphParams, drop_small_components, extract_graph, prune_spurs

SEAM_SNAP_M = 2.0  # seam ends of neighbouring tiles closer than this are one node (simplify_m < this)
ON_SEAM_M = 1e-6


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
    """The parts of the graph's edges inside the tile's core (cut where they leave it)."""
    geoms = np.asarray([d["geometry"] for _, _, d in graph.edges(data=True)], dtype=object)
    if not len(geoms):
        return []
    parts = shapely.get_parts(shapely.intersection(geoms, core))
    keep = (shapely.get_type_id(parts) == 1) & (shapely.length(parts) > 0)
    return list(parts[keep])


def tile_pieces(prob: np.ndarray, grid: Grid, tile: Tile, params: GraphParams) -> list[LineString]:
    """The road pieces inside ``tile``'s core, from the graph of its region (``prob``: the
    probabilities over ``tile.region``)."""
    region = window_grid(grid, tile.region)
    graph = extract_graph(ProbabilityRaster(prob, region.transform, region.crs), params)
    return core_pieces(graph, window_box(grid, tile.core))


def tiled_graph(read: Callable[[tuple[int, int, int, int]], np.ndarray], grid: Grid, params: GraphParams,
                tile_px: int, margin_px: int) -> nx.Graph:
    """The road graph of a raster too large to hold whole, extracted tile by tile in this process
    (``read``: a region's probabilities) and stitched."""
    return stitch(((tile, tile_pieces(read(tile.region), grid, tile, params))
                   for tile in plan_tiles(grid, tile_px, margin_px)), grid, params)


def stitch(tile_lines: Iterable[tuple[Tile, list[LineString]]], grid: Grid,
           params: GraphParams = GraphParams()) -> nx.Graph:
    """One road graph from the tiles' core pieces.

    Ends of pieces that lie on an inner seam are joined to the nearest seam end of a
    neighbouring tile within SEAM_SNAP_M; other ends are nodes where they coincide (they
    came from one node of one tile's graph). Then, as in osmgap.graph.skeleton, spurs are pruned, chains
    of two-edge nodes merged and small components dropped, so a seam leaves no mark.
    """
    seam_x: set[float] = set()
    seam_y: set[float] = set()
    lines: list[tuple[int, LineString]] = []
    for n, (tile, pieces) in enumerate(tile_lines):
        cb = window_box(grid, tile.core).bounds
        full = window_box(grid, (0, 0, grid.height, grid.width)).bounds
        seam_x.update(x for x in (cb[0], cb[2]) if full[0] < x < full[2])
        seam_y.update(y for y in (cb[1], cb[3]) if full[1] < y < full[3])
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
    xy[first_last] = [coords[int(n)] for n in node_of]  # each piece's ends moved onto its nodes
    geoms = shapely.linestrings(xy, indices=piece)
    for i, geom in enumerate(geoms):
        u, v = int(node_of[2 * i]), int(node_of[2 * i + 1])
        if u == v:
            continue
        if graph.has_edge(u, v):  # a second way between the same two nodes: keep it through a midpoint
            mid = max(coords) + 1
            x, y = geom.interpolate(0.5, normalized=True).coords[0]
            coords[mid] = (x, y)
            graph.add_node(mid, x=x, y=y)
            for a, b, part in ((u, mid, substring(geom, 0, 0.5, True)), (mid, v, substring(geom, 0.5, 1, True))):
                graph.add_edge(a, b, geometry=part, length=part.length)
            continue
        for node in (u, v):
            graph.add_node(node, x=coords[node][0], y=coords[node][1])
        graph.add_edge(u, v, geometry=geom, length=geom.length)
    prune_spurs(graph, params.spur_m)
    drop_small_components(graph, params.min_component_m)
    return graph


def _node_coords(ends: np.ndarray, node_of: np.ndarray, on_seam: np.ndarray) -> dict[int, tuple[float, float]]:
    """Each stitched node's position: the mean of its ends that are a tile's own node (a junction
    stays where it is; seam cuts move to it), else of all its ends. Grouped in one pass: a loop over
    the nodes, each comparing against every end, took 8.7 s of a 100 km2 run."""
    nodes, group = np.unique(node_of, return_inverse=True)
    inner = (~on_seam).astype(float)

    def sums(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n, x, y = (np.bincount(group, weights=w, minlength=len(nodes))
                   for w in (weight, ends[:, 0] * weight, ends[:, 1] * weight))
        return n, x, y

    (n_in, x_in, y_in), (n_all, x_all, y_all) = sums(inner), sums(np.ones(len(ends)))
    use_inner = n_in > 0
    x = np.where(use_inner, x_in / np.maximum(n_in, 1), x_all / n_all)
    y = np.where(use_inner, y_in / np.maximum(n_in, 1), y_all / n_all)
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
    """A node number per piece end: equal coordinates share one; seam ends also join ends of
    other tiles within SEAM_SNAP_M (connected components of the close pairs), whether or not
    those lie on the seam too: a junction just inside a neighbour's core is where the seam
    pieces end, and kept apart it would leave a split junction with a sub-metre loop."""
    node, count = _rounded_keys(ends)
    pairs = np.asarray(sorted(cKDTree(ends).query_pairs(SEAM_SNAP_M)) if len(ends) > 1 else [], int).reshape(-1, 2)
    pairs = pairs[(on_seam[pairs[:, 0]] | on_seam[pairs[:, 1]]) & (owner[pairs[:, 0]] != owner[pairs[:, 1]])]
    links = coo_matrix((np.ones(len(pairs)), (node[pairs[:, 0]], node[pairs[:, 1]])), shape=(count, count))
    _, label = connected_components(links, directed=False)
    return label[node]
