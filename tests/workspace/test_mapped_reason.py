"""Why a gap went: "covered by OSM" (a mapper drew it) or "no longer detected" (the diff missed
it), told by the ways new in OSM since the last run; real Kotka OSM, two weekly diffs."""
from __future__ import annotations

import shutil
from pathlib import Path

import geopandas as gpd
import pytest
from shapely.geometry import shape

from osmgap.workspace.store import Store
from tests.workspace.test_successor_ids import REDRAWN, _diff

pytestmark = pytest.mark.slow

SHORT = (74057311, 60273405)  # Majavankatu (a 19 m link) and Sopulinkatu (pieces of 38 m and more)
DELETED = (*SHORT, 74057323)  # and Jaanankatu
SHORT_GAP_M = 60.0  # under about 2 x tolerance + min length, last week's OSM "covered" a gap already


def _week1(tmp_path: Path, kotka, monkeypatch) -> tuple[Path, list[str], gpd.GeoDataFrame]:
    """Week 1's diff of real Kotka without three streets into a state: the candidates, the ids of
    the gaps shorter than SHORT_GAP_M along the deleted streets, and week 1's OSM roads."""
    cands, osm1 = tmp_path / "roads.geojson", tmp_path / "osm1.geojson"
    kotka.ways[["highway", "geometry"]].to_file(cands, driver="GeoJSON")
    kept = kotka.ways[~kotka.ways["osm_id"].isin(DELETED)][["osm_id", "highway", "geometry"]]
    kept.to_file(osm1, driver="GeoJSON")
    monkeypatch.setenv("OSMGAP_NOW", "2025-01-06T04:00:00Z")
    week1 = _diff(tmp_path, "w1", osm1, cands, tmp_path / "osmgap.sqlite")
    deleted = kotka.ways[kotka.ways["osm_id"].isin(SHORT)].to_crs("EPSG:3067").union_all()
    gaps = gpd.GeoSeries([shape(f["geometry"]) for f in week1.values()], index=list(week1), crs=4326)
    gaps = gaps.to_crs("EPSG:3067")
    short = [i for i, g in gaps.items() if g.length < SHORT_GAP_M and deleted.buffer(5.0).contains(g)
             and week1[i]["properties"]["kind"] in ("missing_road", "missing_link")]
    monkeypatch.setenv("OSMGAP_NOW", "2025-01-13T04:00:00Z")
    return cands, short, kept


def _reasons(state: Path, ids: list[str]) -> list[tuple[str, str]]:
    with Store(state, create=False) as store:
        return [(store.suggestion("kotka", i)["status"], store.suggestion("kotka", i)["reason"]) for i in ids]


def test_a_short_gap_a_mapper_drew_is_covered_by_osm(tmp_path, kotka, monkeypatch):
    """A gap joining two ways and shorter than ~60 m lies within their 15 m corridor: last week's
    OSM "covered" it already, so the rule "covered now and not before" called 2 of the 6 roads
    a mapper drew in a week of real Kotka (a 38 m and a 19 m piece) "no longer detected"."""
    cands, short, _ = _week1(tmp_path, kotka, monkeypatch)
    assert len(short) == 2  # the 19 m link and the 38 m piece
    osm2 = tmp_path / "osm2.geojson"
    kotka.ways[["osm_id", "highway", "geometry"]].to_file(osm2, driver="GeoJSON")  # all three mapped
    week2 = _diff(tmp_path, "w2", osm2, cands, tmp_path / "osmgap.sqlite")
    assert not set(short) & set(week2)
    assert _reasons(tmp_path / "osmgap.sqlite", short) == [("fixed", "covered by OSM")] * len(short)


def test_a_short_gap_the_diff_missed_beside_a_redrawn_way_is_no_longer_detected(tmp_path, kotka, monkeypatch):
    """The other way round: OSM unchanged but the ways around the gaps redrawn (new ids, the
    same lines), and the gaps not found (the evidence lost them): no road was drawn there, so
    "no longer detected" (it reopens if found again), not "covered by OSM"."""
    cands, short, kept = _week1(tmp_path, kotka, monkeypatch)
    deleted = kotka.ways[kotka.ways["osm_id"].isin(SHORT)]
    near = kept.to_crs("EPSG:3067").distance(deleted.to_crs("EPSG:3067").union_all()) < 10
    assert near.sum() >= 2
    redrawn = kept.copy()
    redrawn.loc[near.to_numpy(), "osm_id"] += REDRAWN
    osm2, cands2 = tmp_path / "osm2.geojson", tmp_path / "roads2.geojson"
    redrawn.to_file(osm2, driver="GeoJSON")
    kotka.ways[~kotka.ways["osm_id"].isin(SHORT)][["highway", "geometry"]].to_file(cands2, driver="GeoJSON")
    shutil.copy(cands2, cands)
    week2 = _diff(tmp_path, "w2", osm2, cands, tmp_path / "osmgap.sqlite")
    assert not set(short) & set(week2)
    assert _reasons(tmp_path / "osmgap.sqlite", short) == [("fixed", "no longer detected")] * len(short)
