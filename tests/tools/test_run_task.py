"""`osmgap run tasks/NAME.toml` as cron runs it: weekly, on the real sample, against the fake
MapRoulette; and never two runs of one workspace at once."""
from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import geopandas as gpd
import pytest
from shapely.geometry import shape

from osmgap.workspace.store import Store
from osmgap.workspace.tracking import TWIN_REASON
from tests.chromium import dump_dom
from tests.cli import held_lock, osmgap_cli
from tests.conftest import PROJECT
from tests.export.test_report import Dom
from tests.fake_maproulette import FakeMapRoulette

pytestmark = pytest.mark.slow
TOLERANCE_M = 15.0


def osmgap(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return osmgap_cli(*args, env={**os.environ, **env})


def write_task(ws: Path, api_url: str | None, osm: str | None = "osm/current.geojson") -> Path:
    publish = (f'[publish]\nchallenge = "osmgap weekly test"\nproject = 1\napi-url = "{api_url}"\nretries = 1\n'
               if api_url else '[publish]\nchallenge = "osmgap weekly test"\nproject = 1\ndry-run = true\n')
    task = ws / "tasks" / "sample.toml"
    task.parent.mkdir(parents=True, exist_ok=True)
    task.write_text(f'name = "sample"\nschedule = "weekly"\nroot = ".."\n\n[diff]\n'
                    f'aoi = "{PROJECT / "sample_aoi" / "paris-1447"}"\nout = "out/paris-1447"\n'
                    + (f'osm = "{osm}"\n' if osm else "") + f'tolerance = {TOLERANCE_M}\n\n{publish}\n[report]\n')
    return task


def write_osm(ws: Path, features: list[dict]) -> None:
    """This week's OSM: real ways of the sample (a subset while they are 'not yet mapped')."""
    path = ws / "osm" / "current.geojson"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))


def suggestions(ws: Path) -> list[dict]:
    return json.loads((ws / "out" / "paris-1447" / "suggestions.geojson").read_text())["features"]


def statuses(ws: Path) -> dict[str, tuple[str, str]]:
    with Store(ws / "out" / "osmgap.sqlite", create=False) as store:
        return {r["id"]: (r["status"], r["reason"]) for r in store.suggestions("paris-1447")}


def test_a_run_a_week_later_and_the_report_show_new_fixed_and_dismissed(tmp_path, data):
    real_osm = json.loads((data / "sample_aoi" / "paris-1447" / "osm_roads.geojson").read_text())["features"]
    ws = tmp_path / "ws"
    with FakeMapRoulette() as fake:
        env = {"MAPROULETTE_API_KEY": fake.api_key, "HOME": str(tmp_path / "home"), "OMP_NUM_THREADS": "1"}
        task = write_task(ws, fake.url)

        # week 1: none of the sample's roads in OSM yet, so what the model sees is missing
        write_osm(ws, [])
        week1 = osmgap("run", str(task), env={**env, "OSMGAP_NOW": "2025-01-06T04:17:00Z"})
        assert week1.returncode == 0, week1.stdout + week1.stderr
        found = suggestions(ws)
        assert len(found) >= 2, "the sample should give the model at least two roads to suggest"
        assert {s for s, _ in statuses(ws).values()} == {"published"}
        challenge = fake.challenge_named("osmgap weekly test")["id"]
        assert set(fake.tasks_of(challenge)) == {f["id"] for f in found}

        # a reviewer rejects the longest suggestion; the roads not next to it get mapped
        rejected = max(found, key=lambda f: f["properties"]["length_m"])
        rejected_task = fake.tasks_of(challenge)[rejected["id"]].id
        fake.review(challenge, rejected["id"], 2)
        write_osm(ws, _ways_away_from(real_osm, rejected, TOLERANCE_M))
        week2 = osmgap("run", str(task), env={**env, "OSMGAP_NOW": "2025-01-13T04:17:00Z"})
        assert week2.returncode == 0, week2.stdout + week2.stderr
        after = statuses(ws)
        assert after[rejected["id"]] == ("dismissed", "MapRoulette: False_Positive")
        # the model still sees the rejected road; its id may differ now that OSM ways around it
        # anchor it (osmgap/ids.py), but whatever id it has, it is dismissed, so nobody is asked again
        seen_again = [f for f in suggestions(ws) if _along(f, rejected)]
        assert seen_again
        assert all(after[f["id"]][0] == "dismissed" for f in seen_again)
        assert not ({f["id"] for f in seen_again} - {rejected["id"]}) & set(fake.tasks_of(challenge))
        fixed = [i for i, (s, r) in after.items() if s == "fixed"]
        assert fixed and {after[i][1] for i in fixed} <= {"covered by OSM", "no longer detected"}
        assert any(after[i][1] == "covered by OSM" for i in fixed)
        tasks = fake.tasks_of(challenge)
        assert tasks[rejected["id"]].id == rejected_task and tasks[rejected["id"]].status == 2
        assert not set(fixed) & set(tasks)  # gaps that went away left the challenge
        new = [i for i, (s, r) in after.items() if i not in {f["id"] for f in found}]
        assert all(after[i][0] in ("published", "dismissed") for i in new)
        new = [i for i in new if not after[i][1].startswith(TWIN_REASON)]  # not new: the same road seen before

        # the report of week 2, as a browser shows it
        dom = Dom()
        dom.feed(dump_dom(ws / "out" / "paris-1447" / "report.html"))
        counts = {s: sum(1 for v in after.values() if v[0] == s) for s in ("open", "published", "fixed", "dismissed")}
        assert {s: int(dom.text_of[f"count:{s}"]) for s in counts} == counts
        assert int(dom.text_of["latest-fixed"]) == len(fixed)
        assert int(dom.text_of["latest-dismissed"]) == 1
        assert int(dom.text_of["latest-new"]) == len(new)
        assert len(dom.paths("suggestion")) == len(after)
        assert dom.text_of["precision:paris-1447"].strip() == "0 %"  # 1 reviewed, a false positive
        md = (ws / "out" / "paris-1447" / "report.md").read_text()
        assert f"**{len(new)} new**, **0 reopened**, **{len(fixed)} fixed**, **1 dismissed**" in md

        # the same week run again (cron retried): nothing changes, nothing is sent again
        writes = len(fake.writes())
        again = osmgap("run", str(task), env={**env, "OSMGAP_NOW": "2025-01-13T05:17:00Z"})
        assert again.returncode == 0, again.stdout + again.stderr
        assert statuses(ws) == after and len(fake.writes()) == writes
        assert not fake.violations, fake.violations
        md = (ws / "out" / "paris-1447" / "report.md").read_text()
        assert "3 run(s)" in md and "**0 new**, **0 reopened**, **0 fixed**, **0 dismissed**" in md


def test_a_second_run_of_the_same_workspace_does_nothing_while_one_holds_the_lock(tmp_path):
    ws = tmp_path / "ws"
    task = write_task(ws, None)
    lock = ws / "out" / "osmgap.sqlite.lock"
    lock.parent.mkdir(parents=True)
    with held_lock(lock):
        busy = osmgap("run", str(task), env={"HOME": str(tmp_path / "home")})
        assert busy.returncode == 3, busy.stdout + busy.stderr
        assert "another run is in progress" in busy.stdout and "test holder" in busy.stdout
        assert not (ws / "out" / "paris-1447").exists() and not (ws / "out" / "osmgap.sqlite").exists()


def test_a_run_holds_the_lock_while_it_works_and_frees_it_after(tmp_path):
    ws = tmp_path / "ws"
    task = write_task(ws, None, osm=None)  # the shipped kind of task: sample data, publish as a dry run
    lock = ws / "out" / "osmgap.sqlite.lock"
    proc = subprocess.Popen([sys.executable, "-m", "osmgap", "run", str(task)], cwd=PROJECT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, "HOME": str(tmp_path / "home"), "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + 120
        while not (lock.exists() and f"pid {proc.pid}" in lock.read_text()):
            assert proc.poll() is None and time.monotonic() < deadline, "the run never took the lock"
            time.sleep(0.05)
        fd = os.open(lock, os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            assert proc.wait(timeout=600) == 0, proc.stdout.read()
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free again once the run is over
        finally:
            os.close(fd)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _along(feature: dict, suggestion: dict) -> bool:
    """``feature`` runs along ``suggestion``: >= 80 % of it within the tolerance."""
    a, b = (gpd.GeoSeries([shape(f["geometry"])], crs="EPSG:4326").to_crs(32631).iloc[0] for f in (feature, suggestion))
    return a.length > 0 and a.intersection(b.buffer(TOLERANCE_M)).length >= 0.8 * a.length


def _ways_away_from(ways: list[dict], suggestion: dict, tolerance_m: float) -> list[dict]:
    """The real ways that stay farther than the tolerance from ``suggestion``: mapping them
    cannot cover it, so the model's line there stays a gap."""
    frame = gpd.GeoDataFrame.from_features(ways, crs="EPSG:4326").to_crs(32631)
    line = gpd.GeoSeries([shape(suggestion["geometry"])], crs="EPSG:4326").to_crs(32631).iloc[0]
    return [w for w, g in zip(ways, frame.geometry) if g.distance(line) > tolerance_m]


def test_a_failed_sync_still_publishes_and_reports_and_the_exit_code_says_so(tmp_path, monkeypatch, capsys):
    """A sync error (a refused key, an answer osmgap refuses) stopped the run: this week's gaps were
    never published and the report kept last week's content, every week."""
    import osmgap.maproulette.sync
    from osmgap.cli import main
    from osmgap.errors import InputError

    def refused(*args, **kwargs):
        raise InputError("https://maproulette.example/api/v2", "MapRoulette refused the API key (HTTP 401)")

    monkeypatch.setattr(osmgap.maproulette.sync, "sync_statuses", refused)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    task = write_task(tmp_path / "ws", None, osm=None)  # the sample's own OSM
    assert main(["run", str(task)]) == 2
    out = capsys.readouterr()
    assert "osmgap: error: sync: https://maproulette.example/api/v2: MapRoulette refused the API key" in out.err
    assert "== sample: publish" in out.out and "== sample: report" in out.out
    assert (tmp_path / "ws" / "out" / "paris-1447" / "report.html").is_file()
    # the report says it too: it is what cron mails, and its counts alone read as a quiet week
    md = (tmp_path / "ws" / "out" / "paris-1447" / "report.md").read_text()
    assert "> This run's sync failed: https://maproulette.example/api/v2: MapRoulette refused the API key" in md
    assert '<p class="warning">This run&#x27;s sync failed: https://maproulette.example' in \
        (tmp_path / "ws" / "out" / "paris-1447" / "report.html").read_text()
