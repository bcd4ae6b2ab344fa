"""The model's own pace (km2/h), imagery in memory: what inference costs without GDAL's reading,
the road graph or the diff, on any device (a GPU machine without the GIS stack included).

    python bench/model_pace.py --pack FILE [--model PT] [--repeats 4]

The imagery is the real Massachusetts tiles of a training pack (``osmgap train --write-pack``),
side by side in a ``repeats`` x ``repeats`` mosaic at the model's 1 m grid; the forward pass
runs as ``osmgap diff`` runs it (BatchNorm folded, channels-last, sliding 512 px windows,
bf16 autocast where the device has it), once in fp32 and once in the default precision.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from osmgap.core.precision import forced_fp32  # noqa: E402
from osmgap.model.infer import predict_array  # noqa: E402
from osmgap.model.nets import inference_net, load_checkpoint, pick_device  # noqa: E402
from osmgap.model.pack import read_pack  # noqa: E402


def mosaic(pack: Path, repeats: int) -> np.ndarray:
    tiles = [s.image for s in read_pack(pack)[0] if s.domain == "massachusetts-tiles"]
    if not tiles:
        sys.exit(f"{pack}: the pack holds no Massachusetts tile (write it with --data including massachusetts-tiles)")
    side = min(min(t.shape[1:]) for t in tiles)
    cells = [tiles[i % len(tiles)][:, :side, :side] for i in range(repeats * repeats)]
    rows = [np.concatenate(cells[r * repeats:(r + 1) * repeats], axis=2) for r in range(repeats)]
    return np.ascontiguousarray(np.concatenate(rows, axis=1))


def pace(net: torch.nn.Module, meta, image: np.ndarray, device: torch.device) -> tuple[float, float]:
    """(seconds, km2/h) of one pass over ``image`` after a warm-up pass over a corner of it."""
    predict_array(net, meta, image[:, :1024, :1024], device=device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    predict_array(net, meta, image, device=device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    km2 = image.shape[1] * image.shape[2] * meta.resolution_m ** 2 / 1e6
    return seconds, km2 / seconds * 3600


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pack", type=Path, required=True, help="training pack holding Massachusetts tiles")
    ap.add_argument("--model", default="osmgap/model/weights/default.pt")
    ap.add_argument("--repeats", type=int, default=4, help="tiles per mosaic side (default %(default)s)")
    args = ap.parse_args()
    device = pick_device()
    net, meta = load_checkpoint(args.model, device)
    net = inference_net(net, meta.in_channels)
    image = mosaic(args.pack, args.repeats)
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device {name}; mosaic {image.shape[2]} x {image.shape[1]} px = "
          f"{image.shape[1] * image.shape[2] * meta.resolution_m ** 2 / 1e6:.1f} km2", flush=True)
    with forced_fp32(True):
        fp32 = pace(net, meta, image, device)
    default = pace(net, meta, image, device)
    print(f"fp32: {fp32[0]:.2f} s, {fp32[1]:,.0f} km2/h")
    print(f"default precision: {default[0]:.2f} s, {default[1]:,.0f} km2/h (x{fp32[0] / default[0]:.2f} of fp32)")
    if device.type == "cuda":
        print(f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")


if __name__ == "__main__":
    main()
