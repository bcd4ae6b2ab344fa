"""The shipped road net built without smp (osmgap.model.linknet) is smp's LinkNet: the same weight
names and shapes, the same logits in inference and training mode, BatchNorm folded the same way,
and loading the shipped model imports neither smp nor torchvision."""
import subprocess
import sys

import pytest
import segmentation_models_pytorch as smp
import torch

from osmgap.model import linknet
from osmgap.model.nets import DEFAULT_MODEL, ModelMeta, build_net, fold_batchnorm, read_checkpoint


def _pair(encoder: str, bands: int, seed: int) -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(seed)
    reference = smp.create_model("Linknet", encoder_name=encoder, encoder_weights=None, in_channels=bands, classes=1)
    for m in reference.modules():  # non-trivial running statistics, so that eval mode tests them
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    native = linknet.Linknet(encoder, bands)
    native.load_state_dict(reference.state_dict(), strict=True)
    return reference, native


@pytest.mark.parametrize(("encoder", "bands"), [("resnet18", 3), ("resnet34", 1)])
def test_same_logits_as_smp(encoder, bands):
    reference, native = _pair(encoder, bands, seed=len(encoder) + bands)
    assert native.state_dict().keys() == reference.state_dict().keys()
    x = torch.rand(2, bands, 64, 96, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        want, got = reference.eval()(x), native.eval()(x)
    assert got.shape == (2, 1, 64, 96) and want.abs().max() > 0.1
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    reference.train(), native.train()
    torch.testing.assert_close(native(x), reference(x), atol=1e-4, rtol=1e-4)  # batch statistics


def test_shipped_model_and_its_folded_copy_agree_with_smp():
    state, meta = read_checkpoint(DEFAULT_MODEL)
    native = build_net(meta)
    assert isinstance(native, linknet.Linknet)
    reference = smp.create_model(meta.arch, encoder_name=meta.encoder, encoder_weights=None,
                                 in_channels=meta.in_channels, classes=1)
    weights = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    native.load_state_dict(weights)
    reference.load_state_dict(weights)
    folded, count = fold_batchnorm(native.eval(), meta.in_channels)
    _, smp_count = fold_batchnorm(reference.eval(), meta.in_channels)
    assert count == smp_count == 35  # stem 1, blocks 16, shortcuts 3, decoder 15
    x = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        torch.testing.assert_close(folded(x), reference(x), atol=1e-4, rtol=1e-4)


def test_other_networks_still_come_from_smp():
    assert not linknet.builds("Linknet", "resnet18", "1d") and not linknet.builds("Unet", "resnet18", "plain")
    assert type(build_net(ModelMeta(arch="Unet"))).__module__.startswith("segmentation_models_pytorch")
    with pytest.raises(RuntimeError, match="multiples of 32"):
        linknet.Linknet()(torch.zeros(1, 3, 40, 64))


def test_loading_the_shipped_model_imports_no_smp():
    code = ("import sys; from osmgap.model.nets import load_checkpoint, inference_net; "
            "net, meta = load_checkpoint(); inference_net(net); "
            "print(sorted(m for m in ('segmentation_models_pytorch', 'torchvision', 'timm') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
