"""Outputs that need only the evidence, made while conflation runs (issue 17).

The probability COG and the overview's imagery backdrop depend on nothing conflation decides, and
both are mostly GDAL work (compressing, decoding), which releases the GIL: in a thread they take
the second CPU while conflation, pure Python and shapely, keeps the first. Their buffers then add
to conflation's memory (~135 MB at 100 km2), so above OVERLAP_MAX_PX analysis pixels, where a
run's peak nears the 2 GB it must stay under, they start after conflation instead (:meth:`start`),
beside the writing of the suggestion files and the drawing of the overview, also Python's work.
"""
from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from osmgap.core.datamodel import ProbabilityRaster
from osmgap.core.grid import Grid
from osmgap.export.overview import read_backdrop
from osmgap.export.probability import write_probability_tif
from osmgap.sources.xyz import AnyImagery

OVERLAP_MAX_PX = 32 * 1024 * 1024  # 32 km2 at 1 m/px


class EarlyWrites:
    """Started on entry; :meth:`probability` and :meth:`backdrop` wait for their part (and raise its
    error); the exit waits for both, so nothing is left writing into a staging folder."""

    def __init__(self, stage: Path, prob: ProbabilityRaster | None, imagery: AnyImagery | None, grid: Grid,
                 described: dict[str, Any] | None = None):
        """``described``: what probability.tif says of itself (osmgap.export.probability's
        ``looked_at``, ``tags``, ``meaning``)."""
        self._stage, self._prob, self._imagery, self._grid = stage, prob, imagery, grid
        self._described = described or {}
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="osmgap-early-writes")
        self._probability: Future[Path | None] | None = None
        self._backdrop: Future[tuple[Grid, np.ndarray] | None] | None = None
        if grid.width * grid.height <= OVERLAP_MAX_PX:
            self.start()

    def start(self, threads: int = 1) -> None:
        """Start both now, if not yet started, the backdrop first (the overview waits for it; the
        COG only the end of the run); ``threads``: GDAL's compression threads for the COG."""
        if self._probability is None:
            self._backdrop = self._pool.submit(self._read_backdrop)
            self._probability = self._pool.submit(self._write_probability, threads)

    def _write_probability(self, threads: int = 1) -> Path | None:
        return (write_probability_tif(self._stage / "probability.tif", self._prob, threads, **self._described)
                if self._prob is not None else None)

    def _read_backdrop(self) -> tuple[Grid, np.ndarray] | None:
        return read_backdrop(self._imagery, self._grid) if self._imagery is not None else None

    def probability(self) -> Path | None:
        if self._probability is not None:
            return self._probability.result()
        return self._write_probability(os.cpu_count() or 1)  # alone now: every core compresses

    def backdrop(self) -> tuple[Grid, np.ndarray] | None:
        return self._backdrop.result() if self._backdrop is not None else self._read_backdrop()

    def __enter__(self) -> EarlyWrites:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
