"""Imagery evidence for areas of any size: tiles on Dask, persisted as they finish, stitched.

The model tiles run the uncut pipeline's own sliding windows, each window in one tile only
(osmgap.scale.tiling); each finished tile is written to a TileStore (a self-tiled run, which
nothing resumes, only keeps a tile there until its turn to be added comes), so a killed run started
again with ``resume`` computes only the missing tiles and, because tiles are added up in plan
order whatever order they finished in, writes the same outputs as an uninterrupted run. The
tiles' sums are added, in that order, into a file-backed array as they finish; each graph tile's
graph (osmgap.graph.skeleton.extract_graph on core + margin) is extracted in a second process as
soon as the sums over it are final, while the model runs on (osmgap.scale.graph_tiles), and the
pieces are stitched. In this process (a self-tiled run) the tiles' windows are one stream, so
reading and the model never wait for a tile boundary, and each tile is added to the sums beside
the next (:func:`run_tiles`, :class:`_Adder`). No step holds more than two tiles' rasters in memory.
"""
from __future__ import annotations

import functools
import logging
import math
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, closing, contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Any

import networkx as nx
import numpy as np
import torch

from osmgap import __version__
from osmgap.core.datamodel import ProbabilityRaster
from osmgap.core.grid import Grid
from osmgap.core.memory import FileRaster, return_freed_memory, trim_heap
from osmgap.errors import InputError
from osmgap.graph.skeleton import GraphParams
from osmgap.model.infer import accumulate_regions, accumulate_windows, autocast_dtype, default_views, window_size
from osmgap.model.nets import ModelMeta, inference_net, load_checkpoint, model_file, pick_device
from osmgap.scale.distributed import run_jobs, threads_per_worker
from osmgap.scale.graph_tiles import GraphTiles, graph_processes
from osmgap.scale.options import DEFAULT_MARGIN_PX, ScaleOptions
from osmgap.scale.tilestore import TileResult, TileStore
from osmgap.scale.tiling import (
    WindowTile,
    plan_tiles,
    plan_window_tiles,
    stitch,
)
from osmgap.sources.imagery import Imagery
from osmgap.sources.xyz import AnyImagery, add_stand_ins, imagery_fingerprint, open_window_reader, stand_ins

log = logging.getLogger(__name__)

DIVIDE_ROWS = 1024  # rows of the file-backed sums divided at a time


@contextmanager
def _untimed(name: str) -> Iterator[None]:
    yield


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
    views: int | None = None  # None: the device's default (osmgap.model.infer.default_views)
    compile: bool = False


def _absolute(imagery: AnyImagery) -> AnyImagery:
    """The imagery by an absolute path (a GDAL virtual path, /vsi..., as it is)."""
    if isinstance(imagery, Imagery) and not str(imagery.path).startswith("/vsi"):
        return replace(imagery, path=imagery.path.resolve())
    return imagery


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
    before = stand_ins(job.imagery)
    with open_window_reader(job.imagery, job.grid) as reader:
        acc, cov = accumulate_windows(net, meta, reader.read, job.grid.height, job.grid.width, job.tile.origins,
                                      job.tile.extent, *window_size(job.grid.height, job.grid.width, job.window,
                                                                    job.overlap),
                                      batch=job.batch, device=device, views=job.views, compile=job.compile)
    stood_in = {key: late_s for key, late_s in stand_ins(job.imagery).items() if before.get(key) != late_s}
    return TileResult(job.tile.key, acc, cov, stood_in)


def run_tiles(jobs: Sequence[TileJob]) -> Iterator[TileResult]:
    """:func:`run_tile` of each job, in order, in one stream of windows (jobs of one grid, one
    model, the same windows: those of one run, in this process): the next tile's windows are
    read and run while this one's last finish and it is added up
    (:func:`osmgap.model.infer.accumulate_regions`); the same sums as tile by tile."""
    if not jobs:
        return
    like = jobs[0]
    if like.threads:
        torch.set_num_threads(like.threads)
    net, meta, device = _model(like.model)
    height, width = like.grid.height, like.grid.width
    with open_window_reader(like.imagery, like.grid) as reader, \
            closing(accumulate_regions(net, meta, reader.read, height, width,
                                       [(job.tile.origins, job.tile.extent) for job in jobs],
                                       *window_size(height, width, like.window, like.overlap), batch=like.batch,
                                       device=device, views=like.views, compile=like.compile)) as sums:
        for job, (acc, cov) in zip(jobs, sums):
            yield TileResult(job.tile.key, acc, cov)


def tiled_evidence(opts: ScaleOptions, imagery: AnyImagery, grid: Grid, model: str | None, meta: ModelMeta,
                   graph: GraphParams | None, window: int, overlap: int, batch: int | None,
                   out: Path, views: int | None = None, compile: bool = False,
                   threads: int | None = None, stage: Callable[[str], AbstractContextManager[Any]] = _untimed,
                   ) -> tuple[ProbabilityRaster, nx.Graph, dict[str, Any]]:
    """Probability raster (file-backed) and stitched road graph of ``grid``, tile by tile: the
    model tiles (on Dask, or in this process), each added to the sums as it finishes, and the
    graph tiles extracted from the sums as soon as theirs are final (osmgap.scale.graph_tiles,
    beside the model); ``stage("segment")`` times the model tiles, ``stage("graph")`` the wait
    for the last graph tiles and the stitching. ``graph`` None: no graph (an empty one)."""
    tiles = plan_window_tiles(grid, opts.tile_px, window, overlap)
    if graph is not None:
        opts = fit_margin(opts, graph, abs(grid.transform.a))
    device = pick_device()
    views = views or default_views(device)  # resolved here: a resumed run must ask for the same
    work_dir = opts.work_dir or (Path(tempfile.mkdtemp(prefix=f".{Path(out).name}.tiles-", dir=Path(out).resolve().parent))
                                 if opts.temporary else default_work_dir(out))
    # everything that changes a tile's sums (not the graph's or conflation's parameters: no file
    # here depends on them). Not --batch: a window's sums do not depend on its batch (up to float
    # rounding, ~1e-6), and a run killed for memory is resumed with a smaller one.
    store = TileStore(work_dir, {
        "osmgap": __version__, "imagery": imagery_fingerprint(imagery, grid), "grid": [list(grid.transform)[:6],
        grid.width, grid.height, grid.crs.to_string()], "model": _model_fingerprint(model), "meta": asdict(meta),
        "window": [window, overlap, views, compile], "precision": str(autocast_dtype(device) or torch.float32),
        "tiles": [opts.tile_px]})
    extractor = None
    try:
        if opts.resume and not store.done() and store.others():
            log.warning("--resume: %s holds no tiles of this run's imagery, grid, model and parameters (those of "
                        "another run only): every tile is computed", store.root)
        if not opts.resume:
            store.clear()
        sums = _Sums(store, tiles, (grid.height, grid.width))
        extractor = GraphTiles(sums.acc.path, sums.cov.path, grid,
                               plan_tiles(grid, opts.tile_px, opts.margin_px) if graph is not None else [],
                               tiles, graph or GraphParams(), graph_processes(len(tiles), pick_device()) if graph is not None else 0)
        # by absolute paths: a worker of an existing cluster opens a relative one from its own directory
        like = TileJob(_absolute(imagery), grid, tiles[0], str(Path(model).resolve()) if model and Path(model).exists() else model,
                       window,
                       overlap, batch, 0, views, compile)
        with stage("segment"):
            _run_model_tiles(opts, store, sums, like, threads, extractor)
        _model.cache_clear()  # this process's copy of the model is done with: its memory goes back
        return_freed_memory()
        with stage("graph"):
            stitched = stitch(extractor.results(), grid, graph or GraphParams())
        with stage("segment"):
            prob = sums.divide()  # only now: the graph tiles read the sums undivided
        if not opts.temporary:  # this run's tiles are whole: earlier runs' over the grid are of no more use
            store.prune_superseded("grid")
    finally:
        if extractor is not None:
            extractor.close()
        store.close()
        if opts.temporary:  # the probabilities stay readable: their file is mapped, unlinking keeps it till unmapped
            shutil.rmtree(work_dir, ignore_errors=True)
    info = {"tiles": len(tiles), "tile_px": opts.tile_px, "margin_px": opts.margin_px,
            **({"self_tiled": True} if opts.temporary else {})}
    return ProbabilityRaster(prob, grid.transform, grid.crs), stitched, info


class _Sums:
    """The tiles' weighted sums and weights, file-backed, added in plan order whatever order the
    tiles finished in (the same sums, bit for bit, as an uninterrupted serial run)."""

    def __init__(self, store: TileStore, tiles: list[WindowTile], shape: tuple[int, int]):
        self.store, self.tiles, self.shape = store, tiles, shape
        self.acc = FileRaster(store.dir / "probability.f32", shape)
        self.cov = FileRaster(store.dir / "weights.f32", shape)
        self.added = 0  # tiles[:added] are in the sums
        self.finished: set[str] = store.done()

    def in_turn(self, key: str) -> bool:
        """Whether the tile ``key`` is the next to be added."""
        return self.added < len(self.tiles) and self.tiles[self.added].key == key

    def add_ready(self, like: TileJob, just: TileResult | None = None) -> None:
        """Add every tile, in plan order, whose result is in the store (``just``: the one in hand)."""
        while self.added < len(self.tiles) and self.tiles[self.added].key in self.finished:
            tile = self.tiles[self.added]
            r0, c0, r1, c1 = tile.extent
            result = just if just is not None and just.key == tile.key else self.store.load(tile.key, (r1 - r0, c1 - c0))
            if result is None:  # lost or unreadable since it was written: compute it again here
                result = run_tile(replace(like, tile=tile, threads=0))
                self.store.save(result)
            self.acc.array[r0:r1, c0:c1] += result.acc
            self.cov.array[r0:r1, c0:c1] += result.cov
            self.acc.release()
            self.cov.release()
            self.added += 1

    def divide(self) -> np.ndarray:
        """The probabilities, in place of the sums (no weight: 0). Both files are unlinked (the
        mapping keeps the probabilities till unmapped): the next run on this work directory makes
        its own, and cannot truncate them under this one, which reads them on after the lock is gone."""
        for r in range(0, self.shape[0], DIVIDE_ROWS):
            block = slice(r, r + DIVIDE_ROWS)
            np.divide(self.acc.array[block], self.cov.array[block], out=self.acc.array[block],
                      where=self.cov.array[block] > 0)
            self.acc.release()
            self.cov.release()
        self.cov.path.unlink()
        self.acc.path.unlink()
        return self.acc.array


def _run_model_tiles(opts: ScaleOptions, store: TileStore, sums: _Sums, like: TileJob, threads: int | None,
                     extractor: GraphTiles) -> None:
    """Run the model tiles not done yet; each finished one is saved, added to the sums when its
    turn comes, and the graph tiles it completes are started (by :class:`_Adder`, beside the next tile)."""
    # torch threads per worker of our own LocalCluster; an existing cluster (--scheduler) keeps its own
    local = opts.workers > 0 and not opts.scheduler
    per_worker = (threads or threads_per_worker(opts.workers)) if local else 0
    jobs = [replace(like, tile=t, threads=per_worker) for t in sums.tiles if t.key not in sums.finished]
    log.info("%d tiles, %d already done in %s", len(sums.tiles), len(sums.tiles) - len(jobs), store.dir)

    def finished(result: TileResult) -> None:
        # kept on disk for --resume, or until its turn comes; a self-tiled run's tile in turn is
        # added at once (at 102.7 km2, ~0.8 GB written and deleted, 1.9 s of the main thread)
        add_stand_ins(like.imagery, result.stood_in)  # a worker's, for the summary
        if not (opts.temporary and sums.in_turn(result.key)):
            store.save(result)
        sums.finished.add(result.key)
        sums.add_ready(like, result)
        extractor.added(sums.added)
        trim_heap()  # each tile's freed forward-pass blocks go back now (102.7 km2: -138 MB of peak)

    sums.add_ready(like)  # those a resumed run finds done
    extractor.added(sums.added)
    with _Adder(finished) as adder:
        try:
            run_jobs(run_tile, jobs, adder.submit, workers=opts.workers, scheduler=opts.scheduler, in_process=run_tiles)
        except InputError:
            adder.wait()
            if not store.done():  # nothing to resume: leave no trace of the run
                store.remove()
            raise
    sums.finished.update(t.key for t in sums.tiles)  # any still missing (lost files) is computed here
    sums.add_ready(like)
    extractor.added(sums.added)


class _Adder:
    """Hands each finished tile to ``finished`` in a thread of its own, one tile behind the model.

    Adding a 2048 px tile into the file-backed sums is ~0.1 s of page faults on the caller's
    thread, during which the reading threads and the model had nothing to do (102.7 km2: 2.3 s of
    a segment stage whose forward pass was free, as on a GPU); now the next tile runs meanwhile.
    At most one tile waits (its sums, ~40 MB), tiles are added in the order they finished, and an
    error in ``finished`` is raised at the next tile or on leaving the block."""

    def __init__(self, finished: Callable[[TileResult], None]):
        self._finished = finished
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="osmgap-add-tiles")
        self._pending: Future[None] | None = None

    def submit(self, result: TileResult) -> None:
        self.wait()
        self._pending = self._pool.submit(self._finished, result)

    def wait(self) -> None:
        """Until the tile handed over last is added (its error raised here)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def __enter__(self) -> _Adder:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        try:
            if kind is None:
                self.wait()
        finally:
            self._pool.shutdown(wait=True)


def min_margin_px(graph: GraphParams, resolution_m: float) -> int:
    """The least graph tile margin that keeps the tiled graph the uncut one's: each cleanup step
    must see as far around a core pixel as it reaches (a spur cut at the margin looks short, a
    road cut there looks like a small piece or blob), plus the 3 x 3 closing's pixel."""
    reach_m = max(graph.spur_m, graph.min_component_m, math.sqrt(graph.min_blob_m2), math.sqrt(graph.max_hole_m2))
    return math.ceil(reach_m / resolution_m - 1e-9) + 1


def fit_margin(opts: ScaleOptions, graph: GraphParams, resolution_m: float) -> ScaleOptions:
    """InputError when ``--tile-margin`` is under :func:`min_margin_px` (the run would exit 0 with
    suggestions an uncut run does not make); a self-tiled run's margin, osmgap's own choice, is
    raised to it instead."""
    least = min_margin_px(graph, resolution_m)
    if opts.margin_px >= least:
        return opts
    if opts.temporary:
        return replace(opts, margin_px=least)
    raise InputError("--tile-margin", f"{opts.margin_px} px is too little context for the road graph's cleanup at "
                                      f"{resolution_m:g} m/px: give at least {least} px (default {DEFAULT_MARGIN_PX})")


def _model_fingerprint(path: str | None) -> list[Any]:
    """The model file (the shipped default too: it is replaced when retrained) by path, size, mtime."""
    p = model_file(path)
    stat = p.stat() if p.exists() else None
    return [str(p.resolve()), stat.st_size if stat else None, stat.st_mtime_ns if stat else None]
