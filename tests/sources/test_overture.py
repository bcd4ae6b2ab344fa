"""Overture Maps transportation segments, written with pyarrow in Overture's published GeoParquet
layout (docs.overturemaps.org/schema/reference/transportation/segment: WKB ``geometry``, ``bbox``
struct, ``subtype``, ``class``, ``subclass``) from the real Kotka extract: every highway=* way,
footways and paths included, as Overture derives its segments from OSM."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import osmium
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import shapely
from shapely.geometry import LineString

from osmgap.errors import InputError
from osmgap.sources.candidates import load_candidates
from osmgap.sources.overture import osm_class, read_overture
from tests.roads import extent_aoi, run

GEO = {"version": "1.1.0", "primary_column": "geometry",
       "columns": {"geometry": {"encoding": "WKB", "geometry_types": ["LineString"],
                                "covering": {"bbox": {k: ["bbox", k] for k in ("xmin", "ymin", "xmax", "ymax")}}}}}
PARIS = LineString([(2.2812, 48.9811), (2.2829, 48.9826)])


def _segments(pbf: Path) -> list[tuple[str, str, str | None, LineString]]:
    """(subtype, class, subclass, geometry) of every highway=* way (through the nodes the extract
    has), as Overture maps OSM: the class is the highway value, ``*_link`` the class with subclass
    ``link``."""
    out = []
    for w in osmium.FileProcessor(str(pbf), osmium.osm.NODE | osmium.osm.WAY).with_locations():
        known = [(n.lon, n.lat) for n in w.nodes if n.location.valid()] if w.is_way() else []
        if "highway" in w.tags and len(known) > 1:
            highway = w.tags["highway"]
            cls, subclass = (highway[:-5], "link") if highway.endswith("_link") else (highway, None)
            out.append(("road", cls, subclass, LineString(known)))
    return out


def _write(path: Path, segments: list[tuple[str, str, str | None, LineString]]) -> Path:
    geoms = np.asarray([g for *_, g in segments], dtype=object)
    bounds = shapely.bounds(geoms)
    table = pa.table({
        "id": [f"08b{i:013x}" for i in range(len(segments))],
        "geometry": pa.array(shapely.to_wkb(geoms), pa.binary()),
        "bbox": pa.StructArray.from_arrays([pa.array(bounds[:, i], pa.float32()) for i in (0, 2, 1, 3)],
                                           names=["xmin", "xmax", "ymin", "ymax"]),
        "subtype": [s for s, *_ in segments], "class": [c for _, c, *_ in segments],
        "subclass": [s for _, _, s, _ in segments],
    })
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table.replace_schema_metadata({b"geo": json.dumps(GEO).encode()}), path, row_group_size=64)
    return path


@pytest.mark.parametrize("where", ["segments.parquet", "theme=transportation/type=segment/part-00000.parquet"])
def test_road_segments_near_the_aoi_come_back_as_the_osm_roads_they_were(kotka, data, tmp_path, where):
    """Roads keep their OSM class (links included); footways, paths, cycleways, rail and a segment in
    Paris are left out; an 'unknown' class is OSM's highway=road. Fed back against the same OSM,
    the same class filter on both sides leaves nothing to suggest."""
    segments = _segments(data / "osm" / "kotka.osm.pbf")
    road = segments[0][3]
    extra = [("rail", "standard_gauge", None, road), ("road", "primary", None, PARIS), ("road", "unknown", None, road)]
    path = _write(tmp_path / where, segments + extra)
    aoi = extent_aoi(kotka)
    got = load_candidates(tmp_path if "/" in where else path, aoi, default_confidence=0.75)
    want = Counter(kotka.ways["highway"])
    want["road"] += 1
    assert Counter(got["highway"]) == want
    crs = aoi.metric_crs
    length = got[got["highway"] != "road"].to_crs(crs).length.sum()
    assert length == pytest.approx(kotka.ways.to_crs(crs).length.sum(), rel=1e-5)
    given = {c for _, c, *_ in segments}
    assert {"footway", "cycleway", "path"} <= given and not {"footway", "cycleway", "path"} & set(got["highway"])
    read = read_overture(tmp_path if "/" in where else path, aoi)  # before clipping: the filter pushed down
    assert len(read) == len(segments) + 1 and not shapely.intersects(read.geometry.values, PARIS).any()
    assert run(got[got["highway"] != "road"], kotka, kotka).suggestions == []


def test_overture_classes_map_to_osm_highway_values():
    assert osm_class("primary", "link") == "primary_link" and osm_class("residential", None) == "residential"
    assert osm_class("service", "parking_aisle") == "service" and osm_class("footway", "sidewalk") == "footway"
    assert osm_class("unknown", None) is None and osm_class(None, None) is None


def test_a_file_that_is_no_parquet_is_an_input_error_naming_it(kotka, tmp_path):
    path = tmp_path / "segments.parquet"
    path.write_bytes(b"PAR1 but not really a parquet file")
    with pytest.raises(InputError) as err:
        load_candidates(path, extent_aoi(kotka), default_confidence=0.75)
    assert "cannot read GeoParquet" in str(err.value) and path.name in str(err.value) and "\n" not in str(err.value)
