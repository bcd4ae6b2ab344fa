"""Inference speed options keep the output right: flip TTA, batch from memory, torch.compile flag."""
import numpy as np
import torch

from osmgap.model.infer import auto_batch, forward_probability, predict_array
from osmgap.model.nets import load_checkpoint


def test_flip_tta_is_flip_equivariant_and_close_to_plain():
    from osmgap.datapaths import data_root
    from osmgap.model.data import load_training_data

    net, meta = load_checkpoint()
    image = load_training_data(data_root(), ["deepglobe"], 1.0)[0].image[:, :128, :128]
    x = torch.from_numpy(image[None].copy())
    mean = torch.tensor(meta.mean)[None, :, None, None]
    std = torch.tensor(meta.std)[None, :, None, None]
    x = (x - mean) / std
    with torch.inference_mode():
        tta = forward_probability(net, x, tta=True)
        tta_of_flipped = forward_probability(net, torch.flip(x, (3,)), tta=True)
        plain = forward_probability(net, x)
    # averaging all four flips makes the output commute with a flip (up to float rounding)
    assert torch.allclose(torch.flip(tta_of_flipped, (2,)), tta, atol=1e-5)
    assert not torch.allclose(plain, tta, atol=1e-5)  # it does change the output
    assert (plain > 0.5).eq(tta > 0.5).float().mean() > 0.9  # ... but not the picture


def test_auto_batch_fits_memory_and_tiles():
    cpu = torch.device("cpu")
    assert 1 <= auto_batch(512, cpu) <= 2
    assert auto_batch(512, cpu, tiles=1) == 1
    assert auto_batch(16384, cpu) == 1  # a huge tile: one at a time


def test_auto_batch_and_compile_flag_give_the_same_probabilities():
    from osmgap.datapaths import data_root
    from osmgap.model.data import load_training_data

    net, meta = load_checkpoint()
    image = load_training_data(data_root(), ["deepglobe"], 1.0)[1].image[:, :160, :200]
    fixed = predict_array(net, meta, image, tile=64, overlap=16, batch=3, device=torch.device("cpu"))
    auto = predict_array(net, meta, image, tile=64, overlap=16, batch=None, device=torch.device("cpu"))
    np.testing.assert_allclose(auto, fixed, atol=1e-5)
