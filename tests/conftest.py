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
