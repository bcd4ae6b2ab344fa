"""A gap keeps its id when a way near its end is redrawn: real Kotka OSM, two weekly diffs."""
from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pytest
from shapely.geometry import shape

from osmgap.cli import main
from osmgap.workspace.store import Store

pytestmark = pytest.mark.slow

DELETED = (62061739, 369836409, 75553162)  # a residential street, a parking aisle, a connector
BBOX = "26.9300,60.5200,26.9699,60.5400"
REDRAWN = 10_000_000_000  # added to a way's id: deleted and drawn again by a mapper, same line


def _diff(tmp: Path, name: str, osm: Path, candidates: Path, state: Path | None) -> dict[str, dict]:
    out = tmp / name
    extra = ["--state", str(state), "--name", "kotka"] if state else []
    assert main(["diff", "--aoi", BBOX, "--osm", str(osm), "--candidates", str(candidates), "--out", str(out),
                 *extra]) == 0
    return {f["id"]: f for f in json.loads((out / "suggestions.geojson").read_text())["features"]}


def test_a_way_redrawn_beside_a_gap_does_not_make_it_fixed_and_new(tmp_path, kotka, monkeypatch):
    """Ids are anchored on the OSM ways at a gap's ends: a mapper redrawing one of them (a new way
    id, the same line) renamed the gap, and the weekly report said one road fixed and one new."""
    cands, osm1, osm2 = tmp_path / "roads.geojson", tmp_path / "osm1.geojson", tmp_path / "osm2.geojson"
    kotka.ways[["highway", "geometry"]].to_file(cands, driver="GeoJSON")
    kept = kotka.ways[~kotka.ways["osm_id"].isin(DELETED)][["osm_id", "highway", "geometry"]]
    kept.to_file(osm1, driver="GeoJSON")
    state = tmp_path / "osmgap.sqlite"
    monkeypatch.setenv("OSMGAP_NOW", "2025-01-06T04:00:00Z")
    week1 = _diff(tmp_path, "w1", osm1, cands, state)
    gap_id, gap = next((i, f) for i, f in week1.items() if f["properties"]["kind"] == "missing_road")
    gap_line = gpd.GeoSeries([shape(gap["geometry"])], crs=4326).to_crs("EPSG:3067").iloc[0]
    near = kept.to_crs("EPSG:3067").distance(gap_line) < 10
    redrawn = kept.copy()
    redrawn.loc[near.to_numpy(), "osm_id"] += REDRAWN
    redrawn.to_file(osm2, driver="GeoJSON")
    assert gap_id not in _diff(tmp_path, "plain", osm2, cands, None)  # the edit does rename the gap
    monkeypatch.setenv("OSMGAP_NOW", "2025-01-13T04:00:00Z")
    week2 = _diff(tmp_path, "w2", osm2, cands, state)
    assert set(week2) == set(week1)
    with Store(state, create=False) as store:
        last = store.runs()[-1]
        assert (last["new"], last["fixed"]) == (0, 0)
        assert store.suggestion("kotka", gap_id)["status"] == "open"
