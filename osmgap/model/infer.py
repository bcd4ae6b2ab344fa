"""Sliding-window inference with overlap and coverage-normalized stitching.

Tiles overlap so that every pixel is also seen away from a tile border, where convolutions
lack context; each tile's output is weighted by a window that falls towards its edges, and the
sum is divided by the summed weights (the coverage), so seams vanish and edge pixels that only
one tile covers keep their value. Tiles go through the net in batches, on CUDA when present.
"""
from __future__ import annotations

from typing import Callable, Iterator

import numpy as np
import torch

from osmgap.datamodel import ProbabilityRaster
from osmgap.model.nets import ModelMeta, pick_device
from osmgap.sources.imagery import WindowReader

# (row, col, height, width) -> ((3, h, w) float32 in [0, 1], (h, w) bool valid)
TileReader = Callable[[int, int, int, int], tuple[np.ndarray, np.ndarray]]


def tile_origins(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets along one axis: stride ``tile - overlap``, the last tile flush with the end."""
    if length <= tile:
        return [0]
    stride = max(1, tile - overlap)
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)
    return starts


def blend_window(tile: int, overlap: int) -> np.ndarray:
    """Weights that are 1 in the tile's interior and ramp down linearly over ``overlap`` pixels."""
    ramp = np.ones(tile, np.float32)
    if overlap > 0:
        edge = np.linspace(0.05, 1.0, overlap, dtype=np.float32)
        ramp[:overlap] = edge
        ramp[-overlap:] = edge[::-1]
    return np.outer(ramp, ramp)


def _batches(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


@torch.inference_mode()
def sliding_window(net: torch.nn.Module, meta: ModelMeta, read: TileReader, height: int, width: int,
                   tile: int = 512, overlap: int = 64, batch: int = 4,
                   device: torch.device | None = None) -> np.ndarray:
    """Road probability (height, width) float32 for an image read tile by tile through ``read``."""
    if tile % 32:
        raise ValueError("tile size must be a multiple of 32 for the encoder's strides")
    device = device or pick_device()
    tile = min(tile, 32 * -(-max(height, width) // 32))  # a small image needs no full-size tile
    overlap = min(overlap, tile // 2)
    weight = blend_window(tile, overlap)
    acc = np.zeros((height, width), np.float32)
    cov = np.zeros((height, width), np.float32)
    mean = torch.tensor(meta.mean, device=device)[None, :, None, None]
    std = torch.tensor(meta.std, device=device)[None, :, None, None]
    origins = [(r, c) for r in tile_origins(height, tile, overlap) for c in tile_origins(width, tile, overlap)]
    use_amp = device.type == "cuda"
    for group in _batches(origins, batch):
        tiles = [read(r, c, tile, tile) for r, c in group]
        x = torch.from_numpy(np.stack([t[0] for t in tiles])).to(device)
        x = ((x - mean) / std).contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
            prob = torch.sigmoid(net(x).float())[:, 0].cpu().numpy()
        for (r, c), p, (_, valid) in zip(group, prob, tiles):
            h, w = min(tile, height - r), min(tile, width - c)
            wgt = weight[:h, :w] * valid[:h, :w]
            acc[r:r + h, c:c + w] += p[:h, :w] * wgt
            cov[r:r + h, c:c + w] += wgt
    out = np.zeros_like(acc)
    np.divide(acc, cov, out=out, where=cov > 0)
    return out


def predict_array(net: torch.nn.Module, meta: ModelMeta, image: np.ndarray, **kwargs) -> np.ndarray:
    """Probability for an in-memory (3, H, W) image in [0, 1] (training validation, tests)."""
    _, height, width = image.shape

    def read(row: int, col: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        out = np.zeros((3, h, w), np.float32)
        valid = np.zeros((h, w), bool)
        part = image[:, row:row + h, col:col + w]
        out[:, :part.shape[1], :part.shape[2]] = part
        valid[:part.shape[1], :part.shape[2]] = True
        return out, valid

    return sliding_window(net, meta, read, height, width, **kwargs)


def predict_raster(net: torch.nn.Module, meta: ModelMeta, reader: WindowReader, **kwargs) -> ProbabilityRaster:
    """Probability over the reader's grid, reading imagery window by window (never whole)."""
    grid = reader.grid
    prob = sliding_window(net, meta, reader.read, grid.height, grid.width, **kwargs)
    return ProbabilityRaster(prob, grid.transform, grid.crs)
