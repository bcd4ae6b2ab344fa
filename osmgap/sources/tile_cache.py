"""The disk cache of one tile server's tiles: each tile's bytes with how long they stay good.

One file per tile (``z/x/y.tile``, written atomically): a first line ``osmgap-tile 1`` and a line
of JSON (when the tile stops being fresh, until when it may stand in for it while the server
fails, its ETag and Last-Modified), then the bytes the server sent. A file without that first
line is a tile as older osmgaps kept them: its bytes alone, fresh for the default age from when
it was written, with no validators. Keeping the
bytes and their metadata in one file means one atomic write: no tile with another tile's ETag.
The whole cache (every server's) is kept under a size budget by :func:`prune`.
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from osmgap.core.atomic import write_bytes_atomic
from osmgap.core.http_cache import Keeping, etag_of, http_date

MAGIC = b"osmgap-tile 1\n"
MAX_HEAD = 1024  # the JSON line: two validators and two times
CLOCK_SKEW_S = 60.0  # an entry stored this far "in the future" (a clock set back) is not trusted
ABANDONED_WRITE_S = 3600.0  # a temp file this old is a write that was killed, not one under way


@dataclass(frozen=True)
class CachedTile:
    """A kept tile: its bytes, until when (epoch s) they may be used without asking, how to ask,
    and until when they may stand in for the tile while the server fails (``stale_until``)."""

    body: bytes
    fresh_until: float
    etag: str | None = None
    last_modified: str | None = None
    stale_until: float = 0.0

    def fresh(self, now: float) -> bool:
        return now < self.fresh_until

    def usable_on_error(self, now: float) -> bool:
        return now < self.stale_until

    def revalidation(self) -> Keeping:
        """The validators to ask the server with (no lifetime: that is for its answer to say)."""
        return Keeping(True, 0.0, self.etag, self.last_modified)


class TileCache:
    """``root``: this server's folder; ``max_age_s``: the longest any kept tile stays fresh from
    when it was written (whatever its line says), and so long a tile without that line stays;
    ``stale_s``: the longest after that it may stand in while the server fails."""

    def __init__(self, root: Path, max_age_s: float, stale_s: float = 0.0):
        self.root = root
        self.max_age_s = max_age_s
        self.stale_s = stale_s

    def path(self, z: int, x: int, y: int) -> Path:
        return self.root / str(z) / str(x) / f"{y}.tile"

    def load(self, z: int, x: int, y: int) -> CachedTile | None:
        """The kept tile, or None when there is none or its entry is unreadable (a damaged one
        is removed: it is fetched again)."""
        path = self.path(z, x, y)
        try:
            raw = path.read_bytes()
            stored = path.stat().st_mtime
        except OSError:
            return None
        skewed = stored - time.time() > CLOCK_SKEW_S  # written "later than now": its age is unknown, ask again
        latest = stored + self.max_age_s
        if not raw.startswith(MAGIC):
            return CachedTile(raw, 0.0) if skewed else CachedTile(raw, latest, stale_until=latest + self.stale_s)
        end = raw.find(b"\n", len(MAGIC), len(MAGIC) + MAX_HEAD)
        try:
            head = json.loads(raw[len(MAGIC):end]) if end > 0 else None
            if not isinstance(head, dict):
                raise ValueError("no head")
            until = float(head["fresh_until"])
            stale = float(head.get("stale_until", until + self.stale_s))  # entries without it: osmgap's allowance
        except (ValueError, TypeError, KeyError):
            path.unlink(missing_ok=True)
            return None
        fresh_until = 0.0 if skewed else min(until, latest)
        stale_until = 0.0 if skewed else min(stale, latest + self.stale_s)
        return CachedTile(raw[end + 1:], fresh_until, etag_of(head.get("etag")), http_date(head.get("last_modified")),
                          stale_until)

    def store(self, z: int, x: int, y: int, body: bytes, keep: Keeping, now: float) -> None:
        """Keep ``body`` as the server's answer said (nothing on disk when it said ``no-store``:
        an entry kept from before is removed)."""
        if not keep.store:
            self.forget(z, x, y)
            return
        head = {"fresh_until": round(now + keep.fresh_s, 3), "stale_until": round(now + keep.fresh_s + keep.stale_s, 3),
                "etag": keep.etag, "last_modified": keep.last_modified}
        write_bytes_atomic(self.path(z, x, y), MAGIC + json.dumps(head).encode() + b"\n" + body)

    def forget(self, z: int, x: int, y: int) -> None:
        self.path(z, x, y).unlink(missing_ok=True)


@dataclass(frozen=True)
class Pruned:
    """What :func:`prune` did: ``removed`` tiles, ``kept_bytes`` left; of the tiles in use,
    ``in_use_bytes`` in all and ``in_use_removed`` of them removed (they did not fit)."""

    removed: int
    kept_bytes: int
    in_use_bytes: int = 0
    in_use_removed: int = 0


def prune(root: Path, max_bytes: int, in_use: Collection[Path] = ()) -> Pruned:
    """Remove tiles under ``root`` (every server's folder) until the rest fit in ``max_bytes``,
    and the temp files of writes that were killed. The tiles ``in_use`` (the run's own) go last;
    the others oldest-written first, because a tile in use is written again whenever a run
    revalidates it: what goes is what no run has asked for the longest. A tile another run reads
    meanwhile is fetched again (a missing entry is no entry)."""
    using = {os.path.normpath(path) for path in in_use}
    tiles: list[tuple[bool, float, int, str]] = []
    now = time.time()
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            try:
                stat = os.stat(path)
            except OSError:
                continue  # removed meanwhile
            if name.endswith(".tile"):
                tiles.append((os.path.normpath(path) in using, stat.st_mtime, stat.st_size, path))
            elif name.startswith(".") and ".tile." in name and now - stat.st_mtime > ABANDONED_WRITE_S:
                _remove(path)
    kept = sum(size for _, _, size, _ in tiles)
    removed = in_use_removed = 0
    for used, _, size, path in sorted(tiles):
        if kept <= max_bytes:
            break
        if _remove(path):
            kept -= size
            removed += 1
            in_use_removed += used
    return Pruned(removed, kept, sum(size for used, _, size, _ in tiles if used), in_use_removed)


def _remove(path: str) -> bool:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True
