"""osmgap.core.memory: dropping a file-backed raster's pages keeps its data; peaks are this process's."""
from __future__ import annotations

import mmap

import numpy as np

from osmgap.core.memory import peak_rss_mb, release_pages, return_freed_memory


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
