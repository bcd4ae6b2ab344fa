"""One run per workspace at a time: an exclusive ``flock`` on a lock file.

Why: cron starts ``osmgap run`` on a schedule whether or not last week's run has finished; two
runs writing one state file and one challenge would publish twice. The kernel drops the lock
when the process ends, however it ends, so a crash never leaves a stale lock behind.
"""
from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class Busy(Exception):
    """Another process holds the lock."""


@contextmanager
def exclusive(path: str | Path, wait_s: float = 0.0, poll_s: float = 0.5) -> Iterator[None]:
    """Hold ``path`` locked for the block; raise Busy after ``wait_s`` seconds of trying."""
    path = Path(path)
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
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
