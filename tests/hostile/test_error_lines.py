"""An error is one line without terminal control characters, whatever the file names hold: a GPS
trace named with a line break and an escape sequence cannot forge a second line on stderr."""
from __future__ import annotations

import pickle

import pytest

from osmgap.cli import main
from osmgap.errors import InputError, ServiceError
from tests.hostile.test_arguments import cli
from tests.sample_outputs import SAMPLE_AOI

FORGED = "trip\n\x1b[2Josmgap: error: forged\r\x85\u2028\u2029\x7f\x00 é 中"
NUL, NUL_SHOWN = "\x00", r"\x00"  # the one character a file name cannot hold
SHOWN = r"trip\n\x1b[2Josmgap: error: forged\r\x85\u2028\u2029\x7f\x00 é 中"  # as repr shows each control


def _controls(text: str) -> list[str]:
    return [c for c in text if ord(c) < 0x20 or 0x7f <= ord(c) <= 0x9f or c in "\u2028\u2029"]


@pytest.mark.parametrize("error, shown", [
    (InputError(f"/gps/{FORGED}.gpx", f"bad {FORGED}"), f"/gps/{SHOWN}.gpx: bad {SHOWN}"),
    (InputError(None, FORGED), SHOWN),
    (ServiceError(f"https://{FORGED}", FORGED), f"https://{SHOWN}: {SHOWN}"),
], ids=["input", "input-without-file", "service"])
def test_control_characters_are_shown_escaped_and_the_parts_kept(error, shown):
    assert str(error) == shown and not _controls(str(error))
    assert error.problem.endswith(FORGED)  # the parts stay as given: callers re-raise them
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is type(error) and str(again) == shown and again.problem == error.problem


def test_a_gps_file_named_to_forge_lines_gives_one_escaped_line(tmp_path, capsys):
    traces = tmp_path / "traces"
    traces.mkdir()
    (traces / f"{FORGED.replace(NUL, '')}.gpx").write_text("<gpx></gpx>")  # no points: refused, naming the file
    rc, err = cli(["diff", "--aoi", str(SAMPLE_AOI / "aoi.geojson"), "--osm", str(SAMPLE_AOI / "osm_roads.geojson"),
                   "--gps", str(traces), "--out", str(tmp_path / "out")], capsys)
    assert rc == 2
    assert err.endswith("\n") and err.count("\n") == 1 and not _controls(err[:-1]), repr(err)
    assert f"{SHOWN.replace(NUL_SHOWN, '')}.gpx: holds no GPS points" in err
    assert not (tmp_path / "out").exists()


def test_main_prints_the_escaped_line(capsys, monkeypatch):
    """What the CLI prints is the message: escaped there too."""
    import osmgap.tools.report as report

    def refuse(args):
        raise InputError(FORGED, "refused")

    monkeypatch.setattr(report, "run", refuse)
    assert main(["report", "--out", "o"]) == 2
    assert capsys.readouterr().err == f"osmgap: error: {SHOWN}: refused\n"
