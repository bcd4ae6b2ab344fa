"""Imagery files as mappers bring them, derived from the real Paris chip: Web Mercator exports,
palette images, rotated, mirrored or GCP-placed grids, multispectral bands without names."""
import math

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.control import GroundControlPoint
from rasterio.warp import Resampling, calculate_default_transform, reproject

from osmgap.cli import main
from osmgap.errors import InputError
from osmgap.sources.imagery import WindowReader, analysis_grid, check_resolution, measure_coverage, open_imagery


def write(path, src, pixels, transform=None, **profile):
    """``pixels`` as a GeoTIFF with the Paris chip's CRS and ``transform`` (default: the chip's)."""
    kw = {"driver": "GTiff", "height": pixels.shape[1], "width": pixels.shape[2], "count": pixels.shape[0],
          "dtype": pixels.dtype, "crs": src.crs, "transform": transform or src.transform, **profile}
    with rasterio.open(path, "w", **kw) as dst:
        dst.write(pixels)
    return path


def warped(path, src, crs, metres_per_px):
    """The chip warped to ``crs`` at ``metres_per_px`` of that CRS's units, as gdalwarp -t_srs -tr would."""
    transform, width, height = calculate_default_transform(src.crs, crs, src.width, src.height, *src.bounds,
                                                           resolution=metres_per_px)
    out = np.zeros((3, height, width), np.uint8)
    reproject(src.read(), out, src_transform=src.transform, src_crs=src.crs, dst_transform=transform, dst_crs=crs,
              resampling=Resampling.average)
    with rasterio.open(path, "w", driver="GTiff", height=height, width=width, count=3, dtype="uint8", crs=crs,
                       transform=transform, nodata=0, photometric="RGB") as dst:
        dst.write(out)
    return path


def test_web_mercator_resolution_is_the_ground_size(tmp_path, paris):
    """Web Mercator's metres are 1/cos(lat) = 1.52 ground metres at Paris: a 2.7 m export (4.1 m of
    projected pixel) was refused as 4.1 times coarser than the model; it is what UTM's 2.7 m is."""
    with rasterio.open(paris / "image.tif") as src:
        lat = (src.bounds.top + src.bounds.bottom) / 2
        utm = open_imagery(warped(tmp_path / "utm.tif", src, "EPSG:32631", 2.7))
        mercator = open_imagery(warped(tmp_path / "m3857.tif", src, "EPSG:3857", 2.7 / math.cos(math.radians(lat))))
    assert utm.resolution_m == pytest.approx(2.7, rel=0.01)
    assert mercator.resolution_m == pytest.approx(2.7, rel=0.01)
    said = check_resolution(mercator, 1.0)  # warned as UTM's is, not refused
    assert said is not None and "2.7 m/px" in said


def test_geographic_resolution_is_the_ground_size(paris):
    """The Paris chip (WGS84 degrees, ~0.20 x 0.30 m pixels at 48.98 N)."""
    assert open_imagery(paris / "image.tif").resolution_m == pytest.approx(math.sqrt(0.1975 * 0.3003), rel=0.01)


def popularity_palette(rgb):
    """``rgb`` quantised to 6 levels a channel, indexes by popularity (as PNG8 and WMS exports store
    them): the indexes say nothing of brightness. The index image and its colour table."""
    levels = (rgb.astype(np.int32) * 6 // 256) * 45 + 20  # 20..245: no colour is the reference's nodata 0
    codes = levels[0] * 65536 + levels[1] * 256 + levels[2]
    colours, inverse, counts = np.unique(codes.ravel(), return_inverse=True, return_counts=True)
    order = np.argsort(-counts)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    table = {int(rank[i]): (int(c >> 16), int(c >> 8 & 255), int(c & 255), 255) for i, c in enumerate(colours)}
    return rank[inverse].reshape(codes.shape).astype(np.uint8), table, levels.astype(np.uint8)


def test_a_palette_image_is_read_as_its_colours(tmp_path, paris, paris_aoi):
    """The Paris chip as a 216-colour palette image reads like the same colours stored as RGB
    (its indexes read as grey scored eval IoU 0.08 against 0.36), nodata index included."""
    with rasterio.open(paris / "image.tif") as src:
        index, table, colours = popularity_palette(src.read())
        index[:, :100] = 255  # the left columns: the palette's nodata index
        colours[:, :, :100] = 0
        pal = tmp_path / "palette.tif"
        with rasterio.open(pal, "w", driver="GTiff", height=src.height, width=src.width, count=1, dtype="uint8",
                           crs=src.crs, transform=src.transform, photometric="PALETTE", nodata=255) as dst:
            dst.write(index, 1)
            dst.write_colormap(1, {**table, 255: (0, 0, 0, 255)})
        rgb = write(tmp_path / "rgb.tif", src, colours, photometric="RGB", nodata=0)
    a, b = open_imagery(pal), open_imagery(rgb)
    assert a.band_indexes == [1, 2, 3] and a.warnings == ()
    assert np.allclose(a.stretch, b.stretch, atol=1)
    grid = analysis_grid(a, paris_aoi.geometry, paris_aoi.metric_crs, 1.0)
    with WindowReader(a, grid) as ra, WindowReader(b, grid) as rb:
        (pa, va), (pb, vb) = ra.read_all(), rb.read_all()
    assert (va == vb).mean() > 0.99 and 0.1 < va.mean() < 0.9  # the nodata columns are not imagery
    assert np.abs(pa - pb)[:, va & vb].mean() < 0.02
    assert measure_coverage(a, paris_aoi).aoi_share == pytest.approx(measure_coverage(b, paris_aoi).aoi_share, abs=0.01)


@pytest.mark.parametrize("name,problem", [
    ("rot90", "turned 90 degrees from north-up"),  # rows run east, columns south: from_bounds divided by 0
    ("mirror", "east-west mirrored"),
])
def test_a_grid_not_north_up_is_refused_in_one_line(tmp_path, paris, capsys, name, problem):
    """Both verbs exit 2 with one line naming the file and the warp that fixes it (was an internal
    ZeroDivisionError / WindowError, or "truncated or corrupt?")."""
    with rasterio.open(paris / "image.tif") as src:
        t, rgb = src.transform, src.read()
        if name == "rot90":
            image = write(tmp_path / f"{name}.tif", src, rgb.transpose(0, 2, 1).copy(), Affine(0, t.a, t.c, t.e, 0, t.f))
        else:
            image = write(tmp_path / f"{name}.tif", src, rgb[:, :, ::-1].copy(),
                          Affine(-t.a, 0, t.c + t.a * src.width, 0, t.e, t.f))
    with pytest.raises(InputError, match=f"{name}.tif: .*{problem}.*gdalwarp IN.tif OUT.tif"):
        open_imagery(image)
    osm = str(paris / "osm_roads.geojson")
    for verb in (["eval", "--labels", osm], ["diff", "--aoi", str(paris / "aoi.geojson"), "--osm", osm]):
        out = tmp_path / f"out-{verb[0]}"
        assert main([verb[0], "--imagery", str(image), *verb[1:], *(["--out", str(out)] if verb[0] == "diff" else [])]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(image) in err[0] and problem in err[0] and not out.exists()


def test_a_15_degree_rotation_is_still_read(tmp_path, paris):
    with rasterio.open(paris / "image.tif") as src:
        t = src.transform @ Affine.rotation(15)
        image = write(tmp_path / "rot15.tif", src, src.read(), Affine(t.a, t.b, src.transform.c, t.d, t.e,
                                                                       src.transform.f))
    assert open_imagery(image).resolution_m == pytest.approx(open_imagery(paris / "image.tif").resolution_m, rel=0.03)


def test_gcps_only_is_told_to_be_warped(tmp_path, paris):
    with rasterio.open(paris / "image.tif") as src:
        t = src.transform
        gcps = [GroundControlPoint(r, c, *(t @ (c, r))) for r, c in ((0, 0), (0, 650), (650, 0), (650, 650), (325, 325))]
        image = tmp_path / "gcps.tif"
        with rasterio.open(image, "w", driver="GTiff", height=650, width=650, count=3, dtype="uint8", gcps=gcps,
                           crs=src.crs, photometric="RGB") as dst:
            dst.write(src.read())
    with pytest.raises(InputError, match=r"gcps.tif: .*georeferenced by 5 ground control points only.*gdalwarp"):
        open_imagery(image)


def test_four_bands_without_names_say_which_were_read_as_rgb(tmp_path, paris):
    """Blue, green, red, NIR in uint16 (PlanetScope's order) with no band names, as rasterio and GDAL
    write it (grey, undefined...): read 1,2,3 (blue as red: eval IoU 0.08) and said, with --bands;
    named, the names choose and nothing is said."""
    with rasterio.open(paris / "image.tif") as src:
        rgb = src.read().astype(np.uint16) * 16
        bgrn = np.concatenate([rgb[::-1], rgb[1:2]])
        plain = write(tmp_path / "bgrn.tif", src, bgrn)
        named = write(tmp_path / "named.tif", src, bgrn)
    with rasterio.open(named, "r+") as dst:
        dst.descriptions = ("blue", "green", "red", "nir")
    guessed = open_imagery(plain)
    assert guessed.band_indexes == [1, 2, 3]
    said = [w for w in guessed.warnings if "read as red, green, blue" in w]
    assert len(said) == 1 and str(plain) in said[0] and "bands 1,2,3" in said[0] and "--bands 3,2,1" in said[0]
    chosen = open_imagery(named)
    assert chosen.band_indexes == [3, 2, 1] and chosen.warnings == ()
    assert open_imagery(plain, (3, 2, 1)).warnings == ()
