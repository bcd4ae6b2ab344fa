from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from osmgap.core.osmtags import FINISHED_CONSTRUCTION, mapped_otherwise, read_level_tags


@pytest.mark.parametrize("tags, kept, dropped", [
    ({"bridge": 0.0, "tunnel": np.int64(0), "layer": 0.0}, {}, []),  # an integer column with gaps reads as float
    ({"bridge": np.float64(1.0), "layer": np.int64(1)}, {"layer": "1"}, ["bridge"]),  # bridge=1 is no OSM value
    ({"layer": -2.0, "tunnel": "YES"}, {"layer": "-2", "tunnel": "yes"}, []),
    ({"layer": 2.5, "bridge": float("inf")}, {}, ["bridge", "layer"]),
    ({"tunnel": float("nan"), "bridge": None}, {}, []),
])
def test_numbers_from_a_typed_column_read_as_osm_text(tags, kept, dropped):
    out, bad = read_level_tags(tags)
    assert out == kept and sorted(bad) == dropped


TODAY = dt.date(2026, 12, 7)


@pytest.mark.parametrize("tags, what", [
    ({"construction": "tertiary", "@timestamp": "2015-08-06T10:00:00+00:00"}, FINISHED_CONSTRUCTION),  # Kotka's
    ({"@timestamp": "2024-12-01T00:00:00+00:00"}, FINISHED_CONSTRUCTION),  # over two years untouched, class not said
    ({"construction": "residential", "@timestamp": "2025-06-01T00:00:00+00:00"}, "highway=construction"),
    ({"construction": "residential", "opening_date": "2026-11", "@timestamp": "2026-10-01"}, FINISHED_CONSTRUCTION),
    ({"construction": "residential", "opening_date": "2026-12", "@timestamp": "2015-01-01"}, "highway=construction"),
    ({"construction": "motorway", "opening_date": "2026", "@timestamp": "2015-01-01"}, "highway=construction"),
    ({"construction": "cycleway", "@timestamp": "2015-01-01"}, "highway=construction"),  # a path being built
    ({"construction": "primary", "opening_date": "soon", "@timestamp": "2026-01-01"}, "highway=construction"),
    ({"construction": "primary"}, "highway=construction"),  # no metadata: nothing says it is old
])
def test_a_construction_is_likely_finished_once_its_opening_date_passed_or_nobody_touched_it_for_two_years(tags,
                                                                                                       what):
    assert mapped_otherwise({"highway": "construction", **tags}, TODAY) == what
