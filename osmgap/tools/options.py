"""Options that several verbs share: the workspace (output directory, state file) and the
MapRoulette connection. Not a verb itself; kept here so each verb module stays a thin wiring.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable, TypeVar

from osmgap.maproulette_api import DEFAULT_TIMEOUT, DryRunTransport, MapRouletteClient, MapRouletteError
from osmgap.maproulette_config import DEFAULT_CONFIG, load_config
from osmgap.store import Store, default_state_path

DRY_RUN_DIRNAME = "maproulette-dry-run"
T = TypeVar("T")


def add_workspace_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, type=Path, help="output directory of `osmgap diff`")
    p.add_argument("--state", type=Path, help="state file (default: OUT/../osmgap.sqlite)")


def add_maproulette_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--api-url", help="MapRoulette API (default: $MAPROULETTE_API_URL, the config file, "
                                     "or https://maproulette.org/api/v2)")
    p.add_argument("--config", type=Path, help=f"TOML with api_key (and api_url); default {DEFAULT_CONFIG}; "
                                               "$MAPROULETTE_API_KEY wins")
    p.add_argument("--dry-run", action="store_true",
                   help="send nothing; write each request that would be sent (key left out) to files")
    p.add_argument("--dry-run-dir", type=Path, help=f"where --dry-run writes, one folder per verb (default: OUT/{DRY_RUN_DIRNAME})")
    p.add_argument("--retries", type=int, default=4, help="retries on timeouts and 5xx (default %(default)s)")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT[1],
                   help="seconds to wait for an answer (default %(default)s)")


def state_path(args: argparse.Namespace) -> Path:
    return args.state or default_state_path(args.out)


def open_store(args: argparse.Namespace, *, create: bool = True) -> Store:
    return Store(state_path(args), create=create)


def make_client(args: argparse.Namespace) -> MapRouletteClient:
    config = load_config(args.api_url, args.config)
    return MapRouletteClient(config, dry_run=args.dry_run, retries=max(0, args.retries),
                             timeout=(DEFAULT_TIMEOUT[0], args.timeout))


def finish_dry_run(client: MapRouletteClient, args: argparse.Namespace, verb: str) -> None:
    """Write what a dry run would have sent, and say where."""
    if not isinstance(client.transport, DryRunTransport):
        return
    directory = (args.dry_run_dir or Path(args.out) / DRY_RUN_DIRNAME) / verb
    files = client.transport.write(directory)
    print(f"dry run: {len(files)} request(s) that would be sent -> {directory}")


def call_maproulette(client: MapRouletteClient, args: argparse.Namespace, verb: str,
                     action: Callable[[], T]) -> T | None:
    """Run ``action``: a MapRoulette failure is said on one line (None returned, the verb exits
    1); what a dry run would have sent is written out either way."""
    try:
        return action()
    except MapRouletteError as exc:
        print(f"osmgap: error: MapRoulette: {exc}")
        return None
    finally:
        finish_dry_run(client, args, verb)
