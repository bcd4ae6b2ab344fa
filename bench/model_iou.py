"""How good is a road model on images it never trained on?  Every score of ``osmgap eval``.

1. Massachusetts validation split (a hash-chosen tenth of the 326 crops, never trained on; it did
   choose the best checkpoint and the threshold, so it is slightly optimistic). Pixel and relaxed
   scores are pooled over all crops; APLS and TOPO are the mean over crops (as SpaceNet averages
   per chip), against the skeleton graph of each crop's mask. The crops carry no georeference:
   they are scored on a 1 m grid in a placeholder UTM frame, which is all the metrics need.
2. The Paris sample chip (SpaceNet imagery, never seen in training) against its OSM roads, which
   are 5-10 m off the imagery: exact scores understate the model there.
3. The SpaceNet Vegas chip against its SpaceNet centrelines: this chip WAS in the shipped model's
   training set (1 of its 286 training images), and its labels miss visible roads.

Usage: python bench/model_iou.py [--model PATH] [--json OUT] [--views N]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from affine import Affine
from rasterio.crs import CRS

from osmgap.core.atomic import write_text_atomic
from osmgap.core.datamodel import ProbabilityRaster
from osmgap.core.datapaths import data_root
from osmgap.core.grid import Grid
from osmgap.jobs.eval import DEFAULT_SLACKS_M, evaluate_imagery, score_roads
from osmgap.metrics.pixel import pixel_scores, relaxed_counts, relaxed_scores_from_counts
from osmgap.model.data import is_validation, load_training_data
from osmgap.model.infer import VIEW_CHOICES, predict_array
from osmgap.model.labels import labels_from_mask
from osmgap.model.nets import load_checkpoint

PLACEHOLDER_CRS = CRS.from_epsg(32619)  # UTM 19N, where Massachusetts lies


def massachusetts_validation(net, meta, root: Path, views: int | None = None) -> dict:
    samples = [s for s in load_training_data(root, ["massachusetts"], meta.resolution_m) if is_validation(s.name)]
    preds, truths, valids, graph_scores = [], [], [], []
    for s in samples:
        prob = predict_array(net, meta, s.image, views=views)
        height, width = prob.shape
        grid = Grid(Affine(meta.resolution_m, 0, 0, 0, -meta.resolution_m, height * meta.resolution_m),
                    width, height, PLACEHOLDER_CRS)
        scores = score_roads(ProbabilityRaster(prob, grid.transform, grid.crs), labels_from_mask(s.mask, grid),
                             meta.threshold, slacks_m=())
        graph_scores.append([scores[k] for k in GRAPH_KEYS])
        valid = np.ones(s.mask.shape, bool) if s.valid is None else s.valid  # white: outside the imagery
        preds.append((prob >= meta.threshold) & valid)
        truths.append(s.mask.astype(bool))
        valids.append(valid)
    out = {"images": len(samples), **pixel_scores(np.concatenate([p.ravel() for p in preds]),
                                                 np.concatenate([t.ravel() for t in truths]),
                                                 np.concatenate([v.ravel() for v in valids]))}
    for slack in DEFAULT_SLACKS_M:
        counts = sum(relaxed_counts(p, t, slack / meta.resolution_m) for p, t in zip(preds, truths))
        out.update({f"{k}@{slack:g}m": v for k, v in relaxed_scores_from_counts(counts).items()})
    out.update({k: float(v) for k, v in zip(GRAPH_KEYS, np.mean(graph_scores, axis=0))})
    return out


GRAPH_KEYS = ("apls", "apls_gt_onto_prop", "apls_prop_onto_gt", "topo_precision", "topo_recall", "topo_f1")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None)
    p.add_argument("--json", type=Path)
    p.add_argument("--views", type=int, choices=VIEW_CHOICES, help="orientations per window (default: the device's)")
    args = p.parse_args()
    net, meta = load_checkpoint(args.model)
    root = data_root()
    started = time.time()
    paris, vegas = root / "sample_aoi" / "paris-1447", root / "chips" / "vegas-solaris"
    results = {
        "model": args.model or "default", "threshold": meta.threshold, "views": args.views or "default",
        "massachusetts_val": massachusetts_validation(net, meta, root, args.views),
        "paris_vs_osm": evaluate_imagery(paris / "image.tif", paris / "osm_roads.geojson", args.model, views=args.views),
        "vegas_vs_spacenet_SEEN_IN_TRAINING": evaluate_imagery(vegas / "image_pan_uint16.tif", vegas / "roads.geojson",
                                                               args.model, views=args.views),
    }
    results["seconds"] = round(time.time() - started, 1)
    for name, scores in results.items():
        if isinstance(scores, dict):
            print(f"{name}:")
            for k, v in scores.items():
                print(f"  {k:28s} {v:.4f}" if isinstance(v, float) else f"  {k:28s} {v}")
    if args.json:
        write_text_atomic(args.json, json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
