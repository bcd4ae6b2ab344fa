"""Does the road model see roads where it was never trained?  One row per domain of real data.

For each domain at hand the shipped model (or --model) is scored the way ``osmgap eval`` scores:
pixel IoU, relaxed F1 at 3 m (a pixel within 3 m of the other side counts) and APLS on the graph
osmgap itself extracts. Each row says whether the model's training set held that domain, so a
row is either (a) "domain held out" or (b) "domain in training, these images held out":

- Massachusetts validation crops: (b), the hash-chosen tenth of the 326 crops (they also chose
  the checkpoint and threshold: slightly optimistic). Scores pooled over crops; APLS the mean.
- Massachusetts full tiles: the 3 tiles no run trains on ((b) for the shipped model, which trained
  on the other 6; (a) for a model that never saw a tile) (no overlap with the crops: data
  README); their white no-data areas are excluded from every score (their masks draw roads there).
- Shanghai PAN chips: the 3 labelled chips no run trains on ((b) for the shipped model, one of
  whose parents trained on the other 4; (a) for a model without Shanghai); pixel value 0
  (outside the satellite strip) is no-data. The two road-free chips give the false road km per
  km2 instead.
- Shanghai MUL: the held-out chips' 8-band multispectral images (1.2 m, read in true colour,
  bands 5, 3, 2): (a) for the shipped model, which never read MUL (a new sensor); (b) for a model
  trained with ``--data ...,shanghai-mul`` (the same chips held out).
- Paris chip vs its OSM: (a); its OSM is 5-10 m off the imagery, so relaxed F1 at 10 m is printed too.
- Vegas chip vs SpaceNet centrelines: (b) but NOT held out (the chip was in training): said so.
- Dark imagery: the Paris chip darkened to a median grey of 30 (8-bit) and the Vegas PAN chip as
  a dark 8-bit image, each beside its original: the IoU drop is the figure.
- Recall by road class: the share of each SpaceNet ``road_type``'s centreline length (Shanghai
  chips of the Shanghai row, and Vegas) with a predicted road within 3 m. No label here marks
  parking aisles (SpaceNet's classes are motorway to cart track; Shanghai's compound roads are
  "unclassified"), so their recall cannot be reported apart; the small classes stand nearest.

Column (a) for a domain that the shipped model saw (and (b) for one it did not) needs a model
trained without (with) it: pass such checkpoints with --model and say so; this script does not
train. No domain here is used for validation or threshold choice except the Massachusetts crops.

Usage: python bench/generalize.py [--model PATH] [--views N] [--json OUT] [--skip-tiles]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import shapely
from affine import Affine
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from model_iou import PLACEHOLDER_CRS, massachusetts_validation  # noqa: E402

from osmgap.core.atomic import write_text_atomic  # noqa: E402
from osmgap.core.datamodel import ProbabilityRaster  # noqa: E402
from osmgap.core.datapaths import data_root  # noqa: E402
from osmgap.core.grid import Grid  # noqa: E402
from osmgap.jobs.eval import evaluate_imagery, predict_footprint, score_roads  # noqa: E402
from osmgap.metrics.pixel import pixel_scores, relaxed_counts, relaxed_scores_from_counts  # noqa: E402
from osmgap.model.data import MUL_TRUE_COLOUR, held_out_massachusetts_tiles, held_out_shanghai_chips  # noqa: E402
from osmgap.model.infer import VIEW_CHOICES, default_views, predict_array  # noqa: E402
from osmgap.model.labels import labels_from_mask  # noqa: E402
from osmgap.model.nets import load_checkpoint, pick_device  # noqa: E402

SHANGHAI_LABELLED = ("144", "308", "1841", "1700", "1916")
SHANGHAI_EMPTY = ("1227", "1890")
SPACENET_ROAD_TYPES = {"1": "motorway", "2": "primary", "3": "secondary", "4": "tertiary", "5": "residential",
                       "6": "unclassified", "7": "cart track"}
DARK_MEDIAN = 30
F1_3M = "relaxed_f1@3m"
TARGETS = {"massachusetts crops (b)": "IoU >= 0.60", "shanghai held out (a)": "F1@3m >= 0.40 (aim)",
           "shanghai all chips (a)": "F1@3m >= 0.40 (aim)", "shanghai held out (b)": "F1@3m >= 0.60, APLS >= 0.35",
           "paris vs OSM (a)": "F1@10m >= 0.75", "dark": "IoU within 0.05 of the original"}


def massachusetts_tiles(net, meta, root: Path, views: int) -> dict:
    """The full tiles no training run loads (osmgap.model.data.HELD_OUT), white no-data excluded
    from pixel, relaxed and graph scores, stretched as training and inference stretch images."""
    preds, truths, valids, aplss = [], [], [], []
    samples = held_out_massachusetts_tiles(root, meta.resolution_m)
    for s in samples:
        valid = np.ones(s.mask.shape, bool) if s.valid is None else s.valid
        prob = predict_array(net, meta, s.image, views=views)
        height, width = prob.shape
        grid = Grid(Affine(meta.resolution_m, 0, 0, 0, -meta.resolution_m, height * meta.resolution_m),
                    width, height, PLACEHOLDER_CRS)
        raster = ProbabilityRaster(np.where(valid, prob, 0.0).astype(np.float32), grid.transform, grid.crs)
        truth = s.mask.astype(bool)
        scores = score_roads(raster, labels_from_mask(s.mask, grid), meta.threshold, slacks_m=(), valid=valid)
        aplss.append(scores["apls"])
        preds.append((prob >= meta.threshold) & valid)
        truths.append(truth)
        valids.append(valid)
    out = {"images": len(preds), "names": [s.name for s in samples], "valid_share": float(np.mean([v.mean() for v in valids])),
           **pixel_scores(np.concatenate([p.ravel() for p in preds]), np.concatenate([t.ravel() for t in truths]),
                          np.concatenate([v.ravel() for v in valids]))}
    counts = sum(relaxed_counts(p, t, 3.0 / meta.resolution_m) for p, t in zip(preds, truths))
    out.update({f"{k}@3m": v for k, v in relaxed_scores_from_counts(counts).items()})
    out["apls"] = float(np.mean(aplss))
    return out


def with_nodata_zero(src_path: Path, dst: Path) -> Path:
    """A copy of a SpaceNet chip that declares 0 (outside the satellite strip) as no-data."""
    with rasterio.open(src_path) as src:
        profile = {**src.profile, "nodata": 0}
        with rasterio.open(dst, "w", **profile) as out:
            out.write(src.read())
    return dst


def darkened_8bit(src_path: Path, dst: Path, median: int = DARK_MEDIAN) -> Path:
    """The image as 8-bit with its grey median moved to ``median``: what a dark scene looks like."""
    with rasterio.open(src_path) as src:
        data = src.read().astype(np.float64)
        profile = {**src.profile, "dtype": "uint8", "nodata": None}
    valid = data.max(axis=0) > 0
    if data.max() > 255:  # deeper imagery: first to 8-bit by its own 99.5th percentile
        data = data / np.percentile(data[:, valid], 99.5) * 255.0
    grey = data.mean(axis=0)
    scaled = np.clip(data * (median / np.median(grey[valid])), 0, 255)
    with rasterio.open(dst, "w", **profile) as out:
        out.write(np.round(scaled).astype(np.uint8))
    return dst


def shanghai(model: str | None, root: Path, tmp: Path, chips_scored: list[str], views: int, sensor: str = "pan",
             bands: tuple[int, ...] | None = None) -> dict:
    """Labelled chips pooled by length-weighted mean; road-free chips as false road km per km2.
    ``sensor``: "pan" (0.3 m panchromatic) or "mul" (1.2 m 8-band, read in ``bands``)."""
    chips = root / "chips" / "shanghai"
    rows = {}
    for n in chips_scored:
        pan = with_nodata_zero(chips / f"AOI_4_Shanghai_img{n}_{sensor}.tif", tmp / f"sh{n}{sensor}.tif")
        rows[n] = evaluate_imagery(pan, chips / f"AOI_4_Shanghai_img{n}_roads.geojson", model, views=views, bands=bands)
    weights = np.array([r["truth_km"] for r in rows.values()])
    pooled = {k: float(np.average([r[k] for r in rows.values()], weights=weights))
              for k in ("iou", F1_3M, "apls", "relaxed_precision@3m", "relaxed_recall@3m")}
    false_km, area = 0.0, 0.0
    no_roads = tmp / "no_roads.geojson"  # the road-free chips' own label files are empty and carry no CRS
    no_roads.write_text('{"type": "FeatureCollection", "crs": {"type": "name", "properties": '
                        '{"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}}, "features": []}')
    for n in SHANGHAI_EMPTY:
        pan = with_nodata_zero(chips / f"AOI_4_Shanghai_img{n}_{sensor}.tif", tmp / f"sh{n}{sensor}.tif")
        result = evaluate_imagery(pan, no_roads, model, views=views, bands=bands)
        false_km += result["proposal_km"]
        area += result["area_km2"]
    return {**pooled, "chips": len(rows), "truth_km": float(weights.sum()),
            "per_chip_f1@3m": {n: round(r[F1_3M], 3) for n, r in rows.items()},
            "road_free_false_km_per_km2": false_km / max(area, 1e-9), "road_free_km2": area}


def recall_by_road_type(net, meta, chips: list[tuple[Path, Path]], views: int, slack_m: float = 3.0) -> dict[str, dict]:
    """Per SpaceNet road class: centreline km (where the image has pixels) and the share of it with
    a predicted road pixel within ``slack_m``, sampled every metre along the lines."""
    device = pick_device()
    found: dict[str, float] = {}
    total: dict[str, float] = {}
    for image, labels in chips:
        prob, valid, grid, _ = predict_footprint(image, net, meta, device, views)
        near = ndimage.distance_transform_edt(prob.prob < meta.threshold) * prob.resolution[0] <= slack_m
        lines = gpd.read_file(labels)
        if lines.empty:
            continue
        lines = lines.to_crs(grid.crs).explode(index_parts=False)
        for geom, kind in zip(lines.geometry, lines["road_type"].astype(str), strict=True):
            pts = shapely.line_interpolate_point(geom, np.arange(0.5, geom.length, 1.0))
            cols, rows = ~grid.transform @ (shapely.get_x(pts), shapely.get_y(pts))
            rows, cols = np.floor(rows).astype(int), np.floor(cols).astype(int)
            inside = (rows >= 0) & (rows < grid.height) & (cols >= 0) & (cols < grid.width)
            rows, cols = rows[inside], cols[inside]
            seen = valid[rows, cols]
            name = SPACENET_ROAD_TYPES.get(kind, f"type {kind}")
            total[name] = total.get(name, 0.0) + float(seen.sum())
            found[name] = found.get(name, 0.0) + float((near[rows, cols] & seen).sum())
    return {name: {"km": total[name] / 1000, f"recall@{slack_m:g}m": found[name] / max(total[name], 1e-9)}
            for name in sorted(total, key=lambda n: list(SPACENET_ROAD_TYPES.values()).index(n)
                               if n in SPACENET_ROAD_TYPES.values() else 99)}


def trained_names(record: dict | None) -> list[str]:
    """The images a training record names, through weight-space averages (scripts/average_models.py
    keeps both parents' records as "a" and "b": the shipped model is one)."""
    if not isinstance(record, dict):
        return []
    return [*record.get("train_names", []), *trained_names(record.get("a")), *trained_names(record.get("b"))]


def trained_domains(meta) -> set[str]:
    """The datasets the checkpoint's training record says it was trained on."""
    return {name.split("/", 1)[0] for name in trained_names(meta.training)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="checkpoint to score (default: the shipped model)")
    ap.add_argument("--json", type=Path, help="write every figure here as well")
    ap.add_argument("--skip-tiles", action="store_true", help="leave out the 9 Massachusetts tiles (the slowest row)")
    ap.add_argument("--views", type=int, choices=VIEW_CHOICES,
                    help="orientations per window (default: the device's, as osmgap diff runs the model)")
    args = ap.parse_args()
    root, started = data_root(), time.time()
    net, meta = load_checkpoint(args.model)
    views = args.views or default_views(pick_device())
    paris, vegas = root / "sample_aoi" / "paris-1447", root / "chips" / "vegas-solaris"
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        seen = trained_domains(meta)
        mark = {d: "(b)" if d in seen else "(a)" for d in ("massachusetts-tiles", "shanghai")}
        rows: dict[str, dict] = {"massachusetts crops (b)": massachusetts_validation(net, meta, root, views)}
        if not args.skip_tiles:
            rows[f"mass. tiles held out {mark['massachusetts-tiles']}"] = massachusetts_tiles(net, meta, root, views)
        held = held_out_shanghai_chips(root)
        rows[f"shanghai held out {mark['shanghai']}"] = shanghai(args.model, root, tmp, held, views)
        # a sensor no training run saw: the same held-out places in WorldView-3's 8-band
        # multispectral image at 1.2 m, read in true colour
        rows[f"shanghai MUL held out {'(b)' if 'shanghai-mul' in seen else '(a)'}"] = shanghai(
            args.model, root, tmp, held, views, "mul", MUL_TRUE_COLOUR)
        if "shanghai" not in seen:  # every labelled chip is unseen: the (a) figure on all of them
            rows["shanghai all chips (a)"] = shanghai(args.model, root, tmp, list(SHANGHAI_LABELLED), views)
        rows["paris vs OSM (a)"] = evaluate_imagery(paris / "image.tif", paris / "osm_roads.geojson", args.model,
                                                    slacks_m=(1.0, 3.0, 10.0), views=views)
        rows["paris darkened (a)"] = evaluate_imagery(darkened_8bit(paris / "image.tif", tmp / "paris_dark.tif"),
                                                      paris / "osm_roads.geojson", args.model, slacks_m=(3.0,),
                                                      views=views)
        rows["vegas PAN (in training)"] = evaluate_imagery(vegas / "image_pan_uint16.tif", vegas / "roads.geojson",
                                                           args.model, views=views)
        scored = held if "shanghai" in seen else list(SHANGHAI_LABELLED)
        chips = root / "chips" / "shanghai"
        by_class = {
            f"shanghai {mark['shanghai']}": recall_by_road_type(net, meta, [
                (with_nodata_zero(chips / f"AOI_4_Shanghai_img{n}_pan.tif", tmp / f"sh{n}.tif"),
                 chips / f"AOI_4_Shanghai_img{n}_roads.geojson") for n in scored], views),
            "vegas (in training)": recall_by_road_type(net, meta, [(vegas / "image_pan_uint16.tif", vegas / "roads.geojson")],
                                                       views),
        }
        rows["vegas dark 8-bit"] = evaluate_imagery(darkened_8bit(vegas / "image_pan_uint16.tif", tmp / "vegas_dark.tif"),
                                                    vegas / "roads.geojson", args.model, views=views)
    print(f"model: {args.model or 'default (shipped)'}, threshold {meta.threshold}, {views} view(s) per window; (a) = domain not in the "
          "model's training, (b) = domain in training, images held out")
    pairs = sorted({name.split("/", 1)[1] for name in trained_names(meta.training) if name.startswith("pair/")})
    if pairs:  # --pair images carry no dataset name: the (a)/(b) marks cannot account for them
        print(f"also trained on {len(pairs)} --pair image(s), not attributed to a domain: {', '.join(pairs)}; "
              "a row marked (a) is (b) if they come from its domain")
    print(f"{'domain':28s} {'IoU':>6s} {'F1@3m':>6s} {'APLS':>6s}  notes")
    for name, r in rows.items():
        note = TARGETS.get(name, "")
        if name.startswith("paris vs"):
            note = f"F1@10m {r['relaxed_f1@10m']:.3f} (target >= 0.75)"
        if name.startswith("shanghai"):
            free = "road-free chips (in training)" if name.endswith("(b)") else "road-free chips"
            aim = f"target {TARGETS[name]}" if name in TARGETS else "WorldView-3 8-band at 1.2 m, bands 5,3,2"
            note = (f"{aim}; {free}: {r['road_free_false_km_per_km2']:.2f} false km/km2; "
                    f"per chip {r['per_chip_f1@3m']}")
        print(f"{name:28s} {r['iou']:6.3f} {r[F1_3M]:6.3f} {r['apls']:6.3f}  {note}")
    for dark, light in (("paris darkened (a)", "paris vs OSM (a)"), ("vegas dark 8-bit", "vegas PAN (in training)")):
        drop = rows[light]["iou"] - rows[dark]["iou"]
        print(f"dark imagery: {dark}: IoU {rows[dark]['iou']:.3f} vs {rows[light]['iou']:.3f}, drop {drop:.3f} "
              f"(target <= 0.05: {'met' if drop <= 0.05 else 'NOT met'})")
    print("recall at 3 m by SpaceNet road class (centreline km; no label here marks parking aisles):")
    for where, classes in by_class.items():
        print(f"  {where}: " + ", ".join(f"{name} {c['recall@3m']:.2f} ({c['km']:.2f} km)" for name, c in classes.items()))
    print(f"({time.time() - started:.0f} s)")
    if args.json:
        write_text_atomic(args.json, json.dumps({"views": views, **rows, "recall_by_road_type": by_class}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
