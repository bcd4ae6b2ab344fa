"""Diff evidence of roads against OSM: the conflation stage, wired from its single-job parts.

Evidence is a metric road graph (from imagery: osmgap.graph.skeleton; from any road lines:
osmgap.graph.lines) plus, for imagery, the probability raster. The stage
1. measures and removes the offset between evidence and OSM (osmgap.conflate.offset),
2. fits the tolerances to how closely the evidence follows OSM (osmgap.conflate.alignment),
3. finds missing roads (osmgap.conflate.gaps), almost-junctions (osmgap.conflate.links), unconnected crossings
   (osmgap.conflate.crossings) and, when asked, unsupported OSM ways (osmgap.conflate.support),
4. marks parking-lot aisles (osmgap.conflate.parking), and
5. turns it all into suggestions with routing impact, priority and stable ids
   (osmgap.conflate.suggestions). Everything is measured in the evidence's metric CRS.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import shapely
from affine import Affine
from shapely.geometry import LineString
from shapely.geometry.base import BaseGeometry

from osmgap.conflate import alignment, offset
from osmgap.conflate.crossings import find_misconnections
from osmgap.conflate.gaps import Candidates, Gap, find_gaps
from osmgap.conflate.ids import lone_id
from osmgap.conflate.links import find_links
from osmgap.conflate.osmindex import OsmIndex, index_osm
from osmgap.conflate.otherways import along_other_ways
from osmgap.conflate.params import ConflateParams
from osmgap.conflate.parking import aisle_area, on_aisles
from osmgap.conflate.suggestions import Draft, finish, from_crossing, from_gaps, from_links, from_unsupported
from osmgap.conflate.support import find_unsupported
from osmgap.core.aoi import reproject
from osmgap.core.datamodel import CUT_AT_EDGE, WGS84, ProbabilityRaster, RoadNetwork, Suggestion
from osmgap.core.grid import Grid, grid_over
from osmgap.core.memory import release_pages, trim_heap
from osmgap.core.osmtags import RETAG_INSTEAD, way_level
from osmgap.core.threads import MAX_THREADS, in_order, usable_cores

__all__ = ["ConflateParams", "Evidence", "Conflation", "conflate", "missing_roads", "mean_probability", "stable_id"]

OFFSET_GRID_M = 1.0  # pixel size for measuring the offset of line evidence
NEW_ROAD_KINDS = ("missing_road", "missing_link")  # the kinds that add a road to OSM
PARKING_REACH_M = 60.0


@dataclass
class Evidence:
    """What shows the roads: a metric graph (edges with ``geometry``, optional ``confidence`` and
    ``highway``), and for imagery the probability raster it came from."""

    graph: nx.Graph
    prob: ProbabilityRaster | None = None


@dataclass
class Conflation:
    suggestions: list[Suggestion]
    offset: offset.Offset
    report: dict[str, Any] = field(default_factory=dict)


def conflate(evidence: Evidence, roads: RoadNetwork, area_metric: BaseGeometry,
             params: ConflateParams = ConflateParams()) -> Conflation:
    """All suggestion kinds for ``evidence`` against ``roads`` inside ``area_metric``; missing
    roads inside ``roads.parking`` (OSM ``amenity=parking`` areas, WGS84) are aisles."""
    crs = evidence.graph.graph["crs"]
    osm = index_osm(roads, crs)
    shift = _offset(evidence, roads.ways, area_metric, params)
    prob = _moved(evidence.prob, shift.correction)
    _settle(prob)
    usable = area_metric.buffer(-params.edge_margin_m)
    cands = _candidates(evidence.graph, usable, params, shift.correction)
    spread = alignment.measure_spread(cands.lines, osm, params)
    fitted = alignment.fitted_params(params, spread)
    pr = alignment.probe(cands.lines, osm, fitted)
    _settle(None)
    score = (lambda lines: mean_probabilities(prob, lines)) if prob is not None else None
    dropped: dict[str, int] = {}
    gaps = find_gaps(cands, pr, osm, fitted, score, dropped)
    _settle(prob)
    drafts = _gap_drafts(gaps, osm, crs, fitted)
    joined = {j.vertex for d in drafts for j in d.joins if j.vertex is not None}
    links = find_links(osm, pr.segs, cands.confidence, alignment.retraced(pr, osm, fitted),
                       usable, fitted, joined, cands.levels())
    _settle(None)
    drafts += from_links([k for k in links if k.confidence >= fitted.min_confidence], osm, crs)
    drafts += [from_crossing(c, osm, crs)
               for c in find_misconnections(osm, evidence.graph, usable, fitted, shift.correction)]
    if params.unsupported:
        along = (lambda line: probability_along(prob, line)) if prob is not None else None
        drafts += [from_unsupported(u, osm, crs) for u in find_unsupported(osm, pr.segs, usable, fitted, along)]
    drafts = _clear_of_unreadable(drafts, roads.unreadable, crs, area_metric, params.parallel_max_m, dropped)
    drafts, mapped_otherwise = _clear_of_other_ways(drafts, roads.other_ways, crs, fitted,
                                                    bool(np.isfinite(cands.levels()).any()), dropped)
    lots = reproject(np.asarray(roads.parking.geometry.values, dtype=object), WGS84, crs) if len(roads.parking) else None
    _mark_parking(drafts, cands.lines, osm, lots)
    suggestions = finish(drafts, osm)
    report = {"alignment_spread_m": None if spread is None else round(spread, 2),
              "tolerance_m": round(fitted.tolerance_m, 2), "parallel_band_m": round(fitted.parallel_max_m, 1),
              "candidate_edges": len(cands.lines), "dropped": dropped,
              **({"mapped_otherwise": mapped_otherwise} if mapped_otherwise else {}),
              **({"retag_instead": retag} if (retag := _to_retag(suggestions)) else {})}
    return Conflation(suggestions, shift, report)


def missing_roads(graph: nx.Graph, osm_ways: gpd.GeoDataFrame, area_metric: BaseGeometry,
                  prob: ProbabilityRaster | None = None,
                  params: ConflateParams = ConflateParams()) -> list[Suggestion]:
    """Only the ``missing_road`` suggestions of :func:`conflate` (OSM given as bare ways)."""
    result = conflate(Evidence(graph, prob), RoadNetwork(osm_ways), area_metric, params)
    return [s for s in result.suggestions if s.kind == "missing_road"]


def stable_id(geom_wgs84: LineString) -> str:
    """The id of a lone suggestion with no OSM anchor; run ids come from osmgap.conflate.ids."""
    return lone_id("missing_road", geom_wgs84)


def mean_probability(prob: ProbabilityRaster, line: LineString, step_m: float = 1.0) -> float:
    """Mean road probability sampled every ``step_m`` along ``line``."""
    return float(probability_along(prob, line, step_m).mean())


def mean_probabilities(prob: ProbabilityRaster, lines: list[LineString], step_m: float = 1.0,
                       release_every: int = 1024) -> np.ndarray:
    """:func:`mean_probability` of every line, the same numbers, with their points placed and read
    in one go per ``release_every`` lines (a city's gaps one by one took a second at 100 km2),
    those blocks side by side on threads (shapely places the points without the GIL); the pages
    of a file-backed raster read so far are dropped after each block (a city's gaps would
    otherwise bring all of it into memory)."""
    def block_means(first: int) -> list[float]:
        block = np.asarray(lines[first:first + release_every], dtype=object)
        lengths = shapely.length(block)
        counts = np.maximum(2, (lengths / step_m).astype(int) + 1)
        along = np.concatenate([np.linspace(0, length, n) for length, n in zip(lengths.tolist(), counts.tolist())])
        values = _probability_at(prob, shapely.line_interpolate_point(np.repeat(block, counts), along))
        release_pages(prob.prob)
        ends = np.cumsum(counts)
        return [float(values[e - n:e].mean()) for e, n in zip(ends.tolist(), counts.tolist())]

    firsts = range(0, len(lines), release_every)
    means = [m for block in in_order(block_means, firsts, min(len(firsts), usable_cores(), MAX_THREADS)) for m in block]
    return np.asarray(means, dtype=float).reshape(len(lines))


def probability_along(prob: ProbabilityRaster, line: LineString, step_m: float = 1.0) -> np.ndarray:
    """Road probability every ``step_m`` along ``line``."""
    n = max(2, int(line.length / step_m) + 1)
    return _probability_at(prob, shapely.line_interpolate_point(line, np.linspace(0, line.length, n)))


def _probability_at(prob: ProbabilityRaster, points: np.ndarray) -> np.ndarray:
    """The raster's value under each point (the nearest pixel inside it)."""
    xy = shapely.get_coordinates(points)
    cols, rows = ~prob.transform @ (xy[:, 0], xy[:, 1])
    rows = np.clip(np.floor(rows).astype(int), 0, prob.prob.shape[0] - 1)
    cols = np.clip(np.floor(cols).astype(int), 0, prob.prob.shape[1] - 1)
    return prob.prob[rows, cols]


def _offset(evidence: Evidence, osm_ways: gpd.GeoDataFrame, area: BaseGeometry,
            params: ConflateParams) -> offset.Offset:
    """The evidence's offset from OSM: from the probability raster when there is one, else from
    the evidence lines rasterized like OSM."""
    if params.max_offset_m <= 0:
        return offset.Offset(reason="offset estimation switched off")
    if evidence.prob is not None:
        return offset.estimate(_raster_window(evidence.prob), osm_ways, evidence.prob.grid, params.max_offset_m)
    lines = [d["geometry"] for _, _, d in evidence.graph.edges(data=True)]
    if not lines:
        return offset.Offset(reason="no evidence lines")
    frame = gpd.GeoDataFrame({"highway": [d.get("highway", "road") for _, _, d in evidence.graph.edges(data=True)]},
                             geometry=lines, crs=evidence.graph.graph["crs"])
    grid = grid_over(tuple(area.bounds), evidence.graph.graph["crs"], OFFSET_GRID_M)
    return offset.estimate(offset.lines_raster(frame), osm_ways, grid, params.max_offset_m)


def _raster_window(p: ProbabilityRaster) -> Callable[[Grid], np.ndarray]:
    """Windows of the probability raster's own grid, sliced out of it."""
    def read(window: Grid) -> np.ndarray:
        col, row = ~p.transform @ (window.transform.c, window.transform.f)
        r, c = int(round(row)), int(round(col))
        return p.prob[r:r + window.height, c:c + window.width]
    return read


def _settle(prob: ProbabilityRaster | None) -> None:
    """Between the large steps of a city-sized conflation: hand the heap that a step's temporary
    arrays left back to the system, and drop the pages of a file-backed probability raster that
    the step read (bench/speed.py: both grow with the AOI otherwise). No collection: the steps
    leave no cycles (one after conflation at 102.7 km2 takes 0.01 s), and each walked every
    object alive (0.07 s)."""
    if prob is not None:
        release_pages(prob.prob)
    trim_heap()


def _moved(prob: ProbabilityRaster | None, by: tuple[float, float]) -> ProbabilityRaster | None:
    """The probability raster translated by ``by`` (the offset correction)."""
    if prob is None or by == (0.0, 0.0):
        return prob
    return replace(prob, transform=Affine.translation(*by) @ prob.transform)


def _candidates(graph: nx.Graph, usable: BaseGeometry, params: ConflateParams,
                shift: tuple[float, float]) -> Candidates:
    """Evidence edges moved by the offset correction and clipped to the usable area, with
    their confidence, class, level (NaN where the evidence does not say) and level tags."""
    rows = [(d["geometry"], float(d.get("confidence", params.default_confidence)), str(d.get("highway", "road")),
             float(d.get("level", np.nan)), str(d.get("level_tags", "")))
            for _, _, d in graph.edges(data=True)]
    if not rows:
        return Candidates(np.zeros(0, object), np.zeros(0), np.zeros(0, object), np.zeros(0), np.zeros(0, object))
    geoms = np.asarray([r[0] for r in rows], dtype=object)
    if shift != (0.0, 0.0):
        geoms = shapely.transform(geoms, lambda xy: xy + np.asarray(shift))
    shapely.prepare(usable)
    whole = shapely.contains(usable, geoms)
    clipped = geoms.copy()
    clipped[~whole] = shapely.intersection(geoms[~whole], usable)
    parts, owner = shapely.get_parts(clipped, return_index=True)
    is_line = (shapely.get_type_id(parts) == 1) & (shapely.length(parts) > 0)
    parts, owner = parts[is_line], owner[is_line]
    conf = np.array([r[1] for r in rows])[owner]
    hw = np.array([r[2] for r in rows], dtype=object)[owner]
    level = np.array([r[3] for r in rows])[owner]
    tags = np.array([r[4] for r in rows], dtype=object)[owner]
    return Candidates(parts, conf, hw, level, tags)


def _gap_drafts(gaps: list[Gap], osm: OsmIndex, crs: object, params: ConflateParams) -> list[Draft]:
    """Gaps become missing roads; a short one that joins an OSM dead end to another way is the
    missing link of that dead end."""
    kinds = []
    for gap in gaps:
        dead = [j for j in gap.joins if j.vertex is not None and osm.dead_end[j.vertex]]
        link = len(gap.joins) == 2 and dead and gap.line.length <= params.max_link_m
        kinds.append("missing_link" if link else "missing_road")
    return from_gaps(gaps, kinds, osm, crs)


def _clear_of_unreadable(drafts: list[Draft], unreadable: gpd.GeoDataFrame, crs: object, area: BaseGeometry,
                         reach_m: float, dropped: dict[str, int]) -> list[Draft]:
    """The drafts less those about OSM ways the source could not read whole
    (``RoadNetwork.unreadable``): OSM has a road there that osmgap cannot see. A new road
    (``NEW_ROAD_KINDS``) goes when it comes within ``reach_m`` (the widest band in which evidence
    duplicates a way) of where such a way may lie; near a way cut at the edge of an extract, whose
    unknown rest runs from its last known node out of the extract, only when it also runs from
    there out to the edge of ``area`` (a road branching off inwards is no continuation). A
    misconnection or unsupported way that names such a way goes too, unless it was only cut at
    the extract's edge: osmgap only guessed its geometry across the unknown nodes."""
    if not drafts or not len(unreadable):
        return drafts
    kinds = [d.suggestion.kind for d in drafts]
    guessed = unreadable[unreadable["reason"] != CUT_AT_EDGE]
    bad_ids = {int(i) for i in guessed["osm_id"] if i is not None}
    drop = np.array([k not in NEW_ROAD_KINDS and bool(bad_ids.intersection(d.suggestion.attachments))
                     for k, d in zip(kinds, drafts)])
    new = np.isin(kinds, NEW_ROAD_KINDS)
    known = unreadable[~unreadable.geometry.is_empty]
    if new.any() and len(known):
        geoms = reproject(np.asarray([d.suggestion.geometry for d in drafts], dtype=object), WGS84, crs)
        clues = reproject(np.asarray(known.geometry.values, dtype=object), WGS84, crs)
        cut = (known["reason"] == CUT_AT_EDGE).to_numpy()
        drop |= new & _near(geoms, clues[~cut], reach_m)
        drop |= new & _leaving(geoms, clues[cut], area.boundary, reach_m)
    if drop.any():
        dropped["about_unreadable_osm_way"] = int(drop.sum())
    return [d for d, gone in zip(drafts, drop) if not gone]


def _clear_of_other_ways(drafts: list[Draft], others: gpd.GeoDataFrame, crs: object, params: ConflateParams,
                         levelled: bool, dropped: dict[str, int]) -> tuple[list[Draft], dict[str, int]]:
    """The drafts less the new roads (``NEW_ROAD_KINDS``) that run along ways OSM maps as
    something else (osmgap.conflate.otherways; on their level where the evidence tells levels),
    and how many went per tag (``highway=footway``). One along a way to retag instead
    (RETAG_INSTEAD: a proposed road) stays, naming that way in its evidence."""
    new = [i for i, d in enumerate(drafts) if d.suggestion.kind in NEW_ROAD_KINDS]
    if not new or not len(others):
        return drafts, {}
    along = along_other_ways([drafts[i].suggestion.geometry for i in new],
                             [way_level(drafts[i].suggestion.level_tags) for i in new] if levelled else None, others,
                             crs, params.tolerance_m, params.mapped_otherwise_share, params.max_angle_deg, params.near_m)
    gone: dict[int, str] = {}
    for i, found in zip(new, along):
        if found is None:
            continue
        what, way_id = found
        if what in RETAG_INSTEAD:
            drafts[i].suggestion.evidence["retag_way"] = way_id
            drafts[i].suggestion.evidence["retag_way_now"] = what
        else:
            gone[i] = what
    if gone:
        dropped["along_way_mapped_otherwise"] = len(gone)
    return [d for i, d in enumerate(drafts) if i not in gone], dict(sorted(Counter(gone.values()).items()))


def _to_retag(suggestions: list[Suggestion]) -> dict[str, int]:
    """How many suggestions are a retag of a way OSM has otherwise (RETAG_INSTEAD), per tag."""
    return dict(sorted(Counter(str(s.evidence["retag_way_now"]) for s in suggestions
                               if "retag_way_now" in s.evidence).items()))


def _near(geoms: np.ndarray, clues: np.ndarray, reach_m: float) -> np.ndarray:
    """Which of ``geoms`` come within ``reach_m`` of any of ``clues``."""
    if not len(clues):
        return np.zeros(len(geoms), bool)
    zone = shapely.union_all(shapely.buffer(clues, reach_m))
    shapely.prepare(zone)
    return shapely.intersects(zone, geoms)


def _leaving(geoms: np.ndarray, ends: np.ndarray, boundary: BaseGeometry, reach_m: float) -> np.ndarray:
    """Which of ``geoms`` run from within ``reach_m`` of one of ``ends`` (the last known nodes of
    ways cut at an extract's edge) to within ``reach_m`` of ``boundary``: their far end, the one
    away from that node, is where the cut way would leave."""
    out = np.zeros(len(geoms), bool)
    if not len(ends):
        return out
    tree = shapely.STRtree(ends)
    for i, k in zip(*tree.query(geoms, predicate="dwithin", distance=reach_m)):
        g = geoms[i]
        if g.geom_type != "LineString":
            continue
        first, last = shapely.points(np.asarray(g.coords)[[0, -1]])
        far = last if ends[k].distance(first) <= ends[k].distance(last) else first
        out[i] |= far.distance(boundary) <= reach_m
    return out


def _mark_parking(drafts: list[Draft], edges: np.ndarray, osm: OsmIndex, lots: np.ndarray | None) -> None:
    """Missing roads through a parking lot (the evidence's shape, mapped aisles, mapped lots)
    become low-priority ``highway=service`` (unless the source classed them as some other road:
    it knows better than their shape)."""
    roads = [d for d in drafts if d.suggestion.kind == "missing_road" and d.suggestion.highway in ("road", "service")]
    if not roads:
        return
    lines = np.asarray([d.metric for d in roads], dtype=object)
    zone = aisle_area(edges, osm, lines, PARKING_REACH_M, lots)
    for d, aisle in zip(roads, on_aisles(lines, zone)):
        if aisle:
            d.suggestion.highway = "service"
            d.suggestion.evidence["parking_aisle"] = True
