"""Scan an area tile by tile for roads OSM lacks: a ranked map of where to look.

Scores every web-mercator tile of --zoom (default 16) over the AOI by the length of road the
model predicts there that no OSM way covers, and writes tiles.geojson (one polygon per tile:
score, rank, predicted and OSM road length, JOSM and iD links), map.html (a self-contained
Leaflet map coloured by score; a click loads the tile in JOSM through its remote control, or
opens iD) and summary.json into --out. With --gps, the roads the traces show count too (a road
both show counts once); with --gps and no imagery, the scan reads GPS alone.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from shapely.geometry import box

from osmgap.export.scanmap import DEFAULT_JOSM_URL, leaflet_assets
from osmgap.errors import InputError
from osmgap.gps.readers import GpsSource, load_traces
from osmgap.model.nets import load_checkpoint, pick_device
from osmgap.params import ConflateParams
from osmgap.pipeline import DiffRequest, resolve_sources
from osmgap.scan import ScanInputs, scan, summary_of, write_outputs
from osmgap.sources.imagery import open_imagery
from osmgap.sources.osm import load_osm

HELP = "rank the map tiles of an area by predicted road that OSM lacks (tiles.geojson + map.html)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--aoi", required=True, help="GeoJSON polygon file, sample AOI directory, or minlon,minlat,maxlon,maxlat")
    p.add_argument("--out", required=True, type=Path, help="output directory")
    p.add_argument("--zoom", type=int, default=16, help="web-mercator zoom of the scored tiles (default %(default)s)")
    p.add_argument("--imagery", help="GeoTIFF/COG of the area (default: the sample AOI's)")
    p.add_argument("--osm", help=".osm/.osm.pbf file, GeoJSON of OSM ways, or 'overpass' (default: the sample AOI's)")
    p.add_argument("--model", help="model checkpoint (default: the shipped model)")
    p.add_argument("--gps", nargs="+", metavar="PATH", help="GPS traces (GPX, CSV, mapconstruction .txt; files or folders)")
    p.add_argument("--gps-crs", metavar="EPSG:N", help="CRS of CSV and .txt coordinates (default EPSG:4326)")
    p.add_argument("--tolerance", type=float, default=ConflateParams.tolerance_m,
                   help="predicted road within this many metres of an OSM way counts as mapped (default %(default)s)")
    p.add_argument("--josm-url", default=DEFAULT_JOSM_URL, help="JOSM remote control the map calls (default %(default)s)")
    p.add_argument("--tile", type=int, default=512, help="inference window, pixels (multiple of 32)")
    p.add_argument("--overlap", type=int, default=64, help="overlap between windows, pixels")
    p.add_argument("--batch", type=int, default=None,
                   help="windows per forward pass (default: from free memory; at most 2 on a CPU, 32 on a GPU)")
    p.add_argument("--cache-dir", type=Path, help="cache for Overpass responses")


def run(args: argparse.Namespace) -> int:
    if not 1 <= args.zoom <= 22:
        raise InputError(str(args.zoom), "--zoom must be between 1 and 22")
    leaflet_assets()  # a missing Leaflet is said before any work
    started = time.perf_counter()
    aoi, imagery_path, osm_spec, _ = resolve_sources(DiffRequest(aoi=args.aoi, out=args.out, imagery=args.imagery,
                                                                 osm=args.osm, gps=list(args.gps or [])))
    imagery = open_imagery(imagery_path) if imagery_path else None
    if imagery is not None and aoi.geometry.intersection(box(*imagery.bounds_wgs84)).is_empty:
        raise InputError(imagery.path, "imagery does not overlap the AOI")
    traces, gps_info = load_traces(args.gps, GpsSource(args.gps_crs), aoi) if args.gps else (None, None)
    roads = load_osm(osm_spec, aoi, cache_dir=args.cache_dir)
    inputs = ScanInputs(aoi, imagery, roads.ways, traces=traces, tile_px=args.tile, overlap_px=args.overlap,
                        batch=args.batch)
    if imagery is not None:
        inputs.device = pick_device()
        inputs.net, inputs.meta = load_checkpoint(args.model, inputs.device)
    scores = scan(inputs, args.zoom, args.tolerance)
    summary = {"aoi": {"name": aoi.name, "source": aoi.source, "bounds": list(aoi.bounds)},
               "imagery": imagery.provenance() if imagery else None, "gps": gps_info,
               "osm": roads.provenance, "osm_ways": len(roads),
               "model": {"path": str(args.model or "default"), "resolution_m": inputs.meta.resolution_m,
                         "threshold": inputs.meta.threshold} if inputs.meta else None,
               **summary_of(scores, args.zoom, args.tolerance),
               "seconds": round(time.perf_counter() - started, 2)}
    write_outputs(args.out, scores, summary, aoi, f"osmgap scan: {aoi.name} (z{args.zoom})", args.josm_url)
    print(f"{summary['tiles']} tiles at z{args.zoom}, {summary['tiles_with_unmapped_road']} with predicted road "
          f"not in OSM ({summary['uncovered_km']} km) -> {args.out}")
    return 0
