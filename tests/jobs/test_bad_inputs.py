"""Every bad-input class the CLI knows: exit 2, one line naming the file and the problem,
nothing in DIR. Grouped by input: AOI, imagery, OSM, candidates, model, state, large-area options
(tiles, Dask, XYZ tile servers), task files and the outputs other verbs read."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import rasterio

from osmgap.cli import main
from osmgap.errors import InputError
from osmgap.model.encoder_file import ENCODER_FORMAT
from osmgap.model.resume import STATE_FORMAT


def _no_crs_copy(src: Path, dst: Path) -> Path:
    with rasterio.open(src) as s:
        profile = {**s.profile}
        profile.pop("crs")
        with rasterio.open(dst, "w", **profile) as d:
            d.write(s.read())
    return dst


def _truncated_pbf(data: Path, dst: Path) -> Path:
    raw = (data / "osm" / "kotka.osm.pbf").read_bytes()
    dst.write_bytes(raw[: len(raw) // 3])
    return dst


def _point_aoi(dst: Path) -> Path:
    dst.write_text(json.dumps({"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [2.282, 48.982]}}))
    return dst


CASES = {
    # name: (builder(tmp, data, paris) -> extra argv, text the message must contain)
    "aoi_outside_imagery": (lambda t, d, p: ["--aoi", "2.30,48.99,2.31,49.00", "--imagery", str(p / "image.tif"),
                                             "--osm", str(p / "osm_roads.geojson")], "does not overlap the AOI"),
    "missing_imagery": (lambda t, d, p: ["--aoi", str(p / "aoi.geojson"), "--imagery", str(t / "nope.tif"),
                                         "--osm", str(p / "osm_roads.geojson")], "nope.tif"),
    "missing_osm": (lambda t, d, p: ["--aoi", str(p / "aoi.geojson"), "--imagery", str(p / "image.tif"),
                                     "--osm", str(t / "nope.osm.pbf")], "nope.osm.pbf"),
    "corrupt_pbf": (lambda t, d, p: ["--aoi", str(p / "aoi.geojson"), "--imagery", str(p / "image.tif"),
                                     "--osm", str(_truncated_pbf(d, t / "broken.osm.pbf"))], "broken.osm.pbf"),
    "aoi_not_polygon": (lambda t, d, p: ["--aoi", str(_point_aoi(t / "point.geojson")), "--imagery", str(p / "image.tif"),
                                         "--osm", str(p / "osm_roads.geojson")], "Polygon or MultiPolygon"),
    "imagery_without_crs": (lambda t, d, p: ["--aoi", str(p / "aoi.geojson"),
                                             "--imagery", str(_no_crs_copy(p / "image.tif", t / "nocrs.tif")),
                                             "--osm", str(p / "osm_roads.geojson")], "no CRS"),
    "bands_the_imagery_lacks": (lambda t, d, p: [*_paris(p), "--bands", "3,2,4"],
                                "--bands 3,2,4: give one band or three, each 1 to 3 (the image has 3 bands)"),
    "bands_of_tile_server_imagery": (lambda t, d, p: ["--aoi", str(p / "aoi.geojson"), "--osm", str(p / "osm_roads.geojson"),
                                                      "--xyz", "http://127.0.0.1:9/{z}/{x}/{y}.png", "--bands", "1,2,3"],
                                     "--xyz tiles are red, green, blue already"),
    "tile_server_and_imagery_file": (lambda t, d, p: [*_paris(p), "--xyz", "http://127.0.0.1:9/{z}/{x}/{y}.png"],
                                     "instead of an --imagery file: give one of them"),
    "missing_model": (lambda t, d, p: ["--aoi", str(p / "aoi.geojson"), "--imagery", str(p / "image.tif"),
                                       "--osm", str(p / "osm_roads.geojson"), "--model", str(t / "none.pt")], "none.pt"),
    "model_not_a_model": (lambda t, d, p: ["--aoi", str(p / "aoi.geojson"), "--imagery", str(p / "image.tif"),
                                           "--osm", str(p / "osm_roads.geojson"), "--model", str(p / "aoi.geojson")],
                          "not a readable osmgap model"),
    "bad_bbox": (lambda t, d, p: ["--aoi", "2.3,48.9,2.2,49.0"], "min < max"),
    # AOI
    "aoi_missing": (lambda t, d, p: ["--aoi", str(t / "none.geojson")], "AOI not found"),
    "aoi_not_json": (lambda t, d, p: ["--aoi", str(_file(t / "a.geojson", "{nope"))], "AOI is not valid JSON"),
    "aoi_not_object": (lambda t, d, p: ["--aoi", str(_file(t / "a.geojson", "[1, 2]"))], "must be an object"),
    "aoi_without_polygon": (lambda t, d, p: ["--aoi", str(_file(t / "a.geojson", json.dumps(
        {"type": "FeatureCollection", "features": []})))], "holds no Polygon or MultiPolygon"),
    "aoi_not_lonlat": (lambda t, d, p: ["--aoi", str(_file(t / "a.geojson", json.dumps(
        {"type": "Polygon", "coordinates": [[[447000, 5425000], [448000, 5425000], [448000, 5426000],
                                             [447000, 5425000]]]})))], "not lon/lat degrees"),
    # sources missing for a plain bbox
    "no_evidence_for_bbox": (lambda t, d, p: ["--aoi", PARIS_BBOX, "--osm", str(p / "osm_roads.geojson")],
                             "--imagery, --candidates or --gps is required"),
    "no_osm_for_bbox": (lambda t, d, p: ["--aoi", PARIS_BBOX, "--imagery", str(p / "image.tif")], "--osm is required"),
    # imagery
    "imagery_not_a_raster": (lambda t, d, p: [*_paris(p, imagery=_file(t / "fake.tif", "not a tiff"))],
                             "not a raster rasterio can read"),
    # OSM
    "osm_unknown_type": (lambda t, d, p: [*_paris(p, osm=_file(t / "roads.txt", "x"))], "unknown OSM file type"),
    "osm_not_json": (lambda t, d, p: [*_paris(p, osm=_file(t / "roads.geojson", "{"))], "not valid JSON"),
    "osm_not_features": (lambda t, d, p: [*_paris(p, osm=_file(t / "roads.geojson", "[]"))], "must be a FeatureCollection"),
    "osm_without_lines": (lambda t, d, p: [*_paris(p, osm=_geojson(t / "roads.geojson", [
        {"type": "Point", "coordinates": [2.282, 48.982]}], {"osm_id": 1}))], "no LineString"),
    "osm_without_osm_id": (lambda t, d, p: [*_paris(p, osm=_geojson(t / "roads.geojson", [
        {"type": "LineString", "coordinates": [[2.2815, 48.981], [2.2825, 48.982]]}], {"highway": "residential"}))],
                           "no usable osm_id"),
    # candidates
    "candidates_missing": (lambda t, d, p: [*_paris(p), "--candidates", str(t / "none.geojson")],
                           "candidates file not found"),
    "candidates_without_lines": (lambda t, d, p: [*_paris(p), "--candidates", str(_geojson(t / "c.geojson", [
        {"type": "Point", "coordinates": [2.282, 48.982]}]))], "holds no LineString"),
    "candidates_outside_aoi": (lambda t, d, p: [*_paris(p), "--candidates", str(_geojson(t / "c.geojson", [
        {"type": "LineString", "coordinates": [[2.0, 48.0], [2.001, 48.001]]}]))], "no candidate road line lies inside"),
    "candidates_bad_confidence": (lambda t, d, p: [*_paris(p), "--candidates", str(_geojson(t / "c.geojson", [
        {"type": "LineString", "coordinates": [[2.2815, 48.981], [2.2825, 48.982]]}], {"confidence": 250}))],
                                  "must lie in 0-1"),
    # model
    "model_wrong_format": (lambda t, d, p: [*_paris(p), "--model", str(_torch_file(t / "other.pt"))],
                           "not an osmgap model"),
    "model_is_a_training_state": (lambda t, d, p: [*_paris(p), "--model", str(_torch_file(
        t / "mine.pt.state", {"format": STATE_FORMAT}))], "it is a training state (osmgap train --resume takes it"),
    "model_is_an_encoder": (lambda t, d, p: [*_paris(p), "--model", str(_torch_file(
        t / "encoder.pt", {"format": ENCODER_FORMAT}))], "it is a pretrained encoder"),
    # state
    "state_not_a_state_file": (lambda t, d, p: [*_paris(p), "--state", str(_file(t / "state.sqlite", "not sqlite"))],
                               "not an osmgap state file"),
    # large areas: tiles, Dask, XYZ tile servers
    "work_dir_not_writable": (lambda t, d, p: [*_paris(p), "--workers", "0", "--work-dir",
                                               str(_file(t / "a-file", "x"))], "work directory is not writable"),
    "scheduler_unreachable": (lambda t, d, p: [*_paris(p), "--scheduler", "tcp://127.0.0.1:9"],
                              "cannot reach the Dask scheduler"),
    "xyz_not_http": (lambda t, d, p: ["--aoi", str(p / "aoi.geojson"), "--osm", str(p / "osm_roads.geojson"),
                                      "--xyz", "ftp://tiles/{z}/{x}/{y}.png"], "must start with http"),
    "xyz_template_without_placeholders": (lambda t, d, p: ["--aoi", str(p / "aoi.geojson"), "--osm",
                                                           str(p / "osm_roads.geojson"), "--xyz",
                                                           "http://127.0.0.1:9/tiles.png"], "needs {z}, {x} and {y}"),
}

PARIS_BBOX = "2.2813,48.9811,2.2828,48.9826"


def _paris(p: Path, imagery: Path | None = None, osm: Path | None = None) -> list[str]:
    return ["--aoi", str(p / "aoi.geojson"), "--imagery", str(imagery or p / "image.tif"),
            "--osm", str(osm or p / "osm_roads.geojson")]


def _file(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _geojson(path: Path, geometries: list[dict], props: dict | None = None) -> Path:
    features = [{"type": "Feature", "properties": props or {}, "geometry": g} for g in geometries]
    return _file(path, json.dumps({"type": "FeatureCollection", "features": features}))


def _torch_file(path: Path, content: dict | None = None) -> Path:
    import torch

    torch.save(content or {"format": "something else"}, path)
    return path


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_exits_2_and_writes_nothing(case, tmp_path, data, paris, capsys):
    build, expected = CASES[case]
    argv = build(tmp_path, data, paris)
    out = tmp_path / "out"
    assert main(["diff", *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert err.startswith("osmgap: error: ") and expected in err
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]  # no staging left over


def test_failure_leaves_existing_outputs_untouched(tmp_path, paris, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "suggestions.osm").write_text("previous run")
    rc = main(["diff", "--aoi", "2.30,48.99,2.31,49.00", "--imagery", str(paris / "image.tif"),
               "--osm", str(paris / "osm_roads.geojson"), "--out", str(out)])
    assert rc == 2
    assert [p.name for p in out.iterdir()] == ["suggestions.osm"]
    assert (out / "suggestions.osm").read_text() == "previous run"


@pytest.mark.parametrize("status,words", [(401, "401 Unauthorized"), (403, "403 Forbidden"), (404, "404 Not Found")])
def test_tile_server_refusal_exits_2_and_writes_nothing(status, words, tmp_path, paris, capsys):
    from tests.tileserver import TileServer

    out = tmp_path / "out"
    with TileServer(paris / "image.tif") as srv:
        srv.faults.status = status
        rc = main(["diff", "--aoi", str(paris / "aoi.geojson"), "--osm", str(paris / "osm_roads.geojson"),
                   "--xyz", srv.url, "--cache-dir", str(tmp_path / "cache"), "--out", str(out)])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("osmgap: error: http://127.0.0.1") and words in err
    assert not out.exists()


def test_a_tile_server_that_stays_down_exits_1_not_2(tmp_path, paris, capsys, monkeypatch):
    """A 503 for good is the server's failure: exit 1 (as MapRoulette's), so that cron wrappers
    reading exit 2 as "fix your input" are not misled; one line, nothing written."""
    from osmgap.core import http
    from tests.tileserver import TileServer

    monkeypatch.setattr(http.time, "sleep", lambda s: None)
    out = tmp_path / "out"
    with TileServer(paris / "image.tif") as srv:
        srv.faults.status = 503
        rc = main(["diff", "--aoi", str(paris / "aoi.geojson"), "--osm", str(paris / "osm_roads.geojson"),
                   "--xyz", srv.url, "--cache-dir", str(tmp_path / "cache"), "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and err.count("\n") == 0 and "tile server failed" in err and "HTTP 503" in err, err
    assert not out.exists()


def _task(path: Path, text: str) -> Path:
    return _file(path, text)


TASK_CASES = {
    # name: (builder(tmp) -> task file, text the message must contain)
    "task_missing": (lambda t: t / "none.toml", "task file not found"),
    "task_not_toml": (lambda t: _task(t / "t.toml", "name = "), "not valid TOML"),
    "task_unknown_key": (lambda t: _task(t / "t.toml", 'name = "x"\ncolour = 1\n[diff]\naoi = "a"\nout = "o"\n'),
                         "unknown key(s)"),
    "task_without_name": (lambda t: _task(t / "t.toml", '[diff]\naoi = "a"\nout = "o"\n'), "needs name"),
    "task_diff_without_out": (lambda t: _task(t / "t.toml", 'name = "x"\n[diff]\naoi = "a"\n'), "needs aoi and out"),
}


@pytest.mark.parametrize("case", sorted(TASK_CASES))
def test_bad_task_file_exits_2(case, tmp_path, capsys):
    build, expected = TASK_CASES[case]
    assert main(["run", str(build(tmp_path))]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("osmgap: error: ") and expected in err


def test_report_without_diff_outputs_exits_2(tmp_path, capsys):
    (tmp_path / "out").mkdir()
    assert main(["report", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "run `osmgap diff --out` into this directory first" in err


def test_failure_during_conflation_leaves_outputs_untouched(tmp_path, paris, capsys, monkeypatch):
    """The probability COG and the overview's backdrop are made beside conflation, into the
    staging folder: when conflation then fails, none of it is published and no staging is left."""
    import osmgap.jobs.diff

    def fails(*args, **kwargs):
        raise InputError(paris / "osm_roads.geojson", "a problem found while conflating")

    monkeypatch.setattr(osmgap.jobs.diff, "conflate", fails)
    out = tmp_path / "out"
    out.mkdir()
    (out / "suggestions.osm").write_text("previous run")
    rc = main(["diff", "--aoi", str(paris / "aoi.geojson"), "--imagery", str(paris / "image.tif"),
               "--osm", str(paris / "osm_roads.geojson"), "--out", str(out)])
    assert rc == 2 and "a problem found while conflating" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["suggestions.osm"]
    assert (out / "suggestions.osm").read_text() == "previous run"
    assert not [p for p in tmp_path.iterdir() if ".staging" in p.name]
