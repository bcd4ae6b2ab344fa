"""Where osmgap finds the real data it does not ship: ``$OSMGAP_DATA``, else ``../shared/data``."""
from __future__ import annotations

import os
from pathlib import Path

from osmgap.errors import InputError

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # osmgap/core/datapaths.py -> the checkout


def data_root() -> Path:
    """The shared data directory; an InputError that says where to put it when absent."""
    env = os.environ.get("OSMGAP_DATA")
    candidates = [Path(env)] if env else []
    candidates += [Path.cwd().parent / "shared" / "data", PROJECT_ROOT.parent / "shared" / "data"]
    for c in candidates:
        if c.is_dir():
            return c
    raise InputError(
        candidates[0],
        "osmgap data directory not found: set OSMGAP_DATA or place the data at ../shared/data "
        "(see sample_aoi/*/manifest.json for public sources)",
    )
