"""Change detection (``osmgap change``) for areas of any size.

Untiled, a change run holds both dates' probabilities, each kind of change's probability and its
skeleton at once, and memory grows with the area. Here the two dates' probabilities are the
tiled runs' file-backed rasters (osmgap.scale.tiled, no graph of their own), and each kind of
change is computed into a file-backed raster tile by tile, each tile read with the comparison's
margin so every pixel is the one the whole-raster computation gives it
(osmgap.conflate.changes.change_probability), then skeletonised by graph tiles and stitched
(osmgap.scale.tiling.tiled_graph), as a tiled diff's road graph is.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import networkx as nx
import numpy as np

from osmgap.conflate.changes import Change, change_probability, change_reach_px, changes_of_graph
from osmgap.conflate.params import CHANGE_MARGIN_M
from osmgap.core.datamodel import ProbabilityRaster
from osmgap.core.memory import FileRaster, release_pages
from osmgap.graph.skeleton import GraphParams
from osmgap.scale.options import DEFAULT_MARGIN_PX, DEFAULT_TILE_PX
from osmgap.scale.tiling import plan_tiles, tiled_graph


def tiled_changes(before: ProbabilityRaster, after: ProbabilityRaster, params: GraphParams, min_length_m: float,
                  margin_m: float = CHANGE_MARGIN_M, work_dir: Path | None = None,
                  tile_px: int = DEFAULT_TILE_PX) -> list[Change]:
    """``osmgap.conflate.changes.detect_changes`` by tiles: appeared, then vanished roads between
    two probability rasters on the same grid (file-backed or not), working files in ``work_dir``
    (default: the system's temporary directory), removed at the end."""
    grid = before.grid
    out: list[Change] = []
    with tempfile.TemporaryDirectory(prefix=".osmgap-changes-", dir=work_dir) as tmp:
        for now, other, kind in ((after, before, "appeared"), (before, after, "vanished")):
            prob = _change_raster(now, other, margin_m, FileRaster(Path(tmp) / f"{kind}.f32", now.prob.shape), tile_px)
            raster = ProbabilityRaster(prob.array, grid.transform, grid.crs)
            graph = road_graph(raster, params, tile_px)
            out += changes_of_graph(graph, raster, kind, min_length_m)
            prob.release()
    return out


def _change_raster(now: ProbabilityRaster, other: ProbabilityRaster, margin_m: float, into: FileRaster,
                   tile_px: int) -> FileRaster:
    """``change_probability(now, other)`` written into ``into`` tile by tile."""
    for tile in plan_tiles(now.grid, tile_px, change_reach_px(now, margin_m)):
        (r0, c0, r1, c1), (q0, p0, q1, p1) = tile.region, tile.core
        here, there = (ProbabilityRaster(np.array(r.prob[r0:r1, c0:c1]), r.transform, r.crs) for r in (now, other))
        into.array[q0:q1, p0:p1] = change_probability(here, there, margin_m).prob[q0 - r0:q1 - r0, p0 - c0:p1 - c0]
        for raster in (now, other):
            release_pages(raster.prob)
        into.release()
    return into


def road_graph(prob: ProbabilityRaster, params: GraphParams, tile_px: int = DEFAULT_TILE_PX) -> nx.Graph:
    """A raster's road graph (file-backed or not: a date's or a change's) by graph tiles, as a
    tiled diff's, without holding the whole skeleton."""

    def read(window: tuple[int, int, int, int]) -> np.ndarray:
        r0, c0, r1, c1 = window
        block = np.array(prob.prob[r0:r1, c0:c1])
        release_pages(prob.prob)
        return block

    return tiled_graph(read, prob.grid, params, tile_px, DEFAULT_MARGIN_PX)
