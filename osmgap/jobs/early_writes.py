"""Outputs that need only the evidence, made while conflation runs (issue 17).

The probability COG and the overview's imagery backdrop depend on nothing conflation decides, and
both are mostly GDAL work (compressing, decoding), which releases the GIL: in a thread they take
the second CPU while conflation, pure Python and shapely, keeps the first.
"""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType

import numpy as np

from osmgap.core.datamodel import ProbabilityRaster
from osmgap.core.grid import Grid
from osmgap.export.overview import read_backdrop
from osmgap.export.probability import write_probability_tif
from osmgap.sources.xyz import AnyImagery


class EarlyWrites:
    """Started on entry; :meth:`probability` and :meth:`backdrop` wait for their part (and raise its
    error); the exit waits for both, so nothing is left writing into a staging folder."""

    def __init__(self, stage: Path, prob: ProbabilityRaster | None, imagery: AnyImagery | None, grid: Grid):
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="osmgap-early-writes")
        self._probability: Future[Path] | None = (
            self._pool.submit(write_probability_tif, stage / "probability.tif", prob) if prob is not None else None)
        self._backdrop: Future[tuple[Grid, np.ndarray]] | None = (
            self._pool.submit(read_backdrop, imagery, grid) if imagery is not None else None)

    def probability(self) -> Path | None:
        return self._probability.result() if self._probability is not None else None

    def backdrop(self) -> tuple[Grid, np.ndarray] | None:
        return self._backdrop.result() if self._backdrop is not None else None

    def __enter__(self) -> EarlyWrites:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
