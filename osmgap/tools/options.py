"""Options that several verbs share, each defined once so their help texts cannot drift: the
area and its sources (``--aoi``, ``--imagery``, ``--osm``, ``--model``, ``--out``,
``--cache-dir``), the workspace (output directory, state file) and the MapRoulette connection.

Not a verb itself. Like every module under ``osmgap.tools`` it imports nothing heavy at the
top, so ``osmgap --help`` answers without loading torch, rasterio or dask.
"""
from __future__ import annotations

import argparse
import difflib
import math
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TypeVar

from osmgap.errors import InputError, one_line
from osmgap.maproulette.config import DEFAULT_CONFIG, DEFAULT_TIMEOUT

if TYPE_CHECKING:
    from osmgap.export.scanmap import Basemap
    from osmgap.maproulette.api import MapRouletteClient
    from osmgap.sources.tile_fetcher import XyzOptions
    from osmgap.workspace.store import Store

DRY_RUN_DIRNAME = "maproulette-dry-run"
T = TypeVar("T")
N = TypeVar("N", int, float)
WINDOW_STEP_PX = 32  # the encoders' total stride: inference windows and training crops are multiples of it
MAX_WORKERS = 256  # Dask worker processes on one machine; more is a typo, not a plan


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are one line on stderr (no usage block), exit 2: a cron log or a
    wrapper reads "osmgap diff: error: argument --tile: ..." and nothing else."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {' '.join(message.split())}{self._did_you_mean(message)}", file=sys.stderr)
        raise SystemExit(2)

    def _did_you_mean(self, message: str) -> str:
        """For a mistyped option (``--imagry``), the nearest options of any verb; for an option of
        other verbs only (``report --name``), which verbs take it; and where to look."""
        if not message.startswith("unrecognized arguments:"):
            return ""
        verbs: dict[str, list[str]] = {}  # option -> the verbs that take it
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, verb in action.choices.items():
                    for option in verb._option_string_actions:
                        verbs.setdefault(option, []).append(name)
        known = sorted(set(self._option_string_actions) | set(verbs))
        typed = [w.split("=", 1)[0] for w in message.split(":", 1)[1].split() if w.startswith("--")]
        elsewhere = [f"{w} is an option of {', '.join(verbs[w])} only" for w in typed if w in verbs]
        near = [m for w in typed if w not in verbs for m in difflib.get_close_matches(w, known, n=1, cutoff=0.75)]
        hint = "; ".join(elsewhere + ([f"did you mean {' or '.join(near)}?"] if near else []))
        if not hint:
            return " (see --help)"
        return f" ({hint}{' ' if near else '; '}see --help)"


def number(kind: type[N], *, low: N | None = None, high: N | None = None, above: N | None = None,
           step: int | None = None) -> Callable[[str], N]:
    """An argparse ``type=``: ``kind`` parsed from the text, finite, within ``low``..``high``
    (inclusive), greater than ``above``, a multiple of ``step``; else argparse's one-line error."""
    what = _describe(kind, low, high, above, step)

    def parse(text: str) -> N:
        try:
            value = kind(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"expected {what}, not {text!r}") from None
        if not ((kind is int or math.isfinite(value)) and (low is None or value >= low) and (high is None or value <= high)
                and (above is None or value > above) and (step is None or value % step == 0)):
            raise argparse.ArgumentTypeError(f"expected {what}, not {text!r}")
        return value

    parse.__name__ = what
    return parse


def _describe(kind: type, low: float | None, high: float | None, above: float | None, step: int | None) -> str:
    """What a value must be, in words: 'a whole number from 0 to 24', 'a multiple of 32 >= 32', ..."""
    noun = f"a multiple of {step}" if step else "a whole number" if kind is int else "a finite number"
    if low is not None and high is not None:
        return f"{noun} from {low:g} to {high:g}"
    bounds = [f"{op} {v:g}" for op, v in ((">=", low), (">", above), ("<=", high)) if v is not None]
    return " ".join([noun, *bounds])


positive_float = number(float, above=0.0)
non_negative_float = number(float, low=0.0)
positive_int = number(int, low=1)
non_negative_int = number(int, low=0)
window_px = number(int, low=WINDOW_STEP_PX, step=WINDOW_STEP_PX)  # --tile, --crop


def float_list(item: Callable[[str], float]) -> Callable[[str], tuple[float, ...]]:
    """An argparse ``type=`` for "1,3": one or more comma-separated values, each checked by ``item``."""
    def parse(text: str) -> tuple[float, ...]:
        try:
            values = tuple(item(v) for v in text.split(",") if v.strip())
        except argparse.ArgumentTypeError:
            values = ()
        if not values:
            raise argparse.ArgumentTypeError(f"expected {item.__name__}, comma-separated, not {text!r}")
        return values
    parse.__name__ = f"{item.__name__}, comma-separated"
    return parse


def check_window(args: argparse.Namespace) -> None:
    """--overlap must leave each inference window something of its own."""
    if args.overlap >= args.tile:
        raise InputError("--overlap", f"{args.overlap} must be smaller than --tile ({args.tile})")


def check_model(path: str | None) -> None:
    """A given model checkpoint is read and checked in full before any other work (a bad one is
    exit 2 naming the file, not an error after the OSM download)."""
    if path:
        from osmgap.model.nets import load_checkpoint

        load_checkpoint(path, "cpu")


def add_aoi_argument(p: argparse.ArgumentParser | argparse._ArgumentGroup, *, required: bool = True,
                     what: str = "") -> None:
    p.add_argument("--aoi", type=input_arg, required=required,
                   help=f"GeoJSON polygon file, sample AOI directory, or minlon,minlat,maxlon,maxlat{what}")


def add_name_argument(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    p.add_argument("--name", help="the AOI's name, shown in the outputs and keying its history in a state file "
                                  "(default: the AOI file's 'name', else its file name, or a sample AOI "
                                  "directory's name; a bbox recorded with --state needs one)")


def check_state_name(args: argparse.Namespace) -> None:
    """A bbox has no name of its own: recorded into a state without --name, every bbox would
    share one history (two areas merged into one report), so it is refused before any work."""
    from osmgap.core.aoi import is_bbox

    if getattr(args, "state", None) and args.name is None and is_bbox(args.aoi):
        raise InputError("--aoi", f"{args.aoi} is a bbox, which has no name: give --name NAME to record "
                                  "it in a state file (its runs are kept under that name)")


def add_basemap_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--basemap", type=_basemap, default=_basemap("osm"), metavar="URL|osm|none",
                   help="background map of the page: a tile URL with {z}/{x}/{y} (http or https), 'osm' "
                        "(OpenStreetMap's standard tiles, the default) or 'none' (no network at all)")


def _basemap(text: str) -> Basemap | None:
    from osmgap.export.scanmap import parse_basemap

    try:
        return parse_basemap(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(exc.problem) from None


def path_arg(text: str) -> Path:
    """A path argument: an empty one is refused, not read as '.' (``--out "$OUT"`` with OUT unset
    wrote a run's files into the working folder, and replaced a map.html of the user's there)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path (an unset shell variable?)")
    return Path(text)


def input_arg(text: str) -> str:
    """An input argument: an empty one is refused; read as not given, a sample AOI's own imagery
    or OSM stood in for ``--imagery "$IMG"`` with IMG unset, without a word."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty value (an unset shell variable?)")
    return text


def add_out_argument(p: argparse.ArgumentParser, what: str = "output directory") -> None:
    p.add_argument("--out", required=True, type=path_arg, help=what)


def add_imagery_argument(p: argparse.ArgumentParser | argparse._ArgumentGroup, *, required: bool = False,
                         what: str = " (default: the sample AOI's)") -> None:
    p.add_argument("--imagery", type=input_arg, required=required,
                   help=f"GeoTIFF/COG of the area: any CRS, 8/16-bit, 1-4+ bands{what}")
    add_bands_argument(p)


def add_bands_argument(p: argparse.ArgumentParser | argparse._ArgumentGroup, flag: str = "--bands",
                       whose: str = "the imagery's", default: str | None = None) -> None:
    """``flag`` (R,G,B) choosing which bands of ``whose`` image are read as red, green and blue."""
    p.add_argument(flag, type=band_list, metavar="R,G,B",
                   help=f"{whose} bands to read as red, green, blue, 1-based (one band: read as grey). Default: "
                        + (default or "bands named red, green, blue, else the colour interpretation, else the "
                                      "first three; a multispectral image needs it (WorldView-2/3 8-band: 5,3,2)"))


def band_list(text: str) -> tuple[int, ...]:
    """An argparse ``type=`` for --bands: one band or three, 1-based."""
    bands = tuple(int(b) for b in float_list(positive_int)(text))
    if len(bands) not in (1, 3):
        raise argparse.ArgumentTypeError(f"one band or three (red,green,blue), not {text!r}")
    return bands


def add_osm_argument(p: argparse.ArgumentParser | argparse._ArgumentGroup, what: str = " (default: the sample AOI's)",
                     graph_crs: bool = False) -> None:
    """--osm; with ``graph_crs`` also --gps-crs, for a verb that reads no traces (diff and scan
    define --gps-crs for both)."""
    p.add_argument("--osm", type=input_arg, help=".osm/.osm.pbf/.osm.bz2 file, GeoJSON of OSM ways (with osm_id), 'overpass', or a "
                             f"mapconstruction graph (VERTICES,EDGES or a folder with both; CRS from --osm-crs in diff and scan, else --gps-crs){what}")
    if graph_crs:
        p.add_argument("--gps-crs", metavar="EPSG:N", help="CRS of a mapconstruction graph's bare coordinates")


def add_model_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", type=input_arg, help="model checkpoint (default, or 'default': the shipped model)")
    p.add_argument("--fp32", action="store_true",
                   help="run the model in full fp32 (default: bf16 autocast where the GPU or CPU has native bf16, "
                        "~2x faster; eval IoU moves by < 0.005)")


VIEW_CHOICES = (1, 2, 4, 8)  # osmgap.model.infer.VIEW_CHOICES, not imported: the CLI starts without torch


def add_views_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--views", type=int, choices=VIEW_CHOICES,
                   help="orientations every window is run in, their probabilities averaged (quarter turns, then "
                        "mirror images; each is a forward pass): sees roads better in imagery unlike the training "
                        "images (bench/generalize.py). Default: 2 on a CPU, 8 on a GPU")
    p.add_argument("--tta", dest="views", action="store_const", const=4, help="same as --views 4")


def add_window_arguments(p: argparse.ArgumentParser) -> None:
    """The sliding inference window of the model: --tile, --overlap, --batch."""
    p.add_argument("--tile", type=window_px, default=512,
                   help=f"inference window, pixels (a multiple of {WINDOW_STEP_PX}; default %(default)s)")
    p.add_argument("--overlap", type=non_negative_int, default=64,
                   help="overlap between windows, pixels (less than --tile; default %(default)s)")
    p.add_argument("--batch", type=positive_int, default=None,
                   help="windows per forward pass (default: from free memory; at most 2 on a CPU, 32 on a GPU)")


OVERPASS_KEEP_H = 6  # osmgap.sources.overpass.OVERPASS_MAX_AGE_S, in hours (not imported to parse)


def add_cache_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache-dir", type=path_arg, help="cache for Overpass responses and map tiles")
    p.add_argument("--osm-max-age", type=number(float, low=0.0), default=None, metavar="HOURS",
                   help=f"--osm overpass: ask Overpass again when its cached answer is older than this (default "
                        f"{OVERPASS_KEEP_H}; 0: always ask, as after mapping some of the roads)")


def add_area_arguments(p: argparse.ArgumentParser) -> None:
    """What a verb that runs the model over an area takes: the AOI and its sources, the output
    folder, the model and its window, the cache."""
    add_aoi_argument(p)
    add_name_argument(p)
    add_out_argument(p)
    add_imagery_argument(p)
    add_osm_argument(p)
    add_model_argument(p)
    add_window_arguments(p)
    add_cache_argument(p)


def check_area_arguments(args: argparse.Namespace) -> None:
    """What argparse cannot check alone, before any work: the window fits, the model loads."""
    check_window(args)
    check_model(args.model)


def add_workspace_arguments(p: argparse.ArgumentParser) -> None:
    add_out_argument(p, "output directory of `osmgap diff`")
    p.add_argument("--state", type=path_arg, help="state file (default: OUT/../osmgap.sqlite)")


def add_maproulette_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--api-url", help="MapRoulette API (default: $MAPROULETTE_API_URL, the config file, "
                                     "or https://maproulette.org/api/v2)")
    p.add_argument("--config", type=path_arg, help=f"TOML with api_key (and api_url); default {DEFAULT_CONFIG}; "
                                               "$MAPROULETTE_API_KEY wins")
    p.add_argument("--dry-run", action="store_true",
                   help="send nothing; write each request that would be sent (key left out) to files")
    p.add_argument("--dry-run-dir", type=path_arg, help=f"where --dry-run writes, one folder per verb (default: OUT/{DRY_RUN_DIRNAME})")
    p.add_argument("--retries", type=number(int, low=0, high=20), default=4,
                   help="retries on timeouts, 429 and 5xx (default %(default)s)")
    p.add_argument("--timeout", type=positive_float, default=DEFAULT_TIMEOUT[1],
                   help="seconds to wait for an answer (default %(default)s)")


def state_path(args: argparse.Namespace) -> Path:
    from osmgap.workspace.store import default_state_path

    return Path(args.state or default_state_path(args.out))


@contextmanager
def state_locked(state: Path | None) -> Iterator[None]:
    """Hold the lock of the state a verb writes (osmgap.workspace.lock) for the block: Busy (exit
    3) while another osmgap process holds it. Taken however new the state's folder (made as the
    state's would be), so a new workspace's first run is locked too; a run that leaves no state
    (refused, exit 2) leaves no lock file either. No lock when ``state`` is None (nothing
    written) or its folder takes no lock file: a state this user may only read is not written
    either (report still makes its pages from one)."""
    from osmgap.workspace.lock import exclusive, state_lock_path

    if state is None:
        yield
        return
    with exclusive(state_lock_path(state), keep=lambda: os.path.lexists(state), optional=True):
        yield


def open_store(args: argparse.Namespace, *, create: bool = True) -> Store:
    from osmgap.workspace.store import Store

    return Store(state_path(args), create=create)


def make_client(args: argparse.Namespace) -> MapRouletteClient:
    from osmgap.maproulette.api import DEFAULT_POLICY, MapRouletteClient
    from osmgap.maproulette.config import load_config

    config = load_config(args.api_url, args.config)
    if args.dry_run:
        from osmgap.core.atomic import check_output_dir

        check_output_dir(args.dry_run_dir or Path(args.out) / DRY_RUN_DIRNAME)  # said before any request is planned
    return MapRouletteClient(config, dry_run=args.dry_run, policy=replace(DEFAULT_POLICY, retries=max(0, args.retries)),
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
    """Run ``action``: a MapRoulette failure is said on one line on stderr, the key masked
    (None returned, the verb exits 1); what a dry run would have sent is written out either way."""
    from osmgap.core.secrets import redact
    from osmgap.maproulette.api import MapRouletteError

    try:
        return action()
    except MapRouletteError as exc:
        print(f"osmgap: error: MapRoulette: {redact(one_line(exc), client.secrets)}", file=sys.stderr)
        return None
    finally:
        finish_dry_run(client, args, verb)


def add_xyz_arguments(g: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """Imagery from a tile server instead of a file (``diff``, ``scan``)."""
    g.add_argument("--xyz", type=input_arg, metavar="URL", help="imagery from a tile server: https://.../{z}/{x}/{y}.png ({-y}: TMS)")
    g.add_argument("--xyz-zoom", type=number(int, low=0, high=24), default=17,
                   help="zoom level of the tiles, 0-24 (default %(default)s)")
    g.add_argument("--xyz-attribution", default="", help="attribution of the tile imagery")
    g.add_argument("--xyz-licence", default="unknown", help="licence of the tile imagery")
    g.add_argument("--xyz-concurrency", type=number(int, low=1, high=32), default=4,
                   help="requests in flight at once, per process/Dask worker, 1-32 (default %(default)s)")
    g.add_argument("--xyz-cache-mb", type=number(int, low=1),  # default: tile_fetcher's, not imported to parse
                   help="size budget of the tile cache in MB, every server's tiles together; after a run the "
                        "oldest-written tiles are removed past it (default 4096)")


def check_xyz_arguments(args: argparse.Namespace) -> None:
    if args.xyz and args.bands:
        raise InputError("--bands", "chooses the bands of an --imagery file; --xyz tiles are red, green, blue already")
    if args.xyz and args.imagery:
        raise InputError("--xyz", "is imagery from a tile server instead of an --imagery file: give one of them")


def xyz_options(args: argparse.Namespace) -> XyzOptions | None:
    """The tile server the arguments name (None: no --xyz)."""
    from osmgap.sources.tile_fetcher import XyzOptions

    if not args.xyz:
        return None
    return XyzOptions(args.xyz, args.xyz_zoom, args.xyz_attribution, args.xyz_licence,
                      cache_dir=args.cache_dir / "xyz" if args.cache_dir else None,
                      concurrency=args.xyz_concurrency,
                      **({"cache_max_mb": args.xyz_cache_mb} if args.xyz_cache_mb else {}))
