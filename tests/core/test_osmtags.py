from __future__ import annotations

import numpy as np
import pytest

from osmgap.core.osmtags import read_level_tags


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
