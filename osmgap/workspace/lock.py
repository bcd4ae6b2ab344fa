"""One run per workspace at a time: an exclusive ``flock`` on a lock file beside the state.

Why: cron starts ``osmgap run`` on a schedule whether or not last week's run has finished; two
runs writing one state file and one challenge would publish twice. Every verb that writes a
state (``diff --state``, ``publish``, ``sync``, ``report``, ``run``) takes the same lock, so a
hand-run verb and a cron run, or two verbs from two cron lines, do not interleave either. The
kernel drops the lock when the process ends, however it ends, so a crash never leaves a stale
lock behind. Within one process the lock is re-entered (``run`` holds it while its verbs take
it), since a second ``flock`` on a new descriptor would wait for the process itself.
"""
from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from osmgap.errors import Busy

__all__ = ["Busy", "exclusive", "lockable", "state_lock_path"]

_held: dict[Path, int] = {}  # the locks this process holds, and how many blocks hold each


def state_lock_path(state: str | Path) -> Path:
    """The lock file of a state file: ``osmgap.sqlite`` -> ``osmgap.sqlite.lock``."""
    state = Path(state)
    return state.with_name(state.name + ".lock")


def lockable(path: str | Path) -> bool:
    """Whether ``path`` can be opened as a lock file: its folder exists and takes it."""
    try:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o644))
    except OSError:
        return False
    return True


@contextmanager
def exclusive(path: str | Path, wait_s: float = 0.0, poll_s: float = 0.5) -> Iterator[None]:
    """Hold ``path`` locked for the block; raise Busy after ``wait_s`` seconds of trying. A
    block inside another that holds the same lock in this process just goes on."""
    path = Path(path).resolve()  # one lock file, one key, however a symlinked --out names it
    if path in _held:
        _held[path] += 1
        try:
            yield
        finally:
            _held[path] -= 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
                    raise Busy(f"{path} is held by {holder}") from None
                time.sleep(poll_s)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} since {time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n".encode(), 0)
        _held[path] = 1
        try:
            yield
        finally:
            del _held[path]
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
