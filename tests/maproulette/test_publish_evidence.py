"""`osmgap publish` with the default instruction works for every kind of output: imagery (the
sample's real roads as suggestions, tests/sample_outputs.py), candidates (a real diff: the real
Kotka extract given back as .osm.pbf candidates to the same extract with three ways deleted) and
GPS (a real diff: 150 real Chicago shuttle trips against the real OSM graph with three driven ways
deleted). Each task's instruction is rendered as MapRoulette's web client renders it, which has
no mustache sections (maproulette3 UsePropertyReplacement.js): no tag may come out blank."""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import osmium
import pytest
import shapely

from osmgap.cli import main
from osmgap.core.aoi import reproject
from tests.maproulette.publishing import CHALLENGE, publish
from tests.sample_outputs import sample_ways, write_outputs

KOTKA_BBOX = "26.9300,60.5200,26.9699,60.5400"
KOTKA_DELETED = (62061739, 369836409, 75553162)  # a residential street, a parking aisle, a connector
CHICAGO_CRS = "EPSG:32616"
CAMPUS = shapely.box(444700.0, 4635000.0, 445700.0, 4636100.0)
CHICAGO_DELETED = (5411, 8278, 5400)  # ways the shuttles drive
TAG = re.compile(r"(^|[^{])\{\{([^{][^}]*)}}")  # maproulette3 replacePropertyTags


def rendered(instruction: str, properties: dict) -> tuple[str, list[str]]:
    """The instruction as MapRoulette shows it for a task, and the tags it left blank."""
    blank: list[str] = []

    def value(m: re.Match) -> str:
        text = properties.get(m.group(2))
        if text in (None, ""):
            blank.append(m.group(2))
        return m.group(1) + ("" if text is None else str(text))
    return TAG.sub(value, instruction), blank


@pytest.fixture(scope="module")
def candidates_run(tmp_path_factory, data) -> Path:
    d = tmp_path_factory.mktemp("candidates")
    edited = d / "kotka-edited.osm.pbf"
    with osmium.SimpleWriter(str(edited)) as w:
        for obj in osmium.FileProcessor(str(data / "osm" / "kotka.osm.pbf")):
            if not (obj.is_way() and obj.id in KOTKA_DELETED):
                w.add(obj)
    out = d / "ws" / "kotka"
    assert main(["diff", "--aoi", KOTKA_BBOX, "--osm", str(edited), "--candidates",
                 str(data / "osm" / "kotka.osm.pbf"), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def gps_run(tmp_path_factory, chicago_ways, chicago_gps) -> Path:
    d = tmp_path_factory.mktemp("gps")
    ways = chicago_ways[chicago_ways.intersects(CAMPUS.buffer(300))]
    ways[~ways["osm_id"].isin(CHICAGO_DELETED)].to_crs("EPSG:4326").to_file(d / "osm.geojson", driver="GeoJSON")
    trips = d / "trips"
    trips.mkdir()
    for path in sorted((chicago_gps / "trips").iterdir())[:150]:
        (trips / path.name).write_bytes(path.read_bytes())
    bbox = ",".join(f"{v:.6f}" for v in reproject(CAMPUS, CHICAGO_CRS, "EPSG:4326").bounds)
    out = d / "ws" / "chicago"
    assert main(["diff", "--aoi", bbox, "--osm", str(d / "osm.geojson"), "--gps", str(trips),
                 "--gps-crs", CHICAGO_CRS, "--out", str(out)]) == 0
    return out


@pytest.fixture
def imagery_run(tmp_path, data) -> Path:
    out = tmp_path / "ws" / "paris"
    write_outputs(out, sample_ways(data)[:4])
    return out


@pytest.mark.parametrize("kind, says", [("imagery", "SpaceNet; imagery courtesy of Maxar"),
                                        ("candidates", "The road data kotka.osm.pbf has a road here"),
                                        ("gps", "GPS traces of several trips run along a road here")])
def test_the_default_instruction_publishes_every_kind_of_output(fake, request, kind, says):
    out = request.getfixturevalue(f"{kind}_run")
    features = json.loads((out / "suggestions.geojson").read_text())["features"]
    assert features
    assert publish(fake, out) == 0
    challenge = fake.challenge_named(CHALLENGE)
    tasks = fake.tasks_of(challenge["id"])
    assert set(tasks) == {f["id"] for f in features}
    assert "{{#" not in challenge["instruction"]  # MapRoulette has no sections: they would show raw text
    for task in tasks.values():
        text, blank = rendered(challenge["instruction"], task.geojson["features"][0]["properties"])
        assert blank == [] and "{{" not in text and says in text
    assert ("imagery" in challenge["description"]) == (kind == "imagery")


def test_candidates_tasks_carry_no_imagery_so_the_instruction_names_none(fake, candidates_run):
    properties = json.loads((candidates_run / "suggestions.geojson").read_text())["features"][0]["properties"]
    assert "imagery_attribution" not in properties and properties["evidence_source"] == "kotka.osm.pbf"
    assert publish(fake, candidates_run) == 0
    assert "imagery_attribution" not in fake.challenge_named(CHALLENGE)["instruction"]


def _fixmes(out: Path) -> list[str]:
    return [t.get("v") for t in ET.fromstring((out / "suggestions.osm").read_bytes()).iter("tag") if t.get("k") == "fixme"]


def test_a_source_without_confidence_is_not_shown_one_as_if_measured(fake, candidates_run):
    """Every line of a source without a confidence column counts the default 0.75; every task,
    the instruction and each way's fixme said "confidence 0.75" as if something had measured it."""
    assert json.loads((candidates_run / "summary.json").read_text())["candidates"]["confidence_column"] is None
    features = json.loads((candidates_run / "suggestions.geojson").read_text())["features"]
    assert features and all(f["properties"]["evidence_confidence_source"] == "assumed" for f in features)
    fixmes = _fixmes(candidates_run)
    assert fixmes and all("no confidence given by its source" in f and "confidence 0." not in f for f in fixmes)
    assert publish(fake, candidates_run) == 0
    instruction = fake.challenge_named(CHALLENGE)["instruction"]
    assert "{{confidence}}" not in instruction and "gives no confidence of its own" in instruction


def test_a_source_with_a_score_column_is_shown_its_confidence(fake, candidates_run, kotka, tmp_path):
    scored = tmp_path / "scored.geojson"
    kotka.ways[["highway", "geometry"]].assign(score=90).to_file(scored, driver="GeoJSON")  # a percentage
    out = tmp_path / "ws" / "scored"
    edited = candidates_run.parent.parent / "kotka-edited.osm.pbf"
    assert main(["diff", "--aoi", KOTKA_BBOX, "--osm", str(edited), "--candidates", str(scored), "--out", str(out)]) == 0
    read = json.loads((out / "summary.json").read_text())["candidates"]
    assert read["confidence_column"] == "score" and read["confidence_scale"] == "0-100"
    features = json.loads((out / "suggestions.geojson").read_text())["features"]
    assert features and not any("evidence_confidence_source" in f["properties"] for f in features)
    assert all("(confidence 0.90)" in f for f in _fixmes(out))
    assert publish(fake, out) == 0
    assert "confidence {{confidence}}" in fake.challenge_named(CHALLENGE)["instruction"]


def test_gps_tasks_name_the_trips_along_them_when_every_task_has_them(fake, gps_run):
    features = json.loads((gps_run / "suggestions.geojson").read_text())["features"]
    assert publish(fake, gps_run) == 0
    instruction = fake.challenge_named(CHALLENGE)["instruction"]
    every = all("evidence_gps_trips" in f["properties"] for f in features)
    assert ("{{evidence_gps_trips}} trips" in instruction) == every


@pytest.mark.parametrize("kind", ["candidates", "gps"])
def test_an_own_instruction_naming_a_property_no_task_has_still_fails_clearly(fake, request, capsys, kind):
    out = request.getfixturevalue(f"{kind}_run")
    assert publish(fake, out, "--instruction", "Check {{length_m}} m; imagery: {{imagery_attribution}}") == 2
    err = capsys.readouterr().err
    assert "{{imagery_attribution}}" in err and "suggestions.geojson" in err and err.count("\n") == 1
    assert fake.writes() == []


def test_a_mustache_section_is_refused_since_maproulette_would_show_its_text_to_every_task(fake, imagery_run, capsys):
    instruction = "{{#imagery_attribution}}Imagery: {{imagery_attribution}}{{/imagery_attribution}}"
    assert publish(fake, imagery_run, "--instruction", instruction) == 2
    assert "no mustache sections" in capsys.readouterr().err
    assert fake.writes() == []
