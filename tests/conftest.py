"""Shared fixtures: the real data beside the project (never synthetic roads)."""
from __future__ import annotations

from pathlib import Path

import pytest

from osmgap.core.aoi import load_aoi
from osmgap.core.datapaths import data_root

PROJECT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def data() -> Path:
    return data_root()


@pytest.fixture(scope="session")
def paris(data: Path) -> Path:
    return data / "sample_aoi" / "paris-1447"


@pytest.fixture(scope="session")
def paris_aoi(paris: Path):
    return load_aoi(str(paris / "aoi.geojson"))


@pytest.fixture(scope="session")
def vegas(data: Path) -> Path:
    return data / "chips" / "vegas-solaris"


def _load_extract(path: Path):
    from shapely.geometry import box

    from osmgap.core.aoi import Aoi
    from osmgap.sources.osm import load_osm

    return load_osm(str(path), Aoi(box(-180, -85, 180, 85), name="everywhere", source=str(path)))


@pytest.fixture(scope="session")
def kotka(data: Path):
    """Real OSM roads near Kotka (FI), with node ids and versions."""
    return _load_extract(data / "osm" / "kotka.osm.pbf")


@pytest.fixture(scope="session")
def helsinki(data: Path):
    """Real OSM roads of central Helsinki, with node ids and versions."""
    return _load_extract(data / "osm" / "helsinki.osm.pbf")


@pytest.fixture(scope="session")
def chicago_gps(data: Path) -> Path:
    """Real campus-shuttle GPS trips (EPSG:32616) and the OSM graph of the same area."""
    return data / "gps" / "chicago-uic"


@pytest.fixture(scope="session")
def chicago_traces(chicago_gps: Path):
    """All 889 real Chicago trips in EPSG:32616."""
    from osmgap.sources.gps import GpsSource, read_gps

    return read_gps([chicago_gps / "trips"], GpsSource(crs="EPSG:32616")).to_crs("EPSG:32616")


@pytest.fixture(scope="session")
def chicago_ways(chicago_gps: Path):
    """The Chicago OSM graph as junction-to-junction ways, EPSG:32616."""
    from osmgap.sources.mapgraph import read_mapconstruction_graph

    return read_mapconstruction_graph(chicago_gps / "chicago_vertices_osm.txt", chicago_gps / "chicago_edges_osm.txt",
                                      "EPSG:32616")
