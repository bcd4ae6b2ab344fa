import json

import pytest
from shapely.geometry import mapping

from osmgap.core.aoi import load_aoi, reproject, utm_crs_for
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


def _polygon_file(tmp_path, coords, kind="Polygon", raw=None):
    f = tmp_path / "aoi.geojson"
    f.write_bytes(raw if raw is not None else json.dumps({"type": kind, "coordinates": coords}).encode())
    return str(f)


FIJI = [[179.9, -17.0], [-179.9, -17.0], [-179.9, -16.9], [179.9, -16.9], [179.9, -17.0]]


@pytest.mark.parametrize("coords, kind, problem", [
    ([FIJI], "Polygon", "crosses the antimeridian (an edge spans 359.8 degrees"),
    ([[[[179.9, -17], [180, -17], [180, -16.9], [179.9, -16.9], [179.9, -17]]],
      [[[-180, -17], [-179.9, -17], [-179.9, -16.9], [-180, -16.9], [-180, -17]]]], "MultiPolygon",
     "touches both -180 and 180"),
    ([[[179.9, -17], [180.1, -17], [180.1, -16.9], [179.9, -16.9], [179.9, -17]]], "Polygon", "longitudes run past 180 degrees"),
])
def test_antimeridian_aoi_is_refused_with_advice(tmp_path, coords, kind, problem):
    """Read naively, these are a 359.8-degree strip or a ring around the globe in one UTM zone."""
    with pytest.raises(InputError) as err:
        load_aoi(_polygon_file(tmp_path, coords, kind))
    assert problem in str(err.value) and "split it at 180 degrees" in str(err.value)


def test_antimeridian_bbox_is_refused_but_a_wrong_order_bbox_is_just_wrong():
    with pytest.raises(InputError, match="crosses the antimeridian.*split it at 180"):
        load_aoi("179.9,-17,-179.9,-16.9")
    with pytest.raises(InputError, match="min < max"):
        load_aoi("2.3,48.9,2.2,49.0")  # read as crossing, it would span 359.9 degrees


def test_aoi_beside_the_antimeridian_is_measured_in_its_own_zone(tmp_path):
    aoi = load_aoi(_polygon_file(tmp_path, [[[179.9, -17], [179.99, -17], [179.99, -16.9], [179.9, -16.9],
                                             [179.9, -17]]]))
    assert aoi.metric_crs.to_epsg() == 32760 and 50 < aoi.area_km2() < 120


def test_self_intersecting_aoi_keeps_every_lobe_and_warns(tmp_path, caplog):
    """A bow-tie: buffer(0) kept one triangle and said nothing; make_valid keeps both, and says so."""
    path = _polygon_file(tmp_path, [[[2.281, 48.981], [2.283, 48.983], [2.283, 48.981], [2.281, 48.983],
                                     [2.281, 48.981]]])
    aoi = load_aoi(path)
    assert aoi.geometry.geom_type == "MultiPolygon" and len(aoi.geometry.geoms) == 2
    assert aoi.geometry.area == pytest.approx(2 * (0.002 * 0.002 / 4), rel=1e-6)  # two quarters of the square
    assert len(aoi.warnings) == 1 and path in aoi.warnings[0] and "make_valid" in aoi.warnings[0]
    assert path in caplog.text


@pytest.mark.parametrize("raw, problem", [
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not UTF-8"),
    ('{"type": "Polygon", "name": "Cr\xe9teil"}'.encode("latin-1"), "not UTF-8"),
    (b'{"type": "Polygon", "coordinates": [[[2.281, 48.981], [NaN, 48.981], [2.283, 48.983], [2.281, 48.981]]]}',
     "not a finite number"),
    (b'{"type": "FeatureCollection", "features": {"a": 1}}', "list of Features"),
])
def test_hostile_aoi_bytes_are_one_line_input_errors(tmp_path, raw, problem):
    with pytest.raises(InputError) as err:
        load_aoi(_polygon_file(tmp_path, None, raw=raw))
    assert problem in str(err.value) and "aoi.geojson" in str(err.value) and "\n" not in str(err.value)


def test_aoi_with_a_byte_order_mark_is_read(tmp_path, paris):
    path = _polygon_file(tmp_path, None, raw=b"\xef\xbb\xbf" + (paris / "aoi.geojson").read_bytes())
    assert load_aoi(path).geometry.equals(load_aoi(str(paris / "aoi.geojson")).geometry)


def _feature(name=None, box=(2.28, 48.98, 2.29, 48.99)):
    w, s, e, n = box
    return {"type": "Feature", "properties": {} if name is None else {"name": name},
            "geometry": {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}}


@pytest.mark.parametrize("doc, expected", [
    (_feature("Ermont north"), "Ermont north"),  # a Feature's name property
    ({"type": "FeatureCollection", "name": "layer name", "features": [_feature("a"), _feature("b")]}, "layer name"),
    ({"type": "FeatureCollection", "features": [_feature("same"), _feature("same", (2.29, 48.98, 2.3, 48.99))]}, "same"),
    ({"type": "FeatureCollection", "features": [_feature("a"), _feature("b", (2.29, 48.98, 2.3, 48.99))]}, "my-area"),
    ({"type": "FeatureCollection", "features": [_feature("a"), _feature(None, (2.29, 48.98, 2.3, 48.99))]}, "my-area"),
    (_feature(None)["geometry"], "my-area"),  # a bare geometry: the file's stem
    (_feature("  two\nlines\x01 "), "two lines\ufffd"),  # one line, control characters marked
])
def test_an_aoi_is_named_by_its_file(tmp_path, doc, expected):
    f = tmp_path / "my-area.geojson"
    f.write_text(json.dumps(doc))
    assert load_aoi(str(f)).name == expected
    assert load_aoi(str(f), name="given").name == "given"  # --name wins


def test_a_sample_directory_keeps_its_name_and_a_bbox_has_none(paris):
    assert load_aoi(str(paris)).name == "paris-1447"  # its aoi.geojson's name property is a description
    assert load_aoi("2.2812,48.9810,2.2829,48.9827").name == "bbox"
    assert load_aoi("2.2812,48.9810,2.2829,48.9827", name=" Ermont\tchip ").name == "Ermont chip"
    with pytest.raises(InputError, match="--name: the AOI name '\\\\x01 ' is empty"):
        load_aoi(str(paris), name="\x01 ")


def test_an_aoi_saved_in_its_own_crs_by_qgis_is_read_in_lon_lat(tmp_path, paris_aoi):
    """QGIS saves a Lambert-93 layer as GeoJSON with a ``crs`` member naming EPSG:2154: the AOI
    is that place, not a refusal telling the mapper about the antimeridian."""
    l93 = reproject(paris_aoi.geometry, "EPSG:4326", "EPSG:2154")
    doc = {"type": "FeatureCollection", "name": "quartier",
           "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::2154"}},
           "features": [{"type": "Feature", "properties": {}, "geometry": mapping(l93)}]}
    (tmp_path / "l93.geojson").write_text(json.dumps(doc))
    aoi = load_aoi(str(tmp_path / "l93.geojson"))
    assert aoi.geometry.symmetric_difference(paris_aoi.geometry).area < 1e-3 * paris_aoi.geometry.area
    assert aoi.name == "quartier"
    doc["crs"]["properties"]["name"] = "urn:ogc:def:crs:EPSG::999999"
    (tmp_path / "bad.geojson").write_text(json.dumps(doc))
    with pytest.raises(InputError, match="bad.geojson: AOI names a CRS osmgap does not know"):
        load_aoi(str(tmp_path / "bad.geojson"))
    del doc["crs"]
    (tmp_path / "unnamed.geojson").write_text(json.dumps(doc))
    with pytest.raises(InputError, match="not lon/lat degrees .* must name it"):
        load_aoi(str(tmp_path / "unnamed.geojson"))
