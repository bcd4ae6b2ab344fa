"""Resumable runs: a diff SIGKILLed half-way and started again with --resume (on a real Dask
LocalCluster) writes the same bytes as an uninterrupted run; a full disk, on the tile store or
on the outputs, ends in a clear error, leaves no output, and the run resumes."""
from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from osmgap.cli import main
from osmgap.scale.tilestore import TileResult, TileStore
from tests.conftest import PROJECT  # noqa: E402
from tests.scale.test_tiling import half_osm

# the 128 x 192 px chip's 3 x 4 model windows of 64 px, one model tile each
TILE_ARGS = ["--tile", "64", "--overlap", "16", "--tile-size", "48", "--tile-margin", "26"]
N_TILES = 12
COMPARED = ("suggestions.geojson", "suggestions.osm", "maproulette.geojson")


def _argv(paris: Path, osm: Path, out: Path, work: Path, *extra: str) -> list[str]:
    return ["diff", "--aoi", str(paris / "aoi.geojson"), "--imagery", str(paris / "image.tif"), "--osm", str(osm),
            "--out", str(out), "--work-dir", str(work), *TILE_ARGS, *extra]


def _tiles(work: Path) -> list[Path]:
    return sorted(work.glob("*/*.npz"))


def _summary(out: Path) -> dict:
    summary = json.loads((out / "summary.json").read_text())
    summary.pop("seconds")
    summary.pop("peak_rss_mb")  # measured, like the seconds
    return summary


def _assert_same_outputs(a: Path, b: Path) -> None:
    assert _summary(a) == _summary(b)
    for name in COMPARED:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


@pytest.fixture(scope="module")
def reference(paris: Path, tmp_path_factory) -> tuple[Path, Path, Path]:
    """An uninterrupted tiled run (tiles in this process), the OSM it used and its tiles."""
    tmp = tmp_path_factory.mktemp("reference")
    osm = half_osm(paris, tmp / "half.geojson")
    out = tmp / "out"
    assert main(_argv(paris, osm, out, tmp / "work", "--workers", "0")) == 0
    assert _summary(out)["suggestions"] >= 2
    return out, osm, tmp / "work"


def _done_message(caplog) -> tuple[int, int]:
    msg = next(r.getMessage() for r in caplog.records if "already done" in r.getMessage())
    words = msg.replace(",", "").split()
    return int(words[0]), int(words[2])


# Loaded by the child interpreter (PYTHONPATH): it SIGKILLs itself right after its KILL_AFTER-th
# tile is stored. Polling the work directory from here and killing raced the run: its one-window
# tiles take ~20 ms each, and a test process descheduled for a moment saw all 12 done.
KILL_AFTER = 3
KILLER = f"""
import os, signal
from osmgap.scale import tilestore

_save = tilestore.TileStore.save
_saved = []

def save(self, result):
    _save(self, result)
    _saved.append(result.key)
    if len(_saved) == {KILL_AFTER}:
        os.kill(os.getpid(), signal.SIGKILL)

tilestore.TileStore.save = save
"""


def test_sigkill_then_resume_on_dask_gives_identical_outputs(paris, tmp_path, reference, caplog):
    ref_out, osm, ref_work = reference
    out, work = tmp_path / "out", tmp_path / "work"
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(KILLER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "osmgap", *_argv(paris, osm, out, work, "--workers", "0")],
                          cwd=PROJECT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
    assert proc.returncode == -signal.SIGKILL
    killed_with = len(_tiles(work))
    assert killed_with == KILL_AFTER < N_TILES, "the run must be killed half-way"
    assert not out.exists()

    caplog.set_level(logging.INFO, logger="osmgap.scale.tiled")
    assert main(_argv(paris, osm, out, work, "--workers", "2", "--resume")) == 0  # a real LocalCluster
    total, done = _done_message(caplog)
    assert total == N_TILES and done >= killed_with
    _assert_same_outputs(ref_out, out)


def test_an_existing_cluster_given_by_scheduler_address_runs_the_tiles(paris, tmp_path, reference):
    """`--scheduler tcp://HOST:PORT`: a cluster started elsewhere (here a LocalCluster of this
    test, on 127.0.0.1) does the tiles, and the outputs equal the in-process run's."""
    from dask.distributed import Client, LocalCluster

    ref_out, osm, _ = reference
    out = tmp_path / "out"
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        assert main(_argv(paris, osm, out, tmp_path / "work", "--scheduler", cluster.scheduler_address)) == 0
        transitions = client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.transition_counter)
    _assert_same_outputs(ref_out, out)
    assert len(_tiles(tmp_path / "work")) == N_TILES
    assert transitions >= 2 * N_TILES  # every tile went through this cluster's scheduler


def test_full_disk_on_tile_store_then_resume(paris, tmp_path, reference, monkeypatch, capsys, caplog):
    ref_out, osm, ref_work = reference
    out, work = tmp_path / "out", tmp_path / "work"
    save = TileStore.save
    calls = []

    def fills_up(self, result):
        calls.append(result.key)
        if len(calls) > 5:
            raise OSError(errno.ENOSPC, "No space left on device", str(self.path(result.key)))
        save(self, result)

    monkeypatch.setattr(TileStore, "save", fills_up)
    assert main(_argv(paris, osm, out, work, "--workers", "0")) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("osmgap: error: ") and "No space left on device" in err and err.count("\n") == 0
    assert not out.exists() and len(_tiles(work)) == 5
    monkeypatch.setattr(TileStore, "save", save)
    caplog.set_level(logging.INFO, logger="osmgap.scale.tiled")
    assert main(_argv(paris, osm, out, work, "--workers", "0", "--resume")) == 0
    assert _done_message(caplog) == (N_TILES, 5)
    _assert_same_outputs(ref_out, out)


def test_full_disk_on_outputs_leaves_them_untouched_then_resume(paris, tmp_path, reference, monkeypatch, capsys,
                                                                 caplog):
    ref_out, osm, ref_work = reference
    out, work = tmp_path / "out", tmp_path / "work"
    shutil.copytree(ref_work, work)  # every tile done: the run fails only at writing
    out.mkdir()
    (out / "suggestions.osm").write_text("previous run")
    import osmgap.jobs.diff

    def disk_full(path, *args, **kwargs):
        Path(path).write_text('{"type": "FeatureColl')  # half a file, as a full disk leaves it
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(osmgap.export.suggestion_files, "write_suggestions_geojson", disk_full)
    assert main(_argv(paris, osm, out, work, "--workers", "0", "--resume")) == 1
    assert "No space left on device" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["suggestions.osm"]
    assert (out / "suggestions.osm").read_text() == "previous run"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.staging")]
    assert len(_tiles(work)) == N_TILES
    monkeypatch.undo()
    caplog.set_level(logging.INFO, logger="osmgap.scale.tiled")
    assert main(_argv(paris, osm, out, work, "--workers", "0", "--resume")) == 0
    assert _done_message(caplog) == (N_TILES, N_TILES)  # nothing computed again
    _assert_same_outputs(ref_out, out)


DAMAGED_TILES = {
    "truncated": lambda raw: raw[:200],  # a copy cut short
    "zero_bytes": lambda raw: b"",  # a killed copy, or a full disk
    "garbage": lambda raw: bytes(reversed(raw)),  # another file's bytes
    # a whole tile of another extent (audit T, F5: it crashed every --resume in the sums' "+=")
    "wrong_shape": lambda raw: TileResult("x", np.zeros((5, 5), np.float32), np.zeros((5, 5), np.float32)).to_bytes(),
}


@pytest.mark.parametrize("damage", DAMAGED_TILES)
def test_damaged_tile_file_is_computed_again(paris, tmp_path, reference, damage):
    ref_out, osm, ref_work = reference
    out, work = tmp_path / "out", tmp_path / "work"
    shutil.copytree(ref_work, work)
    victim = _tiles(work)[7]
    victim.write_bytes(DAMAGED_TILES[damage](victim.read_bytes()))
    assert main(_argv(paris, osm, out, work, "--workers", "0", "--resume")) == 0
    assert TileResult.from_bytes(victim.stem, victim.read_bytes()).cov.any()  # computed and written again
    _assert_same_outputs(ref_out, out)
