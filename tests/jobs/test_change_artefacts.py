"""`osmgap change` suggests nothing where the two dates cannot be compared, on real imagery.

Each case used to write false changes as suggestions a mapper would act on:
- the Paris chip against a copy georeferenced 40 m east (beyond what alignment corrects): 3
  "appeared" and 2 "vanished" roads, the vanished ones existing OSM streets, with no warning;
- the Paris chip against a copy whose eastern third is 0 in every band, undeclared (as SpaceNet's
  chips ship): 2 roads "vanished" into the black, and "100% of the AOI is covered by both images";
- a real same-instant SpaceNet Shanghai PAN/MUL pair (img144): the model sees no road on the grey
  PAN date, so 4 roads that exist "appeared", 236 m.
The copies are made from the real chips in the test's tmp_path.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.warp import transform_bounds

from tests.cli import osmgap_cli

pytestmark = pytest.mark.slow


def _run(out: Path, aoi: str, before: Path, after: Path, *extra: str):
    proc = osmgap_cli("change", "--aoi", aoi, "--before", str(before), "--after", str(after), "--out", str(out), *extra)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    changes = json.loads((out / "changes.geojson").read_text())["features"]
    suggestions = json.loads((out / "suggestions.geojson").read_text())["features"]
    return proc, summary, changes, suggestions


def _moved_east(image: Path, path: Path, metres: float) -> Path:
    with rasterio.open(image) as src:
        profile, data = src.profile, src.read()
        lat = (src.bounds.top + src.bounds.bottom) / 2
    profile["transform"] = Affine.translation(metres / (111_320.0 * math.cos(math.radians(lat))), 0.0) @ src.transform
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


def test_a_shift_beyond_what_alignment_corrects_suggests_nothing_and_says_why(paris, tmp_path):
    after = _moved_east(paris / "image.tif", tmp_path / "moved40.tif", 40.0)
    proc, summary, changes, suggestions = _run(tmp_path / "out", "sample_aoi/paris-1447", paris / "image.tif", after,
                                               "--osm", str(paris / "osm_roads.geojson"))
    assert summary["alignment"]["applied"] is False and summary["alignment"]["east_m"] == pytest.approx(40, abs=1)
    assert suggestions == [] and summary["suggestions"] == 0  # the changes are the shift: no existing street "vanished"
    assert changes and not any(f["properties"]["suggested"] for f in changes)
    assert all("beyond the 30 m" in f["properties"]["withheld"] for f in changes)
    said = [w for w in summary["warnings"] if "beyond the 30 m" in w]
    assert len(said) == 1 and str(after) in said[0] and said[0] in proc.stderr and proc.stderr.count("beyond the 30 m") == 1
    assert "No appeared or vanished road suggested" in proc.stdout and "JOSM" not in proc.stdout
    assert "<way" not in (tmp_path / "out" / "suggestions.osm").read_text()


def test_undeclared_zero_fill_is_no_imagery_to_compare(paris, tmp_path):
    """The fill osmgap finds on opening is unusable as a declared nodata is: no road vanishes
    into it, and the area analysed leaves it out."""
    with rasterio.open(paris / "image.tif") as src:
        profile, data = src.profile, src.read()
        width = src.width
    data[:, :, width * 2 // 3:] = 0
    after = tmp_path / "zerofill.tif"
    with rasterio.open(after, "w", **{**profile, "nodata": None}) as dst:
        dst.write(data)
    proc, summary, changes, _ = _run(tmp_path / "out", "sample_aoi/paris-1447", paris / "image.tif", after)
    assert changes == []
    cover = summary["coverage"]
    assert cover["after_aoi_share"] == pytest.approx(0.67, abs=0.03) and cover["imagery_aoi_share"] < 0.67
    assert "the rest was not looked at" in proc.stdout


def test_a_date_where_the_model_sees_no_road_suggests_no_change_from_it(data, tmp_path):
    """SpaceNet Shanghai img144: PAN and MUL of one pass, no change on the ground. The grey PAN
    date shows the model no road, so every road of the colour date would "appear"."""
    chips = data / "chips" / "shanghai"
    pan, mul = chips / "AOI_4_Shanghai_img144_pan.tif", chips / "AOI_4_Shanghai_img144_mul.tif"
    with rasterio.open(pan) as src:
        west, south, east, north = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
    aoi = f"{west + 1e-4},{south + 1e-4},{east - 1e-4},{north - 1e-4}"
    proc, summary, changes, suggestions = _run(tmp_path / "out", aoi, pan, mul, "--after-bands", "5,3,2")
    assert suggestions == []
    km = summary["road_km"]
    assert km["before"] < 0.25 * km["after"] and km["after"] > 0.1
    assert "appeared" in summary["withheld"] and "vanished" not in summary["withheld"]
    assert all(not f["properties"]["suggested"] for f in changes)
    assert f"{km['before']:.2f} km before, {km['after']:.2f} km after" in proc.stdout
    assert "No appeared road suggested" in proc.stdout
    assert any(str(pan) in w and "too little" in w for w in summary["warnings"])
    assert any("grey against colour" in w for w in summary["warnings"])  # unlike sensors said too
    assert "grey against colour" in proc.stderr


def test_the_overview_draws_the_after_image_where_alignment_put_it(paris, tmp_path, monkeypatch):
    """After an 8 m alignment the change lines and OSM are in the before image's frame; the after
    image drawn under them must be too: what is drawn matches the before image read on the
    picture's grid (the image moved 8 m, 27 px of the chip, it did not)."""
    import osmgap.jobs.change as change_job
    from osmgap.cli import main
    from osmgap.export.overview import read_backdrop
    from osmgap.sources.imagery import WindowReader, open_imagery

    after = _moved_east(paris / "image.tif", tmp_path / "moved8.tif", 8.0)
    drawn = []

    def keep(path, imagery, analysis, *args, backdrop=None, **kwargs):
        drawn.append(backdrop if backdrop is not None else read_backdrop(imagery, analysis))

    monkeypatch.setattr(change_job, "render_overview", keep)
    assert main(["change", "--aoi", "sample_aoi/paris-1447", "--before", str(paris / "image.tif"), "--after",
                 str(after), "--out", str(tmp_path / "out")]) == 0
    (grid, rgb), = drawn
    with WindowReader(open_imagery(paris / "image.tif"), grid) as reader:
        before, _ = reader.read_all()
    h, w = rgb.shape[1:]
    inner = (slice(None), slice(h // 8, -h // 8), slice(w // 8, -w // 8))  # clear of the moved image's edge
    assert np.abs(rgb[inner] - before[inner]).mean() < 0.02


def test_images_that_do_not_overlap_are_named_both(paris, tmp_path):
    with rasterio.open(paris / "image.tif") as src:
        profile, data, transform = src.profile, src.read(), src.transform
    halves = []
    for name, cols in (("west.tif", slice(0, 300)), ("east.tif", slice(350, None))):
        part = data[:, :, cols]
        start = cols.start
        path = tmp_path / name
        with rasterio.open(path, "w", **{**profile, "width": part.shape[2],
                                         "transform": transform @ Affine.translation(start, 0)}) as dst:
            dst.write(part)
        halves.append(path)
    proc = osmgap_cli("change", "--aoi", "sample_aoi/paris-1447", "--before", str(halves[0]), "--after",
                      str(halves[1]), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1 and str(halves[0]) in err and str(halves[1]) in err and "overlap" in err


def test_a_null_shift_reads_zero_not_minus_zero():
    from osmgap.conflate.changes import Alignment

    said = Alignment(-0.001, -0.004, True).summary()
    assert math.copysign(1.0, said["east_m"]) == math.copysign(1.0, said["north_m"]) == 1.0
