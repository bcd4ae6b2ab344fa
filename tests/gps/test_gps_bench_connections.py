"""bench/gps.py judges a missing connection by route: right when the deleted ways shorten the way
between its two nodes, as the detour it reports says, wherever the missing road runs."""
from __future__ import annotations

import numpy as np
from shapely.geometry import LineString

from bench.gps import connection_routes, connection_score
from osmgap.gps.connections import Connection


def _lines(*coords: list[tuple[float, float]]) -> np.ndarray:
    return np.asarray([LineString(c) for c in coords], dtype=object)


def test_a_connection_is_right_when_the_deleted_road_removes_its_detour_even_round_a_corner():
    """Mechanics only (no claim about roads): a block 600 m across whose missing road turns a corner
    between the two nodes, and a second connection whose two nodes the map already joins directly."""
    kept = _lines([(0, 0), (0, -600), (600, -600), (600, -300), (300, -300)], [(600, -300), (600, 0)])
    deleted = _lines([(0, 0), (300, 0), (300, -300)])  # an L: 600 m, where the kept way round is 1800 m
    corner = Connection(1, 2, (0.0, 0.0), (300.0, -300.0), 1200.0, [1, 2])
    assert connection_routes([corner], kept, deleted, np.array([True])) == (1.0, 1.0)
    # the straight line between the nodes runs 150 m from the road it stands for: "wrong" by line
    assert connection_score([corner], deleted, np.array([True]))[1] == 0.0
    # the map already joins these two nodes along the kept way: no deletion made that detour
    joined = Connection(3, 4, (600.0, -600.0), (600.0, 0.0), 400.0, [1, 2])
    assert connection_routes([corner, joined], kept, deleted, np.array([True])) == (0.5, 1.0)
    # a deleted way off every right connection's route is not explained by it
    far = _lines([(0, 0), (300, 0), (300, -300)], [(1000, 1000), (1300, 1000)])
    precision, explained = connection_routes([corner], kept, far, np.array([True, True]))
    assert precision == 1.0 and explained == 600 / 900
