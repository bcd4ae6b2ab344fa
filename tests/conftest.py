"""Shared fixtures: the real data beside the project (never synthetic roads)."""
from __future__ import annotations

from pathlib import Path

import pytest

from osmgap.aoi import load_aoi
from osmgap.datapaths import data_root

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

    from osmgap.aoi import Aoi
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
