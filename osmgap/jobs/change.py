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
import shapely

from osmgap import __version__
from osmgap.conflate.changes import (
    CHANGE_MARGIN_M,
    KINDS,
    MAX_SHIFT_M,
    Alignment,
    Change,
    aligned_area,
    changes_feature_collection,
    detect_changes,
    mark_osm,
    measure_alignment,
    moved_grid,
    to_suggestions,
    withhold,
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
from osmgap.export.overview import read_backdrop, render_overview
from osmgap.export.probability import write_probability_tif
from osmgap.export.suggestion_files import write_suggestion_files
from osmgap.graph.skeleton import GraphParams, extract_graph
from osmgap.jobs.coverage import coverage_block, model_saw_too_little, partly_covered, share_text
from osmgap.jobs.diff import NOT_CLEARED_WARNING
from osmgap.model.infer import OVERLAP_PX, WINDOW_PX, predict_raster
from osmgap.model.nets import load_checkpoint, pick_device
from osmgap.scale.changes import road_graph, tiled_changes
from osmgap.scale.options import ScaleOptions, self_tiling
from osmgap.scale.tiled import tiled_evidence
from osmgap.sources import imagery as imagery_checks
from osmgap.sources.imagery import (
    Coverage,
    Imagery,
    WindowReader,
    analysis_grid,
    open_imagery,
    with_context,
)
from osmgap.sources.osm import load_osm
from osmgap.workspace.outputs import RUN_MARKERS, RUN_OUTPUTS

# One view per window, not the diff's default (osmgap.model.infer.default_views): a change is the
# difference of two predictions, and averaged views moved a weakly seen street across the threshold
# in an aligned, shifted image (2 and 8 views: a false "vanished" road in
# tests/conflate/test_change.py; 1 and 4 views: none), so change detection keeps the output it was
# validated with until views are shown to add no false changes.
CHANGE_VIEWS = 1
# a road running off one image fades in the model's output over metres before that image's edge, while
# the other date's goes on: a 25 m "vanished" road 4-22 m from an after image's nodata edge
# (tests/conflate/test_change.py, the west half nodata)
ONE_SIDED_EDGE_M = 12.0
# two dates whose pixels differ in size by more than this are from unlike sensors (_sensors_differ)
SENSOR_RESOLUTION_RATIO = 1.5

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
    # usable pixels of both (a blank or all-nodata image: exit 2, as in diff; undeclared zero fill
    # counts as nodata): elsewhere a road would "vanish" into the other image's nodata
    each = _usable(before, after, aoi)
    if imagery_checks.common_coverage(*each, aoi).area_km2 == 0:
        raise InputError(None, f"{before.path} and {after.path}: the two images do not overlap within the AOI")
    # predicted with diff's context around the AOI, so only the imagery's own edge, not the AOI's, is cut off
    context = replace(aoi, geometry=with_context(aoi.geometry, aoi.metric_crs))
    around = _usable(before, after, context)
    roads = load_osm(args.osm, aoi, cache_dir=args.cache_dir, graph_crs=args.gps_crs, max_age_h=args.osm_max_age_h) if args.osm else None
    device = pick_device()
    net, meta = load_checkpoint(args.model, device)
    coarse = [w for w in (imagery_checks.check_resolution(image, meta.resolution_m) for image in (before, after)) if w]
    for w in coarse:  # far too coarse: exit 2 above
        log.warning(w)
    grid = analysis_grid(before, imagery_checks.common_coverage(*around, context).area_wgs84, aoi.metric_crs,
                         meta.resolution_m)
    with WindowReader(before, grid) as b_reader, WindowReader(after, grid) as a_reader:
        alignment = measure_alignment(b_reader, a_reader)
    if not args.align:
        alignment = replace(alignment, applied=False, reason="--no-align", too_far=False)
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
    area = _reportable(aoi, grid, around, alignment, args.margin_m)
    changes = within_area(changes, area, args.min_length_m)
    road_km: dict[str, float | None] = {"before": _km_within(_graph_lines(prob_before, params, tiling), area),
                                        "after": _km_within(_graph_lines(prob_after, params, tiling), area), "osm": None}
    if roads is not None:
        osm = roads.ways.to_crs(grid.crs)
        changes = mark_osm(changes, osm.geometry.to_numpy(), osm["osm_id"].to_numpy(), args.tolerance_m,
                           args.min_length_m)
        road_km["osm"] = _km_within(osm.geometry.to_numpy(), area)
    withheld = _withhold(changes, alignment, road_km, before, after)
    suggestions = to_suggestions(changes, grid.crs)
    analysed = _coverage_of(area, grid, aoi)
    covered, partly = _coverage(aoi, before, after, analysed, each, args.margin_m)
    summary: dict[str, Any] = {
        "osmgap_version": __version__,
        "aoi": {"name": aoi.name, "source": aoi.source, "bounds": list(aoi.bounds)},
        "before": before.provenance(), "after": after.provenance(),
        "alignment": alignment.summary(),
        "appeared": _count(changes, "appeared"), "vanished": _count(changes, "vanished"),
        "suggestions": len(suggestions),
        "by_kind": {k: sum(s.kind == k for s in suggestions) for k in ("appeared_road", "vanished_road")},
        "road_km": road_km,
        "withheld": {kind: why for kind, (why, _) in withheld.items()},
        "osm": roads.provenance if roads is not None else None,
        "grid": {"crs": grid.crs.to_string(), "width": grid.width, "height": grid.height},
        "coverage": covered,
        **({"self_tiled": True} if tiling is not None else {}),
        "warnings": list(dict.fromkeys([NOT_CLEARED_WARNING, *before.warnings, *after.warnings, *coarse, *partly,
                                        *_sensors_differ(before, after), *(w for _, w in withheld.values())])),
    }
    _write(args.out, aoi, after, grid, alignment, roads, changes, suggestions, prob_before, prob_after, summary, started)
    return summary


def _usable(before: Imagery, after: Imagery, area: Aoi) -> tuple[Coverage, Coverage]:
    """Each image's usable pixels over ``area``, its undeclared zero fill counted as nodata."""
    return imagery_checks.measure_coverage(before, area), imagery_checks.measure_coverage(after, area)


def _reportable(aoi: Aoi, grid: Grid, around: tuple[Coverage, Coverage], alignment: Alignment, margin_m: float) -> Any:
    """Where a change can be reported (metric): the AOI where both images show usable pixels (the
    after image's where alignment put them) and the model's grid, less ``margin_m`` at their
    edges, where the other date is not seen all the margin round, and less ONE_SIDED_EDGE_M more
    where one image ends and the other goes on: the model sees a road fade towards the edge of
    the image it runs off, and the other date's road goes on."""
    b, a = (reproject(c.area_wgs84, WGS84, grid.crs) for c in around)
    a = aligned_area(a, alignment)
    left, bottom, right, top = grid.bounds
    both = shapely.box(left, bottom, right, top).intersection(b).intersection(a)
    one_sided = shapely.union_all([a.boundary.intersection(b.buffer(-1.0)), b.boundary.intersection(a.buffer(-1.0))])
    return (both.buffer(-margin_m).difference(one_sided.buffer(margin_m + ONE_SIDED_EDGE_M))
            .intersection(reproject(aoi.geometry, WGS84, grid.crs)))


def _coverage_of(area: Any, grid: Grid, aoi: Aoi) -> Coverage:
    """``area`` (metric, inside the AOI) as a Coverage of the AOI: what the summary calls analysed."""
    km2 = area.area / 1e6
    return Coverage(reproject(area, grid.crs, WGS84), min(1.0, km2 / aoi.area_km2()), km2)


def _graph_lines(prob: ProbabilityRaster, params: GraphParams, tiling: ScaleOptions | None) -> np.ndarray:
    """One date's road lines, from the graph extraction the changes come from."""
    graph = extract_graph(prob, params) if tiling is None else road_graph(prob, params, tiling.tile_px)
    return np.asarray([d["geometry"] for _, _, d in graph.edges(data=True)], dtype=object)


def _km_within(lines: np.ndarray, area: Any) -> float:
    return round(float(shapely.length(shapely.intersection(lines, area)).sum()) / 1000, 3) if len(lines) else 0.0


def _withhold(changes: list[Change], alignment: Alignment, road_km: dict[str, float | None], before: Imagery,
              after: Imagery) -> dict[str, tuple[str, str]]:
    """The kinds of change that are artefacts, not the ground, each with why (in changes.geojson)
    and its warning (logged): every change when the after image lies farther off than alignment
    corrects; the appeared roads when the model saw too little road on the before image beside
    the after image's or OSM's (a road it missed there "appears"), the vanished ones the other
    way round. Those changes are withheld from the suggestions."""
    found: dict[str, tuple[str, str]] = {}
    if alignment.too_far:
        why = (f"the after image lies {alignment.shift_m():.0f} m from the before image ({alignment.east_m:+.0f} m east, "
               f"{alignment.north_m:+.0f} m north), beyond the {MAX_SHIFT_M:g} m osmgap corrects: the dates cannot be "
               f"compared and every change found is the shift, so none is suggested; georeference it to the before "
               f"image (or give --no-align if its georeferencing is right)")
        found = {kind: (why, f"WARNING: {after.path}: {why}") for kind in KINDS}
    osm_km = road_km["osm"]
    for date, image, other, kind in (("before", before, "after", "appeared"), ("after", after, "before", "vanished")):
        seen, beside = road_km[date] or 0.0, road_km[other] or 0.0
        if kind in found or not (model_saw_too_little(seen, beside) or (osm_km and model_saw_too_little(seen, osm_km))):
            continue
        against = " and ".join([f"{beside:.2f} km on the {other} image", *([f"{osm_km:.2f} km in OSM"] if osm_km else [])])
        why = (f"the model saw {seen:.2f} km of road on the {date} image against {against}: too little to tell a road "
               f"that {kind} from one it missed (grey, dark or unusual imagery does this; so does bare land built on "
               f"since: look at both images), so no {kind} road is suggested")
        found[kind] = (why, f"WARNING: {image.path}: {why}")
    for kind, (why, _) in found.items():
        withhold(changes, kind, why)
    for warning in dict.fromkeys(w for _, w in found.values()):
        log.warning(warning)
    return found


def _sensors_differ(before: Imagery, after: Imagery) -> list[str]:
    """A warning, logged, when the two dates come from unlike sensors (grey against colour, or
    resolutions over SENSOR_RESOLUTION_RATIO apart): the model reads them differently, and a road
    it sees on one only may be the sensor, not the ground."""
    grey = [len(set(image.band_indexes)) == 1 for image in (before, after)]
    ratio = max(before.resolution_m, after.resolution_m) / max(min(before.resolution_m, after.resolution_m), 1e-9)
    unlike = [*(["grey against colour"] if grey[0] != grey[1] else []),
              *([f"{before.resolution_m:.2g} m against {after.resolution_m:.2g} m pixels"]
                if ratio > SENSOR_RESOLUTION_RATIO else [])]
    if not unlike:
        return []
    warning = (f"WARNING: {before.path} and {after.path}: unlike sensors ({', '.join(unlike)}): a road may appear or "
               f"vanish with the sensor, not on the ground; check each change on both images")
    log.warning(warning)
    return [warning]


def _coverage(aoi: Aoi, before: Imagery, after: Imagery, analysed: Coverage, each: tuple[Coverage, Coverage],
              margin_m: float) -> tuple[dict[str, Any], list[str]]:
    """The summary's coverage block (the area analysed is where a change could be reported) and
    the warnings about the inputs (a repaired AOI; imagery covering only part of it, logged):
    "0 appeared, 0 vanished" over half the AOI must not read as "nothing changed" over all of it."""
    covered = coverage_block(aoi, analysed, before_aoi_share=each[0].aoi_share, after_aoi_share=each[1].aoi_share)
    partly = partly_covered(f"{before.path} and {after.path}", analysed, aoi,
                            f" where both images have usable pixels, {margin_m:g} m in from their edges; the before "
                            f"image covers {share_text(each[0].aoi_share)}, the after image {share_text(each[1].aoi_share)}: "
                            "the rest is outside one of them, nodata, NaN or fill", "change")
    return covered, [*aoi.warnings, *([partly] if partly else [])]


def _count(changes: list[Change], kind: str) -> dict[str, Any]:
    picked = [c for c in changes if c.change == kind]
    return {"count": len(picked), "km": round(sum(c.line.length for c in picked) / 1000, 3),
            "suggested": sum(c.actionable for c in picked)}


def _write(out: Path, aoi: Aoi, after: Imagery, grid: Grid, alignment: Alignment, roads: RoadNetwork | None,
           changes: list[Change],
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
    with staged_output_dir(out, replaces=RUN_OUTPUTS, markers=RUN_MARKERS) as stage:
        for kept in keep_edited(Path(out), stage):  # a suggestions.osm saved from JOSM
            log.warning(kept)
            summary.setdefault("warnings", []).append(kept)
        write_suggestion_files(stage, suggestions, aoi.bounds, roads, notes, per)
        write_text_atomic(stage / "changes.geojson", strict_json(changes_feature_collection(changes, grid.crs)))
        write_probability_tif(stage / "probability_before.tif", prob_before)
        write_probability_tif(stage / "probability_after.tif", prob_after)
        # the after image where the alignment put it, as the change lines are
        shown, rgb = read_backdrop(after, moved_grid(grid, alignment))
        backdrop = (moved_grid(shown, replace(alignment, east_m=-alignment.east_m, north_m=-alignment.north_m)), rgb)
        render_overview(stage / "overview.png", after, grid, osm_ways, lines, suggestions,
                        f"osmgap change: {aoi.name}: {summary['appeared']['count']} appeared, "
                        f"{summary['vanished']['count']} vanished", " ".join(notes), evidence_label="changed roads",
                        listed=("appeared_road", "vanished_road"), osm_label="OSM roads" if roads is not None else None,
                        backdrop=backdrop)
        summary["seconds"] = round(time.perf_counter() - started, 2)
        write_text_atomic(stage / "summary.json", strict_json(summary, indent=2))
