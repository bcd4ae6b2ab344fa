"""A watched AOI as a TOML file (``tasks/NAME.toml``): what ``osmgap run`` does, step by step.

Why a file: a weekly cron line should name one thing; the file holds the sources, thresholds,
publish target and schedule, and is reviewed like code. Each table maps one to one onto a
verb's options (``[diff]`` -> ``osmgap diff --key value``; ``true`` is a bare flag, ``false``
turns off a flag that is on by default):

    name = "paris-1447"         # required; also the AOI's name where [diff] aoi is a bbox
    schedule = "weekly"         # for people and the README's crontab line; cron does the timing
    root = ".."                 # relative paths resolve against this, itself relative to the file
    state = "out/osmgap.sqlite" # optional; default: <diff.out>/../osmgap.sqlite (a link followed, as every verb does)
    [diff]                      # required: aoi, out, and any other `osmgap diff` option
    [publish]                   # optional: challenge, project, dry-run, cooperative, ...
    [sync]                      # optional; inherits api-url, config, dry-run from [publish]
    [report]                    # optional: html, markdown, web-url

``run`` adds ``--out`` and ``--state`` to every step, so the tables need not repeat them.
"""
from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Any

import tomllib

from osmgap.errors import InputError, nesting_refused
from osmgap.workspace.lock import state_lock_path

STEPS = ("diff", "sync", "publish", "report")
TOP_KEYS = {"name", "schedule", "root", "state", *STEPS}
# Options whose value is a path, relative to ``root``, inputs too whether the file is there or
# not (a missing one is named where it was looked for, never read from cron's working folder),
# except an input's special values: SPECIAL_VALUES, a bbox ``aoi``, a URL.
OUTPUT_PATHS = {"out", "html", "markdown", "dry-run-dir", "cache-dir"}
INPUT_PATHS = {"aoi", "imagery", "osm", "candidates", "gps", "model", "config", "instruction-file"}
SPECIAL_VALUES = {"osm": {"overpass"}, "model": {"default"}}  # osmgap.sources.overpass.OVERPASS_SPEC, nets' default
URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
INHERITED_BY_SYNC = ("api-url", "config", "dry-run", "dry-run-dir", "retries", "timeout")


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad table as an InputError instead of exiting."""

    def __init__(self, source: Path, verb: str):
        super().__init__(prog=f"[{verb}]", add_help=False)
        self.source = source

    def error(self, message: str) -> None:  # type: ignore[override]
        raise InputError(self.source, f"[{self.prog.strip('[]')}]: {message}")


@dataclass(frozen=True)
class TaskSpec:
    path: Path
    name: str
    schedule: str
    root: Path
    state: Path
    out: Path
    tables: dict[str, dict[str, Any]]

    @property
    def lock(self) -> Path:
        return state_lock_path(self.state)

    def steps(self) -> list[tuple[str, argparse.Namespace]]:
        """(verb, parsed arguments) in run order; sync and publish only with a [publish] table."""
        common = {"out": str(self.out), "state": str(self.state)}
        diff = {**self.tables["diff"], "state": str(self.state)}
        if "name" not in diff and is_bbox_text(str(diff["aoi"])):  # a bbox has no name of its own: the task's
            diff["name"] = self.name
        plan = [("diff", diff)]
        if "publish" in self.tables or "sync" in self.tables:
            inherited = {k: v for k, v in self.tables.get("publish", {}).items() if k in INHERITED_BY_SYNC}
            plan.append(("sync", {**inherited, **self.tables.get("sync", {}), **common}))
        if "publish" in self.tables:
            plan.append(("publish", {**self.tables["publish"], **common}))
        plan.append(("report", {**self.tables.get("report", {}), **common}))
        return [(verb, self.parse(verb, table)) for verb, table in plan]

    def parse(self, verb: str, table: dict[str, Any]) -> argparse.Namespace:
        parser = _Parser(self.path, verb)
        module = import_module(f"osmgap.tools.{verb}")
        module.add_arguments(parser)
        options = parser._option_string_actions
        negatable = {o[len("--no-"):] for o in options if o.startswith("--no-")}
        multi = {o[len("--"):] for o, a in options.items() if o.startswith("--") and _takes_several(a.nargs)}
        args = parser.parse_args(table_argv(table, self.root, self.path, negatable, multi))
        args.run = module.run
        check = getattr(module, "check", None)  # what argparse cannot check alone (osmgap.tools.diff.check)
        if check is not None:
            try:
                check(args)
            except InputError as exc:
                raise InputError(self.path, f"[{verb}]: {exc}") from None
        return args


def is_bbox_text(spec: str) -> bool:
    """Whether ``spec`` is a bbox (a malformed one too: the diff's own check says what is wrong)."""
    from osmgap.core.aoi import is_bbox

    try:
        return is_bbox(spec)
    except InputError:
        return False


def load_task(path: str | Path) -> TaskSpec:
    from osmgap.workspace.store import default_state_path  # the state's module is not needed for --help

    path = Path(path)
    try:
        with nesting_refused(path, "TOML"):
            doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(path, "task file not found") from None
    except OSError as exc:  # no permission, a folder: the user's input, exit 2
        raise InputError(path, f"cannot read the task file ({exc.strerror or exc})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(path, f"not valid TOML ({exc})") from None
    unknown = sorted(set(doc) - TOP_KEYS)
    if unknown:
        raise InputError(path, f"unknown key(s) {unknown}; expected {sorted(TOP_KEYS)}")
    if not isinstance(doc.get("name"), str) or not doc["name"].strip():
        raise InputError(path, "needs name = \"...\"")
    tables = {k: doc[k] for k in STEPS if k in doc}
    for verb, table in tables.items():
        if not isinstance(table, dict):
            raise InputError(path, f"[{verb}] must be a table")
    diff = tables.get("diff")
    if not diff or "aoi" not in diff or "out" not in diff:
        raise InputError(path, "[diff] needs aoi and out")
    root = (path.parent / str(doc.get("root", "."))).resolve()
    out = Path(_resolve(root, "out", str(diff["out"])))
    state = Path(_resolve(root, "state", str(doc["state"]))) if "state" in doc else default_state_path(out)
    return TaskSpec(path, doc["name"], str(doc.get("schedule", "")), root, state, out, tables)


def table_argv(table: dict[str, Any], root: Path, source: Path, negatable: set[str] | None = None,
               multi: set[str] | None = None) -> list[str]:
    """``{"min-length": 30, "dry-run": true}`` -> ``["--min-length", "30", "--dry-run"]``; ``false``
    is ``--no-KEY`` for the flags in ``negatable`` (those on by default), else no flag; a list is
    ``--KEY v1 v2 ...`` for the options in ``multi`` (several values, as ``--gps``), each path
    read against ``root``, and refused for the others, which would keep only one of them."""
    argv: list[str] = []
    for key, value in table.items():
        if isinstance(value, bool):
            argv += [f"--{key}"] if value else [f"--no-{key}"] if key in (negatable or set()) else []
        elif _scalar(value):
            argv.append(f"--{key}={_value(root, key, value)}")
        elif isinstance(value, list) and key in (multi or set()) and all(_scalar(v) for v in value):
            argv += [f"--{key}", *(_value(root, key, v) for v in value)]
        elif isinstance(value, list) and all(_scalar(v) for v in value):
            raise InputError(source, f"{key} = {value!r}: --{key} takes one value, not a list")
        else:
            raise InputError(source, f"{key} = {value!r}: option values must be text, numbers or true/false"
                                     + (f" (or a list of them for {', '.join(sorted(multi))})" if multi else ""))
    return argv


def _scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float)) and not isinstance(value, bool)


def _takes_several(nargs: Any) -> bool:
    return nargs in ("+", "*") or (isinstance(nargs, int) and nargs > 1)


def _value(root: Path, key: str, value: str | int | float) -> str:
    return _resolve(root, key, value) if isinstance(value, str) else str(value)


def _resolve(root: Path, key: str, value: str) -> str:
    """``value`` read against ``root`` where ``key`` takes a path, an input whether it exists
    there or not (README: cron's working folder does not matter), except an input's special
    values (``_special``) and an empty one (which the verb refuses as such)."""
    if key in INPUT_PATHS and (not value.strip() or _special(key, value)):
        return value
    if key not in OUTPUT_PATHS | INPUT_PATHS | {"state"}:
        return value
    if key == "osm" and "," in value:  # a mapconstruction graph: VERTICES,EDGES (osmgap.sources.osm)
        return ",".join(str(root / part) for part in value.split(",", 1))
    return str(root / value)  # an absolute value stays as it is


def _special(key: str, value: str) -> bool:
    """A value of an input that names no file: ``overpass``, the shipped model, a bbox AOI, a URL."""
    return (value in SPECIAL_VALUES.get(key, ()) or bool(URL.match(value))
            or (key == "aoi" and is_bbox_text(value)))
