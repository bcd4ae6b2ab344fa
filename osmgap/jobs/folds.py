"""Cross-prediction on OSM labels (``osmgap train --aoi AOI --folds K``).

Fine-tuning on an AOI's own OSM roads teaches the model that there is no road wherever OSM
has none, which is exactly where the gaps osmgap looks for are. So the AOI's analysis grid is
cut into tiles, the tiles are dealt into K spatially blocked folds (contiguous runs of tiles in
a serpentine order, so a fold is one compact region, not a scatter of tiles whose neighbours
share its roads), and for every fold a model fine-tuned on the other K-1 folds predicts it.
The stitched result is a probability raster for the whole AOI in which no pixel comes from a
model that saw that pixel's labels. Training starts from existing weights (the default model)
so that a CPU run stays short.
"""
from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import geopandas as gpd
import numpy as np
import torch

from osmgap.core.aoi import Aoi
from osmgap.core.atomic import staged_output_dir, write_text_atomic
from osmgap.core.datamodel import ProbabilityRaster
from osmgap.core.grid import Grid
from osmgap.errors import InputError
from osmgap.export.probability import write_probability_tif
from osmgap.graph.rasterize import rasterize_roads
from osmgap.metrics.pixel import pixel_scores
from osmgap.model.choices import FOLD_TILE_PX
from osmgap.model.data import Sample
from osmgap.model.infer import predict_array
from osmgap.model.labels import area_on_grid
from osmgap.model.nets import ModelMeta, load_checkpoint, model_file
from osmgap.model.train import TrainConfig, train
from osmgap.sources.imagery import Imagery, WindowReader, analysis_grid, open_imagery
from osmgap.workspace.outputs import RUN_MARKERS, RUN_OUTPUTS

TILE_PX = FOLD_TILE_PX
CONTEXT_PX = 32  # imagery (never labels) around a held-out fold that its model may look at


@dataclass(frozen=True)
class Tile:
    """Pixel rows ``row0:row1`` and columns ``col0:col1`` of the analysis grid, in ``fold``."""

    name: str
    row0: int
    row1: int
    col0: int
    col1: int
    fold: int


@dataclass
class AoiTrainingData:
    """The AOI's imagery and OSM labels on its analysis grid, in memory (AOIs here are small)."""

    image: np.ndarray  # (3, H, W) float32 in [0, 1]
    labels: np.ndarray  # (H, W) uint8, OSM ways rasterized with per-class widths
    grid: Grid
    # (H, W) bool: imagery inside the AOI, what its OSM labels speak for (None: every pixel). The
    # grid is the AOI's bounding box and OSM is clipped to the AOI: past its outline no road is mapped
    valid: np.ndarray | None = None


@dataclass
class CrossPrediction:
    """The stitched probability and the record that proves how it was made."""

    prob: ProbabilityRaster
    tiles: list[Tile]
    models: list[dict]  # per fold: held-out fold, folds and tile names it trained on
    predicted_by: dict[str, int]  # tile name -> index of the model that predicted it
    # pixel scores of the stitched prediction (each tile at its model's threshold) against the OSM labels
    held_out: dict[str, float] = field(default_factory=dict)


def _cuts(length: int, tile_px: int) -> list[int]:
    """Boundaries of ``length // tile_px`` near-equal pieces (each at least ``tile_px``)."""
    pieces = max(1, length // tile_px)
    return [round(i * length / pieces) for i in range(pieces + 1)]


def split_tiles(height: int, width: int, folds: int, tile_px: int = TILE_PX) -> list[Tile]:
    """Tiles covering a ``height`` x ``width`` grid once, dealt into ``folds`` contiguous blocks.

    Tiles are walked row by row, every other row backwards (a serpentine), and the walk is cut
    into ``folds`` runs of near-equal length; consecutive tiles of a serpentine always touch, so
    each fold is one connected region.
    """
    rows, cols = _cuts(height, tile_px), _cuts(width, tile_px)
    order = []
    for i in range(len(rows) - 1):
        js = range(len(cols) - 1)
        order += [(i, j) for j in (js if i % 2 == 0 else reversed(js))]
    if len(order) < folds or folds < 2:
        raise InputError(None, f"{folds} folds need at least {max(folds, 2)} tiles of {tile_px} px; "
                               f"the AOI grid ({width} x {height} px) has {len(order)}")
    return [Tile(f"r{i}c{j}", rows[i], rows[i + 1], cols[j], cols[j + 1], n * folds // len(order))
            for n, (i, j) in enumerate(order)]


def tile_samples(data: AoiTrainingData, tiles: list[Tile]) -> list[Sample]:
    """The tiles as training samples; outside the AOI and the imagery neither road nor background."""
    return [Sample(t.name, data.image[:, t.row0:t.row1, t.col0:t.col1], data.labels[t.row0:t.row1, t.col0:t.col1],
                   _cut(data.valid, t)) for t in tiles]


def _cut(valid: np.ndarray | None, t: Tile) -> np.ndarray | None:
    part = None if valid is None else valid[t.row0:t.row1, t.col0:t.col1]
    return None if part is None or part.all() else part


def fine_tune(samples: list[Sample], cfg: TrainConfig, checkpoint: Path,
              log: Callable[[str], None]) -> tuple[torch.nn.Module, ModelMeta, dict]:
    """Fine-tune ``cfg.init`` on ``samples`` (they also pick the checkpoint and threshold: there
    is nothing else whose labels this model may see, so its IoU is logged as measured on the
    training images); return the net, its meta and the record."""
    record = train(samples, cfg, checkpoint, log=log, val=samples)
    net, meta = load_checkpoint(checkpoint)
    return net, meta, record


def predict_tiles(net: torch.nn.Module, meta: ModelMeta, image: np.ndarray, tiles: list[Tile],
                  out: np.ndarray) -> None:
    """Write the net's probability for ``tiles`` into ``out``, predicting only their bounding box
    plus ``CONTEXT_PX`` of imagery around it."""
    _, height, width = image.shape
    r0 = max(0, min(t.row0 for t in tiles) - CONTEXT_PX)
    r1 = min(height, max(t.row1 for t in tiles) + CONTEXT_PX)
    c0 = max(0, min(t.col0 for t in tiles) - CONTEXT_PX)
    c1 = min(width, max(t.col1 for t in tiles) + CONTEXT_PX)
    prob = predict_array(net, meta, image[:, r0:r1, c0:c1])
    for t in tiles:
        out[t.row0:t.row1, t.col0:t.col1] = prob[t.row0 - r0:t.row1 - r0, t.col0 - c0:t.col1 - c0]


def predict_fold_windows(net: torch.nn.Module, meta: ModelMeta, image: np.ndarray, tiles: list[Tile]) -> np.ndarray:
    """One net's probability, predicted fold by fold through the same windows as
    ``cross_predict``, so that only the training differs when the two are compared (a small
    net's output moves with where its window falls)."""
    prob = np.zeros(image.shape[1:], np.float32)
    for k in sorted({t.fold for t in tiles}):
        predict_tiles(net, meta, image, [t for t in tiles if t.fold == k], prob)
    return prob


def fold_config(base: TrainConfig, init: str | Path | None, tile_px: int) -> TrainConfig:
    """``base`` made to warm-start from ``init`` (default model) at its arch, decoder and
    resolution, with crops no bigger than a tile, validated once at the end (a fold model is
    scratch: no resume)."""
    init = model_file(init)
    _, meta = load_checkpoint(init)
    crop = max(32, min(base.crop, tile_px) // 32 * 32)
    return replace(base, init=str(init), arch=meta.arch, encoder=meta.encoder, decoder=meta.decoder,
                   resolution_m=meta.resolution_m, crop=crop, eval_every=base.steps, resume=None, save_state=False)


def cross_predict(data: AoiTrainingData, folds: int, cfg: TrainConfig, work_dir: Path,
                  tile_px: int = TILE_PX, log: Callable[[str], None] = print) -> CrossPrediction:
    """For each fold, fine-tune on the other folds' tiles and predict it; stitch the results."""
    tiles = split_tiles(data.grid.height, data.grid.width, folds, tile_px)
    prob = np.zeros(data.labels.shape, np.float32)
    roads = np.zeros(data.labels.shape, bool)  # each tile thresholded as its model's threshold says
    models, predicted_by = [], {}
    for k in range(folds):
        held_out = [t for t in tiles if t.fold == k]
        trained_on = [t for t in tiles if t.fold != k]
        log(f"fold {k + 1}/{folds}: training on {len(trained_on)} tiles, predicting {len(held_out)}")
        net, meta, record = fine_tune(tile_samples(data, trained_on), cfg, work_dir / f"fold{k}.pt", log)
        predict_tiles(net, meta, data.image, held_out, prob)
        for t in held_out:
            roads[t.row0:t.row1, t.col0:t.col1] = prob[t.row0:t.row1, t.col0:t.col1] >= meta.threshold
        predicted_by.update({t.name: k for t in held_out})
        models.append({"model": k, "held_out_fold": k,
                       "trained_on_folds": sorted({t.fold for t in trained_on}),
                       "train_tiles": record["train_names"], "threshold": meta.threshold,
                       "steps": record.get("steps_done"), "seconds": record["seconds"]})
    held = pixel_scores(roads, data.labels.astype(bool), data.valid)  # the AOI's imagery only: OSM says nothing past it
    log(f"held-out IoU of the stitched cross-prediction against the OSM labels {held['iou']:.4f} "
        f"P {held['precision']:.3f} R {held['recall']:.3f}")
    return CrossPrediction(ProbabilityRaster(prob, data.grid.transform, data.grid.crs), tiles, models, predicted_by,
                           held)


def load_aoi_training_data(aoi: Aoi, imagery: str | Path | Imagery, ways: gpd.GeoDataFrame,
                           resolution_m: float) -> AoiTrainingData:
    """Imagery (a path, or one opened with its ``--bands``) and rasterized OSM labels on the AOI's
    analysis grid at ``resolution_m``."""
    imagery = imagery if isinstance(imagery, Imagery) else open_imagery(imagery)
    grid = analysis_grid(imagery, aoi.geometry, aoi.metric_crs, resolution_m)
    with WindowReader(imagery, grid) as reader:
        image, valid = reader.read_all()
    # no road is learnt, nor "no road", where there is no imagery (as in osmgap.model.data) or no OSM:
    # outside a polygon AOI (a triangle over the Paris chip: half its grid, 570 of 2,428 predicted
    # road pixels there scored false and taught as background)
    valid &= area_on_grid(aoi.geometry, grid)
    return AoiTrainingData(image, rasterize_roads(ways, grid) * valid.astype(np.uint8), grid,
                           None if valid.all() else valid)


def write_cross_prediction(aoi: Aoi, imagery: Imagery, ways: gpd.GeoDataFrame, folds: int,
                           cfg: TrainConfig, out_dir: str | Path, init: str | Path | None = None,
                           tile_px: int = TILE_PX, log: Callable[[str], None] = print) -> CrossPrediction:
    """Cross-predict the AOI (``imagery`` opened with its ``--bands``) and write ``probability.tif``
    and ``folds.json`` into ``out_dir`` (all or nothing); the fold models are scratch and are not kept."""
    cfg = fold_config(cfg, init, tile_px)
    data = load_aoi_training_data(aoi, imagery, ways, cfg.resolution_m)
    if not data.labels.any():  # fine-tuning on it would teach "no road anywhere": nothing to cross-predict
        raise InputError(aoi.source, f"the OSM labels hold no road inside the AOI ({len(ways)} ways, 0 label pixels "
                                     "on the imagery): cross-prediction learns from the AOI's roads; give --osm with "
                                     "its roads")
    with staged_output_dir(out_dir, replaces=RUN_OUTPUTS, markers=RUN_MARKERS) as stage, tempfile.TemporaryDirectory(prefix="osmgap-folds-") as work:
        result = cross_predict(data, folds, cfg, Path(work), tile_px, log)
        write_probability_tif(stage / "probability.tif", result.prob)
        record = {"aoi": aoi.source, "imagery": str(imagery.path), "bands": imagery.band_indexes,
                  "folds": folds, "tile_px": tile_px,
                  "resolution_m": cfg.resolution_m, "label_pixels": int(data.labels.sum()),
                  "scored_pixels": int(data.labels.size if data.valid is None else data.valid.sum()),
                  "config": asdict(cfg), "tiles": [asdict(t) for t in result.tiles],
                  "models": result.models, "predicted_by": result.predicted_by,
                  "held_out_scores": result.held_out}
        write_text_atomic(stage / "folds.json", json.dumps(record, indent=2))
    return result
