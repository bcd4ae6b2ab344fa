"""Threads for the bulk geometry steps: shapely's and numpy's array operations release the GIL, so
blocks of one such step run side by side on the cores a process may use (issue 17: a GPU host's
conflation is the diff's longest step on one core)."""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

MAX_THREADS = 8  # beyond this, bulk queries gained nothing on a 16-core host (more memory in flight)

T = TypeVar("T")
R = TypeVar("R")


def usable_cores() -> int:
    """The cores this process may run on (its affinity, not the machine's count, where known)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def in_order(work: Callable[[T], R], items: Iterable[T], threads: int) -> Iterator[R]:
    """``work`` of each item, on up to ``threads`` threads, yielded in the items' order: the same
    results as a plain loop whenever ``work`` is a pure function of its item."""
    if threads <= 1:
        yield from map(work, items)
        return
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="osmgap-geom") as pool:
        yield from pool.map(work, items)
