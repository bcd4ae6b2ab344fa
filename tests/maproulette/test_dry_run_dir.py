"""A dry run's folder of requests: the user's own files in ``--dry-run-dir`` survive it."""
from __future__ import annotations

import pytest

from tests.fake_maproulette import FakeMapRoulette
from tests.maproulette.publishing import publish
from tests.sample_outputs import sample_ways, write_outputs


@pytest.fixture
def ways(data):
    return sample_ways(data)


def test_a_dry_run_keeps_the_users_files_and_replaces_its_own_requests(ways, tmp_path):
    out, dry = tmp_path / "ws" / "run", tmp_path / "dr"
    write_outputs(out, ways[:2])
    (dry / "publish" / "mine").mkdir(parents=True)
    (dry / "publish" / "NOTES.txt").write_text("notes\n")
    (dry / "publish" / "mine" / "draft.json").write_text("{}")
    (dry / "publish" / "09-PUT-challenge-7-addFileTasks.json").write_text("{}")  # an earlier, longer dry run's
    (dry / "publish" / "09-PUT-challenge-7-addFileTasks.body").write_text("")
    with FakeMapRoulette() as untouched:
        assert publish(untouched, out, "--dry-run", "--dry-run-dir", str(dry)) == 0
        assert untouched.log == []
    names = sorted(p.name for p in (dry / "publish").iterdir())
    assert (dry / "publish" / "NOTES.txt").read_text() == "notes\n"
    assert (dry / "publish" / "mine" / "draft.json").read_text() == "{}"
    assert "09-PUT-challenge-7-addFileTasks.json" not in names and "09-PUT-challenge-7-addFileTasks.body" not in names
    assert [n for n in names if n.endswith(".json")] == [
        "01-GET-project-1.json", "02-GET-project-1-challenge-osmgap-20test-3A-20missing-20roads.json",
        "03-POST-challenge.json", "04-PUT-challenge-new-challenge-1-addFileTasks.json",
        "05-GET-challenge-new-challenge-1-tasks-extract.json"]
    assert sorted(p.name for p in dry.iterdir()) == ["publish"]  # no staging folder left beside it
