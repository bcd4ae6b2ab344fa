"""Pixel and relaxed scores on a real mask, with hand-checkable edits."""
import numpy as np
from PIL import Image

from osmgap.metrics.pixel import pixel_scores, relaxed_counts, relaxed_scores, relaxed_scores_from_counts


def _mask(data):
    return np.asarray(Image.open(data / "deepglobe" / "train" / "104_mask.png").convert("L")) > 127


def test_identical_and_disjoint(data):
    m = _mask(data)
    assert pixel_scores(m, m)["iou"] == 1.0
    assert pixel_scores(m, ~m)["iou"] == 0.0


def test_shift_hurts_iou_but_not_relaxed_within_slack(data):
    m = _mask(data)
    shifted = np.roll(m, 2, axis=1)  # the real mask moved 2 px
    assert pixel_scores(shifted, m)["iou"] < 0.9
    r = relaxed_scores(shifted, m, slack_px=3)
    assert r["relaxed_precision"] > 0.99 and r["relaxed_recall"] > 0.99
    from scipy import ndimage
    band = (ndimage.distance_transform_edt(~m) > 3) & (ndimage.distance_transform_edt(~m) <= 5)
    far = relaxed_scores(band, m, slack_px=3)  # everything predicted lies 3-5 px from a road
    assert far["relaxed_precision"] == 0.0
    assert relaxed_scores(band, m, slack_px=5)["relaxed_precision"] == 1.0


def test_counts_pool_over_images(data):
    m = _mask(data)
    a, b = m[:512], m[512:]
    pooled = relaxed_scores_from_counts(relaxed_counts(a, a, 3) + relaxed_counts(np.zeros_like(b), b, 3))
    assert abs(pooled["relaxed_recall"] - a.sum() / m.sum()) < 1e-9
    assert pooled["relaxed_precision"] == 1.0
