"""Inference speed options keep the output right: flip TTA, the batch chosen from free memory."""
import numpy as np
import torch

from osmgap.model import infer
from osmgap.model.infer import auto_batch, forward_probability, predict_array
from osmgap.model.nets import load_checkpoint


def test_flip_tta_is_flip_equivariant_and_close_to_plain():
    from osmgap.core.datapaths import data_root
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


def test_auto_batch_fits_memory_and_tiles(monkeypatch):
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    per_window = 512 * 512 * infer.ACTIVATION_BYTES_PER_PIXEL
    monkeypatch.setattr(infer, "free_memory_bytes", lambda device: 7 * per_window)
    assert auto_batch(512, gpu) == 3  # half the free memory holds 3.5 windows' activations
    assert auto_batch(512, gpu, tiles=2) == 2
    assert auto_batch(512, cpu) == infer.CPU_MAX_AUTO_BATCH  # room for 3, capped on a CPU
    monkeypatch.setattr(infer, "free_memory_bytes", lambda device: per_window)
    assert auto_batch(512, gpu) == 1  # not even one fits: one at a time


def test_auto_batch_gives_the_same_probabilities():
    from osmgap.core.datapaths import data_root
    from osmgap.model.data import load_training_data

    net, meta = load_checkpoint()
    image = load_training_data(data_root(), ["deepglobe"], 1.0)[1].image[:, :160, :200]
    fixed = predict_array(net, meta, image, tile=64, overlap=16, batch=3, device=torch.device("cpu"))
    auto = predict_array(net, meta, image, tile=64, overlap=16, batch=None, device=torch.device("cpu"))
    np.testing.assert_allclose(auto, fixed, atol=1e-5)


def test_default_threads_leave_busy_cores_alone(monkeypatch):
    """The forward pass takes the cores the load average does not show busy: all of torch's on an
    idle machine, one when the others are taken (more threads than free cores collapse)."""
    monkeypatch.setattr(infer, "_TORCH_DEFAULT_THREADS", 8)
    monkeypatch.setattr(infer.os, "sched_getaffinity", lambda pid: set(range(8)))
    for load, threads in [(0.0, 8), (2.2, 6), (7.6, 1), (30.0, 1)]:
        monkeypatch.setattr(infer.os, "getloadavg", lambda load=load: (load, load, load))
        assert infer.default_threads() == threads
    monkeypatch.setattr(infer.os, "sched_getaffinity", lambda pid: {0, 1})  # a process pinned to 2 cores
    monkeypatch.setattr(infer.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert infer.default_threads() == 2

