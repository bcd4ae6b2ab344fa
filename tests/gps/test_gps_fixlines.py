"""Lines through lone fixes (osmgap.gps.fixlines) on real Chicago fixes sampled every 30 s: the
fixes of many trips along a real street give one line on that street; those around a real
junction, where two streets cross, do not line up and stay discs."""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import shapely
from shapely.geometry import LineString
from shapely.ops import substring

from osmgap.core.traces import resample
from osmgap.gps.fixlines import FixLineParams, fix_lines


def _busy_streets(traces, fixes, ways, length_m: float, wanted: int) -> list[tuple[LineString, np.ndarray]]:
    """Middles (length_m long) of mapped streets with no other street within 30 m, and the fixes
    within 10 m of each (not within 10 m of its ends, where the next street starts), where those
    are of >= 8 trips."""
    others = shapely.STRtree(ways)
    out = []
    for way in ways:
        if way.length < length_m + 50:
            continue
        middle = substring(way, 25, 25 + length_m)
        if any(not ways[k].intersects(way) for k in others.query(middle.buffer(30))):
            continue
        ends = shapely.MultiPoint([middle.coords[0], middle.coords[-1]]).buffer(10.0)
        picked = np.flatnonzero(shapely.dwithin(fixes, middle, 10.0) & ~shapely.intersects(fixes, ends))
        if len(np.unique(traces.trip[picked])) >= 8:
            out.append((middle, picked))
            if len(out) == wanted:
                break
    return out


def right_angle_junctions(ways) -> Iterator[tuple[int, int, shapely.Point]]:
    """(way a, way b, the node they share) for each pair of ways meeting near right angles."""
    for a, b in shapely.STRtree(ways).query(ways, predicate="touches").T:
        if b <= a:
            continue
        node = ways[a].intersection(ways[b])
        if node.geom_type != "Point":
            continue
        da, db = (np.diff(np.asarray(w.coords)[:2], axis=0)[0] for w in (ways[a], ways[b]))
        if abs(np.dot(da, db)) / (np.linalg.norm(da) * np.linalg.norm(db)) <= 0.3:
            yield int(a), int(b), node


def test_fixes_along_a_street_make_one_line_on_it(chicago_traces, chicago_ways):
    sparse = resample(chicago_traces, 30.0)
    streets = _busy_streets(sparse, shapely.points(sparse.x, sparse.y), chicago_ways.geometry.values, 80.0, 5)
    assert len(streets) == 5
    for street, picked in streets:
        found = fix_lines(sparse.x[picked], sparse.y[picked], sparse.trip[picked])
        assert len(found.trips) == 1 and not found.disc.any()
        line = LineString([found.start[0], found.end[0]])
        assert line.hausdorff_distance(street) < 0.5 * street.length  # spans much of it
        assert all(street.distance(shapely.Point(p)) < 6.0 for p in line.coords)  # and lies on it
        assert len(found.trips[0]) == len(np.unique(sparse.trip[picked]))


def test_fixes_around_a_junction_stay_discs(chicago_traces, chicago_ways):
    """Around a right-angle junction of two busy streets the fixes form a cross or an L, not a line."""
    sparse = resample(chicago_traces, 30.0)
    fixes = shapely.points(sparse.x, sparse.y)
    ways = chicago_ways.geometry.values
    crossings = 0
    for a, b, node in right_angle_junctions(ways):
        near = shapely.dwithin(fixes, node, 35.0)
        arms = [len(np.unique(sparse.trip[near & shapely.dwithin(fixes, w, 8.0)])) for w in (ways[a], ways[b])]
        if min(arms) < 6:
            continue
        picked = np.flatnonzero(near)
        found = fix_lines(sparse.x[picked], sparse.y[picked], sparse.trip[picked], FixLineParams(link_m=40.0))
        assert found.disc.all()
        crossings += 1
        if crossings == 3:
            return
    raise AssertionError(f"only {crossings} busy right-angle junctions found")
