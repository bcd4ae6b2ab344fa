import json

import pytest

from osmgap.core.aoi import load_aoi, utm_crs_for
from osmgap.errors import InputError


def test_sample_aoi_polygon_and_metric_crs(paris_aoi):
    assert paris_aoi.metric_crs.to_epsg() == 32631  # Paris lies in UTM 31N
    # ~0.025 km2 chip shrunk by ~2 m on each side
    assert 0.018 < paris_aoi.area_km2() < 0.025


def test_bbox_string_and_directory(paris):
    aoi = load_aoi("2.2812,48.9810,2.2829,48.9827")
    assert aoi.bounds == pytest.approx((2.2812, 48.9810, 2.2829, 48.9827))
    assert load_aoi(str(paris)).geometry.equals(load_aoi(str(paris / "aoi.geojson")).geometry)


def test_southern_hemisphere_zone():
    assert utm_crs_for(151.2, -33.9).to_epsg() == 32756


@pytest.mark.parametrize("doc, problem", [
    ({"type": "Point", "coordinates": [2.28, 48.98]}, "Polygon or MultiPolygon"),
    ({"type": "FeatureCollection", "features": []}, "no Polygon"),
    ({"type": "Polygon", "coordinates": [[[500000, 5400000], [500100, 5400000], [500100, 5400100], [500000, 5400000]]]}, "lon/lat"),
])
def test_bad_aoi_files(tmp_path, doc, problem):
    f = tmp_path / "aoi.geojson"
    f.write_text(json.dumps(doc))
    with pytest.raises(InputError) as err:
        load_aoi(str(f))
    assert problem in str(err.value) and "aoi.geojson" in str(err.value)


def test_bad_bbox():
    with pytest.raises(InputError, match="min < max"):
        load_aoi("2.3,48.9,2.2,49.0")
