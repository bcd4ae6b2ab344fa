"""What counts as running along a way OSM maps as something else (osmgap.conflate.otherways),
on Kotka's real cycleways: along it on its level, yes; across it, beside it past the reach, a
road keeping to one side of it within the reach, or on another level, no."""
from __future__ import annotations

import numpy as np
import pytest
import shapely
import shapely.affinity

from osmgap.conflate.otherways import along_other_ways
from osmgap.core.aoi import reproject
from osmgap.core.datamodel import WGS84

CRS = "EPSG:3067"  # ETRS-TM35FIN, metres
BESIDE_M = 4.0  # ConflateParams.near_m


@pytest.fixture(scope="module")
def cycleways(kotka):
    """Kotka's cycleways over 60 m, and all of its other ways for the lookup."""
    others = kotka.other_ways
    metric = reproject(np.asarray(others.geometry.values, dtype=object), WGS84, CRS)
    picked = [(g, int(i)) for g, what, i in zip(metric, others["what"], others["osm_id"])
              if what == "highway=cycleway" and g.length > 60]
    assert len(picked) >= 5
    return [g for g, _ in picked], others, [i for _, i in picked]


def _middle(line, length_m):
    """The stretch of ``line`` of ``length_m`` around its middle, as a straight line."""
    half = line.length / 2
    return shapely.LineString([line.interpolate(half - length_m / 2).coords[0], line.interpolate(half + length_m / 2).coords[0]])


def _wgs(lines):
    return list(reproject(np.asarray(lines, dtype=object), CRS, WGS84))


def _tags(found):
    return [f and f[0] for f in found]


def test_a_line_along_a_cycleway_is_that_cycleway(cycleways):
    long, others, ids = cycleways
    moved = [shapely.offset_curve(g, 1.5) for g in long]  # drawn 1.5 m to one side
    assert along_other_ways(_wgs(moved), None, others, CRS, 2.5, 0.5, 30.0, BESIDE_M) == [("highway=cycleway", i) for i in ids]


def test_across_beyond_reach_or_on_another_level_it_is_not(cycleways):
    long, others, _ = cycleways
    across = [shapely.affinity.rotate(_middle(g, 8.0), 90, origin="centroid") for g in long]  # a road crossing it
    beyond = [shapely.offset_curve(g, 6.0) for g in long]  # a road 6 m beside it, past a 2.5 m reach
    assert along_other_ways(_wgs(across), None, others, CRS, 2.5, 0.5, 30.0, BESIDE_M) == [None] * len(long)
    assert along_other_ways(_wgs(beyond), None, others, CRS, 2.5, 0.5, 30.0, BESIDE_M) == [None] * len(long)
    same = _wgs(long)
    assert along_other_ways(same, [-1] * len(long), others, CRS, 2.5, 0.5, 30.0, BESIDE_M) == [None] * len(long)  # a tunnel
    bridge = others.assign(level=1)  # a way on a bridge is seen from above by a line on the surface
    assert _tags(along_other_ways(same, [0] * len(long), bridge, CRS, 2.5, 0.5, 30.0, BESIDE_M)) == ["highway=cycleway"] * len(long)


def test_a_road_beside_a_cycleway_within_the_reach_is_no_cycleway(cycleways):
    """With the 12 m reach of evidence whose spread is unknown, a street 6 m beside its mapped
    cycle track (the normal case where the street is missing) is that street; evidence of the
    track itself, straying a few metres to both sides, or drawn 3 m off it, is the track."""
    long, others, ids = cycleways
    beside = [shapely.offset_curve(g, side * 6.0) for g, side in zip(long, [1, -1] * len(long))]
    assert along_other_ways(_wgs(beside), None, others, CRS, 12.0, 0.5, 30.0, BESIDE_M) == [None] * len(long)
    off = [shapely.offset_curve(g, 3.0) for g in long]
    assert along_other_ways(_wgs(off), None, others, CRS, 12.0, 0.5, 30.0, BESIDE_M) == [
        ("highway=cycleway", i) for i in ids]
    wander = [_wandering(g, 4.0) for g in long]
    assert along_other_ways(_wgs(wander), None, others, CRS, 12.0, 0.5, 30.0, BESIDE_M) == [
        ("highway=cycleway", i) for i in ids]


def _wandering(line, amplitude_m):
    """``line`` drawn swinging from one side to the other, ``amplitude_m`` each way, every 40 m."""
    points = []
    for d in np.arange(0.0, line.length, 5.0):
        a, b = line.interpolate(max(0.0, d - 1.0)), line.interpolate(min(line.length, d + 1.0))
        heading = np.arctan2(b.y - a.y, b.x - a.x)
        side = amplitude_m * np.sin(2 * np.pi * d / 80.0)
        p = line.interpolate(d)
        points.append((p.x - side * np.sin(heading), p.y + side * np.cos(heading)))
    return shapely.LineString(points)
