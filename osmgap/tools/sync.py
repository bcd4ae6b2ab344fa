"""Read MapRoulette task statuses back into the state.

For every challenge published for the AOI of --out: status 2 (false positive, "Not an issue")
makes the suggestion dismissed for good, 1/5 (fixed, already fixed) fixed; the task ids are
kept for the report. --dry-run writes the requests instead of sending them.
"""
from __future__ import annotations

import argparse

from osmgap.tools.options import (
    add_maproulette_arguments,
    add_workspace_arguments,
    call_maproulette,
    make_client,
    open_store,
    state_locked,
    state_path,
)

HELP = "read MapRoulette task statuses into the state"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_workspace_arguments(p)
    add_maproulette_arguments(p)


def run(args: argparse.Namespace) -> int:
    with state_locked(None if args.dry_run else state_path(args)):  # a dry run writes no state
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from osmgap.maproulette.sync import sync_statuses
    from osmgap.workspace.outputs import read_outputs

    aoi = read_outputs(args.out).aoi_name
    with open_store(args, create=False) as store:
        client = make_client(args)
        counts = call_maproulette(client, args, "sync", lambda: sync_statuses(store, client, aoi))
    if counts is None:
        return 1
    if not counts["challenges"]:
        print(f"{aoi}: nothing published to {client.config.api_url} yet; nothing to sync")
        return 0
    twins = f" ({counts['twins']} more along them: the same roads under other ids)" if counts["twins"] else ""
    print(f"{aoi}: {counts['tasks']} task(s) in {counts['challenges']} challenge(s): {counts['dismissed']} "
          f"newly dismissed{twins}, {counts['fixed']} newly fixed, {counts['unknown']} not osmgap's")
    return 0
