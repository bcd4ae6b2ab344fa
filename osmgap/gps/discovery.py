"""GPS-only discovery: roads that vehicles drove but OSM lacks, with no imagery at all.

With the OSM roads given (``osmgap diff --gps`` always has them), every trip is first map-matched
to them (osmgap.gps.matching) and only what the map cannot explain is drawn (osmgap.gps.evidence):
off-map runs and the chords of detours, so a trace along a mapped road, however sparse, paints
nothing, and a missing road shows where several trips (``trips_for_half``) left the map alike,
and a large share (``min_share``) of the trips on the mapped roads next to it (a receiver's
outliers along a busy road are a few per cent of its trips). Detours whose fixes lie too far apart
to draw become ``missing_connection`` between two network nodes instead (osmgap.gps.connections),
unless the off-map fixes of several trips trace the straight line between them, which is then drawn;
one direction of traffic beside a two-way way while the other drives on it becomes a second
carriageway (osmgap.gps.carriageways), which the map explains within the GPS error. With ``verify`` set, each line found
is then added to the network and its trips matched again (osmgap.gps.verify): it stays only if it
explains them.
Without them, each trip's whole path is drawn. Either way trip coverage (osmgap.gps.density)
becomes a road likelihood raster; its ridges, thresholded
and skeletonised by the same osmgap.graph.skeleton.extract_graph that serves imagery, become a road
graph; conflation then treats it like any other evidence, and a gap's confidence is the mean
likelihood along it. Cleanup sizes are larger than for imagery: a GPS "road" is as wide as the
spread of its traces (10-30 m), and holes in it are lanes and parking bays, not trees.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import networkx as nx
import numpy as np
from affine import Affine
from scipy import ndimage
from shapely.geometry.base import BaseGeometry

from osmgap.conflate.conflate import Evidence
from osmgap.conflate.osmindex import index_osm
from osmgap.conflate.params import ConflateParams
from osmgap.core.datamodel import ProbabilityRaster, RoadNetwork, Suggestion
from osmgap.core.grid import Grid, grid_over
from osmgap.core.traces import GpsTraces, from_arrays
from osmgap.gps.carriageways import Carriageway, CarriagewayParams, missing_carriageways
from osmgap.gps.carriageways import as_suggestions as carriageway_suggestions
from osmgap.gps.connections import (
    Connection,
    ConnectionParams,
    as_suggestions,
    missing_connections,
    osm_node_ids,
    traced_straight,
)
from osmgap.gps.density import (
    DensityParams,
    blurred_trips,
    fix_discs,
    likelihood,
    ridge_core,
    road_likelihood,
    trip_counts,
)
from osmgap.gps.evidence import EvidenceParams, Unexplained, unexplained
from osmgap.gps.fixlines import FixLineParams, FixLines, fix_lines
from osmgap.gps.headings import HeadedFixes, HeadingParams, headed_fixes
from osmgap.gps.matching import Matches, MatchParams, route_limit, trip_pieces
from osmgap.gps.network import road_graph
from osmgap.gps.tiling import match_all
from osmgap.gps.verify import VerifyParams, verify
from osmgap.graph.skeleton import GraphParams, extract_graph

# OSM is clipped to the AOI but traces just outside it blur in: a road running along the AOI's
# border shows as a GPS ridge inside it with no OSM way left beside it. Evidence this close to
# the border is not judged.
EDGE_MARGIN_M = 25.0
# Evidence stops where a mapped road explains the trips: up to the off-map distance (its floor,
# osmgap.gps.evidence) and a few metres of blur short of the road a missing one joins.
FREE_END_REACH_M = EvidenceParams().off_m + 5.0
# A GPS line's confidence is its mean road likelihood, 1 - 2^(-trips / trips_for_half): 0.5 at two
# trips along it, 0.65 at three. Lines of two or fewer wander through scattered off-map fixes (a
# car park, a campus, a receiver among tall buildings) and are rarely a road; a line needs about
# three trips along most of it (0.6: 2.6 trips). Chicago bench, seeds 0-2, against the 0.5 of every
# other source: dense precision 0.924 / 0.939 / 0.898 -> 0.946 / 0.950 / 0.915, recall of driven
# length 0.612 / 0.556 / 0.649 -> 0.598 / 0.556 / 0.638; at 30 s 0.919 / 0.980 / 0.953 -> 0.944 /
# 0.980 / 0.971 and 0.349 / 0.410 / 0.423 -> 0.338 / 0.410 / 0.413; at 90 s precision 0.923 /
# 0.963 / 0.936 -> 0.981 / 0.963 / 0.968, recall 0.214 / 0.243 / 0.207 -> 0.197 / 0.238 / 0.187
GPS_MIN_CONFIDENCE = 0.6
# evidence lies within this of a fix: chords and lines are drawn between fixes, discs 16 m round
# them, and the blur, the share (40 m) and the ridge (30 m) reach less; a missing connection's
# straight line runs between junctions its trips routed through, each near one of their fixes
TRACED_MARGIN_M = 500.0
GPS_GRAPH = GraphParams(threshold=0.5, min_blob_m2=400.0, max_hole_m2=600.0, spur_m=25.0, min_component_m=60.0,
                        simplify_m=2.0)
# Map-matched evidence stops where it meets the mapped roads (there the map explains the trips): a
# missing block of 80-100 m leaves a ridge of 40-60 m between the two streets it joins. That ridge
# is a blob about as wide (20-30 m) as it is long, whose skeleton stops half the width short of
# each end, so its dead ends are drawn out to the blob's (stop 34; Chicago seeds 0-2, precision /
# recall of driven length: dense 0.936 / 0.527, 0.951 / 0.477, 0.909 / 0.594 -> 0.917 / 0.593,
# 0.941 / 0.540, 0.904 / 0.636; at 30 s recall 0.27 / 0.28 / 0.34 -> 0.33 / 0.34 / 0.38)
MATCHED_GRAPH = replace(GPS_GRAPH, min_component_m=30.0, extend_ends=True)


@dataclass(frozen=True)
class DiscoveryParams:
    resolution_m: float = 4.0  # finer than the GPS error gains nothing and costs time
    density: DensityParams = field(default_factory=DensityParams)
    graph: GraphParams = GPS_GRAPH
    matched_graph: GraphParams = MATCHED_GRAPH
    # the ridge of map-matched evidence: where its trips reach this share of their most within
    # ridge_reach_m (osmgap.gps.density.ridge_core). Chicago bench, seeds 0-2, with the matched
    # graph's 30 m components, against the whole likelihood >= 0.5 and 60 m: dense precision
    # 0.80-0.81 -> 0.89-0.93, recall of driven length 0.30-0.41 -> 0.33-0.45; at 30 s 0.81-0.96 ->
    # 0.87-0.96 and 0.23-0.30 -> 0.21-0.27; 10 m noise 0.73-0.78 -> 0.86-0.88 (share 0.35: less
    # precision, as much recall)
    ridge_share: float = 0.5
    ridge_reach_m: float = 30.0
    fix_lines: FixLineParams | None = field(default_factory=FixLineParams)  # lone fixes that line up (osmgap.gps.fixlines)
    headings: HeadingParams | None = field(default_factory=HeadingParams)  # ... or head one way (osmgap.gps.headings)
    matching: MatchParams = field(default_factory=MatchParams)
    evidence: EvidenceParams = field(default_factory=EvidenceParams)
    connections: ConnectionParams = field(default_factory=ConnectionParams)  # long detours (osmgap.gps.connections)
    # one direction of traffic beside a two-way way, the other on it (osmgap.gps.carriageways); None: off
    carriageways: CarriagewayParams | None = field(default_factory=CarriagewayParams)
    # re-match to verify each line (osmgap.gps.verify); None: off, as on the Chicago bench it changed
    # precision by -0.01 (dense) to +0.02 (10 m noise) and cost recall at 30 s (bench/gps.py --verify)
    verify: VerifyParams | None = None


@dataclass
class MatchedDiscovery:
    """The evidence of map-matched discovery and what it was made from."""

    evidence: Evidence
    matches: Matches
    unexplained: Unexplained
    match_seconds: float  # CPU seconds of matching alone (route table included)
    route_limit_m: float
    match_wall_seconds: float = 0.0  # the same in wall-clock seconds (fastmm builds its route table on several threads)
    verified: dict[str, int] = field(default_factory=dict)  # candidate edges kept / dropped by re-matching
    connections: list[Connection] = field(default_factory=list)  # detours too long to draw (metric)
    node_ids: dict[int, int] = field(default_factory=dict)  # their network node keys -> OSM node ids
    carriageways: list[Suggestion] = field(default_factory=list)  # second carriageways (WGS84 missing_road)

    def connection_suggestions(self, crs: object) -> list[Suggestion]:
        """The connections as ``missing_connection`` suggestions (WGS84; ``crs``: the traces')."""
        return as_suggestions(self.connections, crs, self.node_ids)


def discovery_grid(bounds_metric: tuple[float, float, float, float], crs: object,
                   params: DiscoveryParams = DiscoveryParams(), traces: GpsTraces | None = None) -> Grid:
    """The grid the evidence is drawn on: over ``bounds_metric``; given ``traces`` (in ``crs``),
    only the part of it within ``TRACED_MARGIN_M`` of them, on the same pixels, since no evidence
    lies farther from a fix (a 40 x 40 km AOI around the 31 km2 of the Chicago traces held a
    raster of 100 Mpx, 3.7 GB)."""
    grid = grid_over(bounds_metric, crs, params.resolution_m)
    if traces is None or not len(traces):
        return grid
    res, (minx, maxy) = params.resolution_m, (bounds_metric[0], bounds_metric[3])
    c0 = max(0, int(np.floor((traces.x.min() - TRACED_MARGIN_M - minx) / res)))
    c1 = min(grid.width, int(np.ceil((traces.x.max() + TRACED_MARGIN_M - minx) / res)))
    r0 = max(0, int(np.floor((maxy - traces.y.max() - TRACED_MARGIN_M) / res)))
    r1 = min(grid.height, int(np.ceil((maxy - traces.y.min() + TRACED_MARGIN_M) / res)))
    if c1 <= c0 or r1 <= r0:
        return grid
    return Grid(grid.transform * Affine.translation(c0, r0), c1 - c0, r1 - r0, grid.crs)


def gps_evidence(traces: GpsTraces, grid: Grid, params: DiscoveryParams = DiscoveryParams()) -> Evidence:
    """The road graph the traces (in ``grid.crs``) show, with the likelihood raster behind it."""
    prob = road_likelihood(trip_counts(traces, grid, params.density), grid, params.density)
    return Evidence(extract_graph(prob, params.graph), prob)


@dataclass(frozen=True)
class Drawing:
    """What map-matched evidence is drawn from: the traces, their matches, what the map cannot
    explain, and the straight lines (start, end, trips) that trips are known to have driven."""

    traces: GpsTraces
    matches: Matches
    found: Unexplained
    traced: list[tuple[tuple[float, float], tuple[float, float], np.ndarray]]


# (what to draw, on which grid, how) -> the likelihood raster and the road graph of its ridges
Draw = Callable[[Drawing, Grid, "DiscoveryParams"], tuple[ProbabilityRaster, nx.Graph]]


@dataclass(frozen=True)
class TripPaths:
    """Paths to count distinct trips along on any grid (``paths.trip`` numbers the paths,
    ``trip_of[path]`` is the trip of each; steps up to ``max_gap_m`` joined) and fixes drawn as
    discs of ``disc_m``. Made once for the whole area: each tile of a large one only counts them."""

    paths: GpsTraces
    trip_of: np.ndarray
    max_gap_m: float
    disc_x: np.ndarray = field(default_factory=lambda: np.zeros(0))
    disc_y: np.ndarray = field(default_factory=lambda: np.zeros(0))
    disc_m: float = 0.0

    def counts(self, grid: Grid, density: DensityParams) -> np.ndarray:
        """Distinct trips per pixel of ``grid`` along the paths, plus the discs (osmgap.gps.density)."""
        return (trip_counts(self.paths, grid, replace(density, max_gap_m=self.max_gap_m), trip_of=self.trip_of)
                + fix_discs(self.disc_x, self.disc_y, grid, self.disc_m, density))


def drawn_paths(drawing: Drawing, params: DiscoveryParams = DiscoveryParams()) -> tuple[TripPaths, TripPaths]:
    """What :func:`evidence_rasters` counts: the unexplained paths and the matched ones."""
    return (unexplained_paths(drawing.traces, drawing.found, params, drawing.traced, drawing.matches.piece),
            mapped_paths(drawing.traces, drawing.matches, params))


def evidence_rasters(drawn: tuple[TripPaths, TripPaths], grid: Grid, params: DiscoveryParams = DiscoveryParams(),
                     ) -> tuple[ProbabilityRaster, ProbabilityRaster]:
    """The road likelihood of what the map cannot explain (``drawn``: :func:`drawn_paths`; 0 where
    those trips are under ``min_share`` of the mapped roads' beside them), and its ridge core,
    which becomes the graph."""
    unexplained, mapped = drawn
    evidence = unexplained.counts(grid, params.density)
    blurred = blurred_trips(evidence, grid, params.density)
    prob = likelihood(blurred, grid, params.density)
    share = unexplained_share(evidence, mapped.counts(grid, params.density), grid, params)
    prob.prob[share < params.evidence.min_share] = 0.0
    return prob, ridge_core(blurred, prob, grid, params.ridge_share, params.ridge_reach_m)


def evidence_reach_m(params: DiscoveryParams = DiscoveryParams()) -> float:
    """How far beyond a pixel the drawn paths and fixes that set its rasters can lie: a lone
    fix's disc, the blur (scipy's Gaussian reaches 4 sigma) and the farther of the share's and the
    ridge's maximum filters. A raster drawn on a window this much larger than a part of the grid
    is, on that part, the whole grid's pixel for pixel."""
    return (params.evidence.fix_reach_m + 4 * params.density.sigma_m
            + max(params.evidence.share_reach_m, params.ridge_reach_m) + 2 * params.resolution_m)


def draw_whole(drawing: Drawing, grid: Grid, params: DiscoveryParams = DiscoveryParams(),
               ) -> tuple[ProbabilityRaster, nx.Graph]:
    """The evidence rasters over the whole grid, and the graph of their ridge core."""
    prob, core = evidence_rasters(drawn_paths(drawing, params), grid, params)
    return prob, extract_graph(core, params.matched_graph)


def matched_evidence(traces: GpsTraces, roads: RoadNetwork, grid: Grid, params: DiscoveryParams = DiscoveryParams(),
                     cache_dir: Path | None = None, known: BaseGeometry | None = None,
                     draw: Draw | None = None) -> MatchedDiscovery:
    """The road graph of what the map (``roads``) cannot explain in ``traces`` (in ``grid.crs``);
    ``known``: the metric area ``roads`` covers (fixes outside it are no evidence; None: all);
    ``draw``: how the evidence becomes rasters and a graph (None: ``draw_whole``; a grid too large
    to hold whole is drawn by tiles, osmgap.scale.gps_tiles)."""
    started, started_wall = time.process_time(), time.perf_counter()
    pieces = trip_pieces(traces, params.matching)
    limit = route_limit(traces, pieces, params.matching)
    osm = index_osm(roads, grid.crs)
    network = road_graph(osm)
    matches = match_all(network, limit, traces, pieces, params.matching, cache_dir=cache_dir)
    limit = matches.limit_m  # lower where the whole route table would not fit in memory (osmgap.gps.tiling)
    seconds, wall = time.process_time() - started, time.perf_counter() - started_wall
    found = unexplained(traces, matches, params.evidence, known)
    # connections whose trips trace them straight are drawn (as chords); the rest keep their unknown course
    straight, joins = traced_straight(missing_connections(traces, matches, found, network, params.connections),
                                      traces, found, params.connections)
    prob, graph = (draw or draw_whole)(Drawing(traces, matches, found, [(c.a, c.b, trips) for c, trips in straight]),
                                       grid, params)
    checked = (verify(graph, traces, matches, found, network, limit, params.matching, params.evidence, params.verify,
                      known) if len(network) and params.verify is not None else {})
    twins: list[Carriageway] = (missing_carriageways(traces, matches, network, params.carriageways, known)
                                if params.carriageways is not None else [])
    return MatchedDiscovery(Evidence(graph, prob), matches, found, seconds, limit, wall, checked, joins,
                            osm_node_ids(osm, joins), carriageway_suggestions(twins, osm, grid.crs))


def unexplained_paths(traces: GpsTraces, found: Unexplained, params: DiscoveryParams = DiscoveryParams(),
                      traced: list[tuple[tuple[float, float], tuple[float, float], np.ndarray]] | None = None,
                      pieces: np.ndarray | None = None) -> TripPaths:
    """The evidence chords (each drawn alone, counted once per trip), plus the lone off-map fixes
    that no chord reaches (osmgap.gps.evidence): lines where they line up (osmgap.gps.fixlines),
    segments along their trips' shared heading (osmgap.gps.headings), discs otherwise.
    ``traced``: straight lines (start, end, trips) the trips are known to have driven along
    (osmgap.gps.connections.traced_straight), drawn once per trip like the chords; ``pieces``: the trip piece of each fix, as matching cut
    them (None: cut here, osmgap.gps.matching.trip_pieces)."""
    a, b = found.chords(traces, params.evidence.chord_max_m)
    lone = found.lone_fixes(traces, params.evidence.chord_max_m)  # consecutive ones lie > chord_max_m apart
    lines = (fix_lines(traces.x[lone], traces.y[lone], traces.trip[lone], params.fix_lines) if params.fix_lines
             else FixLines.none(len(lone)))
    # a traced line drawn in pieces no longer than a chord (the density counts no longer step)
    known = [(p, q, t) for start, end, t in traced or [] for p, q in _pieces(start, end, params.evidence.chord_max_m)]
    discs = lone[lines.disc]
    pieces = trip_pieces(traces, params.matching) if pieces is None else pieces
    headed = (headed_fixes(traces, discs, pieces, params.headings) if params.headings else HeadedFixes.none(len(discs)))
    line_trips = [*lines.trips, *(t for _, _, t in known), *np.reshape(headed.trip, (-1, 1))]
    # each chord one path, each line one path per trip behind it; a trip counts once per pixel
    owners = [len(t) for t in line_trips]
    line_start = np.vstack([lines.start, *(np.reshape(p, (1, 2)) for p, _, _ in known), headed.start])
    line_end = np.vstack([lines.end, *(np.reshape(q, (1, 2)) for _, q, _ in known), headed.end])
    starts = np.vstack([np.column_stack([traces.x[a], traces.y[a]]), np.repeat(line_start, owners, axis=0)])
    ends = np.vstack([np.column_stack([traces.x[b], traces.y[b]]), np.repeat(line_end, owners, axis=0)])
    xy = np.stack([starts, ends], axis=1).reshape(-1, 2)
    trip_of = np.concatenate([traces.trip[a], *line_trips]).astype(np.int64)
    paths = from_arrays(xy[:, 0], xy[:, 1], traces.crs, trip=np.repeat(np.arange(len(trip_of)), 2))
    discs = discs[~headed.drawn]
    return TripPaths(paths, trip_of, params.evidence.chord_max_m, traces.x[discs], traces.y[discs],
                     params.evidence.fix_reach_m)


def _pieces(start: tuple[float, float], end: tuple[float, float], max_m: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """The straight line from ``start`` to ``end`` cut into equal pieces no longer than ``max_m``."""
    a, b = np.asarray(start, float), np.asarray(end, float)
    n = max(1, int(np.ceil(np.hypot(*(b - a)) / max_m)))
    cuts = a + np.linspace(0.0, 1.0, n + 1)[:, None] * (b - a)
    return list(zip(cuts[:-1], cuts[1:]))


def mapped_paths(traces: GpsTraces, matches: Matches, params: DiscoveryParams = DiscoveryParams()) -> TripPaths:
    """The trips along their matched positions on the mapped roads (cut where a fix is off them)."""
    on = matches.matched & np.isfinite(matches.mx)
    path = np.cumsum(np.r_[True, (matches.piece[1:] != matches.piece[:-1]) | ~on[1:] | ~on[:-1]]) - 1
    ids = path[on]
    owner = np.zeros(int(ids.max()) + 1 if len(ids) else 1, np.int64)
    owner[ids] = traces.trip[on]
    snapped = from_arrays(matches.mx[on], matches.my[on], traces.crs, trip=ids)
    return TripPaths(snapped, owner, params.density.max_gap_m)


def unexplained_share(evidence: np.ndarray, mapped: np.ndarray, grid: Grid,
                      params: DiscoveryParams = DiscoveryParams()) -> np.ndarray:
    """Per pixel: trips unexplained here over the most trips on a mapped road within
    ``evidence.share_reach_m`` (both blurred by the GPS error). A missing road is unexplained for
    every trip that drives it; the outliers beside a busy road are a few per cent of its trips."""
    sigma_px = params.density.sigma_m / abs(grid.transform.a)
    size = 2 * int(round(params.evidence.share_reach_m / abs(grid.transform.a))) + 1
    near = ndimage.maximum_filter(ndimage.gaussian_filter(mapped, sigma_px, mode="constant"), size=size)
    own = ndimage.gaussian_filter(evidence, sigma_px, mode="constant")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(near > 0, own / near, np.inf)


def gps_conflate_params(params: ConflateParams) -> ConflateParams:
    """Conflation settings for GPS-only evidence: a wider margin at the AOI border, free ends
    joined to the OSM way ahead of them from as far as the evidence stops short of a mapped road
    (within the off-map distance of one the map explains the trips, so no evidence is drawn there),
    and lines kept only where about three trips drove them (``GPS_MIN_CONFIDENCE``)."""
    return replace(params, edge_margin_m=max(params.edge_margin_m, EDGE_MARGIN_M),
                   min_confidence=max(params.min_confidence, GPS_MIN_CONFIDENCE),
                   free_end_reach_m=max(params.free_end_reach_m, FREE_END_REACH_M))
