"""Pretrain the road net's encoder on imagery without labels (masked reconstruction).

The imagery is that of the named datasets in the data directory ($OSMGAP_DATA or ../shared/data;
images held out for bench/generalize.py excluded, labels ignored, DeepGlobe's unlabelled images
included), the images of a training pack (--pack, for a GPU machine without the data) and every
--imagery file: your own AOI's imagery is the point. The encoder written to
--out starts a road model with ``osmgap train --init-encoder OUT``.
"""
from __future__ import annotations

import argparse

from osmgap.errors import InputError
from osmgap.model.choices import DATASETS
from osmgap.tools.options import add_out_argument, input_arg, number, positive_float, positive_int, window_px

HELP = "pretrain the road model's encoder on unlabelled imagery"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_out_argument(p, "pretrained encoder to write (.pt)")
    p.add_argument("--data", default=",".join(DATASETS),
                   help=f"datasets of the data directory whose imagery to use, comma-separated, or '' for none "
                        f"(default: {','.join(DATASETS)})")
    p.add_argument("--pack", metavar="FILE",
                   help="also the images of this training pack (osmgap train --write-pack; their labels ignored): "
                        "pretraining on a GPU machine without the GIS stack or the data, with --data ''")
    p.add_argument("--imagery", action="append", default=[], metavar="IMAGE",
                   help="a georeferenced image to pretrain on as well (repeatable)")
    p.add_argument("--init", type=input_arg, help="start from this road model (its weights and normalisation); default: the shipped one")
    p.add_argument("--resolution", type=number(float, above=0.0, high=100.0), default=None,
                   help="ground resolution in m/px (default: the --init model's)")
    p.add_argument("--steps", type=positive_int, default=300, help="optimizer steps (default %(default)s)")
    p.add_argument("--batch", type=positive_int, default=6, help="crops per step (default %(default)s)")
    p.add_argument("--crop", type=window_px, default=256, help="crop side, pixels (default %(default)s)")
    p.add_argument("--lr", type=number(float, above=0.0, high=1.0), default=5e-4, help="peak learning rate")
    p.add_argument("--mask-share", type=number(float, above=0.0, high=0.95), default=0.6,
                   help="share of 16-pixel patches hidden (default %(default)s)")
    p.add_argument("--seed", type=number(int, low=0, high=2**32 - 1), default=0, help="random seed")
    p.add_argument("--max-minutes", type=positive_float, default=None, help="stop after this much wall time")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out; without it one is refused")


def run(args: argparse.Namespace) -> int:
    from osmgap.core.atomic import check_output_file
    from osmgap.core.datapaths import data_root
    from osmgap.model.data import is_validation, load_image, load_training_data, load_unlabelled
    from osmgap.model.nets import DEFAULT_MODEL, read_checkpoint
    from osmgap.model.pretrain import PretrainConfig, pretrain

    check_output_file(args.out)  # a folder or an unwritable place is said now, not after the steps
    if args.out.exists() and not args.overwrite:  # it replaced a road model.pt given by mistake
        raise InputError(args.out, "exists: give another --out for the encoder, or --overwrite to replace it")
    init = args.init or str(DEFAULT_MODEL)
    _, meta = read_checkpoint(init)  # a bad --init is said before any image is read
    resolution = args.resolution or meta.resolution_m
    datasets = [d.strip() for d in args.data.split(",") if d.strip()]
    images = load_training_data(data_root(), datasets, resolution) if datasets else []
    images += load_unlabelled(data_root(), datasets, resolution) if datasets else []
    if args.pack:
        from osmgap.model.pack import read_pack

        packed, packed_m = read_pack(args.pack)
        if abs(packed_m - resolution) > 1e-9:
            raise InputError(args.pack, f"the pack holds images at {packed_m} m/px; pretrain it with --resolution {packed_m}")
        images += packed
    # the validation crops choose road checkpoints and thresholds: keep even their pixels out
    images = [s for s in images if not is_validation(s.name)]
    images += [load_image(path, resolution) for path in args.imagery]
    if not images:
        raise InputError(None, "no imagery: give --data datasets or --imagery files")
    cfg = PretrainConfig(steps=args.steps, batch=args.batch, crop=args.crop, lr=args.lr, seed=args.seed,
                         mask_share=args.mask_share, init=init, max_minutes=args.max_minutes)
    print(f"{len(images)} images at {resolution} m/px", flush=True)
    record = pretrain(images, cfg, args.out, log=lambda m: print(m, flush=True))
    print(f"reconstruction L1 {record['first_loss']:.4f} -> {record['last_loss']:.4f} in {record['steps_done']} steps; "
          f"wrote {args.out}")
    return 0
