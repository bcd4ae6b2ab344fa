"""`osmgap eval` as users bring labels and imagery: a mask that says nothing somewhere (its
nodata, past its edge), a PNG mask placed by a world file, undeclared zero fill, and an image the
model trained on or validated with, named by the checkpoint's own training record."""
import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.features import rasterize
from rasterio.windows import Window
from scipy import ndimage

from osmgap.cli import main
from osmgap.jobs.eval import evaluate_imagery


@pytest.fixture(scope="module")
def masks(paris, tmp_path_factory) -> Path:
    """The Paris chip's OSM ways drawn 6 m wide as a 0/255 mask on the image's own grid, and the
    same mask as users write it: its right half declared nodata (255, roads 1), cut to its left
    half, declared nodata 0 (QGIS's Rasterize default), placed 13.8 m east of the image, and as a
    PNG with a world file."""
    out = tmp_path_factory.mktemp("masks")
    with rasterio.open(paris / "image.tif") as src:
        ways = gpd.read_file(paris / "osm_roads.geojson")
        drawn = ways.to_crs(ways.estimate_utm_crs()).buffer(3).to_crs(src.crs)
        mask = rasterize([(g, 255) for g in drawn], out_shape=(src.height, src.width), transform=src.transform,
                         dtype="uint8")
        profile = dict(driver="GTiff", width=src.width, height=src.height, count=1, dtype="uint8", crs=src.crs,
                       transform=src.transform)
    half = profile["width"] // 2
    with rasterio.open(out / "mask.tif", "w", **profile) as dst:
        dst.write(mask, 1)
    with rasterio.open(out / "nodata0.tif", "w", **{**profile, "nodata": 0}) as dst:
        dst.write(mask, 1)
    unlabelled = (mask > 0).astype(np.uint8)
    unlabelled[:, half:] = 255
    with rasterio.open(out / "right_nodata.tif", "w", **{**profile, "nodata": 255}) as dst:
        dst.write(unlabelled, 1)
    left = {**profile, "width": half, "transform": rasterio.windows.transform(Window(0, 0, half, 1), profile["transform"])}
    with rasterio.open(out / "left.tif", "w", **left) as dst:
        dst.write(mask[:, :half], 1)
    east = {**profile, "transform": profile["transform"] * Affine.translation(70, 0)}  # 70 px: 13.8 m east
    with rasterio.open(out / "east.tif", "w", **east) as dst:
        dst.write(mask, 1)
    png = {**profile, "driver": "PNG"}
    with rasterio.open(out / "mask.png", "w", **png, WORLDFILE="YES") as dst:  # mask.wld and mask.png.aux.xml
        dst.write(mask, 1)
    return out


@pytest.fixture(scope="module")
def scored(paris, masks) -> dict:
    return {name: evaluate_imagery(paris / "image.tif", masks / name, views=1)
            for name in ("mask.tif", "right_nodata.tif", "left.tif", "nodata0.tif")}


def test_a_mask_is_scored_only_where_it_says_something(scored):
    """A mask's nodata was read as road (right half nodata: IoU 0.159, recall 0.167 where the
    half-mask gives 0.33 and 0.61) and the image past a mask's edge as background (precision 0.41
    for 0.65): both now score the half the mask labels, alike, and say so."""
    whole, nodata, left = scored["mask.tif"], scored["right_nodata.tif"], scored["left.tif"]
    for key in ("iou", "precision", "recall", "relaxed_f1@3m", "truth_km"):
        assert nodata[key] == pytest.approx(left[key], abs=0.01), key
    assert nodata["truth_km"] == pytest.approx(whole["truth_km"] / 2, rel=0.2)
    assert nodata["recall"] > whole["recall"] + 0.05  # the unlabelled half is no longer missed road
    assert nodata["pixels"] == pytest.approx(whole["pixels"] / 2, rel=0.05)
    assert whole["labelled_share"] > 0.999 and not any("labels " in w for w in whole["warnings"])
    for result in (nodata, left):
        assert 0.45 < result["labelled_share"] < 0.55
        assert any("labels 5" in w and "only those are scored" in w for w in result["warnings"])


def test_nodata_zero_is_background(scored):
    """QGIS's Rasterize declares 0 nodata: that is the background, not unknown (a guard: read as
    unknown, only the roads would be scored)."""
    for key in ("iou", "precision", "recall", "apls", "pixels"):
        assert scored["nodata0.tif"][key] == scored["mask.tif"][key], key


def test_a_png_mask_is_read_by_its_world_file(paris, masks, scored):
    """A PNG mask with its world file and CRS (as GDAL and QGIS write it) was refused as "not a
    mask raster, OSM file or line file (DataSourceError)"."""
    png = evaluate_imagery(paris / "image.tif", masks / "mask.png", views=1)
    assert png["labels_kind"] == "mask"
    for key in ("iou", "precision", "recall", "apls", "pixels"):
        assert png[key] == scored["mask.tif"][key], key


def test_a_partial_mask_scores_alike_by_tiles(paris, masks, monkeypatch, tmp_path):
    """An image too large to hold whole, scored by tiles, leaves the mask's nodata out as the
    whole image's run does (here the tiling forced on the Paris chip)."""
    import tempfile

    import osmgap.jobs.eval as eval_job
    from osmgap.scale.options import ScaleOptions

    whole = evaluate_imagery(paris / "image.tif", masks / "right_nodata.tif", views=1)
    monkeypatch.setattr(eval_job, "self_tiling", lambda pixels: ScaleOptions(workers=0, tile_px=64, temporary=True))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    tiled = evaluate_imagery(paris / "image.tif", masks / "right_nodata.tif", views=1)
    assert tiled.get("tiled")
    for key in ("iou", "precision", "recall", "relaxed_f1@3m"):
        assert tiled[key] == pytest.approx(whole[key], abs=5e-3), key
    assert whole["iou"] > 0.4 and tiled["labelled_share"] == pytest.approx(whole["labelled_share"], abs=0.01)
    assert tiled["truth_km"] == pytest.approx(whole["truth_km"], rel=0.05)
    assert tiled["proposal_km"] == pytest.approx(whole["proposal_km"], rel=0.1)


def test_undeclared_zero_fill_is_not_scored_area(data):
    """Shanghai img1916 is 67 % zero fill, undeclared: its scored area was the whole chip's
    0.131 km2, dividing a road-free chip's false km by three times the scene."""
    chips = data / "chips" / "shanghai"
    result = evaluate_imagery(chips / "AOI_4_Shanghai_img1916_pan.tif", chips / "AOI_4_Shanghai_img1916_roads.geojson",
                              views=1)
    assert 0.03 < result["area_km2"] < 0.06
    assert result["truth_km"] == pytest.approx(0.55, abs=0.05)  # every labelled road lies on the scene


def test_an_image_of_the_shipped_model_s_training_is_said(vegas, capsys):
    """The shipped model trained on the Vegas chip (its checkpoint's record, of both averaged
    parents, says so); eval of it said nothing, as no MODEL.json lies beside the shipped model."""
    assert main(["eval", "--imagery", str(vegas / "image_pan_uint16.tif"), "--labels", str(vegas / "roads.geojson"),
                 "--views", "1"]) == 0
    printed = capsys.readouterr().out
    assert "an image named image_pan_uint16.tif is in the training set of the shipped model" in printed


def test_an_image_that_chose_the_threshold_is_said(paris, tmp_path, capsys):
    """A --pair image in the hash-chosen validation tenth chooses the checkpoint and threshold: a
    score on it is optimistic too, and only the training images were said."""
    model = tmp_path / "mine.pt"
    model.write_bytes((Path(__file__).parents[2] / "osmgap" / "model" / "weights" / "default.pt").read_bytes())
    Path(f"{model}.json").write_text(json.dumps({"train_names": ["pair/other.tif+other.geojson"],
                                                 "val_names": ["pair/image.tif+osm_roads.geojson"]}))
    assert main(["eval", "--imagery", str(paris / "image.tif"), "--labels", str(paris / "osm_roads.geojson"),
                 "--model", str(model), "--views", "1"]) == 0
    printed = capsys.readouterr().out
    assert "an image named image.tif validated the training of" in printed and "threshold" in printed
    assert "training set" not in printed


def test_training_on_a_partial_mask_learns_nothing_where_it_says_nothing(paris, masks):
    """`osmgap train --pair IMAGE=MASK` reads labels as eval does: the mask's nodata was drawn as
    road (99.6 % of its right half) and taught so."""
    from osmgap.model.data import load_labelled_image

    sample = load_labelled_image(paris / "image.tif", masks / "right_nodata.tif", 1.0)
    whole = load_labelled_image(paris / "image.tif", masks / "mask.tif", 1.0)
    assert sample.valid is not None and 0.45 < sample.valid.mean() < 0.55
    assert not sample.mask[~sample.valid].any() and (sample.image[:, ~sample.valid] == 0).all()
    inside = ndimage.binary_erosion(sample.valid)  # the pixels the mask's edge crosses aside
    assert (sample.mask[inside] == whole.mask[inside]).all() and 0.1 < sample.mask[inside].mean() < 0.3


def test_labels_off_the_image_are_said(paris, masks, scored):
    """The same mask placed 13.8 m east of the image scored IoU 0.04 (0.34 in place) with no word."""
    off = evaluate_imagery(paris / "image.tif", masks / "east.tif", views=1)
    assert off["iou"] < 0.1 and off["label_offset"]["east_m"] == pytest.approx(-14, abs=2)
    assert off["label_offset"]["iou_moved"] > 0.3
    assert any("best moved 1" in w and "m west" in w and "aligned" in w for w in off["warnings"])
    assert "label_offset" not in scored["mask.tif"] and not any("aligned" in w for w in scored["mask.tif"]["warnings"])
