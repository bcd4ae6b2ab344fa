"""Scan an area tile by tile: which web-mercator tiles most likely hold unmapped roads.

Where ``osmgap diff`` gives precise suggestions, the scan ranks where to look: every tile of
the AOI (z16 by default, ~600 m x cos(lat) a side, one mapper's sitting) is scored by the
length of road the model predicts there that no OSM way covers. Like the "unmapped" project
it works one block of tiles at a time (the z-2 parent tile, 4 x 4 tiles), so memory stays
bounded whatever the AOI; each block is predicted with a margin around it, so roads at a
block's edge are seen with context, and only what falls inside is counted.

A predicted road counts as covered where it lies within ``tolerance_m`` of an OSM way (the
diff's tolerance by default, wide enough for the 5-10 m imagery/OSM misalignment of real data),
so a tile's score is what is left after that. With GPS traces, the roads their coverage shows
(osmgap.gps.discovery, as the diff reads them) are evidence too: a tile also scores the GPS
road that neither OSM nor the model's road (where imagery is given) already accounts for, so a
road both show counts once. Either source alone is enough to scan.
"""
from __future__ import annotations

import contextlib
import logging
import math
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

from osmgap.conflate.conflate import NEW_ROAD_KINDS, conflate
from osmgap.conflate.params import ConflateParams
from osmgap.core.aoi import Aoi, reproject
from osmgap.core.atomic import check_output_dir, staged_output_dir, write_text_atomic
from osmgap.core.datamodel import WGS84, RoadNetwork
from osmgap.core.grid import Grid, window_grid
from osmgap.core.jsontext import strict_json
from osmgap.core.traces import GpsTraces
from osmgap.errors import InputError
from osmgap.export.edited import keep_edited
from osmgap.export.scanmap import Basemap, leaflet_assets, lines_collection, parse_basemap, write_scan_map
from osmgap.graph.skeleton import GraphParams, extract_graph
from osmgap.jobs.coverage import coverage_block, model_saw_too_little, partly_covered
from osmgap.jobs.diff import DiffRequest, StageTimer, demonstration_for, gps_only_evidence, resolve_sources
from osmgap.sources.gps import GpsSource, load_traces
from osmgap.sources.imagery import (
    WindowReader,
    analysis_grid,
    check_resolution,
    open_imagery,
    with_context,
)
from osmgap.sources.osm import load_osm
from osmgap.sources.tile_fetcher import XyzOptions, prune_cache
from osmgap.sources.xyz import (
    AnyImagery,
    XyzImagery,
    XyzWindowReader,
    imagery_name,
    lonlat_to_tile,
    measure_any_coverage,
    open_window_reader,
    open_xyz,
    stand_in_warning,
)
from osmgap.workspace.outputs import RUN_MARKERS, RUN_OUTPUTS

if TYPE_CHECKING:  # torch only where a model runs: a GPS-only scan never imports it
    import torch

    from osmgap.model.nets import ModelMeta

BLOCK_LEVELS = 2  # a block is the tile's ancestor this many zoom levels up: 4 x 4 tiles

log = logging.getLogger(__name__)


@dataclass(frozen=True, order=True)
class Tile:
    """A web-mercator (XYZ, "slippy map") tile."""

    z: int
    x: int
    y: int

    @property
    def id(self) -> str:
        return f"{self.z}/{self.x}/{self.y}"

    def bounds(self) -> tuple[float, float, float, float]:
        """(west, south, east, north) in degrees."""
        n = 2 ** self.z
        return (self.x / n * 360.0 - 180.0, _tile_lat(self.y + 1, n),
                (self.x + 1) / n * 360.0 - 180.0, _tile_lat(self.y, n))

    def polygon(self) -> BaseGeometry:
        return box(*self.bounds())

    def parent(self, levels: int) -> Tile:
        levels = min(levels, self.z)
        return Tile(self.z - levels, self.x >> levels, self.y >> levels)


def _tile_lat(y: int, n: int) -> float:
    return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * y / n))))


def tile_at(lon: float, lat: float, zoom: int) -> Tile:
    """The tile of ``zoom`` that holds (lon, lat)."""
    return Tile(zoom, *lonlat_to_tile(lon, lat, zoom))


def tiles_over(area_wgs84: BaseGeometry, zoom: int) -> list[Tile]:
    """Every tile of ``zoom`` that overlaps ``area_wgs84`` (touching along an edge is not enough)."""
    west, south, east, north = area_wgs84.bounds
    top_left, bottom_right = tile_at(west, north, zoom), tile_at(east, south, zoom)
    candidates = [Tile(zoom, x, y) for x in range(top_left.x, bottom_right.x + 1)
                  for y in range(top_left.y, bottom_right.y + 1)]
    polygons = np.asarray([t.polygon() for t in candidates], dtype=object)
    overlap = shapely.area(shapely.intersection(polygons, area_wgs84))
    return [t for t, a in zip(candidates, overlap) if a > 0]


@dataclass
class TileScore:
    """What the scan found in one tile (lengths in metres, inside its scanned part)."""

    tile: Tile
    uncovered_m: float  # evidence farther than the tolerance from every OSM way: the score
    predicted_m: float
    osm_m: float
    scanned_km2: float  # where evidence was looked at (usable imagery; GPS alone: a tile some fix reaches); 0: not
    cell: BaseGeometry  # the tile ∩ the AOI ∩ the imagery's usable footprint (metric): where the lengths are measured
    extra: dict[str, Any] = field(default_factory=dict)
    unmapped: np.ndarray = field(default_factory=lambda: np.zeros(0, object))  # the score's lines (metric)

    @property
    def score(self) -> float:
        return self.uncovered_m


@dataclass
class ScanInputs:
    """An opened scan: the AOI, the OSM roads and the evidence: imagery with the model, GPS
    traces (in the AOI's metric CRS) with the road they show that OSM cannot explain, or both."""

    aoi: Aoi
    imagery: AnyImagery | None
    osm_ways: gpd.GeoDataFrame  # WGS84
    net: torch.nn.Module | None = None
    meta: ModelMeta | None = None
    device: torch.device | None = None
    traces: GpsTraces | None = None
    gps_road: np.ndarray = field(default_factory=lambda: np.zeros(0, object))  # matched_evidence's edges (metric)
    gps_lines: np.ndarray = field(default_factory=lambda: np.zeros(0, object))  # the diff's new roads from them
    footprint: BaseGeometry | None = None  # the AOI's part under usable pixels (WGS84); None: the imagery's box
    tile_px: int = 512
    overlap_px: int = 64
    batch: int | None = None  # None: auto_batch, from free memory


def scanned_area(inputs: ScanInputs) -> BaseGeometry:
    """The AOI where the evidence can be looked at (WGS84): with imagery, only under its usable
    pixels, so nodata and the world beyond the image never read as "looked, nothing missing"."""
    area = inputs.aoi.geometry
    if inputs.imagery is not None:
        area = area.intersection(inputs.footprint if inputs.footprint is not None else box(*inputs.imagery.bounds_wgs84))
    return area


def scan(inputs: ScanInputs, zoom: int, tolerance_m: float = ConflateParams.tolerance_m) -> list[TileScore]:
    """Score every tile of ``zoom`` over the scanned area, one block at a time."""
    area = scanned_area(inputs)
    tiles = tiles_over(area, zoom) if not area.is_empty else []
    blocks: dict[Tile, list[Tile]] = defaultdict(list)
    for t in tiles:
        blocks[t.parent(BLOCK_LEVELS)].append(t)
    crs = inputs.aoi.metric_crs
    osm_metric = inputs.osm_ways.to_crs(crs).geometry.to_numpy() if len(inputs.osm_ways) else np.zeros(0, object)
    osm_tree = shapely.STRtree(osm_metric)
    gps_tree = shapely.STRtree(inputs.gps_lines)
    params = GraphParams(threshold=inputs.meta.threshold if inputs.meta else 0.5)
    scores: list[TileScore] = []
    with _aoi_reader(inputs) as reader:
        for block in sorted(blocks):
            members = sorted(blocks[block])
            block_area = _union_bounds(members).intersection(area)
            block_metric = reproject(block_area, WGS84, crs)
            lines = predicted_lines(inputs, reader, block_area, params) if reader is not None else np.zeros(0, object)
            near = osm_tree.query(block_metric, predicate="dwithin", distance=tolerance_m)
            block_scores = score_tiles(members, area, crs, lines, osm_metric[near], tolerance_m)
            if inputs.traces is not None:
                gps = inputs.gps_lines[gps_tree.query(block_metric, predicate="intersects")]
                add_gps(block_scores, inputs.traces, gps, inputs.gps_road, np.concatenate([osm_metric[near], lines]),
                        tolerance_m, gps_alone=inputs.imagery is None)
            scores += block_scores
    return scores


@contextlib.contextmanager
def _aoi_reader(inputs: ScanInputs) -> Iterator[WindowReader | XyzWindowReader | None]:
    """One reader on one analysis grid over the whole AOI (with context): every block is predicted
    by that grid's own sliding windows, so a pixel's probability does not depend on how the
    blocks (``--zoom``) cut the AOI (each block on a grid of its own gave a road 0.78 at one zoom
    and 0.17 at another). None for a scan without imagery."""
    if inputs.imagery is None or inputs.meta is None:
        yield None
        return
    crs = inputs.aoi.metric_crs
    grid = analysis_grid(inputs.imagery, with_context(inputs.aoi.geometry, crs), crs, inputs.meta.resolution_m)
    with open_window_reader(inputs.imagery, grid) as reader:
        yield reader


def _edges(graph: Any) -> np.ndarray:
    """A road graph's edge geometries."""
    return np.asarray([d["geometry"] for _, _, d in graph.edges(data=True)], dtype=object)


def predicted_lines(inputs: ScanInputs, reader: WindowReader | XyzWindowReader, block_wgs84: BaseGeometry,
                    params: GraphParams) -> np.ndarray:
    """The road graph's edges (metric LineStrings) over a block and a margin around it, from the
    AOI-wide grid's windows that touch it (osmgap.model.infer.predict_region)."""
    from osmgap.core.datamodel import ProbabilityRaster
    from osmgap.model.infer import predict_region  # imagery scans only: a GPS-only one never loads torch
    from osmgap.model.nets import inference_net

    # called only for a scan with imagery, whose model run_scan loads alongside it
    assert inputs.net is not None and inputs.meta is not None
    grid = reader.grid
    region = _pixel_window(grid, reproject(with_context(block_wgs84, grid.crs), WGS84, grid.crs).bounds)
    if region is None:
        return np.zeros(0, object)
    prob = predict_region(inference_net(inputs.net, inputs.meta.in_channels), inputs.meta, reader.read, grid.height,
                          grid.width, region, tile=inputs.tile_px, overlap=inputs.overlap_px, batch=inputs.batch,
                          device=inputs.device)
    sub = window_grid(grid, region)
    return _edges(extract_graph(ProbabilityRaster(prob, sub.transform, sub.crs), params))


def _pixel_window(grid: Grid, bounds: tuple[float, float, float, float]) -> tuple[int, int, int, int] | None:
    """The (row0, col0, row1, col1) window of ``grid`` under ``bounds`` (its CRS), clipped to it;
    None where they do not meet."""
    t = grid.transform
    minx, miny, maxx, maxy = bounds
    c0, c1 = max(0, math.floor((minx - t.c) / t.a)), min(grid.width, math.ceil((maxx - t.c) / t.a))
    r0, r1 = max(0, math.floor((t.f - maxy) / -t.e)), min(grid.height, math.ceil((t.f - miny) / -t.e))
    return (r0, c0, r1, c1) if r1 > r0 and c1 > c0 else None


def gps_lines(aoi: Aoi, traces: GpsTraces, roads: RoadNetwork) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """What the traces show, read as ``osmgap diff --gps`` reads them (metric): the map-matched
    road the OSM network (``roads``) cannot explain, and the new roads the diff suggests from it;
    not raw density ridges (a ridge 15 m beside a mapped street is that street: a complete map
    must score ~0). Also the warnings the diff gives about them."""
    from osmgap.gps.discovery import gps_conflate_params  # GPS scans only, as in the diff

    run = gps_only_evidence(aoi, traces, StageTimer(), roads, connections=False)
    area = aoi.to_metric(aoi.geometry)
    found = conflate(run.evidence, roads, area, gps_conflate_params(ConflateParams())).suggestions
    new = [s.geometry for s in found if s.kind in NEW_ROAD_KINDS]
    suggested = reproject(np.asarray(new, dtype=object), WGS84, aoi.metric_crs) if new else np.zeros(0, object)
    return _edges(run.evidence.graph), suggested, run.warnings


def add_gps(scores: list[TileScore], traces: GpsTraces, lines: np.ndarray, road: np.ndarray, known: np.ndarray,
            tolerance_m: float, gps_alone: bool) -> None:
    """Add to each tile's score the road the diff would suggest from GPS (``lines``) that no OSM
    way and no predicted road explains; ``road``: the GPS road OSM cannot explain (``gps_m``).
    With GPS alone, a tile no fix reaches is not scanned (its 0 says nothing)."""
    cells = np.asarray([s.cell for s in scores], dtype=object)
    gps = score_cells(cells, lines, known, tolerance_m)
    near = traces.within(shapely.total_bounds(cells))
    for s, (uncovered, _, unmapped) in zip(scores, gps):
        fixes = int(shapely.contains_xy(s.cell, near.x, near.y).sum()) if len(near) else 0
        s.uncovered_m += uncovered
        s.unmapped = np.concatenate([s.unmapped, unmapped])
        s.extra.update({"gps_m": round(_length_inside(road, s.cell), 1), "gps_uncovered_m": round(uncovered, 1),
                        "gps_fixes": fixes})
        if gps_alone and not fixes:
            s.scanned_km2 = 0.0


def score_tiles(tiles: Iterable[Tile], area_wgs84: BaseGeometry, crs: Any, lines: np.ndarray,
                osm_metric: np.ndarray, tolerance_m: float) -> list[TileScore]:
    """Predicted, OSM and uncovered road length per tile (each tile clipped to ``area_wgs84``)."""
    tiles = list(tiles)
    cells = reproject(np.asarray([t.polygon().intersection(area_wgs84) for t in tiles], dtype=object), WGS84, crs)
    return [TileScore(tile, uncovered_m=uncovered, predicted_m=seen, osm_m=_length_inside(osm_metric, cell),
                      scanned_km2=float(cell.area) / 1e6, cell=cell, unmapped=unmapped)
            for tile, cell, (uncovered, seen, unmapped) in zip(tiles, cells,
                                                               score_cells(cells, lines, osm_metric, tolerance_m))]


def score_cells(cells: np.ndarray, lines: np.ndarray, known: np.ndarray,
                tolerance_m: float) -> list[tuple[float, float, np.ndarray]]:
    """Per cell: the length of ``lines`` farther than the tolerance from every ``known`` line, the
    length of ``lines`` and those uncovered pieces (all metric)."""
    reach = shapely.union_all(shapely.buffer(known, tolerance_m)) if len(known) else None
    uncovered = lines if reach is None or not len(lines) else shapely.difference(lines, reach)
    out = []
    for cell in cells:
        shapely.prepare(cell)
        unmapped = _inside(uncovered, cell)
        out.append((float(shapely.length(unmapped).sum()), _length_inside(lines, cell), unmapped))
    return out


def _inside(lines: np.ndarray, cell: BaseGeometry) -> np.ndarray:
    """The pieces of ``lines`` inside ``cell`` (none empty)."""
    if not len(lines):
        return np.zeros(0, object)
    parts = shapely.intersection(lines, cell)
    return parts[~shapely.is_empty(parts)]


def _length_inside(lines: np.ndarray, cell: BaseGeometry) -> float:
    if not len(lines):
        return 0.0
    return float(shapely.length(shapely.intersection(lines, cell)).sum())


def _union_bounds(tiles: list[Tile]) -> BaseGeometry:
    b = np.asarray([t.bounds() for t in tiles])
    return box(b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max())


JOSM_PAD_M = 25.0  # around the scanned part JOSM downloads: the ends of the roads crossing its edge
ID_MIN_ZOOM = 16  # iD lets no one edit below this zoom
ID_MAX_ZOOM = 20
ZOOM_WARN_RATIO = 16.0  # a tile this many times the scanned area's size ranks nothing
EARTH_CIRCUMFERENCE_KM = 40075.016686


def place(s: TileScore, crs: Any) -> dict[str, float]:
    """Where in the tile to look (WGS84): the middle of its longest unmapped road, else a point
    of its scanned part; never the tile's centre, which may lie outside the AOI, or on another
    continent at a low zoom."""
    lines = shapely.get_parts(s.unmapped) if len(s.unmapped) else np.zeros(0, object)
    lines = lines[shapely.get_type_id(lines) == 1] if len(lines) else lines  # LineStrings
    if len(lines) and shapely.length(lines).max() > 0:
        point = shapely.line_interpolate_point(lines[np.argmax(shapely.length(lines))], 0.5, normalized=True)
    else:
        point = s.cell.point_on_surface()
    p = reproject(point, crs, WGS84)
    return {"lat": round(p.y, 6), "lon": round(p.x, 6)}


def josm_box(s: TileScore, crs: Any) -> tuple[float, float, float, float]:
    """(west, south, east, north) JOSM downloads: the scanned part's box, padded by JOSM_PAD_M."""
    west, south, east, north = s.cell.bounds
    pad = JOSM_PAD_M
    return reproject(box(west - pad, south - pad, east + pad, north + pad), crs, WGS84).bounds


def josm_query(bounds: tuple[float, float, float, float]) -> str:
    """The query of JOSM remote control's ``load_and_zoom`` for a (west, south, east, north) box."""
    west, south, east, north = bounds
    return f"left={west:.7f}&right={east:.7f}&top={north:.7f}&bottom={south:.7f}"


def id_editor_url(tile: Tile, where: dict[str, float]) -> str:
    """iD on openstreetmap.org at ``where``, one zoom level in from the tile but never below the
    zoom iD edits at."""
    zoom = min(max(ID_MIN_ZOOM, tile.z + 1), ID_MAX_ZOOM)
    return f"https://www.openstreetmap.org/edit?editor=id#map={zoom}/{where['lat']:.6f}/{where['lon']:.6f}"


def zoom_warning(area_wgs84: BaseGeometry, crs: Any, zoom: int) -> str | None:
    """The warning, logged, when a tile of ``zoom`` is far bigger than the scanned area: one or
    two tiles have nothing to rank, and their place and JOSM box say little."""
    if area_wgs84.is_empty:
        return None
    lat = area_wgs84.centroid.y
    tile_km2 = (EARTH_CIRCUMFERENCE_KM * math.cos(math.radians(lat)) / 2 ** zoom) ** 2
    area_km2 = reproject(area_wgs84, WGS84, crs).area / 1e6
    if tile_km2 <= ZOOM_WARN_RATIO * area_km2:
        return None
    better = min(22, zoom + math.ceil(math.log(tile_km2 / area_km2, 4)))
    warning = (f"WARNING: a z{zoom} tile (~{tile_km2:.3g} km2) is far bigger than the area scanned "
               f"({area_km2:.3g} km2): its tiles have nothing to rank; --zoom {better} gives tiles about its size")
    log.warning(warning)
    return warning


def model_blind_warning(summary: dict[str, Any]) -> str | None:
    """The diff's warning, logged, when the model saw no road, or far too little beside OSM's:
    a score of 0 there means the model is blind to this imagery, not that the map is complete."""
    seen, osm_km = summary["predicted_km"], summary["osm_km"]
    if not model_saw_too_little(seen, osm_km):
        return None
    saw = ("the model saw no road here" if seen == 0 else f"the model saw only {seen:.2f} km of road")
    warning = (f"WARNING: {saw} where OSM has {osm_km:.2f} km: too little to judge the area (very dark, blurred or "
               "unusual imagery does this too); a tile scoring 0 here is not a complete map")
    log.warning(warning)
    return warning


def tiles_feature_collection(scores: list[TileScore], crs: Any) -> dict[str, Any]:
    """tiles.geojson: one feature per tile, its scanned part, ranked by score (rank 1 = most
    unmapped road)."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i].score, scores[i].tile))
    rank = {i: r + 1 for r, i in enumerate(order)}
    cells = reproject(np.asarray([s.cell for s in scores], dtype=object), crs, WGS84) if scores else []
    features = []
    for i, (s, cell) in enumerate(zip(scores, cells)):
        t = s.tile
        where = place(s, crs)
        props = {"id": t.id, "z": t.z, "x": t.x, "y": t.y, "rank": rank[i], **where,
                 "score": round(s.score, 1), "uncovered_m": round(s.uncovered_m, 1),
                 "predicted_m": round(s.predicted_m, 1), "osm_m": round(s.osm_m, 1),
                 "scanned_km2": round(s.scanned_km2, 5), "scanned": s.scanned_km2 > 0,
                 "josm_query": josm_query(josm_box(s, crs)), "id_url": id_editor_url(t, where), **s.extra}
        features.append({"type": "Feature", "id": t.id,
                         "geometry": shapely.geometry.mapping(shapely.set_precision(cell, 1e-7)),
                         "properties": props})
    return {"type": "FeatureCollection", "features": features}


def unmapped_collection(scores: list[TileScore], crs: Any) -> dict[str, Any]:
    """The lines each tile's score measures (road the evidence shows that no OSM way covers),
    WGS84, for the map: where in the tile to look."""
    features = []
    for s in scores:
        for line in reproject(s.unmapped, crs, WGS84) if len(s.unmapped) else ():
            features.append({"type": "Feature", "properties": {"tile": s.tile.id},
                             "geometry": shapely.geometry.mapping(shapely.set_precision(line, 1e-6))})
    return {"type": "FeatureCollection", "features": features}


def summary_of(scores: list[TileScore], zoom: int, tolerance_m: float, crs: Any) -> dict[str, Any]:
    """The summary's figures; ``top_tiles`` lists only tiles with unmapped road (a 0 is no place to look)."""
    top = sorted((s for s in scores if s.score > 0), key=lambda s: (-s.score, s.tile))[:10]
    return {"zoom": zoom, "tiles": len(scores), "tiles_with_unmapped_road": sum(s.score > 0 for s in scores),
            "tiles_not_scanned": sum(s.scanned_km2 == 0 for s in scores),
            "tolerance_m": tolerance_m,
            "predicted_km": round(sum(s.predicted_m for s in scores) / 1000, 3),
            "uncovered_km": round(sum(s.uncovered_m for s in scores) / 1000, 3),
            "osm_km": round(sum(s.osm_m for s in scores) / 1000, 3),
            "gps_km": round(sum(s.extra.get("gps_m", 0.0) for s in scores) / 1000, 3),
            "scanned_km2": round(sum(s.scanned_km2 for s in scores), 4),
            "top_tiles": [{"id": s.tile.id, "score": round(s.score, 1), **place(s, crs)} for s in top]}


def write_outputs(out: Path, scores: list[TileScore], summary: dict[str, Any], aoi: Aoi, title: str,
                  josm_url: str, osm_ways: gpd.GeoDataFrame | None = None, basemap: Basemap | None = None) -> None:
    """tiles.geojson, map.html (the tiles, the road they lack and the OSM roads over the
    basemap, with the summary's warnings) and summary.json into ``out``, all or nothing."""
    tiles = tiles_feature_collection(scores, aoi.metric_crs)
    with staged_output_dir(out, replaces=RUN_OUTPUTS, markers=RUN_MARKERS) as stage:
        for kept in keep_edited(Path(out), stage):  # a scan writes no suggestions.osm: one saved from JOSM stays
            log.warning(kept)
            summary.setdefault("warnings", []).append(kept)
        write_text_atomic(stage / "tiles.geojson", strict_json(tiles))
        write_scan_map(stage / "map.html", tiles, shapely.geometry.mapping(aoi.geometry), title, josm_url=josm_url,
                       osm=lines_collection(osm_ways), basemap=basemap, aoi_name=aoi.name,
                       unmapped=unmapped_collection(scores, aoi.metric_crs), warnings=summary.get("warnings", []),
                       evidence={"model": summary.get("model") is not None, "gps": summary.get("gps") is not None})
        write_text_atomic(stage / "summary.json", strict_json(summary, indent=2))


@dataclass
class ScanRequest:
    aoi: str
    out: Path
    zoom: int = 16
    imagery: str | None = None
    osm: str | None = None
    model: str | None = None
    gps: list[str] = field(default_factory=list)
    gps_crs: str | None = None
    tolerance_m: float = ConflateParams.tolerance_m
    josm_url: str = ""
    tile: int = 512
    overlap: int = 64
    batch: int | None = None
    cache_dir: Path | None = None
    name: str | None = None  # the AOI's name (--name); default: from the AOI file
    basemap: Basemap | None = field(default_factory=lambda: parse_basemap("osm"))
    bands: tuple[int, ...] | None = None  # the imagery's red, green and blue (--bands); None: chosen from the file
    xyz: XyzOptions | None = None  # imagery from a tile server instead of a file
    osm_max_age_h: float | None = None  # an Overpass answer kept longer is asked again (--osm-max-age)
    osm_crs: str | None = None  # CRS of a mapconstruction graph as --osm (--osm-crs); None: gps_crs


def run_scan(req: ScanRequest) -> dict[str, Any]:
    """Score every tile of the AOI and write tiles.geojson, map.html and summary.json."""
    check_output_dir(req.out)  # said before any work, not after the model ran
    if not 1 <= req.zoom <= 22:
        raise InputError(str(req.zoom), "--zoom must be between 1 and 22")
    leaflet_assets()  # a missing Leaflet is said before any work
    started = time.perf_counter()
    aoi, imagery_path, osm_spec, _ = resolve_sources(DiffRequest(aoi=req.aoi, out=req.out, imagery=req.imagery,
                                                                 osm=req.osm, gps=list(req.gps), name=req.name,
                                                                 xyz=req.xyz))
    imagery: AnyImagery | None = (open_xyz(req.xyz, aoi.geometry) if req.xyz is not None else
                                  open_imagery(imagery_path, req.bands) if imagery_path else None)
    if imagery is not None and aoi.geometry.intersection(box(*imagery.bounds_wgs84)).is_empty:
        raise InputError(imagery.path, "imagery does not overlap the AOI")
    coverage = measure_any_coverage(imagery, aoi) if imagery is not None else None  # no usable pixel: exit 2
    traces, gps_info = load_traces(req.gps, GpsSource(req.gps_crs), aoi) if req.gps else (None, None)
    roads = load_osm(osm_spec, aoi, cache_dir=req.cache_dir, graph_crs=req.osm_crs or req.gps_crs, max_age_h=req.osm_max_age_h)
    demonstration = demonstration_for(DiffRequest(aoi=req.aoi, out=req.out, osm=req.osm))
    demo_info = None
    if demonstration is not None:  # the scan sees the OSM the sample's diff sees, and says so
        roads, demo_info = demonstration.apply(roads)
    inputs = ScanInputs(aoi, imagery, roads.ways, traces=traces, tile_px=req.tile, overlap_px=req.overlap,
                        batch=req.batch, footprint=coverage.area_wgs84 if coverage is not None else None)
    coarse = None
    if imagery is not None:
        from osmgap.model.nets import load_checkpoint, pick_device  # a GPS-only scan never loads torch

        inputs.device = pick_device()
        inputs.net, inputs.meta = load_checkpoint(req.model, inputs.device)
        coarse = check_resolution(imagery, inputs.meta.resolution_m)  # far too coarse: exit 2
        if coarse:
            log.warning(coarse)
    gps_warnings: list[str] = []
    if traces is not None:
        inputs.gps_road, inputs.gps_lines, gps_warnings = gps_lines(aoi, traces, roads)
    scores = scan(inputs, req.zoom, req.tolerance_m)
    summary = {"aoi": {"name": aoi.name, "source": aoi.source, "bounds": list(aoi.bounds)},
               "imagery": imagery.provenance() if imagery else None, "gps": gps_info,
               "osm": roads.provenance, "osm_ways": len(roads),
               "coverage": coverage_block(aoi, coverage) if coverage else None,
               "model": {"path": str(req.model or "default"), "resolution_m": inputs.meta.resolution_m,
                         "threshold": inputs.meta.threshold} if inputs.meta else None,
               **summary_of(scores, req.zoom, req.tolerance_m, aoi.metric_crs),
               **({"demonstration": demo_info} if demo_info else {}),
               "seconds": round(time.perf_counter() - started, 2)}
    title = f"osmgap scan: {aoi.name} (z{req.zoom})" + (" - a demonstration: OSM ways were taken out" if demo_info else "")
    stood_in = stand_in_warning(imagery) if isinstance(imagery, XyzImagery) else None  # logged as the first one was used
    cache_full = prune_cache(req.xyz) if req.xyz is not None else None  # the tile cache back under its budget
    partly = partly_covered(imagery_name(imagery, whole_path=True), coverage, aoi,
                            ": the rest is outside it, nodata, NaN or where the tile server has no imagery",
                            "road") if imagery is not None and coverage is not None else None
    blind = model_blind_warning(summary) if inputs.meta is not None else None
    said = [w for w in (*aoi.warnings, coarse, partly, blind, untraced_warning(summary) if imagery is None else None,
                        zoom_warning(scanned_area(inputs), aoi.metric_crs, req.zoom), *gps_warnings,
                        stood_in, cache_full) if w]
    if said:
        summary["warnings"] = said
    write_outputs(req.out, scores, summary, aoi, title, req.josm_url,
                  roads.ways, req.basemap)
    return summary


def untraced_warning(summary: dict[str, Any]) -> str | None:
    """The warning, logged, when GPS alone is the evidence and some tiles hold no fix: not
    scanned, whatever their 0 looks like."""
    missing = summary["tiles_not_scanned"]
    if not missing:
        return None
    warning = (f"WARNING: {missing} of {summary['tiles']} tiles hold no GPS fix: they were not scanned "
               "(dashed on the map), their 0 says nothing about their map")
    log.warning(warning)
    return warning
