"""The weekly report: one HTML page and a Markdown summary, from the state.

The page is one file (Leaflet, the data and the history plot, a PNG, inlined) so it can be
mailed and archived. Its map draws the AOI, the OSM roads of the last run (the state keeps them:
they decide "covered by OSM", so the report shows what the state judged by) and every suggestion
coloured by status over a basemap (OpenStreetMap's tiles unless ``--basemap`` says otherwise);
a click on a suggestion shows its properties and opens it in JOSM (remote control) or iD.
Offline the tiles are missing and everything else shows. Then counts by status, new / reopened /
fixed / dismissed over time, and precision as reviewers measured it on MapRoulette (1 - false positives
/ reviewed, per AOI).
"""
from __future__ import annotations

import base64
import html
import io
import json
import re
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import TYPE_CHECKING, Any, cast

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

from osmgap.core.datamodel import MISSING_CONNECTION as CONNECTION  # noqa: E402
from osmgap.errors import escape_controls  # noqa: E402
from osmgap.export.scanmap import DEFAULT_JOSM_URL, Basemap, render_page  # noqa: E402
from osmgap.workspace.store import STATUSES, Store, now_iso  # noqa: E402
from osmgap.workspace.tracking import (  # noqa: E402
    REOPENED_REASON,
    dismissed_as_twin,
    fixed_on_maproulette,
    merged,
    precision,
)

if TYPE_CHECKING:
    from matplotlib.ticker import MaxNLocator

COLOURS = {"open": "#d62728", "published": "#ff7f0e", "fixed": "#2ca02c", "dismissed": "#7f7f7f",
           "osm": "#2b6cb0", "aoi": "#222222"}
# a gap found again after it vanished is news too: without it the "since" line did not explain
# the counts by status ("0 new, 0 fixed" while open rose from 4 to 7)
HISTORY_SERIES = ("new", "reopened", "fixed", "dismissed")
SERIES_COLOURS = {"new": COLOURS["open"], "reopened": "#9467bd", "fixed": COLOURS["fixed"],
                  "dismissed": COLOURS["dismissed"]}


@dataclass(frozen=True)
class ReportData:
    aoi: str
    generated: str
    runs: list[Any]
    suggestions: list[Any]
    events: list[Any]
    precision: list[dict[str, Any]]
    area: dict[str, Any] | None
    osm: dict[str, Any] | None
    task_urls: dict[str, str]
    warnings: list[str]
    notes: list[str] = field(default_factory=list)  # what the reader must know about this report itself
    since: str = ""  # changes are counted after this time: the last report's, else the previous run's
    since_report: bool = False
    since_event: int | None = None  # ... or, where the last report noted it, after this event id
    osm_dated: str = ""  # how fresh the OSM the last run diffed against was (osm_as_of)

    @property
    def counts(self) -> dict[str, int]:
        c = Counter(r["status"] for r in self.suggestions)
        return {s: c.get(s, 0) for s in STATUSES}


def gather(store: Store, aoi: str, web_url: str | None = None, notes: Iterable[str] = ()) -> ReportData:
    """Everything the report shows, read once from the state; ``notes`` head the page."""
    snapshot = store.aoi(aoi)
    runs = store.runs(aoi)
    last = json.loads(runs[-1]["summary"]) if runs else {}
    challenges = {row["id"]: row for row in store.challenges(aoi)}
    urls = {}
    for r in store.suggestions(aoi):
        ch = challenges.get(r["challenge_id"])
        if ch is not None and r["task_id"] is not None:
            base = (web_url or ch["api_url"].rstrip("/").removesuffix("/api/v2"))
            urls[r["id"]] = f"{base}/challenge/{r['challenge_id']}/task/{r['task_id']}"
    shown = [r for r in store.suggestions(aoi) if not merged(r)]  # each drawn and counted as its longer gap
    return ReportData(aoi, now_iso(), runs, shown, store.events(aoi),
                      [precision(store, name) for name in store.aoi_names()],
                      json.loads(snapshot["geometry"]) if snapshot else None,
                      json.loads(snapshot["osm"]) if snapshot else None, urls, list(last.get("warnings", [])),
                      _demonstration_note(last) + _fixed_but_found(shown, runs) + list(notes), *_since(store, aoi, runs),
                      osm_as_of(last.get("osm")))


def _fixed_but_found(rows: list[Any], runs: list[Any]) -> list[str]:
    """The note for gaps a mapper or reviewer marked fixed on MapRoulette that the last run still
    found: their word stands (they are not published again), but OSM may lack them still."""
    if not runs:
        return []
    found = sorted(r["id"] for r in rows if fixed_on_maproulette(r) and r["last_seen"] == runs[-1]["time"])
    if not found:
        return []
    shown = ", ".join(found[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "")
    return [f"{len(found)} gap(s) marked fixed on MapRoulette are still found by the last run ({shown}): "
            "check that OSM has them."]


def _since(store: Store, aoi: str, runs: list[Any]) -> tuple[str, bool, int | None]:
    reported = store.last_report(aoi)
    if reported is not None:
        return reported[0], True, reported[1]
    return (str(runs[-2]["time"]) if len(runs) > 1 else ""), False, None


def osm_as_of(osm: Any) -> str:
    """One line dating the OSM that the last run's summary says it diffed against: a gap
    "still missing" week after week means little if that OSM is a month old, and the warnings
    say so only past a threshold. Overpass: when it answered; a file: when its data was current
    (its header), else when the file was written; and the newest edit of the AOI's roads."""
    if not isinstance(osm, dict) or not osm.get("source"):
        return ""
    where = "Overpass" if osm.get("format") == "overpass" else PurePath(str(osm["source"]).split(",")[0]).name
    said = ([f"data as of {_when(osm['extract_time'])}, fetched {_when(osm['fetched'])}"]
            if osm.get("fetched") and osm.get("extract_time") else
            [f"fetched {_when(osm['fetched'])}"] if osm.get("fetched") else
            [f"data as of {_when(osm['extract_time'])} (the file's header)"] if osm.get("extract_time") else
            [f"file written {_when(osm['file_modified'])} (its header does not date its data)"]
            if osm.get("file_modified") else ["not dated"])
    if osm.get("newest_road_edit"):
        said.append(f"newest road edit in the AOI {_when(osm['newest_road_edit'])[:10]}")
    return f"OSM of the last run: {where}, {'; '.join(said)}."


def _when(iso: Any) -> str:
    """``2026-12-07T02:17:39Z`` as ``2026-12-07 02:17 UTC``."""
    text = str(iso)
    return f"{text[:10]} {text[11:16]} UTC" if len(text) >= 16 and text[10] == "T" else text


def _demonstration_note(summary: dict[str, Any]) -> list[str]:
    """A demonstration run's own words, first: its suggestions are not missing from OSM."""
    demo = summary.get("demonstration")
    return [str(demo["text"])] if isinstance(demo, dict) and demo.get("text") else []


def history(events: Iterable[Any]) -> list[tuple[str, dict[str, int]]]:
    """Per day: suggestions that became new, reopened, fixed, dismissed (from the state's events)."""
    days: dict[str, Counter] = {}
    for e in events:
        series = _series(e)
        if series is not None:
            days.setdefault(e["time"][:10], Counter())[series] += 1
    return [(day, {s: days[day].get(s, 0) for s in HISTORY_SERIES}) for day in sorted(days)]


def _series(event: Any) -> str | None:
    """The HISTORY_SERIES an event adds to, the same in the history and the "since" line: none
    for a gap now drawn as part of a longer one (still missing) or one dismissed as the twin of
    a rejected road (the same road: no reviewer's verdict on it)."""
    status, reason = event["status"], event["reason"]
    if merged(event) or dismissed_as_twin(status, reason):
        return None
    if status == "open":
        return {"new": "new", REOPENED_REASON: "reopened"}.get(reason)
    return status if status in HISTORY_SERIES else None


def latest_changes(data: ReportData) -> dict[str, int]:
    """How many suggestions are new / reopened / fixed / dismissed (``changed_since``)."""
    return {s: len(ids) for s, ids in changed_since(data).items()}


def changed_since(data: ReportData) -> dict[str, list[str]]:
    """The suggestions new / reopened / fixed / dismissed since the last report (else the run before the last one;
    everything, after one run). Not since the previous run: that run's sync and publish come
    after it, so a weekly report counted them twice, and a week whose report never came (a run
    killed after its diff) was never counted.

    Each suggestion counts once, by where it ended up: one that vanished (fixed) and was then
    rejected on MapRoulette counts as dismissed; a road seen again under another id and dismissed
    as the twin of a rejected one is the same road, so it counts as neither new nor dismissed; a
    gap now drawn as part of a longer one is still missing, so it counts as neither new nor fixed;
    a gap called fixed before and found again (reopened), then published, counts as reopened."""
    since = data.since
    first: dict[str, str | None] = {}
    last: dict[str, Any] = {}
    reopened: set[str] = set()
    for e in data.events:
        if (e["id"] > data.since_event) if data.since_event is not None else (e["time"] > since):
            series = _series(e)
            first.setdefault(e["suggestion_id"], series)
            last[e["suggestion_id"]] = e
            if series == "reopened":
                reopened.add(e["suggestion_id"])
    changed: dict[str, list[str]] = {s: [] for s in HISTORY_SERIES}
    for sid, e in last.items():
        if dismissed_as_twin(e["status"], e["reason"]) or merged(e):
            continue
        if e["status"] in ("fixed", "dismissed"):
            changed[e["status"]].append(sid)
        elif first[sid] == "new":
            changed["new"].append(sid)
        elif sid in reopened:
            changed["reopened"].append(sid)
    return changed


def _since_words(data: ReportData) -> str:
    return f"Since the last report ({data.since})" if data.since_report else "Since the previous run"


def render_html(data: ReportData, basemap: Basemap | None = None) -> str:
    """report.html: the map (Leaflet, over ``basemap``) between the counts and the history."""
    counts = data.counts
    last = data.runs[-1]["time"] if data.runs else "never"
    changes = latest_changes(data)
    rows = "".join(f'<tr data-status="{s}"><td><span class="swatch" style="background:{COLOURS[s]}"></span>{s}</td>'
                   f'<td class="count">{counts[s]}</td></tr>' for s in STATUSES)
    rows += f'<tr data-status="total"><td>total</td><td class="count">{sum(counts.values())}</td></tr>'
    hist = history(data.events)
    hist_rows = "".join(f"<tr><td>{_e(d)}</td>" + "".join(f'<td data-series="{s}">{c[s]}</td>' for s in HISTORY_SERIES)
                        + "</tr>" for d, c in hist)
    prec_rows = "".join(
        f'<tr data-aoi="{_e(p["aoi"])}"><td>{_e(p["aoi"])}</td><td>{p["reviewed"]}</td><td>{p["false_positives"]}</td>'
        f'<td class="precision">{_pct(p["precision"])}</td></tr>' for p in data.precision)
    sugg_rows = "".join(_suggestion_row(r, data.task_urls.get(r["id"])) for r in data.suggestions)
    warnings = "".join(f'<p class="warning">{_e(w)}</p>' for w in (*data.notes, *data.warnings))
    plot = _history_png(hist)
    plot_img = (f'<img id="history-plot" alt="new, reopened, fixed and dismissed suggestions per day" '
                f'src="data:image/png;base64,{plot}">' if plot else '<p id="history-plot">No history yet.</p>')
    legend = "".join(f'<span class="legend" data-status="{k}"><span class="legend-swatch" style="background:{COLOURS[k]}">'
                     f'</span>{"OSM roads" if k == "osm" else k}</span>' for k in (*STATUSES, "osm"))
    if any(r["kind"] == CONNECTION for r in data.suggestions):  # drawn dotted: a straight gap, not a road
        legend += ('<span class="legend" data-kind="missing_connection"><span class="legend-dots"></span>'
                   "missing connection: two junctions, the road's course unknown</span>")
    since = ",\n".join(f'<span id="latest-{s}">{changes[s]}</span> {s}' for s in HISTORY_SERIES)
    summary = f"""<p id="meta">Generated {_e(data.generated)}. {len(data.runs)} run(s); last run {_e(last)}.
{_e(_since_words(data))}: {since}.</p>
{f'<p id="osm-age">{_e(data.osm_dated)}</p>' if data.osm_dated else ''}
{warnings}
<h2>Suggestions by status</h2>
<table id="counts"><tr><th>status</th><th>suggestions</th></tr>{rows}</table>"""
    details = f"""<h2>Over time</h2>
{plot_img}
<table id="history-table"><tr><th>day</th>{''.join(f'<th>{s}</th>' for s in HISTORY_SERIES)}</tr>{hist_rows}</table>
<h2>Precision measured by reviewers</h2>
<p>1 - false positives / reviewed, from MapRoulette task statuses (reviewed: fixed, already fixed or
not an issue).</p>
<table id="precision"><tr><th>AOI</th><th>reviewed</th><th>false positives</th><th>precision</th></tr>{prec_rows}</table>
<h2>All suggestions</h2>
<table id="suggestions"><tr><th>id</th><th>status</th><th>why</th><th>length (m)</th><th>first seen</th>
<th>last seen</th><th>task</th></tr>{sugg_rows}</table>"""
    return render_page("report.html", map_data(data), {"TITLE": data.aoi},
                       {"SUMMARY": summary, "LEGEND": legend, "DETAILS": details}, basemap=basemap)


def map_data(data: ReportData) -> dict[str, Any]:
    """What the page's map draws: the AOI, the last run's OSM roads, every suggestion with its
    status and properties (for its popup), the colours; all of it text for ``textContent``."""
    features = []
    for r in sorted(data.suggestions, key=lambda r: STATUSES.index(r["status"]), reverse=True):  # open on top
        props = json.loads(r["properties"])
        props.update({"id": r["id"], "kind": r["kind"], "status": r["status"], "reason": r["reason"],
                      "length_m": r["length_m"], "first_seen": r["first_seen"], "last_seen": r["last_seen"],
                      "task_url": data.task_urls.get(r["id"])})
        features.append({"type": "Feature", "id": r["id"], "geometry": json.loads(r["geometry"]), "properties": props})
    osm = data.osm if data.osm and isinstance(data.osm.get("features"), list) else None
    return {"aoi_name": data.aoi, "aoi": data.area, "josm": DEFAULT_JOSM_URL, "colours": COLOURS,
            "osm": osm or {"type": "FeatureCollection", "features": []},
            "suggestions": {"type": "FeatureCollection", "features": features}}


def render_markdown(data: ReportData) -> str:
    """report.md; every text from a file or the state goes through ``_md``, so it shows as written."""
    counts, changed = data.counts, changed_since(data)
    changes = {s: len(ids) for s, ids in changed.items()}
    last = data.runs[-1]["time"] if data.runs else "never"
    out = [f"# osmgap: {_md(data.aoi)}", "", *(line for n in data.notes for line in (f"> {_md(n)}", "")),  # notes head the page
           f"{len(data.runs)} run(s), last {_md(last)}. {_md(_since_words(data))}: "
           + ", ".join(f"**{changes[s]} {s}**" for s in HISTORY_SERIES) + ".", "",
           *([_md(data.osm_dated), ""] if data.osm_dated else []),
           "| status | suggestions |", "|---|---:|", *[f"| {s} | {counts[s]} |" for s in STATUSES], "",
           "Precision measured by reviewers (1 - false positives / reviewed):", "",
           "| AOI | reviewed | false positives | precision |", "|---|---:|---:|---:|",
           *[f"| {_md(p['aoi'])} | {p['reviewed']} | {p['false_positives']} | {_pct(p['precision'])} |"
             for p in data.precision]]
    rows = {r["id"]: r for r in data.suggestions}
    waiting = [r for r in data.suggestions if r["status"] in ("open", "published")]
    out += _md_list("Waiting for a mapper:", waiting, data, lambda r: _md(r["status"]))
    since = _since_words(data)
    for status in ("fixed", "dismissed"):  # what the week did, not only how much
        done = [rows[sid] for sid in changed[status] if sid in rows and rows[sid]["status"] == status]
        out += _md_list(f"{status.capitalize()} {_md(since[0].lower() + since[1:])}:", done, data,
                        lambda r: _md(r["reason"]))
    out += [*(f"\n> {_md(w)}" for w in data.warnings), ""]
    return "\n".join(out)


def _md_list(heading: str, rows: list[Any], data: ReportData, said: Callable[[Any], str], most: int = 20) -> list[str]:
    """A Markdown list of suggestions, longest first, each with its task link, length and ``said``."""
    if not rows:
        return []
    out = ["", heading, ""]
    for r in sorted(rows, key=lambda r: -r["length_m"])[:most]:
        link = data.task_urls.get(r["id"])
        label = f"[{_md(r['id'])}]({_md_url(link)})" if link else _md(r["id"])
        what = (f"two junctions {r['length_m']:.0f} m apart, the road's course unknown" if r["kind"] == CONNECTION
                else f"{r['length_m']:.0f} m")
        out.append(f"- {label}: {what}, {said(r)}")
    if len(rows) > most:
        out.append(f"- and {len(rows) - most} more (report.html lists them all)")
    return out


_MD_MARKUP = re.compile(r"[\\`*_#\[\]|~]")  # emphasis, code, headings (a closing #), links, table cells, strikethrough
_MD_LIST = re.compile(r"^([+-])|^(\d{1,9})([.)])(?=\s|$)")  # a list item or a rule ("---") at a line's start


def _md(text: Any) -> str:
    """Text from an input (an AOI name, a file name, a suggestion id, a warning) as literal
    Markdown: on one line, control characters escaped, HTML's ``<&>`` as entities and every
    character Markdown reads as formatting backslash-escaped, so a name cannot close a table
    cell, open a link or put raw HTML into a mail or chat that renders the report."""
    flat = escape_controls(" ".join(str(text).split()))
    escaped = _MD_MARKUP.sub(lambda m: "\\" + m[0], html.escape(flat, quote=False))
    return _MD_LIST.sub(lambda m: f"\\{m[1]}" if m[1] else f"{m[2]}\\{m[3]}", escaped, count=1)


def _md_url(url: str) -> str:
    """A link target that cannot end the link early: spaces, parentheses, angle brackets and
    backslashes percent-encoded."""
    return urllib.parse.quote(url, safe=":/?#[]@!$&'*+,;=%~")


def _suggestion_row(r: Any, url: str | None) -> str:
    task = f'<a href="{_e(url)}">{_e(r["task_id"])}</a>' if url else ""
    return (f'<tr data-status="{_e(r["status"])}"><td>{_e(r["id"])}</td><td>{_e(r["status"])}</td>'
            f'<td>{_e(r["reason"])}</td><td>{r["length_m"]:.0f}</td><td>{_e(r["first_seen"])}</td>'
            f'<td>{_e(r["last_seen"])}</td><td>{task}</td></tr>')


def _history_png(hist: list[tuple[str, dict[str, int]]]) -> str | None:
    if not hist:
        return None
    fig, ax = plt.subplots(figsize=(8.6, 2.8), dpi=100)
    width = 0.8 / len(HISTORY_SERIES)
    xs = range(len(hist))
    for i, series in enumerate(HISTORY_SERIES):
        shift = (i - (len(HISTORY_SERIES) - 1) / 2) * width
        ax.bar([x + shift for x in xs], [c[series] for _, c in hist], width, label=series, color=SERIES_COLOURS[series])
    ax.set_xticks(list(xs), [d for d, _ in hist])
    ax.set_ylabel("suggestions")
    cast("MaxNLocator", ax.yaxis.get_major_locator()).set_params(integer=True)  # the default AutoLocator is one
    ax.legend(frameon=False, ncols=len(HISTORY_SERIES))
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f} %"


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)
