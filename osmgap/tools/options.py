"""Options that several verbs share, each defined once so their help texts cannot drift: the
area and its sources (``--aoi``, ``--imagery``, ``--osm``, ``--model``, ``--out``,
``--cache-dir``), the workspace (output directory, state file) and the MapRoulette connection.

Not a verb itself. Like every module under ``osmgap.tools`` it imports nothing heavy at the
top, so ``osmgap --help`` answers without loading torch, rasterio or dask.
"""
from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from osmgap.maproulette.config import DEFAULT_CONFIG, DEFAULT_TIMEOUT

if TYPE_CHECKING:
    from osmgap.maproulette.api import MapRouletteClient
    from osmgap.workspace.store import Store

DRY_RUN_DIRNAME = "maproulette-dry-run"
T = TypeVar("T")


def add_aoi_argument(p: argparse.ArgumentParser | argparse._ArgumentGroup, *, required: bool = True,
                     what: str = "") -> None:
    p.add_argument("--aoi", required=required,
                   help=f"GeoJSON polygon file, sample AOI directory, or minlon,minlat,maxlon,maxlat{what}")


def add_out_argument(p: argparse.ArgumentParser, what: str = "output directory") -> None:
    p.add_argument("--out", required=True, type=Path, help=what)


def add_imagery_argument(p: argparse.ArgumentParser | argparse._ArgumentGroup, *, required: bool = False,
                         what: str = " (default: the sample AOI's)") -> None:
    p.add_argument("--imagery", required=required,
                   help=f"GeoTIFF/COG of the area: any CRS, 8/16-bit, 1-4+ bands{what}")


def add_osm_argument(p: argparse.ArgumentParser | argparse._ArgumentGroup, what: str = " (default: the sample AOI's)") -> None:
    p.add_argument("--osm", help=f".osm/.osm.pbf/.osm.bz2 file, GeoJSON of OSM ways (with osm_id), or 'overpass'{what}")


def add_model_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="model checkpoint (default: the shipped model)")


def add_cache_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache-dir", type=Path, help="cache for Overpass responses and map tiles")


def add_workspace_arguments(p: argparse.ArgumentParser) -> None:
    add_out_argument(p, "output directory of `osmgap diff`")
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
    from osmgap.workspace.store import default_state_path

    return Path(args.state or default_state_path(args.out))


def open_store(args: argparse.Namespace, *, create: bool = True) -> Store:
    from osmgap.workspace.store import Store

    return Store(state_path(args), create=create)


def make_client(args: argparse.Namespace) -> MapRouletteClient:
    from osmgap.maproulette.api import MapRouletteClient
    from osmgap.maproulette.config import load_config

    config = load_config(args.api_url, args.config)
    return MapRouletteClient(config, dry_run=args.dry_run, retries=max(0, args.retries),
                             timeout=(DEFAULT_TIMEOUT[0], args.timeout))


def finish_dry_run(client: MapRouletteClient, args: argparse.Namespace, verb: str) -> None:
    """Write what a dry run would have sent, and say where."""
    from osmgap.maproulette.api import DryRunTransport

    if not isinstance(client.transport, DryRunTransport):
        return
    directory = (args.dry_run_dir or Path(args.out) / DRY_RUN_DIRNAME) / verb
    files = client.transport.write(directory)
    print(f"dry run: {len(files)} request(s) that would be sent -> {directory}")


def call_maproulette(client: MapRouletteClient, args: argparse.Namespace, verb: str,
                     action: Callable[[], T]) -> T | None:
    """Run ``action``: a MapRoulette failure is said on one line (None returned, the verb exits
    1); what a dry run would have sent is written out either way."""
    from osmgap.maproulette.api import MapRouletteError

    try:
        return action()
    except MapRouletteError as exc:
        print(f"osmgap: error: MapRoulette: {exc}")
        return None
    finally:
        finish_dry_run(client, args, verb)
