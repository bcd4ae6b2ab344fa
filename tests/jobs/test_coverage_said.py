"""diff, change and scan say the same things about their inputs in summary.json: a repaired AOI,
and imagery that covers only part of the AOI (osmgap.jobs.coverage).

`change` left a repaired AOI's warning out of its summary, and `scan` said neither: a scan over
an image cropped to half the AOI scored the other half's tiles as if the imagery had shown them
empty. Run on copies of the real Paris chip.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import rasterio

from osmgap.cli import main
from osmgap.core.aoi import load_aoi
from osmgap.sources.imagery import COVERAGE_WARN_SHARE
from tests.cli import osmgap_cli
from tests.jobs.test_change_coverage import _left_half

pytestmark = pytest.mark.slow


def _bowtie_aoi(image: Path, path: Path) -> Path:
    """A self-intersecting AOI (a figure of eight) over the chip: valid only once repaired."""
    with rasterio.open(image) as src:
        w, s, e, n = src.bounds
    dx, dy = (e - w) * 0.1, (n - s) * 0.1
    ring = [[w + dx, s + dy], [e - dx, n - dy], [e - dx, s + dy], [w + dx, n - dy], [w + dx, s + dy]]
    path.write_text(json.dumps({"type": "Polygon", "coordinates": [ring]}))
    return path


def test_change_over_a_repaired_aoi_says_it_was_repaired(paris, tmp_path):
    aoi = _bowtie_aoi(paris / "image.tif", tmp_path / "bowtie.geojson")
    out = tmp_path / "out"
    proc = osmgap_cli("change", "--aoi", str(aoi), "--before", str(paris / "image.tif"),
                      "--after", str(paris / "image.tif"), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    said = [w for w in json.loads((out / "summary.json").read_text())["warnings"] if "repaired with make_valid" in w]
    assert len(said) == 1 and str(aoi) in said[0]


def test_scan_of_an_image_covering_half_the_aoi_says_so(paris, tmp_path, caplog):
    half, _ = _left_half(paris / "image.tif", tmp_path / "half.tif")
    out = tmp_path / "out"
    assert main(["scan", "--aoi", "sample_aoi/paris-1447", "--imagery", str(half), "--zoom", "18",
                 "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    cover = summary["coverage"]
    assert cover["aoi_km2"] == pytest.approx(load_aoi(str(paris / "aoi.geojson")).area_km2(), abs=1e-4)
    assert 0.3 < cover["imagery_aoi_share"] < COVERAGE_WARN_SHARE
    said = [w for w in summary.get("warnings", []) if "covers only" in w]
    assert len(said) == 1 and str(half) in said[0] and "no road was looked for in the rest" in said[0]
    assert said[0] in caplog.text


def test_scan_of_a_repaired_aoi_says_it_was_repaired(paris, tmp_path):
    aoi = _bowtie_aoi(paris / "image.tif", tmp_path / "bowtie.geojson")
    out = tmp_path / "out"
    assert main(["scan", "--aoi", str(aoi), "--imagery", str(paris / "image.tif"),
                 "--osm", str(paris / "osm_roads.geojson"), "--zoom", "18", "--out", str(out)]) == 0
    said = [w for w in json.loads((out / "summary.json").read_text()).get("warnings", [])
            if "repaired with make_valid" in w]
    assert len(said) == 1


def test_a_sliver_of_coverage_is_not_said_as_none(paris: Path, tmp_path: Path):
    """An AOI ~2,000 times the chip: the imagery covers 0.05 % of it, which "0%" would read as
    none at all (the scan audit's 48.8 km2 AOI over the Paris chip)."""
    out = tmp_path / "out"
    assert main(["scan", "--aoi", "2.23,48.95,2.33,49.01", "--name", "wide", "--imagery", str(paris / "image.tif"),
                 "--osm", str(paris / "osm_roads.geojson"), "--out", str(out)]) == 0
    warning = next(w for w in json.loads((out / "summary.json").read_text())["warnings"] if "covers only" in w)
    assert "covers only 0.05% of the AOI" in warning


def test_diff_leaves_undeclared_zero_fill_out_of_the_area_analysed(paris: Path, tmp_path: Path):
    """A chip whose eastern third is 0 in every band with no nodata declared (as SpaceNet's
    chips ship): the model sees nothing there, so a diff must not say the AOI was all looked
    at (it said 100 %, and the weekly state would read the black third as checked)."""
    with rasterio.open(paris / "image.tif") as src:
        profile, data = src.profile, src.read()
    data[:, :, data.shape[2] * 2 // 3:] = 0
    image = tmp_path / "zerofill.tif"
    with rasterio.open(image, "w", **{**profile, "nodata": None}) as dst:
        dst.write(data)
    out = tmp_path / "out"
    proc = osmgap_cli("diff", "--aoi", "sample_aoi/paris-1447", "--imagery", str(image),
                      "--osm", str(paris / "osm_roads.geojson"), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["coverage"]["imagery_aoi_share"] == pytest.approx(0.67, abs=0.04)
    said = [w for w in summary["warnings"] if "covers only" in w]
    assert len(said) == 1 and str(image) in said[0]
