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


def _week1_and_redrawn(tmp_path: Path, kotka, monkeypatch) -> tuple[dict[str, dict], str, Path, Path]:
    """Week 1's diff of real Kotka (three ways deleted) into a state: its suggestions, a gap's id,
    and the candidates and next week's OSM, where the ways at that gap's ends are redrawn."""
    cands, osm1, osm2 = tmp_path / "roads.geojson", tmp_path / "osm1.geojson", tmp_path / "osm2.geojson"
    kotka.ways[["highway", "geometry"]].to_file(cands, driver="GeoJSON")
    kept = kotka.ways[~kotka.ways["osm_id"].isin(DELETED)][["osm_id", "highway", "geometry"]]
    kept.to_file(osm1, driver="GeoJSON")
    monkeypatch.setenv("OSMGAP_NOW", "2025-01-06T04:00:00Z")
    week1 = _diff(tmp_path, "w1", osm1, cands, tmp_path / "osmgap.sqlite")
    gap_id, gap = next((i, f) for i, f in week1.items() if f["properties"]["kind"] == "missing_road")
    gap_line = gpd.GeoSeries([shape(gap["geometry"])], crs=4326).to_crs("EPSG:3067").iloc[0]
    near = kept.to_crs("EPSG:3067").distance(gap_line) < 10
    redrawn = kept.copy()
    redrawn.loc[near.to_numpy(), "osm_id"] += REDRAWN
    redrawn.to_file(osm2, driver="GeoJSON")
    assert gap_id not in _diff(tmp_path, "plain", osm2, cands, None)  # the edit does rename the gap
    monkeypatch.setenv("OSMGAP_NOW", "2025-01-13T04:00:00Z")
    return week1, gap_id, cands, osm2


def test_a_way_redrawn_beside_a_gap_does_not_make_it_fixed_and_new(tmp_path, kotka, monkeypatch):
    """Ids are anchored on the OSM ways at a gap's ends: a mapper redrawing one of them (a new way
    id, the same line) renamed the gap, and the weekly report said one road fixed and one new."""
    state = tmp_path / "osmgap.sqlite"
    week1, gap_id, cands, osm2 = _week1_and_redrawn(tmp_path, kotka, monkeypatch)
    week2 = _diff(tmp_path, "w2", osm2, cands, state)
    assert set(week2) == set(week1)
    with Store(state, create=False) as store:
        last = store.runs()[-1]
        assert (last["new"], last["fixed"]) == (0, 0)
        assert store.suggestion("kotka", gap_id)["status"] == "open"


def test_a_gap_a_mapper_marked_fixed_keeps_the_verdict_when_its_id_moves(tmp_path, kotka, monkeypatch):
    """A gap answered "Already fixed" on MapRoulette, then a way at its end redrawn: only open,
    published or vanished gaps passed their id on, so the same road came back `new` under its
    new id and was published again, as a second task in the challenge the mapper had closed."""
    from osmgap.core.taskstatus import TaskStatus
    from osmgap.export.report import gather
    from osmgap.workspace.tracking import apply_task_statuses

    state = tmp_path / "osmgap.sqlite"
    week1, gap_id, cands, osm2 = _week1_and_redrawn(tmp_path, kotka, monkeypatch)
    with Store(state) as store:
        apply_task_statuses(store, "kotka", [TaskStatus(1002, 1001, gap_id, 5)])  # Already_Fixed
    week2 = _diff(tmp_path, "w2", osm2, cands, state)
    assert set(week2) == set(week1)
    with Store(state, create=False) as store:
        last = store.runs()[-1]
        assert (last["new"], last["fixed"]) == (0, 0)
        row = store.suggestion("kotka", gap_id)
        assert (row["status"], row["reason"], row["last_seen"]) == ("fixed", "MapRoulette: Already_Fixed", last["time"])
        said = [n for n in gather(store, "kotka").notes if "marked fixed on MapRoulette" in n]
    assert len(said) == 1 and gap_id in said[0]  # still found: the report asks to check OSM


CHICAGO_BBOX = "-87.675,41.862,-87.635,41.885"


def test_gaps_that_more_gps_draws_longer_keep_their_ids(tmp_path, data, monkeypatch):
    """Real Chicago trips, a fifth of the OSM ways deleted: a week with half the trips, then a
    week with all of them. More trips draw some gaps longer, past other ways' ends (a new OSM
    anchor), and join others into one: each was "fixed" (no mapper touched OSM) and "new" again.
    A gap of the first week is now open under its id or its successor's, part of a longer gap of
    the second, or gone with nothing drawn along it."""
    import numpy as np
    from shapely.geometry import mapping

    from osmgap.conflate.gapscore import deletion_experiment
    from osmgap.core.aoi import load_aoi
    from osmgap.sources.osm import load_osm
    from osmgap.workspace.tracking import SAME_ROAD_FRACTION, SAME_ROAD_M

    gps = data / "gps" / "chicago-uic"
    aoi = load_aoi(CHICAGO_BBOX)
    roads = load_osm(f"{gps}/chicago_vertices_osm.txt,{gps}/chicago_edges_osm.txt", aoi, graph_crs="EPSG:32616")
    ways = deletion_experiment(roads, 0.2, seed=0).kept.ways
    osm = tmp_path / "kept.geojson"
    osm.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": mapping(g), "properties": {"osm_id": int(i), "highway": h}}
        for g, i, h in zip(ways.geometry, ways.osm_id, ways.highway)]}))
    trips = sorted((gps / "trips").glob("*.txt"))
    half = tmp_path / "half"
    half.mkdir()
    for k in np.random.default_rng(1).permutation(len(trips))[:len(trips) // 2]:
        (half / trips[k].name).symlink_to(trips[k])
    state = tmp_path / "osmgap.sqlite"

    def week(name: str, traces: Path, now: str) -> dict[str, dict]:
        monkeypatch.setenv("OSMGAP_NOW", now)
        out = tmp_path / name
        assert main(["diff", f"--aoi={CHICAGO_BBOX}", "--name", "chicago", "--osm", str(osm), "--gps", str(traces),
                     "--gps-crs", "EPSG:32616", "--state", str(state), "--out", str(out)]) == 0
        return {f["id"]: f for f in json.loads((out / "suggestions.geojson").read_text())["features"]}

    first = week("w1", half, "2025-01-06T04:00:00Z")
    second = week("w2", gps / "trips", "2025-01-13T04:00:00Z")
    def metric(feature: dict):
        return gpd.GeoSeries([shape(feature["geometry"])], crs=4326).to_crs(32616).iloc[0]

    def along(line, other) -> float:
        return line.intersection(other.buffer(SAME_ROAD_M)).length / line.length

    one, two = ({i: metric(f) for i, f in week.items()} for week in (first, second))
    assert any(two[i].length > 1.2 * one[i].length for i in set(one) & set(two))  # the case this is about
    with Store(state, create=False) as store:
        last = store.runs()[-1]
        for sid, line in one.items():
            row = store.suggestion("chicago", sid)
            if sid in second:
                assert row["status"] == "open"
            elif row["reason"].startswith("part of "):
                host = row["reason"].removeprefix("part of ")
                assert host in second and along(line, two[host]) >= SAME_ROAD_FRACTION
            else:
                assert (row["status"], row["reason"]) == ("fixed", "no longer detected")
                assert all(along(line, other) < SAME_ROAD_FRACTION for other in two.values()), sid
        assert last["fixed"] == sum(store.suggestion("chicago", i)["reason"] == "no longer detected" for i in first)
