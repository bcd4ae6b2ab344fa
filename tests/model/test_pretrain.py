"""Self-supervised pretraining (issue 15, item 4) on real imagery: hidden patches are square and
as many as asked, a short run paints hidden patches better than a blank fill, and its encoder,
and only a matching one, starts a road model."""
import numpy as np
import pytest
import torch

from osmgap.cli import main
from osmgap.errors import InputError
from osmgap.model.data import load_image, load_training_data, load_unlabelled
from osmgap.model.encoder_file import load_encoder_into
from osmgap.model.nets import DEFAULT_MODEL, ModelMeta, build_net, load_checkpoint
from osmgap.model.pretrain import PretrainConfig, hide_patches, pretrain, reconstruction_loss
from osmgap.model.train import TrainConfig, train


def test_hidden_patches_are_squares_in_the_asked_share():
    hidden = hide_patches((8, 3, 256, 256), 16, 0.6, np.random.default_rng(0))
    assert hidden.shape == (8, 1, 256, 256)
    assert 0.55 < hidden.mean().item() < 0.65
    cells = hidden[..., ::16, ::16]
    assert torch.equal(hidden, torch.nn.functional.interpolate(cells, scale_factor=16, mode="nearest"))


@pytest.fixture(scope="module")
def crops(data):
    return load_training_data(data, ["massachusetts"], 1.0)[:40]


@pytest.fixture(scope="module")
def encoder(crops, tmp_path_factory):
    out = tmp_path_factory.mktemp("pre") / "encoder.pt"
    record = pretrain(crops[:-4], PretrainConfig(steps=60, batch=4, crop=96, lr=3e-3, init=str(DEFAULT_MODEL)), out,
                      log=lambda m: None)
    return out, record


def test_only_hidden_imagery_is_scored(crops):
    x = torch.from_numpy(np.stack([c.image[:, :96, :96] for c in crops[:2]]))
    hidden = hide_patches(tuple(x.shape), 16, 0.5, np.random.default_rng(1))
    valid = torch.ones_like(hidden)
    valid[..., :48] = 0
    garbage = torch.rand_like(x)
    right_where_scored = torch.where((hidden * valid) > 0, x, garbage)
    assert reconstruction_loss(right_where_scored, x, hidden, valid).item() == 0
    assert reconstruction_loss(garbage, x, hidden, valid).item() > 0.1


def test_short_pretraining_learns_to_paint(encoder):
    _, record = encoder
    # every step draws new crops, so the falling loss is on crops the net had not seen
    assert record["steps_done"] == 60 and record["last_loss"] < 0.9 * record["first_loss"]


def test_the_encoder_starts_a_road_model_and_a_mismatch_is_refused(crops, encoder, tmp_path):
    out, _ = encoder
    saved = torch.load(out, weights_only=True)["state_dict"]
    cfg = TrainConfig(steps=1, batch=2, crop=64, eval_every=1, lr=1e-12, init_encoder=str(out))
    train(crops[:4], cfg, tmp_path / "road.pt", log=lambda m: None, val=crops[4:6])
    road, _ = load_checkpoint(tmp_path / "road.pt")
    for name, tensor in road.encoder.state_dict().items():
        if tensor.is_floating_point() and "running" not in name:
            assert torch.allclose(tensor.float(), saved[name].float(), atol=2e-3), name
    other = build_net(ModelMeta(encoder="resnet34"))
    with pytest.raises(InputError, match="resnet18 encoder of 3 band.*resnet34"):
        load_encoder_into(other, ModelMeta(encoder="resnet34"), out)
    with pytest.raises(InputError, match="not a pretrained osmgap encoder"):
        load_encoder_into(build_net(ModelMeta()), ModelMeta(), DEFAULT_MODEL)


def test_unlabelled_imagery_is_read_without_roads(data, paris):
    extra = load_unlabelled(data, ["deepglobe"], 1.0)
    assert len(extra) == 5 and all(s.mask.sum() == 0 and s.image.shape[1:] == (512, 512) for s in extra)
    chip = load_image(paris / "image.tif", 1.0)
    assert chip.image.shape[0] == 3 and chip.mask.sum() == 0 and 0.05 < chip.image.mean() < 0.95


def test_cli_pretrains_on_an_image_and_refuses_a_bad_init(paris, tmp_path, capsys):
    out = tmp_path / "enc.pt"
    assert main(["pretrain", "--data", "", "--imagery", str(paris / "image.tif"), "--steps", "2", "--batch", "2",
                 "--crop", "64", "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out and torch.load(out, weights_only=True)["pretraining"]["images"] == 1
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a model")
    assert main(["pretrain", "--data", "", "--imagery", str(paris / "image.tif"), "--init", str(bad),
                 "--out", str(tmp_path / "x.pt")]) == 2
    assert "bad.pt" in capsys.readouterr().err and not (tmp_path / "x.pt").exists()


def test_cli_pretrains_on_a_pack_without_its_validation_crops(crops, tmp_path, capsys):
    from osmgap.model.data import is_validation
    from osmgap.model.pack import write_pack

    pack = tmp_path / "p.npz"
    write_pack(crops, pack, 1.0)
    kept = sum(not is_validation(c.name) for c in crops)
    assert 0 < kept < len(crops)  # the 40 crops hold validation ones: the filter is exercised
    out = tmp_path / "enc.pt"
    assert main(["pretrain", "--data", "", "--pack", str(pack), "--steps", "2", "--batch", "2", "--crop", "64",
                 "--out", str(out)]) == 0
    assert torch.load(out, weights_only=True)["pretraining"]["images"] == kept
    wrong = tmp_path / "enc2.pt"
    assert main(["pretrain", "--data", "", "--pack", str(pack), "--resolution", "2", "--out", str(wrong)]) == 2
    assert "p.npz" in capsys.readouterr().err and not wrong.exists()
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"not a pack")
    assert main(["pretrain", "--data", "", "--pack", str(broken), "--out", str(wrong)]) == 2
    err = capsys.readouterr().err
    assert "broken.npz" in err and len(err.strip().splitlines()) == 1 and not wrong.exists()
