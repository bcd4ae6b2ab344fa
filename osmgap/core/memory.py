"""Keeping a large AOI's resident memory flat: measure it, hand freed memory back to the system,
and drop the pages of file-backed rasters once read.

A self-tiled run maps its AOI-sized probability raster from a file; every page the graph,
conflation and writing stages read stays resident in this process until released, so without
``release_pages`` its resident size grows with the AOI. glibc keeps the freed blocks of a
forward pass in its heap; ``return_freed_memory`` trims them once the model is done.
``share_malloc_arenas`` keeps glibc from giving each thread (the window reader, the output
writer) an arena of its own whose freed blocks no trim reaches in time.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import mmap
import os
import resource
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np


def peak_rss_mb() -> float:
    """This process's peak resident memory so far. Linux's VmHWM belongs to the process image;
    getrusage's figure survives exec, so a child of a large parent would report the parent's."""
    try:
        with open("/proc/self/status") as status:
            kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration, ValueError):
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux (bytes on macOS: a fallback)
    return round(kib / 1024, 1)


def release_pages(array: np.ndarray) -> bool:
    """Drop this process's resident pages of the whole memory-mapped file that ``array`` views (the
    data stay in the file and the page cache, and are read again on the next access); False for
    an in-memory array, which is left alone."""
    base: object = array
    while isinstance(base, np.ndarray):
        base = base.base
    if isinstance(base, memoryview):
        base = base.obj
    if isinstance(base, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
        base.madvise(mmap.MADV_DONTNEED)
        return True
    return False


M_ARENA_MAX = -8  # glibc's mallopt parameter
MALLOC_ARENAS = 2  # the 21 km2 bench diff peaked at 1,771 MB with them, 1,932 MB without


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:
        return None


def share_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas for the threads started from now on (unless $MALLOC_ARENA_MAX
    says otherwise); False where there is no glibc to ask."""
    libc = _libc()
    if libc is None or not hasattr(libc, "mallopt") or "MALLOC_ARENA_MAX" in os.environ:
        return False
    return bool(libc.mallopt(M_ARENA_MAX, arenas))


def freeze_long_lived() -> None:
    """Take every object alive now out of the garbage collector's full passes, once the heavy modules
    are imported: torch and segmentation-models-pytorch bring ~480k objects that live to the end of
    the run, and each full pass (``return_freed_memory``'s, and Python's own during conflation)
    walked them all, 0.3 s a time. Only for a ``frozen_for_the_run`` scope."""
    gc.collect()
    gc.freeze()


@contextmanager
def frozen_for_the_run() -> Iterator[None]:
    """Whatever ``freeze_long_lived`` froze inside goes back to the collector when the run ends: a
    test session or a library caller runs many jobs in one process, and frozen objects that become
    cyclic garbage would never be freed."""
    try:
        yield
    finally:
        gc.unfreeze()


@contextmanager
def collector_paused() -> Iterator[None]:
    """No automatic garbage collection inside: building a large structure without cycles (a parsed
    JSON document) sets off full passes that walk everything alive and free nothing (0.7 s of
    parsing a 20 MB GeoJSON of 40,960 ways)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def return_freed_memory() -> None:
    """Collect garbage and ask glibc to return its free heap to the system (no-op elsewhere)."""
    gc.collect()
    trim_heap()


def trim_heap() -> None:
    """Ask glibc to return the free pages of its heaps to the system (no-op elsewhere): the blocks
    a forward pass freed sit between live ones, where only a trim hands them back."""
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


class FileRaster:
    """A float32 raster in a file, mapped into memory. ``release`` drops the pages this process
    touched from its memory (a shared mapping's changes stay in the file and the page cache), so
    assembling an AOI of any size holds about one tile's pages, not the AOI's."""

    def __init__(self, path: Path, shape: tuple[int, int]):
        self.path = path
        with open(path, "w+b") as f:
            f.truncate(4 * shape[0] * shape[1])
            self._map = mmap.mmap(f.fileno(), 0)
        self.array = np.frombuffer(self._map, np.float32).reshape(shape)  # keeps the mapping alive

    def release(self) -> None:
        release_pages(self.array)
