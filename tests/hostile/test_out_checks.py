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


@pytest.mark.parametrize("verb", ["eval", "train", "report_html", "report_md", "publish_dry_run"])
@pytest.mark.parametrize("blocker", ["folder", "under_a_file"])
def test_an_unusable_output_file_is_refused_before_any_work(verb, blocker, paris, tmp_path, monkeypatch, capsys):
    """Output files too (eval --json, the checkpoint, the report's two pages, a dry run's folder):
    eval ran the model and train trained before failing with a temp file's name, exit 1, and
    report rewrote report.html before failing on report.md."""
    import osmgap.jobs.eval
    import osmgap.model.train
    import osmgap.tools.report
    from tests.sample_outputs import sample_ways, write_outputs

    def no_work(*args, **kwargs):
        raise AssertionError("work began before the output was checked")

    monkeypatch.setattr(osmgap.jobs.eval, "evaluate_imagery", no_work)
    monkeypatch.setattr(osmgap.model.train, "train", no_work)
    monkeypatch.setattr(osmgap.tools.report, "open_store", no_work)
    monkeypatch.setenv("MAPROULETTE_API_KEY", "k")
    diff_out = tmp_path / "diff"
    write_outputs(diff_out, sample_ways(paris.parent.parent)[:2])
    in_the_way = tmp_path / "blocker"
    if blocker == "folder":
        in_the_way.mkdir()
        target = in_the_way
    else:
        in_the_way.write_bytes(b"a file the user keeps")
        target = in_the_way / "sub"
    if verb == "publish_dry_run" and blocker == "folder":
        target = tmp_path / "file"  # a dry run writes a folder: a file is what is in its way
        target.write_bytes(b"a file the user keeps")
    argv = {"eval": ["eval", "--imagery", str(paris / "image.tif"), "--labels", str(paris / "osm_roads.geojson"),
                     "--json", str(target)],
            "train": ["train", "--data", "", "--pair", f"{paris / 'image.tif'}={paris / 'osm_roads.geojson'}",
                      "--steps", "1", "--out", str(target)],
            "report_html": ["report", "--out", str(diff_out), "--html", str(target)],
            "report_md": ["report", "--out", str(diff_out), "--markdown", str(target)],
            "publish_dry_run": ["publish", "--out", str(diff_out), "--challenge", "c", "--project", "1", "--dry-run",
                                "--dry-run-dir", str(target)]}[verb]
    before = sorted(p.name for p in diff_out.iterdir())
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(target) in err, err
    assert sorted(p.name for p in diff_out.iterdir()) == before
