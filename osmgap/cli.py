"""The ``osmgap`` command: one subcommand per verb, each in ``osmgap/tools/<verb>.py``.

Exit codes: 0 done, 2 bad input (one line on stderr naming the file and the problem),
1 internal error, 3 another run holds the state's lock, 130 interrupted (Ctrl-C: the shell's
128 + SIGINT, so a wrapper does not take a user's stop for a failure of osmgap).
"""
from __future__ import annotations

import argparse
import logging
import re
import sys
from importlib import import_module

from osmgap import __version__
from osmgap.core.precision import forced_fp32
from osmgap.core.secrets import mask_log_handlers
from osmgap.errors import EXIT_BUSY, Busy, InputError, ServiceError, escape_controls, one_line
from osmgap.tools.options import OneLineParser  # its verbs' parsers too: errors on one line

EXIT_INTERRUPTED = 130  # Ctrl-C: 128 + SIGINT, as the shell reports a command it stopped
VERBS = ("diff", "train", "pretrain", "publish", "sync", "report", "run", "scan", "eval", "change")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="osmgap", description="Find roads missing from OpenStreetMap.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    parser.add_argument("--version", action="version", version=f"osmgap {__version__}")
    subparsers = parser.add_subparsers(dest="verb", required=True)
    for verb in VERBS:
        module = import_module(f"osmgap.tools.{verb}")
        sub = subparsers.add_parser(verb, help=module.HELP, description=module.__doc__)
        sub.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                         help="log progress to stderr (also before the verb)")
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser



def join_negative_values(argv: list[str]) -> list[str]:
    """``--aoi -115.2,36.1,...`` -> ``--aoi=-115.2,36.1,...``.

    argparse takes a value that starts with '-' and is not a plain number for an option, so a
    western-hemisphere bbox would be refused; joining it to its option keeps it a value.
    """
    out: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i].startswith("--") and "=" not in argv[i] and i + 1 < len(argv) and re.match(r"^-\d", argv[i + 1]):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(join_negative_values(sys.argv[1:] if argv is None else argv))  # argparse itself exits 2 on bad arguments
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="osmgap: %(message)s", stream=sys.stderr)
    # the libraries' own warnings (rasterio's NotGeoreferencedWarning, shapely's "invalid value",
    # each two lines with a site-packages path) are for -v: osmgap says what matters in its words
    logging.captureWarnings(True)
    logging.getLogger("py.warnings").setLevel(logging.WARNING if args.verbose else logging.ERROR)
    # urllib3 warns with a traceback of its own about a server's malformed header line, which
    # osmgap reads anyway (a tile server's answer is judged by its bytes): for -v too
    logging.getLogger("urllib3").setLevel(logging.WARNING if args.verbose else logging.ERROR)
    mask_log_handlers()  # the handler just made masks every key this process has registered
    from osmgap.core.memory import share_malloc_arenas

    share_malloc_arenas()  # before any thread of the run starts
    try:
        with forced_fp32(getattr(args, "fp32", False)):
            return int(args.run(args) or 0)
    except InputError as exc:
        print(f"osmgap: error: {exc}", file=sys.stderr)
        return 2
    except ServiceError as exc:
        print(f"osmgap: error: {exc}", file=sys.stderr)
        return 1
    except Busy as exc:
        print(f"osmgap: another osmgap run is writing the same state ({exc}); nothing done", file=sys.stderr)
        return EXIT_BUSY
    except KeyboardInterrupt:
        print("osmgap: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as exc:  # the machine's, not osmgap's: a full disk, a lost mount, no permission
        if args.verbose:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"osmgap: error: {escape_controls(where)}{exc.strerror or one_line(exc)}", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug: say so plainly, with the traceback when asked
        if args.verbose:
            raise
        print(f"osmgap: internal error: {type(exc).__name__}: {one_line(exc)} (run with -v for the traceback)",
              file=sys.stderr)
        return 1
