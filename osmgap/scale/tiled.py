"""Imagery evidence for areas of any size: tiles on Dask, persisted as they finish, stitched.

The per-tile work is the uncut pipeline's own code (sliding-window segmentation, then
osmgap.graph.skeleton.extract_graph) on one tile's region; only the tile's core is kept (osmgap.scale.tiling).
Each finished tile is written to a TileStore, so a killed run started again with ``resume``
computes only the missing tiles and, because tiles are merged in plan order whatever order they
finished in, writes the same outputs as an uninterrupted run. No step holds more than one
tile's raster in memory; the AOI's probability raster is assembled in a file-backed array.
"""
from __future__ import annotations

import functools
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import torch

from osmgap import __version__
from osmgap.core.datamodel import ProbabilityRaster
from osmgap.core.grid import Grid
from osmgap.errors import InputError
from osmgap.graph.skeleton import GraphParams, extract_graph
from osmgap.model.infer import predict_region
from osmgap.model.nets import DEFAULT_MODEL, ModelMeta, load_checkpoint, pick_device
from osmgap.scale.distributed import run_jobs, threads_per_worker
from osmgap.scale.options import ScaleOptions
from osmgap.scale.tilestore import TileResult, TileStore
from osmgap.scale.tiling import Tile, core_pieces, plan_tiles, stitch, window_box, window_grid
from osmgap.sources.xyz import AnyImagery, imagery_fingerprint, open_window_reader

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class TileJob:
    """Everything one worker needs for one tile (picklable, sent to Dask workers)."""

    imagery: AnyImagery
    grid: Grid
    tile: Tile
    model: str | None
    graph: GraphParams
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
    """The model, loaded once per worker process and reused for all its tiles; channels-last
    weights, as ``osmgap.model.infer.predict_raster`` runs the uncut path."""
    device = pick_device()
    net, meta = load_checkpoint(path, device)
    return net.to(memory_format=torch.channels_last), meta, device


def run_tile(job: TileJob) -> TileResult:
    """Segment one tile's region and keep its core: probabilities and road pieces."""
    if job.threads:
        torch.set_num_threads(job.threads)
    net, meta, device = _model(job.model)
    with open_window_reader(job.imagery, job.grid) as reader:
        prob = predict_region(net, meta, reader.read, job.grid.height, job.grid.width, job.tile.region, tile=job.window,
                              overlap=job.overlap, batch=job.batch, device=device, tta=job.tta,
                              compile=job.compile)
    region = window_grid(job.grid, job.tile.region)
    graph = extract_graph(ProbabilityRaster(prob, region.transform, region.crs), job.graph)
    r0, c0, r1, c1 = job.tile.core
    core = prob[r0 - job.tile.region[0]:r1 - job.tile.region[0], c0 - job.tile.region[1]:c1 - job.tile.region[1]]
    return TileResult(job.tile.key, np.ascontiguousarray(core), core_pieces(graph, window_box(job.grid, job.tile.core)))


def tiled_evidence(opts: ScaleOptions, imagery: AnyImagery, grid: Grid, model: str | None, meta: ModelMeta,
                   graph: GraphParams, window: int, overlap: int, batch: int | None,
                   out: Path, tta: bool = False, compile: bool = False) -> tuple[ProbabilityRaster, nx.Graph, dict[str, Any]]:
    """Probability raster (file-backed) and stitched road graph of ``grid``, tile by tile."""
    tiles = plan_tiles(grid, opts.tile_px, opts.margin_px)
    store = TileStore(opts.work_dir or default_work_dir(out), {
        "osmgap": __version__, "imagery": imagery_fingerprint(imagery), "grid": [list(grid.transform)[:6],
        grid.width, grid.height, grid.crs.to_string()], "model": _model_fingerprint(model), "meta": asdict(meta),
        "graph": asdict(graph), "window": [window, overlap, tta, compile], "tiles": [opts.tile_px, opts.margin_px]})
    if not opts.resume:
        store.clear()
    done = store.done()
    # torch threads per worker of our own LocalCluster; an existing cluster (--scheduler) keeps its own
    threads = threads_per_worker(opts.workers) if opts.workers > 0 and not opts.scheduler else 0
    jobs = [TileJob(imagery, grid, t, model, graph, window, overlap, batch, threads, tta, compile)
            for t in tiles if t.key not in done]
    log.info("%d tiles, %d already done in %s", len(tiles), len(tiles) - len(jobs), store.dir)
    try:
        run_jobs(run_tile, jobs, store.save, workers=opts.workers, scheduler=opts.scheduler)
    except InputError:
        if not store.done():  # nothing to resume: leave no trace of the run
            store.remove()
        raise
    prob = np.lib.format.open_memmap(store.dir / "probability.npy", mode="w+", dtype=np.float32,
                                     shape=(grid.height, grid.width))
    pieces = []
    for tile in tiles:
        result = store.load(tile.key)
        if result is None:  # lost or unreadable since it was written: compute it again here
            result = run_tile(TileJob(imagery, grid, tile, model, graph, window, overlap, batch, 0, tta, compile))
            store.save(result)
        r0, c0, r1, c1 = tile.core
        prob[r0:r1, c0:c1] = result.prob
        pieces.append((tile, result.lines))
    prob.flush()
    info = {"tiles": len(tiles), "tile_px": opts.tile_px, "margin_px": opts.margin_px}
    return ProbabilityRaster(prob, grid.transform, grid.crs), stitch(pieces, grid, graph), info


def _model_fingerprint(path: str | None) -> list[Any]:
    """The model file (the shipped default too: it is replaced when retrained) by path, size, mtime."""
    p = Path(path) if path else DEFAULT_MODEL
    stat = p.stat() if p.exists() else None
    return [str(p.resolve()), stat.st_size if stat else None, stat.st_mtime_ns if stat else None]
