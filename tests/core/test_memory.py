"""osmgap.core.memory: dropping a file-backed raster's pages keeps its data; peaks are this process's."""
from __future__ import annotations

import gc
import mmap
import os
import subprocess
import sys
import weakref

import numpy as np

from osmgap.core.memory import (
    freeze_long_lived,
    frozen_for_the_run,
    peak_rss_mb,
    release_pages,
    return_freed_memory,
)


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


def test_released_pages_of_a_mapped_raster_leave_memory_and_keep_their_values(tmp_path):
    path = tmp_path / "raster.f32"
    shape = (4096, 4096)  # 64 MiB
    with open(path, "w+b") as f:
        f.truncate(4 * shape[0] * shape[1])
        mapped = mmap.mmap(f.fileno(), 0)
    array = np.frombuffer(mapped, np.float32).reshape(shape)
    array[:] = 0.25
    array[100, 200] = 0.75
    before = _rss_mb()
    assert release_pages(array[10:20])  # a view: the whole mapping goes
    assert _rss_mb() < before - 48
    assert array[100, 200] == 0.75 and float(array[4000, 4000]) == 0.25  # read back from the file
    assert not release_pages(np.zeros(3))  # an in-memory array is left alone


def test_peak_counts_a_block_already_freed():
    before = _rss_mb()
    block = np.ones(64 * 2 ** 20 // 8)  # 64 MiB touched, then freed and trimmed
    del block
    return_freed_memory()
    assert _rss_mb() < before + 32  # handed back
    assert peak_rss_mb() >= before + 60  # but the peak remembers it


ARENAS_SCRIPT = r"""
import ctypes, ctypes.util, sys, threading, numpy as np
from osmgap.core.memory import share_malloc_arenas
if sys.argv[1] == "shared":
    share_malloc_arenas(1)
held, ready = [], threading.Barrier(5)
def work():
    held.append([np.ones(8_000) for _ in range(50)])  # 64 kB blocks: heap, not mmap
    ready.wait()  # all threads alive at once, so each would want an arena of its own
threads = [threading.Thread(target=work) for _ in range(4)]
[t.start() for t in threads]; ready.wait(); [t.join() for t in threads]
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.fopen.restype = ctypes.c_void_p
f = libc.fopen(sys.argv[2].encode(), b"w"); libc.malloc_info(0, ctypes.c_void_p(f)); libc.fclose(ctypes.c_void_p(f))
"""


def test_shared_arenas_keep_threads_out_of_arenas_of_their_own(tmp_path):
    """glibc gives busy threads arenas of their own, whose freed blocks linger; shared, one heap serves all."""
    heaps = {}
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    for mode in ("default", "shared"):
        info = tmp_path / f"{mode}.xml"
        subprocess.run([sys.executable, "-c", ARENAS_SCRIPT, mode, str(info)], check=True, env=env)
        heaps[mode] = info.read_text().count("<heap nr=")
    assert heaps["shared"] == 1 < heaps["default"]


def test_frozen_objects_are_skipped_for_the_run_and_handed_back_after():
    """freeze_long_lived takes what is alive out of full collections (cheaper passes); garbage made
    after it is still collected, and the scope's end hands the frozen objects back."""
    class Node:
        pass

    with frozen_for_the_run():
        old = Node()
        old.me = old  # a cycle alive at the freeze
        freeze_long_lived()
        assert gc.get_freeze_count() > 0
        new = Node()
        new.me = new
        later = weakref.ref(new)
        del new
        gc.collect()
        assert later() is None  # a cycle made after the freeze is still collected
        before = weakref.ref(old)
        del old
        gc.collect()
        assert before() is not None  # the frozen cycle is out of the collector's sight
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert before() is None  # handed back: collected
HOLES_SCRIPT = r"""
import sys, numpy as np
from osmgap.core.memory import trim_heap
def rss():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS:")) / 1024
blocks = [np.ones(12_500) for _ in range(2_000)]  # 100 kB each: heap blocks, not mmap; 200 MB
del blocks[::2]  # 100 MB freed in holes between live blocks: no trim at the heap's top reaches them
before = rss()
if sys.argv[1] == "trim":
    trim_heap()
print(before - rss())
"""


def test_trim_hands_back_holes_in_the_heap():
    """Freed blocks between live ones stay resident until the heap is trimmed."""
    freed = {how: float(subprocess.run([sys.executable, "-c", HOLES_SCRIPT, how], capture_output=True, text=True,
                                       check=True).stdout) for how in ("trim", "keep")}
    assert freed["trim"] > 60 and freed["keep"] < 10


def test_the_collector_is_paused_inside_and_left_as_it_was():
    import gc

    from osmgap.core.memory import collector_paused

    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()  # a caller that had switched it off keeps it off
    finally:
        gc.enable()
    try:
        with collector_paused():
            raise ValueError("a bad file")
    except ValueError:
        pass
    assert gc.isenabled()
