"""How closely the evidence follows OSM where both show the same road, and the tolerance that follows.

A fixed tolerance is either too wide for precise evidence (official road data, a candidate set
that is a copy of OSM: a missing carriageway 8 m beside its mapped twin would be "explained") or
too narrow for a model's centrelines. Most of any evidence lies on roads OSM already has, so the
distances from evidence to the OSM way running the same way measure the evidence's own spread;
the tolerance is set from it, between a floor that absorbs what an offset estimate leaves and
the configured maximum. The global offset is removed before (osmgap.conflate.offset), so the spread is
what remains: local misregistration and centreline noise.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from osmgap.conflate.osmindex import OsmIndex
from osmgap.conflate.params import ConflateParams
from osmgap.core.segments import Pairs, Samples, Segments, explode, near_pairs, sample

ALIGNED_DEG = 15.0  # pairs this well aligned are taken as the same road seen twice
MIN_TOLERANCE_M = 2.5  # never tighter: an offset estimate and vertex placement leave ~1 m
SPREAD_FACTOR = 4.0  # tolerance = SPREAD_FACTOR x median spread + MIN_TOLERANCE_M
MIN_MATCHED_SAMPLES = 50  # fewer matched points than this say nothing about the spread
SPREAD_LINES = 5000
PARALLEL_FACTOR = 2.5  # a parallel line within this many tolerances may be the same road
MIN_CONNECTOR_M = 5.0  # no evidence resolves a connection shorter than a car


@dataclass
class Probe:
    """Candidate lines sampled and paired with the OSM segments within the maximum tolerance."""

    segs: Segments
    pts: Samples
    pairs: Pairs


def probe(lines: np.ndarray, osm: OsmIndex, params: ConflateParams) -> Probe:
    """Sample ``lines`` and pair the points with OSM segments within ``params.tolerance_m``."""
    segs = explode(lines)
    pts = sample(segs, params.step_m)
    return Probe(segs, pts, near_pairs(pts, osm.segs, params.tolerance_m, source=segs))


def measure_spread(lines: np.ndarray, osm: OsmIndex, params: ConflateParams) -> float | None:
    """The spread (see spread_m) measured on an even subset of at most SPREAD_LINES lines: the
    median of tens of thousands of points is as good as that of millions."""
    subset = lines[:: max(1, len(lines) // SPREAD_LINES)]
    return spread_m(probe(subset, osm, params), osm)


def spread_m(pr: Probe, osm: OsmIndex) -> float | None:
    """Median distance from evidence points to the aligned OSM way nearest them; None when too
    few points match anything to say."""
    p = pr.pairs
    aligned = (p.angle <= ALIGNED_DEG) & ~p.beyond_line_end(osm.segs)
    if aligned.sum() == 0:
        return None
    best = np.full(len(pr.pts), np.inf)
    np.minimum.at(best, p.sample[aligned], p.distance[aligned])
    matched = best[np.isfinite(best)]
    if len(matched) < MIN_MATCHED_SAMPLES:
        return None
    return float(np.median(matched))


def fitted_params(params: ConflateParams, spread: float | None) -> ConflateParams:
    """``params`` with every distance that stands for "the same road, seen imprecisely" set from
    the evidence spread: the tolerance, the any-direction radius, the band in which a parallel
    line counts as a duplicate or a sidewalk, and the shortest connection believed.

    Noisy evidence (a model's centrelines) keeps the configured maxima: its parallel lines at
    10-25 m are sidewalks and service lanes it cannot tell from roads. Precise evidence draws a
    line 15 m beside a road only where there is something there, and resolves short links.
    """
    if spread is None:
        return params
    tolerance = float(np.clip(SPREAD_FACTOR * spread + MIN_TOLERANCE_M, MIN_TOLERANCE_M, params.tolerance_m))
    scale = tolerance / params.tolerance_m
    return replace(
        params, tolerance_m=tolerance, near_m=min(params.near_m, tolerance),
        # never narrower than the configured tolerance: a precise source whose lines mostly match
        # OSM still has ways drawn some metres off, and each came back as a "missing road" beside itself
        parallel_max_m=float(np.clip(PARALLEL_FACTOR * tolerance, params.tolerance_m, params.parallel_max_m)),
        min_connector_m=max(MIN_CONNECTOR_M, params.min_connector_m * scale),
    )


def retraced(pr: Probe, osm: OsmIndex, params: ConflateParams) -> np.ndarray:
    """Per candidate segment: does it retrace an OSM way (most of its points within near_m of a
    way running the same way)? Such evidence shows that way, not a missing link beside it."""
    p = pr.pairs
    along = (p.distance <= params.near_m) & (p.angle <= ALIGNED_DEG) & ~p.beyond_line_end(osm.segs)
    hit = p.any_per_sample(along, len(pr.pts))
    n = len(pr.segs)
    return np.bincount(pr.pts.segment, weights=hit, minlength=n) >= 0.5 * np.maximum(
        1, np.bincount(pr.pts.segment, minlength=n))
