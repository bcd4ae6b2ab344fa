"""Score a road model on an image with known roads: pixel IoU/F1, relaxed precision/recall,
APLS and TOPO.

The model runs over the whole image at its own resolution (as in ``osmgap diff``). LABELS is a
road mask GeoTIFF, or PNG/JPEG placed by a world file with its CRS (non-zero = road; its nodata
and the image past its extent are not scored), an OSM file (.osm/.pbf/.bz2, or GeoJSON of ways with
``osm_id``; ways drawn at per-class widths), or any road-line file (e.g. SpaceNet centrelines,
drawn 6 m wide). Relaxed scores count a predicted road pixel as right when a labelled one lies
within the slack, and the reverse for recall (Mnih 2013; --slack-m, 1 m and 3 m by default).
APLS: control points every 50 m, 4 m snapping, harmonic mean of both directions. TOPO: 100 seeds,
marbles and holes every 5 m within 300 m along the network, matched within 4 m. An image larger
than a diff holds in one piece is run and scored by tiles (osmgap.jobs.eval): APLS is then the
mean of the tiles' (as SpaceNet's of its chips) and TOPO takes 100 seeds per tile.
"""
from __future__ import annotations

import argparse

from osmgap.core.atomic import check_output_file, write_text_atomic
from osmgap.core.jsontext import strict_json
from osmgap.tools.options import (
    add_imagery_argument,
    add_model_argument,
    add_views_argument,
    check_model,
    float_list,
    input_arg,
    non_negative_float,
    path_arg,
)

HELP = "score a road model against known roads (IoU, relaxed P/R, APLS, TOPO)"

TABLE = [  # (key, label) in the printed order
    ("iou", "pixel IoU"), ("precision", "pixel precision"), ("recall", "pixel recall"), ("f1", "pixel F1"),
    ("relaxed_precision@{s}m", "relaxed precision ({s} m)"), ("relaxed_recall@{s}m", "relaxed recall ({s} m)"),
    ("relaxed_f1@{s}m", "relaxed F1 ({s} m)"),
    ("apls", "APLS"), ("apls_gt_onto_prop", "  truth onto proposal"), ("apls_prop_onto_gt", "  proposal onto truth"),
    ("topo_precision", "TOPO precision"), ("topo_recall", "TOPO recall"), ("topo_f1", "TOPO F1"),
    ("truth_km", "labelled road, km"), ("proposal_km", "predicted road graph, km"),
]


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_imagery_argument(p, required=True, what=": the model runs on it")
    p.add_argument("--labels", type=input_arg, required=True,
                   help="road mask (GeoTIFF, or PNG/JPEG with a world file; its nodata is not scored), OSM file or "
                        "road-line file")
    add_model_argument(p)
    p.add_argument("--json", type=path_arg, help="also write the figures to this JSON file")
    p.add_argument("--slack-m", type=float_list(non_negative_float), default=(1.0, 3.0),
                   help="relaxed-score slacks in metres, comma-separated (default: 1,3)")
    add_views_argument(p)


def format_table(result: dict, slacks: tuple[float, ...]) -> str:
    rows = []
    for key, label in _expand(TABLE, slacks):
        if key == "apls" and "apls_windows" in result:  # a large image, scored by tiles
            label = f"APLS (mean of {result['apls_windows']:.0f} tiles)"
        if key in result:
            rows.append(f"  {label:32s} {result[key]:.4f}")
    head = (f"{result['imagery']} vs {result['labels']} ({result['labels_kind']}), model {result['model']}, "
            f"{result['area_km2']:.3f} km2 at {result['resolution_m']:g} m/px, threshold {result['threshold']:g}")
    return "\n".join([head, *rows])


def _expand(table: list[tuple[str, str]], slacks: tuple[float, ...]) -> list[tuple[str, str]]:
    """The table's rows with the relaxed rows repeated per slack, each slack's three together."""
    plain = [row for row in table if "{s}" not in row[0]]
    relaxed = [(k.format(s=f"{s:g}"), lbl.format(s=f"{s:g}")) for s in slacks for k, lbl in table if "{s}" in k]
    return plain[:4] + relaxed + plain[4:]


def run(args: argparse.Namespace) -> int:
    check_model(args.model)
    if args.json:
        check_output_file(args.json)  # before the model runs, not after
    from osmgap.jobs.eval import evaluate_imagery

    result = evaluate_imagery(args.imagery, args.labels, args.model, args.slack_m, views=args.views, bands=args.bands)
    print(format_table(result, args.slack_m))
    if "false_road_km_per_km2" in result:
        print(f"  {'false road, km per km2':32s} {result['false_road_km_per_km2']:.4f}")
    for caution in result["warnings"]:
        print(f"  {caution}")
    if args.json:
        write_text_atomic(args.json, strict_json(result, indent=2))
    return 0
