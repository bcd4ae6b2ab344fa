"""Per-tile results on disk, so a run killed at tile 900,000 resumes at tile 900,001.

Each model tile's result (the weighted sum of its windows' probabilities and of their weights) is one ``.npz``
written atomically (temp file + rename): a tile file either is whole or is not there. The
store lives in a folder named after a fingerprint of everything that decides the tiles' content
(imagery, grid, model, parameters), so a rerun with other inputs never picks up stale tiles.
A tile file that cannot be read back (a disk error, a truncated, empty or foreign file) counts as
not done and is computed again.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from osmgap.core.atomic import write_bytes_atomic, write_text_atomic
from osmgap.errors import InputError

log = logging.getLogger(__name__)


@dataclass
class TileResult:
    """What a model tile contributes over its extent: the blend-weighted sum of its windows'
    probabilities and the sum of their weights (osmgap.model.infer.accumulate_windows).
    ``stood_in``: the kept tiles of a failing tile server the worker read in the server's place
    for it (osmgap.sources.xyz.stand_ins), for the run's summary; not saved (a resumed run counts
    only what it read itself)."""

    key: str
    acc: np.ndarray  # float32 (extent rows, extent cols)
    cov: np.ndarray  # float32, same shape
    stood_in: dict[tuple[int, int, int], float] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez(buf, acc=self.acc.astype(np.float32), cov=self.cov.astype(np.float32))
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, key: str, data: bytes) -> TileResult:
        """Raises ValueError (or what numpy or zipfile raise) for anything but a whole tile."""
        z = np.load(io.BytesIO(data), allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise ValueError("not an .npz archive")
        with z:
            acc, cov = z["acc"], z["cov"]
        if acc.ndim != 2 or acc.dtype != np.float32 or cov.shape != acc.shape or cov.dtype != np.float32:
            raise ValueError("arrays of the wrong shape or type")
        return cls(key, acc, cov)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def fingerprint(parts: dict[str, Any]) -> str:
    """A short hash of what decides the tiles' content."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


class TileStore:
    """Tile results of one run configuration under ``root/<fingerprint>/``."""

    def __init__(self, root: str | Path, parts: dict[str, Any]):
        self.root = Path(root)
        self.dir = self.root / fingerprint(parts)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            write_text_atomic(self.dir / "run.json", json.dumps(parts, indent=1, sort_keys=True, default=str))
        except OSError as exc:
            raise InputError(self.root, f"work directory is not writable ({exc.strerror or exc})") from None

    def clear(self) -> None:
        """Forget every tile (a fresh, not resumed, run)."""
        for path in self.dir.glob("*.npz"):
            path.unlink()

    def path(self, key: str) -> Path:
        return self.dir / f"{key}.npz"

    def done(self) -> set[str]:
        """Tiles with a non-empty file (an empty one, a killed copy, is computed with the rest)."""
        return {p.stem for p in self.dir.glob("*.npz") if _size(p) > 0}

    def save(self, result: TileResult) -> None:
        write_bytes_atomic(self.path(result.key), result.to_bytes())

    def load(self, key: str) -> TileResult | None:
        """The tile's result; None (and the file removed) when it is missing or unreadable."""
        path = self.path(key)
        try:
            return TileResult.from_bytes(key, path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            log.warning("tile %s is unreadable (%s); it will be computed again", path, exc or type(exc).__name__)
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            return None

    def remove(self) -> None:
        """Delete this run's tiles, and the work directory when nothing else is in it."""
        shutil.rmtree(self.dir, ignore_errors=True)
        if self.root.is_dir() and not any(self.root.iterdir()):
            self.root.rmdir()
