"""Railways are ways OSM maps as something other than a road (osmgap.core.osmtags.OTHER_LINES):
a road source or a model that shows a real railway of Helsinki as a road gets nothing back, each
left out counted as ``railway=rail``; a real street beside the railway, and the real streets the
trams run in (trams are not read: their tracks lie inside streets), are still suggested when
deleted from OSM. Railways meet a line on its own level only (osmgap.conflate.otherways.
OWN_LEVEL_ONLY): the metro tunnel under Kaivokatu hides no street above it, BART's viaduct over
West Oakland's 7th Street no surface line of a levelled source."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import geopandas as gpd
import numpy as np
import osmium
import pytest
import shapely
from shapely.geometry import box

from osmgap.conflate.conflate import NEW_ROAD_KINDS
from osmgap.conflate.otherways import along_other_ways
from osmgap.conflate.params import ConflateParams
from osmgap.core.aoi import Aoi, reproject
from osmgap.core.datamodel import WGS84, RoadNetwork
from osmgap.core.osmtags import mapped_otherwise
from osmgap.sources.osm import load_osm
from tests.roads import as_candidates, run, without

CRS = "EPSG:3067"  # ETRS-TM35FIN, metres
OAKLAND_CRS = "EPSG:32610"  # UTM 10N
PARAMS = ConflateParams()
# real ways of the extracts, found by their tags and geometry (tests/conflate/test_railways.py's figures)
BESIDE_RAIL = 26448687  # Kaisaniemen puistokuja, 115 m, 15-30 m from the main line along all of it
# Aleksanterinkatu (191 m), Bulevardi (98 m), Mikonkatu (83 m), Vilhonkatu (97 m): tracks in them
TRAM_STREETS = (166170099, 76334539, 14472965, 35107025)
OVER_METRO = 30259739  # Kaivokatu: the metro runs under it at layer -4
SEVENTH_STREET = 202455449  # West Oakland's 7th Street, under BART's aerial (railway=subway, layer 1)
BART = 50969015


def _file_ways(path: Path, keep) -> dict[int, tuple[dict, shapely.LineString]]:
    """The ways of a real extract whose tags ``keep`` accepts, read with osmium alone: id -> (tags,
    the line through the nodes the file has: some are cut at its edge)."""
    out = {}
    processor = (osmium.FileProcessor(str(path), osmium.osm.NODE | osmium.osm.WAY).with_locations()
                 .with_filter(osmium.filter.EntityFilter(osmium.osm.WAY)))
    for w in processor:
        tags = dict(w.tags)
        known = [(n.lon, n.lat) for n in w.nodes if n.location.valid()]
        if keep(tags) and len(known) >= 2:
            out[w.id] = tags, shapely.LineString(known)
    return out


@pytest.fixture(scope="module")
def rails(data: Path) -> dict[int, tuple[dict, shapely.LineString]]:
    """Helsinki's surface railway lines (rail, abandoned): the main line into the central station."""
    found = _file_ways(data / "osm" / "helsinki.osm.pbf",
                       lambda t: t.get("railway") in ("rail", "abandoned") and not t.get("tunnel"))
    assert len(found) >= 100
    return found


@pytest.fixture(scope="module")
def trams(data: Path) -> dict[int, tuple[dict, shapely.LineString]]:
    found = _file_ways(data / "osm" / "helsinki.osm.pbf", lambda t: t.get("railway") == "tram")
    assert len(found) >= 100
    return found


@pytest.fixture(scope="module")
def oakland(data: Path) -> RoadNetwork:
    path = data / "osm" / "west-oakland.osm"
    return load_osm(str(path), Aoi(box(-180, -85, 180, 85), name="everywhere", source=str(path)))


def _lines(ways: dict[int, tuple[dict, shapely.LineString]]) -> gpd.GeoDataFrame:
    """Lines of a source that holds them as roads of no known class (as a road model gives them)."""
    return gpd.GeoDataFrame({"confidence": 0.75, "highway": "road"},
                            index=range(len(ways)), geometry=[g for _, g in ways.values()], crs=WGS84)


def _metric(lines, crs: str = CRS) -> np.ndarray:
    return reproject(np.asarray(list(lines), dtype=object), WGS84, crs)


def _new_roads(result) -> np.ndarray:
    return _metric(s.geometry for s in result.suggestions if s.kind in NEW_ROAD_KINDS)


def _share_near(lines: np.ndarray, other: np.ndarray, within_m: float = 10.0) -> np.ndarray:
    """Per line: the share of its length within ``within_m`` of ``other``."""
    near = shapely.union_all(shapely.buffer(other, within_m))
    return np.array([shapely.intersection(g, near).length / g.length for g in lines])


def _deleted(helsinki: RoadNetwork, ids: list[int]) -> RoadNetwork:
    """Helsinki with these streets deleted, its other ways (footways, railways...) as the reader gave them."""
    return replace(without(helsinki, ids), other_ways=helsinki.other_ways)


def test_a_source_holding_the_railways_gets_none_back(helsinki, rails):
    """Measured: before railways were read, 80 missing roads came back along them."""
    result = run(_lines(rails), helsinki, helsinki, PARAMS)
    on_rails = _share_near(_new_roads(result), _metric(g for _, g in rails.values())) >= 0.5
    assert not on_rails.any(), f"{on_rails.sum()} suggestions along mapped railways"
    left_out = result.report["mapped_otherwise"]
    assert left_out.get("railway=rail", 0) >= 20 and result.report["dropped"]["along_way_mapped_otherwise"] >= 20


def test_a_street_beside_the_railway_is_still_suggested(helsinki, rails):
    street = helsinki.ways[helsinki.ways.osm_id == BESIDE_RAIL]
    assert len(street) == 1
    line = _metric(street.geometry)[0]
    rail_lines = _metric(g for _, g in rails.values())
    gaps = shapely.distance(shapely.line_interpolate_point(line, np.linspace(0.0, line.length, 20)),
                            shapely.union_all(rail_lines))
    assert gaps.min() >= 15.0 and gaps.max() <= 30.0  # beside it, all along
    candidates = pd_concat(_lines(rails), as_candidates(helsinki.ways, classed=False))  # every road, and the rails
    result = run(candidates, _deleted(helsinki, [BESIDE_RAIL]), helsinki, PARAMS)
    new = _new_roads(result)
    assert _share_near(np.array([line]), new)[0] >= 0.9  # found again
    assert not (_share_near(new, rail_lines) >= 0.5).any()  # and the railway left out
    assert result.report["mapped_otherwise"].get("railway=rail", 0) >= 20


def test_tram_streets_are_still_suggested(helsinki, rails, trams):
    """Streets with tram tracks in them, deleted from OSM and given back with every road, the
    railways and the tram lines (as a model sees them all): found again, though the tram lines run
    along them; railways proper are still left out. Measured: with trams read, none of the four."""
    streets = helsinki.ways[helsinki.ways.osm_id.isin(TRAM_STREETS)]
    assert len(streets) == len(TRAM_STREETS)
    lines = _metric(streets.geometry)
    assert (_share_near(lines, _metric(g for _, g in trams.values()), 3.0) >= 0.9).all()  # the tracks lie in them
    candidates = pd_concat(_lines(rails), _lines(trams), as_candidates(helsinki.ways, classed=False))
    result = run(candidates, _deleted(helsinki, list(TRAM_STREETS)), helsinki, PARAMS)
    assert (_share_near(lines, _new_roads(result)) >= 0.9).all()
    left_out = result.report["mapped_otherwise"]
    assert "railway=tram" not in left_out and left_out.get("railway=rail", 0) >= 20


def pd_concat(*frames: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    import pandas as pd

    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=WGS84)


def test_the_metro_meets_a_line_on_its_own_level_only(helsinki):
    """The metro runs at layer -4 under Kaivokatu: a levelled source's tunnel line along it is
    that metro, while evidence that cannot tell levels along Kaivokatu is the street above."""
    others = helsinki.other_ways
    metro = others[others.what == "railway=subway"]
    assert len(metro) >= 2 and set(metro.level) == {-4}
    tunnel = [shapely.offset_curve(g, 1.5) for g in _metric(metro.geometry)]
    tunnel_wgs = list(reproject(np.asarray(tunnel, dtype=object), CRS, WGS84))
    found = along_other_ways(tunnel_wgs, [-4] * len(tunnel), others, CRS, 12.0, 0.5, 30.0, 4.0)
    assert [f and f[0] for f in found] == ["railway=subway"] * len(tunnel)
    above = along_other_ways(tunnel_wgs, [0] * len(tunnel), others, CRS, 12.0, 0.5, 30.0, 4.0)
    assert not [f for f in above if f and f[0].startswith("railway=")]
    street = helsinki.ways[helsinki.ways.osm_id == OVER_METRO].geometry
    assert _share_near(_metric(street), _metric(metro.geometry), 12.0)[0] >= 0.5  # it lies over the metro
    assert along_other_ways(list(street), None, others, CRS, 12.0, 0.5, 30.0, 4.0) == [None]


def test_a_viaduct_hides_no_levelled_street_under_it(oakland):
    """BART's aerial (railway=subway, bridge, layer 1) runs over 7th Street: a levelled source's
    surface line there is the street; one on level 1, or evidence that cannot tell levels (what
    imagery sees from above is the viaduct), is BART."""
    others = oakland.other_ways
    bart = others[others.osm_id == BART]
    assert list(bart.what) == ["railway=subway"] and list(bart.level) == [1]
    street = list(oakland.ways[oakland.ways.osm_id == SEVENTH_STREET].geometry)
    assert _share_near(_metric(street, OAKLAND_CRS), _metric(bart.geometry, OAKLAND_CRS), 12.0)[0] >= 0.9
    assert along_other_ways(street, [0], others, OAKLAND_CRS, 12.0, 0.5, 30.0, 4.0) == [None]
    assert along_other_ways(street, [1], others, OAKLAND_CRS, 12.0, 0.5, 30.0, 4.0) == [("railway=subway", BART)]
    assert along_other_ways(street, None, others, OAKLAND_CRS, 12.0, 0.5, 30.0, 4.0) == [("railway=subway", BART)]


def test_which_railways_are_mapped_otherwise(rails, trams, data: Path):
    """On real tags: a rail line is; one embedded in a street (Key:embedded), a tram line and a
    platform are not."""
    tags = next(t for t, _ in rails.values() if t["railway"] == "rail")
    assert mapped_otherwise(tags) == "railway=rail"
    assert mapped_otherwise({**tags, "embedded": "no"}) == "railway=rail"
    assert mapped_otherwise({**tags, "embedded": "yes"}) is None
    assert {mapped_otherwise(t) for t, _ in trams.values()} == {None}
    platforms = _file_ways(data / "osm" / "helsinki.osm.pbf", lambda t: t.get("railway") == "platform" and "highway" not in t)
    assert platforms and {mapped_otherwise(t) for t, _ in platforms.values()} == {None}
