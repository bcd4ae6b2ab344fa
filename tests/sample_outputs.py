"""Diff output directories built from real OpenStreetMap roads, for tests of what comes after
the diff (state, publishing, reports) without running the model each time.

Each suggestion is a real road of the sample (``osm_roads.geojson``), as if a road source had
found it and OSM lacked it; ids, properties and files are made by osmgap's own code.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import geopandas as gpd
from shapely.geometry import LineString, shape

from osmgap.core.aoi import load_aoi
from osmgap.core.atomic import write_text_atomic
from osmgap.core.datamodel import Suggestion
from osmgap.export.geojson import write_suggestions_geojson
from osmgap.jobs.diff import NOT_CLEARED_WARNING
from osmgap.workspace.outputs import DiffOutputs, read_outputs
from tests.conftest import PROJECT

SAMPLE_AOI = PROJECT / "sample_aoi" / "paris-1447"


def sample_ways(data: Path) -> list[dict]:
    """The sample's 10 real OSM ways, in file order, as GeoJSON features."""
    return json.loads((data / "sample_aoi" / "paris-1447" / "osm_roads.geojson").read_text())["features"]


def ways_frame(ways: list[dict]) -> gpd.GeoDataFrame:
    """Ways as RoadNetwork.ways-like frame (WGS84) for the OSM side of a run."""
    frame = gpd.GeoDataFrame.from_features(ways, crs="EPSG:4326")
    return frame.rename(columns={"type": "highway"})


def write_outputs(out_dir: Path, ways: list[dict], *, cleared: bool = False,
                  priorities: dict[int, int] | None = None,
                  routing_impacts: dict[int, float] | None = None) -> DiffOutputs:
    """summary.json + suggestions.geojson with one suggestion per way (2-D). The id is derived
    from the way's OSM id here, so it stays one road's id whatever the diff's id scheme."""
    aoi = load_aoi(str(SAMPLE_AOI))
    suggestions = []
    for i, way in enumerate(ways):
        line = LineString([(x, y) for x, y, *_ in shape(way["geometry"]).coords])
        length = aoi.to_metric(line).length
        suggestions.append(Suggestion(id=road_id(way), kind="missing_road", geometry=line, length_m=length,
                                      confidence=1.0, highway=way["properties"]["type"],
                                      priority=(priorities or {}).get(i, 1)))
    warnings = [] if cleared else [NOT_CLEARED_WARNING]
    extra = {"imagery_licence": "CC-BY-SA 4.0", "imagery_attribution": "SpaceNet; imagery courtesy of Maxar",
             "imagery_date": "2016", **({"warning": warnings[0]} if warnings else {})}
    out_dir.mkdir(parents=True, exist_ok=True)
    write_suggestions_geojson(out_dir / "suggestions.geojson", suggestions, extra)
    if routing_impacts:  # as the diff writes it once routing is known
        doc = json.loads((out_dir / "suggestions.geojson").read_text())
        for i, metres in routing_impacts.items():
            doc["features"][i]["properties"]["routing_impact"] = metres
        write_text_atomic(out_dir / "suggestions.geojson", json.dumps(doc, indent=2))
    summary = {"aoi": {"name": aoi.name, "source": aoi.source, "bounds": list(aoi.bounds)},
               "suggestions": len(suggestions), "warnings": warnings,
               "osm": {"source": "test"}, "run_tag": str(out_dir)}
    write_text_atomic(out_dir / "summary.json", json.dumps(summary, indent=2))
    return read_outputs(out_dir)


def road_id(way: dict) -> str:
    digest = hashlib.sha1(f"way/{int(way['properties']['osm_id'])}".encode()).hexdigest()[:12]
    return f"osmgap-{digest}"


def sample_area():
    return load_aoi(str(SAMPLE_AOI)).geometry
