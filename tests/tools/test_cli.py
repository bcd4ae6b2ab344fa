"""The ``osmgap`` command itself: verbosity anywhere, errors that survive a worker process."""
from __future__ import annotations

import os
import pickle

import pytest

from osmgap.cli import build_parser
from osmgap.errors import InputError


@pytest.mark.parametrize("argv, verbose", [
    (["diff", "--aoi", "a.geojson", "--out", "o"], False),
    (["-v", "diff", "--aoi", "a.geojson", "--out", "o"], True),
    (["diff", "--aoi", "a.geojson", "--out", "o", "-v"], True),
    (["report", "--verbose", "--out", "o"], True),
])
def test_verbose_before_or_after_the_verb(argv, verbose):
    assert build_parser().parse_args(argv).verbose is verbose


def test_an_input_error_crosses_a_process_boundary_whole():
    """Dask sends a worker's exception back pickled: file and problem must both arrive."""
    again = pickle.loads(pickle.dumps(InputError("image.tif", "cannot read the imagery")))
    assert (again.source, again.problem, str(again)) == ("image.tif", "cannot read the imagery",
                                                         "image.tif: cannot read the imagery")


def test_each_warning_is_said_once(data, tmp_path, capsys, caplog):
    """Issue 18: the imagery-not-cleared warning came twice (logged, then printed again)."""
    from osmgap.cli import main

    sample = data / "sample_aoi" / "paris-1447"
    code = main(["diff", "--aoi", str(sample / "aoi.geojson"), "--osm", str(sample / "osm_roads.geojson"),
                 "--candidates", str(sample / "osm_roads.geojson"), "--imagery", str(sample / "image.tif"),
                 "--out", str(tmp_path / "out")])
    said = capsys.readouterr()
    logged = [r.getMessage() for r in caplog.records if "not known to be cleared" in r.getMessage()]
    assert code == 0
    assert len(logged) == 1 and "not known to be cleared" not in said.out + said.err


def test_every_option_of_every_verb_has_help():
    """`osmgap VERB --help` explains each option; a bare option name helps nobody."""
    import argparse

    parser = build_parser()
    verbs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    bare = [f"{verb} {'/'.join(action.option_strings)}"
            for verb, sub in verbs.choices.items() for action in sub._actions
            if action.option_strings and not action.help and not isinstance(action, argparse._HelpAction)]
    assert bare == []


def test_min_length_help_says_the_minimum_is_the_whole_missing_roads(capsys):
    """`diff --help` said "shortest gap reported", but the minimum is the length of the whole
    missing road a gap belongs to (osmgap.conflate.gaps._rejection: a 15 m piece of a 160 m road is
    reported; tests/conflate/test_gaps.py), with a lower one for a road joining two OSM ways."""
    from osmgap.conflate.params import ConflateParams

    with pytest.raises(SystemExit):
        build_parser().parse_args(["diff", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    start = text.index("--min-length MIN_LENGTH ")
    said = text[start:text.index("--views {", start)]
    assert "shortest gap" not in said and "whole missing road" in said and "shorter piece" in said
    assert f"joins two different OSM ways needs {ConflateParams.min_connector_m:g} m instead" in said
    assert f"(default {ConflateParams.min_length_m})" in said


@pytest.mark.parametrize("verb", [["diff", "--aoi", "a.geojson", "--out", "o"],
                                  ["eval", "--imagery", "i.tif", "--labels", "l.geojson"]])
def test_views_are_asked_for_by_number_and_tta_is_four(verb, capsys):
    parser = build_parser()
    assert parser.parse_args(verb).views is None  # the device's default (osmgap.model.infer.default_views)
    assert parser.parse_args([*verb, "--views", "8"]).views == 8
    assert parser.parse_args([*verb, "--tta"]).views == 4
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args([*verb, "--views", "3"])
    assert exit_.value.code == 2 and "--views" in capsys.readouterr().err


@pytest.mark.parametrize("verb", [["diff", "--aoi", "a.geojson", "--out", "o"], ["scan", "--aoi", "a.geojson", "--out", "o"],
                                  ["eval", "--imagery", "i.tif", "--labels", "l.geojson"],
                                  ["train", "--out", "o", "--aoi", "a.geojson", "--folds", "2"]])
def test_bands_are_one_or_three_band_numbers(verb, capsys):
    parser = build_parser()
    assert parser.parse_args(verb).bands is None  # chosen from the file (osmgap.sources.imagery)
    assert parser.parse_args([*verb, "--bands", "5,3,2"]).bands == (5, 3, 2)
    assert parser.parse_args([*verb, "--bands", "4"]).bands == (4,)
    for bad in ("5,3", "0,1,2", "red,green,blue"):
        with pytest.raises(SystemExit) as exit_:
            parser.parse_args([*verb, "--bands", bad])
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and "--bands" in err and len(err.strip().splitlines()) == 1


def _open_files(fds) -> set[str]:
    """The files a process holds open, by its /proc fd folder; an fd closed while it is listed
    (the process is starting up: imports open and close files) is skipped."""
    out = set()
    for fd in fds.iterdir():
        try:
            out.add(os.readlink(fd))
        except OSError:
            continue
    return out


def test_ctrl_c_exits_130_as_the_shell_reports_it(tmp_path):
    """Ctrl-C exited 1, the code of an internal error or a server's failure: a wrapper took a
    user's stop for a crash. A real process, stopped by SIGINT while it waits for the lock."""
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from tests.cli import held_lock
    from tests.conftest import PROJECT

    ws = tmp_path / "ws"
    (ws / "out").mkdir(parents=True)
    task = ws / "t.toml"
    task.write_text('name = "t"\nschedule = "weekly"\nroot = "."\n\n[diff]\naoi = "2.29,48.99,2.30,49.00"\n'
                    'candidates = "roads.geojson"\nosm = "osm.pbf"\nout = "out/t"\n')
    lock = ws / "out" / "osmgap.sqlite.lock"
    with held_lock(lock):
        # Ctrl-C as a terminal delivers it: a job started in the background of a script (CI, cron)
        # ignores SIGINT and hands that on, so the child gets the default back first
        proc = subprocess.Popen([sys.executable, "-m", "osmgap", "run", str(task), "--wait", "60"], cwd=PROJECT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        try:
            deadline = time.monotonic() + 60
            fds = Path(f"/proc/{proc.pid}/fd")
            while str(lock) not in _open_files(fds):  # waiting for the lock
                assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
                time.sleep(0.05)
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=60)
        finally:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, out + err
    assert err.strip() == "osmgap: interrupted"
