"""Missing connections (osmgap.gps.connections) from real Chicago UIC shuttle trips resampled to
60-90 s, against the real OSM graph of the area: a complete map yields (almost) none; a deleted
driven way is reported between two nodes, left out of the JOSM file, kept in GeoJSON."""
from __future__ import annotations

import json

import numpy as np
import pytest
import shapely
from shapely.geometry import LineString, box

from osmgap.core.aoi import Aoi, reproject
from osmgap.core.datamodel import WGS84
from osmgap.core.traces import resample
from osmgap.export.geojson import suggestions_feature_collection
from osmgap.export.josm import osm_xml
from osmgap.gps.connections import KIND
from osmgap.gps.discovery import discovery_grid, matched_evidence
from osmgap.tools.summary_lines import summary_lines
from tests.gps.test_gps_matching import _network

CRS = "EPSG:32616"


@pytest.fixture(scope="module")
def setting(chicago_ways, chicago_traces):
    aoi = Aoi(box(*reproject(box(*chicago_ways.total_bounds), CRS, WGS84).bounds), name="chicago", source="test")
    area = aoi.to_metric(aoi.geometry)
    return area, discovery_grid(area.bounds, aoi.metric_crs), chicago_traces.to_crs(aoi.metric_crs)


@pytest.mark.parametrize("seconds", [60.0, 90.0])
def test_complete_map_gives_almost_no_missing_connection(chicago_ways, setting, seconds):
    """Item 8 of issue 16: every real trip, resampled, on the complete graph."""
    area, grid, traces = setting
    found = matched_evidence(resample(traces, seconds), _network(chicago_ways), grid, known=area)
    assert len(found.unexplained.detour_a) > 0  # the sparse traces do detour: the clustering is what holds
    assert len(found.connections) <= 3  # measured: 2 at 60 s, 3 at 90 s (seed-free: every trip)


def test_deleted_driven_ways_become_connections_between_nodes(chicago_ways, setting):
    """Delete a third of the driven ways over 150 m; at 90 s connections are found, each between two
    existing nodes of the kept graph, from >= 2 distinct trips. (How many are right is the bench's
    figure, bench/gps.py: on this deletion it is low, 0 of 2, and not asserted here.)"""
    area, grid, traces = setting
    ways = chicago_ways.reset_index(drop=True)
    fixes = shapely.points(traces.x, traces.y)
    hits = shapely.STRtree(ways.geometry.values).query(fixes, predicate="dwithin", distance=8.0)
    trips = np.zeros(len(ways))
    for w in np.unique(hits[1]):
        trips[w] = len(np.unique(traces.trip[hits[0][hits[1] == w]]))
    driven = (trips >= 5) & (ways.geometry.length.to_numpy() >= 150)
    gone = np.flatnonzero(driven)[::3]
    kept = _network(ways.drop(index=gone))
    found = matched_evidence(resample(traces, 90.0), kept, grid, known=area)
    assert len(found.connections) >= 1
    vertices = shapely.points(shapely.get_coordinates(kept.ways.to_crs(CRS).geometry.values))
    for c in found.connections:
        assert shapely.distance(vertices, shapely.Point(c.a)).min() < 0.01  # an existing node, not a fix
        assert shapely.distance(vertices, shapely.Point(c.b)).min() < 0.01
        assert LineString([c.a, c.b]).length > 0
        assert len(set(c.trip_ids)) == len(c.trip_ids) >= 2
        assert c.detour_m >= 200
    suggestions = found.connection_suggestions(CRS)
    s = suggestions[0]
    assert s.kind == KIND and len(s.geometry.coords) == 2
    assert s.evidence["geometry"] == "unknown" and s.evidence["trips"] == len(s.evidence["trip_ids"]) >= 2
    assert reproject(s.geometry, WGS84, CRS).distance(shapely.Point(found.connections[0].a)) < 1.0
    # never a way in the JOSM file; kept in GeoJSON with its instruction
    xml = osm_xml(suggestions, tuple(area.bounds))
    assert b"<way" not in xml
    props = suggestions_feature_collection(suggestions)["features"][0]["properties"]
    assert props["kind"] == KIND and props["evidence_geometry"] == "unknown"
    assert "Trace it from imagery" in props["evidence_instruction"]
    json.dumps(props, allow_nan=False)


def test_summary_names_missing_connections(tmp_path):
    lines = summary_lines({"suggestions": 2, "km_suggested": 0.0, "by_kind": {KIND: 2}, "coverage": {}}, tmp_path)
    assert any("2 missing connections" in line and "not in suggestions.osm" in line for line in lines)


def test_diff_reports_connections_unless_told_not_to_and_never_in_the_osm_file(chicago_gps, chicago_ways,
                                                                              chicago_traces, tmp_path):
    """`osmgap diff --gps` end to end: every real trip resampled to 90 s (a CSV), a third of the long
    driven ways deleted from the real graph. The connections reach suggestions.geojson and the
    summary, never suggestions.osm; with --no-gps-connections there are none."""
    import pandas as pd

    from osmgap.cli import main

    sparse = resample(chicago_traces, 90.0)
    csv = tmp_path / "trips.csv"
    pd.DataFrame({"x": sparse.x, "y": sparse.y, "time": sparse.t, "trip": sparse.trip}).to_csv(csv, index=False)
    ways = chicago_ways.reset_index(drop=True)
    long_ways = ways[ways.geometry.length >= 150]
    kept = ways.drop(long_ways.index[::3])
    kept.to_crs(WGS84).to_file(tmp_path / "osm.geojson", driver="GeoJSON")
    bbox = ",".join(f"{v:.6f}" for v in reproject(box(*ways.total_bounds), CRS, WGS84).bounds)
    runs = {}
    for flag in (["--no-gps-connections"], []):
        out = tmp_path / ("without" if flag else "with")
        assert main(["diff", f"--aoi={bbox}", "--osm", str(tmp_path / "osm.geojson"), "--gps", str(csv),
                     "--gps-crs", CRS, "--out", str(out), *flag]) == 0
        feats = json.loads((out / "suggestions.geojson").read_text())["features"]
        runs[not flag] = (out, [f for f in feats if f["properties"]["kind"] == KIND], feats)
    assert runs[False][1] == []
    out, connections, feats = runs[True]
    summary = json.loads((out / "summary.json").read_text())
    assert len(connections) == summary["by_kind"].get(KIND, 0) > 0
    # the km of road suggested leave out the straight lines between two nodes: their road's geometry is unknown
    drawn_km = sum(f["properties"]["length_m"] for f in feats if f["properties"]["kind"] != KIND) / 1000
    assert summary["km_suggested"] == pytest.approx(drawn_km, abs=0.002)
    assert sum(f["properties"]["length_m"] for f in connections) / 1000 > 0.2
    osm = (out / "suggestions.osm").read_text()
    assert osm.count("<way") == len(feats) - len(connections)  # each drawn suggestion is a way; connections are not


def _unexplained(off: np.ndarray):
    """Fixes off the map where ``off`` says, and no evidence step."""
    from osmgap.gps.evidence import Unexplained

    empty = np.zeros(0, np.int64)
    return Unexplained(empty, empty, empty, empty, np.zeros(0), 25.0, off)


@pytest.mark.parametrize("case,drawn", [("lined up", True), ("one trip", False), ("a 150 m gap", False),
                                        ("scattered", False)])
def test_a_connection_is_drawn_straight_only_where_several_trips_fixes_chain_its_line(case, drawn):
    """Mechanics only (no claim about roads): a connection 400 m long between (0, 0) and (400, 0), and
    off-map fixes of sparse trips. Drawn when those of >= 2 trips lie along the line with no gap over
    100 m (ends included) and are most of the fixes around it; otherwise it stays a connection."""
    from osmgap.core.traces import from_arrays
    from osmgap.gps.connections import Connection, traced_straight

    rng = np.random.default_rng(0)
    x = np.r_[np.arange(40.0, 400.0, 80.0), np.arange(80.0, 400.0, 80.0)]  # two trips, every 80 m
    y = rng.uniform(-5, 5, len(x))
    trip = np.r_[np.zeros(5, int), np.ones(4, int)]
    if case == "one trip":
        trip[:] = 0
    if case == "a 150 m gap":
        keep = (x < 130) | (x > 280)
        x, y, trip = x[keep], y[keep], trip[keep]
    if case == "scattered":  # a car park's fixes around the line as well
        x = np.r_[x, rng.uniform(0, 400, 30)]
        y = np.r_[y, rng.choice([-1, 1], 30) * rng.uniform(15, 35, 30)]
        trip = np.r_[trip, rng.integers(2, 10, 30)]
    traces = from_arrays(x, y, "EPSG:32616", trip=trip)
    c = Connection(1, 2, (0.0, 0.0), (400.0, 0.0), 600.0, [0, 1])
    lines, rest = traced_straight([c], traces, _unexplained(np.ones(len(x), bool)))
    assert (len(lines), len(rest)) == ((1, 0) if drawn else (0, 1))
    if drawn:
        assert lines[0][0] is c and lines[0][1].tolist() == [0, 1]


def test_a_traced_line_is_counted_once_per_trip_all_along_however_long():
    """Mechanics only: the evidence counts of a 400 m traced line (longer than any chord drawn)."""
    from osmgap.core.traces import from_arrays
    from osmgap.gps.discovery import DiscoveryParams, unexplained_paths

    traces = from_arrays(np.array([0.0]), np.array([0.0]), "EPSG:32616", trip=np.array([0]))
    grid = discovery_grid((-50.0, -50.0, 450.0, 50.0), "EPSG:32616")
    traced = [((0.0, 0.0), (400.0, 0.0), np.array([3, 7]))]
    counts = unexplained_paths(traces, _unexplained(np.zeros(1, bool)), traced=traced).counts(grid, DiscoveryParams().density)
    inverse = ~grid.transform
    along = [counts[int(r), int(c)] for c, r in (inverse @ (x, 0.0) for x in range(5, 400, 10))]
    assert min(along) == max(along) == 2  # every stretch, both trips, each once
    assert counts.max() == 2
