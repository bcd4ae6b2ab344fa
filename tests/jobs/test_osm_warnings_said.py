"""What the OSM reader warns about reaches every output a mapper reads, not only stderr.

An extract covering part of the AOI makes every road beyond its edge look missing. The warning
said so on stderr and in summary.json's `osm.warning` only: the diff wrote 13 suggestions, all
roads OSM has, with `warnings: []`, no note in suggestions.osm, no property on the suggestions
and nothing in the MapRoulette challenge a dry run would create. Real West Oakland OSM, cut in a
copy to the west half of the AOI (its <bounds> too), against the whole file as candidates.
"""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from osmgap.cli import main
from tests.fake_maproulette import FakeMapRoulette
from tests.maproulette.publishing import publish

pytestmark = pytest.mark.slow

AOI = "-122.3025,37.8062,-122.2983,37.8091"
EDGE_LON = -122.3005


def _west_half(source: Path, path: Path) -> Path:
    tree = ET.parse(source)
    root = tree.getroot()
    root.find("bounds").set("maxlon", str(EDGE_LON))
    for node in root.findall("node"):
        if float(node.get("lon")) > EDGE_LON:
            root.remove(node)
    tree.write(path, encoding="UTF-8", xml_declaration=True)
    return path


def test_an_extract_covering_part_of_the_aoi_is_said_in_every_output(data: Path, tmp_path: Path):
    whole = data / "osm" / "west-oakland.osm"
    out = tmp_path / "ws" / "run"
    assert main(["diff", "--aoi", AOI, "--name", "west-oakland", "--osm", str(_west_half(whole, tmp_path / "w.osm")),
                 "--candidates", str(whole), "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    said = [w for w in summary["warnings"] if "the file covers only" in w]
    assert summary["suggestions"] > 0 and len(said) == 1 and said[0] == summary["osm"]["warning"]
    features = json.loads((out / "suggestions.geojson").read_text())["features"]
    records = (out / "maproulette.geojson").read_text().split("\x1e")[1:]  # RS, one task, newline
    tasks = [f for record in records for f in json.loads(record)["features"]]
    assert len(features) == len(tasks) == summary["suggestions"]
    for f in features + tasks:
        assert "the file covers only" in f["properties"]["osm_warning"]
        assert "warning" not in f["properties"]  # that one says the imagery is not cleared for tracing
    assert "the file covers only" in (out / "suggestions.osm").read_text()
    with FakeMapRoulette() as untouched:
        assert publish(untouched, out, "--dry-run") == 0
    (post,) = (out / "maproulette-dry-run" / "publish").glob("*-POST-challenge.json")
    assert "the file covers only" in json.loads(post.read_text())["body"]["description"]
