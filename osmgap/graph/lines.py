"""Road lines from any source -> a road graph like the one imagery gives (osmgap.graph.skeleton).

Sources cut roads anywhere: at tile borders, at every attribute change, never at a junction, or
with an end that stops a few centimetres short of the road it joins. Conflation wants one edge
per stretch of road between junctions, so lines are split where they share a vertex with
another line or where another line's loose end touches them (T-junctions), and joined where
exactly two meet end to end. Lines that cross without a shared vertex stay apart: in vector
road data that is a bridge or a tunnel, not a junction. Lines may say which level they lie on
(osmgap.core.osmtags.way_level: a tunnel, a bridge, a layer); an edge then carries its ``level``,
and lines on different levels are never joined into one edge. Such an edge also carries its
``level_tags``, the tunnel/bridge/layer tags of its lines (osmgap.core.osmtags.level_tags), which a
suggestion drawn from it keeps.
"""
from __future__ import annotations

import geopandas as gpd
import networkx as nx
import numpy as np
import shapely
from shapely.geometry import LineString

from osmgap.core.osmtags import level_key, way_level
from osmgap.core.segments import cut_many, label_changes, merge_pieces, weighted_majority, weighted_mean
from osmgap.sources.candidates import candidate_tags

SNAP_M = 1.0  # a loose end this close to another line joins it (a T-junction drawn imprecisely)
GRID_M = 0.001


def build_line_graph(lines: np.ndarray, confidence: np.ndarray, highway: np.ndarray, crs: object,
                     snap_m: float = SNAP_M, level: np.ndarray | None = None,
                     tags: list[dict | None] | None = None) -> nx.MultiGraph:
    """A MultiGraph (parallel edges and loops kept: two halves of a roundabout, a cul-de-sac loop)
    with ``geometry``, ``length``, ``confidence`` and ``highway`` per edge, ``x``/``y`` per node;
    ``tags`` per line (its tunnel/bridge/layer, None: not known) gives edges a ``level`` and
    ``level_tags`` where it is known; ``level`` alone (NaN: not known) a ``level``."""
    lines = np.asarray(lines, dtype=object)
    lines, splits = _snap_loose_ends(lines, snap_m)
    splits = _shared_vertices(lines, splits)
    whole = np.ones(len(lines), bool)
    spans: list[tuple[int, float, float]] = []
    for i, cuts in splits.items():
        length = lines[i].length
        bounds = [0.0, *sorted(c for c in set(cuts) if 0.0 < c < length), length]
        if len(bounds) > 2:
            whole[i] = False
            spans.extend((i, a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b - a > 1e-6)
    cut_pieces = cut_many(lines, np.asarray([sp[0] for sp in spans], int), np.asarray([sp[1] for sp in spans]),
                          np.asarray([sp[2] for sp in spans]))
    # a snapped end and the split it made are computed two ways; on a millimetre grid they are
    # the same point, which is what merging and node keys compare exactly
    gridded = shapely.set_precision(np.asarray([*lines[whole], *cut_pieces], dtype=object), GRID_M)
    owner_all = np.asarray([*np.flatnonzero(whole).tolist(), *[sp[0] for sp in spans]], int)
    real = (shapely.get_type_id(gridded) == 1) & (shapely.length(gridded) > 0)
    pieces, owner = list(gridded[real]), owner_all[real].tolist()
    graph = nx.MultiGraph(crs=crs)
    if not pieces:
        return graph
    if tags is not None:
        level = np.asarray([np.nan if t is None else way_level(t) for t in tags], float)
    levels = np.full(len(lines), np.nan) if level is None else np.asarray(level, float)
    keys = np.asarray([None if t is None else level_key(t) for t in tags] if tags is not None
                      else [None] * len(lines), dtype=object)
    labels = [f"{lv:g}" if k is None else k for lv, k in zip(levels[owner].tolist(), keys[owner].tolist())]
    kept = _once_each(pieces, labels, np.asarray(confidence, float)[owner])
    pieces, labels, owner_arr = [pieces[i] for i in kept], [labels[i] for i in kept], np.asarray(owner)[kept]
    piece_level, piece_key = levels[owner_arr], keys[owner_arr]
    apart = label_changes(pieces, labels) if not np.isnan(piece_level).all() else set()
    merged, holder = merge_pieces(pieces, apart=apart)
    edge_level = np.full(len(merged), np.nan)
    edge_key = np.full(len(merged), None, dtype=object)
    held = holder >= 0
    edge_level[holder[held]] = piece_level[held]
    edge_key[holder[held]] = piece_key[held]
    lengths = shapely.length(np.asarray(pieces, dtype=object))
    conf = weighted_mean(holder, np.asarray(confidence, float)[owner_arr], lengths, len(merged))
    hw = weighted_majority(holder, np.asarray(highway, dtype=object)[owner_arr], lengths, len(merged))
    for geom, c, h, lv, key in zip(merged, conf, hw, edge_level.tolist(), edge_key.tolist()):
        u, v = (_node(graph, geom.coords[0]), _node(graph, geom.coords[-1]))
        known = {} if np.isnan(lv) else {"level": int(lv)}
        if key is not None and not np.isnan(lv):
            known["level_tags"] = key
        graph.add_edge(u, v, geometry=geom, length=geom.length, confidence=float(c), highway=h, **known)
    return graph


def _once_each(pieces: list[LineString], labels: list[str], confidence: np.ndarray) -> np.ndarray:
    """Indices of the pieces to keep: of a stretch the source gives more than once on one level
    (tiles merged, two exports concatenated, a row repeated at a tile border), in either direction,
    the copy of highest confidence. Merged end to end, two copies made one line that runs there
    and back (A->B->A): a suggestion of twice the road's length, "Way contains segment twice" in
    JOSM. The pieces are on the millimetre grid, so copies are equal coordinates."""
    shapes = shapely.to_wkb(shapely.normalize(np.asarray(pieces, dtype=object)))
    seen: set[tuple[bytes, str]] = set()
    kept = []
    for i in np.argsort(-confidence, kind="stable").tolist():
        if (shapes[i], labels[i]) not in seen:
            seen.add((shapes[i], labels[i]))
            kept.append(i)
    return np.sort(np.asarray(kept, int))


def _node(graph: nx.MultiGraph, xy: tuple[float, ...]) -> tuple[int, int]:
    key = (round(xy[0] * 100), round(xy[1] * 100))
    if key not in graph:
        graph.add_node(key, x=float(xy[0]), y=float(xy[1]))
    return key


def _snap_loose_ends(lines: np.ndarray, snap_m: float) -> tuple[np.ndarray, dict[int, list[float]]]:
    """Move loose line ends that stop within ``snap_m`` of another line onto it; returns the
    lines and, per touched line, where along it a split is needed."""
    splits: dict[int, list[float]] = {}
    if len(lines) < 2:
        return lines, splits
    starts = shapely.get_point(lines, 0)
    ends = shapely.get_point(lines, -1)
    points = np.concatenate([starts, ends])
    owner = np.tile(np.arange(len(lines)), 2)
    coords = shapely.get_coordinates(points)
    _, inverse, counts = np.unique(np.round(coords * 100).astype(np.int64), axis=0, return_inverse=True,
                                   return_counts=True)
    loose = counts[inverse.ravel()] == 1
    tree = shapely.STRtree(lines)
    pi, li = tree.query(points[loose], predicate="dwithin", distance=snap_m)
    which = np.flatnonzero(loose)[pi]
    other = li != owner[which]
    which, li = which[other], li[other]
    if not len(which):
        return lines, splits
    dist = shapely.distance(points[which], lines[li])
    order = np.lexsort((li, dist, which))
    first = np.r_[True, which[order][1:] != which[order][:-1]]
    lines = lines.copy()
    for p, target in zip(which[order][first].tolist(), li[order][first].tolist()):
        along = lines[target].project(points[p])
        if along <= 1e-6 or along >= lines[target].length - 1e-6:
            continue  # an end meeting an end: the merge step handles it
        splits.setdefault(target, []).append(along)
        spot = lines[target].interpolate(along)
        line_i = owner[p]
        coords_i = shapely.get_coordinates(lines[line_i])  # 2D, as the snapped spot is (labels may carry Z)
        coords_i[0 if p < len(starts) else -1] = (spot.x, spot.y)
        lines[line_i] = LineString(coords_i)
    return lines, splits


def _shared_vertices(lines: np.ndarray, splits: dict[int, list[float]]) -> dict[int, list[float]]:
    """Add a split at every inner vertex that another line (or another pass of the same line)
    also has: a junction drawn as a shared vertex."""
    coords, owner = shapely.get_coordinates(lines, return_index=True)
    if not len(coords):
        return splits
    _, key = np.unique(np.round(coords * 100).astype(np.int64), axis=0, return_inverse=True)
    key = key.ravel()
    uses = np.bincount(key)
    counts = shapely.get_num_coordinates(lines)
    first = np.cumsum(counts) - counts
    position = np.arange(len(coords)) - np.repeat(first, counts)
    inner = (position > 0) & (position < np.repeat(counts, counts) - 1)
    for v in np.flatnonzero(inner & (uses[key] > 1)).tolist():
        line = lines[owner[v]]
        seg = np.asarray(line.coords)[: position[v] + 1]
        splits.setdefault(int(owner[v]), []).append(float(np.hypot(*np.diff(seg, axis=0).T).sum()))
    return splits


def candidate_graph(frame: gpd.GeoDataFrame, crs: object) -> nx.MultiGraph:
    """The road graph of candidate lines in the metric ``crs`` (see build_line_graph); the
    ``tunnel``/``bridge``/``layer`` columns, where the frame has them, give edges their level
    and level tags."""
    metric = frame.to_crs(crs)
    return build_line_graph(np.asarray(metric.geometry.values, dtype=object), metric["confidence"].to_numpy(float),
                            metric["highway"].to_numpy(object), crs, tags=candidate_tags(metric))
