"""Detect roads that appeared or vanished between two images of an area.

Aligns the after image to the before image (phase correlation), predicts roads on both with
the same model and grid, and reports appeared roads (new construction, the usual reason OSM
lacks a road) and vanished roads. With --osm, appeared roads OSM already has and vanished roads
OSM never had are listed in changes.geojson only. Writes suggestions.osm (appeared roads as new
ways), suggestions.geojson and maproulette.geojson (kinds appeared_road, vanished_road),
changes.geojson (every change), probability_before.tif and probability_after.tif (COGs on the
aligned grid), overview.png and summary.json into --out.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np

from osmgap import __version__
from osmgap.conflate.changes import (
    CHANGE_MARGIN_M,
    Change,
    changes_feature_collection,
    detect_changes,
    mark_osm,
    measure_alignment,
    moved_grid,
    to_suggestions,
    within_area,
)
from osmgap.conflate.params import ConflateParams
from osmgap.core.aoi import Aoi, load_aoi, reproject
from osmgap.core.atomic import check_output_dir, staged_output_dir, write_text_atomic
from osmgap.core.datamodel import WGS84, ProbabilityRaster, RoadNetwork, Suggestion
from osmgap.core.grid import Grid
from osmgap.core.jsontext import strict_json
from osmgap.errors import InputError
from osmgap.export.edited import keep_edited
from osmgap.export.overview import render_overview
from osmgap.export.probability import write_probability_tif
from osmgap.export.suggestion_files import write_suggestion_files
from osmgap.graph.skeleton import GraphParams
from osmgap.jobs.coverage import coverage_block, partly_covered
from osmgap.jobs.diff import NOT_CLEARED_WARNING
from osmgap.model.infer import OVERLAP_PX, WINDOW_PX, predict_raster
from osmgap.model.nets import load_checkpoint, pick_device
from osmgap.scale.changes import tiled_changes
from osmgap.scale.options import self_tiling
from osmgap.scale.tiled import tiled_evidence
from osmgap.sources import imagery as imagery_checks
from osmgap.sources.imagery import (
    Coverage,
    Imagery,
    WindowReader,
    analysis_grid,
    open_imagery,
)
from osmgap.sources.osm import load_osm
from osmgap.workspace.outputs import RUN_OUTPUTS

# One view per window, not the diff's default (osmgap.model.infer.default_views): a change is the
# difference of two predictions, and averaged views moved a weakly seen street across the threshold
# in an aligned, shifted image (2 and 8 views: a false "vanished" road in
# tests/conflate/test_change.py; 1 and 4 views: none), so change detection keeps the output it was
# validated with until views are shown to add no false changes.
CHANGE_VIEWS = 1

log = logging.getLogger(__name__)


@dataclass
class ChangeRequest:
    aoi: str
    before: str
    after: str
    out: Path
    osm: str | None = None
    gps_crs: str | None = None  # a mapconstruction graph's CRS
    model: str | None = None
    min_length_m: float = 20.0
    margin_m: float = CHANGE_MARGIN_M
    tolerance_m: float = ConflateParams.tolerance_m
    align: bool = True
    cache_dir: Path | None = None
    bands: tuple[int, ...] | None = None  # the before image's red, green, blue (--bands); None: guessed
    after_bands: tuple[int, ...] | None = None  # the after image's, when its sensor differs; None: ``bands``
    osm_max_age_h: float | None = None  # an Overpass answer kept longer is asked again (--osm-max-age)


def run_change(args: ChangeRequest) -> dict[str, Any]:
    """Detect the changes and write every output; returns the summary written to summary.json."""
    check_output_dir(args.out)  # said before any work, not after the model ran
    started = time.perf_counter()
    aoi = load_aoi(args.aoi)
    before = open_imagery(args.before, args.bands)
    after = open_imagery(args.after, args.after_bands or args.bands)
    # usable pixels of both (a blank or all-nodata image: exit 2, as in diff): elsewhere a road
    # would "vanish" into the other image's nodata
    each = (imagery_checks.measure_coverage(before, aoi), imagery_checks.measure_coverage(after, aoi))
    both = imagery_checks.common_coverage(*each, aoi)
    common = both.area_wgs84
    if common.is_empty or common.area == 0:
        raise InputError(args.after, "the two images do not overlap within the AOI")
    covered, partly = _coverage(aoi, before, after, both, each)
    roads = load_osm(args.osm, aoi, cache_dir=args.cache_dir, graph_crs=args.gps_crs, max_age_h=args.osm_max_age_h) if args.osm else None
    device = pick_device()
    net, meta = load_checkpoint(args.model, device)
    coarse = [w for w in (imagery_checks.check_resolution(image, meta.resolution_m) for image in (before, after)) if w]
    for w in coarse:  # far too coarse: exit 2 above
        log.warning(w)
    grid = analysis_grid(before, common, aoi.metric_crs, meta.resolution_m)
    with WindowReader(before, grid) as b_reader, WindowReader(after, grid) as a_reader:
        alignment = measure_alignment(b_reader, a_reader)
    if not args.align:
        alignment = replace(alignment, applied=False, reason="--no-align")
    params = GraphParams(threshold=meta.threshold)
    tiling = self_tiling(grid.width * grid.height)  # a large area tiles itself: memory stays flat
    if tiling is None:
        with WindowReader(before, grid) as b_reader:
            prob_before = predict_raster(net, meta, b_reader, device=device, views=CHANGE_VIEWS)
        with WindowReader(after, moved_grid(grid, alignment)) as a_reader:
            prob_after = predict_raster(net, meta, a_reader, device=device, views=CHANGE_VIEWS)
    else:
        del net  # the tiles load the model once in this process (osmgap.scale.tiled._model)

        def tiled(image: Imagery, on: Grid) -> ProbabilityRaster:  # the probabilities only: no graph
            return tiled_evidence(tiling, image, on, args.model, meta, None, WINDOW_PX, OVERLAP_PX, None, args.out,
                                  CHANGE_VIEWS)[0]

        prob_before, prob_after = tiled(before, grid), tiled(after, moved_grid(grid, alignment))
    prob_after = replace(prob_after, transform=grid.transform)  # aligned: pixel for pixel with the before grid
    changes = (detect_changes(prob_before, prob_after, params, args.min_length_m, args.margin_m) if tiling is None else
               tiled_changes(prob_before, prob_after, params, args.min_length_m, args.margin_m, Path(args.out).resolve().parent,
                             tiling.tile_px))
    shift = float(np.hypot(alignment.east_m, alignment.north_m)) if alignment.applied else 0.0
    changes = within_area(changes, reproject(common, WGS84, grid.crs).buffer(-(args.margin_m + shift)), args.min_length_m)
    if roads is not None:
        osm_metric = roads.ways.to_crs(grid.crs).geometry.to_numpy() if len(roads) else np.zeros(0, object)
        mark_osm(changes, osm_metric, args.tolerance_m)
    suggestions = to_suggestions(changes, grid.crs)
    summary: dict[str, Any] = {
        "osmgap_version": __version__,
        "aoi": {"name": aoi.name, "source": aoi.source, "bounds": list(aoi.bounds)},
        "before": before.provenance(), "after": after.provenance(),
        "alignment": alignment.summary(),
        "appeared": _count(changes, "appeared"), "vanished": _count(changes, "vanished"),
        "suggestions": len(suggestions),
        "by_kind": {k: sum(s.kind == k for s in suggestions) for k in ("appeared_road", "vanished_road")},
        "osm": roads.provenance if roads is not None else None,
        "grid": {"crs": grid.crs.to_string(), "width": grid.width, "height": grid.height},
        "coverage": covered,
        **({"self_tiled": True} if tiling is not None else {}),
        "warnings": list(dict.fromkeys([NOT_CLEARED_WARNING, *before.warnings, *after.warnings, *coarse, *partly])),
    }
    _write(args.out, aoi, after, grid, roads, changes, suggestions, prob_before, prob_after, summary, started)
    return summary


def _coverage(aoi: Aoi, before: Imagery, after: Imagery, both: Coverage,
              each: tuple[Coverage, Coverage]) -> tuple[dict[str, Any], list[str]]:
    """The summary's coverage block (the area analysed is where both images show usable pixels)
    and the warnings about the inputs (a repaired AOI; imagery covering only part of it, logged):
    "0 appeared, 0 vanished" over half the AOI must not read as "nothing changed" over all of it."""
    covered = coverage_block(aoi, both, before_aoi_share=each[0].aoi_share, after_aoi_share=each[1].aoi_share)
    partly = partly_covered(f"{before.path} and {after.path}", both, aoi,
                            f" where both images have usable pixels; the before image covers {each[0].aoi_share:.0%}, "
                            f"the after image {each[1].aoi_share:.0%}: the rest is outside one of them, nodata or NaN",
                            "change")
    return covered, [*aoi.warnings, *([partly] if partly else [])]


def _count(changes: list[Change], kind: str) -> dict[str, Any]:
    picked = [c for c in changes if c.change == kind]
    return {"count": len(picked), "km": round(sum(c.line.length for c in picked) / 1000, 3),
            "suggested": sum(c.actionable for c in picked)}


def _write(out: Path, aoi: Aoi, after: Imagery, grid: Grid, roads: RoadNetwork | None, changes: list[Change],
           suggestions: list[Suggestion], prob_before: ProbabilityRaster, prob_after: ProbabilityRaster,
           summary: dict[str, Any], started: float) -> None:
    """Every output into ``out``, all or nothing."""
    notes = [f"Changes between {Path(summary['before']['path']).name} and {Path(summary['after']['path']).name}.",
             NOT_CLEARED_WARNING]
    per = {"warning": NOT_CLEARED_WARNING}
    osm_ways = roads.ways if roads is not None else gpd.GeoDataFrame({"highway": []}, geometry=[], crs=WGS84)
    lines = nx.Graph(crs=grid.crs)
    for i, c in enumerate(changes):
        lines.add_edge(2 * i, 2 * i + 1, geometry=c.line, length=c.line.length)
    with staged_output_dir(out, replaces=RUN_OUTPUTS) as stage:
        for kept in keep_edited(Path(out), stage):  # a suggestions.osm saved from JOSM
            log.warning(kept)
            summary.setdefault("warnings", []).append(kept)
        write_suggestion_files(stage, suggestions, aoi.bounds, roads, notes, per)
        write_text_atomic(stage / "changes.geojson", strict_json(changes_feature_collection(changes, grid.crs)))
        write_probability_tif(stage / "probability_before.tif", prob_before)
        write_probability_tif(stage / "probability_after.tif", prob_after)
        render_overview(stage / "overview.png", after, grid, osm_ways, lines, suggestions,
                        f"osmgap change: {aoi.name}: {summary['appeared']['count']} appeared, "
                        f"{summary['vanished']['count']} vanished", " ".join(notes), evidence_label="changed roads",
                        listed=("appeared_road", "vanished_road"), osm_label="OSM roads" if roads is not None else None)
        summary["seconds"] = round(time.perf_counter() - started, 2)
        write_text_atomic(stage / "summary.json", strict_json(summary, indent=2))
