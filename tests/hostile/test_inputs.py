"""Hostile AOIs, OSM inputs, imagery and GPS files (issue 14, items 10-12 and 15), each built in
tmp_path from the real data: refused with exit 2, one line naming the file and an earlier output
folder byte-identical, or read with a warning naming the file and a correct result. In-process;
``--candidates`` runs wherever the model is not the point, the model only where imagery is."""
from __future__ import annotations

import json
import re
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine
from shapely.geometry import shape

from osmgap.cli import main
from osmgap.core.aoi import load_aoi
from osmgap.core.datapaths import data_root
from osmgap.sources.imagery import open_imagery
from osmgap.sources.osm import load_osm
from tests.hostile.test_arguments import EARLIER, assert_refused, cli, snapshot
from tests.loopback import LoopbackServer

DATA = data_root()
PARIS = DATA / "sample_aoi" / "paris-1447"
OAKLAND = DATA / "osm" / "west-oakland.osm"
OAKLAND_BBOX = "-122.30258,37.80615,-122.29825,37.80914"  # the extract's <bounds>
GONE_WAY = 6340506  # a real 233 m residential way of West Oakland, joined to others at its first two nodes
LONGEST_PARIS_WAY = 3  # feature index: 141 m, 8 vertices, cut by three side streets
OUTPUTS = ["maproulette.geojson", "overview.png", "suggestions.geojson", "suggestions.osm", "summary.json"]


# --- builders: each writes a hostile file into the folder and returns its path ---------------

def _text(p: Path, text: str | bytes) -> Path:
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    return p


def _binary(p: Path) -> Path:
    """The first 4 kB of the real Paris GeoTIFF, under another name."""
    return _text(p, (PARIS / "image.tif").read_bytes()[:4096])


def _polygon(p: Path, ring: list[list[float]], kind: str = "Polygon") -> Path:
    coords = [ring] if kind == "Polygon" else ring
    return _text(p, json.dumps({"type": "Feature", "properties": {}, "geometry": {"type": kind, "coordinates": coords}}))


def _paris_ways(edit: Callable[[list[dict]], None]) -> str:
    doc = json.loads((PARIS / "osm_roads.geojson").read_text())
    edit(doc["features"])
    return json.dumps(doc)


def _set_id(value: object) -> Callable[[list[dict]], None]:
    def edit(features: list[dict]) -> None:
        features[0]["properties"]["osm_id"] = value
    return edit


def _oakland_edited(edit: Callable[[str], str]) -> str:
    return edit(OAKLAND.read_text())


def _way_refs(text: str, way: int) -> list[str]:
    return re.findall(r'<nd ref="(\d+)"/>', re.search(rf'<way id="{way}".*?</way>', text, re.S).group(0))


def _without_nodes(text: str, refs: list[str]) -> str:
    for ref in refs:
        text = re.sub(rf'\s*<node id="{ref}"[^>]*?(/>|>.*?</node>)', "", text, flags=re.S)
    return text


def _raster(p: Path, arr: np.ndarray, **change: object) -> Path:
    """A copy of the Paris chip's profile (CRS, transform) holding ``arr``."""
    with rasterio.open(PARIS / "image.tif") as src:
        profile = {**src.profile, "count": arr.shape[0], "dtype": arr.dtype.name, **change}
    with rasterio.open(p, "w", **profile) as dst:
        dst.write(arr)
    return p


def _paris_pixels() -> np.ndarray:
    with rasterio.open(PARIS / "image.tif") as src:
        return src.read()


def _south_up(p: Path) -> Path:
    """The Paris chip stored bottom row first, its geotransform saying so (a positive pixel height)."""
    with rasterio.open(PARIS / "image.tif") as src:
        t = src.transform
        flipped = Affine(t.a, t.b, t.c, t.d, -t.e, t.f + t.e * src.height)
    return _raster(p, _paris_pixels()[:, ::-1, :].copy(), transform=flipped)


def _coarse(p: Path, metres: float) -> Path:
    """The Paris chip resampled to ``metres`` per pixel (its real pixels, averaged)."""
    with rasterio.open(PARIS / "image.tif") as src:
        lat = (src.bounds.top + src.bounds.bottom) / 2
        deg = metres / (111_320.0 * np.sqrt(np.cos(np.radians(lat))))  # osmgap's geographic resolution
        side = max(2, int(np.ceil(src.width * src.res[0] / deg)))
        arr = src.read(out_shape=(src.count, side, side), resampling=rasterio.enums.Resampling.average)
        t = src.transform
    return _raster(p, arr, width=side, height=side, transform=Affine(deg, 0, t.c, 0, -deg, t.f))


def _half_nan(p: Path) -> Path:
    arr = _paris_pixels().astype(np.float32)
    arr[:, :, : arr.shape[2] // 2] = np.nan  # the western half: NaN, undeclared, as float exports have it
    return _raster(p, arr)


# --- refused: (argument, builder(folder) -> path or text, what the line must also say) -------------

Builder = Callable[[Path], "Path | str"]
REFUSED: dict[str, tuple[str, Builder, str]] = {
    # AOI (items 10, 15)
    "aoi_across_antimeridian": ("--aoi", lambda d: _polygon(d / "fiji.geojson", [
        [179.9, -17.0], [-179.9, -17.0], [-179.9, -16.9], [179.9, -16.9], [179.9, -17.0]]), "antimeridian"),
    "aoi_split_at_antimeridian": ("--aoi", lambda d: _polygon(d / "fiji.geojson", [
        [[[179.9, -17.0], [180.0, -17.0], [180.0, -16.9], [179.9, -16.9], [179.9, -17.0]]],
        [[[-180.0, -17.0], [-179.9, -17.0], [-179.9, -16.9], [-180.0, -16.9], [-180.0, -17.0]]]], "MultiPolygon"),
        "split it at 180 degrees"),
    "aoi_beyond_180": ("--aoi", lambda d: _polygon(d / "fiji.geojson", [
        [179.9, -17.0], [180.1, -17.0], [180.1, -16.9], [179.9, -16.9], [179.9, -17.0]]), "antimeridian"),
    "aoi_bbox_across_antimeridian": ("--aoi", lambda d: "179.9,-17,-179.9,-16.9", "antimeridian"),
    "aoi_deeply_nested": ("--aoi", lambda d: _text(d / "deep.geojson", "[" * 100_000 + "]" * 100_000), "nested"),
    "aoi_binary": ("--aoi", lambda d: _binary(d / "aoi.geojson"), "not UTF-8"),
    "aoi_latin1": ("--aoi", lambda d: _text(d / "aoi.geojson", (PARIS / "aoi.geojson").read_text().replace(
        "Ermont-Eaubonne", "Cr\xe9teil").encode("latin-1")), "not UTF-8"),
    "aoi_nan_vertex": ("--aoi", lambda d: _text(d / "aoi.geojson", '{"type": "Polygon", "coordinates": [[[2.2812, 48.981], '
                       '[NaN, 48.981], [2.2829, 48.9827], [2.2812, 48.981]]]}'), "not a finite number"),
    "aoi_features_not_a_list": ("--aoi", lambda d: _text(d / "aoi.geojson", '{"type": "FeatureCollection", "features": 7}'),
                                "list of Features"),
    # OSM (items 12, 15)
    "osm_xml_nan_coordinate": ("--osm", lambda d: _text(d / "roads.osm", _oakland_edited(
        lambda t: t.replace('lat="37.8073779"', 'lat="nan"', 1))), "cannot read OSM data"),
    "osm_xml_truncated": ("--osm", lambda d: _text(d / "roads.osm", OAKLAND.read_bytes()[:40_000]), "cannot read OSM data"),
    "osm_binary_osm": ("--osm", lambda d: _binary(d / "roads.osm"), "cannot read OSM data"),
    "osm_binary_pbf": ("--osm", lambda d: _binary(d / "roads.osm.pbf"), "cannot read OSM data"),
    "osm_binary_geojson": ("--osm", lambda d: _binary(d / "roads.geojson"), "not UTF-8"),
    "osm_deeply_nested": ("--osm", lambda d: _text(d / "roads.geojson", '{"type": "FeatureCollection", "features": '
                                                   + "[" * 100_000 + "]" * 100_000 + "}"), "nested"),
    "osm_id_1e30": ("--osm", lambda d: _text(d / "roads.geojson", _paris_ways(_set_id(1e30))), "osm_id"),
    "osm_id_fraction": ("--osm", lambda d: _text(d / "roads.geojson", _paris_ways(_set_id(27236016.5))), "osm_id"),
    "osm_id_beyond_64_bits": ("--osm", lambda d: _text(d / "roads.geojson", _paris_ways(_set_id(2**64))), "osm_id"),
    "osm_id_nan": ("--osm", lambda d: _text(d / "roads.geojson", _paris_ways(_set_id(float("nan")))), "osm_id"),
    # imagery (items 11, 15), as the background of a candidates run: read, checked, never modelled
    "imagery_all_nodata": ("--imagery", lambda d: _raster(d / "nodata.tif", np.zeros_like(_paris_pixels()), nodata=0),
                           "no usable imagery"),  # the whole file: said on opening it
    "imagery_all_zero_undeclared": ("--imagery", lambda d: _raster(d / "zero.tif", np.zeros_like(_paris_pixels())),
                                    "same value"),
    "imagery_float_all_nan": ("--imagery", lambda d: _raster(
        d / "nan.tif", np.full(_paris_pixels().shape, np.nan, np.float32)), "NaN"),
    "imagery_truncated": ("--imagery", lambda d: _text(d / "cut.tif", (PARIS / "image.tif").read_bytes()[:600_000]),
                          "truncated"),
    "imagery_binary": ("--imagery", lambda d: _text(d / "noise.tif", bytes(range(256)) * 64), "not a raster"),
    "imagery_local_crs": ("--imagery", lambda d: _raster(d / "local.tif", _paris_pixels(),
                                                         crs='LOCAL_CS["arbitrary",UNIT["metre",1]]'), "places nothing on Earth"),
    "imagery_south_up": ("--imagery", lambda d: _south_up(d / "south.tif"), "south-up"),
    "imagery_complex": ("--imagery", lambda d: _raster(d / "complex.tif", _paris_pixels().astype(np.complex64)), "complex64"),
    # GPS (item 15)
    "gps_binary_gpx": ("--gps", lambda d: _binary(d / "trace.gpx"), "not a GPX file"),
    "gps_latin1_gpx": ("--gps", lambda d: _text(d / "trace.gpx", b'<?xml version="1.0" encoding="UTF-8"?><gpx><trk>'
                       b'<name>Cr\xe9teil</name><trkseg><trkpt lat="48.982" lon="2.282"/></trkseg></trk></gpx>'),
                       "not a GPX file"),
    "gps_binary_csv": ("--gps", lambda d: _binary(d / "trace.csv"), "not UTF-8"),
    "gps_csv_bad_byte_after_header": ("--gps", lambda d: _text(d / "trace.csv", b"lon,lat\n2.2820,48.9820\n2.2821,48.98\xff\n"),
                                      "not UTF-8"),
    "gps_gpx_nan": ("--gps", lambda d: _text(d / "trace.gpx", '<gpx><trk><trkseg><trkpt lat="nan" lon="2.282"/>'
                                             "</trkseg></trk></gpx>"), "not finite"),
}


def _paris_run(d: Path, **given: str) -> list[str]:
    """A candidates run on the Paris sample (its OSM ways as candidates): no model."""
    args = {"--aoi": str(PARIS / "aoi.geojson"), "--osm": str(PARIS / "osm_roads.geojson"),
            "--candidates": str(PARIS / "osm_roads.geojson"), **given}
    return ["diff", *[x for kv in args.items() for x in kv], "--out", str(d / "out")]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A folder holding an earlier run's output that must survive byte for byte."""
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "summary.json").write_bytes(EARLIER)
    return tmp_path


def _refused(d: Path, argv: list[str], named: str, capsys: pytest.CaptureFixture) -> str:
    """Exit 2, one line naming ``named``, and ``d`` (inputs and earlier output) as it was."""
    before = snapshot(d)
    rc, err = cli(argv, capsys)
    assert rc == 2, err
    assert len(err.strip().splitlines()) == 1 and "internal error" not in err, err
    assert named in err, err
    assert snapshot(d) == before
    return err


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_hostile_input_is_refused(case, workdir, capsys):
    option, build, says = REFUSED[case]
    bad = str(build(workdir))
    err = _refused(workdir, _paris_run(workdir, **{option: bad}), bad, capsys)
    assert says in err, err


@pytest.mark.parametrize("case", ["imagery_all_nodata", "imagery_float_all_nan", "imagery_truncated"])
def test_scan_refuses_unusable_imagery_too(case, workdir, capsys):
    """``osmgap scan`` reads imagery the same way: no usable pixel is exit 2, not an empty map."""
    _, build, says = REFUSED[case]
    bad = str(build(workdir))
    argv = ["scan", "--aoi", str(PARIS / "aoi.geojson"), "--osm", str(PARIS / "osm_roads.geojson"),
            "--imagery", bad, "--out", str(workdir / "out")]
    assert says in _refused(workdir, argv, bad, capsys)


def test_imagery_far_coarser_than_the_model_is_refused(workdir, capsys):
    """158 m/px against the model's 1 m/px: refused once the model's resolution is known, before
    any window is segmented."""
    bad = str(_coarse(workdir / "coarse.tif", 158.0))
    argv = ["diff", "--aoi", str(PARIS / "aoi.geojson"), "--osm", str(PARIS / "osm_roads.geojson"),
            "--imagery", bad, "--out", str(workdir / "out")]
    err = _refused(workdir, argv, bad, capsys)
    assert "coarser than the model's 1 m/px" in err


# --- read with a warning: exit 0, the outputs, the warning naming the file, a correct result ----------

def _done(argv: list[str], out: Path, capsys: pytest.CaptureFixture) -> dict:
    """Exit 0, every output written, summary.json strict JSON (no NaN); the summary."""
    rc, err = cli(argv, capsys)
    assert rc == 0, err
    assert sorted(p.name for p in out.iterdir() if p.name != "probability.tif") == OUTPUTS
    json.loads((out / "suggestions.geojson").read_text())
    return json.loads((out / "summary.json").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in summary.json"))


def _length_along(out: Path, line_metric: shapely.LineString, crs: object, kinds: tuple[str, ...]) -> float:
    """Metres of the suggested lines (of ``kinds``) within 8 m of ``line_metric``."""
    feats = gpd.read_file(out / "suggestions.geojson")
    if not len(feats):
        return 0.0
    mine = feats[feats["kind"].isin(kinds)].to_crs(crs).geometry
    return float(sum(g.intersection(line_metric.buffer(8.0)).length for g in mine))


def test_self_intersecting_aoi_is_repaired_whole_with_a_warning(workdir, capsys, caplog):
    """A bow-tie over the Paris chip: both lobes are analysed (buffer(0) kept one), and said."""
    x0, y0, x1, y1 = load_aoi(str(PARIS / "aoi.geojson")).bounds
    bowtie = _polygon(workdir / "bowtie.geojson", [[x0, y0], [x1, y1], [x1, y0], [x0, y1], [x0, y0]])
    summary = _done(_paris_run(workdir, **{"--aoi": str(bowtie)}), workdir / "out", capsys)
    lobes = load_aoi(str(bowtie))
    assert lobes.geometry.geom_type == "MultiPolygon" and len(lobes.geometry.geoms) == 2
    assert summary["aoi"]["area_km2"] == pytest.approx(lobes.area_km2(), abs=1e-4)
    assert summary["aoi"]["area_km2"] > 0.3 * load_aoi(str(PARIS / "aoi.geojson")).area_km2()  # not one sliver
    said = [w for w in summary["warnings"] if str(bowtie) in w]
    assert said and "make_valid" in said[0] and str(bowtie) in caplog.text


@pytest.fixture(scope="module")
def oakland(tmp_path_factory) -> dict:
    """West Oakland's real ways as candidates, and the reference: with GONE_WAY deleted from the
    OSM input, a candidates run suggests it (so a run that does not has kept it out on purpose)."""
    d = tmp_path_factory.mktemp("oakland")
    aoi = load_aoi(OAKLAND_BBOX)
    roads = load_osm(str(OAKLAND), aoi)
    cands = d / "candidates.geojson"
    roads.ways[["highway", "geometry"]].to_file(cands, driver="GeoJSON")
    true = roads.ways[roads.ways["osm_id"] == GONE_WAY].to_crs(aoi.metric_crs).geometry.union_all()
    deleted = _text(d / "deleted.osm", re.sub(rf'\s*<way id="{GONE_WAY}".*?</way>', "", OAKLAND.read_text(), flags=re.S))
    out = d / "reference"
    assert main(["diff", "--aoi", OAKLAND_BBOX, "--osm", str(deleted), "--candidates", str(cands), "--out", str(out)]) == 0
    assert _length_along(out, true, aoi.metric_crs, ("missing_road",)) > 0.8 * true.length
    return {"candidates": cands, "true": true, "crs": aoi.metric_crs}


# (edit of the extract, what the warning says)
OAKLAND_EDITS: dict[str, tuple[Callable[[str], str], str]] = {
    # every node past its first two (which other ways share) missing, as an extract cut there leaves
    # it: osmgap knows its first 20 m, and that the rest runs out of the extract (here: out of the
    # AOI, as the real way does); no other way loses a node
    "cut_after_its_second_node": (lambda t: _without_nodes(t, _way_refs(t, GONE_WAY)[2:]), "cut at the edge"),
    # its interior nodes missing: the way is known only as the line between its ends
    "interior_nodes_missing": (lambda t: _without_nodes(t, _way_refs(t, GONE_WAY)[1:-1]), "nodes missing from the file"),
}


@pytest.mark.parametrize("case", sorted(OAKLAND_EDITS))
def test_way_with_nodes_missing_is_warned_about_and_never_suggested(case, oakland, tmp_path, capsys, caplog):
    edit, says = OAKLAND_EDITS[case]
    osm = _text(tmp_path / "oakland.osm", _oakland_edited(edit))
    out = tmp_path / "out"
    summary = _done(["diff", "--aoi", OAKLAND_BBOX, "--osm", str(osm), "--candidates", str(oakland["candidates"]),
                     "--out", str(out)], out, capsys)
    assert _length_along(out, oakland["true"], oakland["crs"], ("missing_road", "missing_link")) < 10.0
    assert summary["osm"]["unreadable_ways"] >= 1 and summary["conflation"]["dropped"]["about_unreadable_osm_way"] >= 1
    said = [r.getMessage() for r in caplog.records if str(osm) in r.getMessage()]
    assert said and says in said[0] and str(GONE_WAY) in said[0]


def _nan_interior(features: list[dict]) -> None:
    coords = features[LONGEST_PARIS_WAY]["geometry"]["coordinates"]
    coords[1:-1] = [[float("nan"), float("nan"), 0.0] for _ in coords[1:-1]]


def _collection(features: list[dict]) -> None:
    g = features[LONGEST_PARIS_WAY]["geometry"]
    features[LONGEST_PARIS_WAY]["geometry"] = {"type": "GeometryCollection", "geometries": [
        g, {"type": "Point", "coordinates": g["coordinates"][0]}]}


def _empty(features: list[dict]) -> None:
    features[LONGEST_PARIS_WAY]["geometry"] = {"type": "LineString", "coordinates": []}


def _null(features: list[dict]) -> None:
    features[LONGEST_PARIS_WAY]["geometry"] = None


# (edit, what the warning says, whether osmgap knows where the way lies)
GEOJSON_EDITS: dict[str, tuple[Callable[[list[dict]], None], str, bool]] = {
    "nan_interior_vertices": (_nan_interior, "NaN or infinite coordinates", True),
    "geometry_collection": (_collection, "not a line", True),
    "empty_linestring": (_empty, "no known position", False),
    "null_geometry": (_null, "no known position", False),
}


@pytest.mark.parametrize("case", sorted(GEOJSON_EDITS))
def test_geojson_way_osmgap_cannot_read_is_warned_about(case, tmp_path, capsys, caplog):
    """The Paris ways with the longest one mangled, the real ways as candidates. Where osmgap knows
    where the mangled way lies, nothing is suggested along it (deleted outright, it is: the
    reference); where it cannot know (no coordinates at all), the warning says so."""
    edit, says, located = GEOJSON_EDITS[case]
    osm = _text(tmp_path / "roads.geojson", _paris_ways(edit))
    out = tmp_path / "out"
    summary = _done(_paris_run(tmp_path, **{"--osm": str(osm)}), out, capsys)
    aoi = load_aoi(str(PARIS / "aoi.geojson"))
    doc = json.loads((PARIS / "osm_roads.geojson").read_text())
    true = aoi.to_metric(shapely.force_2d(shape(doc["features"][LONGEST_PARIS_WAY]["geometry"])))
    along = _length_along(out, true, aoi.metric_crs, ("missing_road", "missing_link"))
    assert along < 10.0 if located else along > 0.8 * true.length  # unlocated: suggested, and the warning says why
    mangled = int(doc["features"][LONGEST_PARIS_WAY]["properties"]["osm_id"])
    named = [f["properties"]["kind"] for f in json.loads((out / "suggestions.geojson").read_text())["features"]
             if str(mangled) in str(f["properties"].get("attachments", "")).split(",")]
    assert not named, f"suggestions about a way osmgap only guessed: {named}"
    assert summary["osm"]["unreadable_ways"] == 1 and summary["osm"]["ways"] >= 9 - (not located)
    said = [r.getMessage() for r in caplog.records if str(osm) in r.getMessage()]
    assert said and says in said[0], caplog.text


def test_imagery_half_nan_is_analysed_where_it_shows_something(workdir, capsys, caplog):
    """Float imagery whose western half is NaN (undeclared): the model runs on the rest; the summary
    says half the AOI was analysed and warns; no OSM way in the NaN half is called unsupported."""
    bad = str(_half_nan(workdir / "half.tif"))
    out = workdir / "out"
    summary = _done(["diff", "--aoi", str(PARIS / "aoi.geojson"), "--osm", str(PARIS / "osm_roads.geojson"),
                     "--imagery", bad, "--unsupported", "--out", str(out)], out, capsys)
    cov = summary["coverage"]
    assert cov["imagery_aoi_share"] == pytest.approx(0.5, abs=0.03)
    assert cov["area_analysed_km2"] == pytest.approx(0.5 * cov["aoi_km2"], rel=0.06)
    assert any(bad in w and "covers only" in w for w in summary["warnings"]) and bad in caplog.text
    with rasterio.open(PARIS / "image.tif") as src:
        middle = (src.bounds.left + src.bounds.right) / 2
    feats = json.loads((out / "suggestions.geojson").read_text())["features"]
    west = [f for f in feats if shapely.get_coordinates(shape(f["geometry"]))[:, 0].max() < middle - 1e-5]
    assert not west, "a suggestion lies wholly where the imagery is NaN"


def test_imagery_moderately_coarse_is_used_with_a_warning(workdir, capsys, caplog):
    """2 m/px against the model's 1 m/px: the run goes on, and says narrow roads may be missed."""
    coarse = str(_coarse(workdir / "two_metres.tif", 2.0))
    out = workdir / "out"
    summary = _done(["diff", "--aoi", str(PARIS / "aoi.geojson"), "--osm", str(PARIS / "osm_roads.geojson"),
                     "--imagery", coarse, "--out", str(out)], out, capsys)
    assert summary["imagery"]["resolution_m"] == pytest.approx(2.0, rel=0.05)
    assert any(coarse in w and "coarser" in w for w in summary["warnings"]) and coarse in caplog.text
    assert summary["coverage"]["imagery_aoi_share"] == pytest.approx(1.0, abs=0.01)


# --- as a user sees it: a process of its own, where no test harness catches library warnings -------

def test_library_warnings_stay_off_the_users_lines(tmp_path):
    """rasterio's NotGeoreferencedWarning (a plain PNG) and shapely's NaN warning (a broken vertex
    in a candidates file) printed two lines each, with a site-packages path, around osmgap's one."""
    from tests.cli import osmgap_cli

    png = DATA / "massachusetts" / "images" / "img-1002.png"
    proc = osmgap_cli("diff", "--aoi", str(PARIS / "aoi.geojson"), "--osm", str(PARIS / "osm_roads.geojson"),
                      "--imagery", str(png), "--out", str(tmp_path / "png"))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "imagery has no CRS" in proc.stderr and not (tmp_path / "png").exists()
    roads = json.loads((PARIS / "osm_roads.geojson").read_text())
    roads["features"][3]["geometry"]["coordinates"][2] = [float("nan"), float("nan")]
    (tmp_path / "nan.geojson").write_text(json.dumps(roads))  # json writes the NaN token, pyogrio reads it
    proc = osmgap_cli("diff", "--aoi", str(PARIS / "aoi.geojson"), "--osm", str(PARIS / "osm_roads.geojson"),
                      "--candidates", str(tmp_path / "nan.geojson"), "--out", str(tmp_path / "nan"))
    assert proc.returncode == 0 and proc.stderr.strip().splitlines() == [
        f"osmgap: WARNING: {tmp_path / 'nan.geojson'}: 1 line(s) with a NaN or infinite coordinate left out"], proc.stderr


@pytest.mark.parametrize("what", ["osm", "gps_csv", "gps_gpx", "labels", "task", "task_folder"])
def test_an_input_osmgap_may_not_read_is_bad_input(what, workdir, capsys, monkeypatch, tmp_path_factory):
    """No permission to read an input (tests run as root, so open() is made to refuse it) is the
    user's to fix: exit 2 naming the file, as a missing one is, not exit 1 as for a full disk."""
    import builtins
    import io

    roads = str(PARIS / "osm_roads.geojson")
    bad = tmp_path_factory.mktemp("unreadable") / {"osm": "roads.geojson", "gps_csv": "fixes.csv", "gps_gpx": "fixes.gpx", "labels": "labels.geojson",
                     "task": "task.toml", "task_folder": "folder.toml"}[what]
    if what == "task_folder":
        bad.mkdir()
    else:
        bad.write_text("x")
        real_open = builtins.open

        def refusing(file, *args, **kwargs):
            if str(file) == str(bad):
                raise PermissionError(13, "Permission denied", str(bad))
            return real_open(file, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", refusing)
        monkeypatch.setattr(io, "open", refusing)  # pathlib's read_bytes and read_text open through io
    out = str(workdir / "out")
    argv = {"osm": ["diff", "--aoi", str(PARIS / "aoi.geojson"), "--osm", str(bad), "--candidates", roads, "--out", out],
            "gps_csv": ["diff", "--aoi", str(PARIS / "aoi.geojson"), "--osm", roads, "--gps", str(bad), "--out", out],
            "labels": ["eval", "--imagery", str(PARIS / "image.tif"), "--labels", str(bad)],
            "task": ["run", str(bad)], "task_folder": ["run", str(bad)]}.get(what)
    argv = argv or ["diff", "--aoi", str(PARIS / "aoi.geojson"), "--osm", roads, "--gps", str(bad), "--out", out]
    err = _refused(workdir, argv, str(bad), capsys)
    assert ("Is a directory" if what == "task_folder" else "Permission denied") in err


@pytest.mark.parametrize("option,name,content", [
    ("--candidates", "roads.geojson",
     '<OGRVRTDataSource><OGRVRTLayer name="roads"><SrcDataSource>/vsicurl/{url}/roads.geojson</SrcDataSource>'
     '</OGRVRTLayer></OGRVRTDataSource>'),
    ("--imagery", "image.tif",
     '<?xml version="1.0"?>\n<VRTDataset rasterXSize="256" rasterYSize="256"><VRTRasterBand dataType="Byte" band="1">'
     '<SimpleSource><SourceFilename>/vsicurl/{url}/image.tif</SourceFilename></SimpleSource></VRTRasterBand>'
     '</VRTDataset>'),
])
def test_a_file_that_makes_gdal_fetch_an_address_is_refused_unasked(tmp_path, capsys, option, name, content):
    """GDAL opens a file by its content: a VRT named like data would have GDAL fetch the address
    it names itself, outside osmgap's HTTP client. Refused before GDAL opens it: nothing asked."""
    asked: list[str] = []

    class Beacon(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_HEAD(self):
            asked.append(self.path)
            self.send_response(404)
            self.end_headers()

        do_GET = do_HEAD

    server = LoopbackServer(Beacon)
    server.start()
    try:
        disguised = _text(tmp_path / name, content.format(url=server.origin))
        paris = data_root() / "sample_aoi" / "paris-1447"
        evidence = [option, str(disguised), "--osm", str(paris / "osm_roads.geojson")]
        err = assert_refused(tmp_path, ["diff", "--aoi", str(paris / "aoi.geojson"), *evidence,
                                        "--out", str(tmp_path / "out")], name, capsys)
        assert "VRT" in err and asked == []
    finally:
        server.stop()


def test_a_vrt_named_as_one_is_read(tmp_path):
    """A user's own mosaic, named .vrt, is imagery like any other."""
    paris = data_root() / "sample_aoi" / "paris-1447"
    with rasterio.open(paris / "image.tif") as src:
        kind = {"uint8": "Byte", "uint16": "UInt16"}[src.dtypes[0]]
        bands = "".join(f'<VRTRasterBand dataType="{kind}" band="{i + 1}"><SimpleSource><SourceFilename>'
                        f'{paris / "image.tif"}</SourceFilename><SourceBand>{i + 1}</SourceBand></SimpleSource>'
                        f'</VRTRasterBand>' for i in range(src.count))
        vrt = _text(tmp_path / "mosaic.vrt", f'<VRTDataset rasterXSize="{src.width}" rasterYSize="{src.height}">'
                                             f'<SRS>{src.crs.to_wkt()}</SRS><GeoTransform>'
                                             f'{", ".join(map(str, src.transform.to_gdal()))}</GeoTransform>{bands}'
                                             f'</VRTDataset>')
    assert open_imagery(vrt).resolution_m == pytest.approx(open_imagery(paris / "image.tif").resolution_m)


def test_candidates_of_another_place_say_so_in_the_candidates_words(tmp_path, capsys):
    """An OSM extract of Kotka as the candidates of a Paris AOI: the advice is about the
    candidates file, not the diff's --osm."""
    paris = data_root() / "sample_aoi" / "paris-1447"
    err = assert_refused(tmp_path, ["diff", "--aoi", str(paris / "aoi.geojson"), "--osm", str(paris / "osm_roads.geojson"),
                                    "--candidates", str(data_root() / "osm" / "kotka.osm.pbf"),
                                    "--out", str(tmp_path / "out")], "kotka.osm.pbf", capsys)
    assert "the candidates file covers lon" in err and "--osm" not in err
