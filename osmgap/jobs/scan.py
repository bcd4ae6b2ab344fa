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

import logging
import math
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
import torch
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

from osmgap.conflate.params import ConflateParams
from osmgap.core.aoi import Aoi, reproject
from osmgap.core.atomic import check_output_dir, staged_output_dir, write_text_atomic
from osmgap.core.datamodel import WGS84
from osmgap.core.jsontext import strict_json
from osmgap.core.traces import GpsTraces
from osmgap.errors import InputError
from osmgap.export.edited import keep_edited
from osmgap.export.scanmap import Basemap, leaflet_assets, lines_collection, parse_basemap, write_scan_map
from osmgap.gps.discovery import DiscoveryParams, discovery_grid, gps_evidence
from osmgap.graph.skeleton import GraphParams, extract_graph
from osmgap.jobs.coverage import coverage_block, partly_covered
from osmgap.jobs.diff import DiffRequest, demonstration_for, resolve_sources
from osmgap.model.infer import predict_raster
from osmgap.model.nets import ModelMeta, load_checkpoint, pick_device
from osmgap.sources.gps import GpsSource, load_traces
from osmgap.sources.imagery import (
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
    imagery_name,
    lonlat_to_tile,
    measure_any_coverage,
    open_window_reader,
    open_xyz,
    stand_in_warning,
)
from osmgap.workspace.outputs import RUN_OUTPUTS

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
    """What the scan found in one tile (lengths in metres, inside the AOI and the imagery)."""

    tile: Tile
    uncovered_m: float  # evidence farther than the tolerance from every OSM way: the score
    predicted_m: float
    osm_m: float
    scanned_km2: float
    extra: dict[str, Any] = field(default_factory=dict)
    unmapped: np.ndarray = field(default_factory=lambda: np.zeros(0, object))  # the score's lines (metric)

    @property
    def score(self) -> float:
        return self.uncovered_m


@dataclass
class ScanInputs:
    """An opened scan: the AOI, the OSM roads and the evidence: imagery with the model, GPS
    traces (in the AOI's metric CRS), or both."""

    aoi: Aoi
    imagery: AnyImagery | None
    osm_ways: gpd.GeoDataFrame  # WGS84
    net: torch.nn.Module | None = None
    meta: ModelMeta | None = None
    device: torch.device | None = None
    traces: GpsTraces | None = None
    tile_px: int = 512
    overlap_px: int = 64
    batch: int | None = None  # None: auto_batch, from free memory


def scan(inputs: ScanInputs, zoom: int, tolerance_m: float = ConflateParams.tolerance_m) -> list[TileScore]:
    """Score every tile of ``zoom`` over the AOI ∩ imagery footprint, one block at a time."""
    area = inputs.aoi.geometry
    if inputs.imagery is not None:
        area = area.intersection(box(*inputs.imagery.bounds_wgs84))
    tiles = tiles_over(area, zoom) if not area.is_empty else []
    blocks: dict[Tile, list[Tile]] = defaultdict(list)
    for t in tiles:
        blocks[t.parent(BLOCK_LEVELS)].append(t)
    crs = inputs.aoi.metric_crs
    osm_metric = inputs.osm_ways.to_crs(crs).geometry.to_numpy() if len(inputs.osm_ways) else np.zeros(0, object)
    osm_tree = shapely.STRtree(osm_metric)
    params = GraphParams(threshold=inputs.meta.threshold if inputs.meta else 0.5)
    scores: list[TileScore] = []
    for block in sorted(blocks):
        members = sorted(blocks[block])
        block_area = _union_bounds(members).intersection(area)
        lines = predicted_lines(inputs, block_area, params) if inputs.imagery is not None else np.zeros(0, object)
        near = osm_tree.query(reproject(block_area, WGS84, crs), predicate="dwithin", distance=tolerance_m)
        block_scores = score_tiles(members, area, crs, lines, osm_metric[near], tolerance_m)
        if inputs.traces is not None:
            add_gps(block_scores, area, crs, gps_lines(inputs, block_area), np.concatenate([osm_metric[near], lines]),
                    tolerance_m)
        scores += block_scores
    return scores


def predicted_lines(inputs: ScanInputs, block_wgs84: BaseGeometry, params: GraphParams) -> np.ndarray:
    """The road graph's edges (metric LineStrings) over a block and a margin around it."""
    # called only for a scan with imagery, whose model run_scan loads alongside it
    assert inputs.imagery is not None and inputs.net is not None and inputs.meta is not None
    crs = inputs.aoi.metric_crs
    grid = analysis_grid(inputs.imagery, with_context(block_wgs84, crs), crs, inputs.meta.resolution_m)
    with open_window_reader(inputs.imagery, grid) as reader:
        prob = predict_raster(inputs.net, inputs.meta, reader, tile=inputs.tile_px, overlap=inputs.overlap_px,
                              batch=inputs.batch, device=inputs.device)
    graph = extract_graph(prob, params)
    return np.asarray([d["geometry"] for _, _, d in graph.edges(data=True)], dtype=object)


def gps_lines(inputs: ScanInputs, block_wgs84: BaseGeometry) -> np.ndarray:
    """The GPS road graph's edges (metric) over a block and a margin around it."""
    assert inputs.traces is not None  # called only for a scan with GPS traces
    crs = inputs.aoi.metric_crs
    bounds = reproject(with_context(block_wgs84, crs), WGS84, crs).bounds
    params = DiscoveryParams()
    margin = 3 * params.density.sigma_m  # traces just outside still blur in
    traces = inputs.traces.within((bounds[0] - margin, bounds[1] - margin, bounds[2] + margin, bounds[3] + margin))
    if len(traces) == 0:
        return np.zeros(0, object)
    graph = gps_evidence(traces, discovery_grid(bounds, inputs.aoi.metric_crs, params), params).graph
    return np.asarray([d["geometry"] for _, _, d in graph.edges(data=True)], dtype=object)


def add_gps(scores: list[TileScore], area_wgs84: BaseGeometry, crs: Any, lines: np.ndarray, known: np.ndarray,
            tolerance_m: float) -> None:
    """Add to each tile's score the GPS road that no OSM way and no predicted road explains."""
    gps = score_tiles([s.tile for s in scores], area_wgs84, crs, lines, known, tolerance_m)
    for s, g in zip(scores, gps):
        s.uncovered_m += g.uncovered_m
        s.unmapped = np.concatenate([s.unmapped, g.unmapped])
        s.extra.update({"gps_m": round(g.predicted_m, 1), "gps_uncovered_m": round(g.uncovered_m, 1)})


def score_tiles(tiles: Iterable[Tile], area_wgs84: BaseGeometry, crs: Any, lines: np.ndarray,
                osm_metric: np.ndarray, tolerance_m: float) -> list[TileScore]:
    """Predicted, OSM and uncovered road length per tile (each tile clipped to ``area_wgs84``)."""
    tiles = list(tiles)
    cells = reproject(np.asarray([t.polygon().intersection(area_wgs84) for t in tiles], dtype=object), WGS84, crs)
    reach = shapely.union_all(shapely.buffer(osm_metric, tolerance_m)) if len(osm_metric) else None
    uncovered = lines if reach is None or not len(lines) else shapely.difference(lines, reach)
    out = []
    for tile, cell in zip(tiles, cells):
        shapely.prepare(cell)
        unmapped = _inside(uncovered, cell)
        out.append(TileScore(tile, uncovered_m=float(shapely.length(unmapped).sum()),
                             predicted_m=_length_inside(lines, cell), osm_m=_length_inside(osm_metric, cell),
                             scanned_km2=float(cell.area) / 1e6, unmapped=unmapped))
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


def josm_query(tile: Tile) -> str:
    """The query of JOSM remote control's ``load_and_zoom`` for a tile."""
    west, south, east, north = tile.bounds()
    return f"left={west:.7f}&right={east:.7f}&top={north:.7f}&bottom={south:.7f}"


def id_editor_url(tile: Tile) -> str:
    """iD on openstreetmap.org, centred on the tile one zoom level in."""
    west, south, east, north = tile.bounds()
    return (f"https://www.openstreetmap.org/edit?editor=id#map={tile.z + 1}/"
            f"{(south + north) / 2:.6f}/{(west + east) / 2:.6f}")


def tiles_feature_collection(scores: list[TileScore]) -> dict[str, Any]:
    """tiles.geojson: one Polygon per tile, ranked by score (rank 1 = most unmapped road)."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i].score, scores[i].tile))
    rank = {i: r + 1 for r, i in enumerate(order)}
    features = []
    for i, s in enumerate(scores):
        t = s.tile
        props = {"id": t.id, "z": t.z, "x": t.x, "y": t.y, "rank": rank[i], **_centre(t),
                 "score": round(s.score, 1), "uncovered_m": round(s.uncovered_m, 1),
                 "predicted_m": round(s.predicted_m, 1), "osm_m": round(s.osm_m, 1),
                 "scanned_km2": round(s.scanned_km2, 5), "josm_query": josm_query(t), "id_url": id_editor_url(t),
                 **s.extra}
        features.append({"type": "Feature", "id": t.id, "geometry": shapely.geometry.mapping(t.polygon()),
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


def summary_of(scores: list[TileScore], zoom: int, tolerance_m: float) -> dict[str, Any]:
    top = sorted(scores, key=lambda s: (-s.score, s.tile))[:10]
    return {"zoom": zoom, "tiles": len(scores), "tiles_with_unmapped_road": sum(s.score > 0 for s in scores),
            "tolerance_m": tolerance_m,
            "predicted_km": round(sum(s.predicted_m for s in scores) / 1000, 3),
            "uncovered_km": round(sum(s.uncovered_m for s in scores) / 1000, 3),
            "gps_km": round(sum(s.extra.get("gps_m", 0.0) for s in scores) / 1000, 3),
            "scanned_km2": round(sum(s.scanned_km2 for s in scores), 4),
            "top_tiles": [{"id": s.tile.id, "score": round(s.score, 1), **_centre(s.tile)} for s in top]}


def _centre(tile: Tile) -> dict[str, float]:
    """The tile's centre, which names the place in lists (a z/x/y id tells a mapper nothing)."""
    west, south, east, north = tile.bounds()
    return {"lat": round((south + north) / 2, 6), "lon": round((west + east) / 2, 6)}


def write_outputs(out: Path, scores: list[TileScore], summary: dict[str, Any], aoi: Aoi, title: str,
                  josm_url: str, osm_ways: gpd.GeoDataFrame | None = None, basemap: Basemap | None = None) -> None:
    """tiles.geojson, map.html (the tiles, the road they lack and the OSM roads over the
    basemap) and summary.json into ``out``, all or nothing."""
    tiles = tiles_feature_collection(scores)
    with staged_output_dir(out, replaces=RUN_OUTPUTS) as stage:
        for kept in keep_edited(Path(out), stage):  # a scan writes no suggestions.osm: one saved from JOSM stays
            log.warning(kept)
            summary.setdefault("warnings", []).append(kept)
        write_text_atomic(stage / "tiles.geojson", strict_json(tiles))
        write_scan_map(stage / "map.html", tiles, shapely.geometry.mapping(aoi.geometry), title, josm_url=josm_url,
                       osm=lines_collection(osm_ways), basemap=basemap, aoi_name=aoi.name,
                       unmapped=unmapped_collection(scores, aoi.metric_crs))
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
    roads = load_osm(osm_spec, aoi, cache_dir=req.cache_dir, graph_crs=req.gps_crs, max_age_h=req.osm_max_age_h)
    demonstration = demonstration_for(DiffRequest(aoi=req.aoi, out=req.out, osm=req.osm))
    demo_info = None
    if demonstration is not None:  # the scan sees the OSM the sample's diff sees, and says so
        roads, demo_info = demonstration.apply(roads)
    inputs = ScanInputs(aoi, imagery, roads.ways, traces=traces, tile_px=req.tile, overlap_px=req.overlap,
                        batch=req.batch)
    if imagery is not None:
        inputs.device = pick_device()
        inputs.net, inputs.meta = load_checkpoint(req.model, inputs.device)
        coarse = check_resolution(imagery, inputs.meta.resolution_m)  # far too coarse: exit 2
        if coarse:
            log.warning(coarse)
    scores = scan(inputs, req.zoom, req.tolerance_m)
    summary = {"aoi": {"name": aoi.name, "source": aoi.source, "bounds": list(aoi.bounds)},
               "imagery": imagery.provenance() if imagery else None, "gps": gps_info,
               "osm": roads.provenance, "osm_ways": len(roads),
               "coverage": coverage_block(aoi, coverage) if coverage else None,
               "model": {"path": str(req.model or "default"), "resolution_m": inputs.meta.resolution_m,
                         "threshold": inputs.meta.threshold} if inputs.meta else None,
               **summary_of(scores, req.zoom, req.tolerance_m),
               **({"demonstration": demo_info} if demo_info else {}),
               "seconds": round(time.perf_counter() - started, 2)}
    title = f"osmgap scan: {aoi.name} (z{req.zoom})" + (" - a demonstration: OSM ways were taken out" if demo_info else "")
    stood_in = stand_in_warning(imagery) if isinstance(imagery, XyzImagery) else None  # logged as the first one was used
    cache_full = prune_cache(req.xyz) if req.xyz is not None else None  # the tile cache back under its budget
    partly = partly_covered(imagery_name(imagery, whole_path=True), coverage, aoi,
                            ": the rest is outside it, nodata, NaN or where the tile server has no imagery",
                            "road") if imagery is not None and coverage is not None else None
    said = [w for w in (*aoi.warnings, partly, stood_in, cache_full) if w]
    if said:
        summary["warnings"] = said
    write_outputs(req.out, scores, summary, aoi, title, req.josm_url,
                  roads.ways, req.basemap)
    return summary
