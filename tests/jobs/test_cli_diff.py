"""End to end through the real CLI on the real sample AOI, then JOSM's own validator."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from PIL import Image

from osmgap.model.nets import DEFAULT_MODEL
from tests.cli import osmgap_cli
from tests.josm import josm_validate, severity

pytestmark = pytest.mark.slow



QUICKSTART = ("diff", "--aoi", "sample_aoi/paris-1447-demo")  # the README's first command
REMOVED = (27236024, 27746681, 27851582)  # the ways the demonstration sample takes out (its manifest)


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("diff") / "paris-1447-demo"
    proc = osmgap_cli(*QUICKSTART, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return out, proc.stdout


@pytest.fixture(scope="module")
def sample_run(quickstart) -> Path:
    return quickstart[0]


def test_all_outputs_written(sample_run):
    names = sorted(p.name for p in sample_run.iterdir())
    assert names == ["maproulette.geojson", "overview.png", "probability.tif", "suggestions.geojson",
                     "suggestions.osm", "summary.json"]
    assert not list(sample_run.parent.glob(".*staging*"))


def test_summary_has_counts_times_and_provenance(sample_run):
    s = json.loads((sample_run / "summary.json").read_text())
    assert s["osm"]["ways"] == 10 and s["osm_ways"] == 7  # the sample's 10 ways, less the 3 the demonstration takes out
    assert s["demonstration"]["removed_osm_ids"] == sorted(REMOVED) and "NOT missing" in s["demonstration"]["text"]
    assert set(s["seconds"]) >= {"inputs", "osm", "segment", "graph", "conflate", "write", "total"}
    assert set(s["peak_rss_mb"]) == set(s["seconds"]) - {"total"} and all(v > 50 for v in s["peak_rss_mb"].values())
    assert s["imagery"]["crs"] == "EPSG:4326" and 0.2 < s["imagery"]["resolution_m"] < 0.3
    assert s["model"]["views"] == (8 if s["device"].startswith("cuda") else 2)  # osmgap.model.infer.default_views
    assert s["model"]["sha256"] == hashlib.sha256(DEFAULT_MODEL.read_bytes()).hexdigest()  # which model, whatever its path
    assert "Maxar" in s["imagery"]["attribution"] and s["imagery"]["licence"] == "CC-BY-SA 4.0"
    assert s["osm"]["licence"].startswith("ODbL")
    assert s["warnings"], "SpaceNet imagery is not cleared for OSM tracing: the run must say so"
    feats = json.loads((sample_run / "suggestions.geojson").read_text())["features"]
    assert s["suggestions"] == len(feats)
    assert s["km_suggested"] == pytest.approx(sum(f["properties"]["length_m"] for f in feats) / 1000, abs=0.002)


def test_same_ids_in_geojson_and_maproulette(sample_run):
    feats = json.loads((sample_run / "suggestions.geojson").read_text())["features"]
    raw = (sample_run / "maproulette.geojson").read_bytes()
    records = [r for r in raw.split(b"\x1e") if r]
    assert len(records) == len(feats)
    ids = []
    for rec in records:
        assert rec.endswith(b"\n")
        fc = json.loads(rec)
        assert fc["type"] == "FeatureCollection" and len(fc["features"]) == 1
        ids.append(fc["features"][0]["properties"]["id"])
    assert ids == [f["properties"]["id"] for f in feats]
    for f in feats:
        p = f["properties"]
        assert p["kind"] == "missing_road" and p["length_m"] > 0 and 0 <= p["confidence"] <= 1


def test_overview_is_a_picture(sample_run):
    with Image.open(sample_run / "overview.png") as im:
        assert im.width > 400 and im.height > 400
        assert len(set(im.convert("RGB").resize((32, 32)).get_flattened_data())) > 50  # imagery, not a blank canvas


def test_osm_file_is_for_josm_and_carries_the_licence(sample_run):
    text = (sample_run / "suggestions.osm").read_text()
    assert "upload=\"false\"" in text and "<bounds" not in text and "Area of interest" in text
    assert "Maxar" in text and "not known to be cleared" in text and 'k="osmgap:' not in text  # no private tags
    assert text.count("<way ") == text.count('<tag k="highway" v="road" />') >= 1  # the suggested ways, for a mapper to classify
    assert text.count('<tag k="fixme" v="osmgap: possible missing road') == text.count("<way ")


def test_josm_validates_the_osm_file(sample_run, tmp_path):
    issues = josm_validate(sample_run / "suggestions.osm", tmp_path)
    assert [i for i in issues if severity(i) == "Errors"] == []


def no_roads(folder: Path) -> Path:
    """An OSM file with no road and no declared area: what JOSM saves of an unmapped place."""
    path = folder / "no-roads.osm"
    path.write_text('<?xml version="1.0" encoding="UTF-8"?>\n<osm version="0.6" generator="test"/>\n')
    return path


def test_uint16_panchromatic_imagery_through_the_cli(tmp_path, vegas, data):
    """16-bit single-band SpaceNet Vegas chip; OSM from a file with no road (an unmapped place)."""
    out = tmp_path / "vegas"
    proc = osmgap_cli("diff", "--aoi", "-115.2336,36.1390,-115.2305,36.1421", "--imagery", str(vegas / "image_pan_uint16.tif"),
                   "--osm", str(no_roads(tmp_path)), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    s = json.loads((out / "summary.json").read_text())
    assert s["osm_ways"] == 0 and s["imagery"]["dtype"] == "uint16" and s["imagery"]["bands_used"] == [1, 1, 1]
    # with no OSM at all, everything the model finds that is long enough is a suggestion
    assert s["km_suggested"] <= s["predicted_road_km"] + 1e-6


def test_quickstart_finds_the_removed_roads_and_says_so_plainly(quickstart, paris, paris_aoi):
    """The README's first command: the demonstration's removed streets come back as suggestions
    lying on them, and the run ends with plain lines a newcomer can read."""
    import geopandas as gpd
    import shapely

    from osmgap.core.aoi import reproject
    from osmgap.core.datamodel import WGS84

    out, stdout = quickstart
    ways = gpd.read_file(paris / "osm_roads.geojson").to_crs(paris_aoi.metric_crs)
    removed = shapely.union_all(ways[ways["osm_id"].isin(REMOVED)].geometry.values).buffer(12)  # the tolerance
    feats = json.loads((out / "suggestions.geojson").read_text())["features"]
    assert feats, "the removed streets must be suggested"
    suggested = [reproject(shapely.geometry.shape(f["geometry"]), WGS84, paris_aoi.metric_crs) for f in feats]
    assert sum(g.intersection(removed).length for g in suggested) / sum(g.length for g in suggested) > 0.8
    lines = stdout.splitlines()
    assert lines[0].startswith(f"{len(feats)} suggestions")
    assert any(line.strip().startswith("Area analysed: 0.0239 km2 (100% of the AOI") for line in lines)
    assert any(line.strip().startswith(f"Suggested: {len(feats)} missing roads") for line in lines)
    assert any("demonstration" in line and "not missing from OSM" in line for line in lines)
    assert "Demonstration: 3 OSM ways" in (out / "suggestions.osm").read_text(encoding="utf-8")
    tasks = [json.loads(line.lstrip("\x1e")) for line in (out / "maproulette.geojson").read_text().split("\n") if line]
    assert len(tasks) == len(feats)  # one task (a FeatureCollection) per suggestion
    for f in feats + [f for t in tasks for f in t["features"]]:
        assert "NOT missing from OpenStreetMap" in f["properties"]["demonstration"]  # each one, for an upload by hand


def test_a_multispectral_image_is_read_in_the_bands_asked_for(tmp_path, data):
    """A real WorldView-3 8-band chip (Shanghai img1700); OSM from an extract that does not cover
    it. Read in the bands its file tags red, green, blue the run says so in summary.json; read in
    true colour (--bands 5,3,2) the model sees its roads."""
    chip = data / "chips" / "shanghai" / "AOI_4_Shanghai_img1700_mul.tif"
    runs = {}
    for name, extra in (("guessed", []), ("true colour", ["--bands", "5,3,2"])):
        out = tmp_path / name.replace(" ", "-")
        proc = osmgap_cli("diff", "--aoi", "121.72360,31.41028,121.72701,31.41369", "--imagery", str(chip),
                          "--osm", str(no_roads(tmp_path)), "--out", str(out), *extra)
        assert proc.returncode == 0, proc.stderr
        runs[name] = json.loads((out / "summary.json").read_text())
    guessed, true_colour = runs["guessed"], runs["true colour"]
    assert guessed["imagery"]["bands_used"] == [1, 2, 3] and true_colour["imagery"]["bands_used"] == [5, 3, 2]
    assert any("8 bands" in w and "--bands 5,3,2" in w for w in guessed["warnings"])
    assert not any("8 bands" in w for w in true_colour["warnings"])
    assert true_colour["predicted_road_km"] > guessed["predicted_road_km"] + 0.3


def test_a_small_aoi_is_predicted_with_the_imagery_around_it(tmp_path, paris):
    """45 x 80 m at a street corner of the Paris chip: predicted alone (the rest of its windows
    blank), the model saw no road there; with the imagery around it, it sees the corner's roads,
    and counts only what lies inside the AOI."""
    out = tmp_path / "out"
    proc = osmgap_cli("diff", "--aoi", "2.2825,48.9820,2.28292,48.98275", "--imagery", str(paris / "image.tif"),
                      "--osm", str(paris / "osm_roads.geojson"), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert 0.03 <= summary["predicted_road_km"] <= 0.2  # two streets across 45 x 80 m, no more
    assert summary["grid"]["width"] * summary["grid"]["height"] > 2 * 45 * 80  # the context was predicted (to the chip's edge)
