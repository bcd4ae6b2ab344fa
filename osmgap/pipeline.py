"""The ``diff`` job: AOI -> OSM roads + imagery -> probability -> graph -> suggestions -> files.

Each stage is a plain function from its own module; this module only wires them, times them and
checks every input before the first output is written, so bad input leaves the output directory
untouched.
"""
from __future__ import annotations

import json
import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import torch
from shapely.geometry import box

from osmgap import __version__
from osmgap.aoi import Aoi, load_aoi, reproject
from osmgap.atomic import staged_output_dir, write_text_atomic
from osmgap.conflate import ConflateParams, missing_roads
from osmgap.datamodel import WGS84
from osmgap.errors import InputError
from osmgap.export.geojson import write_maproulette, write_suggestions_geojson
from osmgap.export.josm import write_josm
from osmgap.export.overview import render_overview
from osmgap.graph import GraphParams, extract_graph, graph_length_m
from osmgap.model.infer import predict_raster
from osmgap.model.nets import load_checkpoint, pick_device
from osmgap.sample import find_sample
from osmgap.sources.imagery import WindowReader, analysis_grid, open_imagery
from osmgap.sources.osm import load_osm

log = logging.getLogger(__name__)

NOT_CLEARED_WARNING = ("WARNING: the imagery is not known to be cleared for tracing into OpenStreetMap; "
                       "use these suggestions only as hints and verify them on permitted imagery")


@dataclass
class ImageryLicence:
    licence: str = "unknown"
    attribution: str = ""
    capture_date: str = "unknown"
    cleared_for_osm_tracing: bool = False


@dataclass
class DiffRequest:
    aoi: str
    out: Path
    imagery: str | None = None
    osm: str | None = None
    model: str | None = None
    licence: ImageryLicence = field(default_factory=ImageryLicence)
    tile: int = 512
    overlap: int = 64
    batch: int = 4
    graph: GraphParams | None = None
    conflate: ConflateParams = field(default_factory=ConflateParams)
    cache_dir: Path | None = None


class StageTimer:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - start, 3)
        log.info("%s: %.2f s", name, self.seconds[name])


def resolve_sources(req: DiffRequest) -> tuple[Aoi, str, str, ImageryLicence]:
    """AOI, imagery path, OSM spec and imagery licence; sample AOIs fill what is not given."""
    sample = find_sample(req.aoi)
    aoi = load_aoi(req.aoi)
    imagery, osm, licence = req.imagery, req.osm, req.licence
    if imagery is None:
        if sample is None:
            raise InputError(req.aoi, "--imagery is required unless --aoi names a sample AOI directory")
        imagery = str(sample.path("imagery"))
        info = sample.info("imagery")
        licence = ImageryLicence(info.get("licence", "unknown"), info.get("attribution", ""),
                                 info.get("capture_date", "unknown"), bool(info.get("cleared_for_osm_tracing", False)))
    if osm is None:
        if sample is None:
            raise InputError(req.aoi, "--osm is required unless --aoi names a sample AOI directory")
        osm = str(sample.path("osm"))
    return aoi, imagery, osm, licence


def run_diff(req: DiffRequest) -> dict[str, Any]:
    """Run the whole diff; returns the summary that is also written to summary.json."""
    timer = StageTimer()
    started = time.perf_counter()
    with timer("inputs"):
        aoi, imagery_path, osm_spec, licence = resolve_sources(req)
        imagery = open_imagery(imagery_path)
        device = pick_device()
        net, meta = load_checkpoint(req.model, device)
        grid = analysis_grid(imagery, aoi.geometry, aoi.metric_crs, meta.resolution_m)
    with timer("osm"):
        roads = load_osm(osm_spec, aoi, cache_dir=req.cache_dir)
    with timer("segment"), WindowReader(imagery, grid) as reader:
        prob = predict_raster(net, meta, reader, tile=req.tile, overlap=req.overlap, batch=req.batch, device=device)
    with timer("graph"):
        graph = extract_graph(prob, req.graph or GraphParams(threshold=meta.threshold))
    with timer("conflate"):
        area_wgs = aoi.geometry.intersection(box(*imagery.bounds_wgs84))
        suggestions = missing_roads(graph, roads.ways, reproject(area_wgs, WGS84, grid.crs), prob, req.conflate)
    warnings = [] if licence.cleared_for_osm_tracing else [NOT_CLEARED_WARNING]
    for w in warnings:
        log.warning(w)
    imagery_info = {**imagery.provenance(), **licence.__dict__}
    per_suggestion = {"imagery_licence": licence.licence, "imagery_attribution": licence.attribution,
                      "imagery_date": licence.capture_date, **({"warning": warnings[0]} if warnings else {})}
    summary: dict[str, Any] = {
        "osmgap_version": __version__,
        "aoi": {"name": aoi.name, "source": aoi.source, "bounds": list(aoi.bounds), "area_km2": round(aoi.area_km2(), 4)},
        "suggestions": len(suggestions),
        "km_suggested": round(sum(s.length_m for s in suggestions) / 1000, 3),
        "by_kind": _count_by_kind(suggestions),
        "predicted_road_km": round(graph_length_m(graph) / 1000, 3),
        "osm_ways": len(roads),
        "imagery": imagery_info,
        "osm": roads.provenance,
        "model": {"path": str(req.model or "default"), "arch": meta.arch, "encoder": meta.encoder,
                  "resolution_m": meta.resolution_m, "threshold": meta.threshold},
        "device": str(device), "torch_threads": torch.get_num_threads(),
        "grid": {"crs": grid.crs.to_string(), "width": grid.width, "height": grid.height},
        "warnings": warnings,
    }
    notes = [f"Imagery: {licence.attribution or imagery.path.name} ({licence.licence}, captured {licence.capture_date}).",
             f"Roads: {roads.provenance.get('attribution', '(c) OpenStreetMap contributors')} (ODbL).", *warnings]
    with staged_output_dir(req.out) as stage:
        with timer("write"):
            write_josm(stage / "suggestions.osm", suggestions, aoi.bounds, existing_nodes=roads.nodes, notes=notes)
            write_suggestions_geojson(stage / "suggestions.geojson", suggestions, per_suggestion)
            write_maproulette(stage / "maproulette.geojson", suggestions, per_suggestion)
            render_overview(stage / "overview.png", imagery, grid, roads.ways, graph, suggestions,
                            f"osmgap diff: {aoi.name}: {len(suggestions)} suggestions, {summary['km_suggested']} km",
                            " ".join(notes))
        summary["seconds"] = {**timer.seconds, "total": round(time.perf_counter() - started, 3)}
        write_text_atomic(stage / "summary.json", json.dumps(summary, indent=2, default=str))
    return summary


def _count_by_kind(suggestions: list) -> dict[str, int]:
    counts: dict[str, int] = {}
    for s in suggestions:
        counts[s.kind] = counts.get(s.kind, 0) + 1
    return counts
