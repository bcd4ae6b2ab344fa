"""Publishing to MapRoulette and reading statuses back, against a strict local fake of its API
(tests/fake_maproulette.py); the real server is never contacted."""
from __future__ import annotations

import base64
import json
import logging
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import quote

import pytest

from osmgap.cli import main
from osmgap.core.http import RetryPolicy
from osmgap.maproulette.api import MapRouletteClient, TransientError
from osmgap.maproulette.config import MapRouletteConfig
from osmgap.maproulette.publish import PublishOptions, execute_publish, plan_publish
from osmgap.workspace.store import Store
from osmgap.workspace.tracking import precision
from tests.fake_maproulette import FakeMapRoulette
from tests.josm import josm_validate
from tests.maproulette.publishing import CHALLENGE, publish
from tests.sample_outputs import sample_ways, write_outputs


@pytest.fixture
def ways(data):
    return sample_ways(data)


def sync(fake, out: Path, *extra: str) -> int:
    return main(["sync", "--out", str(out), "--api-url", fake.url, *extra])


def state(out: Path) -> Store:
    return Store(out.parent / "osmgap.sqlite", create=False)


def test_publish_creates_a_challenge_with_one_task_per_suggestion(fake, ways, tmp_path, capsys):
    out = tmp_path / "ws" / "run1"
    outputs = write_outputs(out, ways[:5])
    assert publish(fake, out) == 0
    routes = [(r["method"], r["path"].removeprefix("/api/v2")) for r in fake.log]
    assert routes == [("GET", "/project/1"), ("GET", f"/project/1/challenge/{quote(CHALLENGE, safe='')}"),
                      ("POST", "/challenge"), ("PUT", "/challenge/1001/addFileTasks"),
                      ("GET", "/challenge/1001/tasks/extract")]
    upload = fake.log[3]
    assert upload["query"] == {"lineByLine": ["true"], "removeUnmatched": ["true"]}
    challenge = fake.challenge_named(CHALLENGE)
    assert "not known to be cleared" in challenge["description"]  # the licence warning reaches mappers
    assert "{{length_m}}" in challenge["instruction"]
    tasks = fake.tasks_of(challenge["id"])
    assert set(tasks) == {f["id"] for f in outputs.features}
    with state(out) as s:
        rows = {r["id"]: r for r in s.suggestions("paris-1447")}
    assert {r["status"] for r in rows.values()} == {"published"}
    assert {name: rows[name]["task_id"] for name in tasks} == {name: t.id for name, t in tasks.items()}
    assert "5 task(s) uploaded" in capsys.readouterr().out


def test_republishing_the_same_run_sends_no_write_and_keeps_task_ids(fake, ways, tmp_path, capsys):
    out = tmp_path / "ws" / "run1"
    write_outputs(out, ways[:5])
    assert publish(fake, out) == 0
    writes, ids = len(fake.writes()), {n: t.id for n, t in fake.tasks_of(1001).items()}
    assert publish(fake, out) == 0
    assert len(fake.writes()) == writes
    assert {n: t.id for n, t in fake.tasks_of(1001).items()} == ids
    assert "unchanged, not re-uploaded" in capsys.readouterr().out


def test_reviews_come_back_and_gaps_that_went_away_leave_the_challenge(fake, ways, tmp_path, monkeypatch):
    monkeypatch.setenv("OSMGAP_NOW", "2025-01-06T04:00:00Z")
    week1 = tmp_path / "ws" / "week1"
    ids = [f["id"] for f in write_outputs(week1, ways[:5]).features]
    assert publish(fake, week1) == 0
    fp_task = fake.tasks_of(1001)[ids[0]].id
    fake.review(1001, ids[0], 2)  # "Not an issue"
    fake.review(1001, ids[1], 1)  # fixed by a mapper
    assert sync(fake, week1) == 0
    with state(week1) as s:
        assert s.suggestion("paris-1447", ids[0])["status"] == "dismissed"
        assert s.suggestion("paris-1447", ids[1])["status"] == "fixed"
    # a week later the diff still finds 0, 1 (OSM extract not updated), 2, 3; 4 went away
    monkeypatch.setenv("OSMGAP_NOW", "2025-01-13T04:00:00Z")
    week2 = tmp_path / "ws" / "week2"
    write_outputs(week2, ways[:4])
    assert publish(fake, week2) == 0
    tasks = fake.tasks_of(1001)
    assert set(tasks) == set(ids[:4])
    assert tasks[ids[0]].id == fp_task and tasks[ids[0]].status == 2  # never re-flagged
    assert tasks[ids[1]].status == 1
    upload = [r for r in fake.log if r["path"].endswith("addFileTasks")][-1]
    sent = {json.loads(line.lstrip("\x1e"))["features"][0]["id"]
            for line in _file_part(upload["body"]).decode().split("\n") if line}
    assert sent == set(ids[2:4])
    with state(week2) as s:
        assert s.suggestion("paris-1447", ids[4])["status"] == "fixed"


def test_more_tasks_than_a_challenge_holds_go_to_parts_and_unused_parts_are_emptied(fake, ways, tmp_path, capsys):
    fake.max_tasks = 4
    first = tmp_path / "ws" / "all"
    write_outputs(first, ways)
    assert publish(fake, first, "--max-tasks", "4") == 0
    names = [CHALLENGE, f"{CHALLENGE} (part 2)", f"{CHALLENGE} (part 3)"]
    sizes = [len(fake.tasks_of(fake.challenge_named(n)["id"])) for n in names]
    assert sizes == [4, 4, 2]
    fewer = tmp_path / "ws" / "fewer"
    write_outputs(fewer, ways[:5])
    assert publish(fake, fewer, "--max-tasks", "4") == 0
    sizes = [len(fake.tasks_of(fake.challenge_named(n)["id"])) for n in names]
    assert sizes == [4, 1, 0]
    assert "no longer needed" in capsys.readouterr().out


def test_old_tasks_are_removed_first_when_the_server_would_count_them_past_the_cap(fake, ways, tmp_path):
    fake.max_tasks = 6
    a, b = tmp_path / "ws" / "a", tmp_path / "ws" / "b"
    write_outputs(a, ways[:5])
    assert publish(fake, a, "--max-tasks", "6") == 0
    write_outputs(b, ways[4:])
    assert publish(fake, b, "--max-tasks", "6") == 0  # 5 old + 6 new > 6 without the empty upload first
    uploads = [r for r in fake.log if r["path"].endswith("addFileTasks")]
    assert [u["query"]["removeUnmatched"] for u in uploads] == [["true"], ["true"], ["false"]]
    assert len(fake.tasks_of(1001)) == 6


def test_priority_rules_rank_tasks_as_maproulette_evaluates_them(fake, ways, tmp_path):
    out = tmp_path / "ws" / "run"
    outputs = write_outputs(out, ways[:5], priorities={0: 0, 1: 2, 2: 2, 3: 1}, routing_impacts={2: 1500.0})
    assert publish(fake, out) == 0
    tasks = fake.tasks_of(1001)
    # priority 0 -> high; 2 -> low, unless it removes a 1.5 km detour; 1 -> medium
    assert [tasks[f["id"]].priority for f in outputs.features] == [0, 2, 0, 1, 1]


def test_retries_back_off_on_5xx_and_timeouts_and_give_up_in_the_end(fake):
    waits: list[float] = []
    config = MapRouletteConfig(fake.url, fake.api_key, "test")
    client = MapRouletteClient(config, policy=RetryPolicy(retries=3, backoff_s=0.01, jitter=0.0),
                                sleep=waits.append, timeout=(1.0, 0.3))
    fake.faults = [("status:503", 0), ("status:502", 0), ("stall", 1.0)]
    assert client.project(1)["id"] == 1
    assert waits == [0.01, 0.02, 0.04] and len(fake.log) == 4
    fake.faults = [("status:500", 0)] * 4
    with pytest.raises(TransientError, match="gave up after 4 attempts"):
        client.project(1)


def test_a_lost_answer_to_create_does_not_make_a_second_challenge(fake, ways, tmp_path):
    outputs = write_outputs(tmp_path / "ws" / "run", ways[:2])
    config = MapRouletteConfig(fake.url, fake.api_key, "test")
    client = MapRouletteClient(config, policy=RetryPolicy(retries=2, backoff_s=0.0), sleep=lambda s: None)
    options = PublishOptions(CHALLENGE, 1)
    plan = plan_publish(outputs, {}, options)
    fake.faults = [("pass", 0), ("pass", 0), ("lost", 0)]  # project, lookup, POST done but answer lost
    execute_publish(plan, client, options, None)
    assert [c["name"] for c in fake.challenges.values()] == [CHALLENGE]
    assert len(fake.tasks_of(1001)) == 2


def test_a_wrong_key_is_refused_and_no_key_is_ever_printed(fake, ways, tmp_path, monkeypatch, capsys, caplog):
    out = tmp_path / "ws" / "run"
    write_outputs(out, ways[:2])
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("MAPROULETTE_API_KEY", "wrong-key-8c1e")
    assert main(["-v", "publish", "--out", str(out), "--challenge", CHALLENGE, "--project", "1",
                 "--api-url", fake.url]) == 2
    first = capsys.readouterr()
    assert "refused the API key" in first.err
    # the key from a config file (the environment variable unset) works, and is not shown either
    monkeypatch.delenv("MAPROULETTE_API_KEY")
    config = tmp_path / "home" / ".config" / "osmgap" / "maproulette.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'api_key = "{fake.api_key}"\napi_url = "{fake.url}"\n')
    config.chmod(0o600)
    assert main(["-v", "publish", "--out", str(out), "--challenge", CHALLENGE, "--project", "1"]) == 0
    second = capsys.readouterr()
    everything = first.out + first.err + second.out + second.err + caplog.text
    assert fake.api_key not in everything and "wrong-key-8c1e" not in everything
    assert len(fake.tasks_of(1001)) == 2


def test_dry_run_writes_exactly_what_a_real_publish_sends(ways, tmp_path):
    out = tmp_path / "ws" / "run"
    write_outputs(out, ways[:3])
    with FakeMapRoulette() as untouched:
        assert publish(untouched, out, "--dry-run") == 0
        assert untouched.log == []  # nothing sent
    files = sorted((out / "maproulette-dry-run" / "publish").iterdir())
    metas = [json.loads(p.read_text()) for p in files if p.suffix == ".json"]
    assert [m["method"] for m in metas] == ["GET", "GET", "POST", "PUT", "GET"]
    assert all("apiKey" not in m["headers"] for m in metas)
    assert not any(untouched.api_key.encode() in p.read_bytes() for p in files)
    with FakeMapRoulette() as real:
        assert main(["publish", "--out", str(out), "--challenge", CHALLENGE, "--project", "1", "--api-url", real.url,
                     "--state", str(tmp_path / "other.sqlite")]) == 0
        sent = {r["method"] + r["path"].split("/")[-1]: r for r in real.log}
    body = (files[0].parent / metas[3]["body_file"]).read_bytes()
    assert body == sent["PUTaddFileTasks"]["body"]
    assert metas[3]["headers"]["Content-Type"] == sent["PUTaddFileTasks"]["headers"]["content-type"]
    assert metas[2]["body"] == json.loads(sent["POSTchallenge"]["body"])


def test_an_instruction_with_an_unknown_placeholder_is_refused(fake, ways, tmp_path, capsys):
    out = tmp_path / "ws" / "run"
    write_outputs(out, ways[:2])
    assert publish(fake, out, "--instruction", "Check {{length_m}} m of {{surface}}") == 2
    assert "{{surface}}" in capsys.readouterr().err
    assert fake.writes() == []


def test_cooperative_tasks_need_cleared_imagery_and_carry_the_road_drawn(fake, ways, tmp_path, capsys):
    uncleared = tmp_path / "ws" / "uncleared"
    write_outputs(uncleared, ways[:2])
    assert publish(fake, uncleared, "--cooperative") == 2
    assert "not cleared" in capsys.readouterr().err
    cleared = tmp_path / "ws" / "cleared"
    features = write_outputs(cleared, ways[:3], cleared=True).features
    assert publish(fake, cleared, "--cooperative") == 0
    tasks = fake.tasks_of(1001)
    for f in features:
        osc = ET.fromstring(base64.b64decode(tasks[f["id"]].cooperative["file"]["content"]))
        nodes = osc.findall("create/node")
        way = osc.find("create/way")
        assert len(nodes) == len(way.findall("nd")) == len(f["geometry"]["coordinates"])
        assert float(nodes[0].get("lon")) == pytest.approx(f["geometry"]["coordinates"][0][0], abs=1e-7)
        assert way.find("tag[@k='highway']").get("v") == f["properties"]["highway"]


@pytest.mark.slow
def test_josm_opens_the_cooperative_osmchange(fake, ways, tmp_path):
    cleared = tmp_path / "ws" / "cleared"
    features = write_outputs(cleared, ways[:1], cleared=True).features
    assert publish(fake, cleared, "--cooperative") == 0
    osc = tmp_path / "task.osc"
    osc.write_bytes(base64.b64decode(fake.tasks_of(1001)[features[0]["id"]].cooperative["file"]["content"]))
    issues = josm_validate(osc, tmp_path / "josm")
    way_issues = [i for i in issues if i["properties"].get("severityInteger") == 1]
    assert way_issues == []  # JOSM read it; no errors (a warning about highway class may remain)


def test_sync_dry_run_changes_nothing(fake, ways, tmp_path):
    out = tmp_path / "ws" / "run"
    ids = [f["id"] for f in write_outputs(out, ways[:2]).features]
    assert publish(fake, out) == 0
    fake.review(1001, ids[0], 2)
    before = len(fake.log)
    assert sync(fake, out, "--dry-run") == 0
    assert len(fake.log) == before
    assert (out / "maproulette-dry-run" / "sync" / "01-GET-challenge-1001-tasks-extract.json").is_file()
    with state(out) as s:
        assert s.suggestion("paris-1447", ids[0])["status"] == "published"


def _file_part(body: bytes) -> bytes:
    return body.split(b"\r\n\r\n", 1)[1].rsplit(b"\r\n--", 1)[0]


def test_a_demonstration_run_is_never_published(fake, ways, tmp_path, capsys):
    """The quickstart's sample takes OSM ways out on purpose: those are not missing roads."""
    out = tmp_path / "ws" / "demo"
    write_outputs(out, ways[:3])
    summary = json.loads((out / "summary.json").read_text())
    summary["demonstration"] = {"text": "Demonstration", "removed_osm_ids": [1, 2, 3]}
    (out / "summary.json").write_text(json.dumps(summary))
    assert publish(fake, out) == 2
    assert fake.log == [] and not (out.parent / "osmgap.sqlite").exists()
    assert "demonstration" in capsys.readouterr().err


def test_a_hand_edited_suggestion_with_a_nan_coordinate_is_never_sent(fake, ways, tmp_path, capsys):
    """json reads NaN; a server must not be sent it (it was an internal ValueError, exit 1)."""
    out = tmp_path / "ws" / "edited"
    write_outputs(out, ways[:3])
    doc = json.loads((out / "suggestions.geojson").read_text())
    doc["features"][1]["geometry"]["coordinates"][0][0] = float("nan")
    (out / "suggestions.geojson").write_text(json.dumps(doc))
    assert publish(fake, out) == 2
    err = capsys.readouterr().err
    assert fake.log == [] and "suggestions.geojson: feature 1" in err and "not a finite number" in err


def test_an_upload_the_server_answers_but_does_not_do_is_not_remembered(fake, ways, tmp_path, capsys):
    """A proxy's 200 page for the task upload: publish said "3 task(s) uploaded" with none on the
    server, and remembered the upload, so a rerun never made it."""
    out = tmp_path / "ws" / "run"
    write_outputs(out, ways[:3])
    fake.faults = [("pass", 0)] * 3 + [("raw", (200, {"Content-Type": "text/html"}, b"<html>OK</html>"))]
    assert publish(fake, out) == 1  # GET project, GET challenge (none), POST challenge, then the PUT
    assert "lacks 3 of its 3 task(s); run publish again" in capsys.readouterr().err
    assert len(fake.tasks) == 0
    assert publish(fake, out) == 0 and len(fake.tasks) == 3 and len(fake.challenges) == 1


def test_a_challenge_deleted_on_maproulette_does_not_stop_sync(fake, ways, tmp_path, caplog):
    """Its extract answers 404: every later sync failed, so no verdict was ever read again."""
    out = tmp_path / "ws" / "run"
    write_outputs(out, ways[:3])
    assert publish(fake, out) == 0
    (cid,) = fake.challenges
    del fake.challenges[cid]
    assert sync(fake, out) == 0
    assert f"(id {cid}) is gone from" in caplog.text
    assert fake.violations == [f"GET /api/v2/challenge/{cid}/tasks/extract: Challenge with id {cid} not found"]
    fake.violations.clear()  # asked once, as expected: the fixture checks for no others


def test_a_challenge_deleted_on_maproulette_does_not_stop_publish_week_after_week(fake, ways, tmp_path, caplog):
    """The owner deleted the challenge: publish made a new one, then tried to empty the deleted one
    as a retired challenge, got a 404 and failed (exit 1) before noting it empty, every week."""
    out = tmp_path / "ws" / "run"
    write_outputs(out, ways[:3])
    assert publish(fake, out) == 0
    (cid,) = fake.challenges
    del fake.challenges[cid]
    for _ in range(2):
        assert publish(fake, out) == 0
    assert f"challenge {cid} (" in caplog.text and "is no longer on MapRoulette" in caplog.text
    (new,) = fake.challenges
    assert new != cid and len(fake.tasks_of(new)) == 3
    assert ("GET", f"/api/v2/challenge/{cid}") in [(r["method"], r["path"]) for r in fake.log]  # renamed? no: gone
    with state(out) as s:
        assert {int(r["id"]): r["tasks"] for r in s.challenges("paris-1447")} == {cid: 0, new: 3}
    fake.violations.clear()  # the one PUT to the deleted challenge is expected: the fixture checks for no others


def test_a_task_deleted_on_maproulette_is_not_asked_for_again(fake, ways, tmp_path, capsys):
    """The challenge owner deleted a task: MapRoulette keeps it (status Deleted) under its name,
    so an upload cannot bring it back, and every later publish failed saying the server lacked
    it. The owner's deletion is a verdict: the gap is dismissed and left out of later uploads."""
    out = tmp_path / "ws" / "run"
    ids = [f["id"] for f in write_outputs(out, ways[:3]).features]
    assert publish(fake, out) == 0
    fake.review(1001, ids[0], 4)  # deleted by the challenge owner
    assert publish(fake, out) == 0, capsys.readouterr().err
    with state(out) as s:
        row = s.suggestion("paris-1447", ids[0])
        assert (row["status"], row["reason"]) == ("dismissed", "MapRoulette: Deleted")
        assert precision(s, "paris-1447")["reviewed"] == 0  # no reviewer called it a false positive
    assert publish(fake, out) == 0
    upload = [r for r in fake.log if r["path"].endswith("addFileTasks")][-1]
    sent = {json.loads(line.lstrip("\x1e"))["features"][0]["id"]
            for line in _file_part(upload["body"]).decode().split("\n") if line}
    assert sent == set(ids[1:])
    writes = len(fake.writes())
    assert publish(fake, out) == 0 and len(fake.writes()) == writes  # settled: no upload every week


def test_the_cooperative_way_says_its_ends_are_not_joined(fake, ways, tmp_path):
    """The pre-drawn way's ends lie on the roads they meet but are new nodes: with only a
    ``highway`` tag nothing told the mapper, and an upload made duplicate nodes there."""
    cleared = tmp_path / "ws" / "cleared"
    features = write_outputs(cleared, ways[:2], cleared=True).features
    assert publish(fake, cleared, "--cooperative") == 0
    for f in features:
        osc = ET.fromstring(base64.b64decode(fake.tasks_of(1001)[f["id"]].cooperative["file"]["content"]))
        fixme = osc.find("create/way/tag[@k='fixme']").get("v")
        assert "join its ends to the roads they meet" in fixme and "remove this fixme" in fixme
        if f["properties"].get("attachments"):
            assert all(w in fixme for w in f["properties"]["attachments"].split(","))


def test_a_challenge_that_holds_another_aois_tasks_is_refused(fake, ways, tmp_path, capsys):
    """Two task files naming one challenge (a copied file): each weekly publish of one AOI took
    the other's open tasks off MapRoulette (removeUnmatched), and the state gave the challenge to
    the last one, so the first one's reviews were never read again."""
    first, second = tmp_path / "ws" / "paris", tmp_path / "ws" / "other"
    write_outputs(first, ways[:3])
    write_outputs(second, ways[3:5])
    summary = json.loads((second / "summary.json").read_text())
    summary["aoi"]["name"] = "other-place"
    (second / "summary.json").write_text(json.dumps(summary))
    assert publish(fake, first) == 0
    tasks = dict(fake.tasks_of(1001))
    assert publish(fake, second) == 2
    assert "holds the tasks of AOI 'paris-1447'" in capsys.readouterr().err
    assert fake.tasks_of(1001) == tasks
    with state(first) as s:
        assert [r["aoi"] for r in s.challenges("paris-1447")] == ["paris-1447"]


def test_a_publish_killed_after_the_upload_still_leaves_the_challenge_known(fake, ways, tmp_path, monkeypatch):
    """The challenge was saved in the state last: a publish killed after MapRoulette took the
    tasks left a challenge sync never read and publish never emptied (its tasks open for good)."""
    import osmgap.maproulette.publish as pub

    out = tmp_path / "ws" / "run"
    write_outputs(out, ways[:3])

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # the process ends here: after the upload, before the statuses
    monkeypatch.setattr(pub, "apply_task_statuses", killed)
    assert publish(fake, out) == 130  # interrupted (Ctrl-C: the shell's 128 + SIGINT)
    assert len(fake.tasks_of(1001)) == 3
    with state(out) as s:
        assert [r["id"] for r in s.challenges("paris-1447")] == [1001]


def test_a_wrong_project_writes_no_state(fake, ways, tmp_path, capsys):
    out = tmp_path / "ws" / "run"
    write_outputs(out, ways[:2])
    assert main(["publish", "--out", str(out), "--challenge", CHALLENGE, "--project", "77",
                 "--api-url", fake.url]) == 2
    assert "no project 77" in capsys.readouterr().err
    assert not (out.parent / "osmgap.sqlite").exists()
    fake.violations.clear()


def test_kinds_the_instruction_does_not_fit_are_left_out(fake, ways, tmp_path, capsys):
    """An unsupported_osm_way task (a mapped way the evidence does not show) went out with the
    missing-road instruction: "if the road is there, draw it" asked for a duplicate of the way,
    and "Not an issue" dismissed a confirmed finding."""
    out = tmp_path / "ws" / "run"
    ids = [f["id"] for f in write_outputs(out, ways[:4]).features]
    doc = json.loads((out / "suggestions.geojson").read_text())
    doc["features"][0]["properties"]["kind"] = "unsupported_osm_way"
    doc["features"][1]["properties"]["kind"] = "misconnection"
    (out / "suggestions.geojson").write_text(json.dumps(doc))
    assert publish(fake, out) == 0
    assert set(fake.tasks_of(1001)) == set(ids[2:])
    assert "left out: 1 misconnection, 1 unsupported_osm_way" in capsys.readouterr().out


def test_a_renamed_challenge_leaves_no_open_tasks_behind(fake, ways, tmp_path, capsys):
    """The task file's challenge renamed: the new one got the tasks, the old one kept its open
    ones for good (roads mapped since among them), and sync kept reading it."""
    out = tmp_path / "ws" / "run"
    write_outputs(out, ways[:3])
    assert publish(fake, out) == 0
    old = fake.challenge_named(CHALLENGE)["id"]
    assert main(["publish", "--out", str(out), "--challenge", "osmgap: renamed", "--project", "1",
                 "--api-url", fake.url]) == 0
    assert len(fake.tasks_of(fake.challenge_named("osmgap: renamed")["id"])) == 3
    assert [t for t in fake.tasks_of(old).values() if t.status == 0] == []
    assert f"challenge id {old}: no longer needed, its open tasks removed" in capsys.readouterr().out


@pytest.mark.parametrize("evidence", ["candidates", "gps"])
def test_pre_drawing_another_sources_roads_needs_its_licence_said(fake, ways, tmp_path, capsys, evidence):
    """Cooperative tasks of a candidates or GPS run put that source's geometry into OSM: an
    import (OSM's import guidelines), which went out with no check at all."""
    out = tmp_path / "ws" / "run"
    write_outputs(out, ways[:2], cleared=True)
    summary = json.loads((out / "summary.json").read_text())
    (out / "summary.json").write_text(json.dumps({**summary, "evidence": evidence}))
    assert publish(fake, out, "--cooperative") == 2
    assert "Import/Guidelines" in capsys.readouterr().err and fake.log == []
    assert publish(fake, out, "--cooperative", "--source-cleared") == 0
    assert publish(fake, out) == 0  # without --cooperative nothing is pre-drawn: no question


def test_publishing_a_run_the_state_did_not_match_says_so(fake, ways, tmp_path, caplog):
    """`publish` records a diff run made without --state as it is: none of the id keeping (a gap
    whose id moved keeps its task and its mapper's verdict) applied to it. Said once the state
    holds an earlier run of the AOI; a first run, with nothing to match, is not warned about."""
    first, second = tmp_path / "ws" / "run1", tmp_path / "ws" / "run2"
    write_outputs(first, ways[:3])
    write_outputs(second, ways[1:4])
    with caplog.at_level(logging.WARNING):
        assert publish(fake, first) == 0
        assert "not recorded by `diff --state`" not in caplog.text
        assert publish(fake, second) == 0
    said = [r.getMessage() for r in caplog.records if "not recorded by `diff --state`" in r.getMessage()]
    assert len(said) == 1 and str(second) in said[0] and "osmgap.sqlite" in said[0]
