"""1D decoder (Sun et al., CVPR 2019) against the plain Linknet decoder on the Massachusetts crops.

Both nets are Linknet-resnet18 trained from scratch with the same seed, steps, batch, crop and
augmentation (``osmgap train --data massachusetts``); only the decoder's upsampling layers
differ. Each keeps its best checkpoint and calibrates its threshold on the Massachusetts
validation split (a hash-chosen tenth of the 326 crops, never trained on), then is scored there
with ``bench/model_iou.py``'s pooled pixel IoU, relaxed (3 m and 1 m) precision/recall/F1, and
mean APLS and TOPO F1 per crop. The same
split picked the threshold, so both figures are slightly optimistic, equally.

Usage: python bench/decoder1d.py [--steps 250] [--out-dir runs/decoder1d] [--reuse] [--json OUT]
``--reuse`` scores existing checkpoints ``OUT_DIR/{plain,1d}.pt`` instead of training (e.g. ones
written by ``osmgap train --data massachusetts --decoder 1d --steps 250 --eval-every 250``).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from osmgap.core.datapaths import data_root
from osmgap.model.data import load_training_data
from osmgap.model.nets import DECODERS, ModelMeta, build_net, load_checkpoint
from osmgap.model.train import TrainConfig, train

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model_iou import massachusetts_validation  # noqa: E402

COLUMNS = ("iou", "precision", "recall", "f1", "relaxed_precision@3m", "relaxed_recall@3m", "relaxed_f1@3m",
           "relaxed_f1@1m", "apls", "topo_f1")


def parameter_counts() -> dict[str, dict[str, int]]:
    counts = {}
    for decoder in DECODERS:
        net = build_net(ModelMeta(decoder=decoder))
        counts[decoder] = {"net": sum(p.numel() for p in net.parameters()),
                           "decoder": sum(p.numel() for p in net.decoder.parameters())}
    return counts


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=250)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--crop", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out-dir", type=Path, default=Path("runs/decoder1d"))
    p.add_argument("--reuse", action="store_true", help="score existing checkpoints, do not train")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    root = data_root()
    counts = parameter_counts()
    for decoder, c in counts.items():
        print(f"{decoder:6s} parameters: net {c['net']:,}, decoder {c['decoder']:,}")
    print(f"1d / plain: net {counts['1d']['net'] / counts['plain']['net']:.4f}, "
          f"decoder {counts['1d']['decoder'] / counts['plain']['decoder']:.4f}")
    results = {}
    for decoder in DECODERS:
        checkpoint = args.out_dir / f"{decoder}.pt"
        if not args.reuse:
            samples = load_training_data(root, ["massachusetts"], 1.0)
            cfg = TrainConfig(steps=args.steps, batch=args.batch, crop=args.crop, seed=args.seed,
                              eval_every=args.steps, decoder=decoder)
            train(samples, cfg, checkpoint, log=lambda m, d=decoder: print(f"  {d}: {m}", flush=True))
        net, meta = load_checkpoint(checkpoint)
        record = json.loads(Path(str(checkpoint) + ".json").read_text())
        results[decoder] = {**massachusetts_validation(net, meta, root), "threshold": meta.threshold,
                            "steps": record.get("steps_done"), "train_seconds": record.get("seconds"),
                            "seed": record["config"]["seed"], "decoder_in_checkpoint": meta.decoder}
    print(f"\nMassachusetts validation ({results['plain']['images']} crops), torch {torch.__version__}")
    print(f"{'decoder':8s} {'steps':>5s} {'thr':>5s} " + " ".join(f"{c:>20s}" for c in COLUMNS))
    for decoder, r in results.items():
        print(f"{decoder:8s} {r['steps']:5d} {r['threshold']:5.2f} " + " ".join(f"{r[c]:20.4f}" for c in COLUMNS))
    if args.json:
        args.json.write_text(json.dumps({"parameters": counts, "results": results}, indent=2))


if __name__ == "__main__":
    main()
