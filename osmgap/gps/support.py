"""GPS support of each suggestion: how much traffic runs along it, compared with the mapped
roads around it, raises or lowers its confidence.

Raw counts mean little alone: a receiver sampling every second leaves ten times the points of
one sampling every ten, and a campus shuttle route is driven a hundred times more than a side
street. So the points per 100 m inside a corridor along a suggestion are divided by the same
measure on the OSM roads within ``reach_m`` (length-weighted): ~1 means "driven like the roads
around it". A suggestion driven by at least ``min_trips`` distinct trips at ``confirm_ratio`` or
more is *confirmed*; one with (almost) no traffic where the roads around are driven is *demoted*
(absence is weaker evidence than presence: a dead-end driveway may simply not be on anyone's
route, so demotion only halves the confidence); where the area has no GPS coverage nothing
changes. For ``unsupported_osm_way`` it is the reverse: traffic along the OSM way shows the way
exists. Points within ``corridor_m`` of points every ``step_m`` along the line count (a KD-tree
over the point arrays; no per-point objects).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from scipy.spatial import cKDTree
from shapely.geometry import LineString

from osmgap.core.aoi import reproject
from osmgap.core.datamodel import WGS84, Suggestion
from osmgap.core.traces import GpsTraces
from osmgap.gps.density import distinct

VERDICTS = ("confirmed", "demoted", "unchanged", "no_coverage")


@dataclass(frozen=True)
class SupportParams:
    corridor_m: float = 15.0  # GPS error (~5 m) + lane offset + imagery/OSM misregistration
    step_m: float = 5.0
    reach_m: float = 300.0  # the mapped roads this close say how much the area is driven
    confirm_ratio: float = 0.25  # a quarter of the local traffic is a road in use
    min_trips: int = 2  # one trip can be a vehicle crossing a car park
    demote_ratio: float = 0.02  # below this, the line is not driven although its area is
    min_reference_per_100m: float = 2.0  # the area counts as covered by GPS above this
    raise_share: float = 0.5  # confirmed: this share of the remaining doubt goes
    demote_factor: float = 0.5


@dataclass
class Traffic:
    points: int
    trips: int
    length_m: float

    @property
    def per_100m(self) -> float:
        return 100.0 * self.points / max(self.length_m, 1.0)


class TrafficIndex:
    """GPS points (metric) indexed for corridor queries."""

    def __init__(self, traces: GpsTraces, params: SupportParams = SupportParams()):
        self.traces = traces
        self.params = params
        self.tree = cKDTree(np.column_stack([traces.x, traces.y])) if len(traces) else None

    def along(self, line: LineString) -> Traffic:
        """Points and distinct trips within the corridor of ``line``."""
        if self.tree is None or line.length == 0:
            return Traffic(0, 0, line.length)
        n = max(2, int(np.ceil(line.length / self.params.step_m)) + 1)
        xy = shapely.get_coordinates(shapely.line_interpolate_point(line, np.linspace(0, line.length, n)))
        hits = self.tree.query_ball_point(xy, self.params.corridor_m, return_sorted=False)
        idx = distinct(np.concatenate([np.asarray(h, np.int64) for h in hits]))
        return Traffic(len(idx), len(distinct(self.traces.trip[idx])), line.length)


def apply_gps_support(suggestions: list[Suggestion], traces: GpsTraces, osm_metric: np.ndarray, crs: object,
                      params: SupportParams = SupportParams()) -> dict[str, int]:
    """Score every line suggestion against ``traces`` (in ``crs``) and the OSM ways
    (``osm_metric``, LineStrings in ``crs``); confidence and ``evidence['gps_*']`` change in
    place. Returns the count of each verdict."""
    index = TrafficIndex(traces, params)
    tree = shapely.STRtree(osm_metric)
    way_traffic: dict[int, Traffic] = {}
    counts = dict.fromkeys(VERDICTS, 0)
    for s in suggestions:
        if s.geometry.geom_type != "LineString":
            continue
        line = reproject(s.geometry, WGS84, crs)
        own = index.along(line)
        near = tree.query(line, predicate="dwithin", distance=params.reach_m)
        if s.kind == "unsupported_osm_way":
            near = near[~shapely.equals_exact(osm_metric[near], line, tolerance=0.5)]
        for k in near.tolist():
            if k not in way_traffic:
                way_traffic[k] = index.along(osm_metric[k])
        ref_points = sum(way_traffic[k].points for k in near.tolist())
        ref_length = sum(way_traffic[k].length_m for k in near.tolist())
        reference = 100.0 * ref_points / ref_length if ref_length > 0 else 0.0
        verdict, ratio = judge(own, reference, s.kind, params)
        before = s.confidence
        if verdict == "confirmed":
            s.confidence = before + (1.0 - before) * params.raise_share
        elif verdict == "demoted":
            s.confidence = before * params.demote_factor
        counts[verdict] += 1
        s.evidence.update({"gps_points_per_100m": round(own.per_100m, 1), "gps_trips": own.trips,
                           "gps_trips_per_100m": round(100.0 * own.trips / max(own.length_m, 1.0), 1),
                           "gps_reference_per_100m": round(reference, 1),
                           "gps_support": None if ratio is None else round(ratio, 3),
                           "gps_verdict": verdict, "confidence_before_gps": round(before, 3)})
    return counts


def judge(own: Traffic, reference: float, kind: str, params: SupportParams = SupportParams()) -> tuple[str, float | None]:
    """The verdict on one line and its support ratio (None without GPS coverage nearby)."""
    if reference < params.min_reference_per_100m:
        return "no_coverage", None
    ratio = own.per_100m / reference
    driven = own.trips >= params.min_trips and ratio >= params.confirm_ratio
    undriven = ratio < params.demote_ratio
    if kind == "unsupported_osm_way":  # traffic on an OSM way says the way is real
        driven, undriven = undriven, driven
    return ("confirmed" if driven else "demoted" if undriven else "unchanged"), ratio
