"""Fixtures of the source readers' tests."""
from __future__ import annotations

import overpy
import pytest

from osmgap.sources import overpass


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to reach a server fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("network used")
    monkeypatch.setattr(overpass, "_http_post", refuse)
    monkeypatch.setattr(overpy.Overpass, "query", refuse)
    monkeypatch.setattr("urllib.request.urlopen", refuse)
