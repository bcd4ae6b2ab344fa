"""Train a road segmentation model on real imagery with road masks.

Data come from the shared data directory ($OSMGAP_DATA or ../shared/data). A tenth of the
images (chosen by a hash of their names) is held out for validation; the best checkpoint by
validation IoU is written to --out, with a JSON training record beside it.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch

from osmgap.datapaths import data_root
from osmgap.model.data import load_training_data
from osmgap.model.train import TrainConfig, train

HELP = "train a road segmentation model"
log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, type=Path, help="checkpoint to write (.pt)")
    p.add_argument("--data", default="massachusetts,deepglobe,spacenet",
                   help="comma-separated datasets from the data directory (default: %(default)s)")
    p.add_argument("--arch", default="Linknet", help="smp architecture (Unet, Linknet, UnetPlusPlus, DeepLabV3Plus, ...)")
    p.add_argument("--encoder", default="resnet18", help="smp encoder name")
    p.add_argument("--resolution", type=float, default=1.0, help="ground resolution to train at, m/px")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--crop", type=int, default=256)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--init", help="start from the weights of this checkpoint (same arch/encoder)")
    p.add_argument("--max-minutes", type=float, default=None, help="stop after this much wall time")


def run(args: argparse.Namespace) -> int:
    cfg = TrainConfig(arch=args.arch, encoder=args.encoder, resolution_m=args.resolution, steps=args.steps,
                      batch=args.batch, crop=args.crop, lr=args.lr, seed=args.seed,
                      eval_every=args.eval_every, max_minutes=args.max_minutes, init=args.init)
    samples = load_training_data(data_root(), [d.strip() for d in args.data.split(",") if d.strip()], args.resolution)
    print(f"{len(samples)} samples; torch {torch.__version__} on {torch.get_num_threads()} threads", flush=True)
    record = train(samples, cfg, args.out, log=lambda m: print(m, flush=True))
    print(f"best val IoU {record['best'].get('iou', float('nan')):.4f} at step {record['best'].get('step')}; wrote {args.out}")
    return 0
