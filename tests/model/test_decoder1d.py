"""The 1D decoder of Sun et al. (CVPR 2019): its diagonal branches really are 9x9 kernels
restricted to a diagonal, its parameter budget matches the decoder it replaces, and a net with
it trains on real imagery and comes back from a checkpoint with the same decoder."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from osmgap.errors import InputError
from osmgap.model.data import load_training_data
from osmgap.model.nets import (
    DEFAULT_MODEL,
    LineUpsample,
    ModelMeta,
    build_net,
    load_checkpoint,
    shear_rows,
    unshear_rows,
)
from osmgap.model.train import TrainConfig, train


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_shear_is_exactly_undone():
    x = torch.rand(2, 3, 7, 11)
    sheared = shear_rows(x)
    assert sheared.shape == (2, 3, 7, 17)
    assert torch.equal(sheared[:, :, 4, 4:15], x[:, :, 4])  # row 4 moved 4 pixels right
    assert torch.equal(unshear_rows(sheared, 11), x)


def test_diagonal_branches_equal_masked_9x9_convolutions():
    torch.manual_seed(0)
    up = LineUpsample(6, 8)
    x = torch.rand(1, 6, 20, 26)
    width = x.shape[-1]
    taps = torch.arange(9)
    for branch, cols, mirror in ((up.anti_diagonal, 8 - taps, False), (up.diagonal, taps, True)):
        masked = torch.zeros(2, 6, 9, 9)
        masked[:, :, taps, cols] = branch.weight[:, :, :, 0]
        expected = F.conv2d(x, masked, padding=4)
        src = torch.flip(x, (-1,)) if mirror else x
        got = unshear_rows(branch(shear_rows(src)), width)
        got = torch.flip(got, (-1,)) if mirror else got
        assert torch.allclose(got, expected, atol=1e-5)


def test_each_branch_spreads_a_point_along_its_own_line():
    up = LineUpsample(4, 8).eval()  # 2 filters per direction; fresh batch norm is the identity
    with torch.no_grad():
        for branch in (up.horizontal, up.vertical, up.anti_diagonal, up.diagonal):
            branch.weight.fill_(1.0)
        x = torch.zeros(1, 4, 16, 16)
        x[:, :, 8, 8] = 1.0
        out = up(x)[0]
    rows_cols = [np.nonzero(out[2 * i].numpy() > 0) for i in range(4)]
    (hr, hc), (vr, vc), (ar, ac), (dr, dc) = rows_cols
    assert len(set(hr)) == 2 and len(set(hc)) == 10  # the 2x2 upsampled pixel, 8 pixels longer
    assert len(set(vc)) == 2 and len(set(vr)) == 10
    assert set(zip(ar, ac)) != set(zip(dr, dc))
    for r, c in ((ar, ac), (dr, dc)):
        assert len(set(r)) == 10 and len(set(c)) == 10 and len(r) < 40  # a thin diagonal band
    assert np.corrcoef(ar, ac)[0, 1] < -0.9 and np.corrcoef(dr, dc)[0, 1] > 0.9


def test_parameter_budget_matches_the_plain_decoder():
    plain, line = build_net(ModelMeta()), build_net(ModelMeta(decoder="1d"))
    # each replaced layer: 4 x (C_in x C/4 x 9) = the weights of a 3x3 transposed convolution
    for block in line.decoder.blocks:
        up = block.block[1]
        c_in, c_out = up.horizontal.in_channels, 4 * up.horizontal.out_channels
        convs = [up.horizontal, up.vertical, up.anti_diagonal, up.diagonal]
        assert sum(n_params(c) for c in convs) == n_params(torch.nn.ConvTranspose2d(c_in, c_out, 3, bias=False))
    # smp's Linknet uses 4x4 transposed convolutions, so the whole net has 1.3 % fewer weights
    assert 0.98 < n_params(line) / n_params(plain) < 1.0


def test_forward_shape_on_a_non_square_input():
    net = build_net(ModelMeta(decoder="1d")).eval()
    with torch.no_grad():
        assert net(torch.rand(1, 3, 96, 160)).shape == (1, 1, 96, 160)


def test_only_linknet_and_known_decoders():
    with pytest.raises(InputError, match="Linknet"):
        build_net(ModelMeta(arch="Unet", decoder="1d"))
    with pytest.raises(InputError, match="unknown decoder"):
        build_net(ModelMeta(decoder="3d"))


def test_shipped_model_still_loads_with_the_plain_decoder():
    net, meta = load_checkpoint(DEFAULT_MODEL)
    assert meta.decoder == "plain"
    assert not any(isinstance(m, LineUpsample) for m in net.modules())


def test_trains_two_steps_and_round_trips(data, tmp_path, monkeypatch):
    samples = load_training_data(data, ["deepglobe"], 1.0)  # 4 real pairs
    monkeypatch.setattr("osmgap.model.train.is_validation", lambda name, fraction=0.1: name == samples[0].name)
    record = train(samples, TrainConfig(steps=2, batch=2, crop=64, eval_every=2, decoder="1d"),
                   tmp_path / "line.pt", log=lambda m: None)
    assert record["config"]["decoder"] == "1d" and record["steps_done"] == 2
    net, meta = load_checkpoint(tmp_path / "line.pt")
    assert meta.decoder == "1d"
    assert sum(isinstance(m, LineUpsample) for m in net.modules()) == 5
    fresh = build_net(ModelMeta(decoder="1d"))
    trained = dict(net.named_parameters())
    moved = [name for name, p in fresh.named_parameters() if "decoder" in name and not torch.allclose(p, trained[name])]
    assert moved, "the 1D decoder's weights must have been trained and stored"
    x = torch.from_numpy(samples[0].image[:, :128, :128].copy())[None]
    with torch.no_grad():
        again, _ = load_checkpoint(tmp_path / "line.pt")
        assert torch.allclose(net(x), again(x))
