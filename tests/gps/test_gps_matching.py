"""Map matching (osmgap.gps.matching) and what the map cannot explain (osmgap.gps.evidence), on the
real Chicago UIC shuttle trips and the real OSM graph of the same area."""
from __future__ import annotations

from dataclasses import replace

import networkx as nx
import numpy as np
import pytest
import shapely
import shapely.affinity
from rasterio.transform import rowcol
from shapely.geometry import box
from shapely.ops import substring

from osmgap.conflate.conflate import conflate
from osmgap.conflate.osmindex import index_osm
from osmgap.conflate.params import ConflateParams
from osmgap.core.aoi import Aoi, reproject
from osmgap.core.datamodel import WGS84, RoadNetwork
from osmgap.core.traces import from_arrays, resample
from osmgap.gps import network as network_module
from osmgap.gps.density import fix_discs, road_likelihood
from osmgap.gps.discovery import (
    TRACED_MARGIN_M,
    DiscoveryParams,
    discovery_grid,
    gps_conflate_params,
    matched_evidence,
    unexplained_paths,
)
from osmgap.gps.evidence import unexplained
from osmgap.gps.matching import Matcher, MatchParams, PieceUsage, _times_in_order, route_limit, trip_pieces
from osmgap.gps.network import road_graph, with_lines
from osmgap.gps.verify import verify

CRS = "EPSG:32616"


def _network(ways, crs: str = CRS) -> RoadNetwork:
    """Mapconstruction ways as a RoadNetwork (WGS84, no tags: every way two-way)."""
    frame = ways.to_crs(WGS84)
    frame["version"] = None
    frame["node_ids"] = None
    frame["tags"] = [{} for _ in range(len(frame))]
    return RoadNetwork(frame.reset_index(drop=True))


def _taken_off(chicago_roads: RoadNetwork, chicago_ways, osm_id: int) -> tuple:
    """(the real way ``osm_id``, metric; the map without it)."""
    way = chicago_ways.set_index("osm_id").geometry[osm_id]
    return way, RoadNetwork(chicago_roads.ways[chicago_ways.osm_id.to_numpy() != osm_id].reset_index(drop=True))


@pytest.fixture(scope="module")
def chicago_roads(chicago_ways) -> RoadNetwork:
    return _network(chicago_ways)


@pytest.fixture(scope="module")
def traces_30s(chicago_traces):
    """Every real trip, a fix every 30 s."""
    return resample(chicago_traces, 30.0)


@pytest.fixture(scope="module")
def some_trips(chicago_traces):
    """Every 10th real trip (~12,000 fixes)."""
    return chicago_traces.take(chicago_traces.trip % 10 == 0)


def test_road_graph_cuts_ways_at_junctions_and_honours_oneway(chicago_roads):
    graph = road_graph(index_osm(chicago_roads, CRS))
    assert len(graph) >= len(chicago_roads)  # junction-to-junction ways: no piece is lost
    start = shapely.get_coordinates(shapely.get_point(graph.lines, 0))
    node_xy = graph.node_xy()
    assert np.allclose(start, [node_xy[int(n)] for n in graph.u])
    ids, _, _, _ = graph.directed()
    assert len(ids) == 2 * len(graph)  # all two-way
    tags = [{"oneway": "yes"}] + [{}] * (len(chicago_roads) - 1)
    oneway = RoadNetwork(chicago_roads.ways.assign(tags=tags))
    g1 = road_graph(index_osm(oneway, CRS))
    assert len(g1.directed()[0]) == 2 * len(g1) - int((g1.source == 0).sum())


def test_real_trips_match_the_complete_map(chicago_roads, some_trips):
    graph = road_graph(index_osm(chicago_roads, CRS))
    pieces = trip_pieces(some_trips)
    matches = Matcher(graph, route_limit(some_trips, pieces)).match(some_trips, pieces)
    assert matches.matched.mean() >= 0.97  # shuttles drive mapped streets
    assert np.nanmedian(matches.offset_m) < 6.0  # a receiver's error, not a wrong street
    assert len(unexplained(some_trips, matches).off_a) < 0.05 * len(some_trips)
    sparse = resample(some_trips, 30.0)  # a fix every ~300 m: routes between fixes are read
    pieces = trip_pieces(sparse)
    matches = Matcher(graph, route_limit(sparse, pieces)).match(sparse, pieces)
    step = sparse.step_lengths()
    read = np.isfinite(matches.route_m) & (step >= 50)
    assert read.sum() > 0.5 * len(sparse)
    assert np.median(matches.route_m[read] / step[read]) < 1.1  # routes follow the trips
    assert len(unexplained(sparse, matches).detour_a) < 0.05 * len(sparse)


def test_trips_with_some_fixes_untimed_match_as_the_timed_ones(chicago_roads, some_trips):
    """GPX allows a <trkpt> without <time>: every third fix untimed still matches (fastmm wants
    times that never go back), as well as the whole trips do."""
    from dataclasses import replace

    graph = road_graph(index_osm(chicago_roads, CRS))
    t = some_trips.t.copy()
    t[::3] = np.nan
    gappy = replace(some_trips, t=t)
    pieces = trip_pieces(gappy)
    matches = Matcher(graph, route_limit(gappy, pieces)).match(gappy, pieces)
    assert matches.matched.mean() >= 0.97
    assert _times_in_order(np.array([np.nan, 5.0, np.nan, 3.0, 8.0])).tolist() == [5.0, 5.0, 5.0, 5.0, 8.0]
    assert _times_in_order(np.full(3, np.nan)).tolist() == [0.0, 0.0, 0.0]


def test_piece_usage_follows_the_trips(chicago_roads, some_trips):
    """What the matched routes run along (PieceUsage) adds up to the distance the trips drove, on
    pieces next to their fixes; the fixes it logs are the trips' own."""
    graph = road_graph(index_osm(chicago_roads, CRS))
    pieces = trip_pieces(some_trips)
    usage = PieceUsage()
    Matcher(graph, route_limit(some_trips, pieces)).match(some_trips, pieces, usage)
    trip, piece, metres = usage.metres()
    step = some_trips.step_lengths()
    driven = np.bincount(some_trips.trip[np.isfinite(step)], step[np.isfinite(step)])
    routed = np.bincount(trip, metres, minlength=len(driven))
    busy = driven > 1000
    assert busy.sum() >= 20 and np.median(routed[busy] / driven[busy]) == pytest.approx(1.0, abs=0.1)
    fix_trip, fix_piece, fix = usage.fixes()
    assert len(fix) >= 0.5 * len(some_trips) and np.array_equal(some_trips.trip[fix], fix_trip)
    assert np.median(shapely.distance(shapely.points(some_trips.x[fix], some_trips.y[fix]), graph.lines[fix_piece])) < 6.0


def test_adding_many_lines_joins_them_as_a_fresh_index_each_time_would(chicago_roads, monkeypatch):
    """with_lines keeps one spatial index over several cuts (network._NearestPiece); the result
    must equal rebuilding it for every line end."""
    graph = road_graph(index_osm(chicago_roads, CRS))
    rng = np.random.default_rng(0)
    extra = [shapely.affinity.translate(graph.lines[k], 20.0, 10.0) for k in rng.choice(len(graph), 600, replace=False)]
    fast, _ = with_lines(graph, extra)
    monkeypatch.setattr(network_module._NearestPiece, "REBUILD", -1)  # a new index before every query
    slow, _ = with_lines(graph, extra)
    assert len(fast) == len(slow) > len(graph) + 600
    assert np.array_equal(fast.u, slow.u) and np.array_equal(fast.v, slow.v) and np.array_equal(fast.source, slow.source)
    assert all(a.equals_exact(b, 1e-9) for a, b in zip(fast.lines, slow.lines))


def test_trips_split_at_silence_and_jumps():
    t = np.array([0, 1, 2, 500, 501, 502, 503], float)
    x = np.array([0, 10, 20, 30, 40, 5000, 5010], float)
    pieces = trip_pieces(from_arrays(x, np.zeros(7), CRS, t=t, trip=np.zeros(7, np.int32)), MatchParams())
    assert pieces.tolist() == [0, 0, 0, 1, 1, 2, 2]  # 498 s silence; 4,960 m in 1 s


def test_a_repeated_fix_does_not_split_a_trip_but_time_going_back_does():
    """A logger that writes one fix twice (same place, same second) has not jumped; a fix that
    moved in no time, or one earlier than the fix before it, has."""
    t = np.array([0, 1, 1, 2, 3, 3, 4, 2, 5], float)
    x = np.array([0, 10, 10, 20, 30, 45, 50, 60, 70], float)
    traces = from_arrays(x, np.zeros(9), CRS, t=t, trip=np.zeros(9, np.int32))
    assert trip_pieces(traces, MatchParams()).tolist() == [0, 0, 0, 0, 0, 1, 1, 2, 2]
    assert traces.steps_back_in_time() == (1, 8)


def test_a_deleted_road_is_unexplained_and_a_candidate_on_it_explains_it(chicago_roads, chicago_ways, chicago_traces):
    """Delete a real way the shuttles drive: its fixes leave the map; put it back as an added
    line (osmgap.gps.network.with_lines) and re-matching explains them again."""
    way, kept = _taken_off(chicago_roads, chicago_ways, 5411)
    near = way.buffer(15)
    trips = np.unique(chicago_traces.trip[shapely.contains_xy(near, chicago_traces.x, chicago_traces.y)])
    assert len(trips) >= 5
    trips = trips[:12]  # enough to tell, and fast
    traces = chicago_traces.take(np.isin(chicago_traces.trip, trips))
    graph = road_graph(index_osm(kept, CRS))
    pieces = trip_pieces(traces)
    limit = route_limit(traces, pieces)
    fixes = shapely.points(traces.x, traces.y)
    near_kept = np.zeros(len(traces), bool)
    near_kept[shapely.STRtree(graph.lines).query(fixes, predicate="dwithin", distance=30.0)[0]] = True
    on_way = shapely.dwithin(fixes, way, 8.0) & ~near_kept  # on the deleted way, clear of every kept one
    assert on_way.sum() >= 10
    before = unexplained(traces, Matcher(graph, limit).match(traces, pieces))
    off_before = np.isin(np.flatnonzero(on_way), np.r_[before.off_a, before.off_b]).mean()
    assert off_before >= 0.9
    added, _ = with_lines(graph, [way])
    after = unexplained(traces, Matcher(added, limit).match(traces, pieces))
    off_after = np.isin(np.flatnonzero(on_way), np.r_[after.off_a, after.off_b]).mean()
    assert off_after <= 0.1
    # osmgap.gps.verify keeps the line that explains the trips and drops one 40 m beside it
    before_matches = Matcher(graph, limit).match(traces, pieces)
    candidates = nx.Graph()
    candidates.add_edge(0, 1, geometry=way)
    candidates.add_edge(2, 3, geometry=shapely.affinity.translate(way, 0.0, 40.0) if way.bounds[2] - way.bounds[0] >
                        way.bounds[3] - way.bounds[1] else shapely.affinity.translate(way, 40.0, 0.0))
    counts = verify(candidates, traces, before_matches, before, graph, limit)
    assert list(candidates.edges) == [(0, 1)] and counts == {"verified": 1, "dropped_unverified": 1}


def test_a_trip_the_map_explains_everywhere_gives_no_evidence(chicago_roads, chicago_traces):
    """One real trip (trip 0, 140 fixes) that keeps to mapped roads: nothing is off the map, so
    discovery finds nothing and says so (it raised IndexError when no fix at all was off)."""
    trip = chicago_traces.take(chicago_traces.trip == 0)
    area = box(trip.x.min(), trip.y.min(), trip.x.max(), trip.y.max()).buffer(300.0)
    found = matched_evidence(trip, chicago_roads, discovery_grid(area.bounds, CRS), known=area)
    assert len(trip) == 140 and found.matches.matched.all()
    assert not found.unexplained.off.any() and len(found.unexplained.detour_a) == 0
    assert found.evidence.graph.number_of_edges() == 0 and found.connections == [] and found.carriageways == []


def test_complete_map_gives_no_junction_hooks(chicago_roads, chicago_ways, chicago_traces):
    """GPS-only discovery with every real trip on the complete graph: nothing short hooks round a
    junction (corner cuts, 14-44 m, were most of what the density method suggested here), and
    what is suggested is a small part of the driven network (driven places the graph lacks)."""
    aoi = Aoi(box(*reproject(box(*chicago_ways.total_bounds), CRS, WGS84).bounds), name="chicago", source="test")
    area = aoi.to_metric(aoi.geometry)
    grid = discovery_grid(area.bounds, aoi.metric_crs)
    traces = chicago_traces.to_crs(aoi.metric_crs)
    found = matched_evidence(traces, chicago_roads, grid, known=area)
    result = conflate(found.evidence, chicago_roads, area, gps_conflate_params(ConflateParams()))
    lines = [reproject(s.geometry, WGS84, aoi.metric_crs) for s in result.suggestions if s.geometry.geom_type == "LineString"]
    osm = index_osm(chicago_roads, aoi.metric_crs)
    junctions = shapely.points(osm.vertex_xy[osm.key_uses[osm.vertex_key] >= 3])
    tree = shapely.STRtree(junctions)
    hooks = [g for g in lines if g.length < 60 and len(tree.query(g.interpolate(0.5, normalized=True), "dwithin", 30.0))]
    assert hooks == []
    assert sum(g.length for g in lines) < 0.02 * float(np.sum(shapely.length(osm.lines)))
    # a line that scattered off-map fixes draw south of the campus (68 m, mean likelihood 0.56: fewer
    # than three trips along it) passes every other source's floor, not the GPS one
    wander = shapely.Point(446167.0, 4634758.0)
    loose = conflate(found.evidence, chicago_roads, area, replace(gps_conflate_params(ConflateParams()), min_confidence=0.5))
    assert [round(s.confidence, 2) for s in loose.suggestions
            if reproject(s.geometry, WGS84, aoi.metric_crs).distance(wander) < 20.0] == [0.56]
    assert min(g.distance(wander) for g in lines) > 100.0
    sparse = resample(traces, 30.0)
    found30 = matched_evidence(sparse, chicago_roads, grid, known=area)
    result30 = conflate(found30.evidence, chicago_roads, area, gps_conflate_params(ConflateParams()))
    short = [s for s in result30.suggestions if s.geometry.geom_type == "LineString" and s.length_m < 60
             and len(tree.query(reproject(s.geometry, WGS84, aoi.metric_crs).interpolate(0.5, normalized=True),
                                "dwithin", 30.0))]
    assert len(short) <= 2


@pytest.mark.parametrize("osm_id", [5411, 8278])
def test_three_trips_along_a_missing_road_are_enough(chicago_roads, chicago_ways, chicago_traces, osm_id):
    """Two real ways (129-131 m) taken off the map, and only the first two, then three, of the real
    trips that drove along them (>= 3 fixes within 8 m of the way, 25 m from its ends): two draw
    nothing, three make a suggestion along it that the GPS floor on confidence (2.6 trips) keeps."""
    way, kept = _taken_off(chicago_roads, chicago_ways, osm_id)
    middle = substring(way, 25.0, way.length - 25.0)
    near = shapely.distance(shapely.points(chicago_traces.x, chicago_traces.y), middle) < 8.0
    trips, fixes = np.unique(chicago_traces.trip[near], return_counts=True)
    drove = trips[fixes >= 3]
    area = way.buffer(600).envelope
    grid = discovery_grid(area.bounds, CRS)

    def found(n: int) -> list:
        some = chicago_traces.take(np.isin(chicago_traces.trip, drove[:n]))
        result = conflate(matched_evidence(some, kept, grid, known=area).evidence, kept, area,
                          gps_conflate_params(ConflateParams()))
        return [s for s in result.suggestions if reproject(s.geometry, WGS84, CRS).distance(way) < 15.0]

    assert found(2) == []
    (three,) = found(3)
    assert reproject(three.geometry, WGS84, CRS).buffer(15.0).intersection(way).length >= 0.8 * way.length


def test_lone_fixes_of_sparse_trips_draw_the_road_they_were_on(chicago_roads, chicago_ways, chicago_traces):
    """A fix every 90 s (~900 m): the steps off the map are too long to draw, but the trips' lone
    off-map fixes still lie on the deleted way they drove, and their discs draw it, while the
    mapped roads around it stay clear of evidence."""
    way, kept = _taken_off(chicago_roads, chicago_ways, 5411)
    sparse = resample(chicago_traces, 90.0)
    grid = discovery_grid(way.buffer(600).bounds, CRS)
    params = DiscoveryParams()
    found = matched_evidence(sparse, kept, grid, params)
    lone = found.unexplained.lone_fixes(sparse, params.evidence.chord_max_m)
    on_way = shapely.dwithin(shapely.points(sparse.x[lone], sparse.y[lone]), way, params.evidence.fix_reach_m)
    assert len(np.unique(sparse.trip[lone[on_way]])) >= 10

    def share_lit(prob: np.ndarray, lines) -> float:
        pts = [line.interpolate(f, normalized=True) for line in lines for f in np.linspace(0.15, 0.85, 15)]
        rows, cols = rowcol(grid.transform, [p.x for p in pts], [p.y for p in pts])
        return float(np.mean(prob[np.asarray(rows), np.asarray(cols)] >= 0.5))

    with_discs = found.evidence.prob.prob
    all_discs = replace(params, fix_lines=None, headings=None)  # every lone fix a disc (no line, no heading), then taken away
    chords_only = road_likelihood(unexplained_paths(sparse, found.unexplained, all_discs).counts(grid, all_discs.density)
                                  - fix_discs(sparse.x[lone], sparse.y[lone], grid, params.evidence.fix_reach_m),
                                  grid).prob
    assert share_lit(with_discs, [way]) >= 0.7 and share_lit(chords_only, [way]) <= 0.2
    around = [w for w in chicago_ways.geometry if w.within(way.buffer(500)) and not w.intersects(way.buffer(30))]
    assert len(around) >= 20 and share_lit(with_discs, around) <= 0.02


@pytest.mark.parametrize("osm_id", [7340, 3449])
def test_a_busy_short_block_is_drawn_across_its_blob_at_30_s(chicago_roads, chicago_ways, traces_30s, osm_id):
    """A real ~100 m block between two streets, driven by 50-70 trips, taken off the map, a fix
    every 30 s: only its middle lies farther than the off-map distance from the streets, and its
    evidence is a blob about as wide as it is long there. Its skeleton alone (~28 m) fell under
    the smallest component; drawn out to the blob's ends (GraphParams.extend_ends) it covers most
    of the block."""
    way, kept = _taken_off(chicago_roads, chicago_ways, osm_id)
    grid = discovery_grid(way.buffer(600).bounds, CRS)

    def cover(params: DiscoveryParams) -> float:
        edges = [d["geometry"] for _, _, d in matched_evidence(traces_30s, kept, grid, params).evidence.graph.edges(data=True)]
        near = shapely.union_all([e.buffer(15.0) for e in edges if e.distance(way) < 15.0])
        return float(way.intersection(near).length / way.length)

    params = DiscoveryParams()
    assert params.matched_graph.extend_ends
    assert cover(params) >= 0.6
    stubs = replace(params, matched_graph=replace(params.matched_graph, extend_ends=False))
    assert cover(replace(stubs, headings=None)) == 0.0
    # on way 3449 the lone fixes of the trips that drove straight through, drawn along their heading
    # (osmgap.gps.headings), lengthen the blob along the block enough by themselves; not on 7340
    headed = cover(stubs)
    assert headed >= 0.6 if osm_id == 3449 else headed == 0.0


def test_a_missing_block_found_by_gps_joins_the_streets_it_stops_short_of(chicago_roads, chicago_ways, traces_30s):
    """The same real block (way 7340) every 30 s: its evidence stops 20-30 m short of the two
    streets it joins, where they explain the trips. Conflated for GPS, each free end heading for a
    street joins it (osmgap.gps.discovery.FREE_END_REACH_M), so the suggestion is a connected road
    along the block; with the imagery reach (8 m) it floated in the middle, joined to nothing."""
    way, kept = _taken_off(chicago_roads, chicago_ways, 7340)
    area = way.buffer(600).envelope
    found = matched_evidence(traces_30s, kept, discovery_grid(area.bounds, CRS), known=area)

    def on_block(params: ConflateParams) -> list:
        result = conflate(found.evidence, kept, area, params)
        return [s for s in result.suggestions if reproject(s.geometry, WGS84, CRS).distance(way) < 15.0]

    (joined,) = on_block(gps_conflate_params(ConflateParams()))
    line = reproject(joined.geometry, WGS84, CRS)
    assert len(joined.joins) == 2
    assert line.intersection(way.buffer(15.0)).length / line.length >= 0.9  # along the block, not off it
    # each end joins the street straight ahead, where the block meets it, not a nearer way's end
    # 20 m off to the side (the nearest way within reach, which it joined first)
    line_ends = shapely.points(np.asarray(line.coords)[[0, -1]])
    for corner in shapely.points(np.asarray(way.coords)[[0, -1]]):
        assert shapely.distance(corner, line_ends).min() <= 8.0
    assert way.intersection(line.buffer(15.0)).length / way.length >= 0.85
    (floating,) = on_block(replace(gps_conflate_params(ConflateParams()), free_end_reach_m=8.0))
    assert floating.joins == [] and floating.length_m < 0.6 * way.length


@pytest.mark.parametrize("seconds", [None, 30.0])
def test_evidence_is_drawn_only_where_the_trips_are(chicago_roads, chicago_ways, chicago_traces, seconds):
    """GPS evidence lies near fixes, so over an AOI far larger than the traces (a county round a
    city's fleet) the grid is cut to them, on the same pixels, with TRACED_MARGIN_M round every
    fix: the real trips along a deleted way give the same evidence lines on a grid of a fraction
    of the pixels as on the whole AOI's grid."""
    way, kept = _taken_off(chicago_roads, chicago_ways, 5411)
    trips = np.unique(chicago_traces.trip[shapely.dwithin(shapely.points(chicago_traces.x, chicago_traces.y), way, 15)])
    traces = chicago_traces.take(np.isin(chicago_traces.trip, trips[:12] if seconds is None else trips))
    traces = traces if seconds is None else resample(traces, seconds)
    area = box(*chicago_ways.total_bounds)
    whole = discovery_grid(area.bounds, CRS)
    cut = discovery_grid(area.bounds, CRS, traces=traces)
    assert cut.width * cut.height < 0.5 * whole.width * whole.height
    col, row = ~whole.transform * (cut.transform.c, cut.transform.f)
    assert (col, row) == (round(col), round(row)) and cut.transform.a == whole.transform.a
    x0, y1 = cut.transform * (0, 0)
    x1, y0 = cut.transform * (cut.width, cut.height)
    a = area.bounds
    assert x0 <= max(a[0], traces.x.min() - TRACED_MARGIN_M) and x1 >= min(a[2], traces.x.max() + TRACED_MARGIN_M)
    assert y0 <= max(a[1], traces.y.min() - TRACED_MARGIN_M) and y1 >= min(a[3], traces.y.max() + TRACED_MARGIN_M)
    lines = []
    for grid in (whole, cut):
        graph = matched_evidence(traces, kept, grid, known=area).evidence.graph
        lines.append(sorted((d["geometry"] for _, _, d in graph.edges(data=True)), key=lambda g: g.wkb))
    assert len(lines[0]) > 0 and len(lines[0]) == len(lines[1])
    assert all(a.equals_exact(b, 1e-6) for a, b in zip(*lines))


def test_evidence_drawn_by_tiles_is_the_whole_grids(chicago_roads, chicago_ways, chicago_traces):
    """Traces over a large area are drawn by tiles (osmgap.scale.gps_tiles), each on a region
    widened by the evidence's reach: the real trips along a deleted way and beside it, drawn in
    48 px tiles (192 m: seams through the evidence) with a graph margin of 1 px (so that only the
    reach keeps the seams exact: a reach 60 m too short fails), give the whole grid's likelihood
    pixel for pixel, and the same evidence lines but for where they were stitched."""
    from functools import partial

    from osmgap.scale.gps_tiles import draw_by_tiles

    way, kept = _taken_off(chicago_roads, chicago_ways, 5411)
    near = shapely.dwithin(shapely.points(chicago_traces.x, chicago_traces.y), way, 300)
    traces = chicago_traces.take(np.isin(chicago_traces.trip, np.unique(chicago_traces.trip[near])[:40]))
    area = box(*chicago_ways.total_bounds)
    grid = discovery_grid(area.bounds, CRS, traces=traces)
    whole = matched_evidence(traces, kept, grid, known=area).evidence
    tiled = matched_evidence(traces, kept, grid, known=area, draw=partial(draw_by_tiles, tile_px=48, margin_px=1)).evidence
    assert grid.width * grid.height > 50 * 48 * 48  # many tiles
    assert (whole.prob.prob > 0.5).sum() > 300 and np.array_equal(tiled.prob.prob, whole.prob.prob)
    a, b = (shapely.union_all([d["geometry"] for *_, d in g.edges(data=True)]) for g in (whole.graph, tiled.graph))
    assert a.length > 300 and b.length == pytest.approx(a.length, rel=0.03)
    assert a.intersection(b.buffer(3.0)).length > 0.97 * a.length and b.intersection(a.buffer(3.0)).length > 0.97 * b.length
