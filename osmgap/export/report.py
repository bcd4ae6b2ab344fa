"""The weekly report: one self-contained HTML page and a Markdown summary, from the state.

Why self-contained: it is mailed, archived and opened offline, so the map is inline SVG (no
tiles, no script, no CDN) and the history plot a PNG embedded as base64. The page shows the
AOI, the OSM roads of the last run and every suggestion coloured by status; counts by status;
new / fixed / dismissed over time; and precision as reviewers measured it on MapRoulette
(1 - false positives / reviewed, per AOI).
"""
from __future__ import annotations

import base64
import html
import io
import json
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

from osmgap.workspace.store import STATUSES, Store, now_iso  # noqa: E402
from osmgap.workspace.tracking import TWIN_REASON, precision  # noqa: E402

if TYPE_CHECKING:
    from matplotlib.ticker import MaxNLocator

COLOURS = {"open": "#d62728", "published": "#ff7f0e", "fixed": "#2ca02c", "dismissed": "#7f7f7f",
           "osm": "#6baed6", "aoi": "#222222"}
HISTORY_SERIES = ("new", "fixed", "dismissed")
MAP_WIDTH = 860


class Projection(Protocol):
    """lon/lat -> SVG pixels, carrying the metres one pixel spans (for the scale bar)."""

    metres_per_px: float

    def __call__(self, lon: float, lat: float) -> tuple[float, float]: ...


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

    @property
    def counts(self) -> dict[str, int]:
        c = Counter(r["status"] for r in self.suggestions)
        return {s: c.get(s, 0) for s in STATUSES}


def gather(store: Store, aoi: str, web_url: str | None = None) -> ReportData:
    """Everything the report shows, read once from the state."""
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
    return ReportData(aoi, now_iso(), runs, store.suggestions(aoi), store.events(aoi),
                      [precision(store, name) for name in store.aoi_names()],
                      json.loads(snapshot["geometry"]) if snapshot else None,
                      json.loads(snapshot["osm"]) if snapshot else None, urls, list(last.get("warnings", [])))


def history(events: Iterable[Any]) -> list[tuple[str, dict[str, int]]]:
    """Per day: suggestions that became new, fixed, dismissed (from the state's events)."""
    days: dict[str, Counter] = {}
    for e in events:
        series = "new" if (e["status"] == "open" and e["reason"] == "new") else e["status"]
        if series in HISTORY_SERIES:
            days.setdefault(e["time"][:10], Counter())[series] += 1
    return [(day, {s: days[day].get(s, 0) for s in HISTORY_SERIES}) for day in sorted(days)]


def latest_changes(data: ReportData) -> dict[str, int]:
    """New / fixed / dismissed since the run before the last one (everything, after one run).

    Each suggestion counts once, by where it ended up: one that vanished (fixed) and was then
    rejected on MapRoulette counts as dismissed; a road seen again under another id and dismissed
    as the twin of a rejected one is the same road, so it counts as neither new nor dismissed."""
    since = data.runs[-2]["time"] if len(data.runs) > 1 else ""
    first: dict[str, Any] = {}
    last: dict[str, Any] = {}
    for e in data.events:
        if e["time"] > since:
            first.setdefault(e["suggestion_id"], e)
            last[e["suggestion_id"]] = e
    totals = {s: 0 for s in HISTORY_SERIES}
    for sid, e in last.items():
        if e["status"] == "dismissed" and str(e["reason"]).startswith(TWIN_REASON):
            continue
        if e["status"] in ("fixed", "dismissed"):
            totals[e["status"]] += 1
        elif first[sid]["status"] == "open" and first[sid]["reason"] == "new":
            totals["new"] += 1
    return totals


def render_html(data: ReportData) -> str:
    counts = data.counts
    last = data.runs[-1]["time"] if data.runs else "never"
    changes = latest_changes(data)
    rows = "".join(f'<tr data-status="{s}"><td><span class="swatch" style="background:{COLOURS[s]}"></span>{s}</td>'
                   f'<td class="count">{counts[s]}</td></tr>' for s in STATUSES)
    rows += f'<tr data-status="total"><td>total</td><td class="count">{sum(counts.values())}</td></tr>'
    hist = history(data.events)
    hist_rows = "".join(f"<tr><td>{d}</td>" + "".join(f'<td data-series="{s}">{c[s]}</td>' for s in HISTORY_SERIES)
                        + "</tr>" for d, c in hist)
    prec_rows = "".join(
        f'<tr data-aoi="{_e(p["aoi"])}"><td>{_e(p["aoi"])}</td><td>{p["reviewed"]}</td><td>{p["false_positives"]}</td>'
        f'<td class="precision">{_pct(p["precision"])}</td></tr>' for p in data.precision)
    sugg_rows = "".join(_suggestion_row(r, data.task_urls.get(r["id"])) for r in data.suggestions)
    warnings = "".join(f'<p class="warning">{_e(w)}</p>' for w in data.warnings)
    plot = _history_png(hist)
    plot_img = (f'<img id="history-plot" alt="new, fixed and dismissed suggestions per day" '
                f'src="data:image/png;base64,{plot}">' if plot else '<p id="history-plot">No history yet.</p>')
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>osmgap report: {_e(data.aoi)}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 1.5em auto; max-width: 900px; color: #222; }}
table {{ border-collapse: collapse; margin: .5em 0 1.5em; }}
td, th {{ border: 1px solid #ccc; padding: 3px 8px; text-align: left; }}
td.count, td.precision {{ text-align: right; font-weight: bold; }}
.swatch {{ display: inline-block; width: 1em; height: .6em; margin-right: .4em; }}
.warning {{ background: #fff3cd; border: 1px solid #e0b000; padding: .5em; }}
svg {{ border: 1px solid #ccc; background: #fafafa; }}
</style></head>
<body>
<h1>osmgap report: {_e(data.aoi)}</h1>
<p id="meta">Generated {data.generated}. {len(data.runs)} run(s); last run {last}.
Since the previous run: <span id="latest-new">{changes['new']}</span> new,
<span id="latest-fixed">{changes['fixed']}</span> fixed,
<span id="latest-dismissed">{changes['dismissed']}</span> dismissed.</p>
{warnings}
<h2>Suggestions by status</h2>
<table id="counts"><tr><th>status</th><th>suggestions</th></tr>{rows}</table>
<h2>Map</h2>
{render_svg_map(data)}
<h2>Over time</h2>
{plot_img}
<table id="history-table"><tr><th>day</th>{''.join(f'<th>{s}</th>' for s in HISTORY_SERIES)}</tr>{hist_rows}</table>
<h2>Precision measured by reviewers</h2>
<p>1 - false positives / reviewed, from MapRoulette task statuses (reviewed: fixed, already fixed or
not an issue).</p>
<table id="precision"><tr><th>AOI</th><th>reviewed</th><th>false positives</th><th>precision</th></tr>{prec_rows}</table>
<h2>All suggestions</h2>
<table id="suggestions"><tr><th>id</th><th>status</th><th>why</th><th>length (m)</th><th>first seen</th>
<th>last seen</th><th>task</th></tr>{sugg_rows}</table>
<p>Roads: &copy; OpenStreetMap contributors (ODbL).</p>
</body></html>
"""


def render_svg_map(data: ReportData) -> str:
    """Inline SVG: AOI outline, OSM roads, suggestions by status; north up, metres to scale."""
    lines = [(r, json.loads(r["geometry"])) for r in data.suggestions]
    osm = [f["geometry"] for f in (data.osm or {}).get("features", []) if f.get("geometry")]
    coords = [c for _, g in lines for c in _line_coords(g)] + [c for g in osm for c in _line_coords(g)]
    area_rings = _rings(data.area) if data.area else []
    coords += [c for ring in area_rings for c in ring]
    if not coords:
        return '<p id="map">Nothing to map yet.</p>'
    project, width, height = _projection(coords)
    parts = [f'<svg id="map" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="map of {_e(data.aoi)}">']
    for ring in area_rings:
        parts.append(f'<polygon class="aoi" points="{_points(ring, project)}" fill="#ffffff" '
                     f'stroke="{COLOURS["aoi"]}" stroke-width="1.5" stroke-dasharray="6 4"/>')
    for g in osm:
        for part in _line_parts(g):
            parts.append(f'<polyline class="osm" points="{_points(part, project)}" fill="none" '
                         f'stroke="{COLOURS["osm"]}" stroke-width="5" stroke-linecap="round"/>')
    for row, g in sorted(lines, key=lambda x: STATUSES.index(x[0]["status"]), reverse=True):
        common = (f'class="suggestion" data-status="{row["status"]}" data-id="{_e(row["id"])}" '
                  f'stroke="{COLOURS[row["status"]]}"')
        title = f'<title>{_e(row["id"])}: {row["status"]} ({_e(row["reason"])})</title>'
        if g["type"] == "Point":  # a misconnection
            x, y = project(*g["coordinates"][:2])
            parts.append(f'<circle {common} cx="{x:.1f}" cy="{y:.1f}" r="6" fill="none" stroke-width="3">{title}</circle>')
        dash = ' stroke-dasharray="5 4"' if row["status"] == "dismissed" else ""
        for part in _line_parts(g):
            parts.append(f'<polyline {common} points="{_points(part, project)}" fill="none" stroke-width="4" '
                         f'stroke-linecap="round"{dash}>{title}</polyline>')
    parts.append(_scale_bar(project, coords, height))
    parts.append("</svg>")
    legend = "".join(f'<span class="legend"><span class="swatch" style="background:{COLOURS[k]}"></span>{k}</span> '
                     for k in (*STATUSES, "osm"))
    return "\n".join(parts) + f'\n<p id="legend">{legend}</p>'


def render_markdown(data: ReportData) -> str:
    counts, changes = data.counts, latest_changes(data)
    last = data.runs[-1]["time"] if data.runs else "never"
    out = [f"# osmgap: {data.aoi}", "",
           f"{len(data.runs)} run(s), last {last}. Since the previous run: **{changes['new']} new**, "
           f"**{changes['fixed']} fixed**, **{changes['dismissed']} dismissed**.", "",
           "| status | suggestions |", "|---|---:|", *[f"| {s} | {counts[s]} |" for s in STATUSES], "",
           "Precision measured by reviewers (1 - false positives / reviewed):", "",
           "| AOI | reviewed | false positives | precision |", "|---|---:|---:|---:|",
           *[f"| {p['aoi']} | {p['reviewed']} | {p['false_positives']} | {_pct(p['precision'])} |" for p in data.precision]]
    waiting = [r for r in data.suggestions if r["status"] in ("open", "published")]
    if waiting:
        out += ["", "Waiting for a mapper:", ""]
        for r in sorted(waiting, key=lambda r: -r["length_m"])[:20]:
            link = data.task_urls.get(r["id"])
            label = f"[{r['id']}]({link})" if link else r["id"]
            out.append(f"- {label}: {r['length_m']:.0f} m, {r['status']}")
    out += [*(f"\n> {w}" for w in data.warnings), ""]
    return "\n".join(out)


def _suggestion_row(r: Any, url: str | None) -> str:
    task = f'<a href="{_e(url)}">{r["task_id"]}</a>' if url else ""
    return (f'<tr data-status="{r["status"]}"><td>{_e(r["id"])}</td><td>{r["status"]}</td><td>{_e(r["reason"])}</td>'
            f'<td>{r["length_m"]:.0f}</td><td>{r["first_seen"]}</td><td>{r["last_seen"]}</td><td>{task}</td></tr>')


def _history_png(hist: list[tuple[str, dict[str, int]]]) -> str | None:
    if not hist:
        return None
    fig, ax = plt.subplots(figsize=(8.6, 2.8), dpi=100)
    width = 0.27
    xs = range(len(hist))
    for i, series in enumerate(HISTORY_SERIES):
        colour = COLOURS["open" if series == "new" else series]
        ax.bar([x + (i - 1) * width for x in xs], [c[series] for _, c in hist], width, label=series, color=colour)
    ax.set_xticks(list(xs), [d for d, _ in hist])
    ax.set_ylabel("suggestions")
    cast("MaxNLocator", ax.yaxis.get_major_locator()).set_params(integer=True)  # the default AutoLocator is one
    ax.legend(frameon=False, ncols=3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _projection(coords: list[tuple[float, float]]) -> tuple[Projection, int, int]:
    """lon/lat -> SVG pixels: equirectangular at the mean latitude, so metres keep their shape."""
    lons, lats = [c[0] for c in coords], [c[1] for c in coords]
    k = math.cos(math.radians((min(lats) + max(lats)) / 2))
    minx, maxx, miny, maxy = min(lons) * k, max(lons) * k, min(lats), max(lats)
    pad = 20
    span = max(maxx - minx, maxy - miny, 1e-9)
    scale = (MAP_WIDTH - 2 * pad) / span
    width = max(300, int((maxx - minx) * scale + 2 * pad))  # room for the scale bar
    height = int((maxy - miny) * scale + 2 * pad + 30)

    def project(lon: float, lat: float) -> tuple[float, float]:
        return pad + (lon * k - minx) * scale, pad + (maxy - lat) * scale
    project.metres_per_px = 111_320 / scale  # type: ignore[attr-defined]
    return cast(Projection, project), width, height


def _scale_bar(project: Projection, coords: list[tuple[float, float]], height: int) -> str:
    m_per_px = project.metres_per_px
    target = m_per_px * 150
    nice = max(n for n in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000) if n <= max(target, 1))
    px = nice / m_per_px
    y = height - 12
    return (f'<g id="scale"><line x1="20" y1="{y}" x2="{20 + px:.1f}" y2="{y}" stroke="#222" stroke-width="2"/>'
            f'<text x="{24 + px:.1f}" y="{y + 4}" font-size="12">{nice} m</text></g>')


def _line_parts(geometry: dict[str, Any]) -> list[list[tuple[float, float]]]:
    if geometry["type"] == "LineString":
        return [[(c[0], c[1]) for c in geometry["coordinates"]]]
    if geometry["type"] == "MultiLineString":
        return [[(c[0], c[1]) for c in line] for line in geometry["coordinates"]]
    return []


def _line_coords(geometry: dict[str, Any]) -> list[tuple[float, float]]:
    if geometry["type"] == "Point":
        return [tuple(geometry["coordinates"][:2])]
    return [c for part in _line_parts(geometry) for c in part]


def _rings(geometry: dict[str, Any]) -> list[list[tuple[float, float]]]:
    polys = [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry.get("coordinates", [])
    return [[(c[0], c[1]) for c in poly[0]] for poly in polys]


def _points(coords: list[tuple[float, float]], project: Projection) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in (project(lon, lat) for lon, lat in coords))


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f} %"


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)
