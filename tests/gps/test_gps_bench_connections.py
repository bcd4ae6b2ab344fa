"""bench/gps.py judges a missing connection by route: right when the deleted ways shorten the way
between its two nodes, as the detour it reports says, wherever the missing road runs."""
from __future__ import annotations

import numpy as np
import pytest
from shapely.geometry import LineString

from bench.gps import connection_routes, connection_score, flagged_recall
from osmgap.core.aoi import reproject
from osmgap.core.datamodel import WGS84, Suggestion
from osmgap.gps.connections import Connection

CRS = "EPSG:32616"


def _lines(*coords: list[tuple[float, float]]) -> np.ndarray:
    return np.asarray([LineString(c) for c in coords], dtype=object)


def test_a_connection_is_right_when_the_deleted_road_removes_its_detour_even_round_a_corner():
    """Mechanics only (no claim about roads): a block 600 m across whose missing road turns a corner
    between the two nodes, and a second connection whose two nodes the map already joins directly."""
    kept = _lines([(0, 0), (0, -600), (600, -600), (600, -300), (300, -300)], [(600, -300), (600, 0)])
    deleted = _lines([(0, 0), (300, 0), (300, -300)])  # an L: 600 m, where the kept way round is 1800 m
    corner = Connection(1, 2, (0.0, 0.0), (300.0, -300.0), 1200.0, [1, 2])
    precision, explained = connection_routes([corner], kept, deleted)
    assert precision == 1.0 and explained.tolist() == [True]
    # the straight line between the nodes runs 150 m from the road it stands for: "wrong" by line
    assert connection_score([corner], deleted, np.array([True]))[1] == 0.0
    # the map already joins these two nodes along the kept way: no deletion made that detour
    joined = Connection(3, 4, (600.0, -600.0), (600.0, 0.0), 400.0, [1, 2])
    precision, explained = connection_routes([corner, joined], kept, deleted)
    assert precision == 0.5 and explained.tolist() == [True]
    # a deleted way off every right connection's route is not explained by it
    far = _lines([(0, 0), (300, 0), (300, -300)], [(1000, 1000), (1300, 1000)])
    precision, explained = connection_routes([corner], kept, far)
    assert precision == 1.0 and explained.tolist() == [True, False]
    # what a mapper is pointed at: the explained way whole, the other as far as a line finds it
    # (150 m of line, and 10 m past its end within the relaxed radius)
    found = reproject(LineString([(1000, 1000), (1150, 1000)]), CRS, WGS84)
    line = Suggestion(id="s", kind="missing_road", geometry=found, length_m=150.0, confidence=1.0)
    flagged = flagged_recall([line], far, np.array([True, True]), explained, CRS, 10.0)
    assert flagged == pytest.approx(((600 + 160) / 900, 600 / 900), abs=0.005)
    assert flagged_recall([], far, np.array([False, True]), explained, CRS, 10.0) == (0.0, 0.0)
