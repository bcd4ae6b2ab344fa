"""One run per workspace at a time: an exclusive ``flock`` on a lock file beside the state.

Why: cron starts ``osmgap run`` on a schedule whether or not last week's run has finished; two
runs writing one state file and one challenge would publish twice. Every verb that writes a
state (``diff --state``, ``publish``, ``sync``, ``report``, ``run``) takes the same lock, so a
hand-run verb and a cron run, or two verbs from two cron lines, do not interleave either. The
kernel drops the lock when the process ends, however it ends, so a crash never leaves a stale
lock behind. Within one process the lock is re-entered (``run`` holds it while its verbs take
it), since a second ``flock`` on a new descriptor would wait for the process itself.

The lock is taken however new the workspace is: its folder is made as the state's would be, so
a new workspace's first run is as protected as any. A run that leaves no state behind (refused,
or failed before recording anything) removes the lock file and the folders it made for it,
while still holding the lock; whoever was waiting on that file sees that it was removed once it
gets the lock, and locks the path anew, so two runs never hold two different files.
"""
from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from osmgap.errors import Busy

__all__ = ["Busy", "exclusive", "state_lock_path"]

_held: dict[Path, int] = {}  # the locks this process holds, and how many blocks hold each
_RETRIES = 100  # a lock file or folder removed under us this often in a row is no race but a broken path


def state_lock_path(state: str | Path) -> Path:
    """The lock file of a state file: ``osmgap.sqlite`` -> ``osmgap.sqlite.lock``."""
    state = Path(state)
    return state.with_name(state.name + ".lock")


@contextmanager
def exclusive(path: str | Path, wait_s: float = 0.0, poll_s: float = 0.5, *,
              keep: Callable[[], bool] | None = None, optional: bool = False) -> Iterator[None]:
    """Hold ``path`` locked for the block; raise Busy after ``wait_s`` seconds of trying. Missing
    folders are made. A block inside another that holds the same lock in this process just goes
    on. ``keep``: asked at the end of the outermost block; False removes the lock file and the
    folders made for it (a refused run leaves nothing behind). ``optional``: where the lock file
    cannot be made (a folder this user may only read), the block runs without a lock."""
    path = Path(path).resolve()  # one lock file, one key, however a symlinked --out names it
    if path in _held:
        _held[path] += 1
        try:
            yield
        finally:
            _held[path] -= 1
        return
    try:
        fd, made = _acquire(path, wait_s, poll_s)
    except OSError:
        if not optional:
            raise
        yield  # nothing this user can write there, so nothing this run writes either
        return
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} since {time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n".encode(), 0)
        _held[path] = 1
        try:
            yield
        finally:
            del _held[path]
            if keep is not None and not keep():
                _remove(path, made)  # still locked: nobody can take this file in between
            else:
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _acquire(path: Path, wait_s: float, poll_s: float) -> tuple[int, list[Path]]:
    """The descriptor of ``path``, locked, and the folders made for it (outermost first). A file
    removed by the run that held it (see :func:`exclusive`'s ``keep``) is no lock any more: the
    path is opened again."""
    deadline = time.monotonic() + wait_s
    made: list[Path] = []
    for _ in range(_RETRIES):
        made += _make_folders(path.parent)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:  # its folder removed in between by a run that made it
            continue
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
                        raise Busy(f"{path} is held by {holder}") from None
                    time.sleep(poll_s)
            if _same_file(fd, path):
                return fd, made
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # removed while we waited for it: lock the path anew
    raise FileNotFoundError(f"{path}: removed each time it was locked")


def _make_folders(folder: Path) -> list[Path]:
    """Make ``folder`` and its missing parents, as the state's own ``mkdir`` would; the ones
    this call made, outermost first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    made = []
    for f in reversed(missing):
        try:
            f.mkdir()
            made.append(f)
        except FileExistsError:
            if not f.is_dir():
                raise
    return made


def _same_file(fd: int, path: Path) -> bool:
    try:
        now = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino)


def _remove(path: Path, made: list[Path]) -> None:
    """The lock file, then the folders made for it that are still empty, innermost first."""
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    for folder in reversed(made):
        try:
            folder.rmdir()
        except OSError:  # something else was put there: it stays
            break
