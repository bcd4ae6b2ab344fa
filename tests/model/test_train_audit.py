"""`osmgap train --resume` and `--max-minutes`, `osmgap pretrain --out`, `train --aoi --folds` on
a polygon AOI and the kind of imagery a checkpoint knows, as users run them (real DeepGlobe crops,
the real Paris chip)."""
import json

import numpy as np
import pytest

from osmgap.cli import main
from osmgap.errors import InputError
from osmgap.model.data import Sample
from osmgap.model.pack import write_pack
from osmgap.model.resume import state_path
from osmgap.model.train import train
from tests.model.test_train_features import crops, tiny  # noqa: F401  (crops: a fixture)

QUIET = {"log": lambda m: None}


@pytest.fixture
def cut(crops, tmp_path):  # noqa: F811
    """A run stopped by its time budget after its first step, its state beside cut.pt."""
    trn, val = crops
    first = train(trn, tiny(steps=4, eval_every=2, max_minutes=0), tmp_path / "cut.pt", val=val, **QUIET)
    assert first["steps_done"] == 1
    return tmp_path / "cut.pt"


def test_a_state_of_another_network_is_refused_before_the_data_is_read(crops, cut, tmp_path, capsys):  # noqa: F811
    """It failed as "internal error: RuntimeError: Error(s) in loading state_dict for Unet" (some
    8,000 characters of weight names), exit 1, after loading every image."""
    trn, val = crops
    with pytest.raises(InputError, match="other settings.*arch 'Linknet' -> 'Unet'"):
        train(trn, tiny(steps=4, eval_every=2, arch="Unet", resume=str(state_path(cut))), cut, val=val, **QUIET)
    pack = tmp_path / "crops.npz"
    write_pack([*trn, *val], pack, 1.0)
    code = main(["train", "--pack", str(pack), "--decoder", "1d", "--steps", "4", "--eval-every", "2", "--batch", "2",
                 "--crop", "64", "--resume", str(state_path(cut)), "--out", str(cut)])
    err = capsys.readouterr()
    assert code == 2 and len(err.err.strip().splitlines()) == 1 and "decoder 'plain' -> '1d'" in err.err
    assert "samples" not in err.out  # said before the pack was read


def test_a_state_resumed_into_another_out_is_refused(crops, cut, tmp_path):  # noqa: F811
    """Resumed into another --out the run trained on, then stopped with "other.pt: model file not
    found" (its best checkpoint was the first run's, beside cut.pt)."""
    trn, val = crops
    with pytest.raises(InputError, match="whose --out is .*cut.pt: give that --out"):
        train(trn, tiny(steps=4, eval_every=2, resume=str(state_path(cut))), tmp_path / "other.pt", val=val, **QUIET)
    assert not list(tmp_path.glob("other.pt*"))


def test_a_state_resumed_on_other_images_is_refused(crops, cut):  # noqa: F811
    """Other --pair/--data made one model of two recipes, the record naming only the last."""
    trn, val = crops
    with pytest.raises(InputError, match="other training images"):
        train(trn[:2], tiny(steps=4, eval_every=2, resume=str(state_path(cut))), cut, val=val, **QUIET)


def test_max_minutes_count_the_whole_run_across_resumes(crops, tmp_path):  # noqa: F811
    """--max-minutes counted each call from 0 (under onecycle and cosine): a run stopped by its
    budget and resumed with the same command trained a second budget (0.1 min twice: 18 s)."""
    trn, val = crops
    cfg = {"steps": 5000, "eval_every": 1000, "max_minutes": 0.1}
    first = train(trn, tiny(**cfg), tmp_path / "m.pt", val=val, **QUIET)
    assert "time budget" in first["stopped"] and 1 < first["steps_done"] < 5000
    again = train(trn, tiny(**cfg, resume=str(state_path(tmp_path / "m.pt"))), tmp_path / "m.pt", val=val, **QUIET)
    assert again["steps_done"] == first["steps_done"] + 1  # the budget is spent: one step, then it stops


def test_pretrain_keeps_an_existing_out_and_refuses_a_folder_first(paris, tmp_path, capsys):
    """--out replaced any file (a road model.pt given by mistake became an encoder), and a folder
    was refused only after the steps ("/tmp/.adir.xxxx: Is a directory", exit 1)."""
    model = tmp_path / "model.pt"
    model.write_bytes(b"the user's road model")
    args = ["pretrain", "--data", "", "--imagery", str(paris / "image.tif"), "--steps", "2", "--batch", "2",
            "--crop", "64"]
    assert main([*args, "--out", str(model)]) == 2
    assert "--overwrite" in capsys.readouterr().err and model.read_bytes() == b"the user's road model"
    (tmp_path / "folder").mkdir()
    assert main([*args, "--out", str(tmp_path / "folder")]) == 2
    captured = capsys.readouterr()
    assert "is a folder" in captured.err and "pretrain step" not in captured.out
    assert main([*args, "--out", str(model), "--overwrite"]) == 0 and model.read_bytes() != b"the user's road model"


def test_a_checkpoint_says_the_kind_of_imagery_it_knows(crops, paris, tmp_path):  # noqa: F811
    """A model trained on grey (panchromatic) images only recorded nothing of it: run on colour
    imagery nothing could say so. Its record counts grey and colour images, with what the model
    it started from knew; eval says it. A fine-tune of the shipped model, whose record does not
    count them, is not said to know no colour."""
    from osmgap.jobs.eval import evaluate_imagery
    from osmgap.model.nets import read_checkpoint

    trn, val = crops
    grey = [Sample(s.name, np.repeat(s.image.mean(axis=0, keepdims=True), 3, axis=0), s.mask) for s in trn]
    record = train(grey, tiny(steps=1, eval_every=1), tmp_path / "pan.pt", val=val, **QUIET)
    assert record["image_kinds"] == {"grey_images": 3, "colour_images": 0}
    assert read_checkpoint(tmp_path / "pan.pt")[1].training["image_kinds"] == record["image_kinds"]
    again = train(grey[:1], tiny(steps=1, eval_every=1, init=str(tmp_path / "pan.pt")), tmp_path / "pan2.pt", val=val,
                  **QUIET)
    assert again["init_image_kinds"] == {"grey_images": 3, "colour_images": 0}
    for model in ("pan.pt", "pan2.pt"):
        result = evaluate_imagery(paris / "image.tif", paris / "osm_roads.geojson", tmp_path / model, views=1)
        assert any("trained on no colour image" in w and model in w for w in result["warnings"]), model
    from osmgap.cli import main  # a diff with it says so too, in summary.json's warnings

    assert main(["diff", "--aoi", str(paris / "aoi.geojson"), "--imagery", str(paris / "image.tif"),
                 "--osm", str(paris / "osm_roads.geojson"), "--model", str(tmp_path / "pan.pt"),
                 "--out", str(tmp_path / "out"), "--views", "1"]) == 0
    said = json.loads((tmp_path / "out" / "summary.json").read_text())["warnings"]
    assert any("trained on no colour image" in w for w in said), said
    shipped = train(grey[:1], tiny(steps=1, eval_every=1, init="default"), tmp_path / "fine.pt", val=val, **QUIET)
    assert shipped["init_image_kinds"] is None
    fine = evaluate_imagery(paris / "image.tif", paris / "osm_roads.geojson", tmp_path / "fine.pt", views=1)
    assert not any("trained on no" in w for w in fine["warnings"])
    # a model of colour images only has seen grey ones all the same: a quarter of its crops are made grey
    from osmgap.model.kinds import unseen_kind

    colour_only = {"train_names": ["a"], "image_kinds": {"grey_images": 0, "colour_images": 3}}
    assert unseen_kind(colour_only, grey=True) is None and unseen_kind(record, grey=False) == "colour"


def test_cross_prediction_learns_and_scores_only_inside_a_polygon_aoi(paris, tmp_path):
    """The grid is the AOI's bounding box and OSM is clipped to the AOI: outside a triangle over the
    Paris chip (half its grid) every road was taught as background and its prediction scored false
    (held-out precision 0.49; 570 of 2,428 predicted road pixels lay outside)."""
    from osmgap.core.aoi import load_aoi
    from osmgap.jobs.folds import load_aoi_training_data, tile_samples
    from osmgap.sources.osm import load_osm

    triangle = tmp_path / "triangle.geojson"
    triangle.write_text(json.dumps({"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [
        [[2.2812014, 48.9810359], [2.2829164, 48.9810359], [2.2812014, 48.9827509], [2.2812014, 48.9810359]]]}}))
    aoi = load_aoi(str(triangle))
    data = load_aoi_training_data(aoi, paris / "image.tif", load_osm(str(paris / "osm_roads.geojson"), aoi).ways, 1.0)
    assert data.valid is not None and 0.4 < data.valid.mean() < 0.6
    assert not data.labels[~data.valid].any() and data.labels.any()
    from osmgap.jobs.folds import split_tiles

    samples = tile_samples(data, split_tiles(data.grid.height, data.grid.width, 2))
    assert any(s.valid is not None and not s.valid.all() for s in samples)
    out = tmp_path / "folds"
    assert main(["train", "--aoi", str(triangle), "--imagery", str(paris / "image.tif"), "--osm",
                 str(paris / "osm_roads.geojson"), "--folds", "2", "--steps", "2", "--batch", "2",
                 "--out", str(out)]) == 0
    record = json.loads((out / "folds.json").read_text())
    assert record["scored_pixels"] == int(data.valid.sum())
    assert record["held_out_scores"]["precision"] > 0.6
