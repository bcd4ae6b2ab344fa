"""The tile cache stays under its size budget: the oldest-written tiles go first (a tile in use
is written again whenever a run revalidates it), and so do the temp files of killed writes."""
from __future__ import annotations

import os
import time
from pathlib import Path

from osmgap.sources.tile_cache import ABANDONED_WRITE_S, Pruned, prune

KB = 1024


def _file(path: Path, size: int, age_s: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    when = time.time() - age_s
    os.utime(path, (when, when))
    return path


def test_the_oldest_written_tiles_go_first_until_the_rest_fit(tmp_path):
    old = [_file(tmp_path / "server-a" / "18" / "1" / f"{i}.tile", 100 * KB, 10 * 86400 - i) for i in range(3)]
    new = [_file(tmp_path / "server-b" / "17" / "4" / f"{i}.tile", 100 * KB, 60) for i in range(3)]
    done = prune(tmp_path, 450 * KB)
    assert (done.removed, done.kept_bytes) == (2, 400 * KB)
    assert [p.exists() for p in old] == [False, False, True]  # oldest first: i = 0, then 1
    assert all(p.exists() for p in new)
    assert prune(tmp_path, 450 * KB) == Pruned(0, 400 * KB)  # under budget: nothing more


def test_temp_files_of_killed_writes_go_and_other_files_stay(tmp_path):
    killed = _file(tmp_path / "s" / "18" / "1" / ".7.tile.a1b2c3d4", 10 * KB, ABANDONED_WRITE_S + 60)
    writing = _file(tmp_path / "s" / "18" / "1" / ".8.tile.e5f6g7h8", 10 * KB, 5)
    note = _file(tmp_path / "s" / "README", 10 * KB, 30 * 86400)
    assert prune(tmp_path, 0) == Pruned(0, 0)
    assert not killed.exists() and writing.exists() and note.exists()


def test_the_tiles_a_run_read_go_last_and_are_counted_when_they_must_go(tmp_path):
    """A fresh tile read from the cache is not written again, so the run's own tiles can be the
    oldest written: they still go after every other one, and the caller learns how many went."""
    ours = [_file(tmp_path / "server-a" / "18" / "1" / f"{i}.tile", 100 * KB, 6 * 86400 - i) for i in range(3)]
    other = [_file(tmp_path / "server-b" / "17" / "4" / f"{i}.tile", 100 * KB, 60 - i) for i in range(3)]
    assert prune(tmp_path, 350 * KB, ours) == Pruned(3, 300 * KB, 300 * KB, 0)
    assert not any(p.exists() for p in other) and all(p.exists() for p in ours)
    assert prune(tmp_path, 150 * KB, ours) == Pruned(2, 100 * KB, 300 * KB, 2)  # even ours do not fit
    assert [p.exists() for p in ours] == [False, False, True]  # oldest of them first
