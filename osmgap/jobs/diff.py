"""The ``diff`` job: AOI -> OSM roads + evidence -> conflation -> suggestions -> files.

Evidence is either imagery (segmentation -> probability -> road graph) or, with ``--candidates``,
any road lines (read into the same kind of graph); then imagery is optional and only drawn under
the overview. Each stage is a plain function from its own module; this module only wires them,
times them and checks every input before the first output is written, so bad input leaves the
output directory untouched.
"""
from __future__ import annotations

import functools
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from shapely.geometry import box

from osmgap import __version__
from osmgap.conflate.conflate import NEW_ROAD_KINDS, Conflation, Evidence, conflate
from osmgap.conflate.params import ConflateParams
from osmgap.core.aoi import Aoi, load_aoi, reproject
from osmgap.core.atomic import check_output_dir, staged_output_dir, write_text_atomic
from osmgap.core.datamodel import WGS84, RoadNetwork
from osmgap.core.grid import Grid, grid_over
from osmgap.core.jsontext import strict_json
from osmgap.core.memory import (
    collector_paused,
    freeze_long_lived,
    frozen_for_the_run,
    peak_rss_mb,
    release_pages,
    return_freed_memory,
    trim_heap,
)
from osmgap.core.osmtags import CONFIDENCE_ASSUMED
from osmgap.core.threads import usable_cores
from osmgap.errors import InputError
from osmgap.export.edited import keep_edited
from osmgap.export.overview import render_overview
from osmgap.export.suggestion_files import write_suggestion_files
from osmgap.graph.lines import candidate_graph
from osmgap.graph.skeleton import GraphParams, extract_graph, graph_length_m, graph_length_within_m
from osmgap.jobs.coverage import coverage_block, partly_covered
from osmgap.jobs.early_writes import EarlyWrites
from osmgap.scale.options import ScaleOptions
from osmgap.sources.candidates import confidence_assumed, load_candidates
from osmgap.sources.imagery import (
    Coverage,
    Imagery,
    analysis_grid,
    check_resolution,
    measure_coverage,
    open_imagery,
    with_context,
)
from osmgap.sources.osm import load_osm
from osmgap.sources.osmways import unreadable_warning
from osmgap.sources.sample import Demonstration, find_sample
from osmgap.sources.tile_fetcher import XyzOptions, prune_cache
from osmgap.sources.xyz import (
    AnyImagery,
    XyzImagery,
    imagery_name,
    measure_any_coverage,
    open_window_reader,
    open_xyz,
    stand_in_warning,
)
from osmgap.workspace.freshness import unchanged_osm_warning
from osmgap.workspace.outputs import RUN_MARKERS, RUN_OUTPUTS, read_outputs
from osmgap.workspace.store import Store, now_iso
from osmgap.workspace.tracking import RunRecord, record_run, stable_ids

if TYPE_CHECKING:  # the GPS modules import numba (~0.2 s): loaded in run_diff only when a run has traces
    from osmgap.core.traces import GpsTraces
    from osmgap.gps.matching import MatchParams

log = logging.getLogger(__name__)

EVIDENCE_LABELS = {"imagery": "model's road graph", "candidates": "candidate roads", "gps": "GPS road graph"}
OVERVIEW_SIDE_PX = 1600  # the plain-background overview of a candidates-only run
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
    bands: tuple[int, ...] | None = None  # the imagery's red, green and blue (--bands); None: chosen from the file
    osm: str | None = None
    model: str | None = None
    licence: ImageryLicence = field(default_factory=ImageryLicence)
    tile: int = 512
    overlap: int = 64
    batch: int | None = None  # None: auto_batch, from free memory
    views: int | None = None  # orientations per window (osmgap.model.infer.VIEWS); None: the device's default
    compile: bool = False  # torch.compile the net: pays only on large areas (bench/model.py)
    threads: int | None = None  # torch CPU threads; None: osmgap.model.infer.default_threads (per worker: Dask's share)
    graph: GraphParams | None = None
    conflate: ConflateParams = field(default_factory=ConflateParams)
    cache_dir: Path | None = None
    candidates: str | None = None
    scale: ScaleOptions | None = None  # tiles on Dask, persisted (osmgap.scale.tiled); None: one piece
    xyz: XyzOptions | None = None  # imagery from a tile server instead of a file
    gps: list[str] = field(default_factory=list)  # GPS trace files/directories (osmgap.gps)
    gps_crs: str | None = None  # CRS of CSV/mapconstruction coordinates (GPX is always WGS84)
    osm_crs: str | None = None  # CRS of a mapconstruction graph as --osm (--osm-crs); None: gps_crs
    gps_columns: dict[str, str] | None = None  # CSV field -> column
    gps_connections: bool = True  # GPS-only: also report missing_connection between two junctions (sparse traces)
    gps_memory_mb: float | None = None  # the matcher's route table at most (osmgap.gps.tiling); None: its default
    name: str | None = None  # the AOI's name in the outputs and the state (--name); default: from the AOI file
    state: Path | None = None  # the state the run will be recorded in (--state): ids it gives other roads are not reused
    osm_max_age_h: float | None = None  # an Overpass answer kept longer is asked again (--osm-max-age)


class StageTimer:
    """Seconds per stage, and this process's peak resident memory so far when each ended (the
    stage whose figure jumps is where a large AOI's memory goes: bench/speed.py prints both)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.peak_rss_mb: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.peak_rss_mb[name] = peak_rss_mb()
        self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - start, 3)
        log.info("%s: %.2f s", name, self.seconds[name])


def resolve_sources(req: DiffRequest) -> tuple[Aoi, str | None, str, ImageryLicence]:
    """AOI, imagery path (None: candidates without imagery), OSM spec and imagery licence;
    sample AOIs fill what is not given."""
    sample = find_sample(req.aoi)
    aoi = load_aoi(req.aoi, req.name)
    imagery, osm, licence = req.imagery, req.osm, req.licence
    gps_only = bool(req.gps) and sample is None  # a sample AOI still brings its imagery
    if imagery is None and req.candidates is None and req.xyz is None and not gps_only:
        if sample is None:
            raise InputError(req.aoi, "--imagery, --candidates or --gps is required unless --aoi names a sample AOI directory")
        imagery = str(sample.path("imagery"))
        info = sample.info("imagery")
        licence = ImageryLicence(info.get("licence", "unknown"), info.get("attribution", ""),
                                 info.get("capture_date", "unknown"), bool(info.get("cleared_for_osm_tracing", False)))
    if osm is None:
        if sample is None:
            raise InputError(req.aoi, "--osm is required unless --aoi names a sample AOI directory")
        osm = str(sample.path("osm"))
    return aoi, imagery, osm, licence


def demonstration_for(req: DiffRequest) -> Demonstration | None:
    """The OSM ways a demonstration sample takes out, when --aoi names one and --osm is not given."""
    sample = find_sample(req.aoi)
    return sample.demonstration if sample is not None and req.osm is None else None


@dataclass
class EvidenceRun:
    """The evidence of one diff and what the summary says about it."""

    evidence: Evidence
    area_wgs: object
    grid: Grid
    imagery: AnyImagery | None
    info: dict[str, Any]
    warnings: list[str] = field(default_factory=list)  # what the inputs of this evidence need said
    connections: list = field(default_factory=list)  # missing_connection suggestions (geometry unknown)
    carriageways: list = field(default_factory=list)  # second carriageways beside two-way ways (GPS-only)


@dataclass(frozen=True)
class DiffRun:
    """A finished diff: its summary (also in summary.json) and what recording it in a state needs,
    kept from the run rather than read again (parsing the OSM again and, for a tile server,
    decoding every tile of the AOI again cost a large AOI seconds to minutes)."""

    summary: dict[str, Any]
    aoi: Aoi
    osm_ways: Any  # the OSM roads the run diffed against (WGS84 GeoDataFrame)
    seen_area: Any  # where the imagery evidence had usable pixels (WGS84); None: the whole AOI


def run_diff(req: DiffRequest) -> DiffRun:
    """Run the whole diff."""
    with frozen_for_the_run():
        return _run_diff(req)


def _run_diff(req: DiffRequest) -> DiffRun:
    check_output_dir(req.out)  # an --out that is a file or cannot be written: said before any work
    timer = StageTimer()
    started = time.perf_counter()
    with timer("inputs"):
        aoi, imagery_path, osm_spec, licence = resolve_sources(req)
        imagery = _open_any_imagery(req, aoi, imagery_path)
        coverage = _imagery_coverage(req, aoi, imagery)
        frame = load_candidates(req.candidates, aoi, req.conflate.default_confidence) if req.candidates else None
        if req.gps:
            from osmgap.sources.gps import GpsSource, load_traces  # GPS runs only: see TYPE_CHECKING above
        traces, gps_info = (load_traces(req.gps, GpsSource(req.gps_crs, req.gps_columns), aoi) if req.gps
                            else (None, {}))
        trim_heap()  # a CSV of millions of fixes is parsed in chunks whose freed blocks stay between live ones
    with timer("osm"), collector_paused():  # see conflation below
        roads = load_osm(osm_spec, aoi, cache_dir=req.cache_dir, graph_crs=req.osm_crs or req.gps_crs, max_age_h=req.osm_max_age_h)
        trim_heap()  # the same for the objects of parsing OSM (~170 MB of 500 at 531,000 ways)
        demonstration = demonstration_for(req)
        if demonstration is not None:
            roads, demo_info = demonstration.apply(roads)
    if frame is not None:
        run = _candidate_evidence(req, aoi, frame, imagery, licence, timer)
    elif imagery is None and traces is not None:
        run = gps_only_evidence(aoi, traces, timer, roads, req.gps_connections, req.gps_memory_mb)
    else:
        assert imagery is not None  # resolve_sources: no candidates and no GPS means imagery
        run = _imagery_evidence(req, aoi, imagery, licence, timer, coverage)
    # the outputs are staged from here (a failure leaves the earlier ones untouched); those that need
    # only the evidence are made beside conflation (osmgap.jobs.early_writes)
    looked_at = reproject(run.area_wgs, WGS84, run.grid.crs)
    with (staged_output_dir(req.out, replaces=RUN_OUTPUTS, markers=RUN_MARKERS) as stage,
          EarlyWrites(stage, run.evidence.prob, imagery, run.grid, _probability_described(run, licence, looked_at))
          as early):
        with timer("conflate"), collector_paused():
            # the evidence and OSM live to the end: conflation's own collections skip them (100 km2:
            # 1.3 s of 7 less); and it builds no cycles, so Python's full passes, which its millions
            # of allocations set off, walked everything alive to free nothing (7 -> 5.5 s)
            freeze_long_lived()
            params = req.conflate
            if run.info["evidence"] == "gps":
                from osmgap.gps.discovery import gps_conflate_params  # GPS runs only: see TYPE_CHECKING above

                params = gps_conflate_params(req.conflate)
            result = conflate(run.evidence, roads, looked_at, params)
            if run.evidence.prob is not None:
                release_pages(run.evidence.prob.prob)  # a self-tiled AOI's file-backed raster: read again when written
        # a large AOI's COG and backdrop (not begun beside conflation, for its memory) begin now, beside
        # the Python work of writing: one core is left to that work, the rest compress
        early.start(threads=max(1, usable_cores() - 1))
        suggestions = result.suggestions
        if frame is not None:  # drawn from lines that gave no confidence: they counted a made-up figure
            for s, assumed in zip(suggestions, confidence_assumed(frame, [s.geometry for s in suggestions])):
                if assumed:
                    s.evidence["confidence_source"] = CONFIDENCE_ASSUMED
        if run.carriageways:  # a carriageway the GPS ridge already drew is not suggested twice
            from osmgap.gps.carriageways import not_suggested  # GPS runs only: see TYPE_CHECKING above

            suggestions = suggestions + not_suggested(run.carriageways, suggestions, run.grid.crs)
        if traces is not None:  # every suggestion's GPS support moves its confidence (osmgap.gps.support)
            with timer("gps support"):
                from osmgap.gps.support import SupportParams, apply_gps_support  # GPS runs only: TYPE_CHECKING

                support = SupportParams()
                support = replace(support, matching=_with_budget(support.matching, req.gps_memory_mb))
                run.info["gps"] = {**gps_info, **apply_gps_support(suggestions, traces, roads, support)}
        suggestions = suggestions + run.connections  # after support: nobody drives a line that is not there
        stale_osm = None
        if req.state is not None and req.state.is_file() and req.state.stat().st_size:
            with Store(req.state, create=False) as store:  # ids as the state knows them (tracking)
                suggestions = stable_ids(store, aoi.name, suggestions)
                stale_osm = unchanged_osm_warning(store, aoi.name, roads.provenance, now_iso())
        warnings = _warnings(result, licence, imagery, req.conflate)
        for w in warnings:
            log.warning(w)
        covered, input_warnings = _coverage(aoi, run, coverage)
        osm_said, osm_doubts = osm_input_warnings(roads)  # logged when read; said again in the outputs
        input_warnings += osm_said
        input_warnings += frame.attrs.get("warnings", []) if frame is not None else []  # the reader's
        if stale_osm:
            log.warning(stale_osm)
            input_warnings.append(stale_osm)
        cache_full = prune_cache(req.xyz) if req.xyz is not None else None  # the tile cache back under its budget
        if cache_full:
            input_warnings.append(cache_full)
        for kept in keep_edited(Path(req.out), stage):  # a suggestions.osm saved from JOSM
            log.warning(kept)
            input_warnings.append(kept)
        per_suggestion = _per_suggestion(licence, imagery, req.candidates, warnings)
        if osm_doubts:  # apart from "warning", which says the imagery is not cleared for tracing
            per_suggestion["osm_warning"] = " ".join(osm_doubts)
        summary: dict[str, Any] = {
            "osmgap_version": __version__,
            "aoi": {"name": aoi.name, "source": aoi.source, "bounds": list(aoi.bounds), "area_km2": round(aoi.area_km2(), 4)},
            "suggestions": len(suggestions),
            # road to add: not the straight line of a missing_connection (its road's geometry is
            # unknown) nor an OSM way the evidence does not show
            "km_suggested": round(sum(s.length_m for s in suggestions if s.kind in NEW_ROAD_KINDS) / 1000, 3),
            "by_kind": _count_by_kind(suggestions),
            "by_priority": {str(p): sum(s.priority == p for s in suggestions) for p in (0, 1, 2)},
            **run.info,
            "osm_ways": len(roads),
            "osm_road_km": round(float(roads.ways.to_crs(run.grid.crs).length.sum()) / 1000, 3) if len(roads) else 0.0,
            "osm": roads.provenance,
            "offset_m": result.offset.summary(),
            "conflation": result.report,
            "grid": {"crs": run.grid.crs.to_string(), "width": run.grid.width, "height": run.grid.height},
            "coverage": covered,
            "warnings": warnings + input_warnings,
        }
        notes = _notes(licence, imagery, req.candidates, roads, warnings) + osm_doubts
        if demonstration is not None:  # said first, in the summary and in every output's notes
            summary["demonstration"] = demo_info
            notes.insert(0, demonstration.text)
            per_suggestion["demonstration"] = demonstration.text  # a hand upload of the files says it too
        if traces is not None:
            notes.insert(0, f"GPS: {gps_info['points']:,} points of {gps_info['trips']} trips.")
            if frame is None and imagery is None:
                per_suggestion["evidence_source"] = "GPS traces"
        with timer("write"), collector_paused():  # as in conflation
            write_suggestion_files(stage, suggestions, aoi.bounds, roads, notes, per_suggestion,
                                   imagery_cleared=licence.cleared_for_osm_tracing
                                   if run.info["evidence"] == "imagery" else None)
            render_overview(stage / "overview.png", imagery, run.grid, roads.ways, run.evidence.graph, suggestions,
                            f"osmgap diff: {aoi.name}: {len(suggestions)} suggestions, {summary['km_suggested']:.2f} km",
                            " ".join(notes), evidence_label=EVIDENCE_LABELS[run.info["evidence"]],
                            backdrop=early.backdrop(), aoi=aoi.geometry)
            early.probability()  # imagery evidence: its stitched probability as a COG
        summary["seconds"] = {**timer.seconds, "total": round(time.perf_counter() - started, 3)}
        summary["peak_rss_mb"] = timer.peak_rss_mb
        write_text_atomic(stage / "summary.json", strict_json(summary, indent=2))
    # candidates: the imagery is only drawn, so every suggestion's area was looked at
    seen = coverage.area_wgs84 if coverage is not None and req.candidates is None else None
    return DiffRun(summary, aoi, roads.ways, seen)


def _open_any_imagery(req: DiffRequest, aoi: Aoi, imagery_path: str | None) -> AnyImagery | None:
    """The run's imagery: a tile server (``--xyz``), a file, or none."""
    if req.xyz:
        return open_xyz(req.xyz, aoi.geometry)
    return open_imagery(imagery_path, req.bands) if imagery_path else None


def _probability_described(run: EvidenceRun, licence: ImageryLicence, looked_at: Any) -> dict[str, Any]:
    """What probability.tif says of itself: masked outside the area analysed (outside the imagery
    and under its fill, a 0 read as "no road here"); from imagery, that imagery's name and licence
    (the raster is derived from it); from GPS, that its values are a likelihood, not the model's."""
    if run.info["evidence"] == "gps":
        return {"looked_at": looked_at, "meaning": "likelihood of a road the map does not explain x 255"}
    if run.imagery is None:
        return {"looked_at": looked_at}
    return {"looked_at": looked_at, "tags": {"IMAGERY": imagery_name(run.imagery), "IMAGERY_LICENCE": licence.licence,
                                             "IMAGERY_ATTRIBUTION": licence.attribution,
                                             "IMAGERY_DATE": licence.capture_date}}


def _imagery_coverage(req: DiffRequest, aoi: Aoi, imagery: AnyImagery | None) -> Coverage | None:
    """Where the imagery has usable pixels over the AOI: a file's is measured whenever it is given
    (a blank one is refused), a tile server's only when its imagery is the evidence (measuring
    fetches every tile under the AOI; under candidates it is only drawn)."""
    if isinstance(imagery, Imagery):
        return measure_coverage(imagery, aoi)
    if imagery is not None and req.candidates is None:
        return measure_any_coverage(imagery, aoi)
    return None


def _coverage(aoi: Aoi, run: EvidenceRun, coverage: Coverage | None) -> tuple[dict[str, Any], list[str]]:
    """The summary's area actually analysed and share of the AOI the imagery covers (usable pixels),
    and the warnings about the inputs (a repaired AOI, imagery coarser than the model's or covering
    only part of the AOI); those not logged when found are logged here."""
    imagery_evidence = run.info["evidence"] == "imagery" and coverage is not None
    covered = coverage_block(aoi, coverage, None if imagery_evidence else aoi.area_km2())  # candidates, GPS: all
    warnings = [*aoi.warnings, *run.warnings]
    if imagery_evidence:
        assert coverage is not None and run.imagery is not None  # both set for imagery evidence
        partly = partly_covered(imagery_name(run.imagery, whole_path=True), coverage, aoi,
                                ": the rest is outside it, nodata, NaN or where the tile server has no imagery", "road")
        warnings += [partly] if partly else []
    return covered, warnings


def gps_only_evidence(aoi: Aoi, traces: GpsTraces, timer: StageTimer, roads: RoadNetwork,
                  connections: bool = True, memory_mb: float | None = None) -> EvidenceRun:
    """GPS-only discovery: every trip map-matched to the OSM roads, the road graph of what they
    cannot explain (osmgap.gps.discovery)."""
    from osmgap.gps.discovery import DiscoveryParams, discovery_grid, matched_evidence  # GPS runs only: TYPE_CHECKING
    from osmgap.scale.gps_tiles import draw_by_tiles
    from osmgap.scale.options import self_tiling

    with timer("graph"):
        grid = discovery_grid(aoi.to_metric(aoi.geometry).bounds, aoi.metric_crs, traces=traces)  # where they are
        params = DiscoveryParams()
        params = replace(params, matching=_with_budget(params.matching, memory_mb))
        # traces over a large area are drawn by tiles: the evidence rasters' memory stays flat
        tiling = self_tiling(grid.width * grid.height)
        draw = functools.partial(draw_by_tiles, tile_px=tiling.tile_px) if tiling else None
        found = matched_evidence(traces, roads, grid, params, known=aoi.to_metric(aoi.geometry),  # OSM is clipped to the AOI
                                 draw=draw)
    u = found.unexplained
    piece_size = np.bincount(found.matches.piece)[found.matches.piece] if len(traces) else np.zeros(0, int)
    back, steps = traces.steps_back_in_time()
    info = {"evidence": "gps", **({"self_tiled": True} if tiling else {}),
            "gps_road_km": round(graph_length_m(found.evidence.graph) / 1000, 3),
            "gps_matching": {"matched_share": round(float(found.matches.matched.mean()), 4) if len(traces) else 0.0,
                             # fixes no route can be read from: trips of one fix, or cut off alone by
                             # silence, an impossible jump or time going back (osmgap.gps.matching.trip_pieces)
                             "fixes_alone": int((piece_size == 1).sum()), "steps_back_in_time": back,
                             "off_map_m": round(u.off_m, 1), "off_map_steps": len(u.off_a),
                             "detours": len(u.detour_a), "route_limit_m": round(found.route_limit_m),
                             "route_table_budget_mb": params.matching.table_budget_mb,
                             "cpu_seconds": round(found.match_seconds, 2),
                             "missing_connections": len(found.connections),
                             "second_carriageways": len(found.carriageways)}}
    # on unless --no-gps-connections: on the Chicago bench 0.83-1.00 of them remove a real detour at
    # 30-90 s (bench/gps.py, judged by route; stop 35)
    extra = found.connection_suggestions(grid.crs) if connections else []
    warnings = [f"WARNING: {back} of {steps} steps between the fixes of a trip "
                "go back in time (the log names the files); trips are read in file order and cut there, so those "
                "fixes may be matched alone or not at all: sort each trip's fixes by time"] if back else []
    if len(roads) and not _any_oneway(roads):
        warnings.append("WARNING: no OSM road here is oneway (the input may not say, as a mapconstruction graph "
                        "does not): every way is taken as two-way, so trips of both directions match a divided "
                        "road's one mapped carriageway, and its missing other one may go unreported")
        log.warning(warnings[-1])
    return EvidenceRun(found.evidence, aoi.geometry, grid, None, info, warnings, connections=extra,
                       carriageways=found.carriageways)


def _any_oneway(roads: RoadNetwork) -> bool:
    from osmgap.core.osmtags import direction

    return any(direction(t or {}, h) != 0 for t, h in zip(roads.ways["tags"], roads.ways["highway"]))


def _with_budget(params: MatchParams, memory_mb: float | None) -> MatchParams:
    """``params`` with the route table budget ``--gps-memory`` asked for (None: as they are)."""
    return params if memory_mb is None else replace(params, table_budget_mb=memory_mb)


def _imagery_evidence(req: DiffRequest, aoi: Aoi, imagery: AnyImagery, licence: ImageryLicence,
                      timer: StageTimer, coverage: Coverage | None = None) -> EvidenceRun:
    """Segment the imagery and extract the road graph of the probability raster; conflation looks
    only where the imagery has usable pixels (``coverage``, for a file)."""
    import torch  # here, not at the top: candidates and GPS runs never need the model

    from osmgap.model.infer import default_threads, default_views, predict_raster
    from osmgap.model.kinds import unseen_kind_warning
    from osmgap.model.nets import load_checkpoint, model_sha256, pick_device
    from osmgap.scale.options import self_tiling
    from osmgap.scale.tiled import tiled_evidence

    freeze_long_lived()  # the modules just imported live to the end: later full collections skip them
    with timer("model"):
        device = pick_device()
        torch.set_num_threads(req.threads or default_threads())
        net, meta = load_checkpoint(req.model, device)
        coarse = check_resolution(imagery, meta.resolution_m)
        # a model fine-tuned on panchromatic chips only, run on colour imagery (a tile server's is)
        unseen = unseen_kind_warning(meta.training, req.model, imagery_name(imagery),
                                     imagery.band_indexes if isinstance(imagery, Imagery) else [1, 2, 3])
        for said in (coarse, unseen):
            if said:
                log.warning(said)
        # what open_imagery said of the file (logged there) goes into the summary too; a tile
        # server's tiles are RGB with no fill
        notes = [w for w in (coarse, unseen, *(imagery.warnings if isinstance(imagery, Imagery) else ())) if w]
        # predicted with context around the AOI; conflation and the figures keep to the AOI
        grid = analysis_grid(imagery, with_context(aoi.geometry, aoi.metric_crs), aoi.metric_crs, meta.resolution_m)
    views = req.views or default_views(device)
    params = req.graph or GraphParams(threshold=meta.threshold)
    tiles: dict[str, Any] = {}
    scale = req.scale or self_tiling(grid.width * grid.height)  # a large area tiles itself: memory stays flat
    if scale is not None:  # segment per tile, on Dask, persisted; graph per tile; stitched
        del net  # the tiles load the model once per process (osmgap.scale.tiled._model): one copy in memory
        prob, graph, tiles = tiled_evidence(scale, imagery, grid, req.model, meta, params, req.tile, req.overlap,
                                            req.batch, req.out, views, req.compile, threads=req.threads, stage=timer)
    else:
        with timer("segment"), open_window_reader(imagery, grid) as reader:
            prob = predict_raster(net, meta, reader, tile=req.tile, overlap=req.overlap, batch=req.batch,
                                  device=device, views=views, compile=req.compile)
            del net  # the model's memory goes back before the graph and conflation need theirs
            return_freed_memory()
        with timer("graph"):
            graph = extract_graph(prob, params)
    stood_in = stand_in_warning(imagery) if isinstance(imagery, XyzImagery) else None
    if stood_in:  # logged as the first one was used; the summary says how many
        notes.append(stood_in)
    area = coverage.area_wgs84 if coverage is not None else aoi.geometry.intersection(box(*imagery.bounds_wgs84))
    seen_m = graph_length_within_m(graph, aoi.to_metric(area))  # the AOI's, not the context's
    info = {"evidence": "imagery", "predicted_road_km": round(seen_m / 1000, 3),
            "imagery": {**imagery.provenance(), **licence.__dict__},
            "model": {"path": str(req.model or "default"), "sha256": model_sha256(req.model), "arch": meta.arch,
                      "encoder": meta.encoder,
                      "resolution_m": meta.resolution_m, "threshold": meta.threshold, "views": views},
            "device": str(device), "torch_threads": torch.get_num_threads(), **({"tiles": tiles} if tiles else {})}
    return EvidenceRun(Evidence(graph, prob), area, grid, imagery, info, notes)


def _candidate_evidence(req: DiffRequest, aoi: Aoi, frame: Any, imagery: AnyImagery | None,
                        licence: ImageryLicence, timer: StageTimer) -> EvidenceRun:
    """The road graph of candidate lines; imagery, if given, is only drawn under the overview."""
    with timer("graph"):
        graph = candidate_graph(frame, aoi.metric_crs)
    bounds = aoi.to_metric(aoi.geometry).bounds
    side = max(bounds[2] - bounds[0], bounds[3] - bounds[1])
    grid = (analysis_grid(imagery, aoi.geometry, aoi.metric_crs, imagery.resolution_m) if imagery else
            grid_over(bounds, aoi.metric_crs, max(1.0, side / OVERVIEW_SIDE_PX)))
    info: dict[str, Any] = {"evidence": "candidates",
                            "candidates": {"path": str(req.candidates), "lines": len(frame),
                                           "confidence_column": frame.attrs.get("confidence_column"),
                                           # how its values were read ('0-1', '0-100'): a scale misread drops every gap
                                           "confidence_scale": frame.attrs.get("confidence_scale"),
                                           "edges": graph.number_of_edges(),
                                           "km": round(graph_length_m(graph) / 1000, 3)}}
    if imagery is not None:
        info["imagery"] = {**imagery.provenance(), **licence.__dict__}
    return EvidenceRun(Evidence(graph), aoi.geometry, grid, imagery, info)


def _warnings(result: Conflation, licence: ImageryLicence, imagery: AnyImagery | None,
              params: ConflateParams) -> list[str]:
    out = [NOT_CLEARED_WARNING] if imagery is not None and not licence.cleared_for_osm_tracing else []
    off = result.offset
    if off.applied and off.magnitude_m > params.offset_warn_m:
        out.append(f"WARNING: the evidence is {off.magnitude_m:.1f} m off OSM (east {off.east_m:+.1f} m, "
                   f"north {off.north_m:+.1f} m); this offset was removed before diffing; align the imagery "
                   "before tracing from it")
    return out


def _per_suggestion(licence: ImageryLicence, imagery: AnyImagery | None, candidates: str | None,
                    warnings: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if candidates:
        out["evidence_source"] = Path(candidates).name
    if imagery is not None:
        out.update({"imagery_licence": licence.licence, "imagery_attribution": licence.attribution,
                    "imagery_date": licence.capture_date})
    if warnings:
        out["warning"] = " ".join(warnings)
    return out


def _notes(licence: ImageryLicence, imagery: AnyImagery | None, candidates: str | None, roads: RoadNetwork,
           warnings: list[str]) -> list[str]:
    notes = []
    if candidates:
        notes.append(f"Candidate roads: {Path(candidates).name} (check that its licence allows use for OSM).")
    if imagery is not None:
        notes.append(f"Imagery: {licence.attribution or imagery_name(imagery)} ({licence.licence}, "
                     f"captured {licence.capture_date}).")
    notes.append(f"Roads: {roads.provenance.get('attribution', '(c) OpenStreetMap contributors')} (ODbL).")
    return notes + warnings


def osm_input_warnings(roads: RoadNetwork) -> tuple[list[str], list[str]]:
    """What the OSM source's reader warned about, for summary.json's warnings (and the report),
    and those of it that say some suggestions may be roads OSM has: an extract covering part of
    the AOI, one older than a month, ways that could not be read whole and lie nobody knows
    where. Those go into the files' notes, every suggestion and the MapRoulette challenge too,
    where a mapper reads them; ways cut at an extract's edge (no road suggested there) do not."""
    source, unreadable = roads.provenance.get("warning"), unreadable_warning(roads)
    unlocated = bool(len(roads.unreadable)) and bool(roads.unreadable.geometry.is_empty.any())
    said = [w for w in (source, unreadable) if w]
    return said, [w for w in (source, unreadable if unlocated else None) if w]


def _count_by_kind(suggestions: list) -> dict[str, int]:
    counts: dict[str, int] = {}
    for s in suggestions:
        counts[s.kind] = counts.get(s.kind, 0) + 1
    return counts


def record_diff(req: DiffRequest, state: Path, run: DiffRun) -> RunRecord:
    """Record the ``run`` just written to ``req.out``, with its AOI and OSM roads (which tell a
    gap mapped since from one the model no longer sees)."""
    with Store(state) as store:
        return record_run(store, read_outputs(req.out), area=run.aoi.geometry, osm_ways=run.osm_ways,
                          tolerance_m=req.conflate.tolerance_m, min_length_m=req.conflate.min_length_m,
                          seen_area=run.seen_area)
