"""What a mapper opens after a diff besides suggestions.osm: overview.png, probability.tif and
summary.json's JSON, checked on real imagery and real OSM (stop 50's output audit)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import rasterio
from PIL import Image
from shapely.geometry import LineString, box
from shapely.ops import substring

from osmgap.core.aoi import Aoi, reproject
from osmgap.core.datamodel import WGS84, ProbabilityRaster, Suggestion
from osmgap.core.grid import grid_over
from osmgap.core.jsontext import strict_json
from osmgap.export.overview import render_overview
from osmgap.export.probability import write_probability_tif
from osmgap.sources.imagery import analysis_grid, open_imagery, with_context

BACKGROUND = (244, 244, 240)  # overview.BACKGROUND, as the PNG holds it


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB")).astype(int)


def _aoi(lon0: float, lat0: float, lon1: float, lat1: float) -> Aoi:
    return Aoi(box(lon0, lat0, lon1, lat1), name="t", source="test")


def _plain(path: Path, aoi: Aoi, ways, suggestions=(), title: str = "t") -> np.ndarray:
    """The overview of a candidates run (no imagery) over ``aoi`` with its context."""
    bounds = reproject(with_context(aoi.geometry, aoi.metric_crs), WGS84, aoi.metric_crs).bounds
    grid = grid_over(bounds, aoi.metric_crs, 1.0)
    render_overview(path, None, grid, ways, nx.Graph(), list(suggestions), title, "footnote", aoi=aoi.geometry)
    return _pixels(path)


@pytest.mark.parametrize("strip", [(24.9440, 60.1642, 24.9443, 60.1791),  # 16 m x 1.66 km, north-south
                                   (24.9352, 60.1700, 24.9534, 60.1702)])  # 1 km x 22 m, east-west
def test_a_thin_aoi_gives_a_picture_not_a_strip(helsinki, tmp_path, strip):
    """A street-long AOI over real Helsinki drew 609 x 10,439 px (north-south) or 789 x 129 px with
    the legend over the title (east-west); now the view is widened around the strip."""
    rgb = _plain(tmp_path / "o.png", _aoi(*strip), helsinki.ways)
    height, width = rgb.shape[:2]
    assert 300 <= min(height, width) and max(height, width) <= 1400, (width, height)


def test_the_aoi_outline_is_seen_on_a_plain_background(kotka, tmp_path):
    """Without imagery the AOI's white outline vanished on the light ground (and its legend entry
    with it): it has a dark edge now."""
    aoi = _aoi(26.9400, 60.5250, 26.9600, 60.5350)
    dark = {}
    for name, outlined in (("without", None), ("with", aoi.geometry)):
        grid = grid_over(reproject(with_context(aoi.geometry, aoi.metric_crs), WGS84, aoi.metric_crs).bounds,
                         aoi.metric_crs, 1.0)
        render_overview(tmp_path / f"{name}.png", None, grid, kotka.ways, nx.Graph(), [], "t", "f", aoi=outlined)
        rgb = _pixels(tmp_path / f"{name}.png")
        dark[name] = int((rgb.max(axis=-1) < 120).sum())
    assert dark["with"] - dark["without"] > 1000, dark


def test_an_aoi_partly_outside_the_imagery_is_shown_whole_and_the_rest_hatched(vegas, tmp_path):
    """Real Vegas chip, an AOI reaching 150 m west and south of it (the imagery covers 41 %): the
    picture showed only the imagery, so nothing told the 59 % not looked at; now all of the AOI
    is in the picture, the part without imagery on the hatched ground."""
    imagery = open_imagery(vegas / "image_pan_uint16.tif")
    aoi = _aoi(-115.2350, 36.1375, -115.2315, 36.1410)
    grid = analysis_grid(imagery, with_context(aoi.geometry, aoi.metric_crs), aoi.metric_crs, 1.0)
    render_overview(tmp_path / "o.png", imagery, grid, _no_ways(), nx.Graph(), [], "t", "f", aoi=aoi.geometry)
    rgb = _pixels(tmp_path / "o.png")
    ground = (rgb == BACKGROUND).all(axis=-1).mean()
    assert ground > 0.2, ground


def test_pixels_the_imagery_has_none_of_are_not_drawn_as_dark_scene(paris, paris_aoi, tmp_path):
    """A GeoTIFF whose west half is declared nodata (the real Paris chip, its west half blanked):
    that half was drawn black, as if dark ground; now it is the hatched "no imagery" ground."""
    with rasterio.open(paris / "image.tif") as src:
        profile, data = src.profile, src.read()
    data[:, :, : data.shape[2] // 2] = 0
    with rasterio.open(tmp_path / "half.tif", "w", **{**profile, "nodata": 0}) as dst:
        dst.write(data)
    imagery = open_imagery(tmp_path / "half.tif")
    grid = analysis_grid(imagery, paris_aoi.geometry, paris_aoi.metric_crs, 1.0)
    render_overview(tmp_path / "o.png", imagery, grid, _no_ways(), nx.Graph(), [], "t", "f")
    rgb = _pixels(tmp_path / "o.png")
    black = (rgb.max(axis=-1) < 20).mean()
    assert black < 0.1 and (rgb == BACKGROUND).all(axis=-1).mean() > 0.15, black


def test_a_name_with_bidi_controls_cannot_reverse_the_title(paris_aoi, paris, tmp_path):
    """An AOI's name is a stranger's text: U+202E in it drew the rest of the title mirrored
    ("3 suggestions" as "snoitseggus 3"); the picture now shows the title without it."""
    from osmgap.sources.osm import load_osm

    ways = load_osm(str(paris / "osm_roads.geojson"), paris_aoi).ways
    plain = _plain(tmp_path / "plain.png", paris_aoi, ways, title="osmgap diff: Kotka: 3 suggestions")
    spoofed = _plain(tmp_path / "spoof.png", paris_aoi, ways, title="osmgap diff: Kotka\u202e: 3 suggestions")
    assert np.array_equal(plain, spoofed)


def test_a_suggestion_shorter_than_a_few_pixels_is_ringed(kotka, tmp_path):
    """A 4 m missing link (the first 4 m of a real Kotka way in the AOI's north-west) in a 4.9 km2
    picture was about a pixel long, some 20 px of colour; it is ringed in its colour now."""
    aoi = _aoi(26.9300, 60.5200, 26.9699, 60.5400)
    starts = kotka.ways.geometry.apply(lambda g: g.coords[0])
    near = starts.apply(lambda xy: math.hypot(xy[0] - 26.94, xy[1] - 60.535)).idxmin()
    way = reproject(kotka.ways.geometry.loc[near], WGS84, aoi.metric_crs)
    stub = reproject(substring(way, 0, 4.0), aoi.metric_crs, WGS84)
    assert isinstance(stub, LineString) and math.isclose(reproject(stub, WGS84, aoi.metric_crs).length, 4.0, abs_tol=0.1)
    link = Suggestion(id="osmgap-link", kind="missing_link", geometry=stub, length_m=4.0, confidence=0.9)
    rgb = _plain(tmp_path / "o.png", aoi, kotka.ways.iloc[:0], [link])
    magenta = (rgb[..., 0] > 180) & (rgb[..., 1] < 80) & (rgb[..., 2] > 200)
    upper_half = magenta[: magenta.shape[0] // 2]  # the link, not the legend's swatch (lower right)
    assert upper_half.sum() > 80, upper_half.sum()


def _no_ways():
    import geopandas as gpd

    return gpd.GeoDataFrame(geometry=[], crs=WGS84)


@pytest.fixture()
def road_raster(vegas) -> ProbabilityRaster:
    """The real SpaceNet road mask of the Vegas chip, as a probability."""
    with rasterio.open(vegas / "road_mask.tif") as src:
        return ProbabilityRaster((src.read(1) > 0).astype(np.float32), src.transform, src.crs)


def test_probability_tif_masks_what_was_not_looked_at(road_raster, tmp_path):
    """Pixels outside the imagery or under its fill were written 0, the same as "no road" (65 % of
    a Shanghai chip's raster): given the area looked at, the rest is masked, as GDAL and QGIS read a
    mask, in the full raster and its overviews, and the COG layout and values stay as they were."""
    height, width = road_raster.prob.shape
    valid = np.ones((height, width), bool)
    valid[:, : width // 3] = False
    valid[height - 100:, :] = False  # a strip's worth off the bottom too: the mask is drawn strip by strip
    x0, y0 = road_raster.transform * (width // 3, height - 100)
    x1, y1 = road_raster.transform * (width, 0)
    out = write_probability_tif(tmp_path / "p.tif", road_raster, looked_at=box(x0, y0, x1, y1))
    with rasterio.open(out) as src:
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG" and src.overviews(1)
        assert np.array_equal(src.read_masks(1) > 0, valid)
        coarse = src.read_masks(1, out_shape=(src.height // 4, src.width // 4)) > 0
        assert abs(coarse.mean() - valid.mean()) < 0.02
        assert np.array_equal(src.read(1) > 127, road_raster.prob > 0.5)


def test_probability_tif_says_who_wrote_it_and_the_imagery_licence(road_raster, tmp_path):
    """A raster derived from CC-BY-SA imagery carried no attribution, no writer and, of a GPS run,
    a wrong meaning; the writer now takes them (cleaned text)."""
    out = write_probability_tif(tmp_path / "p.tif", road_raster,
                                tags={"IMAGERY_LICENCE": "CC-BY-SA 4.0", "IMAGERY_ATTRIBUTION": "SpaceNet\n(Maxar)"},
                                meaning="likelihood of a road the map does not explain x 255")
    with rasterio.open(out) as src:
        tags = src.tags()
        assert tags["TIFFTAG_SOFTWARE"].startswith("osmgap ")
        assert tags["IMAGERY_LICENCE"] == "CC-BY-SA 4.0" and tags["IMAGERY_ATTRIBUTION"] == "SpaceNet (Maxar)"
        assert src.descriptions[0].startswith("likelihood of a road")


def test_a_diff_masks_in_probability_tif_what_its_imagery_does_not_show(paris, tmp_path):
    """The real Paris chip with its west half declared nodata: probability.tif wrote 0 there, "no
    road", where the model saw nothing; now that half is masked (GDAL's mask, transparent in QGIS),
    and the raster names the imagery it was derived from and its licence."""
    from osmgap.cli import main

    with rasterio.open(paris / "image.tif") as src:
        profile, data = src.profile, src.read()
    data[:, :, : data.shape[2] // 2] = 0
    with rasterio.open(tmp_path / "half.tif", "w", **{**profile, "nodata": 0}) as dst:
        dst.write(data)
    assert main(["diff", "--aoi", str(paris / "aoi.geojson"), "--imagery", str(tmp_path / "half.tif"),
                 "--imagery-licence", "CC-BY-SA 4.0", "--osm", str(paris / "osm_roads.geojson"),
                 "--out", str(tmp_path / "out")]) == 0
    with rasterio.open(tmp_path / "out" / "probability.tif") as src:
        seen = src.read_masks(1) > 0
        west, east = seen[:, : src.width // 3], seen[:, 2 * src.width // 3:]
        assert west.mean() < 0.05 and east.mean() > 0.8, (west.mean(), east.mean())
        assert src.tags()["IMAGERY"] == "half.tif" and src.tags()["IMAGERY_LICENCE"] == "CC-BY-SA 4.0"


def test_summary_json_writes_numpy_numbers_as_numbers():
    """``np.float32(nan)`` was written as the text "nan" and ``np.int64(3)`` as "3" (json's
    ``default=str``); a tuple key raised. A script reading the summary gets numbers and null."""
    text = strict_json({"a": np.float32("nan"), "b": np.int64(3), "c": np.float32(0.5), "d": np.bool_(True),
                        "e": np.array([1.0, np.inf]), ("x", 1): 2})
    assert json.loads(text) == {"a": None, "b": 3, "c": 0.5, "d": True, "e": [1.0, None], "['x', 1]": 2}
