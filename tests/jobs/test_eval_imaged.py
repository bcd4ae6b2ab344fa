"""`osmgap eval` scores the labelled roads where the image has usable pixels, in every figure."""
import json

import pytest
import rasterio
from rasterio.windows import Window

from osmgap.cli import main
from osmgap.graph.skeleton import graph_length_m
from osmgap.model.labels import footprint_grid, load_labels
from osmgap.sources.imagery import open_imagery


def test_roads_under_nodata_are_not_labelled_road(tmp_path, paris):
    """The Paris chip with its left half nodata: APLS, TOPO and the labelled km are the right half's
    (the same pixels cropped), as the pixel scores already were; they counted the whole chip's
    0.707 km, the roads under nodata as missed."""
    with rasterio.open(paris / "image.tif") as src:
        rgb, kw = src.read(), {**src.profile, "photometric": "RGB"}
        half = src.width // 2
        crop = tmp_path / "crop.tif"
        with rasterio.open(crop, "w", **{**kw, "width": src.width - half,
                                         "transform": src.window_transform(Window(half, 0, src.width - half, src.height))}) as d:
            d.write(rgb[:, :, half:])
        rgb[:, :, :half] = 0
        masked = tmp_path / "nodata_left.tif"
        with rasterio.open(masked, "w", **{**kw, "nodata": 0}) as d:
            d.write(rgb)
    labels = paris / "osm_roads.geojson"
    grid, aoi = footprint_grid(open_imagery(crop), 1.0)
    right_km = graph_length_m(load_labels(labels, grid, aoi).graph) / 1000
    out = tmp_path / "eval.json"
    assert main(["eval", "--imagery", str(masked), "--labels", str(labels), "--views", "1", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert 0.25 < right_km < 0.45 and result["truth_km"] == pytest.approx(right_km, rel=0.05)
