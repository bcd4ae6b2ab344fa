"""Pixel metrics for road masks: IoU, precision, recall, F1."""
from __future__ import annotations

import numpy as np


def pixel_counts(pred: np.ndarray, truth: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """[true positives, false positives, false negatives] of two boolean masks over ``valid``
    pixels (all when None): the counts behind pixel scores, summable over tiles or images."""
    pred = pred.astype(bool)
    truth = truth.astype(bool)
    if valid is not None:
        pred, truth = pred[valid], truth[valid]
    return np.array([np.count_nonzero(pred & truth), np.count_nonzero(pred & ~truth),
                     np.count_nonzero(~pred & truth)], np.float64)


def pixel_scores(pred: np.ndarray, truth: np.ndarray, valid: np.ndarray | None = None) -> dict[str, float]:
    """IoU/precision/recall/F1 of two boolean masks over ``valid`` pixels (all when None)."""
    return pixel_scores_from_counts(pixel_counts(pred, truth, valid))


def pixel_scores_from_counts(counts: np.ndarray) -> dict[str, float]:
    """IoU/precision/recall/F1 from ``pixel_counts`` (summed over tiles or images)."""
    tp, fp, fn = counts.tolist()
    iou = tp / (tp + fp + fn) if tp + fp + fn else 1.0
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"iou": iou, "precision": precision, "recall": recall, "f1": f1}


def relaxed_counts(pred: np.ndarray, truth: np.ndarray, slack_px: float,
                   core: tuple[slice, slice] | None = None) -> np.ndarray:
    """[predicted pixels near a true road, predicted pixels, true pixels near a prediction,
    true pixels]: the counts behind relaxed scores, summable over many images. ``core``: count
    only these pixels, the rest of the arrays being context (a tile's margin of at least
    ``slack_px``: the tiles' counts then add up to the whole image's exactly)."""
    from scipy import ndimage

    pred = pred.astype(bool)
    truth = truth.astype(bool)
    near_truth = ndimage.distance_transform_edt(~truth) <= slack_px if truth.any() else np.zeros_like(truth)
    near_pred = ndimage.distance_transform_edt(~pred) <= slack_px if pred.any() else np.zeros_like(pred)
    if core is not None:
        pred, truth, near_truth, near_pred = pred[core], truth[core], near_truth[core], near_pred[core]
    return np.array([(pred & near_truth).sum(), pred.sum(), (truth & near_pred).sum(), truth.sum()], np.float64)


def relaxed_scores(pred: np.ndarray, truth: np.ndarray, slack_px: float) -> dict[str, float]:
    """Relaxed precision/recall (Mnih 2013): a predicted road pixel is right when a true road
    pixel lies within ``slack_px``, and a true pixel is found when a prediction lies that close.

    Road labels drawn from OSM centrelines are a few metres off the painted road, so exact pixel
    IoU punishes predictions that a mapper would call correct.
    """
    return relaxed_scores_from_counts(relaxed_counts(pred, truth, slack_px))


def relaxed_scores_from_counts(c: np.ndarray) -> dict[str, float]:
    """Relaxed precision, recall and F1 from ``relaxed_counts`` (summed over tiles or images)."""
    precision = c[0] / c[1] if c[1] else 1.0
    recall = c[2] / c[3] if c[3] else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"relaxed_precision": float(precision), "relaxed_recall": float(recall), "relaxed_f1": float(f1)}
