"""Graph tiles extracted while the model still runs (issue 17: the whole diff near the model's speed).

A graph tile's probabilities are final as soon as every model tile whose windows reach into its
region has been added to the file-backed sums, long before the last model tile is done. So each
graph tile is handed, the moment it is ready, to a second process (several beside a GPU, whose
model outruns one: :func:`graph_processes`) that reads the sums from the files (a shared mapping:
the main process's additions are visible to it), divides its region and extracts its graph,
while the forward pass goes on in this process. A process, not a thread:
graph extraction is much Python (networkx, shapely) that would hold the GIL the forward pass
needs between its operations.

The region is divided exactly as the whole raster is afterwards (float32, ``acc / cov`` where
``cov > 0``, else 0), so the pieces are those the serial run extracts, bit for bit.
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from shapely.geometry import LineString

from osmgap.core.grid import Grid
from osmgap.core.memory import release_pages
from osmgap.graph.skeleton import GraphParams
from osmgap.scale.tiling import Tile, WindowTile, tile_pieces

if TYPE_CHECKING:  # the extracting processes import this module: no torch there
    import torch


def _overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def tiles_needed(graph_tiles: list[Tile], model_tiles: list[WindowTile]) -> list[int]:
    """For each graph tile, how many model tiles (in plan order) must be added before the sums
    over its region are final."""
    return [max((i + 1 for i, m in enumerate(model_tiles) if _overlaps(m.extent, g.region)), default=0)
            for g in graph_tiles]


def graph_tile_from_sums(acc_path: Path, cov_path: Path, shape: tuple[int, int], grid: Grid, tile: Tile,
                         params: GraphParams) -> list[LineString]:
    """The road pieces inside a graph tile's core, from the graph of its core + margin, read from
    the sums' files."""
    r0, c0, r1, c1 = tile.region
    acc = np.memmap(acc_path, np.float32, "r", shape=shape)
    cov = np.memmap(cov_path, np.float32, "r", shape=shape)
    prob = np.zeros((r1 - r0, c1 - c0), np.float32)
    weight = np.array(cov[r0:r1, c0:c1])
    np.divide(acc[r0:r1, c0:c1], weight, out=prob, where=weight > 0)
    release_pages(acc)
    release_pages(cov)
    return tile_pieces(prob, grid, tile, params)


GPU_MAX_GRAPH_PROCESSES = 4  # each holds ~160 MB of imports (numba, scikit-image, networkx, shapely)


def graph_processes(model_tiles: int, device: torch.device) -> int:
    """Processes extracting graph tiles beside the model: none (extracted here, in turn) without
    more than one model tile to overlap with or a second CPU; one beside a CPU forward pass, whose
    cores it shares; beside a GPU the host's cores left after the reading threads, up to
    GPU_MAX_GRAPH_PROCESSES (one H200 host, stop 30: one process finished the graph 5.7 s after a
    5.8 s segment stage at 21 km2)."""
    from osmgap.model.infer import reading_threads

    cores = os.cpu_count() or 1
    if model_tiles < 2 or cores < 2:
        return 0
    if device.type == "cpu":
        return 1
    return max(1, min(GPU_MAX_GRAPH_PROCESSES, cores - 1 - reading_threads(device)))


class GraphTiles:
    """Graph tiles extracted as soon as their sums are final, in ``processes`` other processes (or
    here, in turn, when it is 0). :meth:`added` says how many model tiles are in the sums;
    :meth:`results` waits for every tile and returns them in plan order."""

    def __init__(self, acc_path: Path, cov_path: Path, grid: Grid, graph_tiles: list[Tile],
                 model_tiles: list[WindowTile], params: GraphParams, processes: int):
        self._args = (acc_path, cov_path, (grid.height, grid.width), grid)
        self._tiles, self._params = graph_tiles, params
        self._needed = tiles_needed(graph_tiles, model_tiles)
        self._started: list[Future[list[LineString]] | list[LineString] | None] = [None] * len(graph_tiles)
        self._pool = (ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"))
                      if processes > 0 else None)

    def added(self, model_tiles: int) -> None:
        for i, tile in enumerate(self._tiles):
            if self._started[i] is None and self._needed[i] <= model_tiles:
                if self._pool is None:
                    self._started[i] = graph_tile_from_sums(*self._args, tile, self._params)
                else:
                    self._started[i] = self._pool.submit(graph_tile_from_sums, *self._args, tile, self._params)

    def results(self) -> list[tuple[Tile, list[LineString]]]:
        out = []
        for tile, started in zip(self._tiles, self._started, strict=True):
            if started is None:
                raise RuntimeError(f"graph tile {tile.key} was never ready: a model tile is missing from the sums")
            out.append((tile, started.result() if isinstance(started, Future) else started))
        return out

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
