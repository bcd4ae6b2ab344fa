"""Bulk near-pair queries on several threads give the one-thread answer (real Chicago OSM ways)."""
from __future__ import annotations

import numpy as np
import pytest
import shapely

import osmgap.core.segments as segments
import osmgap.core.threads as threads
from osmgap.core.segments import explode, near_pairs, query_threads, sample


@pytest.fixture(scope="module")
def ways_and_candidates(chicago_ways):
    """The real ways cut into segments, and candidate lines: the same ways moved 3 m east and
    sampled every 2 m, as conflation probes candidates against OSM."""
    lines = np.asarray(chicago_ways.geometry.values, dtype=object)
    moved = shapely.transform(lines, lambda xy: xy + [3.0, 0.0])
    cands = explode(moved)
    return explode(lines), cands, sample(cands, 2.0)


@pytest.mark.parametrize("by_source", [False, True])
def test_near_pairs_in_blocks_on_threads_equal_one_thread(ways_and_candidates, monkeypatch, by_source):
    osm, cands, points = ways_and_candidates
    source = cands if by_source else None
    monkeypatch.setattr(segments, "query_threads", lambda items: 1)
    alone = near_pairs(points, osm, 8.0, source=source)
    monkeypatch.setattr(segments, "query_threads", lambda items: 4)
    blocks = near_pairs(points, osm, 8.0, source=source)
    assert np.bincount(alone.sample, minlength=len(points)).min() >= 1  # each moved point lies 3 m from its way
    for field in ("sample", "segment", "distance", "t", "angle"):
        np.testing.assert_array_equal(getattr(blocks, field), getattr(alone, field))
    # and the pairs are right: each is within the radius of its segment, as shapely measures it
    pick = np.linspace(0, len(alone.sample) - 1, 500).astype(int)
    lines = shapely.linestrings(np.stack([osm.a[alone.segment[pick]], osm.b[alone.segment[pick]]], axis=1))
    dist = shapely.distance(shapely.points(points.xy[alone.sample[pick]]), lines)
    np.testing.assert_allclose(alone.distance[pick], dist, atol=1e-6)
    assert (alone.distance <= 8.0).all()


def test_threads_follow_the_size_and_the_cores(monkeypatch):
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert query_threads(segments.THREAD_BLOCK - 1) == 1  # a small query runs alone
    assert query_threads(10 * segments.THREAD_BLOCK) == 2  # never more threads than cores
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: set(range(64)), raising=False)
    assert query_threads(100 * segments.THREAD_BLOCK) == segments.MAX_THREADS
