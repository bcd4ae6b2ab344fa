"""A mapper maps some of the gaps and runs diff again: with `--osm overpass` the roads just mapped
came back as missing, from Overpass's answer osmgap keeps for 6 hours, and nothing said why. The
run now says that OSM came from a kept answer, and how old, and `--osm-max-age 0` asks again.
Against the recorded real Overpass answer of West Oakland; no network."""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from osmgap.cli import main
from osmgap.core.aoi import load_aoi
from osmgap.sources import overpass
from osmgap.sources.overpass import overpass_cache_path, overpass_query
from tests.sources.test_osm_source import OVERPASS_BBOX, OVERPASS_FIXTURE


@pytest.fixture
def kept_answer(tmp_path: Path) -> Path:
    """The recorded answer, kept by an earlier run 50 minutes ago."""
    cache = overpass_cache_path(overpass_query(load_aoi(OVERPASS_BBOX)), tmp_path / "cache")
    cache.parent.mkdir(parents=True)
    shutil.copy(OVERPASS_FIXTURE, cache)
    then = time.time() - 50 * 60
    os.utime(cache, (then, then))
    return cache


def _diff(tmp_path: Path, out: str, *extra: str) -> int:
    line = {"type": "Feature", "properties": {"highway": "residential"},
            "geometry": {"type": "LineString", "coordinates": [[-122.3030, 37.8045], [-122.2990, 37.8070]]}}
    candidates = tmp_path / "candidates.geojson"
    candidates.write_text(json.dumps({"type": "FeatureCollection", "features": [line]}))
    return main(["diff", "--aoi", OVERPASS_BBOX, "--osm", "overpass", "--cache-dir", str(tmp_path / "cache"),
                 "--candidates", str(candidates), "--out", str(tmp_path / out), *extra])


def test_a_kept_overpass_answer_is_said_with_its_age(tmp_path, kept_answer, monkeypatch, capsys):
    monkeypatch.setattr(overpass, "_http_post", lambda *a, **k: pytest.fail("the kept answer was not used"))
    assert _diff(tmp_path, "out") == 0
    said = [line for line in capsys.readouterr().out.splitlines() if "OSM: Overpass's answer" in line]
    assert len(said) == 1 and "kept 50 min" in said[0] and "--osm-max-age 0 asks again" in said[0]
    osm = json.loads((tmp_path / "out" / "summary.json").read_text())["osm"]
    assert 50 * 60 <= osm["cached_s"] < 52 * 60


def test_osm_max_age_0_asks_overpass_again(tmp_path, kept_answer, monkeypatch, capsys):
    asked = []
    monkeypatch.setattr(overpass, "_http_post", lambda *a, **k: asked.append(1) or OVERPASS_FIXTURE.read_bytes())
    assert _diff(tmp_path, "out", "--osm-max-age", "0") == 0
    assert len(asked) == 1 and "OSM: Overpass's answer" not in capsys.readouterr().out
    assert "cached_s" not in json.loads((tmp_path / "out" / "summary.json").read_text())["osm"]
    assert time.time() - kept_answer.stat().st_mtime < 60  # the new answer is kept in its place
    assert _diff(tmp_path, "again", "--osm-max-age", "1") == 0  # younger than an hour: not asked again
    assert len(asked) == 1
