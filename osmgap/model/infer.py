"""Sliding-window inference with overlap and coverage-normalized stitching.

Tiles overlap so that every pixel is also seen away from a tile border, where convolutions
lack context; each tile's output is weighted by a window that falls towards its edges, and the
sum is divided by the summed weights (the coverage), so seams vanish and edge pixels that only
one tile covers keep their value. Tiles go through the net in batches, on CUDA when present.

Speed: the batch follows the memory free on the device when not given; inputs are channels-last,
and ``predict_raster`` runs the net with its BatchNorm folded into the convolutions and
channels-last weights (``osmgap.model.nets.inference_net``; bench/model.py: ~1.5-1.9x faster on a
CPU as well); under bf16 autocast on a GPU (fp16 where bf16 is missing) and on a CPU with native
bf16, else in fp32 (:func:`autocast_dtype`); every window is run in ``views`` orientations
(:data:`VIEWS`: quarter turns and mirror images) and the probabilities averaged, 2 on a CPU and 8
on a GPU by default (:func:`default_views`); ``compile`` wraps the net in
``torch.compile``, which only pays on large areas (bench/model.py measures it). The next batch
of windows is read ahead (in one thread on a CPU, window by window in several beside a GPU:
:func:`reading_threads`) while the net runs on the current one: GDAL decodes and
warps with the GIL released, so reading hides behind the forward pass instead of adding to it;
on a CPU two windows run side by side on one torch thread each (:func:`cpu_lanes`; bench/speed.py).
"""
from __future__ import annotations

import functools
import itertools
import os
from collections import deque
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing, contextmanager
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch

from osmgap.core.precision import fp32_forced
from osmgap.model.nets import ModelMeta, inference_net, pick_device

if TYPE_CHECKING:  # the GIS stack stays out of training's imports (a pack trains without it)
    from osmgap.core.datamodel import ProbabilityRaster
    from osmgap.sources.imagery import WindowReader
    from osmgap.sources.xyz import XyzWindowReader

# (row, col, height, width) -> ((3, h, w) float32 in [0, 1], (h, w) bool valid)
TileReader = Callable[[int, int, int, int], tuple[np.ndarray, np.ndarray]]
Windows = list[tuple[np.ndarray, np.ndarray]]  # a group of windows read: (image, valid) each
WINDOW_PX, OVERLAP_PX = 512, 64  # the sliding windows a diff runs by default (--tile, --overlap)


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


# Bytes of activations per input pixel in one forward pass of an smp net with a resnet18/34 encoder
# (measured peak for Linknet/Unet at fp32: ~1.3-2.6 KB); a generous figure keeps clear of OOM.
ACTIVATION_BYTES_PER_PIXEL = 4096
MAX_AUTO_BATCH = 32
CPU_MAX_AUTO_BATCH = 1
CPU_MAX_LANES = 2  # each lane adds a window's activations (~0.1-0.2 GB) to the peak: two are enough
# Reading threads beside a GPU: one reads ~25 windows of 512 px a second (~0.04 s of CPU each), which
# caps a whole diff near 17,000 km2/h however fast the GPU is; each batch in flight holds its windows.
GPU_MAX_READERS = 8


_TORCH_DEFAULT_THREADS = torch.get_num_threads()  # torch's own choice: the physical cores


def default_threads() -> int:
    """CPU threads for the forward pass: the cores this process may use that the 1-minute load
    average does not show busy, at least 1 and at most torch's own default. On a shared machine
    more threads than free cores collapse: each parallel step waits for its slowest thread
    (measured on 2 cores under a load of 4: 2 threads took 1.4-3x as long as 1)."""
    try:
        cores = len(os.sched_getaffinity(0))
        busy = os.getloadavg()[0]
    except (AttributeError, OSError):
        return _TORCH_DEFAULT_THREADS
    return max(1, min(_TORCH_DEFAULT_THREADS, cores, round(cores - busy)))


def free_memory_bytes(device: torch.device) -> int:
    """Memory free for activations on ``device``: CUDA's free memory, else the host's available RAM."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError):
        return 2 * 1024 ** 3


def auto_batch(tile: int, device: torch.device, tiles: int | None = None) -> int:
    """Tiles per forward pass that fit in half the free memory (1..32, never more than ``tiles``).

    On a CPU a bigger batch does not speed things up (one 512 px window: 0.51 / 0.49 s of CPU per
    window at batch 1 / 2) while each window adds ~0.1-0.2 GB of activations to the peak
    (bench/scale.py: a worker peaked at 2.0 GB with 4, 1.8 GB with 2), so it is 1 there.
    """
    fits = int(free_memory_bytes(device) * 0.5 // (tile * tile * ACTIVATION_BYTES_PER_PIXEL))
    cap = MAX_AUTO_BATCH if device.type == "cuda" else CPU_MAX_AUTO_BATCH
    return max(1, min(fits, cap, tiles or cap))


@functools.cache
def cpu_has_bf16() -> bool:
    """Does this CPU multiply bf16 natively (AVX512-BF16 or AMX)? Without it, oneDNN emulates bf16
    and runs slower than fp32 (x0.6-0.9 on an earlier host), so only such CPUs get bf16."""
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except (AttributeError, RuntimeError):  # a torch without the probes: stay in fp32
        return False


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The forward pass's autocast dtype; None: full fp32.

    bf16 where the GPU has it (no overflow), else fp16; on a CPU bf16 where it is native
    (bench/speed.py --eval-only: it moves eval IoU on the real chips by < 0.005, issue 17's bar,
    and runs ~2x faster), else fp32. ``OSMGAP_FP32`` (``osmgap diff --fp32``) forces fp32.
    """
    if fp32_forced():
        return None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if device.type == "cpu" and cpu_has_bf16() else None


_COMPILED: dict[int, torch.nn.Module] = {}


def compiled(net: torch.nn.Module) -> torch.nn.Module:
    """``torch.compile(net)``, once per net object (compiling costs seconds to a minute)."""
    if id(net) not in _COMPILED:
        _COMPILED[id(net)] = cast(torch.nn.Module, torch.compile(net))  # an OptimizedModule
    return _COMPILED[id(net)]


# The orientations a window is run in, (mirrored, quarter turns), in the order they are added: 2
# views are the window and its half turn, 4 every quarter turn, 8 those of its mirror image too.
# The shipped model sees roads better averaged over them, in every domain bench/generalize.py
# scores (stop 31; IoU / F1@3m, 1 -> 2 -> 8 views): Paris, never trained on, 0.332 / 0.678 ->
# 0.366 / 0.742 -> 0.375 / 0.753; Shanghai held out 0.218 / 0.520 -> 0.227 / 0.540 -> 0.220 / 0.555;
# held-out Massachusetts tiles 0.312 / 0.562 -> 0.317 / 0.569 -> 0.323 / 0.576.
VIEWS: tuple[tuple[bool, int], ...] = tuple((mirrored, turns) for mirrored in (False, True) for turns in (0, 2, 1, 3))
VIEW_CHOICES = (1, 2, 4, 8)
CPU_VIEWS = 2  # each view is a whole forward pass: on a CPU, where it is most of a diff's time, two
GPU_VIEWS = 8  # beside a GPU the forward pass is a small part of a diff (bench/speed.py): all of them


def default_views(device: torch.device) -> int:
    """Views per window when none are asked for: every one on a GPU, two on a CPU."""
    return GPU_VIEWS if device.type == "cuda" else CPU_VIEWS


def forward_probability(net: torch.nn.Module, x: torch.Tensor, views: int = 1) -> torch.Tensor:
    """Road probability (B, H, W) for a normalized batch of square windows: the mean over the
    first ``views`` orientations of :data:`VIEWS`, each turned back before it is added."""
    if views not in VIEW_CHOICES:
        raise ValueError(f"views must be one of {VIEW_CHOICES}, not {views}")
    dtype = autocast_dtype(x.device)
    total = None
    with torch.autocast(x.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
        for mirrored, turns in VIEWS[:views]:
            seen = torch.flip(x, (3,)) if mirrored else x
            seen = torch.rot90(seen, turns, (2, 3)).contiguous(memory_format=torch.channels_last) if turns else seen
            out = net(seen).float()
            out = torch.rot90(out, -turns, (2, 3)) if turns else out
            prob = torch.sigmoid(torch.flip(out, (3,)) if mirrored else out)
            total = prob if total is None else total + prob
    assert total is not None  # views >= 1
    return total[:, 0] / views


def _batches(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def sliding_window(net: torch.nn.Module, meta: ModelMeta, read: TileReader, height: int, width: int,
                   **kwargs: Any) -> np.ndarray:
    """Road probability (height, width) float32 for an image read tile by tile through ``read``."""
    return predict_region(net, meta, read, height, width, (0, 0, height, width), **kwargs)


def window_size(height: int, width: int, tile: int = WINDOW_PX, overlap: int = OVERLAP_PX) -> tuple[int, int]:
    """The window side and overlap a (height, width) image is run with: a small image needs no
    full-size window, and the overlap is at most half a window."""
    if tile % 32:
        raise ValueError("tile size must be a multiple of 32 for the encoder's strides")
    tile = min(tile, 32 * -(-max(height, width) // 32))
    return tile, min(overlap, tile // 2)


def predict_region(net: torch.nn.Module, meta: ModelMeta, read: TileReader, height: int, width: int,
                   region: tuple[int, int, int, int], tile: int = WINDOW_PX, overlap: int = OVERLAP_PX, **kwargs: Any) -> np.ndarray:
    """Road probability over ``region`` (row0, col0, row1, col1) of a (height, width) image.

    ``read`` reads windows of the whole image. The windows are the whole image's sliding windows
    that touch the region, with the same tile size, blend weights, forward pass and summation
    order, so a region cut out of a larger run changes no pixel, up to float rounding of
    differently composed batches. ``batch=None`` chooses the batch from free memory.
    """
    tile, overlap = window_size(height, width, tile, overlap)
    r0, c0, r1, c1 = region
    origins = [(r, c) for r in tile_origins(height, tile, overlap) if r < r1 and r + tile > r0
               for c in tile_origins(width, tile, overlap) if c < c1 and c + tile > c0]
    acc, cov = accumulate_windows(net, meta, read, height, width, origins, region, tile, overlap, **kwargs)
    out = np.zeros_like(acc)
    np.divide(acc, cov, out=out, where=cov > 0)
    return out


def cpu_lanes(threads: int) -> tuple[int, int]:
    """Windows a CPU runs at once (lanes) and torch threads for each, out of ``threads`` CPU threads.

    On 2 cores, two windows side by side on one torch thread each, not one window on two: a GDAL
    read costs about as much CPU as a bf16 forward pass on a recent CPU (~0.04 s per 512 px
    window), and the reading thread beside two torch threads stalled every parallel step of the
    forward pass (0.10 s per fp32 window alone, 0.25 s beside the reader); lanes share no parallel
    step, so the reader just takes turns (a 21 km2 diff, stop 26: fp32 27.8 -> 22.0 s, bf16 18.7 ->
    17.1 s against one torch thread). On more cores one is left to the reader."""
    lanes = max(1, min(CPU_MAX_LANES, threads))
    return lanes, max(1, (threads - 1) // lanes)  # a core left to the reader where there are spare ones


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """torch's intra-op threads set to ``n`` for the block, then put back."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def accumulate_windows(net: torch.nn.Module, meta: ModelMeta, read: TileReader, height: int, width: int,
                       origins: list[tuple[int, int]], region: tuple[int, int, int, int], tile: int, overlap: int,
                       **kwargs: Any) -> tuple[np.ndarray, np.ndarray]:
    """The blend-weighted sum of the windows at ``origins`` (tile x tile, read through ``read``)
    and the sum of their weights, over ``region`` of a (height, width) image. The probability is
    their ratio; sums of disjoint sets of windows add up, so a tiled run can give each window to
    one tile only (osmgap.scale.tiled) and still get the uncut run's probabilities.
    ``kwargs``: those of :func:`accumulate_regions`."""
    with closing(accumulate_regions(net, meta, read, height, width, [(origins, region)], tile, overlap, **kwargs)) as sums:
        return next(sums)


Region = tuple[list[tuple[int, int]], tuple[int, int, int, int]]  # window origins, (row0, col0, row1, col1)


def accumulate_regions(net: torch.nn.Module, meta: ModelMeta, read: TileReader, height: int, width: int,
                       regions: list[Region], tile: int, overlap: int,
                       batch: int | None = None, device: torch.device | None = None, views: int | None = None,
                       compile: bool = False) -> Generator[tuple[np.ndarray, np.ndarray], None, None]:
    """:func:`accumulate_windows` of each region in turn, yielded as each is complete, all in one
    stream of windows: the windows of the next region are read, and go through the net, while the
    last of this one finish and its sums are used. Region by region, the stream drained at every
    boundary: the lanes waited for the last window and the first read (on a CPU), and beside a GPU,
    where a region's windows are one batch, reading never overlapped the forward pass.
    A region's windows are batched as alone (batches never span regions), so its sums are the
    same, bit for bit. On a CPU the windows run in :func:`cpu_lanes`, and are added up in order,
    whichever lane finished first. ``views``: orientations per window (None: :func:`default_views`)."""
    device = device or pick_device()
    views = views or default_views(device)
    weight = blend_window(tile, overlap)
    mean = torch.tensor(meta.mean, device=device)[None, :, None, None]
    std = torch.tensor(meta.std, device=device)[None, :, None, None]
    run_net = compiled(net) if compile else net  # weights channels-last: predict_raster, osmgap.scale.tiled._model

    def forward(tiles: Windows) -> np.ndarray:
        with torch.inference_mode():  # thread-local, like autocast: set in the lane's own thread
            x = torch.from_numpy(np.stack([t[0] for t in tiles])).to(device)
            x = ((x - mean) / std).contiguous(memory_format=torch.channels_last)
            return forward_probability(run_net, x, views).cpu().numpy()

    # one lane on a GPU, and for a compiled net (dynamo compiles on the first call: not from two threads at once)
    cpu = device.type == "cpu" and not compile
    lanes, per_lane = cpu_lanes(torch.get_num_threads()) if cpu else (1, torch.get_num_threads())
    size = batch or auto_batch(tile, device, max((len(o) for o, _ in regions), default=1))
    per_region = [list(_batches(origins, size)) for origins, _ in regions]
    groups = [g for gs in per_region for g in gs]
    with torch_threads(per_lane), closing(_forward_ahead(read, groups, tile, forward, lanes, reading_threads(device))) as stream:
        for (_, region), own in zip(regions, per_region):
            r0, c0, r1, c1 = region
            acc = np.zeros((r1 - r0, c1 - c0), np.float32)
            cov = np.zeros_like(acc)
            for group, tiles, prob in itertools.islice(stream, len(own)):
                for (r, c), p, (_, valid) in zip(group, prob, tiles):
                    h, w = min(tile, height - r), min(tile, width - c)
                    wgt = weight[:h, :w] * valid[:h, :w]
                    a0, a1, b0, b1 = max(r, r0), min(r + h, r1), max(c, c0), min(c + w, c1)
                    acc[a0 - r0:a1 - r0, b0 - c0:b1 - c0] += (p[:h, :w] * wgt)[a0 - r:a1 - r, b0 - c:b1 - c]
                    cov[a0 - r0:a1 - r0, b0 - c0:b1 - c0] += wgt[a0 - r:a1 - r, b0 - c:b1 - c]
            yield acc, cov


def reading_threads(device: torch.device) -> int:
    """Threads reading windows ahead of the forward pass: one on a CPU, whose cores the lanes
    share with it (:func:`cpu_lanes`); beside a GPU, every core but the caller's, up to
    GPU_MAX_READERS."""
    if device.type == "cpu":
        return 1
    return max(1, min(GPU_MAX_READERS, (os.cpu_count() or 1) - 1))


def _forward_ahead(read: TileReader, groups: list[list[tuple[int, int]]], tile: int,
                   forward: Callable[[Windows], np.ndarray], lanes: int, readers: int = 1,
                   ) -> Generator[tuple[list[tuple[int, int]], Windows, np.ndarray], None, None]:
    """Each group of window origins, in order, with its windows read and their probabilities.

    ``readers`` threads read windows, each window on its own (``read`` must then be safe to call
    from several threads at once, as WindowReader is: one dataset handle per thread), so that one
    batch of 32 beside a GPU is read by all of them, not by one (an H200's diff spent 15 s reading
    its tiles' one batch each, one window after another); ``lanes`` threads run the forward pass
    on groups already read. Enough groups are in flight to keep every lane and reader busy and
    no more, so memory stays flat, and they come out in order. A read's or a forward pass's error
    is raised here, in the caller's thread, and what was still queued is cancelled."""
    pending: deque[tuple[list[tuple[int, int]], list[Future], Future[np.ndarray]]] = deque()
    size = max((len(g) for g in groups), default=1)
    ahead = lanes + -(-readers // size)  # groups in flight: one per lane, plus what keeps the readers busy
    with ThreadPoolExecutor(max_workers=readers, thread_name_prefix="osmgap-read") as reader, \
            ThreadPoolExecutor(max_workers=lanes, thread_name_prefix="osmgap-forward") as pool:
        def submit(group: list[tuple[int, int]]) -> None:
            windows = [reader.submit(read, r, c, tile, tile) for r, c in group]
            pending.append((group, windows, pool.submit(lambda: forward([w.result() for w in windows]))))

        queued = iter(groups)
        try:
            for group in itertools.islice(queued, ahead):
                submit(group)
            while pending:
                group, windows, prob = pending.popleft()
                result = prob.result(), [w.result() for w in windows]
                following = next(queued, None)
                if following is not None:
                    submit(following)
                yield group, result[1], result[0]
        finally:
            for _, windows, prob in pending:
                for w in windows:
                    w.cancel()
                prob.cancel()


def predict_array(net: torch.nn.Module, meta: ModelMeta, image: np.ndarray, **kwargs) -> np.ndarray:
    """Probability for an in-memory (bands, H, W) image in [0, 1] (training validation, tests)."""
    bands, height, width = image.shape

    def read(row: int, col: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        out = np.zeros((bands, h, w), np.float32)
        valid = np.zeros((h, w), bool)
        part = image[:, row:row + h, col:col + w]
        out[:, :part.shape[1], :part.shape[2]] = part
        valid[:part.shape[1], :part.shape[2]] = True
        return out, valid

    return sliding_window(net, meta, read, height, width, **kwargs)


def predict_raster(net: torch.nn.Module, meta: ModelMeta, reader: WindowReader | XyzWindowReader,
                   **kwargs) -> ProbabilityRaster:
    """Probability over the reader's grid, reading imagery window by window (never whole)."""
    from osmgap.core.datamodel import ProbabilityRaster

    grid = reader.grid
    # BatchNorm folded and channels-last weights as well as inputs (osmgap.model.nets.inference_net):
    # done here, on inference nets, not in sliding_window, which training validation also calls
    # with the net it is training.
    net = inference_net(net, meta.in_channels)
    prob = sliding_window(net, meta, reader.read, grid.height, grid.width, **kwargs)
    return ProbabilityRaster(prob, grid.transform, grid.crs)
