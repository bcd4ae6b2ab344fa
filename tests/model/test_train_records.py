"""What a training run writes and says: the checkpoint and its .json always agree (a Ctrl-C
included), the threshold it stores is said (kept where validation holds no road, warned at the
edge of the search), the --init model is scored at step 0 and kept when fine-tuning does not
beat it, labels without a road are refused, and a lone --pair chip gets one consistent line."""
import json

import numpy as np
import pytest

from osmgap.errors import InputError
from osmgap.model.data import Sample, load_training_data
from osmgap.model.nets import load_checkpoint
from osmgap.model.train import TrainConfig, train


@pytest.fixture(scope="module")
def crops(data):
    pairs = load_training_data(data, ["deepglobe"], 1.0)
    trn = [Sample(f"t{i}", s.image[:, 100:260, 100:260].copy(), s.mask[100:260, 100:260].copy())
           for i, s in enumerate(pairs[:2])]
    val = [Sample("v", pairs[1].image[:, 100:196, 100:196].copy(), pairs[1].mask[100:196, 100:196].copy())]
    assert all(s.mask.any() for s in trn + val)
    return trn, val


def tiny(**kw) -> TrainConfig:
    return TrainConfig(**{"steps": 2, "batch": 2, "crop": 64, "eval_every": 2, **kw})


def test_a_ctrl_c_leaves_the_checkpoint_and_its_record_in_agreement(crops, tmp_path, monkeypatch):
    """A second run stopped after its first validation: the model and its .json are both that
    run's (the model was the new half-trained net at threshold 0.5 beside the old run's record)."""
    import osmgap.model.train as mt

    trn, val = crops
    out = tmp_path / "m.pt"
    train(trn, tiny(steps=1, eval_every=1), out, log=lambda m: None, val=val)
    real, calls = mt.evaluate, []

    def stop_at_the_second(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(mt, "evaluate", stop_at_the_second)
    with pytest.raises(KeyboardInterrupt):
        train(trn, tiny(steps=4, eval_every=1, seed=1), out, log=lambda m: None, val=val)
    _, meta = load_checkpoint(out)
    record = json.loads((tmp_path / "m.pt.json").read_text())
    assert record["history"] == meta.training["history"] and record["history"][-1]["step"] == 1
    assert record["config"]["steps"] == 4 and record["threshold"]["threshold"] == meta.threshold


def test_the_stored_threshold_is_said(crops, tmp_path):
    trn, val = crops
    said: list[str] = []
    record = train(trn, tiny(), tmp_path / "m.pt", log=said.append, val=val)
    _, meta = load_checkpoint(tmp_path / "m.pt")
    line = f"threshold 0.50 -> {meta.threshold:.2f}, calibrated on 1 validation image(s)"
    assert [m for m in said if m.startswith("threshold ")][0].startswith(line)
    assert record["threshold"]["threshold"] == meta.threshold and record["threshold"]["calibrated"]
    said.clear()
    train(trn, tiny(), tmp_path / "own.pt", log=said.append, val=trn)
    assert any("optimistic when calibrated on the training images" in m for m in said if m.startswith("threshold "))
    assert any("IoU on training images" in m for m in said) and not any("val IoU" in m for m in said)


def test_a_threshold_on_the_edge_of_the_search_is_warned(crops, tmp_path, monkeypatch):
    trn, val = crops
    # a net sure of road everywhere: every threshold ties, the lowest is taken
    monkeypatch.setattr("osmgap.model.train.predict_array",
                        lambda net, meta, image, **k: np.full(image.shape[1:], 0.9, np.float32))
    said: list[str] = []
    train(trn, tiny(), tmp_path / "m.pt", log=said.append, val=val)
    line = [m for m in said if m.startswith("threshold ")][0]
    assert line.startswith("threshold 0.50 -> 0.20") and "edge of the range searched" in line


def test_validation_without_a_road_keeps_the_threshold(crops, tmp_path):
    trn, val = crops
    blank = [Sample("v", val[0].image, np.zeros_like(val[0].mask))]
    said: list[str] = []
    record = train(trn, tiny(), tmp_path / "m.pt", log=said.append, val=blank)
    _, meta = load_checkpoint(tmp_path / "m.pt")
    assert meta.threshold == 0.5 and record["threshold"]["calibrated"] is False
    assert any("hold no road: threshold kept at 0.50" in m for m in said)


def test_training_labels_without_a_road_are_refused(crops, tmp_path):
    trn, _ = crops
    blank = [Sample(s.name, s.image, np.zeros_like(s.mask)) for s in trn]
    with pytest.raises(InputError, match="no road"):
        train(blank, tiny(), tmp_path / "m.pt", log=lambda m: None)
    assert not (tmp_path / "m.pt").exists()


def test_the_init_model_is_scored_at_step_0_and_kept_when_best(crops, tmp_path, monkeypatch):
    trn, val = crops
    scores = iter([0.6, 0.3, 0.2])  # step 0 (the --init model), then worse

    def fake_evaluate(net, meta, samples, device):
        return {"iou": next(scores), "precision": 0.5, "recall": 0.5, "f1": 0.5}

    monkeypatch.setattr("osmgap.model.train.evaluate", fake_evaluate)
    said: list[str] = []
    record = train(trn, tiny(init="default", eval_every=1), tmp_path / "m.pt", log=said.append, val=val)
    assert record["history"][0]["step"] == 0 and record["best"]["step"] == 0
    assert any(m.startswith("step 0 (the --init model) val IoU 0.6000") for m in said)
    assert any("keeping the --init model" in m for m in said)
    _, start = load_checkpoint("default")
    _, kept = load_checkpoint(tmp_path / "m.pt")
    assert kept.training["best"]["step"] == 0 and kept.mean == start.mean


def test_a_lone_pair_chip_gets_one_consistent_line(crops, tmp_path):
    trn, _ = crops
    said: list[str] = []
    train([Sample("pair/chip25.tif+roads.geojson", trn[0].image, trn[0].mask)], tiny(), tmp_path / "m.pt",
          log=said.append)
    assert not any("instead of training" in m for m in said)
    assert sum("validation" in m and "chip" not in m and "fell" in m for m in said) == 1
