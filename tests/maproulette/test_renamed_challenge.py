"""A challenge its owner renamed on MapRoulette: publish found challenges by name only, so it
made a new one under the old name and emptied the renamed one as retired; a road a mapper had
already fixed in the renamed challenge (the state not yet synced) went up again in the new one.
A challenge osmgap recorded is found by its id when its name no longer finds it; the owner's
name stays, and publish says so. Only a recorded challenge that is gone (404) is made anew
(test_publish.py, test_a_challenge_deleted_on_maproulette_does_not_stop_publish_week_after_week)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from osmgap.cli import main
from osmgap.workspace.store import Store
from tests.maproulette.publishing import CHALLENGE, publish
from tests.sample_outputs import sample_ways, write_outputs

RENAMED = "Paris north: roads to check"


@pytest.fixture
def ways(data):
    return sample_ways(data)


def _challenges(out: Path) -> dict[int, tuple[str, int]]:
    with Store(out.parent / "osmgap.sqlite", create=False) as s:
        return {int(r["id"]): (r["name"], r["tasks"]) for r in s.challenges("paris-1447")}


def test_a_challenge_renamed_by_its_owner_keeps_its_tasks_and_its_new_name(fake, ways, tmp_path, capsys):
    week1, week2 = tmp_path / "ws" / "week1", tmp_path / "ws" / "week2"
    ids = [f["id"] for f in write_outputs(week1, ways[:3]).features]
    assert publish(fake, week1) == 0
    (cid,) = fake.challenges
    fake.challenges[cid]["name"] = RENAMED  # the owner renames it on the website
    fake.review(cid, ids[0], 1)  # and a mapper fixes a road there, before any sync
    capsys.readouterr()
    now = {f["id"] for f in write_outputs(week2, ways[:4]).features}  # next week: the same roads, and one more
    assert publish(fake, week2) == 0, capsys.readouterr().err
    said = capsys.readouterr().out
    assert list(fake.challenges) == [cid]  # no second challenge under the old name
    assert fake.challenges[cid]["name"] == RENAMED  # the owner's name wins: not renamed back
    assert not [r for r in fake.log if r["method"] == "PUT" and r["path"].endswith(f"/challenge/{cid}")
                and json.loads(r["body"]).get("name") != RENAMED]
    assert f"challenge {RENAMED!r} (id {cid}): unchanged (renamed on MapRoulette from {CHALLENGE!r}, " in said
    assert "its owner's name is kept" in said
    assert set(fake.tasks_of(cid)) == now and fake.tasks_of(cid)[ids[0]].status == 1  # the mapper's fix stays
    assert _challenges(week2) == {cid: (CHALLENGE, 4)}  # recorded under the name osmgap publishes it by
    with Store(week2.parent / "osmgap.sqlite", create=False) as s:
        assert s.suggestion("paris-1447", ids[0])["status"] == "fixed"  # read from the renamed challenge
    assert publish(fake, week2) == 0  # the fixed road leaves the upload
    writes = len(fake.writes())
    assert publish(fake, week2) == 0 and len(fake.writes()) == writes  # settled: no write every week
    assert list(fake.challenges) == [cid] and fake.challenges[cid]["name"] == RENAMED
    assert main(["sync", "--out", str(week2), "--api-url", fake.url]) == 0


def test_a_stranger_challenge_under_the_old_name_is_not_taken_for_the_renamed_one(fake, ways, tmp_path, capsys):
    """After the rename someone made another challenge under the old name in the project: its
    tasks would have been replaced by these (removeUnmatched)."""
    out = tmp_path / "ws" / "run"
    write_outputs(out, ways[:3])
    assert publish(fake, out) == 0
    (cid,) = fake.challenges
    fake.challenges[cid]["name"] = RENAMED
    stranger = cid + 500
    fake.challenges[stranger] = {**fake.challenges[cid], "id": stranger, "name": CHALLENGE}
    write_outputs(out, ways[:4])
    assert publish(fake, out) == 0, capsys.readouterr().err
    assert len(fake.tasks_of(cid)) == 4 and fake.tasks_of(stranger) == {}
    assert not [r for r in fake.writes() if f"/challenge/{stranger}" in r["path"]]
    assert _challenges(out) == {cid: (CHALLENGE, 4)}

