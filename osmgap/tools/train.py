"""Train a road segmentation model on real imagery with road masks.

Data come from the shared data directory ($OSMGAP_DATA or ../shared/data). A tenth of the
images (chosen by a hash of their names) is held out for validation; the best checkpoint by
validation IoU is written to --out, with a JSON training record beside it.
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from osmgap.core.atomic import check_output_file
from osmgap.errors import InputError
from osmgap.model.choices import DATASETS, DECODERS, FOLD_TILE_PX, SCHEDULES
from osmgap.tools.options import (
    add_aoi_argument,
    add_imagery_argument,
    add_osm_argument,
    add_out_argument,
    input_arg,
    number,
    positive_float,
    positive_int,
    window_px,
)

HELP = "train a road segmentation model"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_out_argument(p, "checkpoint to write (.pt)")
    p.add_argument("--data", default=",".join(DATASETS),
                   help="comma-separated datasets from the data directory (default: %(default)s); images that "
                        "bench/generalize.py scores as held out are never loaded")
    packs = p.add_mutually_exclusive_group()
    packs.add_argument("--write-pack", action="store_true",
                       help="only load --data/--pair and write them to --out as a training pack "
                            "(osmgap.model.pack), to train on elsewhere")
    packs.add_argument("--pack", metavar="FILE",
                       help="train on the samples of this training pack instead of --data/--pair (needs no GIS "
                            "stack and no data directory: a bare GPU machine)")
    p.add_argument("--arch", default="Linknet",
                   help="smp architecture (Unet, Linknet, UnetPlusPlus, DeepLabV3Plus, ...; default %(default)s)")
    p.add_argument("--encoder", default="resnet18", help="smp encoder name (default %(default)s)")
    p.add_argument("--resolution", type=number(float, above=0.0, high=100.0), default=1.0,
                   help="ground resolution to train at, m/px (default %(default)s)")
    p.add_argument("--steps", type=positive_int, default=1000, help="optimizer steps (default %(default)s)")
    p.add_argument("--batch", type=positive_int, default=8, help="crops per step (default %(default)s)")
    p.add_argument("--crop", type=window_px, default=256, help="training crop side, pixels (default %(default)s)")
    p.add_argument("--lr", type=number(float, above=0.0, high=1.0), default=2e-3,
                   help="peak learning rate (default %(default)s)")
    p.add_argument("--seed", type=number(int, low=0, high=2**32 - 1), default=0,
                   help="random seed of the crops, augmentation and initial weights (default %(default)s)")
    p.add_argument("--eval-every", type=positive_int, default=100, help="steps between validations (default %(default)s)")
    p.add_argument("--init", type=input_arg, help="start from the weights of this checkpoint (same arch/encoder; 'default': the shipped "
                                  "model); without it training starts from random weights, which takes days on a CPU "
                                  "(cross-prediction starts from the shipped model)")
    p.add_argument("--init-encoder", help="then take the encoder's weights from this pretrained encoder "
                                          "(written by osmgap pretrain)")
    p.add_argument("--decoder", choices=DECODERS, default="plain",
                   help="Linknet decoder: plain transposed convolutions or the 1D decoder of Sun et al. 2019")
    p.add_argument("--max-minutes", type=positive_float, default=None,
                   help="stop after this much training time in all, resumed calls included")
    p.add_argument("--schedule", choices=SCHEDULES, default="onecycle",
                   help="learning-rate schedule (default %(default)s); cosine-fit anneals over whichever of --steps "
                        "and --max-minutes (in all, resumed calls included) runs out first")
    p.add_argument("--patience", type=positive_int, default=None,
                   help="stop early after this many validations without a better IoU")
    p.add_argument("--resume", type=input_arg, help="continue from a training state (OUT.state, written at every validation)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing --out (its model, .json and .state, or a cross-prediction's outputs); "
                        "without it an existing --out is refused")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar with loss and IoU (default: when stderr is a terminal)")
    loss = p.add_argument_group("loss ingredients (default: plain Dice+BCE; osmgap.model.losses)")
    loss.add_argument("--cldice", type=number(float, low=0.0, high=1.0), default=0.0,
                      help="share of the loss given to soft-clDice, which penalises broken roads (default %(default)s)")
    loss.add_argument("--near-road-weight", type=number(float, low=0.0, high=1.0), default=1.0,
                      help="BCE weight of non-road pixels beside a labelled road, for OSM labels drawn off the "
                           "imagery (default %(default)s)")
    loss.add_argument("--bootstrap", type=number(float, low=0.0, high=0.5), default=0.0,
                      help="share of a non-road pixel's target taken from the net's own belief, for roads "
                           "missing from the labels (default %(default)s)")
    p.add_argument("--erase", type=number(float, low=0.0, high=1.0), default=0.0,
                   help="share of crops with a street-shaped strip painted over in one flat colour and "
                        "unlabelled, so the model draws no road the image does not show (default %(default)s)")
    p.add_argument("--fp32", action="store_true",
                   help="train in full fp32 (default: bf16 autocast where the GPU or CPU has native bf16)")
    p.add_argument("--pair", action="append", default=[], metavar="IMAGE=LABELS",
                   help="add a georeferenced image with its road labels (mask GeoTIFF, OSM file with per-class "
                        "widths, or road centrelines such as SpaceNet's); repeatable; --data '' trains on pairs only; "
                        "its image is read in --bands when given")
    folds = p.add_argument_group("cross-prediction on an AOI's own OSM labels (--out is then a directory)")
    add_aoi_argument(folds, required=False, what=": the area to cross-predict")
    add_imagery_argument(folds)
    add_osm_argument(folds, ": the labels (default: the sample AOI's)", graph_crs=True)
    folds.add_argument("--folds", type=number(int, low=2), help="number of spatially blocked folds (>= 2)")
    folds.add_argument("--fold-tile", type=number(int, low=32), default=FOLD_TILE_PX,
                       help="tile side in pixels, at least 32 (default %(default)s)")


def run(args: argparse.Namespace) -> int:
    import torch

    from osmgap.model.nets import check_architecture
    from osmgap.model.train import TrainConfig, check_init, check_resume, train

    cfg = TrainConfig(arch=args.arch, encoder=args.encoder, resolution_m=args.resolution, steps=args.steps,
                      batch=args.batch, crop=args.crop, lr=args.lr, seed=args.seed,
                      eval_every=args.eval_every, max_minutes=args.max_minutes, init=args.init,
                      decoder=args.decoder, schedule=args.schedule, patience=args.patience, resume=args.resume,
                      cldice=args.cldice, near_road_weight=args.near_road_weight, bootstrap=args.bootstrap,
                      init_encoder=args.init_encoder, erase=args.erase,
                      progress=sys.stderr.isatty() if args.progress is None else args.progress)
    check_combination(args)
    check_architecture(cfg.arch, cfg.encoder, cfg.decoder)
    check_init(cfg)  # before any data is read or step taken
    if not (args.aoi or args.folds):
        if args.out.is_dir():
            raise InputError(args.out, "is a directory; --out is the file to write (a checkpoint, or with --write-pack "
                                       "the pack)")
        check_output_file(args.out)  # before any step, not after the training
        if args.out.exists() and args.write_pack and not args.overwrite:
            raise InputError(args.out, "exists: give another --out for the pack, or --overwrite to replace it")
        if args.out.exists() and not (args.write_pack or args.resume or args.overwrite):
            raise InputError(args.out, "exists (a model of an earlier run): give another --out, --resume "
                                       f"{state_file(args.out)} to continue it, or --overwrite to replace it")
    elif not args.overwrite and any((args.out / name).exists() for name in ("probability.tif", "folds.json")):
        raise InputError(args.out, "holds an earlier cross-prediction (probability.tif, folds.json): give another "
                                   "--out, or --overwrite to replace it")
    if cfg.schedule == "cosine-fit" and not cfg.max_minutes:
        raise InputError("--schedule", "cosine-fit anneals over --max-minutes: give it")
    if not (args.aoi or args.folds or args.write_pack):
        check_resume(cfg, args.out)  # its settings, its --out and its steps left, before any data is read
    if args.bands and (args.pack or not (args.pair or args.aoi)):
        raise InputError("--bands", "chooses the bands of the --pair and --aoi images: give one "
                                    "(the --data datasets and a --pack know their own)")
    if args.aoi or args.folds:
        if args.write_pack or args.pack:
            raise InputError("--write-pack" if args.write_pack else args.pack,
                             "cross-prediction (--aoi/--folds) trains on the AOI's own labels, not on a pack")
        from osmgap.jobs.train import cross_predict

        result = cross_predict(args.aoi, args.imagery, args.osm, args.folds, cfg, args.out, args.fold_tile,
                               log=lambda m: print(m, flush=True), bands=args.bands, graph_crs=args.gps_crs)
        held = result.held_out
        print(f"{len(result.tiles)} tiles in {args.folds} folds cross-predicted; held-out IoU against the OSM labels "
              f"{held['iou']:.4f} (P {held['precision']:.3f} R {held['recall']:.3f}, each tile at the threshold of "
              "the model that did not see it)")
        print(f"wrote {args.out}/probability.tif: the road probability of the whole AOI (0-255), every tile "
              "predicted by a model fine-tuned on the other folds only, so OSM's gaps were never taught as "
              f"'no road'; open it over the imagery in QGIS and look for bright roads OSM lacks; {args.out}/folds.json "
              "records which model predicted which tile. The fold models are not kept: to fine-tune a model to "
              f"use with osmgap diff --model, run osmgap train --pair IMAGE=LABELS --init default --out MODEL.pt")
        return 0
    if args.pack:
        from osmgap.model.pack import read_pack

        samples, packed_m = read_pack(args.pack)
        if abs(packed_m - cfg.resolution_m) > 1e-9:
            raise InputError(args.pack, f"the pack holds samples at {packed_m} m/px; train it with --resolution {packed_m}")
    else:
        from osmgap.jobs.train import load_samples

        samples = load_samples([d.strip() for d in args.data.split(",") if d.strip()], args.pair, args.resolution,
                               args.bands)
    if args.write_pack:
        from osmgap.model.pack import write_pack

        size = write_pack(samples, args.out, args.resolution)
        print(f"{len(samples)} samples at {args.resolution} m/px; wrote {args.out} ({size / 1e6:.1f} MB)")
        return 0
    print(f"{len(samples)} samples; torch {torch.__version__} on {torch.get_num_threads()} threads", flush=True)
    started = time.time()
    try:
        record = train(samples, cfg, args.out, log=lambda m: print(m, flush=True))
    except KeyboardInterrupt:
        print(f"osmgap: {interrupted_line(args.out, started)}", file=sys.stderr)
        raise
    threshold = record["threshold"]["threshold"]
    print(f"best val IoU {record['best'].get('iou', float('nan')):.4f} at step {record['best'].get('step')}; wrote {args.out} "
          f"with threshold {threshold:.2f} (use it with `osmgap diff --model {args.out}`; {state_file(args.out)} "
          "resumes the run with --resume and may be deleted)")
    return 0


def state_file(out: Path) -> Path:
    return Path(str(out) + ".state")  # as osmgap.model.resume.state_path, without importing torch


def check_combination(args: argparse.Namespace) -> None:
    """The options of the two ways to train, not mixed: a model on --data/--pair, or a
    cross-prediction of an AOI (--aoi, --folds, --imagery, --osm); each misuse in one line."""
    pair_hint = "to fine-tune a model on your own area give --pair IMAGE=LABELS (repeatable; --data '' for pairs only)"
    if not (args.aoi or args.folds) and (args.imagery or args.osm):
        given = "--imagery" if args.imagery else "--osm"
        raise InputError(given, f"is for cross-prediction with --aoi AOI --folds K (a held-out probability.tif of the "
                                f"AOI); {pair_hint}")
    if args.aoi and not args.folds:
        raise InputError("--aoi", f"needs --folds K: it cross-predicts the AOI from its own OSM labels; {pair_hint}")
    if args.folds and not args.aoi:
        raise InputError("--folds", "needs --aoi AOI, the area to cross-predict (with --imagery and --osm unless it "
                                    f"is a sample AOI); {pair_hint}")
    if args.aoi and args.pair:
        raise InputError("--pair", "does not go with --aoi/--folds: a cross-prediction learns from the AOI's --imagery "
                                   "and --osm only; drop --pair, or drop --aoi/--folds to train a model on the pairs")


def interrupted_line(out: Path, started: float) -> str:
    """What a Ctrl-C leaves and how to go on: the state file and the exact command that resumes it."""
    state = state_file(out)
    if not (state.exists() and state.stat().st_mtime >= started - 1):
        where = f"{out} holds the --init model (step 0)" if out.exists() else f"{out} was not written"
        return (f"training stopped before its first validation, so there is no state to resume; {where}; "
                "run it again with --overwrite")
    argv = sys.argv[1:] if Path(sys.argv[0]).name in ("osmgap", "__main__.py") else None
    if argv:
        kept, skip = [], False
        for word in argv:
            if skip:
                skip = False
            elif word == "--resume":
                skip = True
            elif not (word.startswith("--resume=") or word == "--overwrite"):
                kept.append(word)
        again = shlex.join(["osmgap", *kept, "--resume", str(state)])
    else:
        again = f"osmgap train <the same options> --resume {shlex.quote(str(state))}"
    return (f"training stopped; {out} and {out}.json hold the best checkpoint so far (threshold not yet calibrated), "
            f"{state} the run's state: continue with `{again}`")
