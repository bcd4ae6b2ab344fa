"""Files nested deeper than Python's parsers (and the code walking what they read) can recurse:
each is refused with one line naming the file, exit 2, nothing written; never an internal error."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from osmgap.errors import InputError
from osmgap.maproulette.challenge import differs
from osmgap.model.labels import _is_osm_geojson
from osmgap.model.pack import read_pack
from osmgap.workspace.outputs import read_outputs
from osmgap.workspace.store import Store
from osmgap.workspace.tracking import record_run
from tests.hostile.test_arguments import assert_refused
from tests.sample_outputs import SAMPLE_AOI, sample_area, sample_ways, ways_frame, write_outputs

DEEP = "[" * 100_000 + "]" * 100_000  # beyond any recursion limit


def nested(levels: int) -> str:
    """A list ``levels`` deep: within what the parser reads, beyond what osmgap writes."""
    return "[" * levels + "1" + "]" * levels


@pytest.fixture(autouse=True)
def no_machine_config(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MAPROULETTE_API_KEY", raising=False)
    monkeypatch.delenv("MAPROULETTE_API_URL", raising=False)


@pytest.fixture
def run_out(data, tmp_path) -> Path:
    """A diff's outputs (two real roads) in ws/run."""
    out = tmp_path / "ws" / "run"
    write_outputs(out, sample_ways(data)[:2])
    return out


def publish_dry_run(out: Path, *extra: str) -> list[str]:
    return ["publish", "--out", str(out), "--challenge", "c", "--project", "1", "--dry-run", *extra]


def _deep_property(text: str) -> str:
    return text.replace('"properties": {', f'"properties": {{"deep": {nested(100)}, ', 1)


def _deep_coordinates(text: str) -> str:
    doc = json.loads(text)
    doc["features"][0]["geometry"]["coordinates"] = json.loads(nested(500))
    return json.dumps(doc)


@pytest.mark.parametrize("name, change, says", [
    ("suggestions.geojson", lambda _: DEEP, "JSON nested too deeply to read"),
    ("summary.json", lambda _: DEEP, "JSON nested too deeply to read"),
    ("suggestions.geojson", _deep_property, "nested more than 64 levels"),  # read, then walked by publish
    ("suggestions.geojson", _deep_coordinates, "nested more than 64 levels"),  # read, then checked recursively
], ids=["suggestions", "summary", "suggestion-property", "suggestion-coordinates"])
def test_a_deep_output_file_is_refused_by_publish(run_out, capsys, name, change, says):
    path = run_out / name
    path.write_text(change(path.read_text()))
    err = assert_refused(run_out.parent, publish_dry_run(run_out), name, capsys)
    assert says in err


def test_a_deep_task_file_is_refused(tmp_path, capsys):
    task = tmp_path / "deep.toml"
    task.write_text(f'name = "x"\nschedule = {DEEP}\n[diff]\naoi = "a"\nout = "o"\n')
    err = assert_refused(tmp_path, ["run", str(task)], "deep.toml", capsys)
    assert "TOML nested too deeply to read" in err


def test_a_deep_maproulette_config_is_refused(run_out, tmp_path, capsys):
    config = tmp_path / "maproulette.toml"
    config.write_text(f'api_key = "abc"\nx = {DEEP}\n')
    err = assert_refused(tmp_path, publish_dry_run(run_out, "--config", str(config)), "maproulette.toml", capsys)
    assert "TOML nested too deeply to read" in err


def test_a_deep_sample_manifest_is_refused(tmp_path, capsys):
    sample = tmp_path / "sample"
    sample.mkdir()
    (sample / "aoi.geojson").write_bytes((SAMPLE_AOI / "aoi.geojson").read_bytes())
    (sample / "manifest.json").write_text(DEEP)
    err = assert_refused(tmp_path, ["diff", "--aoi", str(sample), "--out", str(tmp_path / "out")], "manifest.json",
                         capsys)
    assert "nested too deeply" in err


def test_a_deep_state_row_is_refused_as_damaged(run_out, data, capsys):
    state = run_out.parent / "osmgap.sqlite"
    with Store(state) as store:
        record_run(store, read_outputs(run_out), area=sample_area(), osm_ways=ways_frame(sample_ways(data)[2:]))
    with sqlite3.connect(state) as db:
        db.execute("UPDATE suggestions SET properties = ? WHERE rowid = 1", (DEEP,))
    db.close()
    err = assert_refused(run_out.parent, ["report", "--out", str(run_out), "--basemap", "none"], "osmgap.sqlite",
                         capsys)
    assert "state file is damaged" in err


@pytest.mark.parametrize("table, column, value", [
    ("suggestions", "properties", f'{{"deep": {nested(500)}}}'),
    ("runs", "summary", f'{{"aoi": {{"name": "paris-1447"}}, "deep": {nested(500)}}}'),
    ("aois", "osm", f'{{"type": "FeatureCollection", "features": [], "deep": {nested(500)}}}'),
], ids=["suggestion-properties", "run-summary", "aoi-osm"])
def test_a_state_row_nested_deep_but_parseable_is_refused(run_out, data, capsys, table, column, value):
    """JSON 500 levels deep parses (below the recursion limit) and passed the state's check as an
    object, then went on to the report and publish, which walk it; osmgap writes no row deeper
    than a few levels, and no output file deeper than 64 (osmgap.workspace.outputs.MAX_DEPTH)."""
    state = run_out.parent / "osmgap.sqlite"
    with Store(state) as store:
        record_run(store, read_outputs(run_out), area=sample_area(), osm_ways=ways_frame(sample_ways(data)[2:]))
    with sqlite3.connect(state) as db:
        db.execute(f"UPDATE {table} SET {column} = ? WHERE rowid = 1", (value,))  # noqa: S608 (the test's names)
    db.close()
    for argv in (["report", "--out", str(run_out), "--basemap", "none"], publish_dry_run(run_out)):
        err = assert_refused(run_out.parent, argv, "osmgap.sqlite", capsys)
        assert "state file is damaged" in err and f"{table} row 1: {column} nested more than 64 levels" in err


def test_a_deep_training_pack_header_is_an_input_error(tmp_path):
    pack = tmp_path / "pack.npz"
    np.savez(pack, header=np.frombuffer(DEEP.encode(), np.uint8))
    with pytest.raises(InputError, match="nested too deeply") as err:
        read_pack(pack)
    assert err.value.source == str(pack)


def test_a_deep_labels_geojson_is_an_input_error(tmp_path):
    labels = tmp_path / "labels.geojson"
    labels.write_text(DEEP)
    with pytest.raises(InputError, match="nested too deeply") as err:
        _is_osm_geojson(labels)
    assert err.value.source == str(labels)


def test_a_deep_priority_rule_from_the_server_differs_and_is_sent_again():
    """A malformed answer changes nothing in the state; here the rule is replaced by ours."""
    ours = {"name": "c", "highPriorityRule": '{"condition": "OR", "rules": []}'}
    assert differs(ours, {"name": "c", "highPriorityRule": DEEP}) == ["highPriorityRule"]
    assert differs(ours, {"name": "c", "highPriorityRule": "not JSON"}) == ["highPriorityRule"]
    assert differs(ours, {"name": "c", "highPriorityRule": {"condition": "OR", "rules": []}}) == []
