"""Another Overpass instance (a mirror, one's own) through $OSMGAP_OVERPASS_URL: the main
instance was the only one osmgap could ask, so a user rate-limited there, or running a private
instance, had no way out. A key in that URL reaches no message or output."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from osmgap.cli import main
from osmgap.core.aoi import load_aoi
from osmgap.errors import InputError
from osmgap.sources.osm import load_osm
from osmgap.sources.overpass import OVERPASS_URL_ENV
from tests.hostile.test_network import OVERPASS_BBOX, OVERPASS_OK, Answer, ScriptedServer

SECRET = "s3cr3t-overpass-key"


def test_a_diff_asks_the_overpass_instance_the_environment_names(data: Path, tmp_path: Path, monkeypatch, capsys):
    out = tmp_path / "out"
    with ScriptedServer([OVERPASS_OK]) as server:
        monkeypatch.setenv(OVERPASS_URL_ENV, f"{server.url}/api/interpreter?key={SECRET}")
        assert main(["diff", "--aoi", OVERPASS_BBOX, "--osm", "overpass", "--cache-dir", str(tmp_path / "cache"),
                     "--candidates", str(data / "osm" / "west-oakland.osm"), "--out", str(out)]) == 0
    assert len(server.requests) == 1 and server.requests[0]["path"] == f"/api/interpreter?key={SECRET}"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["osm_ways"] > 0 and summary["osm"]["format"] == "overpass"
    written = "".join(p.read_text(errors="replace") for p in out.iterdir() if p.suffix in (".json", ".osm", ".geojson"))
    assert SECRET not in written + capsys.readouterr().err


def test_the_instances_error_page_is_said_without_the_key(tmp_path: Path, monkeypatch):
    with ScriptedServer([Answer(418, f"no such key: {SECRET}".encode())]) as server:
        monkeypatch.setenv(OVERPASS_URL_ENV, f"{server.url}/api/interpreter?apikey={SECRET}")
        with pytest.raises(InputError) as err:
            load_osm("overpass", load_aoi(OVERPASS_BBOX), cache_dir=tmp_path)
    assert "answered HTTP 418" in str(err.value) and SECRET not in str(err.value)


@pytest.mark.parametrize("value", ["overpass.kumi.systems/api/interpreter", "ftp://example.org/api"])
def test_a_value_that_is_no_http_url_is_refused_naming_the_variable(value: str, data: Path, tmp_path: Path,
                                                                    monkeypatch, capsys):
    monkeypatch.setenv(OVERPASS_URL_ENV, value)
    out = tmp_path / "out"
    assert main(["diff", "--aoi", OVERPASS_BBOX, "--osm", "overpass", "--cache-dir", str(tmp_path / "cache"),
                 "--candidates", str(data / "osm" / "west-oakland.osm"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert OVERPASS_URL_ENV in err and "not an http(s) URL" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
