"""Lone fixes drawn along their trips' shared heading (osmgap.gps.headings), on real Chicago
fixes sampled every 30 and 60 s: along a real street the segments lie on it and run its way; the
fixes of fewer than three trips, and of trips turning round a corner, are not drawn."""
from __future__ import annotations

import numpy as np
import pytest
import shapely
from shapely.geometry import LineString

from osmgap.core.traces import resample
from osmgap.gps.headings import HeadingParams, headed_fixes
from osmgap.gps.matching import trip_pieces
from tests.gps.test_gps_fixlines import _busy_streets, right_angle_junctions


def _angle_deg(segment: LineString, street: LineString) -> float:
    """Angle between a segment and the street where it lies nearest (either direction)."""
    at = street.project(segment.interpolate(0.5, normalized=True))
    a, b = street.interpolate(max(at - 5.0, 0.0)), street.interpolate(min(at + 5.0, street.length))
    u = np.subtract(segment.coords[-1], segment.coords[0])
    v = np.array([b.x - a.x, b.y - a.y])
    return float(np.degrees(np.arccos(min(1.0, abs(u @ v) / (np.linalg.norm(u) * np.linalg.norm(v))))))


@pytest.mark.parametrize("seconds, drawn_share", [(30.0, 0.4), (60.0, 0.02)])
def test_fixes_along_a_street_are_drawn_along_it(chicago_traces, chicago_ways, seconds, drawn_share):
    """At 60 s the shuttles' fixes on one north-south block come from routes that turned onto it
    and off it again between two fixes (a Z): both steps, and so the heading, run 55-65 degrees
    across the block, and their fixes bunch where they cross; lined up along that heading, they
    would draw the block's traffic across it."""
    sparse = resample(chicago_traces, seconds)
    pieces = trip_pieces(sparse)
    streets = _busy_streets(sparse, shapely.points(sparse.x, sparse.y), chicago_ways.geometry.values, 80.0, 8)
    assert len(streets) == 8
    drawn = fixes = 0
    for street, picked in streets:
        found = headed_fixes(sparse, picked, pieces)
        segments = [LineString([p, q]) for p, q in zip(found.start, found.end)]
        angles = [_angle_deg(s, street) for s in segments]
        assert all(a < HeadingParams().max_turn_deg for a in angles)  # the street's way, not across it
        assert not angles or float(np.median(angles)) < 10.0
        assert all(street.distance(s.interpolate(0.5, normalized=True)) < 10.0 for s in segments)
        assert all(abs(s.length - 2 * HeadingParams().half_length_m) < 1e-6 for s in segments)
        drawn, fixes = drawn + int(found.drawn.sum()), fixes + len(picked)
        # two trips' fixes are not enough: one more trip agreeing can be chance
        two = picked[np.isin(sparse.trip[picked], np.unique(sparse.trip[picked])[:2])]
        assert not headed_fixes(sparse, two, pieces).drawn.any()
    assert drawn >= drawn_share * fixes  # trips drive a street through: headings are known and shared


def test_a_trip_turning_at_a_junction_gives_no_heading(chicago_traces, chicago_ways):
    """At a right-angle junction of two busy streets, a fix of a trip that turned there has steps
    in and out that cross: no heading, so no segment cuts the corner; every segment drawn there
    runs along one of the two streets."""
    sparse = resample(chicago_traces, 30.0)
    pieces = trip_pieces(sparse)
    fixes = shapely.points(sparse.x, sparse.y)
    ways = chicago_ways.geometry.values
    checked = turned = segments = 0
    for a, b, node in right_angle_junctions(ways):
        picked = np.flatnonzero(shapely.dwithin(fixes, node, 35.0))
        picked = picked[(picked > 0) & (picked + 1 < len(sparse))]
        if len(np.unique(sparse.trip[picked])) < 12:
            continue
        found = headed_fixes(sparse, picked, pieces)
        for s in (LineString([p, q]) for p, q in zip(found.start, found.end)):
            assert min(_angle_deg(s, ways[a]), _angle_deg(s, ways[b])) < HeadingParams().max_turn_deg
            segments += 1
        into = np.column_stack([sparse.x[picked] - sparse.x[picked - 1], sparse.y[picked] - sparse.y[picked - 1]])
        out = np.column_stack([sparse.x[picked + 1] - sparse.x[picked], sparse.y[picked + 1] - sparse.y[picked]])
        bend = np.degrees(np.arccos(np.clip(np.einsum("ij,ij->i", into, out) / np.maximum(
            np.hypot(*into.T) * np.hypot(*out.T), 1e-9), -1.0, 1.0)))
        turning = (bend >= 60.0) & (pieces[picked - 1] == pieces[picked]) & (pieces[picked + 1] == pieces[picked])
        assert not found.drawn[turning].any()
        turned += int(turning.sum())
        checked += 1
        if checked == 5:
            break
    assert checked == 5 and turned >= 10 and segments >= 5


def test_fixes_judged_a_chunk_at_a_time_are_judged_as_all_at_once(chicago_traces, monkeypatch):
    """Every real fix at 30 s taken as lone (13,000, thousands drawn): 97 at a time, the same."""
    from osmgap.gps import headings

    sparse = resample(chicago_traces, 30.0)
    pieces, fixes = trip_pieces(sparse), np.arange(len(sparse))
    whole = headed_fixes(sparse, fixes, pieces)
    monkeypatch.setattr(headings, "CHUNK", 97)
    chunked = headed_fixes(sparse, fixes, pieces)
    assert whole.drawn.sum() > 1000
    assert np.array_equal(whole.drawn, chunked.drawn) and np.array_equal(whole.start, chunked.start)
