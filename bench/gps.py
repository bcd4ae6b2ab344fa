"""How well do GPS traces alone recover roads deleted from OSM? Real Chicago UIC shuttle traces.

The data directory's gps/chicago-uic holds 889 real trips (EPSG:32616, ~1-4 s sampling) and the
OSM road graph of the same area (mapconstruction format, merged into junction-to-junction ways
by osmgap.sources.mapgraph). The OSM ways inside the traces' extent are kept; a seeded 20 % of them
is deleted (osmgap.conflate.gapscore.deletion_experiment); GPS-only discovery (osmgap.gps.discovery ->
osmgap.conflate.conflate, as ``osmgap diff --gps`` without imagery runs it) is scored with
osmgap.conflate.gapscore.score: relaxed matching, a suggestion point counts when it lies within 15 m of a
deleted way (and vice versa); precision and recall are of LENGTH.

Recall is printed three times: over all deleted length; over the deleted ways the FULL trace
set drove (road likelihood >= 0.5 along >= 50 % of the way), since shuttles keep to their routes
and no GPS method can find a street nobody drove; and over the driven ones that do not run
beside a kept way (>= 70 % of the way within 25 m of kept OSM: one carriageway of a dual
carriageway whose other half is still mapped; GPS blurs the two halves into one ridge).

Then the same with the traces degraded: 10 % and 1 % of the trips kept (fewer vehicles),
resampled to one point per 30 s and 90 s (coarser receivers), and 10 m Gaussian noise per axis.

Scale (--scale N): the real points repeated N times (each copy its own trips, shifted by up to
2 m) are written as one CSV, then read, rasterised, turned into a road graph and scored as
support along OSM ways (the rasters as ``osmgap.gps.density.density_rasters`` makes them for other
uses; the graph and the support as ``osmgap diff --gps`` does); the wall and CPU time of each step and the
peak memory of the process are printed.

Usage: python bench/gps.py [--seed 0] [--radius 15] [--json OUT] [--scale N]
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import shapely
from shapely.geometry import box
from shapely.ops import substring

from osmgap.conflate.conflate import conflate, probability_along
from osmgap.conflate.gapscore import deletion_experiment, score
from osmgap.conflate.params import ConflateParams
from osmgap.core.aoi import Aoi
from osmgap.core.datamodel import WGS84
from osmgap.core.datapaths import data_root
from osmgap.core.traces import GpsTraces, add_noise, keep_trips, resample
from osmgap.gps.density import density_rasters, road_likelihood, trip_counts
from osmgap.gps.discovery import DiscoveryParams, discovery_grid, gps_conflate_params, gps_evidence
from osmgap.gps.support import TrafficIndex
from osmgap.sources.gps import GpsSource, read_file, read_gps
from osmgap.sources.mapgraph import read_mapconstruction_graph
from osmgap.sources.osm import load_osm

CRS = "EPSG:32616"
DRIVEN_SHARE = 0.5
BESIDE_M, BESIDE_SHARE, JUNCTION_M = 20.0, 0.7, 25.0


def variants(traces: GpsTraces, seed: int) -> list[tuple[str, GpsTraces]]:
    return [("all traces", traces), ("10 % of trips", keep_trips(traces, 0.10, seed)),
            ("1 % of trips", keep_trips(traces, 0.01, seed)), ("resampled 30 s", resample(traces, 30.0)),
            ("resampled 90 s", resample(traces, 90.0)), ("noise 10 m", add_noise(traces, 10.0, seed))]


def beside_kept(deleted: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """Deleted ways running beside a kept way: >= BESIDE_SHARE of the way, leaving out JUNCTION_M
    at each end (where every way meets the streets it crosses), within BESIDE_M of kept OSM."""
    zone = shapely.union_all(kept).buffer(BESIDE_M)
    length = shapely.length(deleted)
    cut = np.where(length > 3 * JUNCTION_M, JUNCTION_M, 0.0)
    middle = np.asarray([substring(g, c, g.length - c) for g, c in zip(deleted, cut)], dtype=object)
    return shapely.length(shapely.intersection(middle, zone)) >= BESIDE_SHARE * shapely.length(middle)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--radius", type=float, default=15.0, help="relaxed matching radius, metres")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--scale", type=int, help="time reading and rasterising the traces repeated N times instead")
    args = ap.parse_args()
    if args.scale:
        return scale_run(args.scale, args.seed)
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
    params = DiscoveryParams()
    full = road_likelihood(trip_counts(traces, grid, params.density), grid, params.density)
    driven = np.array([(probability_along(full, line, 5.0) >= 0.5).mean() >= DRIVEN_SHARE for line in exp.deleted])
    apart = driven & ~beside_kept(exp.deleted, exp.kept.ways.to_crs(exp.crs).geometry.values)
    print(f"Chicago UIC: {len(traces):,} points, {traces.trips} trips; {len(roads)} OSM ways in the traces' extent, "
          f"{len(exp.deleted)} deleted ({sum(shapely.length(exp.deleted)) / 1000:.1f} km), of which {int(driven.sum())} "
          f"driven ({sum(shapely.length(exp.deleted[driven])) / 1000:.1f} km), {int(apart.sum())} driven and not beside a "
          f"kept way ({sum(shapely.length(exp.deleted[apart])) / 1000:.1f} km); relaxed radius {args.radius:g} m; "
          f"seed {args.seed}", flush=True)
    rows = []
    header = f"{'traces':<16}{'points':>9}{'suggest':>9}{'km':>7}{'prec':>7}{'recall':>8}{'rec.driven':>11}{'rec.apart':>10}{'sec':>6}"
    print(header)
    for name, variant in variants(traces, args.seed):
        t0 = time.perf_counter()
        evidence = gps_evidence(variant, grid, params)
        result = conflate(evidence, exp.kept, area, gps_conflate_params(ConflateParams()))
        lines = [s for s in result.suggestions if s.geometry.geom_type == "LineString"]
        all_ = score(lines, exp.deleted, exp.crs, radius_m=args.radius)
        drv = score(lines, exp.deleted[driven], exp.crs, radius_m=args.radius)
        apt = score(lines, exp.deleted[apart], exp.crs, radius_m=args.radius)
        row = {"traces": name, "points": len(variant), "trips": variant.trips, "suggestions": len(lines),
               "suggested_km": round(all_["suggested_km"], 2), "precision_length": round(all_["precision_length"], 3),
               "recall_length": round(all_["recall_length"], 3), "recall_length_driven": round(drv["recall_length"], 3),
               "recall_length_driven_apart": round(apt["recall_length"], 3),
               "seconds": round(time.perf_counter() - t0, 1)}
        rows.append(row)
        print(f"{name:<16}{row['points']:>9,}{row['suggestions']:>9}{row['suggested_km']:>7.2f}"
              f"{row['precision_length']:>7.3f}{row['recall_length']:>8.3f}{row['recall_length_driven']:>11.3f}"
              f"{row['recall_length_driven_apart']:>10.3f}"
              f"{row['seconds']:>6.1f}", flush=True)
    print(f"total {time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"seed": args.seed, "radius_m": args.radius, "rows": rows}, indent=2))
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
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{len(traces):,} points, {traces.trips:,} trips; grid {grid.width}x{grid.height}; "
          f"{evidence.graph.number_of_edges()} graph edges; max trips per pixel {int(rasters.trips.max())}")
    print(f"{'step':<42}{'wall s':>8}{'CPU s':>8}   (CPU: this process alone, on a shared machine)")
    for k, (wall, cpu) in timings.items():
        print(f"{k:<42}{wall:>8.1f}{cpu:>8.1f}")
    print(f"peak memory of the process (includes the CSV written first){peak_mb:>10.0f} MB")
    return 0


def grid_bounds(grid) -> tuple[float, float, float, float]:
    t = grid.transform
    return t.c, t.f + t.e * grid.height, t.c + t.a * grid.width, t.f


if __name__ == "__main__":
    sys.exit(main())
