"""Parking-lot aisles: evidence that is a tangle of short loops, or beside mapped parking aisles.

Models and GPS traces see parking aisles as roads, and as missing roads they are noise to most
mappers. Their shape gives them away: aisles close small rectangular loops side by side, one
row of stalls wide (10-30 m) and a few dozen metres long, where a street grid closes loops of
hundreds of metres. The faces of the evidence graph are found by polygonizing its edges (bare
crossings are not noded, so a bridge closes no loop); two or more such faces touching make a
tangle. The thin slivers between carriageways and the triangles of junction islands fail the
width and rectangularity tests. Near an OSM ``service=parking_aisle`` the lot is mapped
already, and inside (or at the edge of) a mapped parking lot, ``amenity=parking`` polygons
when the caller has them, any road is an aisle. Gaps lying mostly in such a zone are kept, but
as ``highway=service`` with low priority, unless their source classed them as something else.
"""
from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from osmgap.conflate.osmindex import OsmIndex
from osmgap.core.segments import explode, sample

MAX_FACE_M2 = 2500.0  # a loop enclosing less than 50 x 50 m
FACE_WIDTH_M = (10.0, 30.0)  # one or two rows of stalls between aisles
MAX_FACE_LENGTH_M = 100.0
MIN_RECTANGULARITY = 0.7  # face area / its oriented bounding rectangle's area
MIN_FACES = 2  # small loops side by side make a tangle; one small loop is a turning circle
NEAR_AISLE_M = 20.0
LOT_MARGIN_M = 3.0  # a mapped lot's outline is drawn along the kerb; its aisles reach it
ON_AISLE_SHARE = 0.5
STEP_M = 2.0


def aisle_area(edges: np.ndarray, osm: OsmIndex, gaps: np.ndarray, reach_m: float,
               lots: np.ndarray | None = None) -> np.ndarray:
    """Where the evidence looks like a parking lot, or OSM has one (``lots``: mapped
    ``amenity=parking`` polygons, metric), within ``reach_m`` of the gap lines: polygons (they
    may overlap)."""
    near = edges[np.unique(shapely.STRtree(edges).query(gaps, predicate="dwithin", distance=reach_m)[1])] \
        if len(edges) and len(gaps) else edges[:0]
    zones: list[BaseGeometry] = []
    if len(near):
        faces = shapely.get_parts(shapely.polygonize(near))
        small = faces[_lot_shaped(faces)] if len(faces) else faces
        if len(small) >= MIN_FACES:
            clusters = shapely.get_parts(shapely.union_all(shapely.buffer(small, 0.5)))
            counts = np.bincount(shapely.STRtree(clusters).query(shapely.point_on_surface(small), predicate="within")[1],
                                 minlength=len(clusters))
            zones.extend(clusters[counts >= MIN_FACES])
    aisles = np.asarray([g for g, t in zip(osm.lines, osm.tags) if t.get("service") == "parking_aisle"], dtype=object)
    if len(aisles) and len(gaps):
        aisles = aisles[np.unique(shapely.STRtree(aisles).query(gaps, predicate="dwithin", distance=reach_m)[1])]
        zones.extend(shapely.buffer(aisles, NEAR_AISLE_M))
    if lots is not None and len(lots) and len(gaps):
        lots = lots[np.unique(shapely.STRtree(lots).query(gaps, predicate="dwithin", distance=reach_m)[1])]
        zones.extend(shapely.buffer(lots, LOT_MARGIN_M))
    return np.asarray(zones, dtype=object)


def _lot_shaped(faces: np.ndarray) -> np.ndarray:
    """Small, rectangular, one or two stall rows wide, not long: the loop of a parking lot."""
    box = shapely.oriented_envelope(faces)
    xy, owner = shapely.get_coordinates(shapely.get_exterior_ring(box), return_index=True)
    first = np.searchsorted(owner, np.arange(len(faces)))  # every box ring has five corners
    a = np.hypot(*(xy[first + 1] - xy[first]).T)
    b = np.hypot(*(xy[first + 2] - xy[first + 1]).T)
    width, length = np.minimum(a, b), np.maximum(a, b)
    area = shapely.area(faces)
    return ((area <= MAX_FACE_M2) & (area >= MIN_RECTANGULARITY * shapely.area(box))
            & (width >= FACE_WIDTH_M[0]) & (width <= FACE_WIDTH_M[1]) & (length <= MAX_FACE_LENGTH_M))


def on_aisles(lines: np.ndarray, zones: np.ndarray, buffer_m: float = 2.0) -> np.ndarray:
    """Per line: do most of its points lie in (or within ``buffer_m`` of) a parking zone?"""
    if not len(zones) or not len(lines):
        return np.zeros(len(lines), bool)
    pts = sample(explode(lines), STEP_M)
    hit_pts, _ = shapely.STRtree(zones).query(shapely.points(pts.xy), predicate="dwithin", distance=buffer_m)
    inside = np.zeros(len(pts), bool)
    inside[hit_pts] = True
    share = np.bincount(pts.line, weights=inside, minlength=len(lines)) / np.maximum(
        1, np.bincount(pts.line, minlength=len(lines)))
    return share >= ON_AISLE_SHARE
