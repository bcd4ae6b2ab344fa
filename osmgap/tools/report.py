"""Write the report of an AOI: one self-contained HTML page and a Markdown summary.

The HTML (map of the AOI, OSM and suggestions by status; new / fixed / dismissed over time;
reviewer-measured precision per AOI) needs no network to open; the Markdown is for mail or chat.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from osmgap.core.atomic import write_text_atomic
from osmgap.tools.options import add_workspace_arguments, open_store

HELP = "write the HTML report and Markdown summary of an AOI"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_workspace_arguments(p)
    p.add_argument("--html", type=Path, help="report page (default: OUT/report.html)")
    p.add_argument("--markdown", type=Path, help="summary for mail or chat (default: OUT/report.md)")
    p.add_argument("--web-url", help="MapRoulette site for task links (default: from the API URL published to)")


def run(args: argparse.Namespace) -> int:
    from osmgap.export.report import gather, render_html, render_markdown
    from osmgap.workspace.outputs import read_outputs

    aoi = read_outputs(args.out).aoi_name
    with open_store(args, create=False) as store:
        data = gather(store, aoi, args.web_url)
    html_path = args.html or args.out / "report.html"
    md_path = args.markdown or args.out / "report.md"
    write_text_atomic(html_path, render_html(data))
    write_text_atomic(md_path, render_markdown(data))
    c = data.counts
    print(f"{aoi}: {c['open']} open, {c['published']} published, {c['fixed']} fixed, {c['dismissed']} dismissed "
          f"-> {html_path}, {md_path}")
    return 0
