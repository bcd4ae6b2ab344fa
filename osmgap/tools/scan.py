"""Scan an area tile by tile for roads OSM lacks: a ranked map of where to look.

Scores every web-mercator tile of --zoom (default 16) over the AOI by the length of road the
model predicts there that no OSM way covers, and writes tiles.geojson (one polygon per tile:
score, rank, centre, predicted and OSM road length, JOSM and iD links), map.html (a
self-contained Leaflet map: tiles coloured by score over the OSM roads and a basemap, a list of
where to look first by place and km; a click loads the tile in JOSM through its remote control,
or opens iD) and summary.json into --out. With --gps, the roads the traces show count too (a road
both show counts once); with --gps and no imagery, the scan reads GPS alone. --xyz reads the
imagery from a tile server, as ``osmgap diff --xyz`` does.
"""
from __future__ import annotations

import argparse

from osmgap.conflate.params import ConflateParams
from osmgap.export.scanmap import DEFAULT_JOSM_URL, check_josm_url
from osmgap.tools.options import (
    add_area_arguments,
    add_basemap_argument,
    add_xyz_arguments,
    check_area_arguments,
    check_xyz_arguments,
    number,
    positive_float,
    xyz_options,
)
from osmgap.tools.summary_lines import cached_osm_line

HELP = "rank the map tiles of an area by predicted road that OSM lacks (tiles.geojson + map.html)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_area_arguments(p)
    p.add_argument("--zoom", type=number(int, low=1, high=22), default=16, help="web-mercator zoom of the scored tiles (default %(default)s)")
    p.add_argument("--gps", nargs="+", metavar="PATH", help="GPS traces (GPX, CSV, GeoJSON, mapconstruction .txt; files or folders)")
    p.add_argument("--gps-crs", metavar="EPSG:N", help="CRS of CSV and .txt coordinates (default EPSG:4326)")
    p.add_argument("--osm-crs", metavar="EPSG:N", help="CRS of a mapconstruction graph given as --osm (default: --gps-crs)")
    p.add_argument("--tolerance", type=positive_float, default=ConflateParams.tolerance_m,
                   help="predicted road within this many metres of an OSM way counts as mapped (default %(default)s)")
    p.add_argument("--josm-url", default=DEFAULT_JOSM_URL, help="JOSM remote control the map calls (default %(default)s)")
    add_basemap_argument(p)
    add_xyz_arguments(p.add_argument_group("imagery from a tile server"))


def check(args: argparse.Namespace) -> None:
    """What argparse cannot check alone, before any work."""
    check_area_arguments(args)
    check_xyz_arguments(args)
    args.josm_url = check_josm_url(args.josm_url)


def run(args: argparse.Namespace) -> int:
    check(args)
    from osmgap.jobs.scan import ScanRequest, run_scan

    summary = run_scan(ScanRequest(args.aoi, args.out, args.zoom, args.imagery, args.osm, args.model,
                                   list(args.gps or []), args.gps_crs, args.tolerance, args.josm_url, args.tile,
                                   args.overlap, args.batch, args.cache_dir, args.name, args.basemap, bands=args.bands,
                                   xyz=xyz_options(args), osm_max_age_h=args.osm_max_age, osm_crs=args.osm_crs))
    imagery = summary.get("model") is not None  # a sample AOI's manifest gives imagery unasked
    seen = ("road on the imagery or in the GPS traces" if args.gps and imagery else
            "road in the GPS traces" if args.gps else "predicted road")
    unscanned = f" ({summary['tiles_not_scanned']} not scanned)" if summary["tiles_not_scanned"] else ""
    print(f"{summary['tiles']} tiles at z{args.zoom}{unscanned}, {summary['tiles_with_unmapped_road']} with {seen} "
          f"not in OSM ({summary['uncovered_km']} km) -> {args.out}\n  Open {args.out / 'map.html'} in a browser "
          "(a tile's click opens it in JOSM).")
    if cached := cached_osm_line(summary):
        print(f"  {cached}")
    if "demonstration" in summary:
        demo = summary["demonstration"]
        print(f"  This is a demonstration: {len(demo['removed_osm_ids'])} OSM ways ({', '.join(demo['removed_names'])}) "
              "were taken out on purpose; they are not missing from OSM.")
    return 0
