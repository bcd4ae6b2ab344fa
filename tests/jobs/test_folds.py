"""Cross-prediction on the real Paris sample (imagery + its OSM ways): folds are spatially
blocked, every tile is predicted once by a model that never trained on its labels, and changing
a fold's labels leaves that fold's prediction untouched."""
import json
from dataclasses import replace

import numpy as np
import pytest
import rasterio
from scipy import ndimage

from osmgap.cli import main
from osmgap.errors import InputError
from osmgap.jobs.folds import cross_predict, fold_config, load_aoi_training_data, split_tiles
from osmgap.model.train import TrainConfig
from osmgap.sources.osm import load_osm
from tests.conftest import PROJECT


def fold_map(tiles, height, width) -> tuple[np.ndarray, np.ndarray]:
    folds = np.full((height, width), -1)
    cover = np.zeros((height, width), int)
    for t in tiles:
        folds[t.row0:t.row1, t.col0:t.col1] = t.fold
        cover[t.row0:t.row1, t.col0:t.col1] += 1
    return folds, cover


@pytest.mark.parametrize("height,width,folds", [(391, 320, 3), (192, 128, 3), (700, 500, 5), (130, 900, 4)])
def test_folds_are_contiguous_balanced_and_cover_the_grid_once(height, width, folds):
    tiles = split_tiles(height, width, folds, 64)
    fold_of, cover = fold_map(tiles, height, width)
    assert (cover == 1).all()
    sizes = [sum(t.fold == k for t in tiles) for k in range(folds)]
    assert max(sizes) - min(sizes) <= 1
    for k in range(folds):
        _, regions = ndimage.label(fold_of == k)  # 4-connected
        assert regions == 1, f"fold {k} is split into {regions} pieces"
    assert all(t.row1 - t.row0 >= 64 and t.col1 - t.col0 >= 64 for t in tiles)


def test_too_few_tiles_is_refused():
    with pytest.raises(InputError, match="folds need at least"):
        split_tiles(100, 100, 3, 64)
    with pytest.raises(InputError):
        split_tiles(640, 640, 1, 64)


@pytest.fixture(scope="module")
def paris_data(paris, paris_aoi):
    ways = load_osm(str(paris / "osm_roads.geojson"), paris_aoi).ways
    cfg = fold_config(TrainConfig(steps=2, batch=2, crop=64, lr=5e-4), None, 64)
    return cfg, load_aoi_training_data(paris_aoi, paris / "image.tif", ways, cfg.resolution_m)


def test_a_folds_prediction_does_not_depend_on_its_own_labels(paris_data, tmp_path):
    cfg, data = paris_data
    first = cross_predict(data, 2, cfg, tmp_path, log=lambda m: None)
    held = [t for t in first.tiles if t.fold == 0]
    assert data.labels[held[0].row0:held[-1].row1].any(), "fold 0 must hold OSM roads for this test to mean anything"
    erased = replace(data, labels=data.labels.copy())
    for t in held:  # delete every road of fold 0 from the labels
        erased.labels[t.row0:t.row1, t.col0:t.col1] = 0
    second = cross_predict(erased, 2, cfg, tmp_path, log=lambda m: None)
    for t in first.tiles:
        a = first.prob.prob[t.row0:t.row1, t.col0:t.col1]
        b = second.prob.prob[t.row0:t.row1, t.col0:t.col1]
        if t.fold == 0:  # predicted by the model trained on fold 1 only: labels unchanged there
            np.testing.assert_allclose(a, b, atol=1e-6)
        else:  # predicted by the model that trained on the erased labels
            assert np.abs(a - b).max() > 1e-4


def test_cli_cross_predicts_the_sample_aoi(tmp_path):
    out = tmp_path / "folds"
    code = main(["train", "--aoi", str(PROJECT / "sample_aoi" / "paris-1447"), "--folds", "3",
                 "--steps", "2", "--batch", "2", "--lr", "5e-4", "--out", str(out)])
    assert code == 0
    record = json.loads((out / "folds.json").read_text())
    names = [t["name"] for t in record["tiles"]]
    fold_of = {t["name"]: t["fold"] for t in record["tiles"]}
    assert len(names) == len(set(names)) == 6 and sorted(record["predicted_by"]) == sorted(names)
    for name, model in record["predicted_by"].items():
        m = record["models"][model]
        assert name not in m["train_tiles"], f"tile {name} was predicted by a model that trained on it"
        assert fold_of[name] == m["held_out_fold"] and fold_of[name] not in m["trained_on_folds"]
        assert set(m["train_tiles"]) == {n for n in names if fold_of[n] != fold_of[name]}
    with rasterio.open(out / "probability.tif") as src:
        prob = src.read(1)
        assert src.crs.to_epsg() == 32631 and abs(src.transform.a - 1.0) < 1e-9
        assert prob.shape == (192, 128)
    assert prob.max() > 128 and (prob > 128).mean() < 0.5  # roads found, not everything


def test_cli_refuses_folds_without_an_aoi(tmp_path, capsys):
    assert main(["train", "--folds", "3", "--out", str(tmp_path / "x")]) == 2
    assert "--aoi" in capsys.readouterr().err
    assert main(["train", "--aoi", str(PROJECT / "sample_aoi" / "paris-1447"), "--folds", "9",
                 "--steps", "2", "--out", str(tmp_path / "y")]) == 2
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
