"""``osmgap --help`` and argument errors answer without the heavy libraries (issue 13: fast start).

Checked by what a fresh interpreter has imported, not by a timer: the heavy imports are the cost.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "rasterio", "dask", "geopandas", "shapely", "segmentation_models_pytorch", "matplotlib", "osmium")
PROBE = """
import contextlib, io, json, sys
from osmgap.cli import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    try:
        main(sys.argv[1:])
    except SystemExit:
        pass
print(json.dumps(sorted(m.split('.')[0] for m in sys.modules)))
"""


@pytest.mark.parametrize("argv", [["--help"], ["diff", "--help"], ["train", "--help"], ["publish", "--help"],
                                  ["--version"], ["diff", "--aoi", "x"]])
def test_help_and_argument_errors_import_nothing_heavy(argv):
    proc = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=120)
    loaded = set(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert not loaded & set(HEAVY), f"osmgap {' '.join(argv)} imported {sorted(loaded & set(HEAVY))}"
    assert "osmgap" in loaded  # the probe did run the CLI


def test_version_is_printed(capsys):
    from osmgap import __version__
    from osmgap.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"osmgap {__version__}"


def test_a_candidates_diff_never_imports_torch(tmp_path, data):
    """Issue 17: road lines need no model, so a candidates run pays nothing for torch and smp, nor,
    without traces, for the GPS modules' numba."""
    from tests.conftest import PROJECT

    sample = PROJECT / "sample_aoi" / "paris-1447"
    proc = subprocess.run([sys.executable, "-c", PROBE, "diff", "--aoi", str(sample / "aoi.geojson"),
                           "--osm", str(data / "sample_aoi" / "paris-1447" / "osm_roads.geojson"),
                           "--candidates", str(data / "sample_aoi" / "paris-1447" / "osm_roads.geojson"), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=300)
    loaded = set(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert (tmp_path / "out" / "suggestions.osm").is_file()  # the run did happen
    assert not loaded & {"torch", "segmentation_models_pytorch", "torchvision", "numba"}
