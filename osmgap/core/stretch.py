"""The one stretch every image gets before the model sees it, at training and at inference.

Plain numpy, away from the GIS stack, so that training from a pack (``osmgap.model.pack``) on a
machine without GDAL stretches the way ``osmgap diff`` reads a GeoTIFF.
"""
from __future__ import annotations

import numpy as np

# Percentiles used to stretch >8-bit imagery to [0, 1]; robust to a few hot pixels.
STRETCH_PERCENTILES = (1.0, 99.0)


def robust_limits(values: np.ndarray) -> tuple[float, float]:
    """The values that map to 0 and 1: the STRETCH_PERCENTILES of ``values`` (a flat band)."""
    lo, hi = np.percentile(values, STRETCH_PERCENTILES)
    return float(lo), float(hi if hi > lo else lo + 1)


def stretch_pixels(pixels: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(bands, h, w) pixels of any depth stretched per band to [0, 1] the way imagery is read for
    the model (:func:`robust_limits` over the valid pixels), no-data 0: training images that come
    as plain PNG/JPEG files reach the model as a GeoTIFF of the same scene would."""
    out = np.zeros(pixels.shape, np.float32)
    if not valid.any():
        return out
    for b in range(pixels.shape[0]):
        lo, hi = robust_limits(pixels[b][valid])
        out[b] = np.clip((pixels[b].astype(np.float32) - lo) / (hi - lo), 0.0, 1.0)
    out[:, ~valid] = 0.0
    return out
