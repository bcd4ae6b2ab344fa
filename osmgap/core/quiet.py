"""Keep a native library's own log lines off stdout.

fastmm logs through spdlog straight to the C ``stdout``: ~66 ``[info]`` lines per GPS run, ahead
of the few plain lines osmgap ends with (and into any pipe reading its output). No API sets its
level, so while it works file descriptor 1 points at stderr (``-v``) or nowhere. Nested and
concurrent users share one redirection: the first in makes it, the last out undoes it.
"""
from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import sys
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_depth = 0
_saved_fd: int | None = None


def _flush_c_stdio() -> None:
    """Flush C's stdio buffers (a pipe's stdout is fully buffered: lines would leak out later)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).fflush(None)  # twice per redirection, not per call inside it


@contextlib.contextmanager
def native_stdout_quiet(verbose: bool | None = None) -> Iterator[None]:
    """Native code's writes to stdout go to stderr when ``verbose`` (default: osmgap's logger
    shows INFO, i.e. ``-v``), else to /dev/null, until the block ends."""
    global _depth, _saved_fd
    if verbose is None:
        verbose = logging.getLogger("osmgap").isEnabledFor(logging.INFO)
    with _lock:
        if _depth == 0:
            sys.stdout.flush()
            _flush_c_stdio()
            _saved_fd = os.dup(1)
            if verbose:
                os.dup2(2, 1)
            else:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, 1)
                os.close(devnull)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _saved_fd is not None:
                _flush_c_stdio()
                os.dup2(_saved_fd, 1)
                os.close(_saved_fd)
                _saved_fd = None
