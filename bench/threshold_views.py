"""Is the shipped threshold still the best one when windows run in several views?

Averaging a window's views softens the probabilities, so the threshold is calibrated again per
view count exactly as ``osmgap train`` calibrates a checkpoint (osmgap.model.train.calibrate_threshold):
pooled pixel IoU of the Massachusetts validation crops (the tenth of the crops no run trains on)
at thresholds 0.20-0.80 in steps of 0.05. No held-out domain is looked at.

Usage: python bench/threshold_views.py [--model PATH]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from osmgap.core.datapaths import data_root  # noqa: E402
from osmgap.metrics.pixel import pixel_scores  # noqa: E402
from osmgap.model.data import is_validation, load_training_data  # noqa: E402
from osmgap.model.infer import VIEW_CHOICES, predict_array  # noqa: E402
from osmgap.model.nets import load_checkpoint  # noqa: E402

THRESHOLDS = np.round(np.arange(0.2, 0.81, 0.05), 2)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="checkpoint (default: the shipped model)")
    args = ap.parse_args()
    net, meta = load_checkpoint(args.model)
    val = [s for s in load_training_data(data_root(), ["massachusetts"], meta.resolution_m) if is_validation(s.name)]
    keep = [slice(None) if s.valid is None else s.valid.ravel() for s in val]
    truth = np.concatenate([s.mask.ravel().astype(bool)[k] for s, k in zip(val, keep)])
    print(f"{len(val)} validation crops; the checkpoint's threshold: {meta.threshold}")
    print(f"{'views':>5s} {'best':>5s} {'its IoU':>8s} {'IoU at ' + str(meta.threshold):>12s}  IoU per threshold")
    for views in VIEW_CHOICES:
        probs = np.concatenate([predict_array(net, meta, s.image, views=views).ravel()[k] for s, k in zip(val, keep)])
        iou = {float(t): pixel_scores(probs >= t, truth)["iou"] for t in THRESHOLDS}
        best = max(iou, key=lambda t: iou[t])
        at = pixel_scores(probs >= meta.threshold, truth)["iou"]
        print(f"{views:5d} {best:5.2f} {iou[best]:8.4f} {at:12.4f}  " + " ".join(f"{t:.2f}:{v:.4f}" for t, v in iou.items()),
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
