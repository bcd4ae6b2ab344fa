"""Pixel metrics for road masks: IoU, precision, recall, F1."""
from __future__ import annotations

import numpy as np


def pixel_scores(pred: np.ndarray, truth: np.ndarray, valid: np.ndarray | None = None) -> dict[str, float]:
    """IoU/precision/recall/F1 of two boolean masks over ``valid`` pixels (all when None)."""
    pred = pred.astype(bool)
    truth = truth.astype(bool)
    if valid is not None:
        pred, truth = pred[valid], truth[valid]
    tp = float(np.count_nonzero(pred & truth))
    fp = float(np.count_nonzero(pred & ~truth))
    fn = float(np.count_nonzero(~pred & truth))
    iou = tp / (tp + fp + fn) if tp + fp + fn else 1.0
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"iou": iou, "precision": precision, "recall": recall, "f1": f1}
