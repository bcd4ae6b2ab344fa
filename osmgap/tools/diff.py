"""Diff an area against OpenStreetMap: find roads the imagery (or any road lines) show that OSM lacks.

Writes suggestions.osm (JOSM), suggestions.geojson, maproulette.geojson (line-by-line),
summary.json and overview.png into --out. With a sample AOI directory (sample_aoi/NAME) and no
--imagery/--osm, the sample's own data are used. With --candidates, road lines from a file
(GeoJSON, GeoPackage, Shapefile) are the evidence instead of imagery, which becomes optional.
With --gps and no imagery, GPS traces are the evidence; with either, they confirm or demote each
suggestion (its confidence and evidence_gps_* properties; counts in summary.json's "gps").
Suggestion kinds: missing_road, missing_link, misconnection, missing_connection (sparse GPS: two
junctions a road must join, its course unknown; in the GeoJSON files only, not suggestions.osm) and (with
--unsupported) unsupported_osm_way.
"""
from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from osmgap.conflate.params import ConflateParams
from osmgap.scale.options import DEFAULT_MARGIN_PX, DEFAULT_TILE_PX, ScaleOptions
from osmgap.tools.options import (
    MAX_WORKERS,
    add_area_arguments,
    add_views_argument,
    add_xyz_arguments,
    check_area_arguments,
    check_state_name,
    check_xyz_arguments,
    input_arg,
    non_negative_float,
    non_negative_int,
    number,
    path_arg,
    positive_float,
    state_locked,
    xyz_options,
)

if TYPE_CHECKING:
    from osmgap.jobs.diff import DiffRequest

HELP = "find roads missing from OSM in an area"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_area_arguments(p)
    p.add_argument("--candidates", type=input_arg, help="road lines to diff instead of imagery: an OSM extract (.osm/.osm.pbf), a "
                                        "Microsoft RoadDetections .tsv/.zip, Overture segments (GeoParquet file or "
                                        "folder), or any line file GDAL reads (optional 'confidence'/'score' and "
                                        "'highway' properties; one layer of several: 'FILE|layername=LAYER')")
    p.add_argument("--gps", type=input_arg, nargs="+", metavar="PATH",
                   help="GPS traces: .gpx, .csv (lon,lat[,time,speed,bearing,trip]), .geojson (lines timed by "
                        "coordTimes, or points), .txt (mapconstruction "
                        "'x y unix_time', one trip per file) or directories of them; without imagery they are the "
                        "evidence, with it they confirm or demote each suggestion")
    p.add_argument("--gps-connections", action=argparse.BooleanOptionalAction, default=True,
                   help="GPS-only: also report where trips detour between two junctions too far apart to draw "
                        "the road (missing_connection, in the GeoJSON files only, not suggestions.osm; on by default: 0.83-1.00 of "
                        "them remove a real detour on the Chicago bench at 30-90 s)")
    p.add_argument("--gps-memory", type=number(float, above=0.0), metavar="MB",
                   help="the most memory the map matcher's table of routes may take (default 1 GB); over a larger "
                        "area it matches in tiles, with shorter routes where needed, and says so")
    p.add_argument("--gps-crs", metavar="EPSG:N", help="CRS of CSV and .txt coordinates (default EPSG:4326; GPX is always WGS84)")
    p.add_argument("--osm-crs", metavar="EPSG:N",
                   help="CRS of a mapconstruction graph given as --osm (default: --gps-crs), when it differs from the traces'")
    p.add_argument("--gps-columns", metavar="FIELD=COLUMN,...",
                   help="CSV column mapping, e.g. lon=LONGITUDE,lat=LAT,time=ts,trip=vehicle")
    p.add_argument("--unsupported", action="store_true",
                   help="also report OSM ways the evidence does not show (low priority)")
    p.add_argument("--imagery-licence", default="unknown", help="licence of the imagery, recorded in every output")
    p.add_argument("--imagery-attribution", default="", help="attribution text of the imagery")
    p.add_argument("--imagery-date", default="unknown", help="capture date of the imagery")
    p.add_argument("--imagery-cleared", action="store_true",
                   help="the imagery may be used for tracing into OSM (else every output carries a warning)")
    p.add_argument("--tolerance", type=positive_float, default=ConflateParams.tolerance_m,
                   help="largest distance, metres, at which evidence running along an OSM way counts as that "
                        "way (default %(default)s; tightened automatically for precise evidence)")
    p.add_argument("--min-length", type=non_negative_float, default=ConflateParams.min_length_m,
                   help="shortest missing road reported, metres: counted over the whole missing road a gap "
                        "belongs to (gaps that meet, or continue each other straight across a mapped street), so a "
                        "shorter piece of a longer missing road is reported; a missing road that joins two different OSM "
                        f"ways needs {ConflateParams.min_connector_m:g} m instead. Also the shortest OSM way "
                        "--unsupported reports (default %(default)s)")
    add_views_argument(p)
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the model: ~1.8x faster on a CPU after a ~90 s compile, so only for areas of tens of km2")
    p.add_argument("--threads", type=number(int, low=1, high=1024),
                   help="CPU threads of the model's forward pass and the imagery reader (default: the cores not "
                        "already busy, by the 1-minute load average; with --workers, per worker)")
    p.add_argument("--state", type=path_arg,
                   help="record the run in this state file (new / seen / fixed suggestions; see osmgap publish)")
    add_scale_arguments(p)


def add_scale_arguments(p: argparse.ArgumentParser) -> None:
    """Large areas: tiles on Dask, persisted and resumable; imagery from an XYZ tile server."""
    g = p.add_argument_group("large areas")
    g.add_argument("--workers", type=number(int, low=0, high=MAX_WORKERS),
                   help="tile the area and run the tiles on a local Dask cluster of N worker processes "
                        f"(default 1 when tiling; 0: tiles in this process; at most {MAX_WORKERS})")
    g.add_argument("--scheduler", help="run the tiles on an existing Dask cluster, tcp://HOST:PORT")
    g.add_argument("--tile-size", type=number(int, low=32),
                   help=f"tile side in analysis pixels, at least 32 (default {DEFAULT_TILE_PX})")
    g.add_argument("--tile-margin", type=non_negative_int, default=DEFAULT_MARGIN_PX,
                   help="context around each tile for the road graph, pixels (default %(default)s)")
    g.add_argument("--work-dir", type=path_arg, help="where finished tiles are kept (default: .OUT.tiles beside --out)")
    g.add_argument("--resume", action="store_true", help="reuse the tiles a killed run of the same inputs finished")
    add_xyz_arguments(g)


def scale_options(args: argparse.Namespace) -> ScaleOptions | None:
    """Tiled execution when any tiling option is given; None: the area in one piece."""
    if args.workers is None and not (args.scheduler or args.tile_size or args.work_dir or args.resume):
        return None
    return ScaleOptions(workers=1 if args.workers is None else args.workers, scheduler=args.scheduler,
                        tile_px=args.tile_size or DEFAULT_TILE_PX, margin_px=args.tile_margin,
                        work_dir=args.work_dir, resume=args.resume)


def check(args: argparse.Namespace) -> None:
    """What argparse cannot check alone, before any work (also for each [diff] of a task file)."""
    check_area_arguments(args)
    check_state_name(args)
    check_xyz_arguments(args)


def run(args: argparse.Namespace) -> int:
    check(args)
    from osmgap.jobs.diff import DiffRequest, ImageryLicence

    if args.gps_columns:  # the GPS reader imports numba (0.27 s): only for runs with traces
        from osmgap.sources.gps import parse_column_mapping

    licence = ImageryLicence(args.imagery_licence, args.imagery_attribution, args.imagery_date, args.imagery_cleared)
    if args.xyz:
        licence = ImageryLicence(args.xyz_licence, args.xyz_attribution, args.imagery_date, args.imagery_cleared)
    req = DiffRequest(
        aoi=args.aoi, out=args.out, imagery=args.imagery, bands=args.bands, osm=args.osm, model=args.model,
        licence=licence, tile=args.tile, overlap=args.overlap, batch=args.batch, views=args.views, compile=args.compile,
        threads=args.threads,
        conflate=ConflateParams(tolerance_m=args.tolerance, min_length_m=args.min_length, unsupported=args.unsupported),
        cache_dir=args.cache_dir, osm_max_age_h=args.osm_max_age, candidates=args.candidates, scale=scale_options(args), xyz=xyz_options(args),
        gps=list(args.gps or []), gps_crs=args.gps_crs, osm_crs=args.osm_crs, gps_connections=args.gps_connections,
        gps_memory_mb=args.gps_memory,
        gps_columns=parse_column_mapping(args.gps_columns) if args.gps_columns else None, name=args.name,
        state=args.state,
    )
    if args.state:  # refused before any work; the file itself is created only once the run has succeeded
        from osmgap.workspace.store import check_aoi, check_state

        check_state(args.state, writable=True)
        check_aoi(args.state, args.aoi, args.name)  # a name the state keeps for another area
    with state_locked(args.state):  # a publish or another diff of the state waits its turn (exit 3)
        return _diff(req, args)


def _diff(req: DiffRequest, args: argparse.Namespace) -> int:
    from osmgap.jobs.diff import record_diff, run_diff

    run = run_diff(req)
    summary = run.summary
    from osmgap.tools.summary_lines import summary_lines

    print(f"{summary['suggestions']} suggestions, {summary['km_suggested']:.2f} km -> {args.out}")
    for line in summary_lines(summary, args.out):
        print(f"  {line}")
    if args.state:
        rec = record_diff(req, args.state, run)
        c = rec.counts
        print(f"state {args.state}: run {rec.run_id}: {c['new']} new, {c['reopened']} reopened, "
              f"{c['fixed']} fixed, {c['dismissed_seen']} dismissed earlier (kept out of publishing)"
              + (f", {c['merged']} now part of a longer gap" if c["merged"] else "")
              + (f"; {c['fixed_seen']} marked fixed on MapRoulette still found here: check that OSM has them"
                 if c["fixed_seen"] else ""))
    return 0
