"""Imagery reading on the real chips: CRS, bit depth, band count, nodata, windows."""
from dataclasses import replace

import numpy as np
import pytest
import rasterio
from rasterio.warp import Resampling, calculate_default_transform, reproject

from osmgap.core.stretch import robust_limits
from osmgap.errors import InputError
from osmgap.sources.imagery import (
    WindowReader,
    analysis_grid,
    check_resolution,
    measure_coverage,
    open_imagery,
    warp_scale,
)


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


def _copy_with(tmp_path, paris, name, arr, **change):
    """The Paris chip's georeferencing holding ``arr``."""
    with rasterio.open(paris / "image.tif") as src:
        profile = {**src.profile, "count": arr.shape[0], "dtype": arr.dtype.name, **change}
    with rasterio.open(tmp_path / name, "w", **profile) as dst:
        dst.write(arr)
    return tmp_path / name


def _paris_pixels(paris):
    with rasterio.open(paris / "image.tif") as src:
        return src.read()


def test_coverage_of_the_paris_chip_is_its_aoi(paris, paris_aoi):
    cov = measure_coverage(open_imagery(paris / "image.tif"), paris_aoi)
    assert cov.aoi_share == pytest.approx(1.0, abs=1e-6)
    assert cov.area_km2 == pytest.approx(paris_aoi.area_km2(), rel=1e-6)
    assert cov.area_wgs84.symmetric_difference(paris_aoi.geometry).area < 1e-6 * paris_aoi.geometry.area


def test_nan_half_is_not_covered_and_not_valid(tmp_path, paris, paris_aoi):
    """Float imagery with its western half NaN (no nodata declared): half the AOI is covered, the
    covered part is the eastern half, and the window reader calls the NaN pixels invalid (they were
    fed to the model as NaN, which gave an empty result)."""
    arr = _paris_pixels(paris).astype(np.float32)
    arr[:, :, :325] = np.nan
    im = open_imagery(_copy_with(tmp_path, paris, "half.tif", arr))
    assert np.isfinite(im.stretch[0]).all() and np.isfinite(im.stretch[1]).all()
    cov = measure_coverage(im, paris_aoi)
    assert cov.aoi_share == pytest.approx(0.5, abs=0.02)
    x0, _, x1, _ = paris_aoi.bounds
    assert cov.area_wgs84.bounds[0] == pytest.approx((x0 + x1) / 2, abs=2e-5)
    grid = analysis_grid(im, paris_aoi.geometry, paris_aoi.metric_crs, 1.0)
    with WindowReader(im, grid) as r:
        data, valid = r.read_all()
    assert np.isfinite(data).all() and 0.45 < valid.mean() < 0.55
    east = slice(-grid.width // 3, None)
    assert valid[:, : grid.width // 3].sum() == 0 and valid[:, east][_on_image(im, grid)[:, east]].all()


def _on_image(im, grid) -> np.ndarray:
    """Grid pixels whose centre lies on the image (the grid is the AOI's bounding box in UTM, so its
    corners reach past the image's slanted edges)."""
    from rasterio.warp import transform

    rows, cols = np.mgrid[0:grid.height, 0:grid.width]
    xs, ys = grid.transform @ (cols.ravel() + 0.5, rows.ravel() + 0.5)
    with rasterio.open(im.path) as src:
        lon, lat = transform(grid.crs, src.crs, xs, ys)
        c, r = ~src.transform @ (np.asarray(lon), np.asarray(lat))
        inside = (c >= 0) & (c < src.width) & (r >= 0) & (r < src.height)
    return inside.reshape(grid.height, grid.width)


@pytest.mark.parametrize("fill, nodata, problem", [
    (0, 0, "nodata or NaN"),  # said when the stretch is measured on opening the file
    (0, None, "holds the same value (0, 0, 0)"),
    (np.nan, None, "only nodata or NaN"),
])
def test_no_usable_imagery_over_the_aoi_is_bad_input(tmp_path, paris, paris_aoi, fill, nodata, problem):
    arr = np.full(_paris_pixels(paris).shape, fill, np.float32 if fill != 0 else np.uint8)
    path = _copy_with(tmp_path, paris, "blank.tif", arr, nodata=nodata)
    with pytest.raises(InputError) as err:
        measure_coverage(open_imagery(path), paris_aoi)
    assert problem in str(err.value) and "blank.tif" in str(err.value)


def test_truncated_file_names_the_file(tmp_path, paris, paris_aoi):
    """A GeoTIFF cut short has a whole header; reading its pixels fails, and the error names the
    file, where GDAL's own "Read failed" named none."""
    cut = tmp_path / "cut.tif"
    cut.write_bytes((paris / "image.tif").read_bytes()[:600_000])
    with pytest.raises(InputError) as err:  # on opening (the stretch reads the whole image, decimated) or reading
        im = open_imagery(cut)
        grid = analysis_grid(im, paris_aoi.geometry, paris_aoi.metric_crs, 1.0)
        with WindowReader(im, grid) as r:
            r.read_all()
    assert str(cut) in str(err.value) and "truncated" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("metres, verdict", [(0.3, None), (1.4, None), (2.0, "warning"), (4.0, "warning"),
                                             (4.5, "error"), (158.0, "error")])
def test_resolution_far_coarser_than_the_models_is_refused(paris, metres, verdict):
    im = replace(open_imagery(paris / "image.tif"), resolution_m=metres)
    if verdict == "error":
        with pytest.raises(InputError, match="image.tif.*coarser than the model's 1 m/px"):
            check_resolution(im, 1.0)
    else:
        said = check_resolution(im, 1.0)
        assert (said is not None) == (verdict == "warning")
        assert said is None or ("image.tif" in said and "coarser" in said)


def _overviews_copy(tmp_path, paris):
    """The Paris chip as large imagery ships: tiled, with internal overviews (x2, x4)."""
    with rasterio.open(paris / "image.tif") as src:
        profile = {**src.profile, "tiled": True, "blockxsize": 256, "blockysize": 256}
        pixels = src.read()
    out = tmp_path / "with_overviews.tif"
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(pixels)
        dst.build_overviews([2, 4], Resampling.average)
    return out


@pytest.mark.parametrize("metres", [1.0, 2.0])
def test_fine_imagery_is_read_decimated_and_looks_the_same(tmp_path, paris, paris_aoi, monkeypatch, metres):
    """The 0.2 x 0.3 m chip on a 1 m (2 m) grid is read decimated, from its overviews when it has
    them: the pixels stay those of the full-resolution warp up to resampling (the model's scores
    on the real chips move by less than 0.01 IoU: bench/speed.py --eval)."""
    import osmgap.sources.imagery as imagery_module

    im = open_imagery(paris / "image.tif")
    grid = analysis_grid(im, paris_aoi.geometry, paris_aoi.metric_crs, metres)
    with WindowReader(im, grid) as r:
        assert r.step[0] >= 3 * metres and r.step[1] >= 2 * metres  # x: ~0.2 m, y: ~0.3 m source pixels
        decimated, valid = r.read_all()
        r0, c0, side = grid.height // 4, grid.width // 4, min(grid.height, grid.width) // 2
        window, window_valid = r.read(r0, c0, side, side)
    with WindowReader(open_imagery(_overviews_copy(tmp_path, paris)), grid) as r:
        from_overviews, ovr_valid = r.read_all()
    monkeypatch.setattr(imagery_module, "DECIMATE_FROM", float("inf"))  # the full-resolution warp of before
    with WindowReader(im, grid) as r:
        assert r.step == (1, 1)
        full, full_valid = r.read_all()
    assert (valid == full_valid).mean() > 0.98 and valid.mean() > 0.95
    both = valid & full_valid
    for other in (decimated, from_overviews):
        assert np.abs(other - full)[:, both].mean() < 0.02
        assert np.corrcoef(other[:, both].ravel(), full[:, both].ravel())[0, 1] > 0.97
    assert (ovr_valid == valid).mean() > 0.98
    # a window reads the pixels the whole grid reads there (decimated on one fixed lattice, one kernel
    # size), up to GDAL's approximate transformer: within a tenth of a grey level
    np.testing.assert_allclose(window, decimated[:, r0:r0 + side, c0:c0 + side], atol=4e-4)
    assert (window_valid == valid[r0:r0 + side, c0:c0 + side]).all()


def test_a_dark_8bit_image_reaches_the_model_like_the_original(tmp_path, paris, paris_aoi):
    """Issue 15: a scene darkened to a median grey of 30 (a dark acquisition, an 8-bit export of
    deep data) is stretched the same robust way as any image, so the model sees what it sees in
    the well-exposed original; before, it saw a near-black picture and found no road."""
    with rasterio.open(paris / "image.tif") as src:
        pixels, profile = src.read().astype(np.float64), src.profile
    dark = tmp_path / "dark.tif"
    with rasterio.open(dark, "w", **profile) as dst:
        dst.write(np.round(np.clip(pixels * (30 / np.median(pixels.mean(axis=0))), 0, 255)).astype(np.uint8))
    reads = []
    for path in (paris / "image.tif", dark):
        im = open_imagery(path)
        with WindowReader(im, analysis_grid(im, paris_aoi.geometry, paris_aoi.metric_crs, 1.0)) as reader:
            reads.append(reader.read_all()[0])
    original, darkened = reads
    assert np.median(darkened) == pytest.approx(np.median(original), abs=0.03)
    assert np.abs(darkened - original).mean() < 0.03  # the same picture, not just the same brightness


def test_fully_valid_windows_warp_unmasked_to_the_same_pixels(paris, paris_aoi, monkeypatch):
    """warp_window's fast path (no source nodata where every source pixel is valid and the source
    reaches past the window) gives exactly the pixels of the masked warp; windows on the imagery's
    edge, with a no-data hole, or whose source falls short all go the masked way."""
    import osmgap.sources.imagery as imagery_module

    calls: list[tuple] = []
    real = imagery_module.warp_window
    monkeypatch.setattr(imagery_module, "warp_window", lambda *a: calls.append(a) or real(*a))
    im = open_imagery(paris / "image.tif")
    grid = analysis_grid(im, paris_aoi.geometry, paris_aoi.metric_crs, 1.0)
    with WindowReader(im, grid) as r:
        for row, col in ((-40, -40), (grid.height // 2 - 24, grid.width // 2 - 24)):
            r.read(row, col, 48, 48)
    edge, inner = calls
    source, alpha, *rest = inner
    holed = alpha.copy()
    holed[10:30, 10:30] = 0
    short = (source[:, :40, :40], alpha[:40, :40], *rest)
    warps: list[bool] = []
    real_warp = imagery_module._warp
    monkeypatch.setattr(imagery_module, "_warp", lambda *a: warps.append(a[-1]) or real_warp(*a))

    def both_ways(args: tuple) -> tuple[np.ndarray, np.ndarray]:
        source, alpha, src_transform, crs, g, window, resampling, scale = args
        data = source.astype(np.float32)
        data[:, alpha < 127.5] = np.nan
        data = np.pad(data, ((0, 0), (imagery_module.EDGE_PX,) * 2, (imagery_module.EDGE_PX,) * 2), mode="edge")
        masked = real_warp(data, src_transform, crs, g, window, resampling, scale, True)
        masked_valid = np.isfinite(masked).all(axis=0)
        warps.clear()
        out, valid = real(*args)
        assert (valid == masked_valid).all() and valid.any()
        np.testing.assert_array_equal(out[:, valid], masked[:, masked_valid])
        return out, valid

    both_ways(inner)
    assert warps == [False]  # inside valid imagery: unmasked, once
    for args, hole in ((edge, False), ((source, holed, *rest), True), (short, True)):
        _, valid = both_ways(args)
        assert warps == [True] and valid.all() != hole  # straight to the masked warp
    monkeypatch.setattr(imagery_module, "_covers", lambda *a: True)  # were the footprint misjudged
    both_ways(short)
    assert warps == [False, True]  # the unmasked warp leaves NaN where nothing reached: warped again


def test_imagery_valid_all_over_skips_the_mask_read_and_reads_the_same(paris, paris_aoi, monkeypatch):
    """No nodata, alpha or mask band (the Paris chip): the reader takes the mask as all valid
    instead of reading it, and every pixel and validity stays what reading the mask gave."""
    im = open_imagery(paris / "image.tif")
    grid = analysis_grid(im, paris_aoi.geometry, paris_aoi.metric_crs, 1.0)
    with WindowReader(im, grid) as r:
        assert r._all_valid and r.step != (1, 1)
        skipped = r.read(-20, -20, 80, 80)
        r._all_valid = False
        read = r.read(-20, -20, 80, 80)
    np.testing.assert_array_equal(skipped[0], read[0])
    np.testing.assert_array_equal(skipped[1], read[1])
    assert 0 < read[1].mean() < 1  # the window runs off the grid: partly invalid either way


def test_decimated_reads_are_warped_narrow_only_where_no_read_pixel_is_skipped(paris, paris_aoi):
    """The 4-sample bilinear reads every read pixel as long as they are at most 2x finer than the
    grid; finer, the kernel is widened to the footprint, by a scale fixed for the reader. The real
    Paris chip (0.3 m, 1 m grid) is read decimated and warped narrow."""
    assert warp_scale((3.3, 3.4), (2, 2)) == (1.0, 1.0)
    assert warp_scale((2.4, 3.4), (1, 2)) == pytest.approx((1 / 2.4, 2 / 3.4))  # 2.4 read pixels per grid px along x
    assert warp_scale((2.0, 2.0), (1, 1)) == (1.0, 1.0)
    im = open_imagery(paris / "image.tif")
    grid = analysis_grid(im, paris_aoi.geometry, paris_aoi.metric_crs, 1.0)
    with WindowReader(im, grid) as reader:
        assert reader.step != (1, 1) and reader._scale == (1.0, 1.0)


def test_bands_named_red_green_blue_are_read_as_such(tmp_path, paris, paris_aoi):
    """The Paris chip written blue, green, red with its bands named so (GDAL still tags bands 1-3
    red, green, blue) reads like the original: the names win over the default tags."""
    out = tmp_path / "bgr.tif"
    with rasterio.open(paris / "image.tif") as src:
        with rasterio.open(out, "w", **{**src.profile, "photometric": "RGB"}) as dst:
            dst.write(src.read([3, 2, 1]))
            dst.descriptions = ("Blue", "Green", "Red")
    with rasterio.open(out) as check:
        assert check.colorinterp[:3] == (rasterio.enums.ColorInterp.red, rasterio.enums.ColorInterp.green,
                                         rasterio.enums.ColorInterp.blue)
    a, b = open_imagery(paris / "image.tif"), open_imagery(out)
    assert b.band_indexes == [3, 2, 1] and b.warnings == ()
    grid = analysis_grid(a, paris_aoi.geometry, paris_aoi.metric_crs, 1.0)
    with WindowReader(a, grid) as ra, WindowReader(b, grid) as rb:
        assert np.array_equal(ra.read_all()[0], rb.read_all()[0])


def test_a_multispectral_image_says_which_bands_it_guessed(shanghai_mul):
    """A real WorldView-3 8-band chip (coastal, blue, green, yellow, red, ...) whose file tags its
    first three bands red, green, blue: read so, with a warning naming the option; ``bands`` chooses."""
    guessed = open_imagery(shanghai_mul)
    assert guessed.band_indexes == [1, 2, 3]
    said = next(w for w in guessed.warnings if "8 bands" in w)
    assert "--bands 5,3,2" in said and str(shanghai_mul) in said
    chosen = open_imagery(shanghai_mul, (5, 3, 2))
    assert chosen.band_indexes == [5, 3, 2] and not any("bands" in w for w in chosen.warnings)
    assert chosen.provenance()["bands_used"] == [5, 3, 2]
    with rasterio.open(shanghai_mul) as src:  # red stretched between its own percentiles, not band 1's
        red, coastal = src.read(5).ravel(), src.read(1).ravel()
        scene = src.read().any(axis=0).ravel()  # outside the satellite strip: 0 in every band
    assert (chosen.stretch[0][0], chosen.stretch[1][0]) == pytest.approx(robust_limits(red[scene]))
    assert (guessed.stretch[0][0], guessed.stretch[1][0]) == pytest.approx(robust_limits(coastal[scene]))
    assert open_imagery(shanghai_mul, (7,)).band_indexes == [7, 7, 7]  # one band: read as grey


@pytest.mark.parametrize("bands", [(9, 3, 2), (0, 1, 2), (5, 3)])
def test_bands_the_image_lacks_are_bad_input(shanghai_mul, bands):
    with pytest.raises(InputError, match=r"--bands .*the image has 8 bands") as err:
        open_imagery(shanghai_mul, bands)
    assert str(shanghai_mul) in str(err.value)


@pytest.fixture(scope="module")
def shanghai_mul(data):
    return data / "chips" / "shanghai" / "AOI_4_Shanghai_img1916_mul.tif"


def test_undeclared_zero_fill_is_left_out_of_the_stretch(tmp_path, data, paris):
    """A real SpaceNet PAN chip whose outside-the-strip pixels are 0 with no nodata declared (67 %
    of it): stretched like the same chip with 0 declared as nodata, and the user is told."""
    chip = data / "chips" / "shanghai" / "AOI_4_Shanghai_img1916_pan.tif"
    declared = tmp_path / "declared.tif"
    with rasterio.open(chip) as src, rasterio.open(declared, "w", **{**src.profile, "nodata": 0}) as out:
        out.write(src.read())
    undeclared, reference = open_imagery(chip), open_imagery(declared)
    assert np.allclose(undeclared.stretch, reference.stretch) and reference.stretch[0][0] > 0
    said = [w for w in undeclared.warnings if "no nodata is declared" in w]
    assert len(said) == 1 and said[0].startswith(f"WARNING: {chip}: 67% ") and "gdal_edit.py -a_nodata 0" in said[0]
    assert reference.warnings == () and open_imagery(paris / "image.tif").warnings == ()  # no fill: nothing said


def test_a_masks_zeros_are_values_not_fill(vegas):
    """The real Vegas road mask (0 off the road, one value on it, no nodata): its zeros stay in
    the stretch, or the road value alone would span it and read as 0."""
    mask = open_imagery(vegas / "road_mask.tif")
    assert mask.warnings == () and mask.stretch[0][0] == 0 and mask.stretch[1][0] > 0
