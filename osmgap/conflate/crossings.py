"""misconnection: OSM ways that cross without a shared node where the evidence shows a junction.

Two roads drawn across each other with no common node are not connected for any router. That is
right for a bridge, a tunnel or a way on another layer (tagged so), and wrong otherwise, but
only the ground can tell a junction from an untagged bridge. The evidence can: a junction of
the evidence graph near the crossing, with one branch along each of the two ways. Vector road
data keeps crossing lines apart where they do not meet (osmgap.graph.lines never joins bare
crossings), so only a real junction in the source confirms one here. Evidence that says which
level it lies on (osmgap.sources.candidates) decides more: a branch in a tunnel or on a bridge
confirms no junction, and where an evidence tunnel or bridge runs along either of the two ways
at their crossing, that way passes under or over the other and no crossing is reported.
"""
from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np
import shapely
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry

from osmgap.conflate.osmindex import OsmIndex
from osmgap.conflate.params import ConflateParams

BRANCH_M = 5.0  # direction of an evidence branch: from its junction to this far along it
ALIGN_DEG = 30.0


@dataclass
class Crossing:
    point: Point
    lines: tuple[int, int]
    confidence: float


def find_misconnections(osm: OsmIndex, graph: nx.Graph, area: BaseGeometry, params: ConflateParams,
                        shift: tuple[float, float] = (0.0, 0.0)) -> list[Crossing]:
    """Unconnected OSM crossings confirmed by a junction of the evidence graph, whose
    coordinates are moved by ``shift`` (the offset correction) first."""
    points, pair = _unconnected_crossings(osm, area)
    if not len(points):
        return []
    ids = [n for n, degree in graph.degree() if degree >= 3]
    if not ids:
        return []
    xy = np.asarray([(graph.nodes[n]["x"], graph.nodes[n]["y"]) for n in ids], float) + np.asarray(shift)
    reach = max(2 * params.near_m, BRANCH_M)
    ci, ni = shapely.STRtree(shapely.points(xy)).query(shapely.points(points), predicate="dwithin", distance=reach)
    stacked = _stacked(osm, graph, points, pair, reach, shift)
    found: dict[int, float] = {}
    for c, n in zip(ci.tolist(), ni.tolist()):
        if c in found or stacked[c]:
            continue
        branches, conf = _branches(graph, ids[n], xy[n] - np.asarray(shift))
        da, db = (_direction(osm.lines[line], points[c]) for line in pair[c])
        if _branches_along(branches, da, db):
            found[c] = conf
    return [Crossing(Point(points[c]), (int(pair[c][0]), int(pair[c][1])), found[c]) for c in sorted(found)]


def _unconnected_crossings(osm: OsmIndex, area: BaseGeometry) -> tuple[np.ndarray, np.ndarray]:
    """Points where two OSM ways cross without a shared vertex; neither on its own level.
    (Ways that only touch, end to end or end on the other's side, are almost-junctions, not
    crossings: osmgap.conflate.links.)"""
    if len(osm.lines) < 2:
        return np.zeros((0, 2)), np.zeros((0, 2), int)
    i, j = osm.line_tree.query(osm.lines, predicate="crosses")
    keep = i < j
    i, j = i[keep], j[keep]
    level = np.array([osm.on_own_level(k) for k in range(len(osm.lines))], bool)
    keep = ~level[i] & ~level[j]
    i, j = i[keep], j[keep]
    parts, owner = shapely.get_parts(shapely.intersection(osm.lines[i], osm.lines[j]), return_index=True)
    is_point = shapely.get_type_id(parts) == 0
    parts, owner = parts[is_point], owner[is_point]
    xy = shapely.get_coordinates(parts)
    shared = _is_vertex(osm, i[owner], xy) & _is_vertex(osm, j[owner], xy)
    inside = shapely.contains_xy(area, xy[:, 0], xy[:, 1])
    sel = ~shared & inside
    return xy[sel], np.stack([i[owner][sel], j[owner][sel]], axis=1)


def _off_surface(data: dict) -> bool:
    """An evidence edge that says it lies in a tunnel, on a bridge or on another layer."""
    level = data.get("level")
    return level is not None and level == level and level != 0


def _stacked(osm: OsmIndex, graph: nx.Graph, points: np.ndarray, pair: np.ndarray, reach: float,
             shift: tuple[float, float]) -> np.ndarray:
    """Per crossing: whether an evidence line off the surface (a tunnel, a bridge) passes within
    ``reach`` of it along one of its two ways, i.e. the evidence says that way is not at grade."""
    out = np.zeros(len(points), bool)
    lines = [d["geometry"] for _, _, d in graph.edges(data=True) if _off_surface(d)]
    if not lines:
        return out
    geoms = shapely.transform(np.asarray(lines, dtype=object), lambda xy: xy + np.asarray(shift))
    ci, li = shapely.STRtree(geoms).query(shapely.points(points), predicate="dwithin", distance=reach)
    for c, k in zip(ci.tolist(), li.tolist()):
        if not out[c]:
            along = _direction(geoms[k], points[c])
            out[c] = any(_aligned(along, _direction(osm.lines[line], points[c])) for line in pair[c])
    return out


def _is_vertex(osm: OsmIndex, lines: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Whether each point is (to 1 cm) a vertex of the given line."""
    vertices = shapely.extract_unique_points(osm.lines[lines])
    return shapely.dwithin(shapely.points(xy), vertices, 0.01)


def _branches(graph: nx.Graph, node: object, xy: np.ndarray) -> tuple[list[np.ndarray], float]:
    """Directions of the evidence edges leaving a junction, and their mean confidence; an edge
    in a tunnel or on a bridge is no branch of a junction at grade."""
    branches, scores = [], []
    for _, _, data in graph.edges(node, data=True):
        if _off_surface(data):
            continue
        geom = data["geometry"]
        first = np.asarray(geom.coords[0][:2])
        last = np.asarray(geom.coords[-1][:2])
        starts_here = np.hypot(*(first - xy)) <= np.hypot(*(last - xy))
        for at_start in ((True, False) if np.allclose(first, last) else (starts_here,)):
            along = min(BRANCH_M, geom.length)
            p = geom.interpolate(along if at_start else geom.length - along)
            branches.append(np.array([p.x, p.y]) - xy)
        scores.append(float(data.get("confidence", 1.0)))
    return branches, float(np.mean(scores)) if scores else 0.0


def _direction(line: BaseGeometry, xy: np.ndarray) -> np.ndarray:
    at = line.project(Point(xy))
    a, b = line.interpolate(max(0.0, at - 1.0)), line.interpolate(min(line.length, at + 1.0))
    return np.array([b.x - a.x, b.y - a.y])


def _branches_along(branches: list[np.ndarray], da: np.ndarray, db: np.ndarray) -> bool:
    """One branch runs along way A and a different one along way B."""
    along_a = [k for k, u in enumerate(branches) if _aligned(u, da)]
    along_b = [k for k, u in enumerate(branches) if _aligned(u, db)]
    return any(a != b for a in along_a for b in along_b)


def _aligned(u: np.ndarray, v: np.ndarray) -> bool:
    norm = np.hypot(*u) * np.hypot(*v)
    return norm > 0 and abs(np.dot(u, v)) / norm >= np.cos(np.radians(ALIGN_DEG))
