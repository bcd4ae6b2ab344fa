"""Blocks of a bulk step on threads come back in the order of the blocks."""
from __future__ import annotations

import threading
import time

import osmgap.core.threads as threads
from osmgap.core.threads import in_order, usable_cores


def test_results_come_in_the_items_order_though_they_finish_out_of_it():
    finished: list[int] = []
    names: set[str] = set()

    def work(i: int) -> int:
        time.sleep(0.02 * (5 - i))  # the first item finishes last
        finished.append(i)
        names.add(threading.current_thread().name)
        return i * i

    assert list(in_order(work, range(5), 5)) == [0, 1, 4, 9, 16]
    assert finished != sorted(finished)  # they did run side by side
    assert len(names) > 1


def test_one_thread_runs_in_the_callers_thread():
    names: list[str] = []
    assert list(in_order(lambda i: names.append(threading.current_thread().name) or i, range(3), 1)) == [0, 1, 2]
    assert set(names) == {threading.current_thread().name}


def test_cores_are_those_the_process_may_use(monkeypatch):
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {3, 5}, raising=False)
    assert usable_cores() == 2
