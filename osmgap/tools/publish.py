"""Publish the suggestions of a diff output directory as MapRoulette tasks.

Creates the challenge in --project (or updates it, found by name), uploads one task per
suggestion as line-by-line GeoJSON with removeUnmatched, so gaps that went away leave the
challenge; skips suggestions the state knows as dismissed or fixed; splits beyond --max-tasks
into "NAME (part 2)", ... Re-publishing the same run sends no write. The API key comes from
$MAPROULETTE_API_KEY or the config file and is never printed; --dry-run writes the requests
to files instead of sending them.
"""
from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING

from osmgap.errors import InputError
from osmgap.maproulette.challenge import DEFAULT_CHECKIN_COMMENT, MAX_TASKS_PER_CHALLENGE, PriorityThresholds
from osmgap.tools.options import (
    add_maproulette_arguments,
    add_workspace_arguments,
    call_maproulette,
    make_client,
    non_negative_float,
    number,
    open_store,
    path_arg,
    positive_int,
    state_locked,
    state_path,
)

if TYPE_CHECKING:
    from osmgap.maproulette.api import MapRouletteClient
    from osmgap.maproulette.publish import PublishOptions, PublishResult
    from osmgap.workspace.outputs import DiffOutputs
    from osmgap.workspace.store import Store

HELP = "publish suggestions as MapRoulette tasks"
PRIORITY = number(int, low=-1, high=2)  # suggestion priorities are 0..2; -1: none at this level


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_workspace_arguments(p)
    p.add_argument("--challenge", required=True, help="challenge name (parts beyond --max-tasks get ' (part N)')")
    p.add_argument("--project", required=True, type=positive_int, help="MapRoulette project id")
    add_maproulette_arguments(p)
    p.add_argument("--instruction", help="task instruction; {{property}} is replaced by the task's property (default: a text "
                        "for the run's evidence, imagery, candidates or GPS, naming only what every task has)")
    p.add_argument("--instruction-file", type=path_arg, help="read the instruction from this file")
    p.add_argument("--checkin-comment", default=DEFAULT_CHECKIN_COMMENT, help="changeset comment")
    p.add_argument("--source-cleared", action="store_true",
                   help="with --cooperative on a candidates or GPS run: the road source's (or the traces') licence "
                        "allows their geometry in OSM and the import is agreed (OSM import guidelines)")
    p.add_argument("--cooperative", action="store_true",
                   help="attach each road as an osmChange, so JOSM opens it pre-drawn (cleared imagery only)")
    p.add_argument("--max-tasks", type=number(int, low=1, high=MAX_TASKS_PER_CHALLENGE), default=MAX_TASKS_PER_CHALLENGE,
                   help="tasks per challenge (default %(default)s, MapRoulette's cap)")
    d = PriorityThresholds()
    p.add_argument("--high-priority", type=PRIORITY, default=d.high_priority,
                   help="task property priority <= this: MapRoulette high (default %(default)s; 0 high .. 2 low)")
    p.add_argument("--medium-priority", type=PRIORITY, default=d.medium_priority,
                   help="priority <= this: medium, above it: low (default %(default)s)")
    p.add_argument("--high-routing-impact", type=non_negative_float, default=d.high_routing_impact_m,
                   help="routing_impact (metres of detour removed) >= this: high (default %(default)s)")


def run(args: argparse.Namespace) -> int:
    with state_locked(None if args.dry_run else state_path(args)):  # a dry run writes no state
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from osmgap.maproulette.publish import check_project, plan_publish
    from osmgap.workspace.outputs import read_outputs
    from osmgap.workspace.tracking import record_run

    options = _options(args)
    outputs = read_outputs(args.out)
    client = make_client(args)
    statuses = {}  # read from the state if there is one, writing nothing
    if state_path(args).exists() and state_path(args).stat().st_size:  # an empty file records nothing
        with open_store(args, create=False) as store:
            statuses = store.statuses(outputs.aoi_name)
    if args.dry_run:
        return _publish(outputs, statuses, options, client, None, args)
    plan_publish(outputs, statuses, options)  # bad outputs or options are refused before the state is touched
    if call_maproulette(client, args, "publish", lambda: check_project(client, options)) is None:
        return 1  # the server failed (said on stderr); a wrong project or key is an InputError: exit 2
    with open_store(args) as store:
        recorded = record_run(store, outputs)  # no-op when `diff --state` recorded it already
        if not recorded.already_recorded and len(store.runs(outputs.aoi_name)) > 1:
            logging.getLogger(__name__).warning(
                "WARNING: %s: this run was not recorded by `diff --state`, so its ids were not matched to the "
                "state's: a gap whose id moved since the last run (a way redrawn near it) is published as a new "
                "task, and a mapper's verdict on the old one does not follow it; run diff with --state %s",
                args.out, state_path(args))
        return _publish(outputs, store.statuses(outputs.aoi_name), options, client, store, args)


def _publish(outputs: DiffOutputs, statuses: dict[str, str], options: PublishOptions, client: MapRouletteClient,
             store: Store | None, args: argparse.Namespace) -> int:
    from osmgap.maproulette.publish import check_project, execute_publish, plan_publish

    plan = plan_publish(outputs, statuses, options)
    skipped = ", ".join(f"{n} {status}" for status, n in sorted(plan.skipped.items())) or "none"
    print(f"{sum(len(p.ids) for p in plan.parts)} task(s) in {len(plan.parts)} challenge(s); left out: {skipped}")
    if plan.warning:
        print(f"osmgap: {plan.warning} (also said in the challenge description)")
    def send() -> PublishResult:
        if store is None:  # a dry run; a real one asked before opening the state
            check_project(client, options)
        return execute_publish(plan, client, options, store)

    result = call_maproulette(client, args, "publish", send)
    if result is None:
        return 1
    for part in result.parts:
        print(f"challenge {part.name!r} (id {part.challenge_id}): {part.challenge}, "
              f"{part.tasks} task(s) {'uploaded' if part.uploaded else 'unchanged, not re-uploaded'}")
    for cid in result.emptied:
        print(f"challenge id {cid}: no longer needed, its open tasks removed")
    return 0


def _options(args: argparse.Namespace) -> PublishOptions:
    from osmgap.maproulette.publish import PublishOptions

    instruction = args.instruction
    if args.instruction_file:
        try:
            instruction = args.instruction_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(args.instruction_file, f"cannot read the instruction ({exc})") from None
    thresholds = PriorityThresholds(args.high_priority, args.medium_priority, args.high_routing_impact)
    extra = {"instruction": instruction} if instruction else {}
    return PublishOptions(args.challenge, args.project, checkin_comment=args.checkin_comment,
                          cooperative=args.cooperative, source_cleared=args.source_cleared, max_tasks=args.max_tasks, thresholds=thresholds, **extra)
