"""Change detection between two dates: roads that appeared (new construction, the main source
of OSM gaps) and roads that vanished.

1. Align: two captures of one place rarely register to the metre. Both are read onto the same
   analysis grid and the after image's shift against the before image is measured by phase
   correlation of their grey levels (buildings, fields and roads all contribute, so the
   measurement does not depend on roads having stayed put); the after image is then read on
   the grid moved by that shift.
2. Predict both with the same model on the same grid.
3. Compare: a road appeared where the after probability is high and the before image shows no
   road within CHANGE_MARGIN_M (the residual misregistration and a road's width varying between
   dates must not count as change); vanished is the same the other way round. The probability
   of change is ``min(p_after, 1 - max_{within margin} p_before)``, turned into lines by the same
   graph extraction as the diff.
4. With OSM roads, each change is cut at the OSM tolerance: the part of an appeared road that OSM
   already has, or of a vanished road OSM never had, is kept in changes.geojson but is no
   suggestion: there is nothing to map.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import networkx as nx
import numpy as np
import shapely
from affine import Affine
from scipy import ndimage
from shapely import affinity
from shapely.geometry import LineString
from skimage.registration import phase_cross_correlation

from osmgap.conflate.conflate import mean_probability
from osmgap.conflate.ids import IdKey, assign_ids, fallback_anchor, fallback_order
from osmgap.conflate.params import CHANGE_MARGIN_M
from osmgap.core.aoi import reproject
from osmgap.core.datamodel import WGS84, ProbabilityRaster, Suggestion
from osmgap.core.grid import Grid
from osmgap.graph.skeleton import GraphParams, extract_graph
from osmgap.sources.imagery import WindowReader

MAX_SHIFT_M = 30.0  # a larger measured shift is reported, not applied: the dates are then not compared
ALIGN_WINDOW_PX = 2048  # phase correlation on the central window at most this size
KINDS = {"appeared": "appeared_road", "vanished": "vanished_road"}


@dataclass(frozen=True)
class Alignment:
    """Where the after image lies relative to the before image (metres east and north)."""

    east_m: float = 0.0
    north_m: float = 0.0
    applied: bool = False
    reason: str = ""
    too_far: bool = False  # measured beyond MAX_SHIFT_M: the images are not registered, every change an artefact

    def summary(self) -> dict[str, Any]:
        # + 0.0: a shift of -0.004 m reads 0.0, not -0.0
        return {"east_m": round(self.east_m, 2) + 0.0, "north_m": round(self.north_m, 2) + 0.0,
                "applied": self.applied, "reason": self.reason}

    def shift_m(self) -> float:
        return float(np.hypot(self.east_m, self.north_m))


def _central_window(grid: Grid) -> tuple[int, int, int, int]:
    h, w = min(grid.height, ALIGN_WINDOW_PX), min(grid.width, ALIGN_WINDOW_PX)
    return (grid.height - h) // 2, (grid.width - w) // 2, h, w


def measure_alignment(before: WindowReader, after: WindowReader, max_shift_m: float = MAX_SHIFT_M) -> Alignment:
    """The after image's shift against the before image, both read on the same grid."""
    window = _central_window(before.grid)
    (b, b_valid), (a, a_valid) = before.read(*window), after.read(*window)
    if b_valid.mean() < 0.5 or a_valid.mean() < 0.5:
        return Alignment(reason="too little overlap of the two images to align them")
    d, _, _ = phase_cross_correlation(b.mean(axis=0), a.mean(axis=0), upsample_factor=10)
    res = abs(before.grid.transform.a)
    east, north = -float(d[1]) * res, float(d[0]) * res  # d registers after onto before: content moved by -d
    if np.hypot(east, north) > max_shift_m:
        return Alignment(east, north, False, f"shift beyond {max_shift_m:g} m: not applied", too_far=True)
    return Alignment(east, north, True, "phase correlation")


def moved_grid(grid: Grid, alignment: Alignment) -> Grid:
    """The grid on which the after image lines up with the before image on ``grid``."""
    if not alignment.applied:
        return grid
    return replace(grid, transform=Affine.translation(alignment.east_m, alignment.north_m) @ grid.transform)


def aligned_area(area: Any, alignment: Alignment) -> Any:
    """Where the after image's ``area`` (metric, as its georeferencing states it) lies once
    aligned: the after image is read on :func:`moved_grid`, so its content moves by minus the shift."""
    if not alignment.applied:
        return area
    return affinity.translate(area, -alignment.east_m, -alignment.north_m)


def change_reach_px(raster: ProbabilityRaster, margin_m: float = CHANGE_MARGIN_M) -> int:
    """How many pixels from a road the other date is searched for one (``change_probability``)."""
    return max(1, int(round(margin_m / raster.resolution[0])))


def change_probability(now: ProbabilityRaster, other: ProbabilityRaster, margin_m: float = CHANGE_MARGIN_M) -> ProbabilityRaster:
    """Probability of a road in ``now`` with none within ``margin_m`` in ``other`` (same grid)."""
    px = change_reach_px(now, margin_m)
    nearby = ndimage.maximum_filter(other.prob, size=2 * px + 1, mode="nearest")
    return replace(now, prob=np.minimum(now.prob, 1.0 - nearby).astype(np.float32))


@dataclass
class Change:
    """One road that appeared or vanished: a metric line, how sure, whether OSM has it (after
    :func:`mark_osm` every change lies wholly within the OSM tolerance or wholly outside it)."""

    change: str  # "appeared" | "vanished"
    line: LineString
    confidence: float
    in_osm: bool | None = None  # None: no OSM given
    osm_way_id: int | None = None  # the OSM way a change within the tolerance runs along
    withheld: str | None = None  # why this change is no suggestion although OSM would need it (the run's warning)

    @property
    def actionable(self) -> bool:
        """Something to map: a new road OSM lacks, or a vanished road OSM still has, and the two
        dates comparable for that kind of change."""
        if self.withheld:
            return False
        if self.in_osm is None:
            return True
        return self.in_osm != (self.change == "appeared")


def change_lines(prob: ProbabilityRaster, change: str, params: GraphParams, min_length_m: float) -> list[Change]:
    """Lines of the change raster, each graph edge one change, the short ones dropped."""
    return changes_of_graph(extract_graph(prob, params), prob, change, min_length_m)


def changes_of_graph(graph: nx.Graph, prob: ProbabilityRaster, change: str, min_length_m: float) -> list[Change]:
    """Each edge of the change raster's graph one change, the short ones dropped."""
    return [Change(change, d["geometry"], mean_probability(prob, d["geometry"]))
            for _, _, d in graph.edges(data=True) if d["geometry"].length >= min_length_m]


def mark_osm(changes: list[Change], osm_metric: np.ndarray, osm_ids: np.ndarray, tolerance_m: float,
             min_length_m: float) -> list[Change]:
    """Each change cut into its pieces within ``tolerance_m`` of an OSM way and beyond it, as the
    diff suggests only the part of a road OSM lacks: an appeared road OSM has in part is
    suggested where OSM lacks it (not whole, a duplicate of the mapped part; nor not at all), a
    vanished road where OSM still has it, naming that way (``osm_ids``, one per geometry).
    Pieces shorter than ``min_length_m`` are dropped, as shorter changes are."""
    reach = shapely.union_all(shapely.buffer(osm_metric, tolerance_m)) if len(osm_metric) else shapely.Polygon()
    tree = shapely.STRtree(osm_metric)
    out = []
    for c in changes:
        for inside, cut in ((True, c.line.intersection(reach)), (False, c.line.difference(reach))):
            for piece in _pieces(cut, min_length_m):
                way = _way_along(piece, osm_metric, osm_ids, tree, tolerance_m) if inside else None
                out.append(replace(c, line=piece, in_osm=inside, osm_way_id=way))
    return out


def _pieces(cut: Any, min_length_m: float) -> list[LineString]:
    """The lines of ``cut`` (an intersection or difference of a line) at least ``min_length_m`` long."""
    merged = shapely.line_merge(cut) if not cut.is_empty and cut.geom_type != "LineString" else cut
    return [p for p in shapely.get_parts(merged)
            if isinstance(p, LineString) and not p.is_empty and p.length >= min_length_m]


def _way_along(piece: LineString, osm_metric: np.ndarray, osm_ids: np.ndarray, tree: shapely.STRtree,
               tolerance_m: float) -> int | None:
    """The OSM way whose tolerance holds the most of ``piece``."""
    near = tree.query(piece, predicate="dwithin", distance=tolerance_m)
    if not len(near):
        return None
    held = shapely.length(shapely.intersection(piece, shapely.buffer(osm_metric[near], tolerance_m)))
    return int(osm_ids[near[int(np.argmax(held))]])


def withhold(changes: list[Change], kind: str, why: str) -> None:
    """Mark every change of ``kind`` as no suggestion, for ``why`` (said in the run's warnings)."""
    for c in changes:
        if c.change == kind:
            c.withheld = why


def detect_changes(before: ProbabilityRaster, after: ProbabilityRaster, params: GraphParams,
                   min_length_m: float, margin_m: float = CHANGE_MARGIN_M) -> list[Change]:
    """Appeared then vanished roads between two probability rasters on the same grid."""
    return (change_lines(change_probability(after, before, margin_m), "appeared", params, min_length_m)
            + change_lines(change_probability(before, after, margin_m), "vanished", params, min_length_m))


def within_area(changes: list[Change], area: Any, min_length_m: float) -> list[Change]:
    """The changes cut to ``area`` (metric; where both images show usable pixels): a road that
    runs into the other image's nodata did not vanish there. A cut change keeps its longest
    piece, if at least ``min_length_m`` long."""
    kept = []
    for c in changes:
        parts = [p for p in shapely.get_parts(shapely.line_merge(c.line.intersection(area)))
                 if isinstance(p, LineString) and not p.is_empty]
        longest = max(parts, key=lambda p: p.length, default=None)
        if longest is not None and longest.length >= min_length_m:
            kept.append(c if longest.length >= c.line.length - 1e-6 else replace(c, line=longest))
    return kept


def to_suggestions(changes: list[Change], crs: Any) -> list[Suggestion]:
    """The actionable changes as suggestions (kind appeared_road / vanished_road), stable ids."""
    todo = [c for c in changes if c.actionable]
    if not todo:
        return []
    lines = reproject(np.asarray([c.line for c in todo], dtype=object), crs, WGS84)
    kinds = [KINDS[c.change] for c in todo]
    ids = assign_ids([IdKey(fallback_anchor(k, g), fallback_order(g)) for k, g in zip(kinds, lines)])
    return [Suggestion(id=i, kind=k, geometry=g, length_m=float(c.line.length), confidence=round(c.confidence, 3),
                       priority=1 if c.change == "appeared" else 2,
                       evidence={"change": c.change, "in_osm": c.in_osm,
                                 **({"osm_way_id": c.osm_way_id} if c.osm_way_id is not None else {})})
            for i, k, g, c in zip(ids, kinds, lines, todo)]


def changes_feature_collection(changes: list[Change], crs: Any) -> dict[str, Any]:
    """changes.geojson: every change found, actionable or not."""
    lines = reproject(np.asarray([c.line for c in changes], dtype=object), crs, WGS84) if changes else []
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": shapely.geometry.mapping(g),
         "properties": {"change": c.change, "length_m": round(c.line.length, 1), "confidence": round(c.confidence, 3),
                        "in_osm": c.in_osm, "osm_way_id": c.osm_way_id, "suggested": c.actionable,
                        **({"withheld": c.withheld} if c.withheld else {})}}
        for c, g in zip(changes, lines)]}
