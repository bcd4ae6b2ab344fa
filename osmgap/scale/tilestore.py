"""Per-tile results on disk, so a run killed at tile 900,000 resumes at tile 900,001.

Each model tile's result (the weighted sum of its windows' probabilities and of their weights) is one ``.npz``
written atomically (temp file + rename): a tile file either is whole or is not there. The
store lives in a folder named after a fingerprint of everything that decides the tiles' content
(imagery, grid, model, parameters), so a rerun with other inputs never picks up stale tiles.
A tile file that cannot be read back (a disk error, a truncated, empty or foreign file, or one of
another extent) counts as not done and is computed again. One run at a time uses a store: a second
run on the same folder would truncate the first's sums and delete its tiles under it, so the store
is locked (``flock``, dropped by the kernel however the run ends) and a second run is Busy (exit 3).
"""
from __future__ import annotations

import fcntl
import hashlib
import io
import json
import logging
import os
import shutil
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from osmgap.core.atomic import write_bytes_atomic, write_text_atomic
from osmgap.errors import Busy, InputError

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
    def from_bytes(cls, key: str, data: bytes, shape: tuple[int, int] | None = None) -> TileResult:
        """Raises ValueError (or what numpy or zipfile raise) for anything but a whole tile
        (of ``shape``, when given: a valid tile of another extent would break the sums)."""
        z = np.load(io.BytesIO(data), allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise ValueError("not an .npz archive")
        with z:
            acc, cov = z["acc"], z["cov"]
        if acc.ndim != 2 or acc.dtype != np.float32 or cov.shape != acc.shape or cov.dtype != np.float32:
            raise ValueError("arrays of the wrong shape or type")
        if shape is not None and acc.shape != tuple(shape):
            raise ValueError(f"arrays of {acc.shape[0]}x{acc.shape[1]} px, not the tile's {shape[0]}x{shape[1]}")
        return cls(key, acc, cov)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _part(run_json: Path, key: str) -> Any:
    """``key`` of the parts a store's run.json records; None when it cannot be read."""
    try:
        parts = json.loads(run_json.read_text())
    except (OSError, ValueError, RecursionError):
        return None
    return parts.get(key) if isinstance(parts, dict) else None


def fingerprint(parts: dict[str, Any]) -> str:
    """A short hash of what decides the tiles' content."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


LOCK_NAME = "lock"
_LOCK_TRIES = 10  # the folder removed under us (a refused run cleaning up) this often in a row: give up


class TileStore:
    """Tile results of one run configuration under ``root/<fingerprint>/``, locked by this
    process until :meth:`close` (Busy when another run holds it)."""

    def __init__(self, root: str | Path, parts: dict[str, Any]):
        self.root = Path(root)
        self.parts = parts
        self.dir = self.root / fingerprint(parts)
        self._lock_fd: int | None = None
        try:
            self._lock_fd = self._lock()
            write_text_atomic(self.dir / "run.json", json.dumps(parts, indent=1, sort_keys=True, default=str))
        except OSError as exc:
            self.close()
            raise InputError(self.root, f"work directory is not writable ({exc.strerror or exc})") from None
        except BaseException:
            self.close()
            raise

    def _lock(self) -> int:
        """The locked descriptor of the folder's lock file (made, with the folder, if missing).
        A file unlinked while we waited for it (its run removed the folder) is no lock: made again."""
        for _ in range(_LOCK_TRIES):
            self.dir.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(self.dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
                os.close(fd)
                raise Busy(f"work directory {self.dir} is in use by {holder}; wait for it or give another "
                           "--work-dir") from None
            if os.fstat(fd).st_nlink > 0:
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"pid {os.getpid()} since {time.strftime('%Y-%m-%dT%H:%M:%S%z')}".encode(), 0)
                return fd
            os.close(fd)
        raise FileNotFoundError(f"{self.dir}: removed each time it was locked")

    def close(self) -> None:
        """Let another run use the store (the kernel also does when this process ends)."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor drops its flock
            self._lock_fd = None

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

    def load(self, key: str, shape: tuple[int, int] | None = None) -> TileResult | None:
        """The tile's result; None (and the file removed) when it is missing, unreadable or not
        of ``shape``."""
        path = self.path(key)
        try:
            return TileResult.from_bytes(key, path.read_bytes(), shape)
        except FileNotFoundError:
            return None
        except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            log.warning("tile %s is unreadable (%s); it will be computed again", path, exc or type(exc).__name__)
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            return None

    def others(self) -> bool:
        """Whether the work directory holds tiles of another configuration."""
        return any(p.parent != self.dir for p in self.root.glob("*/*.npz"))

    def prune_superseded(self, key: str) -> int:
        """Remove the work directory's other stores whose ``key`` part is this one's (an earlier run
        over the same grid with other imagery, model or parameters: a tile server's new content, a
        new model) and which no run holds; the bytes freed. Each new configuration made a folder
        of its own, and a weekly run filled the disk with superseded ones."""
        freed = 0
        for run_json in self.root.glob("*/run.json"):
            other = run_json.parent
            if other == self.dir or _part(run_json, key) != json.loads(json.dumps(self.parts[key], default=str)):
                continue
            try:
                fd = os.open(other / LOCK_NAME, os.O_RDWR)
            except FileNotFoundError:
                fd = None
            try:
                if fd is not None:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a run using it: kept
                size = sum(_size(p) for p in other.iterdir())
                shutil.rmtree(other, ignore_errors=True)
                freed += size
            except BlockingIOError:
                pass
            finally:
                if fd is not None:
                    os.close(fd)
        if freed:
            log.info("removed earlier tile folders of this grid from %s (%.0f MB)", self.root, freed / 2**20)
        return freed

    def remove(self) -> None:
        """Delete this run's tiles, and the work directory when nothing else is in it."""
        shutil.rmtree(self.dir, ignore_errors=True)
        if self.root.is_dir() and not any(self.root.iterdir()):
            self.root.rmdir()
