"""Diff an area against OpenStreetMap: find roads the imagery (or any road lines) show that OSM lacks.

Writes suggestions.osm (JOSM), suggestions.geojson, maproulette.geojson (line-by-line),
summary.json and overview.png into --out. With a sample AOI directory (sample_aoi/NAME) and no
--imagery/--osm, the sample's own data are used. With --candidates, road lines from a file
(GeoJSON, GeoPackage, Shapefile) are the evidence instead of imagery, which becomes optional.
Suggestion kinds: missing_road, missing_link, misconnection and (with --unsupported)
unsupported_osm_way.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from osmgap.conflate import ConflateParams
from osmgap.outputs import read_outputs
from osmgap.pipeline import DiffRequest, ImageryLicence, resolve_sources, run_diff
from osmgap.sources.osm import load_osm
from osmgap.store import Store
from osmgap.tracking import RunRecord, record_run

HELP = "find roads missing from OSM in an area"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--aoi", required=True, help="GeoJSON polygon file, sample AOI directory, or minlon,minlat,maxlon,maxlat")
    p.add_argument("--out", required=True, type=Path, help="output directory")
    p.add_argument("--imagery", help="GeoTIFF/COG of the area (any CRS, 8/16-bit, 1-4+ bands)")
    p.add_argument("--osm", help=".osm/.osm.pbf file, GeoJSON of OSM ways (with osm_id), or 'overpass'")
    p.add_argument("--model", help="model checkpoint (default: the shipped model)")
    p.add_argument("--candidates", help="road lines to diff instead of imagery: GeoJSON, GeoPackage or Shapefile "
                                        "(optional 'confidence'/'score' and 'highway' properties)")
    p.add_argument("--unsupported", action="store_true",
                   help="also report OSM ways the evidence does not show (low priority)")
    p.add_argument("--imagery-licence", default="unknown", help="licence of the imagery, recorded in every output")
    p.add_argument("--imagery-attribution", default="", help="attribution text of the imagery")
    p.add_argument("--imagery-date", default="unknown", help="capture date of the imagery")
    p.add_argument("--imagery-cleared", action="store_true",
                   help="the imagery may be used for tracing into OSM (else every output carries a warning)")
    p.add_argument("--tolerance", type=float, default=ConflateParams.tolerance_m,
                   help="largest distance, metres, at which evidence running along an OSM way counts as that "
                        "way (default %(default)s; tightened automatically for precise evidence)")
    p.add_argument("--min-length", type=float, default=ConflateParams.min_length_m,
                   help="shortest gap reported, metres (default %(default)s)")
    p.add_argument("--tile", type=int, default=512, help="inference window, pixels (multiple of 32)")
    p.add_argument("--overlap", type=int, default=64, help="overlap between windows, pixels")
    p.add_argument("--batch", type=int, default=4, help="windows per forward pass")
    p.add_argument("--cache-dir", type=Path, help="cache for Overpass responses")
    p.add_argument("--state", type=Path,
                   help="record the run in this state file (new / seen / fixed suggestions; see osmgap publish)")


def run(args: argparse.Namespace) -> int:
    licence = ImageryLicence(args.imagery_licence, args.imagery_attribution, args.imagery_date, args.imagery_cleared)
    req = DiffRequest(
        aoi=args.aoi, out=args.out, imagery=args.imagery, osm=args.osm, model=args.model,
        licence=licence, tile=args.tile, overlap=args.overlap, batch=args.batch,
        conflate=ConflateParams(tolerance_m=args.tolerance, min_length_m=args.min_length, unsupported=args.unsupported),
        cache_dir=args.cache_dir, candidates=args.candidates,
    )
    if args.state:
        Store(args.state).close()  # a bad state file is refused before any output is written
    summary = run_diff(req)
    print(f"{summary['suggestions']} suggestions, {summary['km_suggested']} km -> {args.out}")
    for w in summary["warnings"]:
        print(f"osmgap: {w}")
    if args.state:
        rec = record_diff(req, args.state)
        c = rec.counts
        print(f"state {args.state}: run {rec.run_id}: {c['new']} new, {c['reopened']} found again, "
              f"{c['fixed']} fixed, {c['dismissed_seen']} dismissed earlier (kept out of publishing)")
    return 0


def record_diff(req: DiffRequest, state: Path) -> RunRecord:
    """Record the run just written to ``req.out``, with its AOI and OSM roads (which tell a
    gap mapped since from one the model no longer sees)."""
    aoi, _, osm_spec, _ = resolve_sources(req)
    roads = load_osm(osm_spec, aoi, cache_dir=req.cache_dir)
    with Store(state) as store:
        return record_run(store, read_outputs(req.out), area=aoi.geometry, osm_ways=roads.ways,
                          tolerance_m=req.conflate.tolerance_m, min_length_m=req.conflate.min_length_m)
