"""Imagery evidence for areas of any size: tiles on Dask, persisted as they finish, stitched.

The model tiles run the uncut pipeline's own sliding windows, each window in one tile only
(osmgap.scale.tiling); each finished tile is written to a TileStore, so a killed run started
again with ``resume`` computes only the missing tiles and, because tiles are added up in plan
order whatever order they finished in, writes the same outputs as an uninterrupted run. The
tiles' sums are assembled into a file-backed probability array; the road graph is then extracted
graph tile by graph tile from it (osmgap.graph.skeleton.extract_graph on core + margin) and
stitched. No step holds more than one tile's raster in memory.
"""
from __future__ import annotations

import functools
import logging
import mmap
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import torch

from osmgap import __version__
from osmgap.core.datamodel import ProbabilityRaster
from osmgap.core.grid import Grid
from osmgap.core.memory import release_pages, return_freed_memory
from osmgap.errors import InputError
from osmgap.graph.skeleton import GraphParams, extract_graph
from osmgap.model.infer import accumulate_windows, window_size
from osmgap.model.nets import DEFAULT_MODEL, ModelMeta, inference_net, load_checkpoint, pick_device
from osmgap.scale.distributed import run_jobs, threads_per_worker
from osmgap.scale.options import ScaleOptions
from osmgap.scale.tilestore import TileResult, TileStore
from osmgap.scale.tiling import (
    Tile,
    WindowTile,
    core_pieces,
    plan_tiles,
    plan_window_tiles,
    stitch,
    window_box,
    window_grid,
)
from osmgap.sources.xyz import AnyImagery, imagery_fingerprint, open_window_reader

log = logging.getLogger(__name__)

DIVIDE_ROWS = 1024  # rows of the file-backed sums divided at a time


@contextmanager
def _untimed(name: str) -> Iterator[None]:
    yield


class FileRaster:
    """A float32 raster in a file, mapped into memory. ``release`` drops the pages this process
    touched from its memory (a shared mapping's changes stay in the file and the page cache), so
    assembling an AOI of any size holds about one tile's pages, not the AOI's."""

    def __init__(self, path: Path, shape: tuple[int, int]):
        self.path = path
        with open(path, "w+b") as f:
            f.truncate(4 * shape[0] * shape[1])
            self._map = mmap.mmap(f.fileno(), 0)
        self.array = np.frombuffer(self._map, np.float32).reshape(shape)  # keeps the mapping alive

    def release(self) -> None:
        release_pages(self.array)

@dataclass(frozen=True)
class TileJob:
    """Everything one worker needs for one model tile (picklable, sent to Dask workers)."""

    imagery: AnyImagery
    grid: Grid
    tile: WindowTile
    model: str | None
    window: int
    overlap: int
    batch: int | None
    threads: int
    tta: bool = False
    compile: bool = False


def default_work_dir(out: Path) -> Path:
    out = Path(out).resolve()
    return out.parent / f".{out.name}.tiles"


@functools.lru_cache(maxsize=2)
def _model(path: str | None) -> tuple[torch.nn.Module, ModelMeta, torch.device]:
    """The model, loaded once per worker process and reused for all its tiles, made the inference
    net that ``osmgap.model.infer.predict_raster`` runs on the uncut path (BatchNorm folded,
    channels-last)."""
    device = pick_device()
    net, meta = load_checkpoint(path, device)
    return inference_net(net, meta.in_channels), meta, device


def run_tile(job: TileJob) -> TileResult:
    """Run one model tile's windows: their weighted sum and weights over the tile's extent."""
    if job.threads:
        torch.set_num_threads(job.threads)
    net, meta, device = _model(job.model)
    with open_window_reader(job.imagery, job.grid) as reader:
        acc, cov = accumulate_windows(net, meta, reader.read, job.grid.height, job.grid.width, job.tile.origins,
                                      job.tile.extent, *window_size(job.grid.height, job.grid.width, job.window,
                                                                    job.overlap),
                                      batch=job.batch, device=device, tta=job.tta, compile=job.compile)
    return TileResult(job.tile.key, acc, cov)


def tiled_evidence(opts: ScaleOptions, imagery: AnyImagery, grid: Grid, model: str | None, meta: ModelMeta,
                   graph: GraphParams, window: int, overlap: int, batch: int | None,
                   out: Path, tta: bool = False, compile: bool = False,
                   threads: int | None = None, stage: Callable[[str], AbstractContextManager[Any]] = _untimed,
                   ) -> tuple[ProbabilityRaster, nx.Graph, dict[str, Any]]:
    """Probability raster (file-backed) and stitched road graph of ``grid``, tile by tile: the
    model tiles (on Dask, or in this process) then, from the assembled probabilities, the graph
    tiles in this process; each part timed by ``stage("segment")`` and ``stage("graph")``."""
    tiles = plan_window_tiles(grid, opts.tile_px, window, overlap)
    work_dir = opts.work_dir or (Path(tempfile.mkdtemp(prefix=f".{Path(out).name}.tiles-", dir=Path(out).resolve().parent))
                                 if opts.temporary else default_work_dir(out))
    store = TileStore(work_dir, {
        "osmgap": __version__, "imagery": imagery_fingerprint(imagery), "grid": [list(grid.transform)[:6],
        grid.width, grid.height, grid.crs.to_string()], "model": _model_fingerprint(model), "meta": asdict(meta),
        "window": [window, overlap, tta, compile], "tiles": [opts.tile_px]})
    try:
        with stage("segment"):
            prob = _probabilities(opts, store, tiles, TileJob(imagery, grid, tiles[0], model, window, overlap, batch,
                                                              0, tta, compile), threads)
        _model.cache_clear()  # this process's copy of the model is done with: its memory goes back
        return_freed_memory()
        with stage("graph"):
            lines = [(t, _graph_tile(prob, grid, t, graph)) for t in plan_tiles(grid, opts.tile_px, opts.margin_px)]
            stitched = stitch(lines, grid, graph)
    finally:
        if opts.temporary:  # the probabilities stay readable: their file is mapped, unlinking keeps it till unmapped
            shutil.rmtree(work_dir, ignore_errors=True)
    info = {"tiles": len(tiles), "tile_px": opts.tile_px, "margin_px": opts.margin_px,
            **({"self_tiled": True} if opts.temporary else {})}
    return ProbabilityRaster(prob, grid.transform, grid.crs), stitched, info


def _probabilities(opts: ScaleOptions, store: TileStore, tiles: list[WindowTile], like: TileJob,
                   threads: int | None) -> np.ndarray:
    """Run the model tiles not done yet and assemble their sums into the probability raster, a
    file-backed array in the work directory (the weights' sum beside it, deleted once divided)."""
    if not opts.resume:
        store.clear()
    done = store.done()
    # torch threads per worker of our own LocalCluster; an existing cluster (--scheduler) keeps its own
    local = opts.workers > 0 and not opts.scheduler
    per_worker = (threads or threads_per_worker(opts.workers)) if local else 0
    jobs = [replace(like, tile=t, threads=per_worker) for t in tiles if t.key not in done]
    log.info("%d tiles, %d already done in %s", len(tiles), len(tiles) - len(jobs), store.dir)
    try:
        run_jobs(run_tile, jobs, store.save, workers=opts.workers, scheduler=opts.scheduler)
    except InputError:
        if not store.done():  # nothing to resume: leave no trace of the run
            store.remove()
        raise
    shape = (like.grid.height, like.grid.width)
    acc, cov = FileRaster(store.dir / "probability.f32", shape), FileRaster(store.dir / "weights.f32", shape)
    for tile in tiles:  # plan order, whatever order they finished in: the same sums, bit for bit
        result = store.load(tile.key)
        if result is None:  # lost or unreadable since it was written: compute it again here
            result = run_tile(replace(like, tile=tile, threads=0))
            store.save(result)
        r0, c0, r1, c1 = tile.extent
        acc.array[r0:r1, c0:c1] += result.acc
        cov.array[r0:r1, c0:c1] += result.cov
        acc.release()
        cov.release()
    for r in range(0, shape[0], DIVIDE_ROWS):
        block = slice(r, r + DIVIDE_ROWS)
        np.divide(acc.array[block], cov.array[block], out=acc.array[block], where=cov.array[block] > 0)  # no weight: 0
        acc.release()
        cov.release()
    cov.path.unlink()
    return acc.array


def _graph_tile(prob: np.ndarray, grid: Grid, tile: Tile, params: GraphParams) -> list:
    """The road pieces inside a graph tile's core, from the graph of its core + margin."""
    r0, c0, r1, c1 = tile.region
    region = window_grid(grid, tile.region)
    graph = extract_graph(ProbabilityRaster(np.array(prob[r0:r1, c0:c1]), region.transform, region.crs), params)
    release_pages(prob)  # the file-backed raster's pages this tile read: the AOI's never all resident
    return core_pieces(graph, window_box(grid, tile.core))


def _model_fingerprint(path: str | None) -> list[Any]:
    """The model file (the shipped default too: it is replaced when retrained) by path, size, mtime."""
    p = Path(path) if path else DEFAULT_MODEL
    stat = p.stat() if p.exists() else None
    return [str(p.resolve()), stat.st_size if stat else None, stat.st_mtime_ns if stat else None]
