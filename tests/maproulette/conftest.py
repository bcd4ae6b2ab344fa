"""Fixtures of the publishing tests: a strict local fake of MapRoulette (tests/fake_maproulette.py)
and an environment that reaches no real server and reads no config of the machine."""
from __future__ import annotations

import pytest

from tests.fake_maproulette import FakeMapRoulette


@pytest.fixture
def fake():
    with FakeMapRoulette() as server:
        yield server
    assert not server.violations, server.violations


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch, fake):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.config of the machine
    monkeypatch.delenv("MAPROULETTE_API_URL", raising=False)
    monkeypatch.setenv("MAPROULETTE_API_KEY", fake.api_key)
