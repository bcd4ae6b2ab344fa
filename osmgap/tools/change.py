"""`osmgap change`: roads that appeared or vanished between two images (osmgap.jobs.change)."""
from __future__ import annotations

import argparse
from typing import Any

from osmgap.conflate.params import CHANGE_MARGIN_M, ConflateParams
from osmgap.tools.options import (
    add_aoi_argument,
    add_bands_argument,
    add_cache_argument,
    add_model_argument,
    add_osm_argument,
    add_out_argument,
    check_model,
    non_negative_float,
    positive_float,
)
from osmgap.tools.summary_lines import cached_osm_line

HELP = "find roads that appeared or vanished between two images"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_aoi_argument(p)
    p.add_argument("--before", required=True, help="GeoTIFF/COG of the earlier date")
    p.add_argument("--after", required=True, help="GeoTIFF/COG of the later date")
    add_bands_argument(p, whose="both images'")
    add_bands_argument(p, "--after-bands", "the after image's", default="--bands (for a sensor unlike the before image's)")
    add_osm_argument(p, ": keeps only the changes OSM has to follow", graph_crs=True)
    add_out_argument(p)
    add_model_argument(p)
    p.add_argument("--min-length", type=non_negative_float, default=20.0, help="shortest change reported, metres (default %(default)s)")
    p.add_argument("--margin", type=positive_float, default=CHANGE_MARGIN_M,
                   help="a road is new only where the other date shows none within this many metres (default %(default)s)")
    p.add_argument("--tolerance", type=positive_float, default=ConflateParams.tolerance_m,
                   help="a change within this many metres of an OSM way is in OSM (default %(default)s)")
    p.add_argument("--no-align", action="store_true", help="trust the images' georeferencing as it is")
    add_cache_argument(p)


def _area_line(cover: dict[str, Any]) -> str:
    """What was compared, said with the counts: where both images show usable pixels, and, when
    that is under diff's COVERAGE_WARN_SHARE of the AOI, that no change was looked for in the rest
    (as diff's summary lines say for partial coverage)."""
    from osmgap.sources.imagery import COVERAGE_WARN_SHARE

    share = cover["imagery_aoi_share"]
    line = f"Area analysed: {cover['area_analysed_km2']:.3g} km2 ({share:.0%} of the AOI is covered by both images)"
    if share >= COVERAGE_WARN_SHARE:
        return line + "."
    return line + ": the rest was not looked at, so the counts say nothing about it."


def _road_line(km: dict[str, Any]) -> str:
    """How much road the model saw on each date (and OSM has) where change was looked for: a date
    with far less than the other says its changes come from the model, not the ground."""
    osm = f"; OSM has {km['osm']:.2f} km" if km["osm"] is not None else ""
    return f"Road seen by the model: {km['before']:.2f} km before, {km['after']:.2f} km after{osm}, in the area analysed."


def run(args: argparse.Namespace) -> int:
    check_model(args.model)
    from osmgap.jobs.change import ChangeRequest, run_change

    summary = run_change(ChangeRequest(args.aoi, args.before, args.after, args.out, osm=args.osm, gps_crs=args.gps_crs,
                                       model=args.model,
                                       min_length_m=args.min_length, margin_m=args.margin,
                                       tolerance_m=args.tolerance, align=not args.no_align,
                                       cache_dir=args.cache_dir, osm_max_age_h=args.osm_max_age, bands=args.bands, after_bands=args.after_bands))
    print(f"{summary['appeared']['count']} appeared, {summary['vanished']['count']} vanished roads; "
          f"{summary['suggestions']} suggestions -> {args.out}")
    print(f"  {_area_line(summary['coverage'])}")
    print(f"  {_road_line(summary['road_km'])}")
    withheld = summary["withheld"]
    for why in dict.fromkeys(withheld.values()):
        kinds = [kind for kind in withheld if withheld[kind] == why]
        print(f"  No {' or '.join(kinds)} road suggested: {why}.")
    if cached := cached_osm_line(summary):
        print(f"  {cached}")
    if summary["by_kind"]["appeared_road"]:
        print(f"  Open {args.out / 'suggestions.osm'} in JOSM (or look at {args.out / 'overview.png'}).")
    elif summary["suggestions"]:  # vanished roads only: not drawn in suggestions.osm, nothing to add there
        print(f"  Vanished roads to check: {args.out / 'maproulette.geojson'} (MapRoulette tasks) or "
              f"{args.out / 'suggestions.geojson'}; look at {args.out / 'overview.png'}.")
    return 0
