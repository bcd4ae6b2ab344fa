"""Diff an area against OpenStreetMap: find roads the imagery shows that OSM lacks.

Writes suggestions.osm (JOSM), suggestions.geojson, maproulette.geojson (line-by-line),
summary.json and overview.png into --out. With a sample AOI directory (sample_aoi/NAME) and no
--imagery/--osm, the sample's own data are used.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from osmgap.conflate import ConflateParams
from osmgap.pipeline import DiffRequest, ImageryLicence, run_diff

HELP = "find roads missing from OSM in an area"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--aoi", required=True, help="GeoJSON polygon file, sample AOI directory, or minlon,minlat,maxlon,maxlat")
    p.add_argument("--out", required=True, type=Path, help="output directory")
    p.add_argument("--imagery", help="GeoTIFF/COG of the area (any CRS, 8/16-bit, 1-4+ bands)")
    p.add_argument("--osm", help=".osm/.osm.pbf file, GeoJSON of OSM ways (with osm_id), or 'overpass'")
    p.add_argument("--model", help="model checkpoint (default: the shipped model)")
    p.add_argument("--imagery-licence", default="unknown", help="licence of the imagery, recorded in every output")
    p.add_argument("--imagery-attribution", default="", help="attribution text of the imagery")
    p.add_argument("--imagery-date", default="unknown", help="capture date of the imagery")
    p.add_argument("--imagery-cleared", action="store_true",
                   help="the imagery may be used for tracing into OSM (else every output carries a warning)")
    p.add_argument("--tolerance", type=float, default=ConflateParams.tolerance_m,
                   help="metres within which a predicted road counts as mapped (default %(default)s)")
    p.add_argument("--min-length", type=float, default=ConflateParams.min_length_m,
                   help="shortest gap reported, metres (default %(default)s)")
    p.add_argument("--tile", type=int, default=512, help="inference window, pixels (multiple of 32)")
    p.add_argument("--overlap", type=int, default=64, help="overlap between windows, pixels")
    p.add_argument("--batch", type=int, default=4, help="windows per forward pass")
    p.add_argument("--cache-dir", type=Path, help="cache for Overpass responses")


def run(args: argparse.Namespace) -> int:
    licence = ImageryLicence(args.imagery_licence, args.imagery_attribution, args.imagery_date, args.imagery_cleared)
    req = DiffRequest(
        aoi=args.aoi, out=args.out, imagery=args.imagery, osm=args.osm, model=args.model,
        licence=licence, tile=args.tile, overlap=args.overlap, batch=args.batch,
        conflate=ConflateParams(tolerance_m=args.tolerance, min_length_m=args.min_length),
        cache_dir=args.cache_dir,
    )
    summary = run_diff(req)
    print(f"{summary['suggestions']} suggestions, {summary['km_suggested']} km -> {args.out}")
    for w in summary["warnings"]:
        print(f"osmgap: {w}")
    return 0
