"""osmgap.model.nets.average_weights: the weight-space average behind the shipped model."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from osmgap.model.nets import average_weights, read_checkpoint


def test_average_of_the_shipped_weights_with_themselves_shifted():
    state, meta = read_checkpoint(None)
    shifted = {k: v.float() + 1.0 if v.is_floating_point() else v + 7 for k, v in state.items()}
    out = average_weights(state, shifted, meta, meta, 0.25)
    name = next(k for k, v in state.items() if v.is_floating_point())
    torch.testing.assert_close(out[name], state[name].float() + 0.25)
    count = next(k for k, v in state.items() if not v.is_floating_point())
    assert torch.equal(out[count], state[count])  # integer buffers: the nearer checkpoint's
    assert torch.equal(average_weights(state, shifted, meta, meta, 0.75)[count], shifted[count])


def test_other_networks_are_not_averaged():
    state, meta = read_checkpoint(None)
    with pytest.raises(ValueError, match="encoder"):
        average_weights(state, state, meta, replace(meta, encoder="resnet34"), 0.5)
    with pytest.raises(ValueError, match="other names"):
        average_weights(state, dict(list(state.items())[:-1]), meta, meta, 0.5)
