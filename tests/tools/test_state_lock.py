"""Every verb that writes a state takes its lock, as ``osmgap run`` does: while another process
holds it (a cron run, a hand-run verb), ``diff --state``, ``publish``, ``sync`` and ``report``
exit 3 and change nothing; a dry run, which writes no state, goes on. Real child processes on a
real candidates diff of Kotka (three ways deleted), against the local fake MapRoulette."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import osmium
import pytest

from tests.cli import held_lock, osmgap_cli
from tests.fake_maproulette import FakeMapRoulette

pytestmark = pytest.mark.slow

BBOX = "26.9300,60.5200,26.9699,60.5400"
DELETED = (62061739, 369836409, 75553162)


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.name.endswith(".lock")}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, data) -> tuple[Path, list[str]]:
    """A recorded candidates diff (ws/out, state ws/osmgap.sqlite) and the arguments of a rerun."""
    ws = tmp_path_factory.mktemp("lock") / "ws"
    edited = ws.parent / "kotka-edited.osm.pbf"
    with osmium.SimpleWriter(str(edited)) as w:
        for obj in osmium.FileProcessor(str(data / "osm" / "kotka.osm.pbf")):
            if not (obj.is_way() and obj.id in DELETED):
                w.add(obj)
    diff = ["diff", "--aoi", BBOX, "--name", "kotka", "--osm", str(edited), "--candidates",
            str(data / "osm" / "kotka.osm.pbf"), "--out", str(ws / "out"), "--state", str(ws / "osmgap.sqlite")]
    done = osmgap_cli(*diff)
    assert done.returncode == 0, done.stderr
    return ws, diff


def test_every_verb_that_writes_the_state_waits_for_the_one_holding_it(workspace, tmp_path):
    ws, diff = workspace
    env = {**os.environ, "HOME": str(tmp_path / "home")}
    before = _digest(ws)
    with FakeMapRoulette() as fake:
        env["MAPROULETTE_API_KEY"] = fake.api_key
        mr = ["--api-url", fake.url]
        verbs = {"diff": diff, "report": ["report", "--out", str(ws / "out")],
                 "sync": ["sync", "--out", str(ws / "out"), *mr],
                 "publish": ["publish", "--out", str(ws / "out"), "--challenge", "osmgap test", "--project", "1",
                             *mr]}
        with held_lock(ws / "osmgap.sqlite.lock"):
            for verb, args in verbs.items():
                busy = osmgap_cli(*args, env=env)
                assert busy.returncode == 3, (verb, busy.stdout + busy.stderr)
                assert "another osmgap run is writing the same state" in busy.stderr and "test holder" in busy.stderr
            dry = osmgap_cli(*verbs["publish"], "--dry-run", env=env)  # writes no state: not held up
            assert dry.returncode == 0, dry.stderr
            assert fake.log == []  # nothing was asked of MapRoulette, a dry run included
        assert _digest(ws) == {**before, **{k: v for k, v in _digest(ws).items() if "maproulette-dry-run" in k}}
        published = osmgap_cli(*verbs["publish"], env=env)  # once the holder is gone, it runs
        assert published.returncode == 0, published.stderr
        assert not fake.violations, fake.violations
