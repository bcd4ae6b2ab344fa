"""The deletion benchmark's scoring, on real Helsinki geometry: stacked ways count as 'beside kept OSM'."""
from __future__ import annotations

import numpy as np

from osmgap.conflate.gapscore import score

CRS = "EPSG:32635"


def _lines(helsinki):
    ways = helsinki.ways.reset_index(drop=True)
    return ways, np.asarray(ways.to_crs(CRS).geometry.values, dtype=object)


def test_stacked_tunnel_counts_as_beside_kept_osm(helsinki):
    """Way 27193233, a 608 m service tunnel, runs under mapped central-Helsinki streets: deleted,
    nothing in 2-D tells it from the ways above it. Way 51707747 (109 m) is a tunnel too but
    runs where no other way does: it is not 'beside kept OSM'."""
    ways, lines = _lines(helsinki)
    for osm_id, expected in ((27193233, 1.0), (51707747, 0.0)):
        i = int(np.flatnonzero(ways["osm_id"].to_numpy() == osm_id)[0])
        got = score([], lines[[i]], CRS, kept=np.delete(lines, i))
        assert got["recall_length"] == 0.0
        assert got["beside_kept_share"] == expected, osm_id
        assert got["deleted_km_apart"] == (0.0 if expected else lines[i].length / 1000)
