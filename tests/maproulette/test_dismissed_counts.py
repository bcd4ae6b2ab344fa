"""What "dismissed" counts: sync said "2 newly dismissed" for one road a reviewer rejected, when
a second gap along it (the same road under another id) was dismissed with it, while the weekly
report's "since" line said "1 dismissed" for the same week. A twin dismissed because it lies
along a rejected road is no reviewer's verdict: neither counts it as dismissed."""
from __future__ import annotations

import re

from shapely.affinity import translate
from shapely.geometry import mapping, shape

from osmgap.cli import main
from osmgap.workspace.store import Store
from osmgap.workspace.tracking import TWIN_REASON
from tests.maproulette.publishing import publish
from tests.sample_outputs import sample_ways, write_outputs


def test_sync_and_the_report_count_a_rejection_once(fake, data, tmp_path, capsys, monkeypatch):
    ways = sample_ways(data)
    twin = {**ways[0], "properties": {**ways[0]["properties"], "osm_id": 900001},  # ~2 m east: the same road
            "geometry": mapping(translate(shape(ways[0]["geometry"]), 0.00003, 0.0))}
    out = tmp_path / "ws" / "run"
    rejected, other = (f["id"] for f in write_outputs(out, [ways[0], twin]).features)
    monkeypatch.setenv("OSMGAP_NOW", "2025-01-06T04:00:00Z")
    assert publish(fake, out) == 0
    assert main(["report", "--out", str(out), "--basemap", "none"]) == 0
    (cid,) = fake.challenges
    fake.review(cid, rejected, 2)  # "Not an issue"
    monkeypatch.setenv("OSMGAP_NOW", "2025-01-13T04:00:00Z")
    capsys.readouterr()
    assert main(["sync", "--out", str(out), "--api-url", fake.url]) == 0
    said = capsys.readouterr().out
    synced = int(re.search(r"(\d+) newly dismissed", said)[1])
    assert "newly dismissed (1 more along them: the same roads under other ids)" in said  # said apart
    assert main(["report", "--out", str(out), "--basemap", "none"]) == 0
    reported = int(re.search(r"\*\*(\d+) dismissed\*\*", (out / "report.md").read_text())[1])
    assert synced == reported == 1
    with Store(out.parent / "osmgap.sqlite", create=False) as s:
        row = s.suggestion("paris-1447", other)
    assert row["status"] == "dismissed" and row["reason"] == f"{TWIN_REASON} {rejected}"  # still kept out
