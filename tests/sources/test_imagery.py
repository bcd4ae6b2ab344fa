"""Imagery reading on the real chips: CRS, bit depth, band count, nodata, windows."""
import numpy as np
import pytest
import rasterio
from rasterio.warp import Resampling, calculate_default_transform, reproject

from osmgap.errors import InputError
from osmgap.sources.imagery import WindowReader, analysis_grid, open_imagery


def test_paris_rgb_chip(paris, paris_aoi):
    im = open_imagery(paris / "image.tif")
    assert im.band_indexes == [1, 2, 3] and im.dtype == "uint8"
    assert 0.2 < im.resolution_m < 0.3  # ~0.2 x 0.3 m pixels
    grid = analysis_grid(im, paris_aoi.geometry, paris_aoi.metric_crs, 1.0)
    assert grid.crs.to_epsg() == 32631 and 110 < grid.width < 140 and 180 < grid.height < 200
    with WindowReader(im, grid) as r:
        data, valid = r.read_all()
    assert data.shape == (3, grid.height, grid.width) and valid.mean() > 0.99
    assert 0.1 < data.mean() < 0.5 and data.max() <= 1.0


def test_uint16_single_band_is_stretched(vegas):
    im = open_imagery(vegas / "image_pan_uint16.tif")
    assert im.band_indexes == [1, 1, 1]
    lo, hi = im.stretch
    assert 0 < lo[0] < hi[0] < 2048  # 11-bit data, far below the uint16 range


def test_window_outside_grid_is_invalid(paris, paris_aoi):
    im = open_imagery(paris / "image.tif")
    grid = analysis_grid(im, paris_aoi.geometry, paris_aoi.metric_crs, 1.0)
    with WindowReader(im, grid) as r:
        data, valid = r.read(-20, -20, 64, 64)
    assert not valid[:20].any() and not valid[:, :20].any() and valid[20:, 20:].all()
    assert (data[:, :20] == 0).all()


def test_nodata_pixels_are_invalid(tmp_path, vegas):
    src_path = vegas / "image_pan_uint16.tif"
    out = tmp_path / "nodata.tif"
    with rasterio.open(src_path) as src:
        arr = src.read(1)
        arr[:400, :] = 0  # a real chip with its top third blanked as nodata
        profile = {**src.profile, "nodata": 0}
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(arr, 1)
    im = open_imagery(out)
    from rasterio.warp import transform_bounds

    from osmgap.core.aoi import utm_crs_for
    from osmgap.core.grid import grid_over
    crs = utm_crs_for(-115.23, 36.14)
    grid = grid_over(transform_bounds("EPSG:4326", crs, *im.bounds_wgs84), crs, 1.0)
    with WindowReader(im, grid) as r:
        _, valid = r.read_all()
    top, bottom = valid[: grid.height // 5].mean(), valid[-grid.height // 5:].mean()
    assert top < 0.05 and bottom > 0.9


def test_other_crs_and_alpha_band_give_same_pixels(tmp_path, paris, paris_aoi):
    """The Paris chip warped to Web Mercator with an alpha band reads like the original."""
    src_path = paris / "image.tif"
    out = tmp_path / "mercator_rgba.tif"
    with rasterio.open(src_path) as src:
        transform, w, h = calculate_default_transform(src.crs, "EPSG:3857", src.width, src.height, *src.bounds)
        profile = {**src.profile, "crs": "EPSG:3857", "transform": transform, "width": w, "height": h, "count": 4}
        with rasterio.open(out, "w", **profile) as dst:
            for b in range(1, 4):
                reproject(rasterio.band(src, b), rasterio.band(dst, b), resampling=Resampling.bilinear)
            dst.write(np.full((h, w), 255, np.uint8), 4)
            dst.colorinterp = [rasterio.enums.ColorInterp.red, rasterio.enums.ColorInterp.green,
                               rasterio.enums.ColorInterp.blue, rasterio.enums.ColorInterp.alpha]
    a, b = open_imagery(src_path), open_imagery(out)
    assert b.band_indexes == [1, 2, 3]
    grid = analysis_grid(a, paris_aoi.geometry, paris_aoi.metric_crs, 1.0)
    with WindowReader(a, grid) as ra, WindowReader(b, grid) as rb:
        da, _ = ra.read_all()
        db, _ = rb.read_all()
    assert np.corrcoef(da.ravel(), db.ravel())[0, 1] > 0.95


def test_no_crs_is_bad_input(tmp_path, paris):
    out = tmp_path / "nocrs.tif"
    with rasterio.open(paris / "image.tif") as src:
        profile = {**src.profile}
        profile.pop("crs")
        with rasterio.open(out, "w", **profile) as dst:
            dst.write(src.read())
    with pytest.raises(InputError, match="nocrs.tif.*no CRS"):
        open_imagery(out)


def test_aoi_outside_imagery(paris):
    from osmgap.core.aoi import load_aoi
    far = load_aoi("2.30,48.99,2.31,49.00")
    im = open_imagery(paris / "image.tif")
    with pytest.raises(InputError, match="does not overlap the AOI"):
        analysis_grid(im, far.geometry, far.metric_crs, 1.0)


def test_not_a_raster(tmp_path):
    f = tmp_path / "junk.tif"
    f.write_bytes(b"II*\x00 this is not a tiff")
    with pytest.raises(InputError, match="junk.tif"):
        open_imagery(f)
