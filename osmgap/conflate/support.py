"""unsupported_osm_way: OSM ways that the evidence does not show where it could have.

The reverse of a missing road: an OSM way with no evidence along it. Low priority and off by
default, because absence of evidence is weak: a model misses roads under trees, and a candidate
source may simply not cover a class. Support is evidence running along the way; evidence that
merely crosses it (a side street at a junction) is none. With a probability raster the imagery
must be clear, i.e. the model must be confident there is no road along nearly all of the way
(low probability), not merely unsure; ways on their own level (tunnels, covered passages,
bridges) are never judged, imagery cannot see them.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import LineString
from shapely.geometry.base import BaseGeometry

from osmgap.conflate.osmindex import OsmIndex
from osmgap.conflate.params import ConflateParams
from osmgap.core.segments import Segments, covered, explode, near_pairs, sample

MAX_SUPPORT = 0.1  # share of a way's points with evidence, at most
CLEAR_PROBABILITY = 0.2  # a point where the model says less than this is clearly no road ...
CLEAR_SHARE = 0.8  # ... and the way must be clear along this share of its length


@dataclass
class Unsupported:
    line: int
    geometry: LineString
    support: float
    confidence: float


def find_unsupported(osm: OsmIndex, cands: Segments, area: BaseGeometry, params: ConflateParams,
                     probability: Callable[[LineString], np.ndarray] | None = None) -> list[Unsupported]:
    """OSM ways (at least min_length_m inside ``area``) without evidence along them;
    ``probability(line)`` gives the road probability at points along a line, when there is a
    probability raster."""
    inside = np.asarray(shapely.intersection(osm.lines, area), dtype=object)
    candidates = [k for k, g in enumerate(inside)
                  if g.length >= params.min_length_m and not osm.on_own_level(k)]
    if not candidates:
        return []
    pieces = [max(shapely.get_parts(inside[k]), key=lambda g: g.length) for k in candidates]
    segs = explode(np.asarray(pieces, dtype=object))
    pts = sample(segs, params.step_m)
    pairs = near_pairs(pts, cands, params.tolerance_m, source=segs)
    ok = covered(pairs, cands, len(pts), 0.0, params.tolerance_m, params.max_angle_deg)
    share = np.bincount(pts.line, weights=ok, minlength=len(pieces)) / np.maximum(1, np.bincount(pts.line, minlength=len(pieces)))
    out = []
    for k, piece, s in zip(candidates, pieces, share.tolist()):
        if s > MAX_SUPPORT:
            continue
        clear = 1.0 - s
        if probability is not None:
            clear = float((probability(piece) < CLEAR_PROBABILITY).mean())
            if clear < CLEAR_SHARE:
                continue
        out.append(Unsupported(k, piece, s, clear))
    return out
