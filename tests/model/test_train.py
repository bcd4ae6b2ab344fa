"""Training pieces on real Massachusetts crops: augmentation keeps image and mask aligned, a
short run writes a loadable checkpoint with normalization and a calibrated threshold."""
import numpy as np
import pytest
import torch

from osmgap.model.augment import random_crop
from osmgap.model.data import Sample, is_validation, load_training_data
from osmgap.model.losses import dice_bce_loss
from osmgap.model.nets import load_checkpoint
from osmgap.model.train import TrainConfig, train


def test_validation_split_is_stable_and_about_a_tenth():
    names = [f"massachusetts/img-{i}.png" for i in range(2000)]
    frac = np.mean([is_validation(n) for n in names])
    assert 0.07 < frac < 0.13
    assert [is_validation(n) for n in names[:50]] == [is_validation(n) for n in names[:50]]


def test_augmentation_moves_image_and_mask_together(data):
    s = load_training_data(data, ["massachusetts"], 1.0)[5]
    marked = Sample(s.name, np.repeat(s.mask[None].astype(np.float32), 3, axis=0), s.mask)
    rng = np.random.default_rng(3)
    for _ in range(8):
        x, y, v = random_crop(marked, 128, rng)
        assert x.shape == (3, 128, 128) and y.shape == v.shape == (128, 128) and v.min() == 1
        if y.sum() > 50:
            assert np.corrcoef(x[0].ravel(), y.ravel())[0, 1] > 0.9


def test_loss_prefers_the_truth(data):
    s = max(load_training_data(data, ["deepglobe"], 1.0), key=lambda s: s.mask.sum())
    y = torch.from_numpy(s.mask[None, None].astype(np.float32))
    right = dice_bce_loss((y * 2 - 1) * 6, y)
    wrong = dice_bce_loss((1 - y * 2) * 6, y)
    assert right < 0.1 < wrong


def test_short_training_run_writes_a_usable_checkpoint(data, tmp_path, monkeypatch):
    samples = load_training_data(data, ["deepglobe"], 1.0)  # 4 real pairs at 1 m/px
    samples[0].name = "val/" + samples[0].name  # make sure one lands in validation
    monkeypatch.setattr("osmgap.model.train.is_validation", lambda name, fraction=0.1: name.startswith("val/"))
    record = train(samples, TrainConfig(steps=3, batch=2, crop=64, eval_every=3, arch="Unet", encoder="resnet18"),
                   tmp_path / "m.pt", log=lambda m: None)
    assert record["val_images"] == 1 and record["train_images"] == 3
    net, meta = load_checkpoint(tmp_path / "m.pt")
    assert meta.arch == "Unet" and len(meta.mean) == 3 and 0.2 <= meta.threshold <= 0.8
    assert "threshold_scores" in meta.training
    assert (tmp_path / "m.pt.json").exists()


@pytest.mark.parametrize("low", [torch.bfloat16, None])
def test_training_step_runs_under_bf16_where_inference_does(data, tmp_path, monkeypatch, low):
    """bf16 autocast (emulated on a CPU without it: same rounding) for the step's convolutions, the
    weights and the loss kept in fp32; fp32 throughout when the device has no bf16 or --fp32."""
    import osmgap.model.train as train_module

    samples = load_training_data(data, ["deepglobe"], 1.0)
    monkeypatch.setattr(train_module, "autocast_dtype", lambda device: low)
    seen: set[torch.dtype] = set()
    build = train_module.build_net

    def spied(meta):
        net = build(meta)
        first_conv = next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d))
        first_conv.register_forward_hook(lambda m, i, out: seen.add(out.dtype) if m.training else None)
        return net

    monkeypatch.setattr(train_module, "build_net", spied)
    record = train(samples, TrainConfig(steps=2, batch=2, crop=64, eval_every=2), tmp_path / "m.pt",
                   log=lambda m: None, val=samples[:1])
    assert seen == {low or torch.float32}
    assert record["precision"] == str(low or torch.float32)
    net, _ = load_checkpoint(tmp_path / "m.pt")
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in net.parameters())
