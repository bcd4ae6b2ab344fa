"""Imagery read at the model's resolution says where it ends: past a reprojected image's edge no
pixel is valid (every one was, read as black ground, when the file declared no nodata)."""
from __future__ import annotations

import numpy as np
import rasterio
from rasterio.warp import Resampling, calculate_default_transform, reproject
from shapely.geometry import box

from osmgap.core.aoi import reproject as reproject_geometry
from osmgap.model.labels import footprint_grid
from osmgap.sources.imagery import WindowReader, open_imagery


def test_past_the_edge_of_an_image_in_another_crs_nothing_is_valid(paris, tmp_path):
    """The real Paris chip warped to 1 m in EPSG:3035 (as a national mosaic ships, no nodata): the
    UTM grid over it holds corners beyond the image, all read as valid black before."""
    path = tmp_path / "laea.tif"
    with rasterio.open(paris / "image.tif") as src:
        transform, width, height = calculate_default_transform(src.crs, "EPSG:3035", src.width, src.height,
                                                               *src.bounds, resolution=1.0)
        profile = {"driver": "GTiff", "count": src.count, "dtype": src.dtypes[0], "crs": "EPSG:3035",
                   "transform": transform, "width": width, "height": height}
        with rasterio.open(path, "w", **profile) as dst:
            for band in range(1, src.count + 1):
                reproject(rasterio.band(src, band), rasterio.band(dst, band), resampling=Resampling.average)
        footprint, chip_crs = box(*src.bounds), src.crs  # where the image is
    imagery = open_imagery(path)
    grid, _ = footprint_grid(imagery, 1.0)
    with WindowReader(imagery, grid) as reader:
        assert reader.step == (1, 1)  # read through the warped view at full resolution
        _, valid = reader.read_all()
    assert 0.6 < valid.mean() < 0.95, valid.mean()
    rows, cols = np.nonzero(~valid)
    xs, ys = rasterio.transform.xy(grid.transform, rows, cols)
    footprint = reproject_geometry(footprint, chip_crs, grid.crs)
    inside = np.asarray([footprint.buffer(-3).contains(box(x - 0.5, y - 0.5, x + 0.5, y + 0.5)) for x, y in zip(xs, ys)])
    assert inside.mean() < 0.2  # what is not valid lies at the edge or past it (the rest: the warp's own fill)
