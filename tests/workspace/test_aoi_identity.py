"""AOIs keep their identity in a state file (issue 18.3): a bbox is recorded only under a name
given to it, and a name the state keeps for one area is refused for another, before any work,
so two areas never merge into one history. Real sample roads (tests.sample_outputs)."""
from __future__ import annotations

import hashlib
import json

import pytest
import shapely
import shapely.affinity

from osmgap.cli import main
from osmgap.errors import InputError
from osmgap.workspace.outputs import read_outputs
from osmgap.workspace.store import Store, check_aoi
from osmgap.workspace.tracking import record_run
from tests.sample_outputs import SAMPLE_AOI, sample_area, sample_ways, ways_frame, write_outputs

KOTKA_BBOX = "26.9320,60.5190,26.9450,60.5250"


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def recorded(tmp_path, data):
    """A state holding one run of the sample AOI (paris-1447)."""
    ways = sample_ways(data)
    state = tmp_path / "osmgap.sqlite"
    with Store(state) as store:
        record_run(store, write_outputs(tmp_path / "paris", ways[:3]), area=sample_area(), osm_ways=ways_frame(ways[3:]))
    return state


def _diff(data, tmp_path, *extra: str) -> list[str]:
    osm = str(data / "osm" / "kotka.osm.pbf")
    return ["diff", "--osm", osm, "--candidates", osm, "--out", str(tmp_path / "out"), *extra]


def test_a_bbox_with_state_needs_a_name(tmp_path, data, capsys):
    state = tmp_path / "osmgap.sqlite"
    assert main(_diff(data, tmp_path, "--aoi", KOTKA_BBOX, "--state", str(state))) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and KOTKA_BBOX in err and "give --name" in err
    assert not state.exists() and not (tmp_path / "out").exists()


def test_a_name_kept_for_another_area_is_refused_before_any_work(recorded, tmp_path, data, capsys):
    before = _digest(recorded)
    assert main(_diff(data, tmp_path, "--aoi", KOTKA_BBOX, "--name", "paris-1447", "--state", str(recorded))) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(recorded) in err
    assert "'paris-1447' already belongs to another area" in err and "--name" in err
    other = tmp_path / "elsewhere.geojson"  # an AOI file whose own name is taken
    box = shapely.geometry.mapping(shapely.box(26.932, 60.519, 26.945, 60.525))
    other.write_text(json.dumps({"type": "Feature", "properties": {"name": "paris-1447"}, "geometry": box}))
    assert main(_diff(data, tmp_path, "--aoi", str(other), "--state", str(recorded))) == 2
    assert "already belongs to another area" in capsys.readouterr().err
    assert _digest(recorded) == before and not (tmp_path / "out").exists()
    check_aoi(recorded, str(SAMPLE_AOI))  # the same area again: fine
    check_aoi(recorded, KOTKA_BBOX, "kotka centre")  # another area under its own name: fine


def test_two_areas_under_two_names_keep_two_histories(recorded, tmp_path, data):
    """The record itself refuses a clash too (for callers that skip the early check); under
    distinct names both areas keep their own runs, suggestions and map."""
    ways = sample_ways(data)
    moved = shapely.affinity.translate(sample_area(), xoff=0.01)
    with Store(recorded) as store:
        with pytest.raises(InputError, match="already belongs to another area"):
            record_run(store, write_outputs(tmp_path / "again", ways[3:5]), area=moved, osm_ways=ways_frame(ways))
        assert len(store.runs("paris-1447")) == 1 and len(store.suggestions("paris-1447")) == 3
        write_outputs(tmp_path / "east", ways[3:5])
        summary = json.loads((tmp_path / "east" / "summary.json").read_text())
        summary["aoi"]["name"] = "paris-east"
        (tmp_path / "east" / "summary.json").write_text(json.dumps(summary))
        record_run(store, read_outputs(tmp_path / "east"), area=moved, osm_ways=ways_frame(ways))
        assert store.aoi_names() == ["paris-1447", "paris-east"]
        assert [len(store.suggestions(n)) for n in store.aoi_names()] == [3, 2]
        assert shapely.geometry.shape(json.loads(store.aoi("paris-east")["geometry"])).equals(moved)
