"""Does cross-prediction keep a road that OSM lacks?  Deleted-way recall with and without folds.

On each real OSM-labelled chip (the Paris sample with its OSM ways; the SpaceNet Vegas chip with
its SpaceNet centrelines standing in for OSM), a seeded third of the ways is deleted from the
labels, as if nobody had mapped them. Then, starting from the same weights (the default model):

- ``init``:  the starting model, not fine-tuned (reference);
- ``all``:   fine-tuned on every tile with the deleted-way labels (it is taught "no road there");
- ``folds``: K-fold cross-prediction (osmgap.jobs.folds): each tile predicted by a model
  fine-tuned only on the other folds, so never on that tile's missing labels.

Every row is predicted through the same windows (one per fold, with 32 px of imagery around it),
so only the training differs. Scores (pixels at the model's 1 m grid, the starting model's
threshold for every row):
``deleted R@3m/@10m``: relaxed recall of the deleted roads, the share of their label pixels
(each way drawn at its class width, less the pixels a kept way also covers) that lie within 3 m /
10 m of a predicted road pixel; ``kept R@10m``: the same for the roads left in the labels;
``P@10m``: share of predicted pixels within 10 m of any road of the complete labels. Paris OSM is
5-10 m off the imagery, so the 10 m figures are the fair ones there.

This is very little data: ~0.025 km2 (Paris) and ~0.15 km2 (Vegas), 10 and 9 ways, 3 deleted
each; read the figures as a demonstration of the mechanism, not as accuracy.

Usage: python bench/crossfold.py [--steps 100] [--folds 3] [--seeds 0,1] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
from shapely.geometry import box

from osmgap.core.aoi import Aoi, load_aoi
from osmgap.core.datapaths import data_root
from osmgap.graph.rasterize import rasterize_roads
from osmgap.jobs.folds import (
    AoiTrainingData,
    cross_predict,
    fine_tune,
    fold_config,
    load_aoi_training_data,
    predict_fold_windows,
    split_tiles,
    tile_samples,
)
from osmgap.metrics.pixel import relaxed_counts
from osmgap.model.nets import load_checkpoint
from osmgap.model.train import TrainConfig
from osmgap.sources.imagery import open_imagery
from osmgap.sources.osm import load_osm


def paris(root: Path) -> tuple[Aoi, Path, gpd.GeoDataFrame]:
    chip = root / "sample_aoi" / "paris-1447"
    aoi = load_aoi(str(chip / "aoi.geojson"))
    return aoi, chip / "image.tif", load_osm(str(chip / "osm_roads.geojson"), aoi).ways


def vegas(root: Path) -> tuple[Aoi, Path, gpd.GeoDataFrame]:
    """SpaceNet centrelines carry no OSM class: drawn at the default width, as labels.py does."""
    chip = root / "chips" / "vegas-solaris"
    image = chip / "image_pan_uint16.tif"
    aoi = Aoi(box(*open_imagery(image).bounds_wgs84).buffer(-2e-5), "vegas-solaris", str(image))
    lines = gpd.read_file(chip / "roads.geojson").to_crs("EPSG:4326")
    return aoi, image, lines[["geometry"]].assign(highway=None).reset_index(drop=True)


def recall_within(pred: np.ndarray, truth: np.ndarray, slack_px: float) -> float:
    c = relaxed_counts(pred, truth, slack_px)
    return float(c[2] / c[3]) if c[3] else float("nan")


def precision_within(pred: np.ndarray, truth: np.ndarray, slack_px: float) -> float:
    c = relaxed_counts(pred, truth, slack_px)
    return float(c[0] / c[1]) if c[1] else float("nan")


def scores(prob: np.ndarray, threshold: float, deleted: np.ndarray, kept: np.ndarray, px_m: float) -> dict:
    pred = prob >= threshold
    only_deleted = deleted.astype(bool) & ~kept.astype(bool)
    full = deleted.astype(bool) | kept.astype(bool)
    return {"deleted_R@3m": recall_within(pred, only_deleted, 3 / px_m),
            "deleted_R@10m": recall_within(pred, only_deleted, 10 / px_m),
            "deleted_mean_prob": float(prob[only_deleted].mean()),
            "kept_R@10m": recall_within(pred, kept, 10 / px_m),
            "P@10m": precision_within(pred, full, 10 / px_m)}


def run_chip(name: str, aoi: Aoi, image: Path, ways: gpd.GeoDataFrame, seed: int, args: argparse.Namespace,
             work: Path) -> dict:
    rng = np.random.default_rng(seed)
    deleted_idx = sorted(rng.choice(len(ways), size=max(1, round(len(ways) / 3)), replace=False).tolist())
    kept_ways = ways.drop(index=ways.index[deleted_idx])
    cfg = fold_config(TrainConfig(steps=args.steps, batch=args.batch, crop=64, lr=args.lr, seed=seed),
                      None, args.tile)
    data: AoiTrainingData = load_aoi_training_data(aoi, image, kept_ways, cfg.resolution_m)
    deleted = rasterize_roads(ways.iloc[deleted_idx], data.grid)
    net0, meta0 = load_checkpoint(cfg.init)
    threshold = meta0.threshold
    px_m = cfg.resolution_m
    rows = {}
    started = time.time()
    tiles = split_tiles(data.grid.height, data.grid.width, args.folds, args.tile)
    rows["init"] = scores(predict_fold_windows(net0, meta0, data.image, tiles), threshold, deleted, data.labels, px_m)
    quiet = lambda m: None  # noqa: E731
    net, meta, _ = fine_tune(tile_samples(data, tiles), cfg, work / f"{name}-{seed}-all.pt", quiet)
    rows["all"] = scores(predict_fold_windows(net, meta, data.image, tiles), threshold, deleted, data.labels, px_m)
    crossed = cross_predict(data, args.folds, cfg, work, args.tile, quiet)
    rows["folds"] = scores(crossed.prob.prob, threshold, deleted, data.labels, px_m)
    return {"chip": name, "seed": seed, "ways": len(ways), "deleted_ways": deleted_idx,
            "grid_px": [data.grid.width, data.grid.height], "tiles": len(tiles), "threshold": threshold,
            "deleted_label_px": int((deleted.astype(bool) & ~data.labels.astype(bool)).sum()),
            "seconds": round(time.time() - started, 1), "rows": rows}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=100, help="fine-tuning steps per model")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--folds", type=int, default=3)
    p.add_argument("--tile", type=int, default=64, help="tile side, pixels")
    p.add_argument("--seeds", default="0,1", help="seeds of the deleted-way choice (and training)")
    p.add_argument("--chips", default="paris,vegas")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    root = data_root()
    loaders = {"paris": paris, "vegas": vegas}
    results = []
    with tempfile.TemporaryDirectory(prefix="crossfold-") as work:
        for chip in args.chips.split(","):
            aoi, image, ways = loaders[chip](root)
            for seed in [int(s) for s in args.seeds.split(",")]:
                res = run_chip(chip, aoi, image, ways, seed, args, Path(work))
                results.append(res)
                print(f"\n{chip} seed {seed}: {res['ways']} ways, deleted {res['deleted_ways']} "
                      f"({res['deleted_label_px']} label px), grid {res['grid_px']} px, {res['tiles']} tiles, "
                      f"{args.folds} folds, {args.steps} steps, threshold {res['threshold']}, {res['seconds']} s")
                print(f"  {'model':6s} " + " ".join(f"{k:>17s}" for k in res["rows"]["init"]))
                for name, row in res["rows"].items():
                    print(f"  {name:6s} " + " ".join(f"{v:17.3f}" for v in row.values()))
    for name in ("init", "all", "folds"):
        mean = np.nanmean([r["rows"][name]["deleted_R@10m"] for r in results])
        print(f"mean deleted R@10m over {len(results)} runs: {name:6s} {mean:.3f}")
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args) | {"json": str(args.json)}, "results": results}, indent=2))


if __name__ == "__main__":
    main()
