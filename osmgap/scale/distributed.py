"""Run independent jobs on Dask ``distributed``: a LocalCluster by default, or an existing cluster.

Why Dask: scanning a country is millions of tiles; Dask already schedules, retries lost
workers and scales from a laptop to a cluster, so osmgap does not grow its own engine. Only a
bounded number of jobs is in flight at a time (the client never holds a country's results),
and each result is handed to ``on_result`` (which persists it) as soon as it arrives.

Dask waits forever where a run cannot go on: on an address that answers but is no scheduler (its
dashboard's port), a cluster with no worker (or whose workers all dropped out, as one without
osmgap does at its first task) and workers all paused for memory (a worker holding the model
stays over Dask's pause threshold where it may use less than ~1.3 GB). So the address is checked
before any work, and the cluster's osmgap against this one; osmgap's own LocalCluster never
pauses its workers; and a run with no job finished is watched: it says what it waits for, then
fails with one line (:class:`_Watch`).
"""
from __future__ import annotations

import asyncio
import functools
import logging
import os
import queue
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import CancelledError
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from tqdm import tqdm

from osmgap.errors import InputError, ServiceError, one_line
from osmgap.scale.options import scheduler_address

log = logging.getLogger(__name__)

IN_FLIGHT_PER_WORKER = 4  # jobs in flight per worker of one thread; one more per further thread
CONNECT_TIMEOUT_S = 10
WATCH_S = 5.0  # how long the client waits for a job before it looks at the cluster
STALL_WARN_S = 30.0  # with no worker able to run a job this long, it says so
NO_WORKERS_S = 300.0  # ... and gives up after this long without a worker
PAUSED_S = 120.0  # ... or with every worker paused for memory this long
# the packages whose versions must agree across a cluster (Dask's own list, less those of its extras)
CLUSTER_PACKAGES = ("dask", "distributed", "cloudpickle", "msgpack", "toolz", "tornado")


@dataclass
class Failed:
    """An InputError or an unreadable file on a worker, carried back as data (it does not
    pickle by itself); ``worker`` and its working directory: where it happened, when on Dask."""

    source: str | None
    problem: str
    worker: str | None = None
    worker_dir: str | None = None
    unreadable: bool = False  # a path the worker could not open (another host, a relative path)

    def error(self, remote: bool) -> InputError:
        """The error to raise in the client; ``remote``: the workers are a cluster's, which may
        not see this machine's files (a local cluster's workers are this machine's)."""
        if not (remote and self.worker):
            return InputError(self.source, self.problem)
        here = self.source is not None and not os.path.isabs(self.source) and os.path.exists(self.source)
        hint = (f" (it opens files by the paths given here, relative ones from its own directory {self.worker_dir}: "
                "give paths every worker can read, e.g. absolute ones on a shared file system)"
                if self.unreadable or here else "")
        return InputError(self.source, f"{self.problem}, on the Dask worker {self.worker}{hint}")


def guarded(func: Callable[[Any], Any], job: Any) -> Any:
    """Run ``func(job)`` on a worker; a bad input, or a file the worker cannot open, comes back
    as :class:`Failed` (its type, RasterioIOError for one, did not unpickle in the client:
    "internal error: Exception: RasterioIOError('image.tif: No such file or directory')")."""
    from rasterio.errors import RasterioIOError

    try:
        return func(job)
    except InputError as exc:
        return Failed(exc.source, exc.problem, *_worker_here())
    except (FileNotFoundError, PermissionError, NotADirectoryError, RasterioIOError) as exc:
        where = _worker_here()
        if where[0] is None:
            raise
        filename = getattr(exc, "filename", None)
        problem = exc.strerror if isinstance(exc, OSError) and exc.strerror and filename else one_line(exc)
        return Failed(str(filename) if filename else None, problem, *where, unreadable=True)


def _worker_here() -> tuple[str | None, str | None]:
    """This process's Dask worker's address and working directory; (None, None) outside one."""
    if "distributed" not in sys.modules:
        return None, None
    from distributed import get_worker

    try:
        return get_worker().address, os.getcwd()
    except ValueError:
        return None, None


def threads_per_worker(workers: int) -> int:
    """CPU threads each local worker may use, so N workers do not oversubscribe the machine (its
    forward pass splits them with its window reader: osmgap.model.infer.cpu_lanes)."""
    return max(1, _cores() // max(1, workers))


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
        results = (_on_dask(func, jobs, workers, scheduler, label) if workers > 0 or scheduler
                   else in_process(jobs) if in_process is not None else _serial(func, jobs))
        for result in results:
            if isinstance(result, Failed):
                raise result.error(remote=bool(scheduler))
            on_result(result)
            bar.update(1)
    finally:
        bar.close()


def _serial(func: Callable[[Any], Any], jobs: Sequence[Any]) -> Iterator[Any]:
    for job in jobs:
        yield guarded(func, job)


def _on_dask(func: Callable[[Any], Any], jobs: Sequence[Any], workers: int, scheduler: str | None,
             label: str) -> Iterator[Any]:
    with dask_logs_at(logging.WARNING):
        yield from _on_cluster(func, jobs, workers, scheduler, label)


def _on_cluster(func: Callable[[Any], Any], jobs: Sequence[Any], workers: int, scheduler: str | None,
                label: str) -> Iterator[Any]:
    from dask.distributed import Client

    cluster = None
    if scheduler:
        address = scheduler_address(scheduler)
        _answers_as_scheduler(address)
        try:
            client = Client(address, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError) as exc:
            raise InputError(scheduler, f"cannot reach the Dask scheduler ({one_line(exc)})") from None
        where = f"the Dask scheduler {address}"
    else:
        cluster = _local_cluster(workers)
        client = Client(cluster)
        where = f"the local Dask cluster (--workers {workers})"
    try:
        if scheduler:
            _check_cluster(client, scheduler)
        yield from _results(client, func, jobs, _Watch(client, where, label, remote=bool(scheduler)))
    finally:
        # its lines as it closes ("Worker process still alive after 4.0 seconds, killing", the
        # reconnection's traceback after a lost scheduler) are its way to close, not news
        with dask_logs_at(logging.CRITICAL + 1):
            client.close()
            if cluster is not None:
                cluster.close()


def _local_cluster(workers: int) -> Any:
    """A LocalCluster of ``workers`` processes, one thread each, no dashboard, each worker with
    its share of the machine's memory (Dask's default), never paused: Dask pauses a worker at 80 %
    of its share, and one holding the model (~1 GB) stays over it, so with less than ~1.3 GB a
    worker (measured: 1.1 GB, as 8.8 GB and --workers 8) the first tiles paused every worker for
    good and the run waited forever. A worker over 95 % is restarted and its tile tried again
    (its results leave it as they are done: pausing or spilling frees nothing); one killed each
    time ends the run (:meth:`_Watch.killed`). The workers leave Ctrl-C to this process, which
    closes them (:func:`dask_setup`)."""
    import dask
    from dask.distributed import LocalCluster

    # without -v the workers say nothing (as they died for memory, a 30-line traceback each):
    # what went wrong is said by the client, in one line
    verbose = logging.getLogger().getEffectiveLevel() <= logging.INFO
    cores = _cores()
    if workers > cores:
        log.warning("--workers %d on a machine of %d cores: each worker loads the model (~1 GB) and they share the "
                    "cores, so more workers than cores only cost memory and start-up", workers, cores)
    # no dashboard: dashboard_address=None means the default, :8787 on every interface;
    # the scheduler's own HTTP routes listen on a free port of this host only
    with dask.config.set({"distributed.worker.memory.target": False, "distributed.worker.memory.spill": False,
                          "distributed.worker.memory.pause": False}):
        return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, preload=[__name__],
                            dashboard_address="127.0.0.1:0", scheduler_kwargs={"dashboard": False},
                            silence_logs=logging.WARNING if verbose else logging.CRITICAL)


def _cores() -> int:
    return os.cpu_count() or 1


def dask_setup(worker: Any) -> None:
    """Preloaded by the workers of osmgap's LocalCluster: Ctrl-C (SIGINT to the terminal's whole
    process group) is this process's to handle; in each worker it printed a 33-line traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


_NOT_DASK = "answers, but not as a Dask scheduler (the dashboard's port? a scheduler listens on 8786 unless told otherwise): "


def _answers_as_scheduler(address: str) -> None:
    """InputError unless a Dask scheduler answers at ``address`` within the connect timeout.
    Dask's client waited forever for the handshake of a port that answers otherwise (the
    dashboard's, 8787), and read a web server's error page as a frame of 3 EiB (MemoryError)."""
    from distributed.comm import connect
    from distributed.security import Security

    async def identity() -> Any:
        comm = await connect(address, timeout=CONNECT_TIMEOUT_S, **Security().get_connection_args("client"))
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            comm.abort()

    try:
        answer = asyncio.run(asyncio.wait_for(identity(), 2 * CONNECT_TIMEOUT_S))
    except TimeoutError:  # connected, and no answer to Dask's handshake (an OSError too: first)
        raise InputError(address, _NOT_DASK + f"no answer to Dask's handshake in {2 * CONNECT_TIMEOUT_S} s") from None
    except OSError as exc:  # refused, unreachable, no such host, timed out connecting
        raise InputError(address, f"cannot reach the Dask scheduler ({one_line(exc)})") from None
    except Exception as exc:  # noqa: BLE001  # it answered, but not as Dask does (its bytes read as a 3 EiB frame)
        raise InputError(address, _NOT_DASK + f"its answer is no Dask message ({type(exc).__name__})") from None
    kind = answer.get("type") if isinstance(answer, dict) else None
    if kind != "Scheduler":
        raise InputError(address, f"is a Dask {kind or 'server'}, not the scheduler: give the address "
                                  "the workers were started with")


def _check_cluster(client: Any, address: str) -> None:
    """InputError unless the scheduler can load osmgap's jobs (it unpickles them) and every
    worker runs this osmgap (version, code and shipped model): a worker without osmgap dropped
    out of the cluster at its first job and the run waited forever; one with other code would
    add its tiles to this run's. Other versions of Dask's own packages are warned about (Dask's
    warning is a Python warning, which osmgap shows only with -v)."""
    probe = _osmgap_probe()
    here = probe()
    try:
        scheduler = client.run_on_scheduler(probe)
    except Exception as exc:  # noqa: BLE001  # an older scheduler refusing to unpickle: the same problem
        scheduler = {"error": one_line(exc)}
    if not scheduler.get("osmgap"):
        raise InputError(address, "the Dask scheduler cannot import osmgap, and it unpickles osmgap's jobs: "
                                  f"install osmgap {here['osmgap']} where the scheduler runs "
                                  f"({scheduler.get('error', 'no osmgap there')})")
    workers = client.run(probe, on_error="return")
    other = {w: p for w, p in workers.items()
             if not isinstance(p, dict) or (p.get("osmgap"), p.get("digest")) != (here["osmgap"], here["digest"])}
    if other:
        said = sorted({_osmgap_said(p, here["osmgap"]) for p in other.values()})
        raise InputError(address, f"{len(other)} of its {len(workers)} Dask workers ({', '.join(sorted(other)[:3])}"
                                  f"{', ...' if len(other) > 3 else ''}) run {' / '.join(said)}, this machine osmgap "
                                  f"{here['osmgap']}: install the same osmgap on every worker")
    _warn_versions(client, address)


def _osmgap_said(probe: Any, version: str) -> str:
    """What a worker's answer to the probe says it runs, against this machine's ``version``."""
    if not isinstance(probe, dict):
        return f"a worker that failed to answer ({one_line(probe) if isinstance(probe, BaseException) else probe})"
    if not probe.get("osmgap"):
        return "no osmgap (it cannot import it)"
    return f"osmgap {probe['osmgap']}" + (" with other code or model files" if probe["osmgap"] == version else "")


@functools.lru_cache(maxsize=1)
def _osmgap_probe() -> Callable[[], dict[str, Any]]:
    """A function that says which osmgap a process has: its version and a digest of its code and
    shipped model. Made here, so that cloudpickle sends it by value: a worker without osmgap can
    run it (one sent by name failed to unpickle there, and the worker dropped out)."""
    digests: dict[str, str] = {}

    def probe() -> dict[str, Any]:
        import hashlib
        import importlib
        from pathlib import Path

        try:
            osmgap = importlib.import_module("osmgap")
        except ImportError as exc:
            return {"osmgap": None, "error": str(exc)}
        root = Path(osmgap.__file__ or ".").parent
        key = str(root)
        if key not in digests:  # one walk per process (the client's, a worker's)
            h = hashlib.sha256()
            for path in sorted(p for p in root.rglob("*") if p.suffix in (".py", ".pt") and "__pycache__" not in p.parts):
                h.update(path.relative_to(root).as_posix().encode() + b"\0")
                with path.open("rb") as f:
                    h.update(hashlib.file_digest(f, "sha256").digest())
            digests[key] = h.hexdigest()
        return {"osmgap": getattr(osmgap, "__version__", "?"), "digest": digests[key]}

    return probe


def _warn_versions(client: Any, address: str) -> None:
    versions = client.get_versions()
    here = versions["client"]["packages"]
    hosts = [versions["scheduler"]["packages"], *((v or {}).get("packages", {}) for v in versions["workers"].values())]
    python = ".".join(str(n) for n in sys.version_info[:2])
    differ = []
    for pkg in ("python", *CLUSTER_PACKAGES):
        mine = python if pkg == "python" else here.get(pkg)
        theirs = {(str(p.get(pkg) or "")[:len(python)] if pkg == "python" else p.get(pkg)) for p in hosts}
        if theirs - {mine}:
            differ.append(f"{pkg} {'/'.join(sorted(str(v) for v in theirs - {mine}))} there, {mine} here")
    if differ:
        log.warning("%s: the Dask cluster runs other versions than this machine (%s): its tasks may fail to unpickle "
                    "or behave otherwise; install the same versions", address, "; ".join(differ))


class _Watch:
    """How many jobs may be in flight, and what the client says while none finishes: Dask
    waits without a word for a worker, or for workers paused for memory to go on."""

    def __init__(self, client: Any, where: str, label: str, remote: bool):
        self.client, self.where, self.label, self.remote = client, where, label, remote
        self.since = time.monotonic()  # the last job finished, or the start
        self.warned = False
        self.threads: dict[str, int] = {}
        self.look()

    def look(self) -> dict[str, Any]:
        """The cluster's workers now (and their threads, for :meth:`in_flight`)."""
        try:
            workers: dict[str, Any] = self.client.scheduler_info(n_workers=-1).get("workers", {})
        except (OSError, CancelledError) as exc:
            raise self.lost(exc) from None
        self.threads = {w: int(info.get("nthreads") or 1) for w, info in workers.items()}
        return workers

    def in_flight(self) -> int:
        """At most this many jobs at once: per worker IN_FLIGHT_PER_WORKER, one more per thread
        past its first (an existing cluster's 16-thread worker ran 4 jobs at a time)."""
        return max(IN_FLIGHT_PER_WORKER, sum(IN_FLIGHT_PER_WORKER - 1 + t for t in self.threads.values()))

    def finished(self) -> None:
        self.since = time.monotonic()
        self.warned = False

    def idle(self) -> None:
        """No job finished for WATCH_S: warn once (STALL_WARN_S) and give up (ServiceError) when
        no worker is there to run one, or every worker is paused for memory."""
        workers = self.look()
        stalled = time.monotonic() - self.since
        paused = [info for info in workers.values() if str(info.get("status", "")).endswith("paused")]
        if workers and len(paused) < len(workers):
            return
        if not workers:
            what = (f"has no worker (start them with `dask worker {self.where.split()[-1]}`)" if self.remote
                    else "has no worker: they died as they started")
            give_up = NO_WORKERS_S
        else:
            limit = min(int(info.get("memory_limit") or 0) for info in paused)
            what = (f"has every worker paused for memory (a worker may use {limit / 2**30:.1f} GiB, and one holding the "
                    "model uses ~1 GiB: give each worker more memory, `dask worker --memory-limit`, or start fewer "
                    "on a machine)")
            give_up = PAUSED_S
        if stalled >= give_up:
            raise ServiceError(self.where, f"{what}; nothing ran for {stalled:.0f} s{self.kept()}")
        if stalled >= STALL_WARN_S and not self.warned:
            self.warned = True
            log.warning("%s %s: waiting up to %.0f s more", self.where, what, give_up - stalled)

    def kept(self) -> str:
        """What a failed run leaves for the next: tiles are kept (osmgap.scale.tiled)."""
        return f"; the {self.label} finished so far are kept: run again with --resume" if self.label == "tiles" else ""

    def lost(self, exc: BaseException) -> ServiceError:
        why = "" if isinstance(exc, CancelledError) else f" ({one_line(exc)})"  # Dask's words for it: "re-run your work"
        return ServiceError(self.where, f"the connection to the scheduler was lost mid-run{why}{self.kept()}")

    def killed(self, exc: BaseException) -> ServiceError:
        remedy = ("give each worker more memory (`dask worker --memory-limit`)" if self.remote else
                  "run fewer --workers")
        least = min((int(info.get("memory_limit") or 0) for info in self.look().values()), default=0)
        each = f", each may use {least / 2**30:.1f} GiB" if least else ""
        return ServiceError(self.where, f"a job's Dask worker died each time it ran it (killed for memory{each}?): "
                                        f"{remedy} or a smaller --tile-size{self.kept()}")


def _results(client: Any, func: Callable[[Any], Any], jobs: Sequence[Any], watch: _Watch) -> Iterator[Any]:
    """Each job's result as it finishes (any order), with at most ``watch.in_flight()`` in flight.
    Finished futures come through a queue that is read with a timeout (``distributed.wait``'s
    own timeout left "Future exception was never retrieved" on stderr each time it ran out)."""
    from distributed.scheduler import KilledWorker

    finished: queue.Queue[Any] = queue.Queue()
    queued = iter(jobs)

    def submit(job: Any) -> Any:
        future = client.submit(guarded, func, job, pure=False)
        future.add_done_callback(finished.put)  # done, erred or cancelled (a lost scheduler)
        return future

    pending = {submit(job) for job in _take(queued, watch.in_flight())}
    looked = time.monotonic()
    while pending:
        try:
            future = finished.get(timeout=WATCH_S)
        except queue.Empty:
            watch.idle()
            looked = time.monotonic()
            continue
        pending.discard(future)
        try:
            result = future.result()
        except KilledWorker as exc:
            raise watch.killed(exc) from None
        except CancelledError as exc:  # the scheduler is gone: Dask cancelled every future
            raise watch.lost(exc) from None
        future.release()
        watch.finished()
        if time.monotonic() - looked > WATCH_S:  # workers come and go: so does the number in flight
            watch.look()
            looked = time.monotonic()
        pending |= {submit(job) for job in _take(queued, watch.in_flight() - len(pending))}
        yield result


@contextmanager
def dask_logs_at(level: int) -> Iterator[None]:
    """Dask's loggers at ``level`` or above for the block, unless osmgap shows INFO (-v): their
    lines (nannies, workers, "killed by signal 9" as the cluster closes) pass the root handler
    under osmgap's prefix and read as osmgap's own, or as its failures. Also the lines Dask logs
    under a logger named after a file's path, outside its own loggers (the traceback of a lost
    scheduler's reconnection, cancelled as the client closes, came out as "osmgap: ...")."""
    if logging.getLogger().getEffectiveLevel() <= logging.INFO:
        yield
        return
    import dask
    import distributed
    roots = tuple(os.path.dirname(m.__file__ or "") + os.sep for m in (dask, distributed))

    def below(record: logging.LogRecord) -> bool:
        return record.levelno >= level or not record.pathname.startswith(roots)

    loggers = [logging.getLogger(name) for name in ("distributed", "dask")]
    before = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(max(lg.getEffectiveLevel(), level))
    handlers = list(logging.getLogger().handlers)
    for handler in handlers:
        handler.addFilter(below)
    try:
        yield
    finally:
        for lg, was in zip(loggers, before):
            lg.setLevel(was)
        for handler in handlers:
            handler.removeFilter(below)


def _take(jobs: Iterator[Any], n: int) -> list[Any]:
    out: list[Any] = []
    if n <= 0:
        return out
    for job in jobs:
        out.append(job)
        if len(out) == n:
            break
    return out
