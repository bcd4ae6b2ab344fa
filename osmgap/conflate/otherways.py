"""New roads that run along a way OSM maps as something else: mapped, not missing.

Why: OSM's roads are read by class (osmgap.core.osmtags.ROAD_CLASSES), so a paved footway, a
cycle track, a road still tagged ``highway=construction`` or a taxiway is absent from the roads
conflation compares with, while imagery and traces show it as a road. Suggested as a missing
road, it sends a mapper to draw a duplicate of a mapped way (JOSM's validator: crossing or
overlapping ways; MapRoulette: "already fixed"). What the way should be tagged is the mapper's
call on the ground, not the model's: osmgap says nothing there and counts what it left out.
One exception (osmgap.core.osmtags.RETAG_INSTEAD): a road seen where OSM has one only proposed
has been built since it was planned (new estates are mapped so ahead of time): it is still
suggested, naming the proposed way to retag instead of drawing a second one.

Railways (``railway=rail``, ``subway``, ...) meet a line on their own level only (OWN_LEVEL_ONLY):
a metro runs for kilometres in a tunnel under streets or on a viaduct over them, where a footway
tunnel or bridge mostly crosses a street. Evidence that cannot tell levels (imagery, GPS) meets
those on the surface or above it, which imagery sees, never one in a tunnel (real Helsinki, the
bench's 20 % deletions given back without levels: the metro at layer -4 hid Kaivokatu,
Kaisaniemenkatu and Unioninkatu above it); a levelled source's surface line is not the viaduct over
it (West Oakland: 7th Street under BART's aerial, railway=subway layer=1, found again by
bench/conflation). Without levels it is: what imagery sees there is the viaduct (that 7th Street
is the one deleted street the unlevelled bench loses to railways, seed 0 of 0-4).
"""
from __future__ import annotations

from collections import Counter

import geopandas as gpd
import numpy as np
import shapely

from osmgap.core.aoi import reproject
from osmgap.core.datamodel import WGS84
from osmgap.core.osmtags import RAILWAY_KEYS

SAMPLE_STEP_M = 2.0  # spacing of the points along a suggestion at which the share is measured
HEADING_STEP_M = 1.0  # half the stretch of a line whose direction is read at a point
ONE_SIDE_SHARE = 0.8  # of a line's points along the way, on one side of it: a line beside the way
OWN_LEVEL_ONLY = tuple(f"{key}=" for key in RAILWAY_KEYS)  # the ways (their tag's start) meeting a line on its own level only


def along_other_ways(lines_wgs84: list, levels: list[int] | None, others: gpd.GeoDataFrame, crs: object, reach_m: float,
                     min_share: float, max_angle_deg: float, beside_m: float) -> list[tuple[str, int] | None]:
    """Per line: what OSM maps it as (``highway=footway``, the most common along it) and the id of
    the way of that tag nearest most of its length, when at least
    ``min_share`` of its length lies within ``reach_m`` of ``others`` (RoadNetwork.other_ways)
    running the same way (within ``max_angle_deg``: a footway crossing a road covers a short
    road's length too) on its level (``levels``, osmgap.core.osmtags.way_level: a road in a tunnel
    under a sidewalk is no sidewalk; a line on the surface also meets the bridges above it, which
    imagery sees from above; None for evidence that cannot tell levels: every level), else None;
    a railway (OWN_LEVEL_ONLY) only on the line's own level, or, where levels are None, on the
    surface or above it.
    A line that keeps to one side of that way, its median ``beside_m`` or more away, is a road
    beside it (a street along its mapped cycle track), not the way drawn: evidence of the way
    itself strays to both sides of it. Measured in the metric ``crs``."""
    out: list[tuple[str, int] | None] = [None] * len(lines_wgs84)
    if not lines_wgs84 or not len(others):
        return out
    lines = reproject(np.asarray(lines_wgs84, dtype=object), WGS84, crs)
    ways = reproject(np.asarray(others.geometry.values, dtype=object), WGS84, crs)
    what = others["what"].to_numpy(object)
    way_ids = others["osm_id"].to_numpy(np.int64)
    level = others["level"].to_numpy(np.int64)
    own_only = np.asarray([str(w).startswith(OWN_LEVEL_ONLY) for w in what], dtype=bool)
    tree = shapely.STRtree(ways)
    near = tree.query(lines, predicate="dwithin", distance=reach_m)
    for i in np.unique(near[0]):
        line = lines[i]
        n = max(2, int(np.ceil(line.length / SAMPLE_STEP_M)) + 1)
        points = shapely.line_interpolate_point(line, np.linspace(0.0, line.length, n))
        hits = near[1][near[0] == i]
        if levels is not None:
            hits = hits[(level[hits] == levels[i]) | ((levels[i] == 0) & (level[hits] > 0) & ~own_only[hits])]
        else:
            hits = hits[~own_only[hits] | (level[hits] >= 0)]
        if not len(hits):
            continue
        point, way = shapely.STRtree(ways[hits]).query_nearest(points, max_distance=reach_m, all_matches=False)
        along = angle_deg(heading_at(np.full(len(point), line, dtype=object), points[point]),
                           heading_at(ways[hits[way]], points[point])) <= max_angle_deg
        if len(np.unique(point[along])) >= min_share * n:
            tag = Counter(what[hits[way[along]]]).most_common(1)[0][0]
            ids = way_ids[hits[way[along]]]
            way_id = int(Counter(ids[what[hits[way[along]]] == tag]).most_common(1)[0][0])
            on_it = along & (way_ids[hits[way]] == way_id)
            if not _beside(_signed_offsets(ways[hits[way[on_it]]], points[point[on_it]]), beside_m):
                out[int(i)] = tag, way_id
    return out


def _signed_offsets(ways: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Per (way, point): the point's distance from the way, positive to its left."""
    heading = heading_at(ways, points)
    foot = shapely.get_coordinates(shapely.line_interpolate_point(ways, shapely.line_locate_point(ways, points)))
    d = shapely.get_coordinates(points) - foot
    return np.cos(heading) * d[:, 1] - np.sin(heading) * d[:, 0]


def _beside(offsets: np.ndarray, beside_m: float) -> bool:
    """Offsets of one line from one way that keep to one side, their median at least ``beside_m``."""
    if not len(offsets):
        return False
    median = float(np.median(offsets))
    return abs(median) >= beside_m and float(np.mean(np.sign(offsets) == np.sign(median))) >= ONE_SIDE_SHARE


def heading_at(lines: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Per (line, point): the direction (radians) of the line where the point projects on it."""
    at = shapely.line_locate_point(lines, points)
    length = shapely.length(lines)  # a negative distance would be read from the line's far end
    a = shapely.get_coordinates(shapely.line_interpolate_point(lines, np.clip(at - HEADING_STEP_M, 0.0, length)))
    b = shapely.get_coordinates(shapely.line_interpolate_point(lines, np.clip(at + HEADING_STEP_M, 0.0, length)))
    return np.arctan2(b[:, 1] - a[:, 1], b[:, 0] - a[:, 0])


def angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The angle between two undirected headings, 0..90 degrees."""
    d = np.abs(np.degrees(a - b)) % 180.0
    return np.minimum(d, 180.0 - d)
