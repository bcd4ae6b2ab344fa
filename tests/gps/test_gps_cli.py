"""`osmgap diff --gps` end to end on real data: the Chicago UIC OSM graph (real, merged into
ways by osmgap.sources.mapgraph) with some real ways deleted, and the 889 real shuttle trips.

1. GPS only (no imagery): the traces find the deleted roads the shuttles drove.
2. GPS beside other evidence: the real ways given back as ``--candidates`` (there is no imagery
   of Chicago here; the GPS step after conflation is the same for every evidence), and every
   suggestion carries its GPS support; the one the shuttles drove is confirmed, the ones
   nobody drove are demoted.
3. Imagery + GPS on the Paris sample: plumbing only, with SYNTHETIC traces (see its docstring)."""
from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from shapely.ops import substring

from osmgap.core.aoi import reproject
from osmgap.gps.density import TrafficIndex
from tests.cli import osmgap_cli
from tests.josm import josm_validate, severity

pytestmark = pytest.mark.slow

CRS = "EPSG:32616"
CAMPUS = shapely.box(444700.0, 4635000.0, 445700.0, 4636100.0)
# real ways the shuttles drive (128 m and 126 m); and one (404 m) they drive too, but it is one
# carriageway of a dual carriageway whose other half stays mapped 15-20 m beside it (two-way, as this
# graph has no oneway tags): the density ridge cannot tell the halves apart, but one direction of
# traffic keeps beside the kept half while the other drives on it (osmgap.gps.carriageways)
DRIVEN = (5411, 8278)
DUAL = 5400
OUTPUTS = {"maproulette.geojson", "overview.png", "suggestions.geojson", "suggestions.osm", "summary.json"}



@pytest.fixture(scope="module")
def area(chicago_ways, chicago_traces, tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("chicago")
    ways = chicago_ways[chicago_ways.intersects(CAMPUS.buffer(300))]
    inner = ways[ways.within(CAMPUS.buffer(-100)) & (ways.length >= 60)]
    index = TrafficIndex(chicago_traces)
    idle = [k for k, g in zip(inner.osm_id, inner.geometry)  # nobody on it, traffic at its junctions
            if index.along(substring(g, 25.0, g.length - 25.0)).points == 0 and _junction_trips(index, g) >= 5][:3]
    deleted = ways[ways.osm_id.isin(DRIVEN + (DUAL,) + tuple(idle))]
    assert len(idle) >= 2 and len(deleted) == 3 + len(idle)
    ways[~ways.osm_id.isin(deleted.osm_id)].to_crs("EPSG:4326").to_file(d / "osm.geojson", driver="GeoJSON")
    ways[["highway", "geometry"]].to_crs("EPSG:4326").to_file(d / "roads.geojson", driver="GeoJSON")
    bbox = ",".join(f"{v:.6f}" for v in reproject(CAMPUS, CRS, "EPSG:4326").bounds)
    return {"dir": d, "bbox": bbox, "deleted": deleted.set_index("osm_id").geometry, "idle": idle}


def _junction_trips(index: TrafficIndex, line) -> int:
    """Distinct trips within 20 m of either end of ``line``: traffic that could have turned onto it."""
    near = index.tree.query_ball_point(np.asarray(line.coords)[[0, -1]], 20.0)
    return len(np.unique(index.traces.trip[np.concatenate([np.asarray(h, np.int64) for h in near])]))


def _near_share(line_m, lines: list, radius: float = 15.0) -> float:
    if not lines:
        return 0.0
    return shapely.intersection(line_m, shapely.union_all(lines).buffer(radius)).length / line_m.length


def _features(out: Path) -> list[dict]:
    return json.loads((out / "suggestions.geojson").read_text())["features"]


def _metric(features: list[dict]) -> list:
    return _metric_in([f for f in features if f["geometry"]["type"] == "LineString"], CRS)


def test_gps_only_diff_finds_the_deleted_driven_roads(area, chicago_gps, tmp_path):
    out = tmp_path / "out"
    proc = osmgap_cli("diff", f"--aoi={area['bbox']}", "--osm", str(area["dir"] / "osm.geojson"),
                   "--gps", str(chicago_gps / "trips"), "--gps-crs", CRS, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"{len(_features(out))} suggestions")  # the matcher's own log stays off stdout
    assert "[info]" not in proc.stdout + proc.stderr and len(proc.stdout.splitlines()) <= 6
    assert OUTPUTS <= {p.name for p in out.iterdir()}
    with rasterio.open(out / "probability.tif") as src:  # the trips' likelihood, as the README's outputs say
        assert src.res == (4.0, 4.0) and src.crs == CRS and src.read(1).max() > 128
    s = json.loads((out / "summary.json").read_text())
    assert s["evidence"] == "gps" and s["gps"]["files"] == 889 and s["gps"]["points_read"] == 118_360
    # the benchmark's graph says no way is oneway: the second-carriageway check is blind, and says so
    assert any("no OSM road here is oneway" in w for w in s["warnings"]) and "no OSM road here is oneway" in proc.stderr
    feats = _features(out)
    lines = _metric(feats)
    assert s["suggestions"] == len(feats) > 0
    assert sum(s["gps"][k] for k in ("confirmed", "demoted", "unchanged", "no_coverage")) == len(lines)
    assert all(f["properties"]["evidence_source"] == "GPS traces" for f in feats)
    for way in DRIVEN:
        assert _near_share(area["deleted"][way], lines) >= 0.7, way
    assert _near_share(area["deleted"][DUAL], lines) >= 0.7
    twins = [f for f in feats if f["properties"].get("evidence_second_carriageway_of") is not None]
    assert twins and all("oneway=yes" in f["properties"]["evidence_instruction"] for f in twins)
    assert s["gps_matching"]["second_carriageways"] >= len(twins)
    ways = ET.parse(out / "suggestions.osm").getroot().findall("way")  # twins drawn like any missing road ...
    assert len(ways) == sum(f["properties"]["kind"] in ("missing_road", "missing_link") for f in feats)
    fixmes = [t.get("v") for w in ways for t in w.findall("tag") if t.get("k") == "fixme"]
    assert sum("oneway=yes" in f for f in fixmes) == len(twins)  # ... saying what to check
    assert [i for i in josm_validate(out / "suggestions.osm", tmp_path) if severity(i) == "Errors"] == []  # ... valid
    on_deleted = sum(_near_share(line, list(area["deleted"].values)) * line.length for line in lines)
    assert on_deleted >= 0.5 * sum(line.length for line in lines)  # most suggested length is a deleted road


def test_gps_memory_matches_in_tiles_and_finds_the_same_roads(area, chicago_gps, tmp_path):
    """The same campus diff with the route table held to 1 MB (``--gps-memory 1``): the run says it
    matched in tiles and still finds the deleted roads the shuttles drove."""
    out = tmp_path / "out"
    proc = osmgap_cli("diff", f"--aoi={area['bbox']}", "--osm", str(area["dir"] / "osm.geojson"),
                      "--gps", str(chicago_gps / "trips"), "--gps-crs", CRS, "--gps-memory", "1", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "GPS matching in" in proc.stderr and "km tiles" in proc.stderr
    s = json.loads((out / "summary.json").read_text())
    assert s["gps_matching"]["route_table_budget_mb"] == 1.0
    lines = _metric(_features(out))
    for way in DRIVEN:
        assert _near_share(area["deleted"][way], lines) >= 0.7, way
    bad = osmgap_cli("diff", f"--aoi={area['bbox']}", "--osm", str(area["dir"] / "osm.geojson"),
                     "--gps", str(chicago_gps / "trips"), "--gps-crs", CRS, "--gps-memory", "0", "--out", str(tmp_path / "no"))
    assert bad.returncode == 2 and "--gps-memory" in bad.stderr and not (tmp_path / "no").exists()


def test_gps_evidence_over_a_large_area_is_drawn_by_tiles(area, chicago_gps, tmp_path, monkeypatch):
    """Traces whose evidence grid is larger than a diff holds in one piece are drawn by tiles
    (osmgap.scale.gps_tiles; here the threshold and the tiles shrunk so the campus needs 256 m
    tiles): the run says so, and the deleted roads the shuttles drove are still found."""
    import osmgap.scale.gps_tiles as gps_tiles
    import osmgap.scale.options as options
    from osmgap.cli import main

    monkeypatch.setattr(options, "self_tiling", lambda pixels: options.ScaleOptions(workers=0, tile_px=64))
    calls: list[dict] = []
    drawn = gps_tiles.draw_by_tiles
    monkeypatch.setattr(gps_tiles, "draw_by_tiles", lambda *a, **k: calls.append(k) or drawn(*a, **k))
    out = tmp_path / "out"
    assert main(["diff", f"--aoi={area['bbox']}", "--osm", str(area["dir"] / "osm.geojson"), "--gps",
                 str(chicago_gps / "trips"), "--gps-crs", CRS, "--out", str(out)]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["self_tiled"] and calls == [{"tile_px": 64}]
    assert s["grid"]["width"] > 3 * 64 and s["grid"]["height"] > 64  # several tiles
    lines = _metric(_features(out))
    for way in (*DRIVEN, DUAL):
        assert _near_share(area["deleted"][way], lines) >= 0.7, way


def _one_trip_diff(rows: str, chicago_ways, tmp_path: Path) -> tuple[subprocess.CompletedProcess, dict]:
    """GPS-only diff of one trip file (mapconstruction rows) on the complete real Chicago graph."""
    (tmp_path / "trips").mkdir()
    (tmp_path / "trips" / "trip.txt").write_text(rows)
    chicago_ways.to_crs("EPSG:4326").to_file(tmp_path / "osm.geojson", driver="GeoJSON")
    trip = np.loadtxt(tmp_path / "trips" / "trip.txt")
    extent = shapely.box(trip[:, 0].min(), trip[:, 1].min(), trip[:, 0].max(), trip[:, 1].max()).buffer(200.0)
    bbox = ",".join(f"{v:.6f}" for v in reproject(extent, CRS, "EPSG:4326").bounds)
    out = tmp_path / "out"
    proc = osmgap_cli("diff", f"--aoi={bbox}", "--osm", str(tmp_path / "osm.geojson"), "--gps", str(tmp_path / "trips"),
                      "--gps-crs", CRS, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return proc, json.loads((out / "summary.json").read_text())


def test_a_trip_the_map_explains_gives_nothing_and_says_why(chicago_gps, chicago_ways, tmp_path):
    """One real trip (trip 0) on the complete Chicago graph: it keeps to mapped roads, so GPS-only
    discovery suggests nothing, and the last line says the map explains every trip (it crashed
    with an IndexError when no fix at all was off the map)."""
    proc, s = _one_trip_diff((chicago_gps / "trips" / "trip_0.txt").read_text(), chicago_ways, tmp_path)
    assert s["suggestions"] == 0 and s["gps"]["trips"] == 1 and s["gps_matching"]["off_map_steps"] == 0
    assert s["gps_matching"]["matched_share"] > 0.9
    assert [w for w in s["warnings"] if "no OSM road here is oneway" not in w] == []  # the graph has no oneway
    assert "the mapped roads explain every trip (1 trip," in proc.stdout


def test_a_trip_out_of_time_order_is_not_called_explained(chicago_gps, chicago_ways, tmp_path):
    """The same real trip with its rows in reverse order: every step goes back in time, so every
    fix is cut off alone and none is matched. That is no evidence that the map explains the trip
    (the last line said it did, at 0 % of the fixes matched): the file is named, the summary
    warns, and the last line asks whether the fixes are in time order."""
    rows = (chicago_gps / "trips" / "trip_0.txt").read_text().splitlines()
    proc, s = _one_trip_diff("\n".join(reversed(rows)) + "\n", chicago_ways, tmp_path)
    assert s["suggestions"] == 0 and s["gps_matching"]["matched_share"] == 0.0
    assert s["gps_matching"]["steps_back_in_time"] == len(rows) - 1
    assert "trip.txt" in proc.stderr and "go back in time" in proc.stderr
    assert any("go back in time" in w for w in s["warnings"])
    assert "explain every trip" not in proc.stdout
    assert "are the fixes of each trip in time order?" in proc.stdout


def test_gps_evidence_on_candidate_suggestions(area, chicago_gps, tmp_path):
    out = tmp_path / "out"
    proc = osmgap_cli("diff", f"--aoi={area['bbox']}", "--osm", str(area["dir"] / "osm.geojson"),
                   "--candidates", str(area["dir"] / "roads.geojson"),
                   "--gps", str(chicago_gps / "trips"), "--gps-crs", CRS, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    s = json.loads((out / "summary.json").read_text())
    assert s["evidence"] == "candidates" and s["gps"]["confirmed"] >= 1 and s["gps"]["demoted"] >= 1
    feats = [f for f in _features(out) if f["geometry"]["type"] == "LineString"]
    verdict = {}
    for f, line in zip(feats, _metric(feats)):
        p = f["properties"]
        assert {"evidence_gps_verdict", "evidence_gps_trips", "evidence_gps_trips_passing",
                "evidence_gps_support"} <= set(p)
        way = next((k for k, g in area["deleted"].items() if _near_share(line, [g], 5.0) > 0.8), None)
        if way is not None:
            verdict[way] = (p["evidence_gps_verdict"], p["confidence"], p["evidence_confidence_before_gps"],
                            p["evidence_gps_beside_mapped"])
    driven = [verdict[k] for k in DRIVEN if k in verdict]
    assert driven and all(v == "confirmed" and c > b for v, c, b, _ in driven)
    # the deleted carriageway lies beside its kept twin, which this graph does not tag oneway: for a
    # precise source that is the same road drawn a few metres off (osmgap.conflate.alignment)
    assert DUAL not in verdict
    idle = [verdict[k] for k in area["idle"] if k in verdict and not verdict[k][3]]  # beside a mapped road: never demoted
    assert idle and all(v == "demoted" and c == pytest.approx(b / 2, abs=0.002) for v, c, b, _ in idle)


def test_gps_evidence_with_imagery_plumbing_only(paris, paris_aoi, tmp_path):
    """PLUMBING ONLY, NOT ACCURACY: the traces here are SYNTHETIC (no real GPS covers any imagery
    in the data directory). Real imagery and real OSM of the sample AOI, the two longest streets
    deleted from OSM as in test_cli_diff; a GPX drives along the real OSM geometry of those streets
    and of a kept one, so the imagery's suggestions on the deleted streets must come out with
    GPS support in suggestions.geojson and the counts in summary.json."""
    ways = gpd.read_file(paris / "osm_roads.geojson")
    metric = ways.to_crs(paris_aoi.metric_crs)
    order = metric.geometry.length.sort_values(ascending=False).index
    edited = tmp_path / "osm.geojson"
    ways.drop(index=order[:2]).to_file(edited, driver="GeoJSON")
    gpx = tmp_path / "synthetic.gpx"
    segs = []
    for k in order[:3]:
        line = metric.geometry.loc[k]
        pts = [line.interpolate(d) for d in np.arange(0, line.length, 8.0)]  # ~8 m/s, one point a second
        lonlat = reproject(shapely.MultiPoint(pts), paris_aoi.metric_crs, "EPSG:4326").geoms
        for trip in range(3):
            segs.append("<trkseg>" + "".join(
                f'<trkpt lat="{p.y:.7f}" lon="{p.x:.7f}"><time>2024-05-0{trip + 1}T10:00:{i % 60:02d}Z</time></trkpt>'
                for i, p in enumerate(lonlat)) + "</trkseg>")
    gpx.write_text('<gpx version="1.1" xmlns="http://www.topografix.com/GPX/1/1"><trk>' + "".join(segs) + "</trk></gpx>")
    out = tmp_path / "out"
    proc = osmgap_cli("diff", "--aoi", str(paris / "aoi.geojson"), "--imagery", str(paris / "image.tif"),
                   "--osm", str(edited), "--gps", str(gpx), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    s = json.loads((out / "summary.json").read_text())
    assert s["evidence"] == "imagery" and s["gps"]["trips"] == 9 and s["gps"]["confirmed"] >= 1
    feats = [f for f in _features(out) if f["geometry"]["type"] == "LineString"]
    deleted = shapely.union_all(metric.geometry.loc[order[:2]].values)
    on_deleted = [f for f, g in zip(feats, _metric_in(feats, paris_aoi.metric_crs))
                  if g.intersection(deleted.buffer(15)).length > 0.8 * g.length]
    # a shorter fragment may have no fix clear of the roads at its junctions: not confirmed, but never demoted
    long_enough = [f for f in on_deleted if f["properties"]["length_m"] >= 25.0]
    assert long_enough and all(f["properties"]["evidence_gps_verdict"] == "confirmed" for f in long_enough)
    assert all(f["properties"]["evidence_gps_verdict"] != "demoted" for f in on_deleted)
    assert all(f["properties"]["confidence"] >= f["properties"]["evidence_confidence_before_gps"] for f in on_deleted)
    assert "imagery_licence" in feats[0]["properties"]


def _metric_in(features: list[dict], crs) -> list:
    return [reproject(shapely.geometry.shape(f["geometry"]), "EPSG:4326", crs) for f in features]


def test_a_fix_written_twice_is_one_place_not_a_run_off_the_map(chicago_gps, tmp_path):
    """Merged or re-exported logs repeat fixes. Real trips 0-5 with every fix written twice gave
    6 off-map steps where the trips as recorded give none: a lone outlier written twice was a
    run of two fixes, which counts as evidence. A run's size is now its places."""
    from osmgap.cli import main

    def off_map_steps(folder: Path, repeat: int) -> int:
        folder.mkdir()
        for k in range(6):
            rows = (chicago_gps / "trips" / f"trip_{k}.txt").read_text().splitlines()
            (folder / f"trip_{k}.txt").write_text("".join(f"{r}\n" * repeat for r in rows))
        out = folder.with_name(folder.name + "-out")
        assert main(["diff", "--aoi=-87.675,41.862,-87.655,41.875", "--osm", str(chicago_gps), "--gps", str(folder),
                     "--gps-crs", CRS, "--out", str(out)]) == 0
        return json.loads((out / "summary.json").read_text())["gps_matching"]["off_map_steps"]

    assert off_map_steps(tmp_path / "twice", 2) == off_map_steps(tmp_path / "once", 1)
