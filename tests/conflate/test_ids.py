"""Stable ids: the same gap keeps its id when the evidence moves by less than a metre.

Real extracts (Kotka, Helsinki), a seeded 20 % of the ways deleted from OSM, all ways as
candidates shifted 5 m, then every candidate vertex moved by a random vector shorter than 1 m
(a geometry edit standing for another run of a model, or another version of a source). The
suggestions of the runs are matched by geometry and must keep their ids."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest
import shapely

from osmgap.conflate.conflate import Evidence, conflate
from osmgap.conflate.gapscore import deletion_experiment
from osmgap.conflate.ids import CELL_DEG, IdKey, assign_ids, lone_id
from osmgap.conflate.params import ConflateParams
from osmgap.core.aoi import reproject
from osmgap.core.datamodel import WGS84
from osmgap.graph.lines import candidate_graph

RUNS = 6
MAX_WOBBLE_M = 0.95


def _wobbled(exp, seed: int):
    """The experiment's candidates with every vertex moved < 1 m in a random direction; a vertex
    that several lines share (a junction) moves as one, so the road network stays the same."""
    rng = np.random.default_rng(seed)
    metric = exp.candidates.to_crs(exp.crs)

    def move(xy: np.ndarray) -> np.ndarray:
        _, spot = np.unique(np.round(xy * 100).astype(np.int64), axis=0, return_inverse=True)
        spot = spot.ravel()
        r = MAX_WOBBLE_M * np.sqrt(rng.random(spot.max() + 1))
        a = rng.random(spot.max() + 1) * 2 * np.pi
        return xy + np.column_stack([r * np.cos(a), r * np.sin(a)])[spot]

    return metric.set_geometry(shapely.transform(metric.geometry.values, move)).to_crs(WGS84)


def _run(exp, candidates):
    graph = candidate_graph(candidates, exp.crs)
    return conflate(Evidence(graph), exp.kept, exp.aoi.to_metric(exp.aoi.geometry), ConflateParams()).suggestions


def _match(a, b, crs) -> list[tuple]:
    """Pairs of suggestions of the same kind lying on each other (>= 80 % both ways within 3 m);
    where several of ``b`` lie on one of ``a`` (two links from facing dead ends, a road and the
    tunnel under it), the closest (Hausdorff) is its match."""
    geoms_b = [reproject(s.geometry, WGS84, crs) for s in b]
    tree = shapely.STRtree(geoms_b)
    pairs = []
    for s in a:
        g = reproject(s.geometry, WGS84, crs)
        best = None
        for k in tree.query(g, predicate="dwithin", distance=3.0):
            t, h = b[k], geoms_b[k]
            if t.kind != s.kind:
                continue
            if g.geom_type == "Point" or (g.intersection(h.buffer(3)).length >= 0.8 * g.length
                                          and h.intersection(g.buffer(3)).length >= 0.8 * h.length):
                d = g.hausdorff_distance(h)
                if best is None or d < best[0]:
                    best = (d, t)
        if best is not None:
            pairs.append((s, best[1]))
    return pairs


def _old_grid_id(geom) -> str:
    """The first design: endpoints snapped to a 1e-4 degree grid, hashed (kept here only to
    show that this experiment does catch what it is meant to)."""
    ends = sorted(tuple(round(v / 1e-4) for v in pt) for pt in (geom.coords[0], geom.coords[-1]))
    return hashlib.sha1(repr(ends).encode()).hexdigest()[:12]


# Share of matched suggestions whose id may change. Kotka: none. Central Helsinki, where a gap
# often ends in a cluster of junctions a few metres apart, the place it is joined to OSM can
# change between runs, and with it the anchor: measured 14 of 923 (1.5 %; the first anchor
# design changed 25 of 921, 2.7 %, and fails this), allowed 2 %.
ALLOWED_CHANGES = {"kotka": 0.0, "helsinki": 0.02}


@pytest.mark.parametrize("extract", ["kotka", "helsinki"])
def test_ids_survive_sub_metre_changes(extract, request):
    exp = deletion_experiment(request.getfixturevalue(extract), seed=11, shift_m=5.0)
    runs = [_run(exp, _wobbled(exp, seed)) for seed in range(RUNS)]
    base = runs[0]
    assert len(base) >= 40 and len({s.id for s in base}) == len(base)
    matched = changed = old_changed = 0
    for other in runs[1:]:
        pairs = _match(base, other, exp.crs)
        assert len(pairs) >= 0.95 * len(base)
        matched += len(pairs)
        changed += sum(s.id != t.id for s, t in pairs)
        old_changed += sum(_old_grid_id(s.geometry) != _old_grid_id(t.geometry) for s, t in pairs
                           if s.geometry.geom_type == "LineString")
    assert changed <= ALLOWED_CHANGES[extract] * matched
    # snapped-coordinate ids fare worse under the same wobble (measured: Kotka 25 of 334,
    # Helsinki 51 of 896; 32 of 878 since stop 48 leaves out roads along mapped footways): the
    # experiment does catch the failure it is meant to
    assert old_changed >= 0.03 * matched and old_changed > 1.5 * changed


def test_ranks_and_fallback_anchor():
    keys = [IdKey(("missing_road", (1,)), 30.0), IdKey(("missing_road", (1,)), 10.0), IdKey(("missing_road", (2,)), 10.0)]
    first = assign_ids(keys)
    assert len(set(first)) == 3
    assert assign_ids(keys[::-1]) == first[::-1]  # ids follow the keys, not the list order
    line = shapely.LineString([(2.2815, 48.9815), (2.2825, 48.9822)])
    nudged = shapely.transform(line, lambda xy: xy + 5e-6)  # ~0.5 m, far from a cell edge
    assert lone_id("missing_road", line) == lone_id("missing_road", nudged)
    assert lone_id("missing_road", line) != lone_id("missing_road", shapely.transform(line, lambda xy: xy + CELL_DEG))
