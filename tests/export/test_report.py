"""The report, as headless Chromium renders it: map, counts, history, precision; no network."""
from __future__ import annotations

import base64
import io
import json
import re
from collections import Counter
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
import shapely
from PIL import Image
from shapely.geometry import shape

from osmgap.cli import main
from osmgap.export.report import COLOURS
from osmgap.workspace.store import Store
from osmgap.workspace.tracking import record_run
from tests.chromium import dump_dom, screenshot, with_click
from tests.conftest import PROJECT
from tests.fake_maproulette import FakeMapRoulette
from tests.sample_outputs import sample_area, sample_ways, ways_frame, write_outputs

ARTIFACTS = PROJECT / "test-artifacts"


class Dom(HTMLParser):
    """The few things the test reads from Chromium's DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text_of: dict[str, str] = {}
        self._open: list[tuple[str, str]] = []  # (tag, key) of elements whose text we collect
        self._row = ""  # data-status / data-aoi of the table row we are in

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        self.tags.append((tag, a))
        key = a.get("id") or (f"count:{self._row}" if a.get("class") == "count" else None)
        texty = {"osmgap-popup", "leaflet-control-attribution"} & set(a.get("class", "").split())
        if texty and f"class:{min(texty)}" not in self.text_of:
            key = f"class:{min(texty)}"
        if tag == "tr":
            self._row = a.get("data-status") or a.get("data-aoi") or ""
        if a.get("class") == "precision":
            key = f"precision:{self._row}"
        if key:
            self._open.append((tag, key))
            self.text_of[key] = ""

    def handle_endtag(self, tag):
        if self._open and self._open[-1][0] == tag:
            self._open.pop()

    def handle_data(self, data):
        for _, key in self._open:
            self.text_of[key] += data

    def all(self, tag, **attrs):
        return [a for t, a in self.tags if t == tag and all(a.get(k.replace("_", "-")) == v for k, v in attrs.items())]

    def paths(self, cls: str) -> list[dict[str, str]]:
        """The map's vector paths (Leaflet's SVG) whose class list holds ``cls``."""
        return [a for a in self.all("path") if cls in a.get("class", "").split()]


@pytest.fixture(scope="module")
def weekly_state(tmp_path_factory, data):
    """Two weeks of one AOI: published, reviewed (one false positive, one fixed), OSM grown."""
    ways = sample_ways(data)
    ws = tmp_path_factory.mktemp("report") / "ws"
    mp = pytest.MonkeyPatch()
    with FakeMapRoulette() as fake:
        mp.setenv("MAPROULETTE_API_KEY", fake.api_key)
        mp.setenv("HOME", str(ws.parent / "home"))
        mp.setenv("OSMGAP_NOW", "2025-01-06T04:00:00Z")
        week1 = write_outputs(ws / "week1", ways[:6])
        ids = [f["id"] for f in week1.features]
        with Store(ws / "osmgap.sqlite") as store:
            record_run(store, week1, area=sample_area(), osm_ways=ways_frame(ways[6:]))
        publish = ["publish", "--challenge", "osmgap report test", "--project", "1", "--api-url", fake.url]
        assert main([*publish, "--out", str(ws / "week1")]) == 0
        fake.review(1001, ids[0], 2)
        fake.review(1001, ids[1], 1)
        mp.setenv("OSMGAP_NOW", "2025-01-13T04:00:00Z")
        week2 = write_outputs(ws / "week2", ways[:4] + ways[6:7])  # 4, 5 mapped since; 6 newly found
        with Store(ws / "osmgap.sqlite") as store:
            record_run(store, week2, area=sample_area(), osm_ways=ways_frame(ways[4:6] + ways[7:]))
        assert main(["sync", "--out", str(ws / "week2"), "--api-url", fake.url]) == 0
        assert main([*publish, "--out", str(ws / "week2")]) == 0
        assert main(["report", "--out", str(ws / "week2")]) == 0
        assert not fake.violations
    mp.undo()
    with Store(ws / "osmgap.sqlite") as store:
        counts = Counter(r["status"] for r in store.suggestions("paris-1447"))
    return ws / "week2", counts, ids, fake.url


def test_state_behind_the_report_is_what_the_two_weeks_did(weekly_state):
    _, counts, _, _ = weekly_state
    # 0 dismissed; 1 fixed on MapRoulette, 4 and 5 covered by OSM; 2, 3 and the new 6 published
    assert counts == {"dismissed": 1, "fixed": 3, "published": 3}


def _classes(attrs: dict[str, str]) -> set[str]:
    return set(attrs.get("class", "").split())


def _clicked(page, tmp_path, selector: str):
    return with_click(page, selector, tmp_path / "clicked.html")


def test_chromium_renders_the_map_offline_and_a_click_opens_the_popup(weekly_state, tmp_path):
    """Every host name resolves to nothing here: the basemap tiles are asked for and missing,
    and the counts, the OSM roads, the AOI and every suggestion by status are drawn all the
    same; a click on a suggestion opens its popup with its properties and the JOSM and iD links."""
    out, counts, ids, api_url = weekly_state
    dom = Dom()
    dom.feed(dump_dom(_clicked(out / "report.html", tmp_path, "path.status-published")))
    for status in ("open", "published", "fixed", "dismissed"):
        assert dom.text_of[f"count:{status}"] == str(counts.get(status, 0))
    assert dom.text_of["count:total"] == str(sum(counts.values()))
    drawn = Counter(next(c.removeprefix("status-") for c in _classes(a) if c.startswith("status-"))
                    for a in dom.paths("suggestion"))
    assert drawn == counts
    assert len(dom.paths("osm-road")) == 5  # the OSM of the last run: ways 4, 5, 7, 8, 9
    assert len(dom.paths("aoi")) == 1
    tiles = [a["src"] for a in dom.all("img") if "leaflet-tile" in _classes(a)]
    assert tiles and all(t.startswith("https://tile.openstreetmap.org/") for t in tiles)  # asked for, offline
    assert "OpenStreetMap contributors" in dump_text(dom, "leaflet-control-attribution")
    # the popup of the published suggestion it clicked: its properties, then the links
    popup = dump_text(dom, "osmgap-popup")
    assert "published (on MapRoulette)" in popup and "missing_road" in popup and "confidence1.00" in popup
    josm = next(a["href"] for a in dom.all("a") if "josm-link" in _classes(a))
    idl = next(a["href"] for a in dom.all("a") if "id-link" in _classes(a))
    assert josm.startswith("http://127.0.0.1:8111/load_and_zoom?")
    box = {k: float(v[0]) for k, v in parse_qs(urlsplit(josm).query).items()}
    lat, lon = (float(v) for v in idl.split("#map=18/")[1].split("/"))
    assert idl.startswith("https://www.openstreetmap.org/edit?editor=id#map=18/")
    assert box["left"] < lon < box["right"] and box["bottom"] < lat < box["top"]
    clicked = _clicked_suggestion(out, dom)
    assert clicked.within(shapely.box(box["left"], box["bottom"], box["right"], box["top"]))
    assert clicked.centroid.distance(shapely.Point(lon, lat)) < 0.001
    assert any(a.get("href", "").startswith(api_url.removesuffix("/api/v2") + "/challenge/1001/task/")
               for a in dom.all("a") if "task-link" in _classes(a))
    assert dom.text_of["precision:paris-1447"].strip() == "50 %"  # 1 false positive of 2 reviewed
    links = [a["href"] for a in dom.all("a") if "/task/" in a.get("href", "") and "task-link" not in _classes(a)]
    assert len(links) == 5 and all(h.startswith(api_url.removesuffix("/api/v2") + "/challenge/1001/task/") for h in links)
    assert (dom.text_of["latest-new"], dom.text_of["latest-reopened"], dom.text_of["latest-fixed"],
            dom.text_of["latest-dismissed"]) == ("1", "0", "3", "1")


def dump_text(dom: Dom, cls: str) -> str:
    """The text of the first element with class ``cls`` (collected by Dom under that key)."""
    return dom.text_of.get(f"class:{cls}", "")


def _clicked_suggestion(out, dom: Dom):
    """The geometry of the suggestion whose popup is open (its id heads the popup)."""
    heading = dom.text_of["class:osmgap-popup"]
    doc = {f["id"]: f for f in json.loads((out / "suggestions.geojson").read_text())["features"]}
    sid = next(i for i in doc if heading.startswith(i))
    return shape(doc[sid]["geometry"])


def test_the_basemap_is_an_option_and_none_loads_nothing(weekly_state, tmp_path, capsys):
    out, _, _, _ = weekly_state
    none, mine = tmp_path / "none.html", tmp_path / "mine.html"
    assert main(["report", "--out", str(out), "--html", str(none), "--markdown", str(tmp_path / "r.md"),
                 "--basemap", "none"]) == 0
    page = none.read_text()
    assert "tile.openstreetmap.org" not in page and "<link" not in page and "<script src" not in page
    sources = re.findall(r'\ssrc="([^"]*)"', page)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)  # the history plot only
    url = "https://tiles.example.org/{z}/{x}/{y}.png?key=1"
    assert main(["report", "--out", str(out), "--html", str(mine), "--markdown", str(tmp_path / "r.md"),
                 "--basemap", url]) == 0
    assert json.dumps(url) in mine.read_text() and "basemap: tiles.example.org" in mine.read_text()
    for bad in ("ftp://x.org/{z}/{x}/{y}.png", "https://x.org/tiles.png", "https://x.org/{z}/{x}/{y}/{q}.png"):
        with pytest.raises(SystemExit) as exc:
            main(["report", "--out", str(out), "--html", str(tmp_path / "bad.html"), "--basemap", bad])
        assert exc.value.code == 2
        err = capsys.readouterr().err.strip()
        assert "--basemap" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "bad.html").exists()


def test_the_history_plot_is_an_embedded_png(weekly_state):
    out, _, _, _ = weekly_state
    page = (out / "report.html").read_text()
    sources = re.findall(r'\ssrc="([^"]*)"', page)
    img = Image.open(io.BytesIO(base64.b64decode(sources[0].split(",", 1)[1])))
    assert img.format == "PNG" and img.width > 500
    rows = re.findall(r"<tr><td>(\d{4}-\d\d-\d\d)</td>(.*?)</tr>", page)
    table = {day: [int(n) for n in re.findall(r">(\d+)<", cells)] for day, cells in rows}
    assert table == {"2025-01-06": [6, 0, 0, 0], "2025-01-13": [1, 0, 3, 1]}  # new, reopened, fixed, dismissed


def test_screenshot_shows_every_status_colour(weekly_state, tmp_path):
    """test-artifacts/report.png: the page as a reader sees it offline (no basemap tiles);
    report-popup.png: its map with one suggestion clicked (kept for the eye)."""
    out, _, _, _ = weekly_state
    png = screenshot(out / "report.html", ARTIFACTS / "report.png")
    with Image.open(png) as im:
        assert im.size == (1000, 2400)
        rgb = np.asarray(im.convert("RGB")).reshape(-1, 3)
    for status in ("published", "fixed", "dismissed", "osm"):
        colour = [int(COLOURS[status][i:i + 2], 16) for i in (1, 3, 5)]
        assert (rgb == colour).all(axis=1).sum() > 200, f"{status} ({COLOURS[status]}) hardly drawn"
    popup = screenshot(_clicked(out / "report.html", tmp_path, "path.status-published"),
                       ARTIFACTS / "report-popup.png", size=(1000, 1100))
    with Image.open(popup) as im:
        assert im.size == (1000, 1100)


def test_a_state_without_runs_of_this_aoi_is_said_plainly(weekly_state, tmp_path, data, capsys):
    """A diff of another area beside the workspace: no report of nothing (or of the other
    area); no state file at all: said so. Exit 2 and nothing written, either way."""
    out, _, _, _ = weekly_state
    other = tmp_path / "elsewhere"
    write_outputs(other, sample_ways(data)[:2])
    summary = json.loads((other / "summary.json").read_text())
    summary["aoi"]["name"] = "elsewhere"
    (other / "summary.json").write_text(json.dumps(summary))
    state = out.parent / "osmgap.sqlite"
    assert main(["report", "--out", str(other), "--state", str(state)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(state) in err
    assert "holds no run of AOI 'elsewhere'" in err and "runs of: 'paris-1447'" in err and "--state" in err
    assert main(["report", "--out", str(other)]) == 2  # the default OUT/../osmgap.sqlite does not exist
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no state file here" in err and str(tmp_path / "osmgap.sqlite") in err
    assert sorted(p.name for p in other.iterdir()) == ["suggestions.geojson", "summary.json"]


def test_a_diff_not_recorded_is_noted_on_the_page(weekly_state, tmp_path, data, capsys):
    out, _, _, _ = weekly_state
    unrecorded = tmp_path / "week3"
    write_outputs(unrecorded, sample_ways(data)[:2])
    assert main(["report", "--out", str(unrecorded), "--state", str(out.parent / "osmgap.sqlite")]) == 0
    assert f"The diff in {unrecorded} is not recorded" in capsys.readouterr().err
    page = (unrecorded / "report.html").read_text()
    assert f"The diff in {unrecorded} is not recorded" in page and "2 recorded run(s) of paris-1447" in page


def test_a_demonstrations_report_says_it_first(tmp_path, capsys):
    """The quickstart's diff recorded in a state: its report listed the three removed streets as
    waiting for a mapper, without a word that they are not missing from OSM."""
    out, state = tmp_path / "demo", tmp_path / "osmgap.sqlite"
    assert main(["diff", "--aoi", "sample_aoi/paris-1447-demo", "--out", str(out), "--state", str(state)]) == 0
    assert main(["report", "--out", str(out), "--state", str(state), "--basemap", "none"]) == 0
    markdown, page = (out / "report.md").read_text(), (out / "report.html").read_text()
    assert "NOT missing from OpenStreetMap" in markdown.split("Waiting for a mapper")[0]  # before the list
    assert "NOT missing from OpenStreetMap" in page
    screenshot(out / "report.html", tmp_path / "demo-report.png")  # looked at by hand once: the note heads the page


def test_missing_leaflet_is_a_clear_error_and_writes_nothing(weekly_state, tmp_path, monkeypatch, capsys):
    out, _, _, _ = weekly_state
    monkeypatch.setenv("OSMGAP_LEAFLET_DIR", str(tmp_path / "no-leaflet"))
    page, md = tmp_path / "r.html", tmp_path / "r.md"
    assert main(["report", "--out", str(out), "--html", str(page), "--markdown", str(md)]) == 2
    err = capsys.readouterr().err.strip()
    assert "Leaflet 1.9.4" in err and "fetch_leaflet.sh" in err and len(err.splitlines()) == 1
    assert not page.exists() and not md.exists()


def test_markdown_summary_says_the_same(weekly_state):
    out, counts, _, _ = weekly_state
    md = (out / "report.md").read_text()
    assert "**1 new**, **0 reopened**, **3 fixed**, **1 dismissed**" in md
    assert f"| published | {counts['published']} |" in md and "| paris-1447 | 2 | 1 | 50 % |" in md


def test_markdown_names_the_gaps_fixed_and_dismissed(weekly_state):
    """The mail said "3 fixed, 1 dismissed" and listed only the gaps still waiting: which were
    mapped and which a reviewer rejected, with why and the task, it did not say."""
    out, _, ids, url = weekly_state
    md = (out / "report.md").read_text()
    fixed = md.split("Fixed since the previous run:\n\n")[1].split("\n\n")[0].splitlines()
    dismissed = md.split("Dismissed since the previous run:\n\n")[1].split("\n\n")[0].splitlines()
    assert len(fixed) == 3 and len(dismissed) == 1
    assert dismissed[0].startswith(f"- [{ids[0]}]({url.removesuffix('/api/v2')}/challenge/1001/task/")
    assert dismissed[0].endswith(", MapRoulette: False\\_Positive")  # a reviewer's verdict, said
    assert any(ids[1] in line and "MapRoulette: Fixed" in line for line in fixed)  # fixed by a mapper there
    assert {i for i in ids[:6] if any(i in line for line in fixed)} == {ids[1], ids[4], ids[5]}


def test_a_missing_connection_is_drawn_as_a_dotted_gap_not_as_a_road(tmp_path, data):
    """A missing_connection's line is the straight gap between two junctions, not the road: the map
    draws it thin and dotted, the legend says so, and the Markdown does not call its length a road's."""
    from shapely.geometry import Point

    from osmgap.core.aoi import load_aoi, reproject
    from osmgap.core.datamodel import WGS84
    from osmgap.export.geojson import suggestions_feature_collection
    from osmgap.gps.connections import Connection, as_suggestions
    from osmgap.workspace.outputs import read_outputs
    from tests.sample_outputs import SAMPLE_AOI

    ways = sample_ways(data)
    out = tmp_path / "ws" / "run"
    write_outputs(out, ways[:1])
    crs = load_aoi(str(SAMPLE_AOI)).metric_crs
    a, b = (reproject(Point(shape(w["geometry"]).coords[k][:2]), WGS84, crs) for w, k in ((ways[1], 0), (ways[2], -1)))
    (connection,) = as_suggestions([Connection(1, 2, (a.x, a.y), (b.x, b.y), 450.0, [3, 4])], crs)
    doc = json.loads((out / "suggestions.geojson").read_text())
    doc["features"] += suggestions_feature_collection([connection])["features"]
    (out / "suggestions.geojson").write_text(json.dumps(doc))
    with Store(out.parent / "osmgap.sqlite") as store:
        record_run(store, read_outputs(out), area=sample_area(), osm_ways=ways_frame(ways[3:]))
    assert main(["report", "--out", str(out), "--basemap", "none"]) == 0
    dom = Dom()
    dom.feed(dump_dom(out / "report.html"))
    (gap,) = dom.paths("connection")
    assert gap["stroke-dasharray"] == "1 7" and float(gap["stroke-width"]) < 5
    (road,) = [p for p in dom.paths("suggestion") if "connection" not in _classes(p)]
    assert road.get("stroke-dasharray", "none") == "none" and float(road["stroke-width"]) == 5
    assert "missing connection: two junctions, the road's course unknown" in dom.text_of["legend"]
    md = (out / "report.md").read_text()
    shown = connection.id.replace("_", "\\_")  # as Markdown writes it literally
    assert f"{shown}: two junctions {connection.length_m:.0f} m apart, the road's course unknown" in md


def test_a_weeks_changes_are_counted_once_from_the_last_report(tmp_path, data, monkeypatch):
    """Counted since the previous run, last week's sync (after last week's diff) was counted again
    this week: "1 dismissed" twice for one rejection. Counted since the last report, once."""
    ways = sample_ways(data)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    state = tmp_path / "osmgap.sqlite"
    with FakeMapRoulette() as fake:
        monkeypatch.setenv("MAPROULETTE_API_KEY", fake.api_key)
        publish = ["publish", "--challenge", "c", "--project", "1", "--api-url", fake.url, "--state", str(state)]

        def week(when: str, sync_at: str, out: str, suggested: list) -> str:
            monkeypatch.setenv("OSMGAP_NOW", when)
            outputs = write_outputs(tmp_path / out, suggested)
            with Store(state) as store:
                record_run(store, outputs, area=sample_area(), osm_ways=ways_frame(ways[6:]))
            monkeypatch.setenv("OSMGAP_NOW", sync_at)  # sync, publish and report come after the diff
            assert main(["sync", "--out", str(tmp_path / out), "--api-url", fake.url, "--state", str(state)]) == 0
            assert main([*publish, "--out", str(tmp_path / out)]) == 0
            assert main(["report", "--out", str(tmp_path / out), "--state", str(state), "--basemap", "none"]) == 0
            return (tmp_path / out / "report.md").read_text()

        first = week("2025-01-06T04:00:00Z", "2025-01-06T04:05:00Z", "w1", ways[:3])
        assert "**3 new**" in first
        fake.review(1001, write_outputs(tmp_path / "ids", ways[:3]).features[0]["id"], 2)  # rejected mid-week
        second = week("2025-01-13T04:00:00Z", "2025-01-13T04:05:00Z", "w2", ways[:3])
        assert "Since the last report (2025-01-06T04:05:00Z): **0 new**, **0 reopened**, **0 fixed**, **1 dismissed**" in second
        third = week("2025-01-20T04:00:00Z", "2025-01-20T04:05:00Z", "w3", ways[:3])  # nothing happened
        assert "Since the last report (2025-01-13T04:05:00Z): **0 new**, **0 reopened**, **0 fixed**, **0 dismissed**" in third


def test_a_clock_set_back_between_two_weeks_loses_no_change(tmp_path, data, monkeypatch):
    """The next report counted the events timed after the last report's time, and the last run was
    the latest by time: a clock set back between two weekly runs (a restored VM, a wrong RTC
    corrected) hid that week's new gap and rejection, and showed last week's run as the last."""
    ways = sample_ways(data)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    state = tmp_path / "osmgap.sqlite"
    with FakeMapRoulette() as fake:
        monkeypatch.setenv("MAPROULETTE_API_KEY", fake.api_key)

        def week(when: str, out: str, suggested: list) -> str:
            monkeypatch.setenv("OSMGAP_NOW", when)
            outputs = write_outputs(tmp_path / out, suggested)
            with Store(state) as store:
                record_run(store, outputs, area=sample_area(), osm_ways=ways_frame(ways[6:]))
            assert main(["sync", "--out", str(tmp_path / out), "--api-url", fake.url, "--state", str(state)]) == 0
            assert main(["publish", "--challenge", "c", "--project", "1", "--api-url", fake.url, "--state", str(state),
                         "--out", str(tmp_path / out)]) == 0
            assert main(["report", "--out", str(tmp_path / out), "--state", str(state), "--basemap", "none"]) == 0
            return (tmp_path / out / "report.md").read_text()

        assert "**3 new**" in week("2025-01-06T04:00:00Z", "w1", ways[:3])
        fake.review(1001, write_outputs(tmp_path / "ids", ways[:3]).features[0]["id"], 2)  # rejected mid-week
        second = week("2024-12-30T04:00:00Z", "w2", ways[:4])  # a week later, by a clock set back two weeks
    assert "Since the last report (2025-01-06T04:00:00Z): **1 new**, **0 reopened**, **0 fixed**, **1 dismissed**" in second
    with Store(state) as store:
        assert store.runs("paris-1447")[-1]["out_dir"] == str((tmp_path / "w2").resolve())


def test_a_state_that_cannot_be_written_still_gets_its_report(weekly_state, tmp_path, monkeypatch, caplog):
    """The report notes its time in the state; a state it may only read must not cost the pages."""
    import sqlite3

    out, _, _, _ = weekly_state

    def read_only(*args, **kwargs):
        raise sqlite3.OperationalError("attempt to write a readonly database")

    monkeypatch.setattr(Store, "reported", read_only)
    html = tmp_path / "r.html"
    assert main(["report", "--out", str(out), "--html", str(html), "--markdown", str(tmp_path / "r.md")]) == 0
    assert html.is_file() and "could not note the report's time" in caplog.text


def test_a_state_the_kernel_says_cannot_be_written_still_gets_its_report(weekly_state, tmp_path, monkeypatch):
    """diff refuses a state it cannot write (its run could not be recorded); report only reads
    it, and must not refuse it (root writes anything, so the kernel's answer is given here)."""
    import os

    import osmgap.workspace.store as store

    out, _, _, _ = weekly_state
    real = os.access
    monkeypatch.setattr(store.os, "access", lambda p, mode, **kw: False if mode & os.W_OK else real(p, mode, **kw))
    html = tmp_path / "r.html"
    assert main(["report", "--out", str(out), "--html", str(html), "--markdown", str(tmp_path / "r.md")]) == 0
    assert html.is_file()


def test_a_report_killed_while_writing_leaves_both_files_as_they_were(weekly_state, tmp_path, monkeypatch):
    """report.html was replaced, then the run died before report.md: this week's page beside
    last week's summary. Both go to disk first now, then both are renamed."""
    import errno
    import os

    import osmgap.core.atomic as atomic

    out, _, _, _ = weekly_state
    html, md = tmp_path / "r.html", tmp_path / "r.md"
    argv = ["report", "--out", str(out), "--html", str(html), "--markdown", str(md)]
    html.write_text("last week's page")
    md.write_text("last week's summary")
    calls = []
    real = os.fsync

    def full_disk(fd):
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd)

    monkeypatch.setattr(atomic.os, "fsync", full_disk)
    assert main(argv) != 0
    assert (html.read_text(), md.read_text()) == ("last week's page", "last week's summary")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".r.")]  # no temp file left


@pytest.mark.parametrize("flags", [("--html", "osmgap.sqlite"), ("--html", "osmgap.sqlite-journal"),
                                   ("--markdown", "week2/summary.json"), ("--html", "week2/suggestions.osm"),
                                   ("--html", "page", "--markdown", "page")], ids=lambda f: "-".join(f))
def test_a_page_over_the_state_or_the_diffs_files_is_refused_before_anything_is_written(weekly_state, tmp_path,
                                                                                        capsys, flags):
    """`--html osmgap.sqlite` wrote the page over the state (all history and verdicts gone), then
    failed noting its time there; `--markdown DIR/summary.json` replaced the diff's summary, so
    publish and report refused DIR; the same file for both pages silently lost the HTML."""
    import shutil

    out, _, _, _ = weekly_state
    ws = tmp_path / "ws"
    shutil.copytree(out.parent, ws, ignore=shutil.ignore_patterns("week1"))  # the fixture's state stays whole
    before = {p: p.read_bytes() for p in ws.rglob("*") if p.is_file()}
    argv = [a if a.startswith("--") else str(ws / a) for a in flags]
    assert main(["report", "--out", str(ws / "week2"), "--basemap", "none", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"osmgap: error: {argv[-1]}: is ")
    assert {p: p.read_bytes() for p in ws.rglob("*") if p.is_file()} == before


def test_gaps_found_again_after_they_were_fixed_are_counted_as_reopened(tmp_path, data, monkeypatch):
    """Three roads mapped, then deleted from OSM again: the diff said "3 reopened", the report
    "0 new, 0 fixed, 0 dismissed" while open rose by 3, and its history had no such day. A new id
    along a rejected road (its twin) was "dismissed" in the history and not in the "since" line."""
    from osmgap.core.taskstatus import TaskStatus
    from osmgap.workspace.tracking import apply_task_statuses

    ways = sample_ways(data)
    twin = json.loads(json.dumps(ways[0]))
    twin["properties"]["osm_id"] = -twin["properties"]["osm_id"]  # the same line under another id
    state = tmp_path / "osmgap.sqlite"

    def week(when: str, suggested: list, osm: list) -> str:
        monkeypatch.setenv("OSMGAP_NOW", when)
        outputs = write_outputs(tmp_path / when[:10], suggested)
        with Store(state) as store:
            record_run(store, outputs, area=sample_area(), osm_ways=ways_frame(osm))
        assert main(["report", "--out", str(outputs.out_dir), "--state", str(state), "--basemap", "none"]) == 0
        return (outputs.out_dir / "report.md").read_text()

    week("2025-01-06T04:00:00Z", ways[:5], ways[5:])
    monkeypatch.setenv("OSMGAP_NOW", "2025-01-08T10:00:00Z")
    with Store(state) as store:  # a reviewer rejects road 0
        rejected = write_outputs(tmp_path / "ids", ways[:1]).features[0]["id"]
        apply_task_statuses(store, "paris-1447", [TaskStatus(1, 9, rejected, 2)])
    second = week("2025-01-13T04:00:00Z", ways[:2], ways[2:])  # roads 2-4 mapped
    assert "**0 new**, **0 reopened**, **3 fixed**, **1 dismissed**" in second
    third = week("2025-01-20T04:00:00Z", [*ways[:5], twin], ways[5:])  # ... and deleted again
    assert ("Since the last report (2025-01-13T04:00:00Z): **0 new**, **3 reopened**, **0 fixed**, "
            "**0 dismissed**") in third
    page = (tmp_path / "2025-01-20" / "report.html").read_text()
    assert re.search(r'<span id="latest-reopened">3</span> reopened', page)
    rows = re.findall(r"<tr><td>(\d{4}-\d\d-\d\d)</td>(.*?)</tr>", page)
    table = {day: [int(n) for n in re.findall(r">(\d+)<", cells)] for day, cells in rows}
    assert table == {"2025-01-06": [5, 0, 0, 0], "2025-01-08": [0, 0, 0, 1], "2025-01-13": [0, 0, 3, 0],
                     "2025-01-20": [0, 3, 0, 0]}  # new, reopened, fixed, dismissed: no twin
    from osmgap.export.report import SERIES_COLOURS

    plot = re.search(r'id="history-plot"[^>]*src="data:image/png;base64,([^"]+)"', page)
    pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(plot[1]))).convert("RGB")).reshape(-1, 3)
    purple = tuple(int(SERIES_COLOURS["reopened"][i:i + 2], 16) for i in (1, 3, 5))
    assert (pixels == purple).all(axis=1).sum() > 100  # the week's reopened bar is drawn
