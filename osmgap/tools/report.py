"""Write the report of an AOI: one HTML page and a Markdown summary, from the state.

The HTML (a map of the AOI's OSM roads and suggestions by status over a basemap, each suggestion
clickable, with JOSM and iD links; new / reopened / fixed / dismissed over time; reviewer-measured
precision per AOI) is one file; the Markdown is for mail or chat. The report reads the state, where
``osmgap diff --state`` recorded the runs: a state without runs of this AOI is said plainly
(exit 2, nothing written) instead of a report of nothing.
"""
from __future__ import annotations

import argparse
import logging
import os
import sqlite3
import sys
from pathlib import Path

from osmgap.core.atomic import check_output_file, write_files_atomic
from osmgap.errors import InputError, escape_controls
from osmgap.tools.options import (
    add_basemap_argument,
    add_workspace_arguments,
    open_store,
    path_arg,
    state_locked,
    state_path,
)

log = logging.getLogger(__name__)

HELP = "write the HTML report and Markdown summary of an AOI"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_workspace_arguments(p)
    p.add_argument("--html", type=path_arg, help="report page (default: OUT/report.html)")
    p.add_argument("--markdown", type=path_arg, help="summary for mail or chat (default: OUT/report.md)")
    p.add_argument("--web-url", help="MapRoulette site for task links (default: from the API URL published to)")
    add_basemap_argument(p)


def run(args: argparse.Namespace) -> int:
    pages = _pages(args)  # refused before the lock file is made, as anything else is written
    with state_locked(state_path(args)):  # it notes the report's time in the state
        return _run(args, *pages)


def _pages(args: argparse.Namespace) -> tuple[Path, Path]:
    """The report's two files, refused where writing them would destroy what the report is made
    from: the state (or its journal or lock), a file of the diff in DIR (publish and the next
    report read them), or each other (one page would silently replace the other)."""
    from osmgap.workspace.lock import state_lock_path
    from osmgap.workspace.outputs import RUN_OUTPUTS

    html_path: Path = args.html or args.out / "report.html"
    md_path: Path = args.markdown or args.out / "report.md"
    state = state_path(args)
    taken = {state: "the state file", state_lock_path(state): "the state's lock file",
             **{state.with_name(state.name + end): f"the state's {end[1:]} file"
                for end in ("-journal", "-wal", "-shm")},
             **{args.out / name: f"the diff's {name} in {args.out}" for name in sorted(RUN_OUTPUTS)}}
    for flag, path in (("--html", html_path), ("--markdown", md_path)):
        what = next((what for other, what in taken.items() if _same_file(path, other)), None)
        if what is not None:
            raise InputError(path, f"is {what}: the report would overwrite it; give {flag} another file")
        check_output_file(path)  # both, before either is written
    if _same_file(html_path, md_path):
        raise InputError(md_path, "is also the --html page: one would replace the other; give two different files")
    return html_path, md_path


def _same_file(a: Path, b: Path) -> bool:
    """One file under two names: the same path once links are followed, or a hard link."""
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return False


def _run(args: argparse.Namespace, html_path: Path, md_path: Path) -> int:
    from osmgap.core.aoi import is_bbox
    from osmgap.export.report import gather, render_html, render_markdown
    from osmgap.workspace.outputs import read_outputs

    outputs = read_outputs(args.out)
    aoi, state = outputs.aoi_name, state_path(args)
    with open_store(args, create=False) as store:
        runs = store.runs(aoi)
        if not runs:
            others = ", ".join(repr(n) for n in store.aoi_names()) or "none"
            named = " --name NAME" if is_bbox(str(outputs.summary["aoi"].get("source", ""))) else ""  # a bbox needs one
            raise InputError(state, f"holds no run of AOI {aoi!r} (the diff in {args.out}); it holds runs of: "
                                    f"{others}. Record this one with `osmgap diff ... --state {state}{named}`")
        notes = list(getattr(args, "failed_steps", []))  # osmgap run's sync or publish that failed before it
        if store.run_by_summary(outputs.summary_sha256) is None:
            notes.append(f"The diff in {args.out} is not recorded in {state}: this report shows the "
                         f"{len(runs)} recorded run(s) of {aoi}, the last of {runs[-1]['time']}.")
        data = gather(store, aoi, args.web_url, notes)
    html, markdown = render_html(data, args.basemap), render_markdown(data)  # made before either is written
    write_files_atomic({html_path: html.encode("utf-8"), md_path: markdown.encode("utf-8")})
    try:
        with open_store(args, create=False) as store:  # the next report counts its changes from here
            store.reported(aoi, data.generated, max((int(e["id"]) for e in data.events), default=0))
    except sqlite3.Error as exc:  # a state osmgap may read but not write: the pages are written all the same
        log.warning("%s: could not note the report's time (%s); the next report counts from the previous run",
                    state, exc)
    for note in notes:
        print(f"osmgap report: note: {escape_controls(note)}", file=sys.stderr)
    c = data.counts
    print(f"{aoi}: {c['open']} open, {c['published']} published, {c['fixed']} fixed, {c['dismissed']} dismissed "
          f"-> {html_path}, {md_path}")
    return 0
