"""How well do GPS traces alone recover roads deleted from OSM? Real Chicago UIC shuttle traces.

Two methods: ``matched`` (default; osmgap.gps.discovery.matched_evidence, as ``osmgap diff --gps``
runs it: every trip map-matched to the kept OSM ways, only what they cannot explain drawn) and,
with ``--baseline``, ``density`` (each trip's whole path drawn, the method before map matching).

The data directory's gps/chicago-uic holds 889 real trips (EPSG:32616, ~1-4 s sampling) and the
OSM road graph of the same area (mapconstruction format, merged into junction-to-junction ways
by osmgap.sources.mapgraph). The OSM ways inside the traces' extent are kept; a seeded 20 % of them
is deleted (osmgap.conflate.gapscore.deletion_experiment); GPS-only discovery (osmgap.gps.discovery ->
osmgap.conflate.conflate, as ``osmgap diff --gps`` without imagery runs it) is scored with
osmgap.conflate.gapscore.score: relaxed matching, a suggestion point counts when it lies within 15 m of a
deleted way (and vice versa); precision and recall are of LENGTH.

Recall is printed four times: over all deleted length; over the deleted ways the FULL trace
set drove (road likelihood >= 0.5 along >= 50 % of the way), since shuttles keep to their routes
and no GPS method can find a street nobody drove; over the driven ones that do not run
beside a kept way (>= 70 % of the way within 25 m of kept OSM: one carriageway of a dual
carriageway whose other half is still mapped; GPS blurs the two halves into one ridge); and
(``rec.on``) over the driven ones that trips drive ON: along >= 50 % of the way, fixes of >= 2
distinct trips within 6 m of it and nearer to it than to any kept way. The likelihood's blur also
marks as driven a way whose traffic all runs on a busy kept road 10-15 m beside it, which no
method can find from that traffic; ``rec.on`` leaves those out. The issue's target is read from
the driven column, not from this one.

Then the same with the traces degraded: 10 % and 1 % of the trips kept (fewer vehicles),
resampled to one point per 10, 30, 60 and 90 s (coarser receivers), and 10 m Gaussian noise per
axis. Recall of driven deleted length is also split by how many trips drove each deleted way
(the median, along the way, of the full traces' distinct trips within 8 m), and matching speed is
printed as fixes per CPU second of the process (route table included, and apart: a table is
built once per run, a fixed cost that dominates a row of few fixes). Each row prints the issue's
target beside it where there is one.

Missing connections (osmgap.gps.connections: detours too long to draw, reported between two OSM
nodes) claim that a road missing between two nodes forces the trips round. ``conn`` counts them;
``c.prec`` is the share right by ROUTE (by count): the deleted ways shorten the shortest route between
its two nodes by at least ConnectionParams.min_detour_m (200 m), as the detour a connection needs to
be reported; ``c.rec`` the share of driven deleted length on ways with >= 50 % of their length on
such a shortened route ("deleted ways explained"); ``rec.flag`` the share of driven deleted length
that a line finds or a right connection explains (what a mapper is pointed at, drawn or not; the
issue's target stays on ``rec.driven``, lines only). ``c.line`` is the precision by the straight
LINE between the nodes (stop 25-34's score): right when >= 50 % of it lies within CONNECTION_M (30 m) of
deleted ways, which calls a missing road that turns a corner between the two nodes wrong.
``--rows`` picks rows by name.

Scale (--scale N; 85 gives 10 million fixes): the real points repeated N times (each copy its own
trips, shifted by up to 2 m: synthetic copies of real trips) are written as one CSV, then read,
rasterised, turned into a road graph, map-matched (the matched discovery) and scored as
support along OSM ways (the rasters as ``osmgap.gps.density.density_rasters`` makes them for other
uses; the graph and the support as ``osmgap diff --gps`` does); the wall and CPU time of each step and the
peak memory of the process are printed.

Support (--support; issue 16 item 5): GPS support of suggestions that another source (imagery,
--candidates) made, as ``osmgap diff`` applies it (osmgap.gps.support, by map matching) and as it
was applied before (points in a 15 m corridor against the mapped roads within 300 m: >= 2 trips
at >= 0.25 of the local traffic confirm, < 0.02 demotes). The suggestions: the deleted ways the
full traces drove (real missing roads) and as many chords across blocks (straight lines between
two kept ways, seeded, their middle >= 30 m from every road, with no off-map fix within 15 m:
nobody drove there). Printed per trace variant: the share of each confirmed and demoted.

Route tables (--tables): the table of shortest routes the matcher builds for a 3 km route limit (a
90 s trace's), on the pieces and on their chains (osmgap.gps.chains), for the real OSM extracts in
the data directory and for this bench's map (seed ``--seed``'s deletions): nodes, size of the
table fastmm writes (28 bytes a route), osmgap.gps.tiling's estimate of it in memory, CPU seconds to
build and load it; then, for central Helsinki's network laid side by side k x k times (SYNTHETIC
copies; estimates only, no table built), the whole area's table and how osmgap.gps.tiling would
match it within the 1 GB budget (tile side, route limit, largest table).

Second carriageways (osmgap.gps.carriageways: one direction of traffic beside a two-way way, the
other on it) are added to the matched method's suggestions as ``osmgap diff --gps`` adds them;
``cw`` counts them, ``--no-carriageways`` leaves them out (what they add).

Usage: python bench/gps.py [--seed 0] [--radius 15] [--json OUT] [--baseline] [--scale N] [--support] [--tables] [--no-carriageways]
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
import shapely
from scipy import ndimage
from shapely.geometry import LineString, box
from shapely.ops import substring

from osmgap.conflate.conflate import conflate, probability_along
from osmgap.conflate.gapscore import deletion_experiment, score
from osmgap.conflate.osmindex import index_osm
from osmgap.conflate.params import ConflateParams
from osmgap.core.aoi import Aoi, reproject
from osmgap.core.datamodel import WGS84, ProbabilityRaster, RoadNetwork, Suggestion
from osmgap.core.datapaths import data_root
from osmgap.core.traces import GpsTraces, add_noise, keep_trips, resample
from osmgap.gps.carriageways import not_suggested
from osmgap.gps.connections import ConnectionParams
from osmgap.gps.density import TrafficIndex, density_rasters, road_likelihood, trip_counts
from osmgap.gps.discovery import DiscoveryParams, discovery_grid, gps_conflate_params, gps_evidence, matched_evidence
from osmgap.gps.matching import Matcher, MatchParams, route_limit, trip_pieces
from osmgap.gps.network import RoadGraph, road_graph
from osmgap.gps.support import apply_gps_support
from osmgap.gps.tiling import plan_matching
from osmgap.gps.verify import VerifyParams
from osmgap.sources.gps import GpsSource, read_file, read_gps
from osmgap.sources.mapgraph import read_mapconstruction_graph
from osmgap.sources.osm import load_osm

CRS = "EPSG:32616"
DRIVEN_SHARE = 0.5
ON_WAY_M, ON_WAY_TRIPS, ON_WAY_BIN_M = 6.0, 2, 5.0  # driven ON a way (rec.on): see the docstring
BESIDE_M, BESIDE_SHARE, JUNCTION_M = 20.0, 0.7, 25.0


CONNECTION_M, CONNECTION_SHARE = 30.0, 0.5
TRIP_BINS = ((0, 2, "<2"), (2, 5, "2-4"), (5, 20, "5-19"), (20, 10**9, ">=20"))
# (precision, recall of driven length) the issue asks for; None: no target
TARGETS = {"all traces": (0.90, 0.75), "resampled 30 s": (0.85, 0.55), "resampled 90 s": (0.80, None)}
MATCH_TARGET_PPS = 50_000


def variants(traces: GpsTraces, seed: int) -> list[tuple[str, GpsTraces]]:
    return [("all traces", traces), ("10 % of trips", keep_trips(traces, 0.10, seed)),
            ("1 % of trips", keep_trips(traces, 0.01, seed)),
            *[(f"resampled {s} s", resample(traces, float(s))) for s in (10, 30, 60, 90)],
            ("noise 10 m", add_noise(traces, 10.0, seed))]


def picked_variants(traces: GpsTraces, seed: int, only: list[str] | None) -> list[tuple[str, GpsTraces]]:
    """The rows named in ``only`` (e.g. "resampled 60 s"; None: all)."""
    return [(n, v) for n, v in variants(traces, seed) if only is None or n in only]


def trips_per_way(trips: np.ndarray, grid, lines: np.ndarray, reach_m: float = 8.0) -> np.ndarray:
    """Per line: the median along it of the distinct trips passing within ``reach_m``."""
    px = abs(grid.transform.a)
    near = ndimage.maximum_filter(trips, size=2 * int(round(reach_m / px)) + 1)
    raster = ProbabilityRaster(near, grid.transform, grid.crs)
    return np.array([float(np.median(probability_along(raster, line, 5.0))) for line in lines])


def unmapped_places(traces: GpsTraces, roads, grid, area, params: DiscoveryParams) -> np.ndarray:
    """Metric lines suggested from all traces against the complete (undeleted) graph: driven places
    the graph lacks (bus turnarounds, campus drives), which no deletion score can call right."""
    crs = grid.crs
    found = matched_evidence(traces, roads, grid, params)
    result = conflate(found.evidence, roads, area, gps_conflate_params(ConflateParams()))
    return np.asarray([reproject(s.geometry, WGS84, crs) for s in result.suggestions
                       if s.geometry.geom_type == "LineString"], dtype=object)


def _near_share(suggestions: list, lines: np.ndarray, crs, radius_m: float) -> np.ndarray:
    """Per suggestion: the share of its length within ``radius_m`` of ``lines``."""
    if not len(lines) or not suggestions:
        return np.zeros(len(suggestions))
    zone = shapely.union_all(lines).buffer(radius_m)
    geoms = np.asarray([reproject(s.geometry, WGS84, crs) for s in suggestions], dtype=object)
    return shapely.length(shapely.intersection(geoms, zone)) / np.maximum(shapely.length(geoms), 1e-9)


def connection_score(connections: list, deleted: np.ndarray, driven: np.ndarray) -> tuple[int, float | None, float]:
    """(count, precision by count, share of driven deleted length explained) of missing connections.
    A connection is right when >= CONNECTION_SHARE of the straight segment between its two nodes lies
    within CONNECTION_M of deleted ways (the missing road runs along it; a long segment crossing the
    grid meets some deleted way by chance, so the share is of the segment, not of the way); a deleted
    way is explained when >= CONNECTION_SHARE of it lies within CONNECTION_M of a right segment."""
    if not connections:
        return 0, None, 0.0
    segments = np.asarray([shapely.LineString([c.a, c.b]) for c in connections], dtype=object)
    near_deleted = shapely.union_all(deleted).buffer(CONNECTION_M)
    right = shapely.length(shapely.intersection(segments, near_deleted)) >= CONNECTION_SHARE * shapely.length(segments)
    length = shapely.length(deleted)
    found = np.zeros(len(deleted), bool)
    if right.any():
        zone = shapely.union_all(segments[right]).buffer(CONNECTION_M)
        found = shapely.length(shapely.intersection(deleted, zone)) >= CONNECTION_SHARE * np.maximum(length, 1e-9)
    return len(connections), float(right.mean()), float(length[found & driven].sum() / max(length[driven].sum(), 1e-9))


def route_graph(lines: np.ndarray) -> nx.Graph:
    """The (metric) lines as a graph split wherever two cross or meet: nodes are rounded (x, y),
    edges carry their ``length`` and ``geometry``."""
    g = nx.Graph()
    noded = shapely.get_parts(shapely.node(shapely.MultiLineString([list(line.coords) for line in lines])))
    for seg in noded:
        a, b = (tuple(np.round(c, 1)) for c in (seg.coords[0], seg.coords[-1]))
        if a != b and (not g.has_edge(a, b) or g.edges[a, b]["length"] > seg.length):
            g.add_edge(a, b, length=seg.length, geometry=seg)
    return g


def _route(g: nx.Graph, xy: np.ndarray, a: tuple[float, float], b: tuple[float, float]) -> tuple[float, list]:
    """(length, edge geometries) of the shortest route between the nodes of ``g`` nearest a and b."""
    ends = [tuple(xy[int(np.argmin(np.hypot(xy[:, 0] - p[0], xy[:, 1] - p[1])))]) for p in (a, b)]
    try:
        path = nx.shortest_path(g, ends[0], ends[1], weight="length")
    except nx.NetworkXNoPath:
        return float("inf"), []
    edges = [g.edges[u, v] for u, v in zip(path[:-1], path[1:])]
    return float(sum(e["length"] for e in edges)), [e["geometry"] for e in edges]


def connection_routes(connections: list, kept: np.ndarray, deleted: np.ndarray) -> tuple[float | None, np.ndarray]:
    """(precision by count, per deleted way: explained) of missing connections by route (see the
    docstring): right when the complete graph joins its two nodes by a route at least
    ConnectionParams.min_detour_m shorter than the kept graph does; a deleted way is explained when
    >= CONNECTION_SHARE of it lies on such a route."""
    if not connections:
        return None, np.zeros(len(deleted), bool)
    saving = ConnectionParams().min_detour_m
    kept_g, full_g = route_graph(kept), route_graph(np.r_[kept, deleted])
    kept_xy, full_xy = np.asarray(list(kept_g.nodes)), np.asarray(list(full_g.nodes))
    right, routes = [], []
    for c in connections:
        before, _ = _route(kept_g, kept_xy, c.a, c.b)
        after, path = _route(full_g, full_xy, c.a, c.b)
        right.append(before - after >= saving)
        if right[-1]:
            routes.extend(path)
    length = shapely.length(deleted)
    found = np.zeros(len(deleted), bool)
    if routes:
        on_route = shapely.union_all(routes).buffer(1.0)
        found = shapely.length(shapely.intersection(deleted, on_route)) >= CONNECTION_SHARE * np.maximum(length, 1e-9)
    return float(np.mean(right)), found


def flagged_recall(lines: list, deleted: np.ndarray, driven: np.ndarray, explained: np.ndarray, crs: object,
                   radius_m: float) -> tuple[float, float]:
    """(share of driven deleted length that a line finds or a right connection explains, share that a
    right connection explains): what a mapper is pointed at, drawn or not."""
    length = shapely.length(deleted)
    total = max(float(length[driven].sum()), 1e-9)
    by_connection = float(length[explained & driven].sum())
    rest = driven & ~explained
    by_line = 0.0
    if rest.any():
        by_line = score(lines, deleted[rest], crs, radius_m=radius_m)["recall_length"] * float(length[rest].sum())
    return (by_connection + by_line) / total, by_connection / total


def _target(value: float, target: float | None) -> str:
    return "" if target is None else f"{'ok' if value >= target else 'MISSED'} >= {target:.2f}"


def beside_kept(deleted: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """Deleted ways running beside a kept way: >= BESIDE_SHARE of the way, leaving out JUNCTION_M
    at each end (where every way meets the streets it crosses), within BESIDE_M of kept OSM."""
    zone = shapely.union_all(kept).buffer(BESIDE_M)
    length = shapely.length(deleted)
    cut = np.where(length > 3 * JUNCTION_M, JUNCTION_M, 0.0)
    middle = np.asarray([substring(g, c, g.length - c) for g, c in zip(deleted, cut)], dtype=object)
    return shapely.length(shapely.intersection(middle, zone)) >= BESIDE_SHARE * shapely.length(middle)


def driven_on(deleted: np.ndarray, kept: np.ndarray, traces: GpsTraces, driven: np.ndarray) -> np.ndarray:
    """The driven deleted ways that trips drive on, not beside: along >= DRIVEN_SHARE of the way
    (JUNCTION_M at each end left out, as for ``beside_kept``), each ON_WAY_BIN_M stretch passed by
    >= ON_WAY_TRIPS distinct trips whose fixes lie within ON_WAY_M of the way and nearer to it than to
    any kept way. A trip passes the stretches between two such consecutive fixes of its own (a fix
    every 1-4 s at city speed is one per 10-40 m, so single fixes would leave most stretches empty)."""
    points = shapely.points(traces.x, traces.y)
    fix, way = shapely.STRtree(deleted).query_nearest(points, max_distance=ON_WAY_M, all_matches=False)
    _, to_kept = shapely.STRtree(kept).query_nearest(points[fix], all_matches=False, return_distance=True)
    mine = shapely.distance(points[fix], deleted[way]) < to_kept
    fix, way = fix[mine], way[mine]
    length = shapely.length(deleted)
    cut = np.where(length > 3 * JUNCTION_M, JUNCTION_M, 0.0)
    at = (shapely.line_locate_point(deleted[way], points[fix]) - cut[way]) // ON_WAY_BIN_M
    # a fix and the next fix of the same trip on the same way: the trip passed every stretch between
    follows = np.r_[(fix[1:] == fix[:-1] + 1) & (way[1:] == way[:-1]) & (traces.trip[fix[1:]] == traces.trip[fix[:-1]]), False]
    lo = np.where(follows, np.minimum(at, np.roll(at, -1)), at).astype(np.int64)
    hi = np.where(follows, np.maximum(at, np.roll(at, -1)), at).astype(np.int64)
    count = hi - lo + 1
    frame = pd.DataFrame({"way": np.repeat(way, count), "trip": np.repeat(traces.trip[fix], count),
                          "bin": np.repeat(lo, count) + np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)})
    bins = np.maximum(np.ceil((length - 2 * cut) / ON_WAY_BIN_M), 1).astype(np.int64)
    frame = frame[(frame.bin >= 0) & (frame.bin < bins[frame.way.to_numpy()])]
    busy = frame.groupby(["way", "bin"]).trip.nunique().ge(ON_WAY_TRIPS).groupby("way").sum()
    share = np.zeros(len(deleted))
    share[busy.index.to_numpy()] = busy.to_numpy() / bins[busy.index.to_numpy()]
    return driven & (share >= DRIVEN_SHARE)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--radius", type=float, default=15.0, help="relaxed matching radius, metres")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--baseline", action="store_true", help="also score the density method (whole paths drawn)")
    ap.add_argument("--verify", action="store_true", help="verify each GPS line by re-matching (osmgap.gps.verify)")
    ap.add_argument("--no-carriageways", action="store_true",
                    help="without second carriageways (osmgap.gps.carriageways): what they add")
    ap.add_argument("--compare", type=int, metavar="TRIPS",
                    help="match TRIPS real trips with fastmm and with leuvenmapmatching (pip install it) instead")
    ap.add_argument("--rows", nargs="+", help='only these rows, e.g. "resampled 60 s" (default: all)')
    ap.add_argument("--scale", type=int, help="time reading and rasterising the traces repeated N times instead")
    ap.add_argument("--support", action="store_true", help="score GPS support of real and phantom suggestions instead")
    ap.add_argument("--tables", action="store_true", help="size and time the 3 km route table on pieces and on chains instead")
    args = ap.parse_args()
    if args.tables:
        return tables_run(args.seed)
    if args.scale:
        return scale_run(args.scale, args.seed)
    if args.compare:
        return compare_matchers(args.compare)
    if args.support:
        return support_run(args.seed, args.rows)
    root = data_root() / "gps" / "chicago-uic"
    started = time.perf_counter()
    traces_wgs = read_gps([root / "trips"], GpsSource(crs=CRS))
    ways = read_mapconstruction_graph(root / "chicago_vertices_osm.txt", root / "chicago_edges_osm.txt", CRS)
    traces = traces_wgs.to_crs(CRS)
    extent = box(traces.x.min(), traces.y.min(), traces.x.max(), traces.y.max())
    with tempfile.TemporaryDirectory() as tmp:
        osm_path = Path(tmp) / "chicago-osm.geojson"
        ways[ways.intersects(extent)].to_crs(WGS84).to_file(osm_path, driver="GeoJSON")
        everywhere = Aoi(box(-180, -85, 180, 85), name="everywhere", source=str(osm_path))
        roads = load_osm(str(osm_path), everywhere)
    exp = deletion_experiment(roads, share=0.2, seed=args.seed)
    area = exp.aoi.to_metric(exp.aoi.geometry)
    grid = discovery_grid(area.bounds, exp.crs)
    params = DiscoveryParams(verify=VerifyParams() if args.verify else None,
                             carriageways=None if args.no_carriageways else DiscoveryParams().carriageways)
    full_trips = trip_counts(traces, grid, params.density)
    full = road_likelihood(full_trips, grid, params.density)
    driven = np.array([(probability_along(full, line, 5.0) >= 0.5).mean() >= DRIVEN_SHARE for line in exp.deleted])
    kept_lines = exp.kept.ways.to_crs(exp.crs).geometry.values
    apart = driven & ~beside_kept(exp.deleted, kept_lines)
    on_way = driven_on(exp.deleted, kept_lines, traces, driven)
    per_way = trips_per_way(full_trips, grid, exp.deleted)
    bins = [(name, driven & (per_way >= lo) & (per_way < hi)) for lo, hi, name in TRIP_BINS]
    print(f"Chicago UIC: {len(traces):,} points, {traces.trips} trips; {len(roads)} OSM ways in the traces' extent, "
          f"{len(exp.deleted)} deleted ({sum(shapely.length(exp.deleted)) / 1000:.1f} km), of which {int(driven.sum())} "
          f"driven ({sum(shapely.length(exp.deleted[driven])) / 1000:.1f} km), {int(apart.sum())} driven and not beside a "
          f"kept way ({sum(shapely.length(exp.deleted[apart])) / 1000:.1f} km), {int(on_way.sum())} driven on the way "
          f"({sum(shapely.length(exp.deleted[on_way])) / 1000:.1f} km); relaxed radius {args.radius:g} m; "
          f"seed {args.seed}", flush=True)
    unmapped = unmapped_places(traces, roads, grid, area, params)
    print(f"places the complete graph lacks (suggested from all traces on the undeleted graph): "
          f"{len(unmapped)} lines, {sum(shapely.length(unmapped)) / 1000:.2f} km; 'prec.mapped' leaves out "
          f"suggestions with >= 70 % of their length within {args.radius:g} m of them")
    print("driven deleted km by trips along the way: " + ", ".join(
        f"{name}: {sum(shapely.length(exp.deleted[m])) / 1000:.1f}" for name, m in bins))
    rows: list[dict[str, Any]] = []
    methods = ["matched", "density"] if args.baseline else ["matched"]
    bin_head = "".join(f"{'rec.' + name:>9}" for name, _ in bins)
    header = (f"{'method':<8}{'traces':<16}{'points':>9}{'suggest':>9}{'cw':>4}{'km':>7}{'prec':>7}{'recall':>8}{'rec.driven':>11}"
              f"{'rec.apart':>10}{'rec.on':>7}{'prec.mapped':>12}{bin_head}{'conn':>5}{'c.prec':>7}{'c.rec':>6}{'c.line':>7}{'rec.flag':>9}{'fix/s':>9}{'sec':>6}  target (precision, recall driven)")
    print(header)
    with tempfile.TemporaryDirectory() as cache:
        for name, variant in picked_variants(traces, args.seed, args.rows):
            for method in methods:
                t0 = time.perf_counter()
                speed = None
                conn: tuple[int, float | None, float] = (0, None, 0.0)
                by_route: tuple[float | None, np.ndarray] = (None, np.zeros(len(exp.deleted), bool))
                if method == "matched":
                    found = matched_evidence(variant, exp.kept, grid, params, cache_dir=Path(cache))
                    evidence, speed = found.evidence, len(variant) / max(found.match_seconds, 1e-9)
                    conn = connection_score(found.connections, exp.deleted, driven)
                    by_route = connection_routes(found.connections, kept_lines, exp.deleted)
                else:
                    evidence = gps_evidence(variant, grid, params)
                result = conflate(evidence, exp.kept, area, gps_conflate_params(ConflateParams()))
                lines = [s for s in result.suggestions if s.geometry.geom_type == "LineString"]
                twins = not_suggested(found.carriageways, lines, exp.crs) if method == "matched" else []
                lines += twins  # as osmgap diff --gps adds them (osmgap.jobs.diff)
                all_ = score(lines, exp.deleted, exp.crs, radius_m=args.radius)
                drv = score(lines, exp.deleted[driven], exp.crs, radius_m=args.radius)
                apt = score(lines, exp.deleted[apart], exp.crs, radius_m=args.radius)
                onw = score(lines, exp.deleted[on_way], exp.crs, radius_m=args.radius)
                mapped = [s for s, lacks in zip(lines, _near_share(lines, unmapped, exp.crs, args.radius) >= 0.7) if not lacks]
                pm = score(mapped, exp.deleted, exp.crs, radius_m=args.radius)["precision_length"]
                flagged, c_rec = flagged_recall(lines, exp.deleted, driven, by_route[1], exp.crs, args.radius)
                by_trips = {n: round(score(lines, exp.deleted[m], exp.crs, radius_m=args.radius)["recall_length"], 3)
                            if m.any() else None for n, m in bins}
                row: dict[str, Any] = {"method": method, "traces": name, "points": len(variant), "trips": variant.trips,
                       "suggestions": len(lines), "carriageways": len(twins), "suggested_km": round(all_["suggested_km"], 2),
                       "precision_length": round(all_["precision_length"], 3),
                       "recall_length": round(all_["recall_length"], 3), "recall_length_driven": round(drv["recall_length"], 3),
                       "recall_length_driven_apart": round(apt["recall_length"], 3),
                       "recall_length_driven_on_way": round(onw["recall_length"], 3),
                       "recall_length_driven_by_trips": by_trips, "precision_length_mapped_places": round(pm, 3),
                       "connections": conn[0], "connection_precision": by_route[0],
                       "connection_recall_driven": round(c_rec, 3), "connection_precision_line": conn[1],
                       "recall_length_driven_flagged": round(flagged, 3),
                       "connection_recall_driven_line": round(conn[2], 3),
                       "match_fixes_per_cpu_s": None if speed is None else round(speed),
                       "match_wall_s": None if speed is None else found.match_wall_seconds,
                       "match_table_cpu_s": None if speed is None else round(found.matches.table_s, 3),
                       "seconds": round(time.perf_counter() - t0, 1)}
                rows.append(row)
                goal = TARGETS.get(name) if method == "matched" else None
                marks = "" if goal is None else (f"prec {_target(row['precision_length'], goal[0])}, "
                                                 f"prec.mapped {_target(pm, goal[0])}"
                                                 + (f", rec {_target(row['recall_length_driven'], goal[1])}" if goal[1] else ""))
                cells = "".join(f"{'-' if v is None else f'{v:.3f}':>9}" for v in by_trips.values())
                print(f"{method:<8}{name:<16}{row['points']:>9,}{row['suggestions']:>9}{row['carriageways']:>4}{row['suggested_km']:>7.2f}"
                      f"{row['precision_length']:>7.3f}{row['recall_length']:>8.3f}{row['recall_length_driven']:>11.3f}"
                      f"{row['recall_length_driven_apart']:>10.3f}{row['recall_length_driven_on_way']:>7.3f}{pm:>12.3f}{cells}{conn[0]:>5}"
                      f"{'-' if by_route[0] is None else f'{by_route[0]:.2f}':>7}{c_rec:>6.3f}"
                      f"{'-' if conn[1] is None else f'{conn[1]:.2f}':>7}{flagged:>9.3f}{'-' if speed is None else f'{speed:,.0f}':>9}"
                      f"{row['seconds']:>6.1f}  {marks}", flush=True)
    for label, names in (("every row", None), ("dense rows (all traces, noise 10 m)", ("all traces", "noise 10 m"))):
        picked = [r for r in rows if r["method"] == "matched" and (names is None or r["traces"] in names)]
        fixes = sum(r["points"] for r in picked)
        if not picked:
            continue
        cpu = sum(r["points"] / r["match_fixes_per_cpu_s"] for r in picked)
        tables = sum(r["match_table_cpu_s"] for r in picked)
        wall = sum(r["match_wall_s"] for r in picked)
        pps, apart = fixes / cpu, fixes / max(cpu - tables, 1e-9)
        print(f"matching, {label}: {fixes:,} fixes in {cpu:.1f} CPU s (route tables included) = {pps:,.0f} fixes/s "
              f"({'ok' if pps >= MATCH_TARGET_PPS else 'MISSED'} >= {MATCH_TARGET_PPS:,}); wall clock {wall:.1f} s = "
              f"{fixes / max(wall, 1e-9):,.0f} fixes/s; the tables apart (built once per run, {tables:.1f} CPU s, "
              f"however few the fixes): {apart:,.0f} fixes/s ({'ok' if apart >= MATCH_TARGET_PPS else 'MISSED'})")
    print(f"total {time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"seed": args.seed, "radius_m": args.radius, "rows": rows}, indent=2))
    return 0


def phantom_chords(kept: np.ndarray, traces: GpsTraces, n: int, seed: int) -> list[LineString]:
    """Seeded straight lines between points of two kept ways, across a block, where nobody drove."""
    roads = shapely.union_all(kept)
    fixes = shapely.points(traces.x, traces.y)
    off_map = shapely.MultiPoint(fixes[shapely.distance(fixes, roads) >= 25.0])
    rng = np.random.default_rng(seed)
    out: list[LineString] = []
    for _ in range(200 * n):
        a, b = rng.choice(len(kept), 2, replace=False)
        c = LineString([kept[a].interpolate(rng.uniform(0.2, 0.8), normalized=True),
                        kept[b].interpolate(rng.uniform(0.2, 0.8), normalized=True)])
        if 80.0 < c.length < 300.0 and c.interpolate(0.5, normalized=True).distance(roads) > 30.0 \
                and c.distance(off_map) > 15.0 and all(c.distance(o) > 50.0 for o in out):
            out.append(c)
            if len(out) == n:
                break
    return out


def corridor_verdicts(lines: list, traces: GpsTraces, kept: np.ndarray) -> list[str]:
    """The verdicts of the corridor count osmgap used before map matching (see the docstring)."""
    index = TrafficIndex(traces)
    tree = shapely.STRtree(kept)
    out = []
    for line in lines:
        own = index.along(line)
        near = [index.along(kept[k]) for k in tree.query(line, predicate="dwithin", distance=300.0)]
        length = sum(t.length_m for t in near)
        reference = 100.0 * sum(t.points for t in near) / length if length else 0.0
        if reference < 2.0:
            out.append("no_coverage")
            continue
        ratio = own.per_100m / reference
        out.append("confirmed" if own.trips >= 2 and ratio >= 0.25 else "demoted" if ratio < 0.02 else "unchanged")
    return out


def support_run(seed: int, rows: list[str] | None) -> int:
    """GPS support of real missing roads and phantom chords, by matching and by corridor counts."""
    root = data_root() / "gps" / "chicago-uic"
    traces = read_gps([root / "trips"], GpsSource(crs=CRS)).to_crs(CRS)
    ways = read_mapconstruction_graph(root / "chicago_vertices_osm.txt", root / "chicago_edges_osm.txt", CRS)
    extent = box(traces.x.min(), traces.y.min(), traces.x.max(), traces.y.max())
    frame = ways[ways.intersects(extent)].to_crs(WGS84).assign(version=None, node_ids=None)
    roads = RoadNetwork(frame.assign(tags=[{} for _ in range(len(frame))]).reset_index(drop=True))
    exp = deletion_experiment(roads, share=0.2, seed=seed)
    kept = np.asarray(exp.kept.ways.to_crs(exp.crs).geometry.values, dtype=object)
    grid = discovery_grid(exp.aoi.to_metric(exp.aoi.geometry).bounds, exp.crs)
    full = road_likelihood(trip_counts(traces, grid), grid)
    real = [line for line in exp.deleted if line.length >= 50.0
            and (probability_along(full, line, 5.0) >= 0.5).mean() >= DRIVEN_SHARE]
    phantoms = phantom_chords(kept, traces, len(real), seed)
    print(f"GPS support (seed {seed}): {len(real)} deleted ways the full traces drove (>= 50 m) and "
          f"{len(phantoms)} phantom chords, judged on the kept OSM ways")
    print(f"{'traces':<18}{'method':<10}{'real confirmed':>16}{'real demoted':>14}{'phantom confirmed':>19}"
          f"{'phantom demoted':>17}{'CPU s':>7}")
    for name, variant in picked_variants(traces, seed, rows):
        started = time.process_time()
        sugs = [Suggestion(id=str(k), kind="missing_road", geometry=reproject(line, exp.crs, WGS84),
                           length_m=line.length, confidence=0.5) for k, line in enumerate(real + phantoms)]
        apply_gps_support(sugs, variant, exp.kept)
        seconds = time.process_time() - started
        for method, verdicts in (("matched", [s.evidence["gps_verdict"] for s in sugs]),
                                 ("corridor", corridor_verdicts(real + phantoms, variant, kept))):
            r, p = verdicts[:len(real)], verdicts[len(real):]
            print(f"{name:<18}{method:<10}{r.count('confirmed') / max(len(r), 1):>16.2f}{r.count('demoted') / max(len(r), 1):>14.2f}"
                  f"{p.count('confirmed') / max(len(p), 1):>19.2f}{p.count('demoted') / max(len(p), 1):>17.2f}"
                  + (f"{seconds:>7.1f}" if method == "matched" else ""), flush=True)
    return 0


def compare_matchers(n_trips: int) -> int:
    """fastmm against leuvenmapmatching (pure Python HMM, DistanceMatcher) on the same real trips
    and the same network: fixes per second and how often the two put a fix at the same place."""
    try:
        from leuvenmapmatching.map.inmem import InMemMap
        from leuvenmapmatching.matcher.distance import DistanceMatcher
    except ImportError:
        print("leuvenmapmatching is not installed (pip install leuvenmapmatching); it is only needed here")
        return 2
    root = data_root() / "gps" / "chicago-uic"
    traces = read_gps([root / "trips"], GpsSource(crs=CRS)).to_crs(CRS)
    traces = traces.take(traces.trip < n_trips)
    ways = read_mapconstruction_graph(root / "chicago_vertices_osm.txt", root / "chicago_edges_osm.txt", CRS)
    frame = ways.to_crs(WGS84).assign(version=None, node_ids=None, tags=[{}] * len(ways))
    network = road_graph(index_osm(RoadNetwork(frame.reset_index(drop=True)), CRS))
    pieces = trip_pieces(traces)
    t0 = time.process_time()
    fast = Matcher(network, route_limit(traces, pieces)).match(traces, pieces)
    fast_s = time.process_time() - t0
    t0 = time.process_time()
    leuven = InMemMap("osm", use_latlon=False, use_rtree=True, index_edges=True)
    next_id = int(max(network.u.max(), network.v.max())) + 1
    for line, a, b in zip(network.lines, network.u.tolist(), network.v.tolist()):
        xy = np.asarray(line.coords)
        ids = [a] + list(range(next_id, next_id + len(xy) - 2)) + [b]
        next_id += len(xy) - 2
        for k, (x, y) in zip(ids, xy):
            leuven.add_node(k, (y, x))
        for p, q in zip(ids[:-1], ids[1:]):
            leuven.add_edge(p, q)
            leuven.add_edge(q, p)
    slow = np.full((len(traces), 2), np.nan)
    for trip in np.unique(traces.trip):
        at = np.flatnonzero(traces.trip == trip)
        matcher = DistanceMatcher(leuven, max_dist=200, obs_noise=10, obs_noise_ne=30, non_emitting_states=True,
                                  max_lattice_width=5)
        matcher.match(list(zip(traces.y[at], traces.x[at])))
        for m in matcher.lattice_best:
            if not m.is_emitting():
                continue
            y, x = m.edge_m.pi
            slow[at[m.obs]] = (x, y)
    slow_s = time.process_time() - t0
    both = fast.matched & np.isfinite(slow[:, 0])
    apart = np.hypot(fast.mx[both] - slow[both, 0], fast.my[both] - slow[both, 1])
    print(f"{n_trips} real trips, {len(traces):,} fixes (CPU seconds, network and tables included)")
    print(f"fastmm              {fast_s:7.1f} s {len(traces) / fast_s:>10,.0f} fixes/s  matched {fast.matched.mean():.3f}")
    print(f"leuvenmapmatching   {slow_s:7.1f} s {len(traces) / slow_s:>10,.0f} fixes/s  matched {np.isfinite(slow[:, 0]).mean():.3f}")
    print(f"same place (within 5 m / 15 m) where both matched: {(apart <= 5).mean():.3f} / {(apart <= 15).mean():.3f}")
    return 0


def scale_run(copies: int, seed: int) -> int:
    root = data_root() / "gps" / "chicago-uic"
    base = read_gps([root / "trips"], GpsSource(crs=CRS)).to_crs(CRS)
    rng = np.random.default_rng(seed)
    n = len(base)
    shift = np.repeat(rng.uniform(-2, 2, (copies, 2)), n, axis=0)
    frame = pd.DataFrame({"x": np.tile(base.x, copies) + shift[:, 0], "y": np.tile(base.y, copies) + shift[:, 1],
                          "time": np.tile(base.t, copies),
                          "trip": np.tile(base.trip, copies) + np.repeat(np.arange(copies), n) * (base.trip.max() + 1)})
    ways = read_mapconstruction_graph(root / "chicago_vertices_osm.txt", root / "chicago_edges_osm.txt", CRS)
    timings = {}
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "many.csv"
        frame.to_csv(csv, index=False)
        del frame
        t0, c0 = time.perf_counter(), time.process_time()
        traces = read_file(csv, GpsSource(crs=CRS))
        timings["read CSV"] = (time.perf_counter() - t0, time.process_time() - c0)
    t0, c0 = time.perf_counter(), time.process_time()
    grid = discovery_grid((traces.x.min(), traces.y.min(), traces.x.max(), traces.y.max()), CRS)
    rasters = density_rasters(traces, grid)
    timings["count/KDE/trips/interval/speed rasters"] = (time.perf_counter() - t0, time.process_time() - c0)
    t0, c0 = time.perf_counter(), time.process_time()
    evidence = gps_evidence(traces, grid)
    timings["discovery graph"] = (time.perf_counter() - t0, time.process_time() - c0)
    t0, c0 = time.perf_counter(), time.process_time()
    index = TrafficIndex(traces)
    near = ways[ways.intersects(box(*grid_bounds(grid)))]
    for g in near.geometry.values[:1000]:
        index.along(g)
    timings["support along 1000 ways"] = (time.perf_counter() - t0, time.process_time() - c0)
    frame = ways.to_crs(WGS84).assign(version=None, node_ids=None, tags=[{}] * len(ways))
    t0, c0 = time.perf_counter(), time.process_time()
    found = matched_evidence(traces, RoadNetwork(frame.reset_index(drop=True)), grid)
    timings["map matching + unexplained evidence graph"] = (time.perf_counter() - t0, time.process_time() - c0)
    print(f"map matching: {len(traces) / found.match_seconds:,.0f} fixes per CPU s; {found.matches.matched.mean():.3f} matched")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{len(traces):,} points, {traces.trips:,} trips; grid {grid.width}x{grid.height}; "
          f"{evidence.graph.number_of_edges()} graph edges; max trips per pixel {int(rasters.trips.max())}")
    print(f"{'step':<42}{'wall s':>8}{'CPU s':>8}   (CPU: this process alone, on a shared machine)")
    for k, (wall, cpu) in timings.items():
        print(f"{k:<42}{wall:>8.1f}{cpu:>8.1f}")
    print(f"peak memory of the process (includes the CSV written first){peak_mb:>10.0f} MB")
    return 0


def tables_run(seed: int, limit_m: float = 3000.0) -> int:
    """The route table for ``limit_m`` on pieces and on chains, per map (see the module docstring)."""
    maps = []
    for name in ("helsinki.osm.pbf", "kotka.osm.pbf"):
        path = data_root() / "osm" / name
        roads = load_osm(str(path), Aoi(box(-180, -85, 180, 85), name="everywhere", source=str(path)))
        maps.append((name, roads, roads.ways.estimate_utm_crs()))
    root = data_root() / "gps" / "chicago-uic"
    ways = read_mapconstruction_graph(root / "chicago_vertices_osm.txt", root / "chicago_edges_osm.txt", CRS)
    frame = ways.to_crs(WGS84).assign(version=None, node_ids=None, tags=[{}] * len(ways))
    exp = deletion_experiment(RoadNetwork(frame.reset_index(drop=True)), share=0.2, seed=seed)
    maps.append((f"Chicago graph, 20 % deleted, s{seed}", exp.kept, CRS))
    print(f"route table for a {limit_m:.0f} m route limit (fastmm writes 28 bytes a route; 'estimate': "
          "osmgap.gps.tiling's upper bound of the table in memory)")
    print(f"{'map':<32}{'network':<9}{'nodes':>7}{'table MB':>10}{'estimate MB':>12}{'CPU s':>7}")
    for name, roads, crs in maps:
        graph = road_graph(index_osm(roads, crs))
        for label, chain_above in (("pieces", np.inf), ("chains", 0.0)):
            params = MatchParams(chain_above_m=chain_above)
            with tempfile.TemporaryDirectory() as cache:
                c0 = time.process_time()
                matcher = Matcher(graph, limit_m, params, Path(cache))
                cpu = time.process_time() - c0
                size = sum(f.stat().st_size for f in Path(cache).iterdir())
            nodes = matcher.network.get_node_count()
            estimate = plan_matching(graph, limit_m, replace(params, table_budget_mb=np.inf)).table_mb
            print(f"{name:<32}{label:<9}{nodes:>7,}{size / 1e6:>10.1f}{estimate:>12.1f}{cpu:>7.2f}", flush=True)
    city_plans(road_graph(index_osm(maps[0][1], maps[0][2])))
    return 0


def city_plans(graph: RoadGraph, copies: tuple[int, ...] = (1, 3, 6, 10)) -> None:
    """How osmgap.gps.tiling matches larger areas: central Helsinki's real network laid side by side
    k x k times (SYNTHETIC copies, joined nowhere: the estimate counts nodes in a straight line, so
    it is the same as for one city of that size and density), per route limit; estimates only."""
    x0, y0, x1, y1 = shapely.total_bounds(graph.lines)
    print("\nlarger areas (central Helsinki's network repeated k x k, SYNTHETIC copies): the route table of the whole "
          "area (estimate) and the plan within the 1 GB budget")
    print(f"{'k':>3}{'km2':>7}{'limit m':>9}{'whole MB':>10}{'tile km':>9}{'used limit m':>13}{'tile MB':>9}")
    for k in copies:
        big = _repeated(graph, k, x1 - x0, y1 - y0)
        area = k * k * (x1 - x0) * (y1 - y0) / 1e6
        for limit in (600.0, 1500.0, 3000.0):
            whole = plan_matching(big, limit, replace(MatchParams(), table_budget_mb=np.inf)).table_mb
            plan = plan_matching(big, limit)
            tile = "-" if plan.tile_m is None else f"{plan.tile_m / 1000:.1f}"
            print(f"{k:>3}{area:>7.0f}{limit:>9.0f}{whole:>10,.0f}{tile:>9}{plan.limit_m:>13.0f}{plan.table_mb:>9,.0f}",
                  flush=True)


def _repeated(graph: RoadGraph, k: int, dx: float, dy: float) -> RoadGraph:
    """``graph`` laid out k x k times, ``dx`` and ``dy`` apart (node ids kept apart)."""
    step = int(max(graph.u.max(), graph.v.max())) + 1
    parts = [(i, j) for i in range(k) for j in range(k)]
    lines = np.concatenate([shapely.transform(graph.lines, lambda c, i=i, j=j: c + [i * dx, j * dy]) for i, j in parts])
    shift = np.repeat(np.arange(len(parts)) * step, len(graph))
    return RoadGraph(lines, np.tile(graph.u, len(parts)) + shift, np.tile(graph.v, len(parts)) + shift,
                     np.tile(graph.direction, len(parts)), np.tile(graph.source, len(parts)))


def grid_bounds(grid) -> tuple[float, float, float, float]:
    t = grid.transform
    return t.c, t.f + t.e * grid.height, t.c + t.a * grid.width, t.f


if __name__ == "__main__":
    sys.exit(main())
