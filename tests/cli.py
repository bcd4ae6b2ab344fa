"""Running the ``osmgap`` command from tests: in a child process, as a user or cron runs it.

In-process runs (``osmgap.cli.main``) are the fast choice for bad-input cases; a child process
is for what only a real process shows: exit codes after a kill, the lock, start-up imports.
"""
from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import PROJECT


def osmgap_cli(*args: str, cwd: Path = PROJECT, env: dict[str, str] | None = None,
               timeout: float = 600) -> subprocess.CompletedProcess:
    """``python -m osmgap ARGS`` in ``cwd``; stdout and stderr captured as text."""
    return subprocess.run([sys.executable, "-m", "osmgap", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)


@contextmanager
def held_lock(lock: Path) -> Iterator[None]:
    """Another process holding ``lock`` (as a run of osmgap would) for the block; its holder text
    says ``test holder``."""
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, time\n"
        f"fd = os.open({str(lock)!r}, os.O_RDWR | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\nos.write(fd, b'pid %d (test holder)' % os.getpid())\n"
        "print('locked', flush=True)\ntime.sleep(120)\n")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        yield
    finally:
        holder.kill()
        holder.wait()
