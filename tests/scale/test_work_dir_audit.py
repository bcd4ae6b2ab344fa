"""Audit T's work-directory findings: two runs on one work dir, what the tile fingerprint must
hold (precision, a tile server's imagery), the least graph-tile margin, and Dask's own logs."""
from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from osmgap.cli import main
from osmgap.graph.skeleton import GraphParams
from osmgap.model import infer
from osmgap.scale import tilestore
from osmgap.scale.distributed import run_jobs
from osmgap.scale.options import ScaleOptions
from osmgap.sources.tile_fetcher import TileFetcher
from tests.conftest import PROJECT
from tests.scale import test_resume
from tests.scale.test_resume import _argv, _assert_same_outputs
from tests.tileserver import TileServer

reference = test_resume.reference  # the uninterrupted tiled run, made once for this module too

# one model window of the chip, in one model tile: the cheapest tiled run
ONE_TILE = ["--tile-size", "256", "--workers", "0"]


def _run_json(work: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(work.glob("*/run.json"))]


def test_a_second_run_on_a_busy_work_dir_exits_3_and_leaves_the_first_unharmed(paris, tmp_path, reference,
                                                                               monkeypatch):
    """Started while the first is half-way through its tiles, the second run would truncate the
    first's sums and delete its tiles (audit T, F1: the first exited 0 with wrong suggestions)."""
    ref_out, osm, _ = reference
    work = tmp_path / "work"
    second: list[subprocess.CompletedProcess[str]] = []
    save = tilestore.TileStore.save

    def save_then_start_another(self, result):
        save(self, result)
        if not second:
            second.append(subprocess.run([sys.executable, "-m", "osmgap", *_argv(paris, osm, tmp_path / "other", work,
                                                                                  "--workers", "0")],
                                         cwd=PROJECT, capture_output=True, text=True, timeout=300))

    monkeypatch.setattr(tilestore.TileStore, "save", save_then_start_another)
    assert main(_argv(paris, osm, tmp_path / "out", work, "--workers", "0")) == 0
    assert second[0].returncode == 3, second[0].stderr
    lines = second[0].stderr.strip().splitlines()
    assert len(lines) == 1 and "in use by pid" in lines[0] and str(work) in lines[0], lines
    assert not (tmp_path / "other").exists()
    _assert_same_outputs(ref_out, tmp_path / "out")
    # the lock is the first run's only while it runs; the sums' files are not left behind
    monkeypatch.undo()
    assert main(_argv(paris, osm, tmp_path / "other", work, "--workers", "0", "--resume")) == 0
    assert not list(work.glob("*/*.f32"))


def test_fp32_is_part_of_the_tile_fingerprint(paris, tmp_path, monkeypatch, caplog):
    """``--resume --fp32`` after a bf16 run reused its bf16 tiles (audit T, F6); the bf16 run's
    tiles, of the same grid, are then removed: superseded."""
    monkeypatch.setattr(infer, "cpu_has_bf16", lambda: True)  # this CPU's default is then bf16, as on a GPU
    args = ["diff", "--aoi", str(paris / "aoi.geojson"), "--imagery", str(paris / "image.tif"), "--osm",
            str(paris / "osm_roads.geojson"), "--work-dir", str(tmp_path / "work"), *ONE_TILE]
    assert main([*args, "--out", str(tmp_path / "bf16")]) == 0
    assert [r["precision"] for r in _run_json(tmp_path / "work")] == ["torch.bfloat16"]
    assert main([*args, "--out", str(tmp_path / "fp32"), "--resume", "--fp32"]) == 0
    assert "holds no tiles of this run's imagery" in caplog.text
    assert [r["precision"] for r in _run_json(tmp_path / "work")] == ["torch.float32"]


def test_a_work_dir_keeps_only_the_last_run_of_a_grid(tmp_path):
    """Each configuration's tiles are a folder of their own, and none was ever removed: a weekly
    run on a tile server whose imagery changes, or a new model, left one more folder (the sums of
    the whole grid) every week. A run's whole tiles now replace other runs' over the same grid;
    another grid's (another AOI sharing --work-dir) and a folder a running run holds are kept."""
    def store(grid: str, model: str) -> tilestore.TileStore:
        s = tilestore.TileStore(tmp_path, {"grid": [grid, 2], "model": model})
        (s.dir / "r00000_c00000.npz").write_bytes(b"x" * 1000)
        return s

    old, other_aoi, busy = store("g1", "old"), store("g2", "old"), store("g1", "busy")
    old.close()
    other_aoi.close()
    new = store("g1", "new")
    assert new.prune_superseded("grid") > 1000  # the old folder's tile and run.json
    assert not old.dir.exists() and other_aoi.dir.exists() and busy.dir.exists() and new.dir.exists()
    busy.close()
    assert new.prune_superseded("grid") > 0 and not busy.dir.exists()


def _dark(tile: bytes) -> bytes:
    """The same tile at a quarter of its brightness: the server's imagery of a later week."""
    from io import BytesIO

    pixels = np.asarray(Image.open(BytesIO(tile)).convert("RGB")) // 4
    out = BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def test_resume_on_a_tile_server_does_not_reuse_tiles_of_replaced_imagery(paris, tmp_path, caplog):
    """The fingerprint held the URL and zoom only: a weekly ``--resume`` run rebuilt every week's
    suggestions from the first week's model tiles (audit T, F2). It now holds a hash of the tiles
    served over the grid, so a rerun on the same imagery still resumes."""
    with TileServer(paris / "image.tif") as server:
        args = ["diff", "--aoi", str(paris / "aoi.geojson"), "--osm", str(paris / "osm_roads.geojson"),
                "--xyz", server.url, "--xyz-zoom", "18", "--work-dir", str(tmp_path / "work"), *ONE_TILE]
        try:
            assert main([*args, "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "week1")]) == 0
            TileFetcher._shared.clear()
            caplog.set_level(logging.INFO, logger="osmgap.scale.tiled")
            assert main([*args, "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "again"),
                         "--resume"]) == 0
            assert "1 tiles, 1 already done" in caplog.text  # same imagery: resumed
            TileFetcher._shared.clear()
            bright = server.tile
            server.tile = lambda z, x, y: _dark(bright(z, x, y))  # type: ignore[method-assign]
            # the cache's week is over: the new imagery is fetched
            assert main([*args, "--cache-dir", str(tmp_path / "cache2"), "--out", str(tmp_path / "week2"),
                         "--resume"]) == 0
        finally:
            TileFetcher._shared.clear()
    assert len(_run_json(tmp_path / "work")) == 1  # week 1's tiles superseded by week 2's, removed
    assert "holds no tiles of this run's imagery" in caplog.text
    week1, week2 = (json.loads((tmp_path / w / "summary.json").read_text()) for w in ("week1", "week2"))
    assert week1["predicted_road_km"] > 0.1 and week2["predicted_road_km"] < week1["predicted_road_km"] / 2


def test_a_tile_margin_under_what_the_graph_needs_is_refused(paris, tmp_path, capsys):
    """``--tile-margin 0`` exited 0 with suggestions an uncut run does not make (audit T, F4)."""
    rc = main(["diff", "--aoi", str(paris / "aoi.geojson"), "--imagery", str(paris / "image.tif"), "--osm",
               str(paris / "osm_roads.geojson"), "--out", str(tmp_path / "out"), "--work-dir", str(tmp_path / "work"),
               "--tile-margin", "0", *ONE_TILE])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--tile-margin: 0 px" in err[0] and "at least 26 px" in err[0], err
    assert not (tmp_path / "out").exists()
    from osmgap.scale.tiled import fit_margin, min_margin_px

    params = GraphParams()
    assert min_margin_px(params, 1.0) == 26 and min_margin_px(params, 0.5) == 51  # 25 m of min_component_m, +1 px
    assert fit_margin(ScaleOptions(margin_px=0, temporary=True), params, 1.0).margin_px == 26  # osmgap's own tiling


def _one(n: int) -> int:
    return n


def test_dask_says_nothing_below_warning_without_v_and_serves_no_dashboard(caplog):
    """Its INFO lines came out under osmgap's prefix ("killed by signal 9" read as a failure), and
    a dashboard listened on :8787 (audit T, F10)."""
    services: list[dict] = []

    def on_result(result: int) -> None:
        if not services:
            from dask.distributed import default_client

            services.append(default_client().scheduler_info()["services"])

    caplog.set_level(logging.WARNING)  # no -v
    run_jobs(_one, [1, 2], on_result, workers=1)
    assert services[0].get("dashboard") != 8787, services  # its HTTP routes: a free port of 127.0.0.1
    said = [r for r in caplog.records if r.name.startswith(("distributed", "dask"))]
    assert not said, [r.getMessage() for r in said]
