"""What counts as running along a way OSM maps as something else (osmgap.conflate.otherways),
on Kotka's real cycleways: along it on its level, yes; across it, beside it past the reach, or
on another level, no."""
from __future__ import annotations

import numpy as np
import pytest
import shapely
import shapely.affinity

from osmgap.conflate.otherways import along_other_ways
from osmgap.core.aoi import reproject
from osmgap.core.datamodel import WGS84

CRS = "EPSG:3067"  # ETRS-TM35FIN, metres


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
    assert along_other_ways(_wgs(moved), None, others, CRS, 2.5, 0.5, 30.0) == [("highway=cycleway", i) for i in ids]


def test_across_beyond_reach_or_on_another_level_it_is_not(cycleways):
    long, others, _ = cycleways
    across = [shapely.affinity.rotate(_middle(g, 8.0), 90, origin="centroid") for g in long]  # a road crossing it
    beyond = [shapely.offset_curve(g, 6.0) for g in long]  # a road 6 m beside it, past a 2.5 m reach
    assert along_other_ways(_wgs(across), None, others, CRS, 2.5, 0.5, 30.0) == [None] * len(long)
    assert along_other_ways(_wgs(beyond), None, others, CRS, 2.5, 0.5, 30.0) == [None] * len(long)
    same = _wgs(long)
    assert along_other_ways(same, [-1] * len(long), others, CRS, 2.5, 0.5, 30.0) == [None] * len(long)  # a tunnel
    bridge = others.assign(level=1)  # a way on a bridge is seen from above by a line on the surface
    assert _tags(along_other_ways(same, [0] * len(long), bridge, CRS, 2.5, 0.5, 30.0)) == ["highway=cycleway"] * len(long)
