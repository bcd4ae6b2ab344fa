"""Score a road model's output against labels the way the field does (``osmgap eval``).

Pixel IoU/F1 (DeepGlobe, Microsoft), relaxed precision/recall (Mnih 2013: a pixel within the
slack of the other side counts), APLS (SpaceNet 3) and TOPO (Biagioni & Eriksson) on the graph
osmgap itself extracts from the probabilities, so the graph scores judge what ``osmgap diff``
actually works with.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from osmgap.core.aoi import Aoi
from osmgap.core.datamodel import ProbabilityRaster
from osmgap.core.grid import Grid
from osmgap.graph.skeleton import GraphParams, extract_graph, graph_length_m
from osmgap.metrics.apls import apls
from osmgap.metrics.pixel import pixel_scores, relaxed_scores
from osmgap.metrics.topo import topo
from osmgap.model.infer import default_views, predict_raster
from osmgap.model.labels import RoadLabels, footprint_grid, load_labels
from osmgap.model.nets import ModelMeta, load_checkpoint, pick_device
from osmgap.sources.imagery import Imagery, WindowReader, open_imagery

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
    proposal = extract_graph(prob, GraphParams(threshold=threshold))
    scores.update(apls(labels.graph, proposal))
    scores.update(topo(labels.graph, proposal))
    scores["truth_km"] = graph_length_m(labels.graph) / 1000
    scores["proposal_km"] = graph_length_m(proposal) / 1000
    return scores


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
    ``--bands`` gives them) and score it against the labels."""
    started = time.time()
    imagery = open_imagery(imagery_path, bands)  # says what it guessed of a many-band image
    device = pick_device()
    net, meta = load_checkpoint(model, device)
    views = views or default_views(device)
    prob, valid, grid, aoi = predict_footprint(imagery, net, meta, device, views)
    labels = load_labels(labels_path, grid, aoi)
    scores = score_roads(prob, labels, meta.threshold, slacks_m, valid)
    return {
        "imagery": str(imagery_path), "labels": str(labels_path), "labels_kind": labels.kind,
        "model": str(model or "default"), "threshold": meta.threshold, "resolution_m": meta.resolution_m,
        "pixels": int(valid.sum()), "area_km2": float(valid.sum()) * meta.resolution_m ** 2 / 1e6,
        "views": views, "bands": imagery.band_indexes, "device": str(device), **scores,
        "seconds": round(time.time() - started, 1),
    }
