"""How a large run is cut into tiles and spread over workers: the options and their defaults.

Kept apart from the tiled runner so the CLI can show the defaults without importing torch.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_TILE_PX = 2048  # core side; at 1 m a 4 km2 tile, ~100 MB of working rasters
DEFAULT_MARGIN_PX = 96  # context around a core for graph extraction (> spur and blob sizes)


@dataclass
class ScaleOptions:
    """How a run is cut and distributed (``--tile-size``, ``--workers``, ``--scheduler``, ...)."""

    workers: int = 1  # local Dask workers; 0: in this process, no cluster
    scheduler: str | None = None  # tcp://HOST:PORT of an existing Dask cluster
    tile_px: int = DEFAULT_TILE_PX
    margin_px: int = DEFAULT_MARGIN_PX
    work_dir: Path | None = None  # default: a hidden folder beside the output directory
    resume: bool = False
