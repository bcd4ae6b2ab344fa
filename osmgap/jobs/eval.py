"""Score a road model's output against labels the way the field does (``osmgap eval``).

Pixel IoU/F1 (DeepGlobe, Microsoft), relaxed precision/recall (Mnih 2013: a pixel within the
slack of the other side counts), APLS (SpaceNet 3) and TOPO (Biagioni & Eriksson) on the graph
osmgap itself extracts from the probabilities, so the graph scores judge what ``osmgap diff``
actually works with.
"""
from __future__ import annotations

import json
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import networkx as nx
import numpy as np
import shapely
import torch
from rasterio.features import shapes
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from osmgap.conflate.offset import cross_correlation_shift
from osmgap.core.aoi import Aoi
from osmgap.core.datamodel import ProbabilityRaster
from osmgap.core.grid import Grid, window_grid
from osmgap.core.memory import release_pages
from osmgap.errors import InputError
from osmgap.graph.lines import build_line_graph
from osmgap.graph.skeleton import GraphParams, extract_graph, graph_length_m
from osmgap.metrics.apls import apls, apls_by_windows
from osmgap.metrics.pixel import (
    pixel_counts,
    pixel_scores,
    pixel_scores_from_counts,
    relaxed_counts,
    relaxed_scores,
    relaxed_scores_from_counts,
)
from osmgap.metrics.topo import SEEDS as TOPO_SEEDS
from osmgap.metrics.topo import topo
from osmgap.model.infer import OVERLAP_PX, WINDOW_PX, default_views, predict_raster
from osmgap.model.kinds import unseen_kind_warning
from osmgap.model.labels import (
    LabelSource,
    RoadLabels,
    area_on_grid,
    footprint_grid,
    labels_from_mask,
    open_labels,
    whole_labels,
)
from osmgap.model.nets import ModelMeta, load_checkpoint, pick_device
from osmgap.scale.options import DEFAULT_MARGIN_PX, DEFAULT_TILE_PX, ScaleOptions, self_tiling
from osmgap.scale.tiling import plan_tiles, tiled_graph, window_box
from osmgap.sources.imagery import Imagery, WindowReader, measure_coverage, open_imagery
from osmgap.sources.osm_extent import OsmElsewhere, show_bounds

DEFAULT_SLACKS_M = (1.0, 3.0)


def score_roads(prob: ProbabilityRaster, labels: RoadLabels, threshold: float,
                slacks_m: tuple[float, ...] = DEFAULT_SLACKS_M, valid: np.ndarray | None = None) -> dict:
    """Every score of ``prob`` (thresholded) against ``labels`` on the same grid."""
    pred = prob.prob >= threshold
    truth = labels.mask.astype(bool)
    scores: dict = dict(pixel_scores(pred, truth, valid))
    res = prob.resolution[0]
    seen_pred, seen_truth = (pred & valid, truth & valid) if valid is not None else (pred, truth)
    for slack in slacks_m:  # like the pixel scores, only where there is imagery
        relaxed = relaxed_scores(seen_pred, seen_truth, slack / res)
        scores.update({f"{k}@{slack:g}m": v for k, v in relaxed.items()})
    return {**scores, **graph_scores(labels.graph, extract_graph(prob, GraphParams(threshold=threshold)))}


def graph_scores(truth: nx.Graph, proposal: nx.Graph, windows: list[BaseGeometry] | None = None) -> dict:
    """APLS, TOPO and both graphs' lengths. With ``windows`` (a large image's tiles): APLS is
    their mean, as SpaceNet scores per chip, and TOPO drops its seeds per window (102.7 km2:
    TOPO precision 0.72 / 0.78 with two draws of 100 seeds, 0.756 / 0.757 with 2,500)."""
    paths = apls(truth, proposal) if windows is None else apls_by_windows(truth, proposal, windows)
    seeds = TOPO_SEEDS * (len(windows) if windows else 1)
    return {**paths, **topo(truth, proposal, seeds=seeds), "truth_km": graph_length_m(truth) / 1000,
            "proposal_km": graph_length_m(proposal) / 1000}


def score_in_tiles(prob: ProbabilityRaster, proposal: nx.Graph, labels: LabelSource,
                   read_valid: Callable[[tuple[int, int, int, int]], np.ndarray], threshold: float,
                   slacks_m: tuple[float, ...] = DEFAULT_SLACKS_M, tile_px: int = DEFAULT_TILE_PX) -> tuple[dict, int]:
    """``score_roads`` of an image too large to hold whole, and its count of valid pixels: pixel
    and relaxed counts per tile, each tile read with a margin wider than the largest slack (so
    they add up to the whole image's exactly), the label mask and valid pixels (``read_valid``)
    read per tile; ``proposal``: the graph of ``prob`` (a tiled run's, stitched). Mask labels'
    graph is extracted tile by tile too. APLS is the mean of the tiles' (``apls_by_windows``)."""
    grid = prob.grid
    res = prob.resolution[0]
    margin = int(np.ceil(max(slacks_m, default=0.0) / res)) + 1
    pixel = np.zeros(3)
    relaxed = np.zeros((len(slacks_m), 4))
    pixels = 0
    windows = []  # the tiles' cores, for APLS
    for tile in plan_tiles(grid, tile_px, margin):
        windows.append(window_box(grid, tile.core))
        r0, c0, r1, c1 = tile.region
        pred = np.asarray(prob.prob[r0:r1, c0:c1]) >= threshold
        release_pages(prob.prob)  # a file-backed raster's pages go back: one tile resident at a time
        truth, valid = labels.mask(tile.region).astype(bool), read_valid(tile.region)
        core = (slice(tile.core[0] - r0, tile.core[2] - r0), slice(tile.core[1] - c0, tile.core[3] - c0))
        pixel += pixel_counts(pred[core], truth[core], valid[core])
        pixels += int(valid[core].sum())
        for i, slack in enumerate(slacks_m):
            relaxed[i] += relaxed_counts(pred & valid, truth & valid, slack / res, core)
    scores: dict = dict(pixel_scores_from_counts(pixel))
    for slack, counts in zip(slacks_m, relaxed):
        scores.update({f"{k}@{slack:g}m": v for k, v in relaxed_scores_from_counts(counts).items()})
    truth_graph = (labels.line_graph() if labels.lines is not None else  # a mask's roads where there is imagery
                   tiled_graph(lambda window: (labels.mask(window) * read_valid(window)).astype(np.float32), grid,
                               GraphParams(threshold=0.5), tile_px, DEFAULT_MARGIN_PX))
    return {**scores, **graph_scores(truth_graph, proposal, windows)}, pixels


def imaged_labels(labels: LabelSource, read_valid: Callable[[tuple[int, int, int, int]], np.ndarray],
                  tile_px: int = DEFAULT_TILE_PX) -> LabelSource:
    """Line labels cut to the image's usable pixels (``read_valid``, read tile by tile): a road
    under nodata was never shown to the model, so APLS, TOPO and the labelled km leave it out, as
    the pixel scores do (the Paris chip's right half, its left half nodata: 0.707 labelled km and
    APLS 0.015 against the crop's 0.331 km and 0.201). Mask labels are cut pixel by pixel instead."""
    if labels.lines is None:
        return labels
    area = area_where(labels.grid, read_valid, tile_px)
    if area is None:
        return labels  # usable all over: nothing to cut
    lines = labels.lines.clip(area).explode(index_parts=False)
    lines = lines[lines.geometry.geom_type == "LineString"]
    return replace(labels, lines=lines[~lines.geometry.is_empty])


def area_where(grid: Grid, read: Callable[[tuple[int, int, int, int]], np.ndarray],
               tile_px: int = DEFAULT_TILE_PX) -> BaseGeometry | None:
    """The part of ``grid`` where ``read`` (a window's bool pixels, read tile by tile) is true, in
    the grid's CRS; None where it is true all over."""
    parts: list[BaseGeometry] = []
    cut = False
    for tile in plan_tiles(grid, tile_px, 0):
        valid = read(tile.core).astype(np.uint8)
        if valid.all():
            parts.append(window_box(grid, tile.core))
            continue
        cut = True
        at = window_grid(grid, tile.core).transform
        parts += [shape(g) for g, v in shapes(valid, mask=valid.astype(bool), transform=at) if v]
    return shapely.union_all(parts) if cut else None


def graph_within(graph: nx.Graph, area: BaseGeometry, crs: object) -> nx.Graph:
    """The roads of ``graph`` (its edges' geometries) cut to ``area``, as a line graph: a road the
    labels cannot confirm or deny (outside a mask's extent, under its nodata) is no proposal."""
    lines = shapely.intersection(np.asarray([d["geometry"] for *_, d in graph.edges(data=True)], dtype=object), area)
    lines = shapely.get_parts(shapely.line_merge(lines[~shapely.is_empty(lines)])) if len(lines) else lines
    lines = lines[shapely.get_type_id(lines) == 1] if len(lines) else lines
    return build_line_graph(lines, np.ones(len(lines)), np.full(len(lines), None, dtype=object), crs)


def labelled_share(labels: LabelSource, shown: Callable[[Grid], np.ndarray], tile_px: int = DEFAULT_TILE_PX) -> float:
    """The share of the image's usable pixels (``shown`` of a window's grid, tile by tile) the
    labels know: a mask of part of the image, or with nodata, is scored on that part only."""
    if labels.lines is not None:
        return 1.0
    usable = known = 0
    for tile in plan_tiles(labels.grid, tile_px, 0):
        there = shown(window_grid(labels.grid, tile.core))
        usable += int(there.sum())
        known += int((there & labels.known(tile.core)).sum())
    return known / usable if usable else 0.0


ALIGN_MAX_M = 30.0  # label offsets looked for, each way: OSM lies 5-10 m off, a wrong georeference further
ALIGN_MIN_M = 3.0  # a shift smaller than a road's half width is no misalignment
MIN_ALIGN_PX = 200  # road pixels each side needs for a shift to mean anything


def label_offset(pred: np.ndarray, truth: np.ndarray, valid: np.ndarray, res_m: float) -> dict | None:
    """How far the labels lie from the model's roads, when moving them fits far better (IoU at
    least 1.5 times and 0.05 higher): labels shifted 19 m east of the Paris chip scored IoU 0.04
    with no word. East/north: where the labels must move to meet the model's roads."""
    seen_pred, seen_truth = pred & valid, truth & valid
    if min(int(seen_pred.sum()), int(seen_truth.sum())) < MIN_ALIGN_PX:
        return None
    lag = max(1, int(ALIGN_MAX_M / res_m))
    surface, _ = cross_correlation_shift(seen_pred.astype(np.float32), seen_truth.astype(np.float32), lag)
    iy, ix = np.unravel_index(int(np.argmax(surface)), surface.shape)
    dy, dx = int(iy) - lag, int(ix) - lag
    if np.hypot(dy, dx) * res_m < ALIGN_MIN_M:
        return None
    h, w = truth.shape
    moved = np.zeros_like(seen_truth)
    moved[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = seen_truth[max(-dy, 0):h - max(dy, 0),
                                                                            max(-dx, 0):w - max(dx, 0)]
    before, after = pixel_scores(pred, truth, valid)["iou"], pixel_scores(pred, moved, valid)["iou"]
    if after < max(1.5 * before, before + 0.05):
        return None
    return {"east_m": round(dx * res_m, 1), "north_m": round(-dy * res_m, 1), "iou": before, "iou_moved": after}


def predict_footprint(imagery: str | Path | Imagery, net: torch.nn.Module, meta: ModelMeta, device: torch.device,
                      views: int | None = None) -> tuple[ProbabilityRaster, np.ndarray, Grid, Aoi]:
    """The model's probability over a whole image (a path, or one opened with its ``--bands``) at
    its resolution, where the image has pixels (``valid``), on its grid, and the image's footprint
    as an AOI: what a labelled chip is scored on."""
    imagery = imagery if isinstance(imagery, Imagery) else open_imagery(imagery)
    grid, aoi = footprint_grid(imagery, meta.resolution_m)
    with WindowReader(imagery, grid) as reader:
        prob = predict_raster(net, meta, reader, batch=None, device=device, views=views)
        valid = reader.read_all()[1]
    return prob, valid, grid, aoi


def evaluate_imagery(imagery_path: str | Path, labels_path: str | Path, model: str | Path | None = None,
                     slacks_m: tuple[float, ...] = DEFAULT_SLACKS_M, views: int | None = None,
                     bands: tuple[int, ...] | None = None) -> dict:
    """Run the model over the whole image at its resolution (``views``: orientations per window;
    None: the device's default, as a diff runs it; ``bands``: the image's red, green and blue, as
    ``--bands`` gives them) and score it against the labels. An image larger than a diff holds in
    one piece (osmgap.scale.options.SELF_TILE_PX) is run and scored tile by tile, as a diff of
    that size runs: memory stays flat."""
    started = time.time()
    imagery = open_imagery(imagery_path, bands)  # says what it guessed of a many-band image
    device = pick_device()
    net, meta = load_checkpoint(model, device)
    views = views or default_views(device)
    grid, aoi = footprint_grid(imagery, meta.resolution_m)
    try:
        labels = open_labels(labels_path, grid, aoi)  # a bad labels file stops the run before the model does
    except OsmElsewhere as exc:  # its advice is a diff's (--osm, an AOI): eval has neither
        raise InputError(exc.source, f"no road in or near the image: the file covers {show_bounds(exc.extent)}, "
                                     f"the image covers {show_bounds(exc.area)}; are these the labels of this "
                                     "image?") from None
    # what a diff counts as analysed: not the image's undeclared zero fill, internal mask or the
    # grid beyond its edge (Shanghai img1916, 67 % fill: 0.131 km2 scored for a 0.04 km2 scene);
    # a blank or all-nodata image is refused here, before the model runs
    shown = measure_coverage(imagery, aoi).area_wgs84
    tiling = self_tiling(grid.width * grid.height)
    if tiling is None:
        prob, valid, grid, aoi = predict_footprint(imagery, net, meta, device, views)
        imaged = valid & area_on_grid(shown, grid, touched=True)
        valid = imaged & labels.known()
        share = float(valid.sum() / imaged.sum()) if imaged.any() else 0.0
        # a road where the image shows nothing or the labels say nothing is no proposal either
        prob = replace(prob, prob=np.where(valid, prob.prob, np.float32(0.0)))
        truth = (whole_labels(imaged_labels(labels, lambda w: valid[w[0]:w[2], w[1]:w[3]])) if labels.lines is not None
                 else labels_from_mask(labels.mask() * valid, grid))
        scores, pixels = score_roads(prob, truth, meta.threshold, slacks_m, valid), int(valid.sum())
        offset = label_offset(prob.prob >= meta.threshold, truth.mask.astype(bool), valid, meta.resolution_m)
        scores.update({"label_offset": offset} if offset else {})
    else:
        del net  # the tiles load the model once in this process (osmgap.scale.tiled._model)
        scores, pixels = _score_tiled(tiling, imagery, grid, labels, shown, model, meta, views, slacks_m)
        share = labelled_share(labels, lambda g: area_on_grid(shown, g, touched=True), tiling.tile_px)
    result = {
        "imagery": str(imagery_path), "labels": str(labels_path), "labels_kind": labels.kind,
        "model": str(model or "default"), "threshold": meta.threshold, "resolution_m": meta.resolution_m,
        "pixels": pixels, "area_km2": pixels * meta.resolution_m ** 2 / 1e6, "labelled_share": share,
        "views": views, "bands": imagery.band_indexes, "device": str(device), **scores,
        **({"tiled": True} if tiling is not None else {}), "seconds": round(time.time() - started, 1),
        "imagery_warnings": list(imagery.warnings),  # said (logged) when the file was opened
    }
    if not result["truth_km"] and result["area_km2"]:  # a road-free image: what counts is what was drawn
        result["false_road_km_per_km2"] = result["proposal_km"] / result["area_km2"]
    warnings = cautions(result, Path(imagery_path), model, slacks_m, meta.training)
    # a model fine-tuned on panchromatic chips only, run on colour, or the reverse
    unseen = unseen_kind_warning(meta.training, model, imagery_path, imagery.band_indexes)
    return {**result, "warnings": [*warnings, *([unseen] if unseen else [])]}


TRAINED_ON = ".json"  # the record osmgap train writes beside a model (its train_names)
OSM_OFFSET_SLACK_M = 10.0  # OSM lies 5-10 m off the imagery, often: the slack that measures what a diff can use


def cautions(result: dict, imagery: Path, model: str | Path | None, slacks_m: tuple[float, ...],
             training: dict | None = None) -> list[str]:
    """What the figures cannot say, in words: labels that hold no road (recall, APLS and TOPO are
    then void: the false road drawn per km2 is the figure), labels of part of the image, an image
    of the model's own training (its training record, in the checkpoint or osmgap train's ``.json``
    beside it, names it: trained on, or chose the checkpoint and threshold; the figures are
    optimistic), and OSM labels scored only at slacks smaller than OSM's usual offset from the imagery."""
    out = []
    if not result["truth_km"]:
        out.append(f"WARNING: {result['labels']}: the labels hold no road, so recall, APLS and TOPO say nothing; "
                   f"the model drew {result['proposal_km']:.2f} km of road in {result['area_km2']:.3g} km2 "
                   f"({result.get('false_road_km_per_km2', 0.0):.2f} km per km2), all of it false if the image has "
                   "none")
    offset = result.get("label_offset")
    if offset:
        east, north = offset["east_m"], offset["north_m"]
        move = f"{abs(east):g} m {'east' if east >= 0 else 'west'} and {abs(north):g} m {'north' if north >= 0 else 'south'}"
        out.append(f"WARNING: {result['labels']}: the labels meet the model's roads best moved {move} (IoU "
                   f"{offset['iou']:.3f} -> {offset['iou_moved']:.3f}): are they aligned with the image? Misaligned "
                   "labels score a good model as a poor one")
    if result.get("labelled_share", 1.0) < LABELLED_ALL:
        out.append(f"NOTE: {result['labels']} labels {result['labelled_share']:.0%} of the image's usable pixels (its "
                   "extent, less its nodata): only those are scored")
    whose = f"{model}" if model else "the shipped model"
    record = Path(f"{model}{TRAINED_ON}") if model else None
    beside: dict = {}
    if record is not None and record.is_file():
        try:
            beside = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            beside = {}
    trained, validated = training_names(training or {})
    more_trained, more_validated = training_names(beside)
    if _names(imagery, trained | more_trained):
        where = f"{record.name}: train_names" if _names(imagery, more_trained) and record else "its training record"
        out.append(f"WARNING: an image named {imagery.name} is in the training set of {whose} ({where}): if it is "
                   "this one, these figures are optimistic; score it on an image it was not trained on")
    elif _names(imagery, validated | more_validated):
        out.append(f"WARNING: an image named {imagery.name} validated the training of {whose}: it chose the "
                   "checkpoint and its threshold, so if it is this one, these figures are optimistic; score it on "
                   "an image that played no part in training")
    if result["labels_kind"] == "osm" and max(slacks_m, default=0.0) < OSM_OFFSET_SLACK_M:
        out.append(f"NOTE: OSM often lies 5-10 m off the imagery; relaxed scores at {OSM_OFFSET_SLACK_M:g} m "
                   f"(--slack-m 3,{OSM_OFFSET_SLACK_M:g}) measure what osmgap diff can use")
    return out


LABELLED_ALL = 0.99  # labels of less than this share of the image are said


def training_names(record: object) -> tuple[set[str], set[str]]:
    """The image names a training record lists as trained on and as validation, with those of the
    records inside it (an averaged model keeps its parents' records: the shipped one trained on
    the Vegas chip and four Shanghai chips)."""
    trained: set[str] = set()
    validated: set[str] = set()
    if isinstance(record, dict):
        for key, names in (("train_names", trained), ("val_names", validated)):
            if isinstance(record.get(key), list):
                names.update(str(n) for n in record[key])
        for value in record.values():
            more = training_names(value)
            trained |= more[0]
            validated |= more[1]
    return trained, validated


def _names(imagery: Path, names: set[str]) -> bool:
    """Whether a training record's names (``domain/IMAGE`` or ``pair/IMAGE+LABELS``) name ``imagery``."""
    return any(imagery.name in re.split(r"[/+]", n) for n in names)


def _score_tiled(tiling: ScaleOptions, imagery: Imagery, grid: Grid, labels: LabelSource, shown: BaseGeometry,
                 model: str | Path | None, meta: ModelMeta, views: int, slacks_m: tuple[float, ...]) -> tuple[dict, int]:
    """The model run as a self-tiled diff runs it (its windows, its stitched graph, the sums in a
    temporary folder under the system's temporary directory, ``TMPDIR``), then scored by tiles
    where the image is usable (``shown``) and the labels known."""
    from osmgap.scale.tiled import tiled_evidence

    with tempfile.TemporaryDirectory(prefix="osmgap-eval-") as work:
        prob, proposal, _ = tiled_evidence(replace(tiling, work_dir=Path(work) / "tiles"), imagery, grid,
                                           str(model) if model else None, meta, GraphParams(threshold=meta.threshold),
                                           WINDOW_PX, OVERLAP_PX, None, Path(work) / "out", views)
        with WindowReader(imagery, grid) as reader:
            def imaged(w: tuple[int, int, int, int]) -> np.ndarray:
                valid = reader.read(w[0], w[1], w[2] - w[0], w[3] - w[1])[1]
                return valid & area_on_grid(shown, window_grid(grid, w), touched=True)

            def read_valid(w: tuple[int, int, int, int]) -> np.ndarray:
                return imaged(w) & labels.known(w)

            if labels.lines is None:  # as the whole image's: no proposal where the labels say nothing
                said = area_where(grid, lambda w: labels.known(w) | ~imaged(w), tiling.tile_px)
                proposal = proposal if said is None else graph_within(proposal, said, grid.crs)
            return score_in_tiles(prob, proposal, imaged_labels(labels, read_valid, tiling.tile_px), read_valid,
                                  meta.threshold, slacks_m, tiling.tile_px)
