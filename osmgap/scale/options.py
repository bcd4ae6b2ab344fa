"""How a large run is cut into tiles and spread over workers: the options and their defaults.

Kept apart from the tiled runner so the CLI can show the defaults without importing torch.
"""
from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from osmgap.errors import InputError

DEFAULT_TILE_PX = 2048  # core side; at 1 m a 4 km2 tile, ~100 MB of working rasters
DEFAULT_MARGIN_PX = 96  # context around a core for graph extraction (> spur and blob sizes)
# Above this many analysis pixels (16 km2 at 1 m) an untiled run tiles itself: untiled, peak memory
# grew with the area (2.6 GB at 19.6 km2, issue 17).
SELF_TILE_PX = 4096 * 4096
# Dask's protocols for a scheduler's address (ucx, ws, wss need extras, and are refused by Dask
# itself when these are missing); inproc is one process's own
SCHEDULER_SCHEMES = ("tcp", "tls", "ucx", "ws", "wss")


@dataclass
class ScaleOptions:
    """How a run is cut and distributed (``--tile-size``, ``--workers``, ``--scheduler``, ...)."""

    workers: int = 1  # local Dask workers; 0: in this process, no cluster
    scheduler: str | None = None  # tcp://HOST:PORT of an existing Dask cluster
    tile_px: int = DEFAULT_TILE_PX
    margin_px: int = DEFAULT_MARGIN_PX
    work_dir: Path | None = None  # default: a hidden folder beside the output directory
    resume: bool = False
    temporary: bool = False  # a work directory of this run only, removed at its end (self-tiling)

    def __post_init__(self) -> None:
        if self.scheduler is not None:
            self.scheduler = scheduler_address(self.scheduler)


def scheduler_address(text: str) -> str:
    """``--scheduler`` as Dask's ``SCHEME://HOST:PORT`` (``HOST:PORT`` is tcp), or InputError
    before any work: Dask took ``not a url`` or ``http://HOST:8787`` (its dashboard, the address a
    browser shows) for an internal error after the inputs were read, and left a work directory."""
    scheme, sep, rest = text.strip().rpartition("://")
    scheme = scheme.lower() if sep else "tcp"
    if scheme in ("http", "https"):
        raise InputError(text, "a web address (the dashboard's?): give the scheduler's own, tcp://HOST:PORT "
                               "(port 8786 unless it was started with another)")
    if scheme not in SCHEDULER_SCHEMES:
        raise InputError(text, f"not a Dask scheduler address: give tcp://HOST:PORT (or {', '.join(SCHEDULER_SCHEMES[1:])})")
    try:
        parts = urllib.parse.urlsplit(f"//{rest}")
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or port is None or parts.path or parts.query or parts.fragment or "@" in parts.netloc:
        raise InputError(text, "not a Dask scheduler address: give tcp://HOST:PORT, as `dask scheduler` prints it")
    return f"{scheme}://{parts.netloc}"


def self_tiling(pixels: int) -> ScaleOptions | None:
    """The tiling an untiled run of ``pixels`` analysis pixels gives itself, so that its memory
    does not grow with the area: in this process, in a temporary work directory; None when the
    area is small enough to run in one piece."""
    if pixels <= SELF_TILE_PX:
        return None
    return ScaleOptions(workers=0, temporary=True)
