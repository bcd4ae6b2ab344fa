"""Per-tile results on disk, so a run killed at tile 900,000 resumes at tile 900,001.

Each tile's result (its core's probabilities and its core's road pieces as WKB) is one ``.npz``
written atomically (temp file + rename): a tile file either is whole or is not there. The
store lives in a folder named after a fingerprint of everything that decides the tiles' content
(imagery, grid, model, parameters), so a rerun with other inputs never picks up stale tiles.
A tile file that cannot be read back (a disk error, a truncated copy) counts as not done.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry import LineString

from osmgap.core.atomic import write_bytes_atomic, write_text_atomic
from osmgap.errors import InputError

log = logging.getLogger(__name__)


@dataclass
class TileResult:
    """What a tile contributes: probabilities of its core and the road pieces inside its core."""

    key: str
    prob: np.ndarray  # float32 (core rows, core cols)
    lines: list[LineString]

    def to_bytes(self) -> bytes:
        wkb = [shapely.to_wkb(line) for line in self.lines]
        buf = io.BytesIO()
        np.savez(buf, prob=self.prob.astype(np.float32), wkb=np.frombuffer(b"".join(wkb), np.uint8),
                 sizes=np.asarray([len(w) for w in wkb], np.int64))
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, key: str, data: bytes) -> TileResult:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            prob, blob, sizes = z["prob"], z["wkb"].tobytes(), z["sizes"]
        if int(sizes.sum()) != len(blob):
            raise ValueError("line data do not add up")
        bounds = np.concatenate([[0], np.cumsum(sizes)])
        lines = [shapely.from_wkb(blob[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
        return cls(key, prob, lines)


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
        return {p.stem for p in self.dir.glob("*.npz")}

    def save(self, result: TileResult) -> None:
        write_bytes_atomic(self.path(result.key), result.to_bytes())

    def load(self, key: str) -> TileResult | None:
        """The tile's result; None (and the file removed) when it is missing or unreadable."""
        path = self.path(key)
        try:
            return TileResult.from_bytes(key, path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, shapely.errors.GEOSException) as exc:
            log.warning("tile %s is unreadable (%s); it will be computed again", path, exc)
            path.unlink(missing_ok=True)
            return None

    def remove(self) -> None:
        """Delete this run's tiles, and the work directory when nothing else is in it."""
        shutil.rmtree(self.dir, ignore_errors=True)
        if self.root.is_dir() and not any(self.root.iterdir()):
            self.root.rmdir()
