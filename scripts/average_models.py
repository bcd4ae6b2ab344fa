"""Average two osmgap checkpoints in weight space (a "model soup", Wortsman et al. 2022) and calibrate
the result's threshold on the validation split, as ``osmgap train`` does for its own checkpoints.

The two must share architecture, encoder and input normalisation, and should share a training
lineage (one fine-tuned from the other): averaging unrelated nets gives noise. The shipped
``default.pt`` of stop 25 is ``average_models.py STOP12.pt run4f.pt --alpha 0.5`` (model card).

Usage: .venv/bin/python scripts/average_models.py A.pt B.pt --alpha 0.5 --out OUT.pt
       [--data massachusetts,massachusetts-tiles,shanghai,deepglobe,spacenet]
"""
from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from osmgap.core.datapaths import data_root
from osmgap.model.data import is_validation, load_training_data
from osmgap.model.nets import average_weights, build_net, read_checkpoint, save_checkpoint
from osmgap.model.train import calibrate_threshold


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("a", type=Path)
    ap.add_argument("b", type=Path)
    ap.add_argument("--alpha", type=float, default=0.5, help="weight of B (0: A alone, 1: B alone)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--data", default="massachusetts,massachusetts-tiles,shanghai,deepglobe,spacenet",
                    help="datasets whose validation split calibrates the threshold")
    args = ap.parse_args()
    a_state, a_meta = read_checkpoint(args.a)
    b_state, b_meta = read_checkpoint(args.b)
    try:
        state = average_weights(a_state, b_state, a_meta, b_meta, args.alpha)
    except ValueError as exc:
        raise SystemExit(f"osmgap: {args.b}: {exc} from {args.a}") from None
    training = {"average_of": [str(args.a), str(args.b)], "alpha": args.alpha,
                "a": a_meta.training, "b": b_meta.training}
    meta = replace(b_meta, training=training)
    net = build_net(meta)
    net.load_state_dict(state)
    save_checkpoint(args.out, net, meta)
    samples = load_training_data(data_root(), args.data.split(","), meta.resolution_m)
    print(calibrate_threshold(args.out, [s for s in samples if is_validation(s.name)]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
