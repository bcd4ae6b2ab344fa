"""Run a watched AOI from its task file: diff, sync, publish, report, as cron would.

Holds an exclusive lock on <state>.lock for the whole run, so two cron runs of one workspace
never overlap; a run that finds the lock taken does nothing and exits 3 (after --wait seconds).
Running it twice in a row changes nothing but a second run record: the same suggestions keep
their status, and the unchanged tasks are not uploaded again.
"""
from __future__ import annotations

import argparse
import os
import sys

from osmgap.errors import EXIT_BUSY, InputError, ServiceError
from osmgap.tools.options import non_negative_float, path_arg
from osmgap.tools.taskfile import load_task
from osmgap.workspace.lock import Busy, exclusive

HELP = "run a task file (tasks/NAME.toml): diff, sync, publish, report, under a lock"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("task", type=path_arg, help="task file, e.g. tasks/paris-1447.toml")
    p.add_argument("--wait", type=non_negative_float, default=0.0,
                   help="seconds to wait for a run of the same workspace to finish (default: do not wait)")


def run(args: argparse.Namespace) -> int:
    spec = load_task(args.task)
    steps = spec.steps()  # every table is checked before anything runs
    try:
        # a run that leaves no state (its diff refused) leaves no lock file either
        with exclusive(spec.lock, args.wait, keep=lambda: os.path.lexists(spec.state)):
            worst = 0
            failed: list[str] = []  # the report says them: cron mails it, and "0 published" read as a quiet week
            for verb, step_args in steps:
                print(f"== {spec.name}: {verb}", flush=True)
                if verb == "report":
                    step_args.failed_steps = failed
                try:
                    rc = int(step_args.run(step_args) or 0)
                except (InputError, ServiceError) as exc:
                    if verb == "diff":
                        raise  # nothing new to sync, publish or report
                    # a failed sync must not keep this week's gaps from being published, nor the
                    # report from being written: said, and the run's exit code says it too
                    print(f"osmgap: error: {verb}: {exc}", file=sys.stderr, flush=True)
                    failed.append(f"This run's {verb} failed: {exc}")
                    rc = 2 if isinstance(exc, InputError) else 1
                else:
                    if rc and verb != "report":
                        failed.append(f"This run's {verb} failed (exit {rc}; its error is in the run's output)")
                if rc and verb == "diff":
                    return rc  # nothing new to sync, publish or report
                worst = worst or rc
            return worst
    except Busy as exc:
        print(f"osmgap: {spec.name}: another run is in progress ({exc}); nothing done")
        return EXIT_BUSY
