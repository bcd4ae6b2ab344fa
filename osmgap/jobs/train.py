"""The ``train`` job: gather the labelled images, train, or cross-predict an AOI fold by fold."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from osmgap.core.atomic import check_output_dir
from osmgap.core.datapaths import data_root
from osmgap.errors import InputError
from osmgap.jobs.diff import DiffRequest, resolve_sources
from osmgap.jobs.folds import CrossPrediction, write_cross_prediction
from osmgap.model.data import Sample, load_labelled_image, load_training_data
from osmgap.model.train import TrainConfig
from osmgap.sources.imagery import check_resolution, measure_coverage, open_imagery
from osmgap.sources.osm import load_osm
from osmgap.sources.sample import find_sample


def load_samples(datasets: list[str], pairs: list[str], resolution_m: float,
                 bands: tuple[int, ...] | None = None) -> list[Sample]:
    """The named datasets of the data directory plus every ``IMAGE=LABELS`` pair (its image read in
    ``bands``, as ``--bands`` gives them; the datasets know their own bands)."""
    samples = load_training_data(data_root(), datasets, resolution_m) if datasets else []
    for pair in pairs:
        image, sep, labels = pair.partition("=")
        if not sep or not image or not labels:
            raise InputError(pair, "--pair must be IMAGE=LABELS")
        samples.append(load_labelled_image(image, labels, resolution_m, bands))
    if not samples:
        raise InputError(None, "no training data: give --data datasets or --pair IMAGE=LABELS")
    return samples


def cross_predict(aoi_spec: str, imagery: str | None, osm: str | None, folds: int, cfg: TrainConfig, out: Path,
                  tile_px: int, log: Callable[[str], None], bands: tuple[int, ...] | None = None,
                  graph_crs: str | None = None) -> CrossPrediction:
    """Write a cross-predicted probability.tif and folds.json for an AOI to ``out`` (``bands``: the
    imagery's red, green and blue, as ``--bands`` gives them)."""
    check_output_dir(out)  # said before any training, not after it
    if imagery is None and find_sample(aoi_spec) is None:  # not diff's "--candidates or --gps": train has neither
        raise InputError(aoi_spec, "is not a sample AOI directory: cross-prediction needs --imagery IMAGE (and --osm "
                                   "LABELS, else the AOI's OSM is downloaded)")
    aoi, imagery_path, osm_spec, _ = resolve_sources(DiffRequest(aoi=aoi_spec, out=out, imagery=imagery, osm=osm))
    assert imagery_path is not None  # no candidates, XYZ or GPS: resolve_sources gives imagery or raises
    image = open_imagery(imagery_path, bands)
    measure_coverage(image, aoi)  # a blank or all-nodata image: exit 2, as a diff of it
    coarse = check_resolution(image, cfg.resolution_m)  # far too coarse: exit 2
    if coarse:
        log(coarse)
    ways = load_osm(osm_spec, aoi, graph_crs=graph_crs).ways
    return write_cross_prediction(aoi, image, ways, folds, cfg, out, init=cfg.init, tile_px=tile_px, log=log)
