"""`osmgap change` says how much of the AOI both images cover, as `osmgap diff` does for its one.

An after image that shows only half the AOI (cropped, or its other half declared nodata) used to
give "0 appeared, 0 vanished" with no warning and no coverage in summary.json, as if the whole AOI
had been compared. The copies are made from the real Paris chip in the test's tmp_path.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import rasterio
import shapely
from rasterio.windows import Window
from shapely.geometry import box, shape

from osmgap.core.aoi import load_aoi, reproject
from osmgap.sources.imagery import COVERAGE_WARN_SHARE
from tests.cli import osmgap_cli

pytestmark = pytest.mark.slow


def _left_half(image: Path, path: Path) -> tuple[Path, shapely.Geometry]:
    """The image cropped to its western half; and that half's footprint (WGS84, as the chip is)."""
    with rasterio.open(image) as src:
        window = Window(0, 0, src.width // 2, src.height)
        profile = {**src.profile, "width": src.width // 2, "transform": src.window_transform(window)}
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(src.read(window=window))
        assert src.crs.to_epsg() == 4326
    with rasterio.open(path) as out:
        return path, box(*out.bounds)


def _east_half_nodata(image: Path, path: Path) -> tuple[Path, shapely.Geometry]:
    """The image with its eastern half declared nodata (0), as a partial capture ships; and the
    western half's footprint (WGS84)."""
    with rasterio.open(image) as src:
        profile, data = src.profile, src.read()
        half = src.width // 2
        usable = box(*src.window_bounds(Window(0, 0, half, src.height)))
    data[:, :, half:] = 0
    with rasterio.open(path, "w", **{**profile, "nodata": 0}) as dst:
        dst.write(data)
    return path, usable


@pytest.mark.parametrize("make", [_left_half, _east_half_nodata], ids=["cropped", "half_nodata"])
def test_change_against_half_an_image_says_it_compared_only_half_the_aoi(paris, make, tmp_path):
    after, usable = make(paris / "image.tif", tmp_path / "after.tif")
    out = tmp_path / "out"
    proc = osmgap_cli("change", "--aoi", "sample_aoi/paris-1447", "--before", str(paris / "image.tif"),
                      "--after", str(after), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    cover = summary["coverage"]
    aoi = load_aoi(str(paris / "aoi.geojson"))
    with rasterio.open(paris / "image.tif") as src:
        footprint = aoi.to_metric(box(*src.bounds))
    # the AOI's part under the half, less the margin at the imagery's edges and 16 m more at the
    # half's cut, where the before image goes on: where a change could be reported
    half = aoi.to_metric(usable)
    cut = half.boundary.intersection(footprint.buffer(-1.0))
    expected = half.buffer(-4.0).difference(cut.buffer(16.0)).intersection(aoi.to_metric(aoi.geometry)).area / 1e6
    assert cover["area_analysed_km2"] == pytest.approx(expected, rel=0.05)
    assert cover["imagery_aoi_share"] == pytest.approx(expected / aoi.area_km2(), rel=0.05)
    assert cover["aoi_km2"] == pytest.approx(aoi.area_km2(), abs=1e-4)
    assert 0.3 < cover["imagery_aoi_share"] < COVERAGE_WARN_SHARE and cover["before_aoi_share"] == 1.0
    said = [w for w in summary["warnings"] if "covers only" in w]
    assert len(said) == 1 and f"covers only {cover['imagery_aoi_share']:.0%} of the AOI" in said[0]
    assert said[0] in proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("0 appeared, 0 vanished roads")
    assert "Area analysed" in lines[1] and "the rest was not looked at" in lines[1]
    # every change lies where both images show usable pixels (the after image's half)
    for f in json.loads((out / "changes.geojson").read_text())["features"]:
        assert usable.buffer(1e-6).contains(shape(f["geometry"]))


def test_change_of_one_image_against_itself_covers_the_aoi_but_its_margin(paris, tmp_path):
    """The area analysed is where a change could be reported: the chip ends ~2 m past the sample
    AOI, so the 4 m margin at the imagery's edge leaves ~94% of it (it said 100%); an AOI 10 m
    inside the chip is read with context past its edge and analysed whole, with no warning."""
    aoi = load_aoi(str(paris / "aoi.geojson"))
    with rasterio.open(paris / "image.tif") as src:
        footprint = aoi.to_metric(box(*src.bounds))
    metric = aoi.to_metric(aoi.geometry)
    expected = metric.intersection(footprint.buffer(-4.0)).area / metric.area
    proc = osmgap_cli("change", "--aoi", "sample_aoi/paris-1447", "--before", str(paris / "image.tif"),
                      "--after", str(paris / "image.tif"), "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    cover = json.loads((tmp_path / "out" / "summary.json").read_text())["coverage"]
    assert cover["imagery_aoi_share"] == pytest.approx(expected, abs=0.01) and expected < 0.97
    assert cover["area_analysed_km2"] == pytest.approx(expected * aoi.area_km2(), rel=0.02)
    assert cover["before_aoi_share"] == cover["after_aoi_share"] == 1.0
    inner = reproject(footprint.buffer(-10.0), aoi.metric_crs, "EPSG:4326")
    (tmp_path / "inner.geojson").write_text(json.dumps(shapely.geometry.mapping(inner)))
    out = tmp_path / "inner"
    proc = osmgap_cli("change", "--aoi", str(tmp_path / "inner.geojson"), "--before", str(paris / "image.tif"),
                      "--after", str(paris / "image.tif"), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["coverage"]["imagery_aoi_share"] == pytest.approx(1.0, abs=0.01)
    assert not [w for w in summary["warnings"] if "covers only" in w] and "covers only" not in proc.stderr
    assert "not looked at" not in proc.stdout and "Area analysed" in proc.stdout
