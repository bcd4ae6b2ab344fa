"""GPS support of suggestions by map matching (osmgap.gps.support), on the real Chicago OSM graph
and the real shuttle trips: OSM ways posing as suggestions, and chords drawn across blocks."""
from __future__ import annotations

import numpy as np
import pytest
import shapely
from shapely.geometry import LineString

from osmgap.core.aoi import reproject
from osmgap.core.datamodel import WGS84, Suggestion
from osmgap.core.traces import resample
from osmgap.gps.density import TrafficIndex
from osmgap.gps.matching import trip_pieces
from osmgap.gps.support import SupportParams, _cut, _nearest_line_m, _within_reach, apply_gps_support
from tests.gps.test_gps_matching import _network

CRS = "EPSG:32616"
CAMPUS = shapely.box(444700.0, 4635000.0, 445700.0, 4636100.0)


def _suggestion(line, kind="missing_road", confidence=0.6) -> Suggestion:
    wgs = reproject(line, CRS, WGS84)
    return Suggestion(id=f"t{hash(line.wkb) & 0xffff}", kind=kind, geometry=wgs, length_m=line.length, confidence=confidence)


@pytest.fixture(scope="module")
def judged(chicago_ways, chicago_traces):
    """Every campus way of >= 60 m posed as unsupported_osm_way on the complete graph: what the
    matched trips say of each (users along it, trips passing its junctions)."""
    ways = chicago_ways[chicago_ways.within(CAMPUS) & (chicago_ways.length >= 60)]
    sugs = [_suggestion(g, "unsupported_osm_way") for g in ways.geometry]
    apply_gps_support(sugs, chicago_traces, _network(chicago_ways))
    return ways.assign(users=[s.evidence["gps_trips"] for s in sugs], routed=[s.evidence["gps_trips_routed"] for s in sugs],
                       passing=[s.evidence["gps_trips_passing"] for s in sugs], verdict=[s.evidence["gps_verdict"] for s in sugs],
                       beside=[s.evidence["gps_beside_mapped"] for s in sugs])


def test_unsupported_osm_way_is_judged_by_the_trips_along_it(judged):
    driven = judged[judged.users >= 2]
    # demote_share: 0 routed is below it; beside a mapped road the matcher cannot tell them apart
    idle = judged[(judged.routed == 0) & (judged.passing >= SupportParams().min_passing) & ~judged.beside]
    assert len(driven) >= 10 and len(idle) >= 1
    p = SupportParams()
    clearly = driven[driven.users >= p.confirm_share * (driven.routed + driven.passing)]
    assert len(clearly) >= 10 and (clearly.verdict == "demoted").all()  # driven: the way is real, the suggestion is wrong
    assert (idle.verdict == "confirmed").all()
    assert (judged[(judged.routed == 0) & (judged.passing == 0)].verdict == "no_coverage").all()
    between = judged[(judged.users < 2) & (judged.routed + judged.passing > 0) & ~judged.index.isin(idle.index)
                     & ((judged.users > 0) | (judged.passing < p.min_passing) | (judged.routed > p.demote_share * (judged.routed + judged.passing)))]
    assert (between.verdict == "unchanged").all()


def test_deleted_ways_are_confirmed_where_driven_and_demoted_where_passed_by(judged, chicago_ways, chicago_traces):
    """The same ways deleted from OSM and posed as missing roads: added back to the network, they
    are matched the same way (each alone, so their junctions are OSM's)."""
    busy = judged.sort_values("users").iloc[-1]
    idle = judged[(judged.routed == 0) & ~judged.beside].sort_values("passing").iloc[-1]
    assert idle.passing >= SupportParams().min_passing
    gap, _ = TrafficIndex(chicago_traces).tree.query(shapely.get_coordinates(chicago_ways.centroid.values))
    lonely = chicago_ways[(gap > 1000) & (chicago_ways.length >= 80)].iloc[0]  # no trip within 1 km
    gone = {busy.osm_id, idle.osm_id, lonely.osm_id}
    sugs = [_suggestion(busy.geometry), _suggestion(idle.geometry), _suggestion(lonely.geometry)]
    counts = apply_gps_support(sugs, chicago_traces, _network(chicago_ways[~chicago_ways.osm_id.isin(gone)]))
    assert counts == {"confirmed": 1, "demoted": 1, "unchanged": 0, "no_coverage": 1}
    b, i, lone = (s.evidence for s in sugs)
    assert b["gps_verdict"] == "confirmed" and b["gps_trips"] >= 0.8 * busy.users
    assert sugs[0].confidence == pytest.approx(0.8) and b["confidence_before_gps"] == 0.6
    assert i["gps_verdict"] == "demoted" and i["gps_trips"] == 0 and sugs[1].confidence == pytest.approx(0.3)
    assert lone["gps_verdict"] == "no_coverage" and lone["gps_support"] is None and sugs[2].confidence == 0.6


def _chords(ways, traces, n: int) -> list[LineString]:
    """Straight lines between the middles of two busy campus ways, across a block: their middle
    is >= 30 m from every road, most of their length is off the roads, and no fix off the map
    (>= 25 m from every road) lies within 15 m of them, so nobody drove there."""
    roads = shapely.union_all(np.asarray(ways.geometry.values, dtype=object))
    near = roads.buffer(20.0)
    fixes = shapely.points(traces.x, traces.y)
    off_map = shapely.MultiPoint(fixes[shapely.distance(fixes, roads) >= 25.0])
    mids = [g.interpolate(0.5, normalized=True) for g in ways[ways.within(CAMPUS)].geometry]
    out: list[LineString] = []
    for a in range(len(mids)):
        for b in range(a + 1, len(mids)):
            c = LineString([mids[a], mids[b]])
            if 80 < c.length < 300 and c.interpolate(0.5, normalized=True).distance(roads) > 30 \
                    and c.difference(near).length > 0.6 * c.length and all(c.distance(o) > 60 for o in out) \
                    and c.distance(off_map) > 15.0:
                out.append(c)
    return out[:n]


@pytest.mark.parametrize("seconds", [None, 30.0])
def test_chords_across_blocks_are_never_confirmed(chicago_ways, chicago_traces, seconds):
    """A corridor count along a chord sees the traffic of the roads it crosses and ends on; the
    matcher routes no trip along it, however sparse the trips."""
    traces = chicago_traces if seconds is None else resample(chicago_traces, seconds)
    chords = _chords(chicago_ways, chicago_traces, 8)
    assert len(chords) >= 5
    corridor = TrafficIndex(traces)
    assert sum(corridor.along(c).trips >= 2 for c in chords) >= 2  # traffic a corridor count would take for theirs
    sugs = [_suggestion(c) for c in chords]
    counts = apply_gps_support(sugs, traces, _network(chicago_ways))
    assert counts["confirmed"] == 0
    p = SupportParams()
    passed_by = [s for s in sugs if s.evidence["gps_trips_passing"] >= p.min_passing
                 and s.evidence["gps_trips_routed"] <= p.demote_share * (s.evidence["gps_trips_routed"] + s.evidence["gps_trips_passing"])]
    assert len(passed_by) >= 1 and all(s.evidence["gps_verdict"] == "demoted" for s in passed_by)


@pytest.mark.parametrize("seconds", [None, 30.0])
def test_trips_are_matched_again_only_where_they_may_pass_a_line(chicago_ways, chicago_traces, seconds):
    """Support matches again the stretches of trips whose steps may come within ``near_m`` of a
    line (and a few fixes either side), not the whole trips: on the real trips, every step whose
    segment passes that close keeps both its fixes, however long the step, and fixes far from
    every line are left out."""
    traces = chicago_traces if seconds is None else resample(chicago_traces, seconds)
    lines = list(chicago_ways[chicago_ways.within(CAMPUS) & (chicago_ways.length >= 60)].geometry.values[:6])
    pieces = trip_pieces(traces)
    reach = SupportParams().near_m
    gap = _nearest_line_m(traces, lines)
    points = shapely.points(traces.x, traces.y)
    np.testing.assert_allclose(gap, shapely.distance(points, shapely.union_all(lines)))
    keep = _within_reach(traces, pieces, gap, reach, context=0)
    step = np.flatnonzero(np.r_[False, pieces[1:] == pieces[:-1]])  # fix index of each step's end
    segments = shapely.linestrings(np.stack([np.column_stack([traces.x[step - 1], traces.y[step - 1]]),
                                             np.column_stack([traces.x[step], traces.y[step]])], axis=1))
    near = np.zeros(len(step), bool)
    near[np.unique(shapely.STRtree(lines).query(segments, predicate="dwithin", distance=reach)[0])] = True
    assert near.sum() > 1000
    assert keep[step[near]].all() and keep[step[near] - 1].all()
    far = gap > 2 * reach
    assert 0 < keep.mean() < 0.6 and far.sum() > 0.3 * len(traces)
    if seconds:  # a fix within reach of a line alone would lose the long steps that pass one
        points_only = _within_reach(traces, np.arange(len(traces)), gap, reach, context=0)  # no steps: each fix its own piece
        assert not (points_only[step[near]] & points_only[step[near] - 1]).all()
    with_context = _within_reach(traces, pieces, gap, reach, context=2)
    kept = np.flatnonzero(keep)  # each fix's nearest kept fix before and after it, by position
    after = kept[np.minimum(np.searchsorted(kept, np.arange(len(keep))), len(kept) - 1)]
    before = kept[np.maximum(np.searchsorted(kept, np.arange(len(keep)), "right") - 1, 0)]
    index = np.arange(len(keep))
    within_two = (((np.abs(after - index) <= 2) & (pieces[after] == pieces))
                  | ((np.abs(index - before) <= 2) & (pieces[before] == pieces)))
    assert (with_context == within_two).all() and with_context.sum() > keep.sum()


def test_left_out_fixes_cut_a_trip_piece():
    pieces = np.array([0, 0, 0, 0, 1, 1, 1, 2])
    keep = np.array([1, 1, 0, 1, 1, 1, 1, 1], bool)
    assert _cut(pieces, keep).tolist() == [0, 0, 1, 2, 2, 2, 3]
    assert len(_cut(pieces, np.zeros(8, bool))) == 0
