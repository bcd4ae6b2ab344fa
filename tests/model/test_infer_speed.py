"""Inference options keep the output right: averaged views, the batch chosen from free memory."""
import numpy as np
import pytest
import torch

from osmgap.core.precision import forced_fp32
from osmgap.model import infer
from osmgap.model.infer import auto_batch, forward_probability, predict_array
from osmgap.model.nets import load_checkpoint


def _deepglobe_batch(meta) -> torch.Tensor:
    from osmgap.core.datapaths import data_root
    from osmgap.model.data import load_training_data

    image = load_training_data(data_root(), ["deepglobe"], 1.0)[0].image[:, :128, :128]
    x = torch.from_numpy(image[None].copy())
    return (x - torch.tensor(meta.mean)[None, :, None, None]) / torch.tensor(meta.std)[None, :, None, None]


def test_views_average_orientations_and_commute_with_them():
    """Averaged over a group of orientations, the output turns with the input: every quarter turn
    and mirror image for 8 views, every quarter turn for 4, the half turn for 2 (up to float
    rounding); and it is the network's output averaged, not another picture."""
    net, meta = load_checkpoint()
    x = _deepglobe_batch(meta)
    turn = lambda t, k: torch.rot90(t, k, (-2, -1))  # noqa: E731
    with torch.inference_mode(), forced_fp32(True):  # bf16's rounding would differ with the memory layout
        out = {v: forward_probability(net, x, v) for v in (1, 2, 4, 8)}
        assert torch.allclose(turn(forward_probability(net, turn(x, 2), 2), -2), out[2], atol=1e-5)
        assert torch.allclose(turn(forward_probability(net, turn(x, 1), 4), -1), out[4], atol=1e-5)
        assert torch.allclose(turn(forward_probability(net, turn(x, 1), 8), -1), out[8], atol=1e-5)
        assert torch.allclose(torch.flip(forward_probability(net, torch.flip(x, (3,)), 8), (2,)), out[8], atol=1e-5)
        one_turned = turn(forward_probability(net, turn(x, 1), 1), -1)
    assert not torch.allclose(one_turned, out[1], atol=1e-3)  # the network alone does not commute: views matter
    for v in (2, 4, 8):
        assert not torch.allclose(out[1], out[v], atol=1e-5)
        assert (out[1] > 0.5).eq(out[v] > 0.5).float().mean() > 0.9  # ... the same picture, averaged
    with pytest.raises(ValueError, match="views"):
        forward_probability(net, x, 3)


def test_views_default_to_two_on_a_cpu_and_eight_on_a_gpu():
    from osmgap.tools.options import VIEW_CHOICES

    assert infer.default_views(torch.device("cpu")) == infer.CPU_VIEWS == 2
    assert infer.default_views(torch.device("cuda")) == infer.GPU_VIEWS == 8
    assert VIEW_CHOICES == infer.VIEW_CHOICES  # the CLI's copy (it starts without torch) agrees
    assert len(set(infer.VIEWS)) == 8 and infer.VIEWS[:2] == ((False, 0), (False, 2))  # 2 views: a half turn


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

