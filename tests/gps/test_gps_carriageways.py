"""Second carriageways (osmgap.gps.carriageways): one direction of traffic beside a two-way way."""
from __future__ import annotations

import numpy as np
import pytest
import shapely
from shapely.geometry import LineString, box

from osmgap.conflate.gapscore import deletion_experiment, score
from osmgap.conflate.osmindex import index_osm
from osmgap.core.aoi import reproject
from osmgap.core.datamodel import WGS84, RoadNetwork, Suggestion
from osmgap.core.traces import from_arrays, resample
from osmgap.gps import carriageways
from osmgap.gps.carriageways import CarriagewayParams, missing_carriageways, not_suggested, offset_line
from osmgap.gps.discovery import discovery_grid, matched_evidence
from osmgap.gps.matching import Matches, trip_pieces
from osmgap.gps.network import RoadGraph, road_graph

CRS = "EPSG:32616"


@pytest.fixture(scope="module")
def chicago_roads(chicago_ways) -> RoadNetwork:
    frame = chicago_ways.to_crs(WGS84)
    frame["version"] = None
    frame["node_ids"] = None
    frame["tags"] = [{} for _ in range(len(frame))]
    return RoadNetwork(frame.reset_index(drop=True))


def test_deleted_carriageways_are_found_beside_the_kept_one(chicago_roads, chicago_traces, monkeypatch):
    """Real trips, 20 % of the real graph's ways deleted (a map without oneway tags): where one
    carriageway of a divided road is gone, its traffic is matched onto the other, and the
    asymmetry finds it; the suggestions lie on deleted ways, in the direction their trips drove."""
    exp = deletion_experiment(chicago_roads, share=0.2, seed=0)
    area = exp.aoi.to_metric(exp.aoi.geometry)
    found = matched_evidence(chicago_traces, exp.kept, discovery_grid(area.bounds, exp.crs), known=area)
    twins = found.carriageways
    assert len(twins) >= 5
    assert score(twins, exp.deleted, exp.crs, radius_m=15.0)["precision_length"] >= 0.85
    kept_ids = set(exp.kept.ways.osm_id.astype(int))
    for s in twins:
        assert s.kind == "missing_road" and s.evidence["second_carriageway_of"] in kept_ids
        assert s.evidence["trips"] >= 3 and s.evidence["trips_other_direction"] >= 3 and s.evidence["offset_m"] >= 8.0
        assert f"way {s.evidence['second_carriageway_of']}" in s.evidence["instruction"]
    # drawn the way its trips drove: fixes near the line move from its first vertex towards its last
    line = reproject(twins[0].geometry, WGS84, exp.crs)
    near = np.flatnonzero(shapely.dwithin(shapely.points(chicago_traces.x, chicago_traces.y), line, 5.0))
    near = near[near + 1 < len(chicago_traces)]
    near = near[chicago_traces.trip[near + 1] == chicago_traces.trip[near]]
    along = (shapely.line_locate_point(line, shapely.points(chicago_traces.x[near + 1], chicago_traces.y[near + 1]))
             - shapely.line_locate_point(line, shapely.points(chicago_traces.x[near], chicago_traces.y[near])))
    assert np.mean(along[np.abs(along) > 1.0] > 0) >= 0.8
    # the fixes are read a block of whole pieces at a time: blocks of ~97 fixes find the same
    network = road_graph(index_osm(exp.kept, exp.crs))
    whole = missing_carriageways(chicago_traces, found.matches, network, known=area)
    monkeypatch.setattr(carriageways, "SHAPELY_BLOCK", 97)
    blocks = missing_carriageways(chicago_traces, found.matches, network, known=area)
    assert len(whole) == len(twins) and len(blocks) == len(whole)
    assert all(a.line.equals_exact(b.line, 1e-9) and a.trips == b.trips for a, b in zip(whole, blocks))
    # a fix every 30 s: longer stretches (CarriagewayParams.for_sampling), the same precision
    sparse = matched_evidence(resample(chicago_traces, 30.0), exp.kept, discovery_grid(area.bounds, exp.crs), known=area)
    assert sparse.carriageways
    assert score(sparse.carriageways, exp.deleted, exp.crs, radius_m=15.0)["precision_length"] >= 0.85


def test_stretches_follow_the_sampling(chicago_traces):
    """Real trips: at their own 1-4 s, 20 m stretches, two in a row; every 30 s, one of 100 m."""
    params = CarriagewayParams()
    dense = params.for_sampling(chicago_traces, trip_pieces(chicago_traces))
    assert (dense.bin_m, dense.min_bins) == (20.0, 2)
    sparse_traces = resample(chicago_traces, 30.0)
    sparse = params.for_sampling(sparse_traces, trip_pieces(sparse_traces))
    assert (sparse.bin_m, sparse.min_bins) == (100.0, 1)
    # the other direction is "on the way" within 5 m when each stretch's median has many fixes, 3 m when few
    assert (dense.on_way_m, sparse.on_way_m) == (5.0, 3.0)


def test_a_complete_map_gives_almost_no_carriageway(chicago_roads, chicago_traces):
    """On the complete graph the trips that keep to one side of a way are a few stretches at
    most, dense or every 30 s."""
    area = box(chicago_traces.x.min(), chicago_traces.y.min(), chicago_traces.x.max(), chicago_traces.y.max())
    grid = discovery_grid(area.bounds, CRS)
    dense = matched_evidence(chicago_traces, chicago_roads, grid, known=area)
    assert sum(s.length_m for s in dense.carriageways) <= 100.0
    sparse = matched_evidence(resample(chicago_traces, 30.0), chicago_roads, grid, known=area)
    assert sparse.carriageways == []


def _straight_road(trips: list[tuple[int, float]], fixes_per_trip: int = 30, beside: float | None = None) -> tuple:
    """Mechanics only (no claim about roads): one straight two-way piece along y = 0, 400 m long,
    and trips driving it east (+1) or west (-1) at a lateral y."""
    xs, ys, trip = [], [], []
    for k, (direction, y) in enumerate(trips):
        x = np.linspace(5.0, 395.0, fixes_per_trip)
        xs.append(x if direction > 0 else x[::-1])
        ys.append(np.full(fixes_per_trip, y))
        trip.append(np.full(fixes_per_trip, k))
    x, y, t = np.concatenate(xs), np.concatenate(ys), np.concatenate(trip)
    traces = from_arrays(x, y, CRS, trip=t)
    n = len(x)
    direction = np.repeat([d for d, _ in trips], fixes_per_trip)
    edge = np.where(direction > 0, 0, 1)  # the one piece, forwards (edge 0) or backwards (edge 1)
    matches = Matches(np.ones(n, bool), x.copy(), np.zeros(n), np.abs(y), np.full(n, np.nan), np.ones(n, bool),
                      t.astype(np.int64), edge)
    lines = [LineString([(0, 0), (400, 0)])] + ([LineString([(0, beside), (400, beside)])] if beside is not None else [])
    k = len(lines)
    network = RoadGraph(np.asarray(lines, dtype=object), np.arange(0, 2 * k, 2), np.arange(1, 2 * k, 2),
                        np.zeros(k, np.int64), np.arange(k))
    return traces, matches, network


def test_one_direction_beside_the_way_is_a_carriageway_drawn_its_way():
    traces, matches, network = _straight_road([(1, 0.5)] * 6 + [(-1, 12.0)] * 4)
    found = missing_carriageways(traces, matches, network)
    assert len(found) == 1
    c = found[0]
    assert not c.forward and c.trips == 4 and c.other_trips == 6 and c.offset_m == pytest.approx(12.0)
    xy = np.asarray(c.line.coords)
    assert np.allclose(xy[:, 1], 12.0) and xy[0, 0] > xy[-1, 0]  # north of the way, drawn westwards
    assert c.line.length >= 300.0


def test_the_other_direction_may_keep_a_few_metres_off_the_way():
    """A receiver's bias or a curb lane puts the staying direction 4 m off the way: still on it for
    dense traces (``on_way_m`` 5 m), not for the few fixes of a sparse stretch (3 m)."""
    # a fix every 3.3 m: the traces' noise, read from these offsets, asks for 14 fixes per median
    traces, matches, network = _straight_road([(1, -4.0)] * 6 + [(-1, 12.0)] * 4, fixes_per_trip=120)
    found = missing_carriageways(traces, matches, network)
    assert len(found) == 1 and not found[0].forward and found[0].offset_m == pytest.approx(12.0)
    assert missing_carriageways(traces, matches, network, CarriagewayParams(sparse_on_way_m=3.0, on_way_m=3.0)) == []
    # both directions north of the way, 6.5 m apart: a wide road's lanes, not two carriageways
    traces, matches, network = _straight_road([(1, 3.0)] * 6 + [(-1, 9.5)] * 4, fixes_per_trip=120)
    assert missing_carriageways(traces, matches, network) == []


@pytest.mark.parametrize("trips", [
    [(1, 12.0)] * 6 + [(-1, 12.0)] * 4,  # both directions 12 m north: the way is misaligned, no twin missing
    [(1, 0.5)] * 6 + [(-1, 12.0)] * 2,  # two trips: a receiver's bias, not a road
    [(-1, 12.0)] * 6,  # one direction only: nothing to compare with
])
def test_no_carriageway_without_an_asymmetry_of_enough_trips(trips):
    traces, matches, network = _straight_road(trips)
    assert missing_carriageways(traces, matches, network) == []


def test_no_carriageway_where_another_mapped_road_runs():
    traces, matches, network = _straight_road([(1, 0.5)] * 6 + [(-1, 12.0)] * 4, beside=13.0)
    assert missing_carriageways(traces, matches, network) == []


def test_a_carriageway_the_ridge_already_drew_is_not_suggested_twice():
    def suggestion(line: LineString) -> Suggestion:
        return Suggestion(id=str(line.length), kind="missing_road", geometry=reproject(line, CRS, WGS84),
                          length_m=line.length, confidence=1.0)

    twin = suggestion(LineString([(400000, 4600012), (400300, 4600012)]))
    ridge = suggestion(LineString([(400000, 4600015), (400250, 4600015)]))
    elsewhere = suggestion(LineString([(400000, 4600100), (400300, 4600100)]))
    assert not_suggested([twin], [ridge], CRS) == []
    assert not_suggested([twin], [elsewhere], CRS) == [twin]
    assert not_suggested([twin], [], CRS) == [twin]


def test_offset_lines_keep_a_road_shape_or_give_up():
    """Corners stay sharp (a road's, not a buffer's arcs); the inside of a hairpin narrower than
    the offset collapses and a tight zigzag splits: no line then."""
    corner = offset_line(LineString([(0, 0), (100, 0), (100, 100)]), -12.0)
    assert corner is not None and len(corner.coords) == 3 and corner.coords[1] == pytest.approx((112.0, -12.0))
    assert offset_line(LineString([(0, 0), (100, 0), (100, 5), (0, 5)]), 12.0) is None
    assert offset_line(LineString([(0, 0), (50, 0), (50, 20), (60, 20), (60, 0), (200, 0)]), -12.0) is None
    assert offset_line(LineString([(0, 0), (50, 0), (50, 20), (60, 20), (60, 0), (200, 0)]), 12.0) is not None
