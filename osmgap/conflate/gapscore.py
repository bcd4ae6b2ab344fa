"""Known-answer tests of conflation on real OSM: delete some ways, feed them back, score the result.

Deleting a seeded share of the ways of a real extract and giving ALL ways back as candidates
makes a diff with a known answer: the deleted ways are the missing roads, everything else is
mapped. Shifting every candidate (as misaligned imagery or a traced source would be) tests the
offset handling. A suggestion is right when at least ``share`` of its length lies within
``radius_m`` of a deleted way; a deleted way is found when at least ``share`` of it lies that
close to suggestions.

Some deleted ways cannot be told apart from the ways that remain by any 2-D evidence: service
tunnels stacked under mapped streets, duplicated ways, service lanes 3 m between two mapped
pedestrian ways. ``score`` counts a deleted way as *beside kept OSM* when ``share`` of it lies
within ``BESIDE_KEPT_M`` of the kept road lines (:func:`kept_roads`), and reports recall over
the other deleted ways too, so a reader can see which misses are conflation's fault and which
are the geometry's.
"""
from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry import box

from osmgap.conflate.gaps import is_area
from osmgap.core.aoi import Aoi, reproject
from osmgap.core.datamodel import WGS84, RoadNetwork, Suggestion
from osmgap.core.osmtags import LEVEL_KEYS
from osmgap.core.segments import explode, sample

AOI_MARGIN_DEG = 0.0005  # ~50 m
BESIDE_KEPT_M = 5.0  # a deleted way this close to kept OSM along most of it looks mapped in 2-D


@dataclass
class Experiment:
    aoi: Aoi
    kept: RoadNetwork
    deleted: np.ndarray  # metric LineStrings
    candidates: gpd.GeoDataFrame  # WGS84, confidence + highway, every way (shifted)
    crs: object


def deletion_experiment(roads: RoadNetwork, share: float = 0.2, seed: int = 0, shift_m: float = 0.0,
                        bearing_deg: float = 35.0, confidence: float = 0.75, levels: bool = True) -> Experiment:
    """Delete ``share`` of the ways (seeded); candidates are all ways moved ``shift_m`` metres
    towards ``bearing_deg`` (clockwise from north), with their ``tunnel``/``bridge``/``layer``
    tags as columns, as a GeoJSON of them read by osmgap.sources.candidates has them (a levelled
    source), unless ``levels`` is False."""
    ways = roads.ways.reset_index(drop=True)
    # the extract's extent plus a margin: ways at its very edge are not cut by the AOI border
    aoi = Aoi(box(*ways.total_bounds).buffer(AOI_MARGIN_DEG, join_style="mitre"), name="extent",
              source="deletion experiment")
    crs = aoi.metric_crs
    rng = np.random.default_rng(seed)
    gone = np.zeros(len(ways), bool)
    gone[rng.choice(len(ways), size=int(round(share * len(ways))), replace=False)] = True
    kept = RoadNetwork(ways[~gone].reset_index(drop=True), roads.nodes, roads.provenance, node_tags=roads.node_tags,
                       other_ways=roads.other_ways)
    metric = ways.to_crs(crs)
    dx, dy = shift_m * np.sin(np.radians(bearing_deg)), shift_m * np.cos(np.radians(bearing_deg))
    moved = metric.geometry.translate(dx, dy)
    tags = list(ways["tags"]) if levels and "tags" in ways.columns else None
    level_columns = {k: np.asarray([t.get(k) for t in tags], dtype=object) for k in LEVEL_KEYS} if tags else {}
    candidates = gpd.GeoDataFrame({"confidence": np.full(len(ways), confidence), "highway": ways["highway"].to_numpy(),
                                   **level_columns}, geometry=moved.to_crs(WGS84).values, crs=WGS84)
    return Experiment(aoi, kept, np.asarray(metric.geometry.values[gone], dtype=object), candidates, crs)


def score(suggestions: list[Suggestion], deleted: np.ndarray, crs: object, radius_m: float = 10.0,
          share: float = 0.7, min_way_m: float = 30.0, kept: np.ndarray | None = None) -> dict[str, float]:
    """Precision and recall of suggested lines against the deleted ways (all metric in ``crs``).
    Lengths "within radius_m" are measured on points every metre along the lines. With the
    ``kept`` (metric) ways, also the recall of deleted length that does not lie beside them."""
    lines = np.asarray([reproject(s.geometry, WGS84, crs) for s in suggestions if s.geometry.geom_type == "LineString"],
                       dtype=object)
    s_len, s_on = _length_near(lines, deleted, radius_m)
    d_len, d_on = _length_near(deleted, lines, radius_m)
    found = d_on >= share * d_len
    long_enough = d_len >= min_way_m
    extra: dict[str, float] = {}
    if kept is not None:
        _, k_on = _length_near(deleted, kept, BESIDE_KEPT_M)
        apart = k_on < share * d_len
        long_apart = apart & long_enough
        extra = {"beside_kept_share": float(d_len[~apart].sum() / max(d_len.sum(), 1e-9)),
                 "recall_length_apart": float(d_on[apart].sum() / d_len[apart].sum()) if apart.any() else 1.0,
                 "recall_ways_apart": float(found[long_apart].mean()) if long_apart.any() else 1.0,
                 "deleted_km_apart": float(d_len[apart].sum() / 1000), "deleted_ways_long_apart": int(long_apart.sum())}
    return {
        "suggestions": len(lines),
        "precision_suggestions": float(np.mean(s_on >= share * s_len)) if len(lines) else 1.0,
        "precision_length": float(s_on.sum() / s_len.sum()) if len(lines) else 1.0,
        "recall_length": float(d_on.sum() / d_len.sum()) if len(deleted) else 1.0,
        "recall_ways": float(found[long_enough].mean()) if long_enough.any() else 1.0,
        "recall_all_ways": float(found.mean()) if len(deleted) else 1.0,
        "deleted_ways": int(len(deleted)), "deleted_ways_long": int(long_enough.sum()),
        "suggested_km": float(s_len.sum() / 1000), "deleted_km": float(d_len.sum() / 1000),
        **extra,
    }


def kept_roads(exp: Experiment) -> np.ndarray:
    """The kept ways (metric) beside which a deleted way is invisible in 2-D: road lines, not the
    outlines of mapped areas (``area=yes`` squares and yards), which conflation does not let
    hide a road running along them (osmgap.conflate.gaps), so a road missed there is conflation's miss."""
    ways = exp.kept.ways
    area = np.array([is_area(t) for t in ways["tags"]], bool) if "tags" in ways.columns else np.zeros(len(ways), bool)
    return np.asarray(ways.to_crs(exp.crs).geometry.values[~area], dtype=object)


def _length_near(lines: np.ndarray, others: np.ndarray, radius_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Per line: its length, and how much of it lies within ``radius_m`` of any of ``others``."""
    if not len(lines):
        return np.zeros(0), np.zeros(0)
    length = shapely.length(lines)
    if not len(others):
        return length, np.zeros(len(lines))
    pts = sample(explode(lines), 1.0)
    hit = np.zeros(len(pts), bool)
    hit[shapely.STRtree(others).query(shapely.points(pts.xy), predicate="dwithin", distance=radius_m)[0]] = True
    return length, length * np.bincount(pts.line, weights=hit, minlength=len(lines)) / np.maximum(
        1, np.bincount(pts.line, minlength=len(lines)))
