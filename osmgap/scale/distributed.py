"""Run independent jobs on Dask ``distributed``: a LocalCluster by default, or an existing cluster.

Why Dask: scanning a country is millions of tiles; Dask already schedules, retries lost
workers and scales from a laptop to a cluster, so osmgap does not grow its own engine. Only a
bounded number of jobs is in flight at a time (the client never holds a country's results),
and each result is handed to ``on_result`` (which persists it) as soon as it arrives.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from tqdm import tqdm

from osmgap.errors import InputError

log = logging.getLogger(__name__)

IN_FLIGHT_PER_WORKER = 4
CONNECT_TIMEOUT_S = 10


@dataclass
class Failed:
    """An InputError raised on a worker, carried back as data (it does not pickle by itself)."""

    source: str | None
    problem: str


def guarded(func: Callable[[Any], Any], job: Any) -> Any:
    """Run ``func(job)`` on a worker; a bad input comes back as :class:`Failed`."""
    try:
        return func(job)
    except InputError as exc:
        return Failed(exc.source, exc.problem)


def threads_per_worker(workers: int) -> int:
    """CPU threads each local worker may use, so N workers do not oversubscribe the machine (its
    forward pass splits them with its window reader: osmgap.model.infer.cpu_lanes)."""
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def run_jobs(func: Callable[[Any], Any], jobs: Sequence[Any], on_result: Callable[[Any], None],
             workers: int = 1, scheduler: str | None = None, label: str = "tiles",
             in_process: Callable[[Sequence[Any]], Iterator[Any]] | None = None) -> None:
    """``on_result(func(job))`` for every job, on Dask; ``workers=0`` without a scheduler runs
    them in this process (no cluster start-up, for small runs and tests), one after another or
    as ``in_process(jobs)`` yields their results, in order."""
    if not jobs:
        return
    bar = tqdm(total=len(jobs), desc=label, unit=label.rstrip("s"), disable=None)
    try:
        results = (_on_dask(func, jobs, workers, scheduler) if workers > 0 or scheduler
                   else in_process(jobs) if in_process is not None else _serial(func, jobs))
        for result in results:
            if isinstance(result, Failed):
                raise InputError(result.source, result.problem)
            on_result(result)
            bar.update(1)
    finally:
        bar.close()


def _serial(func: Callable[[Any], Any], jobs: Sequence[Any]) -> Iterator[Any]:
    for job in jobs:
        yield guarded(func, job)


def _on_dask(func: Callable[[Any], Any], jobs: Sequence[Any], workers: int, scheduler: str | None) -> Iterator[Any]:
    with dask_logs_at(logging.WARNING):
        yield from _on_cluster(func, jobs, workers, scheduler)


def _on_cluster(func: Callable[[Any], Any], jobs: Sequence[Any], workers: int, scheduler: str | None) -> Iterator[Any]:
    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    try:
        if scheduler:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT_S)
        else:
            # no dashboard: dashboard_address=None means the default, :8787 on every interface;
            # the scheduler's own HTTP routes listen on a free port of this host only
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address="127.0.0.1:0", scheduler_kwargs={"dashboard": False},
                                   silence_logs=logging.ERROR)
            client = Client(cluster)
    except (OSError, TimeoutError) as exc:
        raise InputError(scheduler, f"cannot reach the Dask scheduler ({exc})") from None
    try:
        n_workers = max(1, len(client.scheduler_info().get("workers", {})) or workers)
        limit = IN_FLIGHT_PER_WORKER * n_workers
        queue = iter(jobs)
        running = as_completed([client.submit(guarded, func, job, pure=False)
                                for job in _take(queue, limit)])
        for future in running:
            result = future.result()
            future.release()
            for job in _take(queue, 1):
                running.add(client.submit(guarded, func, job, pure=False))
            yield result
    finally:
        with dask_logs_at(logging.ERROR):  # "Worker process still alive after 4.0 seconds, killing": its way to close
            client.close()
            if cluster is not None:
                cluster.close()


@contextmanager
def dask_logs_at(level: int) -> Iterator[None]:
    """Dask's loggers at ``level`` or above for the block, unless osmgap shows INFO (-v): their
    lines (nannies, workers, "killed by signal 9" as the cluster closes) pass the root handler
    under osmgap's prefix and read as osmgap's own, or as its failures."""
    if logging.getLogger().getEffectiveLevel() <= logging.INFO:
        yield
        return
    import distributed  # noqa: F401  # its first import sets its loggers' levels: ours come after
    loggers = [logging.getLogger(name) for name in ("distributed", "dask")]
    before = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(max(lg.getEffectiveLevel(), level))
    try:
        yield
    finally:
        for lg, was in zip(loggers, before):
            lg.setLevel(was)


def _take(queue: Iterator[Any], n: int) -> list[Any]:
    out = []
    for job in queue:
        out.append(job)
        if len(out) == n:
            break
    return out
