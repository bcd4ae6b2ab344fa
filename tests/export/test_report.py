"""The report, as headless Chromium renders it: map, counts, history, precision; no network."""
from __future__ import annotations

import base64
import io
import re
from collections import Counter
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

from osmgap.cli import main
from osmgap.export.report import COLOURS
from osmgap.workspace.store import Store
from osmgap.workspace.tracking import record_run
from tests.chromium import dump_dom, screenshot
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


def test_chromium_renders_the_map_and_the_counts(weekly_state):
    out, counts, ids, api_url = weekly_state
    dom = Dom()
    dom.feed(dump_dom(out / "report.html"))
    for status in ("open", "published", "fixed", "dismissed"):
        assert dom.text_of[f"count:{status}"] == str(counts.get(status, 0))
    assert dom.text_of["count:total"] == str(sum(counts.values()))
    svg = dom.all("svg", id="map")
    assert svg and int(svg[0]["width"]) > 400
    drawn = Counter(a["data-status"] for a in dom.all("polyline", **{"class": "suggestion"}))
    assert drawn == counts
    assert len(dom.all("polyline", **{"class": "osm"})) == 5  # the OSM of the last run: ways 4, 5, 7, 8, 9
    assert len(dom.all("polygon", **{"class": "aoi"})) == 1
    assert (dom.text_of["latest-new"], dom.text_of["latest-fixed"], dom.text_of["latest-dismissed"]) == ("1", "3", "1")
    assert dom.text_of["precision:paris-1447"].strip() == "50 %"  # 1 false positive of 2 reviewed
    links = [a["href"] for a in dom.all("a") if "/task/" in a.get("href", "")]
    assert len(links) == 5 and all(h.startswith(api_url.removesuffix("/api/v2") + "/challenge/1001/task/") for h in links)


def test_the_history_plot_is_an_embedded_png_and_the_page_loads_nothing(weekly_state):
    out, _, _, _ = weekly_state
    page = (out / "report.html").read_text()
    assert "<script" not in page and "<link" not in page
    sources = re.findall(r'\ssrc="([^"]*)"', page)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    img = Image.open(io.BytesIO(base64.b64decode(sources[0].split(",", 1)[1])))
    assert img.format == "PNG" and img.width > 500
    rows = re.findall(r"<tr><td>(\d{4}-\d\d-\d\d)</td>(.*?)</tr>", page)
    table = {day: [int(n) for n in re.findall(r">(\d+)<", cells)] for day, cells in rows}
    assert table == {"2025-01-06": [6, 0, 0], "2025-01-13": [1, 3, 1]}  # new, fixed, dismissed


def test_screenshot_shows_every_status_colour(weekly_state):
    out, _, _, _ = weekly_state
    png = screenshot(out / "report.html", ARTIFACTS / "report.png")
    with Image.open(png) as im:
        assert im.size == (1000, 2400)
        rgb = np.asarray(im.convert("RGB")).reshape(-1, 3)
    for status in ("published", "fixed", "dismissed", "osm"):
        colour = [int(COLOURS[status][i:i + 2], 16) for i in (1, 3, 5)]
        assert (rgb == colour).all(axis=1).sum() > 200, f"{status} ({COLOURS[status]}) hardly drawn"


def test_markdown_summary_says_the_same(weekly_state):
    out, counts, _, _ = weekly_state
    md = (out / "report.md").read_text()
    assert "**1 new**, **3 fixed**, **1 dismissed**" in md
    assert f"| published | {counts['published']} |" in md and "| paris-1447 | 2 | 1 | 50 % |" in md
