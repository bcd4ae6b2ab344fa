"""Road-model throughput: the whole ``osmgap diff`` on the sample AOI against the bare forward
pass over the same pixels, and the forward pass's variants (channels-last, torch.compile, flip
TTA, batch), all in one run so the ratios are fair on a shared machine.

Throughput is ground area per hour at the model's resolution (the imagery is resampled to it
before the net sees it; the imagery's own resolution is printed beside it). On a CPU every
figure is a CPU figure; a GPU, when present, is used and named.

Usage: python bench/model.py [--model PATH] [--repeats N] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from osmgap.cli import main as osmgap_main
from osmgap.core.atomic import write_text_atomic
from osmgap.core.datapaths import data_root
from osmgap.model.infer import auto_batch, compiled, forward_probability
from osmgap.model.nets import load_checkpoint, pick_device
from osmgap.sources.imagery import open_imagery


def km2_per_hour(pixels: int, resolution_m: float, seconds: float) -> float:
    return pixels * resolution_m ** 2 / 1e6 / (seconds / 3600)


def time_diff(aoi_dir: Path, model: str | None, repeats: int) -> tuple[float, dict]:
    """Best wall time of ``osmgap diff`` on the sample AOI (a first run warms caches and is dropped)."""
    times, summary = [], {}
    for i in range(repeats + 1):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "out"
            args = ["diff", "--aoi", str(aoi_dir), "--out", str(out)] + (["--model", model] if model else [])
            started = time.perf_counter()
            if osmgap_main(args) != 0:
                raise SystemExit("osmgap diff failed")
            if i:
                times.append(time.perf_counter() - started)
            summary = json.loads((out / "summary.json").read_text())
    return min(times), summary


def time_forward(net: torch.nn.Module, x: torch.Tensor, repeats: int, views: int = 1) -> float:
    """Best seconds of one forward pass (sigmoid included) over batch ``x`` in ``views`` orientations,
    after a warm-up."""
    forward_probability(net, x, views)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        with torch.inference_mode():
            forward_probability(net, x, views)
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", type=Path)
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile measurement")
    args = p.parse_args()
    device = pick_device()
    torch.set_grad_enabled(False)
    net, meta = load_checkpoint(args.model, device)
    aoi_dir = Path(__file__).resolve().parent.parent / "sample_aoi" / "paris-1447"
    res = meta.resolution_m
    gpu = torch.cuda.get_device_name(0) if device.type == "cuda" else None
    print(f"device: {gpu or 'CPU'} ({torch.get_num_threads()} threads), torch {torch.__version__}"
          + ("" if gpu else "; no GPU in this session: GPU throughput NOT measured"))
    imagery = open_imagery(data_root() / "sample_aoi" / "paris-1447" / "image.tif")
    print(f"model {args.model or 'default'} ({meta.arch}/{meta.encoder}) at {res:g} m/px; "
          f"sample imagery {imagery.resolution_m:.2f} m/px, resampled to {res:g} m/px")
    results: dict = {"device": gpu or "cpu", "threads": torch.get_num_threads(), "resolution_m": res}

    diff_s, summary = time_diff(aoi_dir, args.model, args.repeats)
    grid = summary["grid"]
    pixels = grid["width"] * grid["height"]
    tile = 32 * -(-max(grid["width"], grid["height"]) // 32)  # the one tile sliding_window uses here
    x = torch.rand(1, meta.in_channels, tile, tile, device=device).contiguous(memory_format=torch.channels_last)
    bare_s = time_forward(net.to(memory_format=torch.channels_last), x, args.repeats)  # as sliding_window runs it
    results["sample_aoi"] = {
        "pixels": pixels, "km2": pixels * res ** 2 / 1e6, "diff_s": diff_s, "forward_s": bare_s,
        "diff_km2_per_h": km2_per_hour(pixels, res, diff_s), "forward_km2_per_h": km2_per_hour(pixels, res, bare_s),
        "diff_over_forward": diff_s / bare_s, "stages_s": summary.get("seconds"),
    }
    s = results["sample_aoi"]
    print(f"\nsample AOI paris-1447: {grid['width']}x{grid['height']} px = {s['km2']:.4f} km2")
    print(f"  whole osmgap diff      {diff_s:8.3f} s  {s['diff_km2_per_h']:10.1f} km2/h")
    print(f"  bare forward pass      {bare_s:8.3f} s  {s['forward_km2_per_h']:10.1f} km2/h  "
          f"(diff takes {s['diff_over_forward']:.1f}x the forward pass)")
    print(f"  diff stages, s: {summary.get('seconds')}")

    tile, batch = 512, auto_batch(512, device)
    x = torch.rand(batch, meta.in_channels, tile, tile, device=device)
    px = batch * tile * tile
    contiguous, last = torch.contiguous_format, torch.channels_last
    xl = x.contiguous(memory_format=last)
    variants = {  # name -> (prepare the net, input, views); run one after the other on the same net
        f"plain NCHW (batch auto = {batch})": (lambda: net.to(memory_format=contiguous), x, 1),
        "channels_last, 1 view": (lambda: net.to(memory_format=last), xl, 1),
        "channels_last, 2 views (CPU default)": (lambda: net.to(memory_format=last), xl, 2),
        "channels_last, 8 views (GPU default)": (lambda: net.to(memory_format=last), xl, 8),
    }
    if not args.no_compile:
        variants["channels_last + compile"] = (lambda: compiled(net.to(memory_format=last)), xl, 1)
    print(f"\nsteady-state forward pass, {batch} x {tile}x{tile} tiles ({px * res ** 2 / 1e6:.3f} km2 per batch):")
    results["forward_variants"] = {}
    base = None
    for name, (prepare, inp, views) in variants.items():
        try:
            started = time.perf_counter()
            secs = time_forward(prepare(), inp, args.repeats, views)
            setup = time.perf_counter() - started - secs * args.repeats
        except Exception as exc:  # torch.compile needs a working compiler toolchain
            print(f"  {name:34s} failed: {type(exc).__name__}: {str(exc).splitlines()[0][:100]}")
            continue
        base = base or secs
        rate = km2_per_hour(px, res, secs)
        results["forward_variants"][name] = {"seconds": secs, "km2_per_h": rate, "speedup": base / secs,
                                             "first_call_s": setup}
        print(f"  {name:34s} {secs:7.3f} s  {rate:9.1f} km2/h  x{base / secs:.2f} vs plain"
              f"  (first call {setup:.1f} s)")
    if args.json:
        write_text_atomic(args.json, json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
