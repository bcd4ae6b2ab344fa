"""Every verb that writes a folder refuses an unusable ``--out`` before any work (issue 14.15):
its job's first step never runs, nothing is written, the file in the way is untouched."""
from __future__ import annotations

import pytest

import osmgap.jobs.change
import osmgap.jobs.diff
import osmgap.jobs.scan
import osmgap.jobs.train
from osmgap.cli import main
from tests.conftest import PROJECT

SAMPLE = str(PROJECT / "sample_aoi" / "paris-1447")


def _argv(verb: str, paris) -> list[str]:
    image = str(paris / "image.tif")
    return {"scan": ["scan", "--aoi", SAMPLE],
            "change": ["change", "--aoi", SAMPLE, "--before", image, "--after", image],
            "folds": ["train", "--aoi", SAMPLE, "--folds", "2", "--steps", "1"],
            "diff": ["diff", "--aoi", SAMPLE]}[verb]


@pytest.mark.parametrize("verb", ["scan", "change", "folds", "diff"])
@pytest.mark.parametrize("blocker", ["file", "under_a_file"])
def test_an_unusable_out_is_refused_before_any_work(verb, blocker, paris, tmp_path, monkeypatch, capsys):
    def no_work(*args, **kwargs):
        raise AssertionError("work began before --out was checked")

    first_step = {"scan": (osmgap.jobs.scan, "resolve_sources"), "change": (osmgap.jobs.change, "load_aoi"),
                  "folds": (osmgap.jobs.train, "resolve_sources"), "diff": (osmgap.jobs.diff, "resolve_sources")}
    monkeypatch.setattr(*first_step[verb], no_work)
    in_the_way = tmp_path / "out"
    in_the_way.write_bytes(b"a file the user keeps")
    out = in_the_way if blocker == "file" else in_the_way / "sub"
    assert main([*_argv(verb, paris), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(out) in err, err
    assert in_the_way.read_bytes() == b"a file the user keeps" and sorted(tmp_path.iterdir()) == [in_the_way]
