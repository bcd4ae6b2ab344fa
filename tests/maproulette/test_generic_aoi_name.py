"""A file AOI named by its file's generic stem ("aoi", "roads", "export", ... from aoi.geojson,
roads.geojson, Untitled-1.geojson, a layer saved as it came) was published as "Missing roads in
roads": a name that tells a mapper nothing, as ``bbox`` did for a bbox. Such an AOI is treated as
a bbox given no --name: the texts name the challenge. A name the file gives (its ``name``), a
stem that means something, or --name, is kept."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from shapely.geometry import mapping

from osmgap.core.aoi import load_aoi
from tests.maproulette.publishing import CHALLENGE
from tests.maproulette.test_challenge_text import as_aoi, dry_run_body
from tests.sample_outputs import SAMPLE_AOI, sample_ways, write_outputs


@pytest.fixture
def ways(data):
    return sample_ways(data)


def _aoi_file(folder: Path, relative: str, name: str | None = None) -> str:
    path = folder / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    feature = {"type": "Feature", "properties": {"name": name} if name else {},
               "geometry": mapping(load_aoi(str(SAMPLE_AOI)).geometry)}
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    return str(path)


@pytest.mark.parametrize("relative", ["roads.geojson", "export.geojson", "Untitled-1.geojson", "AOI.geojson",
                                      "polygon (2).geojson", "map.geojson", "area_of_interest.geojson",
                                      "aoi/aoi.geojson", "boundary.geojson"])
def test_an_aoi_called_by_a_generic_file_name_is_called_by_the_challenges_name(ways, tmp_path, relative):
    out = tmp_path / "ws" / "run"
    write_outputs(out, ways[:2])
    as_aoi(out, _aoi_file(tmp_path / "in", relative))
    body = dry_run_body(out)
    assert body["blurb"] == f"{CHALLENGE}: missing roads found by osmgap"
    assert "in this challenge's area." in body["description"]
    # the same file with a name of its own, or given --name: that name (a meaningful stem is kept too:
    # test_challenge_text.py, "area two")
    for own, given in (("Ermont-Eaubonne", None), (None, "Saint-Denis")):
        as_aoi(out, _aoi_file(tmp_path / "named", relative, own), given)
        body = dry_run_body(out)
        assert body["blurb"] == f"Missing roads in {own or given}, found by osmgap"
        assert f"but not in OpenStreetMap, area {own or given}. " in body["description"]
