"""The public text of a challenge, as `publish --dry-run` would send it: the AOI it names, and
the steps its instruction asks for. An AOI with no name of its own (a bbox given no --name, the
AOI `--state` refuses without one) was published as "Missing roads in bbox"; a challenge that
pre-draws nothing asked to "fix the pre-drawn one"."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from shapely.geometry import mapping

from osmgap.core.aoi import load_aoi
from tests.fake_maproulette import FakeMapRoulette
from tests.maproulette.publishing import CHALLENGE, publish
from tests.sample_outputs import SAMPLE_AOI, sample_ways, write_outputs

BBOX = "2.2812,48.9810,2.2829,48.9828"  # the sample's own area, given as a bbox


@pytest.fixture
def ways(data):
    return sample_ways(data)


def as_aoi(out: Path, spec: str, name: str | None = None) -> None:
    """The outputs as a diff of ``--aoi spec [--name name]`` writes their summary."""
    aoi = load_aoi(spec, name)
    summary = json.loads((out / "summary.json").read_text())
    summary["aoi"] = {**summary["aoi"], "name": aoi.name, "source": aoi.source}
    (out / "summary.json").write_text(json.dumps(summary))


def dry_run_body(out: Path, *extra: str) -> dict:
    """The challenge body `publish --dry-run` would POST."""
    with FakeMapRoulette() as untouched:
        assert publish(untouched, out, "--dry-run", *extra) == 0
        assert untouched.log == []
    (post,) = (out / "maproulette-dry-run" / "publish").glob("*-POST-challenge.json")
    return json.loads(post.read_text())["body"]


def test_a_bbox_with_no_name_is_called_by_the_challenges_name(ways, tmp_path):
    out = tmp_path / "ws" / "run"
    write_outputs(out, ways[:2])
    as_aoi(out, BBOX)
    body = dry_run_body(out)
    assert body["blurb"] == f"{CHALLENGE}: missing roads found by osmgap"
    assert "in this challenge's area." in body["description"]
    assert "bbox" not in body["blurb"] + body["description"] + body["instruction"]


@pytest.mark.parametrize("spec, name, called", [
    (BBOX, "Ermont-Eaubonne", "Ermont-Eaubonne"),  # a bbox given --name
    (str(SAMPLE_AOI), None, "paris-1447"),  # a sample AOI directory's name
    ("area two.geojson", None, "area two"),  # a file's stem: its name by osmgap's own rule (load_aoi)
])
def test_a_named_aoi_is_called_by_its_name(ways, tmp_path, spec, name, called):
    out = tmp_path / "ws" / "run"
    write_outputs(out, ways[:2])
    if spec.endswith(".geojson"):
        (tmp_path / spec).write_text(json.dumps(mapping(load_aoi(str(SAMPLE_AOI)).geometry)))  # no name inside
        spec = str(tmp_path / spec)
    as_aoi(out, spec, name)
    body = dry_run_body(out)
    assert body["blurb"] == f"Missing roads in {called}, found by osmgap"
    assert f"but not in OpenStreetMap, area {called}. " in body["description"]


def test_the_description_says_the_minimum_length_is_the_whole_roads(ways, tmp_path):
    """A task is often a piece shorter than the minimum: the minimum is the whole missing road's
    (osmgap.conflate.gaps); the description said each task was a gap longer than it."""
    out = tmp_path / "ws" / "run"
    write_outputs(out, ways[:2])
    description = dry_run_body(out)["description"]
    assert "gap longer than the minimum" not in description
    assert "the missing road it belongs to is at least the minimum length, or joins two mapped roads" in description


def test_only_a_challenge_that_pre_draws_the_road_asks_to_fix_the_pre_drawn_one(ways, tmp_path):
    out = tmp_path / "ws" / "run"
    write_outputs(out, ways[:2], cleared=True)
    plain = dry_run_body(out)["instruction"]
    assert "pre-drawn" not in plain and "2. If the road is there, draw it, connect it to the roads" in plain
    cooperative = dry_run_body(out, "--cooperative")["instruction"]
    assert "2. If the road is there, draw it (or fix the pre-drawn one), connect it" in cooperative
    # cooperative, but every road is OSM's proposed way to retag: nothing is pre-drawn
    doc = json.loads((out / "suggestions.geojson").read_text())
    for f in doc["features"]:
        f["properties"]["evidence_retag_way"] = "way/1"
    (out / "suggestions.geojson").write_text(json.dumps(doc))
    retag = dry_run_body(out, "--cooperative")
    assert "pre-drawn" not in retag["instruction"] and "retag that way" in retag["instruction"]
