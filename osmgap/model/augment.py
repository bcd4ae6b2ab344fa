"""Training crops and their augmentation: what a road model must shrug off (scale, orientation,
sensor and light) and what it must not invent (a road where the image shows none).

Shared by road training (``osmgap.model.train``) and encoder pretraining (``osmgap.model.pretrain``).
"""
from __future__ import annotations

from typing import cast

import numpy as np
import torch
import torch.nn.functional as F

from osmgap.model.data import Sample

MIN_VALID_SHARE = 0.3  # a crop mostly outside the imagery teaches nothing: draw another (a few tries)


def random_crop(sample: Sample, crop: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A random crop (image, mask, valid) with scale jitter (0.7-1.4: ground resolutions around the
    model's grid), flips, rot90 and photometric augmentation (:func:`photometric`)."""
    scale = float(np.exp(rng.uniform(np.log(0.7), np.log(1.4))))
    src = max(8, int(round(crop / scale)))
    img, mask = sample.image, sample.mask
    valid = np.ones(mask.shape, np.uint8) if sample.valid is None else sample.valid.astype(np.uint8)
    _, h, w = img.shape
    if h < src or w < src:  # pad small chips with no-data
        ph, pw = max(0, src - h), max(0, src - w)
        img = np.pad(img, ((0, 0), (0, ph), (0, pw)))
        mask, valid = np.pad(mask, ((0, ph), (0, pw))), np.pad(valid, ((0, ph), (0, pw)))
        _, h, w = img.shape
    for _ in range(5):
        r, c = rng.integers(0, h - src + 1), rng.integers(0, w - src + 1)
        if valid[r:r + src, c:c + src].mean() >= MIN_VALID_SHARE:
            break
    xt = torch.from_numpy(np.ascontiguousarray(img[:, r:r + src, c:c + src]))[None]
    yt = torch.from_numpy(np.stack([mask[r:r + src, c:c + src], valid[r:r + src, c:c + src]]).astype(np.float32))[None]
    if src != crop:
        xt = F.interpolate(xt, size=(crop, crop), mode="bilinear", align_corners=False)
        yt = (F.interpolate(yt, size=(crop, crop), mode="bilinear", align_corners=False) > 0.5).float()
    x, y, v = xt[0].numpy(), yt[0, 0].numpy(), yt[0, 1].numpy()
    k = int(rng.integers(0, 4))
    x, y, v = np.rot90(x, k, axes=(1, 2)), np.rot90(y, k), np.rot90(v, k)
    if rng.random() < 0.5:
        x, y, v = x[:, :, ::-1], y[:, ::-1], v[:, ::-1]
    x = photometric(np.ascontiguousarray(x, np.float32), v > 0, rng)
    return x, np.ascontiguousarray(y * v, np.float32), np.ascontiguousarray(v, np.float32)


def photometric(x: np.ndarray, valid: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sensor and light changes the model must shrug off: greyscale (a panchromatic image is read
    as three equal bands), gamma, contrast and tint, blur and noise. No-data stays 0."""
    grey = rng.random() < 0.25
    x = np.power(x, float(np.exp(rng.uniform(np.log(0.6), np.log(1.6)))))
    # contrast and a hue-ish tint; one per band (numpy's stubs read size=Any as a scalar draw)
    gain = cast(np.ndarray, rng.uniform(0.75, 1.3) * rng.uniform(0.92, 1.08, size=x.shape[0]))
    bias = rng.uniform(-0.1, 0.1)
    mean = x.mean(axis=(1, 2), keepdims=True)
    x = (x - mean) * gain[:, None, None] + mean + bias
    if rng.random() < 0.2:  # a softer sensor or a resampled image
        taps = np.exp(-np.arange(-2, 3) ** 2 / (2 * rng.uniform(0.5, 1.2) ** 2))
        kernel = torch.from_numpy(np.outer(taps, taps) / np.outer(taps, taps).sum()).float()
        bands = x.shape[0]
        x = F.conv2d(F.pad(torch.from_numpy(np.ascontiguousarray(x, np.float32))[None], (2, 2, 2, 2), mode="replicate"),
                     kernel.expand(bands, 1, 5, 5), groups=bands)[0].numpy()
    if grey:  # after the tint: three equal bands, as a panchromatic image is read
        x = np.repeat(x.mean(axis=0, keepdims=True), x.shape[0], axis=0)
    if rng.random() < 0.3:
        x = x + rng.normal(0.0, rng.uniform(0.005, 0.04), size=(1 if grey else x.shape[0], *x.shape[1:]))
    x = np.clip(x, 0, 1) * valid
    return np.ascontiguousarray(x, np.float32)


ERASE_LENGTH_PX = (24, 96)  # a stretch of street to hide, at the model's grid (~1 m/px)
ERASE_WIDTH_PX = (10, 28)  # a street and its kerbs


def road_direction(road: np.ndarray, r0: float, c0: float, fallback: float, radius: float = 16.0) -> float:
    """The angle (as ``erase_patches`` measures it) of the labelled road through (r0, c0): the main
    axis of the road pixels within ``radius``; ``fallback`` where they show no direction."""
    near = road[np.hypot(road[:, 0] - r0, road[:, 1] - c0) <= radius].astype(np.float64)
    if len(near) < 3:
        return fallback
    dr, dc = (near - near.mean(axis=0)).T
    cov = np.array([[dr @ dr, dr @ dc], [dr @ dc, dc @ dc]])
    evals, evecs = np.linalg.eigh(cov)
    if evals[1] < 2 * max(evals[0], 1e-9):  # a blob or a junction: no one direction
        return fallback
    vr, vc = evecs[:, 1]
    return float(np.arctan2(vr, vc) % np.pi)  # along = dr sin(a) + dc cos(a)


def erase_patches(x: np.ndarray, y: np.ndarray, v: np.ndarray, rng: np.random.Generator,
                  count: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Hide ``count`` street-shaped strips under featureless paint and unlabel them.

    Why: a model that completes roads through a blank fill (a cleared site, a cloud, a mosaic
    seam) reports roads the image does not show and misses roads that vanished (``osmgap change``).
    A strip lies on a labelled road when the crop has one (else anywhere): half of the time along
    the road (a stretch of it gone, the way ``osmgap change`` sees a removed road), else at a random
    angle (a gap across it); its fill is the crop's median colour, with faint noise half of the time. No-data stays 0.
    """
    x, y = x.copy(), y.copy()
    _, h, w = x.shape
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float32)
    road = np.argwhere((y > 0) & (v > 0))
    inside = v > 0
    fill = np.median(x[:, inside], axis=1) if inside.any() else np.zeros(x.shape[0], np.float32)
    for _ in range(count):
        r0, c0 = road[rng.integers(len(road))] if len(road) else (rng.uniform(0, h), rng.uniform(0, w))
        angle = rng.uniform(0, np.pi)
        if len(road) and rng.random() < 0.5:
            angle = road_direction(road, r0, c0, angle)
        along = (rows - r0) * np.sin(angle) + (cols - c0) * np.cos(angle)
        across = (rows - r0) * np.cos(angle) - (cols - c0) * np.sin(angle)
        half_len, half_wid = rng.uniform(*ERASE_LENGTH_PX) / 2, rng.uniform(*ERASE_WIDTH_PX) / 2
        strip = (np.abs(along) <= half_len) & (np.abs(across) <= half_wid) & inside
        paint = np.broadcast_to(fill[:, None], (x.shape[0], int(strip.sum()))).astype(np.float32)
        if rng.random() < 0.5:
            paint = paint + rng.normal(0.0, 0.01, size=paint.shape).astype(np.float32)
        x[:, strip] = np.clip(paint, 0, 1)
        y[strip] = 0
    return np.ascontiguousarray(x, np.float32), np.ascontiguousarray(y, np.float32)
