"""Diff a road graph against OSM: predicted roads that no OSM way explains become suggestions.

A predicted road is "explained" where it lies within ``tolerance_m`` of an OSM way. The tolerance
has to absorb the misalignment between imagery and OSM (5-10 m is common, the sample has it)
plus the error of a predicted centreline, so it defaults to 15 m. Only the unexplained parts of an
edge are kept, so a prediction that runs along a mapped road and then continues yields just the
continuation. Everything is measured in the graph's metric CRS.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import geopandas as gpd
import networkx as nx
import numpy as np
import shapely
from shapely.geometry import LineString, MultiLineString
from shapely.geometry.base import BaseGeometry

from osmgap.aoi import reproject
from osmgap.datamodel import WGS84, ProbabilityRaster, Suggestion


@dataclass(frozen=True)
class ConflateParams:
    tolerance_m: float = 15.0
    min_length_m: float = 30.0  # shorter gaps are mostly driveways, parking aisles and noise
    min_confidence: float = 0.5
    edge_margin_m: float = 5.0  # ignore predictions hugging the AOI/imagery border


def missing_roads(graph: nx.Graph, osm_ways: gpd.GeoDataFrame, area_metric: BaseGeometry,
                  prob: ProbabilityRaster | None = None,
                  params: ConflateParams = ConflateParams()) -> list[Suggestion]:
    """``missing_road`` suggestions: parts of graph edges farther than the tolerance from OSM.

    ``area_metric`` (AOI ∩ imagery, in the graph's CRS) clips the result; ``prob`` gives each
    suggestion a confidence (mean probability along it) when present.
    """
    crs = graph.graph["crs"]
    edges = [d["geometry"] for _, _, d in graph.edges(data=True)]
    if not edges:
        return []
    covered = _osm_corridor(osm_ways, crs, params.tolerance_m)
    usable = area_metric.buffer(-params.edge_margin_m)
    pieces: list[LineString] = []
    for geom in shapely.intersection(shapely.difference(np.array(edges), covered), usable):
        pieces.extend(_lines(geom))
    pieces = _merge(pieces)
    suggestions = []
    for piece in pieces:
        if piece.length < params.min_length_m:
            continue
        confidence = mean_probability(prob, piece) if prob is not None else 1.0
        if confidence < params.min_confidence:
            continue
        wgs = reproject(piece, crs, WGS84)
        suggestions.append(Suggestion(
            id=stable_id(wgs), kind="missing_road", geometry=wgs, length_m=float(piece.length),
            confidence=float(confidence), evidence={"image_score": round(float(confidence), 3)},
        ))
    return _dedupe_ids(sorted(suggestions, key=lambda s: -s.length_m))


def _osm_corridor(osm_ways: gpd.GeoDataFrame, crs: object, tolerance_m: float) -> BaseGeometry:
    if len(osm_ways) == 0:
        return shapely.Polygon()
    metric = osm_ways.to_crs(crs).geometry.values
    return shapely.union_all(shapely.buffer(metric, tolerance_m))


def _lines(geom: BaseGeometry) -> list[LineString]:
    if isinstance(geom, LineString):
        return [] if geom.is_empty else [geom]
    if hasattr(geom, "geoms"):
        return [g for part in geom.geoms for g in _lines(part)]
    return []


def _merge(pieces: list[LineString]) -> list[LineString]:
    """Join pieces that touch end to end (one road split over several graph edges)."""
    if not pieces:
        return []
    merged = shapely.line_merge(MultiLineString(pieces))
    return _lines(merged)


def mean_probability(prob: ProbabilityRaster, line: LineString, step_m: float = 1.0) -> float:
    """Mean road probability sampled every ``step_m`` along ``line``."""
    n = max(2, int(line.length / step_m) + 1)
    pts = shapely.line_interpolate_point(line, np.linspace(0, line.length, n))
    xy = shapely.get_coordinates(pts)
    cols, rows = ~prob.transform @ (xy[:, 0], xy[:, 1])
    rows = np.clip(np.floor(rows).astype(int), 0, prob.prob.shape[0] - 1)
    cols = np.clip(np.floor(cols).astype(int), 0, prob.prob.shape[1] - 1)
    return float(prob.prob[rows, cols].mean())


def stable_id(geom_wgs84: LineString, grid_deg: float = 1e-4) -> str:
    """An id that survives small geometry changes: a hash of the snapped, ordered endpoints.

    Endpoints are snapped to a ~10 m grid and put in a fixed order, so the same gap found again
    (re-run, slightly different model output, reversed direction) keeps its id.
    """
    ends = sorted(tuple(round(v / grid_deg) for v in pt) for pt in (geom_wgs84.coords[0], geom_wgs84.coords[-1]))
    digest = hashlib.sha1(repr(ends).encode()).hexdigest()[:12]
    return f"osmgap-{digest}"


def _dedupe_ids(suggestions: list[Suggestion]) -> list[Suggestion]:
    """Suffix the rare ids that two suggestions of one run share after snapping."""
    seen: dict[str, int] = {}
    for s in suggestions:
        n = seen.get(s.id, 0)
        seen[s.id] = n + 1
        if n:
            s.id = f"{s.id}-{n}"
    return suggestions
