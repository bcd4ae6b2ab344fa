"""Every shipped task file is a valid `osmgap run` job, and the sample one runs as shipped."""
import argparse
import json
import os
import shutil
from pathlib import Path

import pytest
import tomllib

from osmgap.cli import build_parser
from osmgap.errors import InputError
from osmgap.tools.taskfile import load_task
from tests.cli import osmgap_cli
from tests.conftest import PROJECT

TASKS = sorted((PROJECT / "tasks").glob("*.toml"))


@pytest.mark.parametrize("task", TASKS, ids=lambda p: p.name)
def test_every_table_parses_as_its_verb(task):
    spec = load_task(task)
    steps = dict(spec.steps())
    assert list(steps) == ["diff", "sync", "publish", "report"]
    assert steps["diff"].state == spec.state and steps["publish"].out == spec.out
    assert (PROJECT / tomllib.loads(task.read_text())["diff"]["aoi"] / "manifest.json").exists()
    # the [diff] table still maps one to one onto `osmgap diff`
    argv = ["diff", *[f"--{k}={v}" for k, v in tomllib.loads(task.read_text())["diff"].items()]]
    assert build_parser().parse_args(argv).verb == "diff"


def test_there_are_tasks():
    assert TASKS


def test_a_bad_task_file_says_which_table_is_wrong(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[diff]\naoi = "sample_aoi/paris-1447"\nout = "out/x"\n[publish]\nproject = 1\n')
    with pytest.raises(InputError, match=r"\[publish\].*--challenge"):
        load_task(bad).steps()
    bad.write_text('name = "x"\nwhen = "weekly"\n[diff]\naoi = "a"\nout = "o"\n')
    with pytest.raises(InputError, match="unknown key"):
        load_task(bad)


def test_false_turns_off_a_flag_that_is_on_by_default_and_leaves_others_off(tmp_path):
    """`gps-connections = false` must reach `osmgap diff` as --no-gps-connections: dropping the flag
    would leave it on, the opposite of what the file says."""
    task = tmp_path / "t.toml"
    base = 'name = "x"\n[diff]\naoi = "a"\nout = "o"\n'
    for line, connections in (("gps-connections = false\n", False), ("gps-connections = true\n", True), ("", True)):
        task.write_text(base + line + "unsupported = false\n")
        diff = dict(load_task(task).steps())["diff"]
        assert diff.gps_connections is connections
        assert diff.unsupported is False  # a plain flag: false is no flag


@pytest.mark.slow
def test_the_shipped_sample_task_runs_as_shipped(tmp_path):
    """A copy of the workspace layout (tasks/ and sample_aoi/ side by side), the file unchanged."""
    (tmp_path / "tasks").mkdir()
    shutil.copy(PROJECT / "tasks" / "paris-1447.toml", tmp_path / "tasks")
    (tmp_path / "sample_aoi").symlink_to(PROJECT / "sample_aoi")
    env = {**os.environ, "HOME": str(tmp_path / "home"), "OMP_NUM_THREADS": "1"}
    env.pop("MAPROULETTE_API_KEY", None)  # a dry run needs no key
    proc = osmgap_cli("run", "tasks/paris-1447.toml", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = tmp_path / "out" / "paris-1447"
    assert {"suggestions.osm", "suggestions.geojson", "maproulette.geojson", "summary.json", "overview.png",
            "report.html", "report.md"} <= {p.name for p in out.iterdir()}
    assert (tmp_path / "out" / "osmgap.sqlite").is_file()
    requests = sorted((out / "maproulette-dry-run" / "publish").glob("*.json"))
    first = json.loads(requests[0].read_text())
    assert (first["method"], first["url"]) == ("GET", "https://maproulette.org/api/v2/project/1")
    assert "== paris-1447: report" in proc.stdout


def test_a_task_on_a_bbox_names_its_aoi_after_the_task(tmp_path, paris):
    """A bbox has no name of its own, and a state refuses to record one without --name: a task
    file on a bbox (name given, as every task file must) failed with 'give --name'."""
    task = tmp_path / "ermont.toml"
    task.write_text(f'name = "ermont"\n[diff]\naoi = "2.2812,48.981,2.2829,48.9827"\nimagery = "{paris / "image.tif"}"\n'
                    f'osm = "{paris / "osm_roads.geojson"}"\nout = "out/ermont"\n')
    assert dict(load_task(task).steps())["diff"].name == "ermont"
    task.write_text(task.read_text().replace('out = "out/ermont"', 'out = "out/ermont"\nname = "own"'))
    assert dict(load_task(task).steps())["diff"].name == "own"  # [diff]'s own name wins


def test_a_task_keeps_its_state_where_the_single_verbs_look_for_it(tmp_path, paris):
    """An --out that is a link: run kept the state beside the link, publish and sync (the
    single verbs) beside its target, so a hand publish made a second state and re-uploaded
    every task under new ids."""
    from osmgap.workspace.store import default_state_path

    (tmp_path / "real" / "paris").mkdir(parents=True)
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "paris").symlink_to(tmp_path / "real" / "paris")
    task = tmp_path / "t.toml"
    task.write_text(f'name = "paris"\n[diff]\naoi = "{paris.parent / "paris-1447"}"\nout = "{tmp_path / "ws" / "paris"}"\n')
    assert load_task(task).state == default_state_path(tmp_path / "ws" / "paris") == tmp_path / "real" / "osmgap.sqlite"


def test_candidates_and_gps_paths_resolve_against_the_task_root(tmp_path, paris):
    """`candidates` and `gps` were passed as written, so a task run from cron (another working
    folder) did not find them."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "roads.geojson").write_text('{"type": "FeatureCollection", "features": []}')
    (tmp_path / "data" / "trips").mkdir()
    task = tmp_path / "tasks" / "t.toml"
    task.parent.mkdir()
    task.write_text(f'name = "t"\nroot = ".."\n[diff]\naoi = "{paris.parent / "paris-1447"}"\nout = "out/t"\n'
                    'candidates = "data/roads.geojson"\ngps = "data/trips"\n')
    diff = dict(load_task(task).steps())["diff"]
    assert Path(diff.candidates) == tmp_path / "data" / "roads.geojson"
    assert [Path(p) for p in diff.gps] == [tmp_path / "data" / "trips"]


def _diff_of(task: Path, table: str) -> argparse.Namespace:
    """The parsed [diff] of a task file with ``root = "../data"`` and ``table``'s lines."""
    task.parent.mkdir(parents=True, exist_ok=True)
    task.write_text(f'name = "t"\nroot = "../data"\n[diff]\nout = "out/t"\n{table}')
    return dict(load_task(task).steps())["diff"]


def test_a_relative_input_missing_under_root_is_never_read_from_the_working_folder(tmp_path, monkeypatch):
    """An input was joined to `root` only where the file existed there: with the week's download
    missing, cron's working folder's stale `week.osm` was diffed (exit 0), and with none there
    the error named a bare `week.osm`, not the file the task meant."""
    (tmp_path / "data").mkdir()
    (tmp_path / "cronwd").mkdir()
    (tmp_path / "cronwd" / "week.osm").write_text("<osm/>")  # last year's extract, beside the cron job
    monkeypatch.chdir(tmp_path / "cronwd")
    diff = _diff_of(tmp_path / "tasks" / "t.toml", 'aoi = "aoi.geojson"\nosm = "week.osm"\n')
    assert (diff.osm, diff.aoi) == (str(tmp_path / "data" / "week.osm"), str(tmp_path / "data" / "aoi.geojson"))
    # the values that name no file stay as they are; a mapconstruction graph is two paths
    diff = _diff_of(tmp_path / "tasks" / "t.toml", 'aoi = "2.2812,48.981,2.2829,48.9827"\nosm = "overpass"\n'
                    'model = "default"\ncandidates = "https://example.org/roads.geojson"\n')
    assert (diff.aoi, diff.osm, diff.model, diff.candidates) == (
        "2.2812,48.981,2.2829,48.9827", "overpass", "default", "https://example.org/roads.geojson")
    diff = _diff_of(tmp_path / "tasks" / "t.toml", 'aoi = "a.geojson"\nosm = "g/v.txt,g/e.txt"\n')
    assert diff.osm == f"{tmp_path / 'data' / 'g' / 'v.txt'},{tmp_path / 'data' / 'g' / 'e.txt'}"


def test_a_missing_input_is_named_where_the_task_file_looked(tmp_path, monkeypatch, data):
    """What `osmgap run` says for the week's OSM file that the download job did not write."""
    (tmp_path / "data").mkdir()
    (tmp_path / "cronwd").mkdir()
    monkeypatch.chdir(tmp_path / "cronwd")
    task = tmp_path / "tasks" / "t.toml"
    _diff_of(task, f'aoi = "26.940,60.524,26.962,60.536"\nosm = "week.osm"\n'
                   f'candidates = "{data / "osm" / "kotka.osm.pbf"}"\n')
    proc = osmgap_cli("run", str(task), cwd=tmp_path / "cronwd")
    assert proc.returncode == 2
    assert f"osmgap: error: {tmp_path / 'data' / 'week.osm'}: OSM file not found" in proc.stderr


def test_a_list_is_several_values_of_an_option_that_takes_several(tmp_path):
    """`gps = ["a", "b"]` was refused ("values must be text, numbers or true/false"): a weekly job
    with two trace sources could not be a task file. Each is read against `root`; a list for an
    option of one value is refused, saying so, rather than keeping one of them."""
    diff = _diff_of(tmp_path / "tasks" / "t.toml", 'aoi = "a.geojson"\ngps = ["trips/2025", "/srv/gpx"]\n')
    assert diff.gps == [str(tmp_path / "data" / "trips" / "2025"), "/srv/gpx"]
    with pytest.raises(InputError, match=r"osm = \['a.osm', 'b.osm'\]: --osm takes one value, not a list"):
        _diff_of(tmp_path / "tasks" / "t.toml", 'aoi = "a.geojson"\nosm = ["a.osm", "b.osm"]\n')
    with pytest.raises(InputError, match=r"gps = \[\['a'\]\]: option values must be text"):
        _diff_of(tmp_path / "tasks" / "t.toml", 'aoi = "a.geojson"\ngps = [["a"]]\n')
