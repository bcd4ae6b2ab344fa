"""How good is a road model on images it never trained on?  Prints a table (and --json).

1. Massachusetts validation split (a hash-chosen tenth of the 326 crops, never trained on;
   it did choose the best checkpoint and the threshold, so it is slightly optimistic).
2. The Paris sample chip (SpaceNet imagery, never seen in training) against its rasterized
   OSM roads. OSM is 5-10 m off the imagery there, so exact IoU understates the model; the
   relaxed scores with 10 m slack show what a mapper would see.

Usage: python bench/model_iou.py [--model PATH] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from osmgap.aoi import load_aoi
from osmgap.datapaths import data_root
from osmgap.metrics import pixel_scores, relaxed_counts, relaxed_scores
from osmgap.model.data import is_validation, load_training_data
from osmgap.model.infer import predict_array, predict_raster
from osmgap.model.nets import load_checkpoint
from osmgap.raster import rasterize_roads
from osmgap.sources.imagery import WindowReader, analysis_grid, open_imagery
from osmgap.sources.osm import load_osm


def massachusetts_validation(net, meta, root: Path) -> dict:
    samples = [s for s in load_training_data(root, ["massachusetts"], meta.resolution_m) if is_validation(s.name)]
    preds = [predict_array(net, meta, s.image) >= meta.threshold for s in samples]
    truths = [s.mask.astype(bool) for s in samples]
    pooled = pixel_scores(np.concatenate([p.ravel() for p in preds]), np.concatenate([t.ravel() for t in truths]))
    slack = 3.0 / meta.resolution_m
    counts = sum(relaxed_counts(p, t, slack) for p, t in zip(preds, truths))
    return {"images": len(samples), **pooled, **relaxed_scores(None, None, slack, counts=counts), "slack_m": 3.0}


def paris_vs_osm(net, meta, root: Path) -> dict:
    chip = root / "sample_aoi" / "paris-1447"
    aoi = load_aoi(str(chip / "aoi.geojson"))
    imagery = open_imagery(chip / "image.tif")
    grid = analysis_grid(imagery, aoi.geometry, aoi.metric_crs, meta.resolution_m)
    with WindowReader(imagery, grid) as reader:
        prob = predict_raster(net, meta, reader)
    pred = prob.prob >= meta.threshold
    truth = rasterize_roads(load_osm(str(chip / "osm_roads.geojson"), aoi).ways, grid).astype(bool)
    out = {"pixels": int(pred.size), **pixel_scores(pred, truth)}
    for slack_m in (3.0, 10.0):
        out.update({f"{k}@{slack_m:.0f}m": v for k, v in relaxed_scores(pred, truth, slack_m / meta.resolution_m).items()})
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    net, meta = load_checkpoint(args.model)
    root = data_root()
    started = time.time()
    results = {"model": args.model or "default", "threshold": meta.threshold,
               "massachusetts_val": massachusetts_validation(net, meta, root),
               "paris_vs_osm": paris_vs_osm(net, meta, root)}
    results["seconds"] = round(time.time() - started, 1)
    for name in ("massachusetts_val", "paris_vs_osm"):
        print(f"{name}:")
        for k, v in results[name].items():
            print(f"  {k:28s} {v:.4f}" if isinstance(v, float) else f"  {k:28s} {v}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
