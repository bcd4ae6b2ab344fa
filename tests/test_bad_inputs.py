"""Every bad-input class the diff CLI knows: exit 2, one line naming the file, nothing in DIR."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import rasterio

from osmgap.cli import main


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
    "missing_model": (lambda t, d, p: ["--aoi", str(p / "aoi.geojson"), "--imagery", str(p / "image.tif"),
                                       "--osm", str(p / "osm_roads.geojson"), "--model", str(t / "none.pt")], "none.pt"),
    "model_not_a_model": (lambda t, d, p: ["--aoi", str(p / "aoi.geojson"), "--imagery", str(p / "image.tif"),
                                           "--osm", str(p / "osm_roads.geojson"), "--model", str(p / "aoi.geojson")],
                          "not a readable osmgap model"),
    "bad_bbox": (lambda t, d, p: ["--aoi", "2.3,48.9,2.2,49.0"], "min < max"),
}


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
