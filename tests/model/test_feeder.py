"""Training batches drawn per step: the same from crop workers as in the training process, in
step order, and a resumed run's batches are the uninterrupted run's."""
import numpy as np
import pytest
import torch

from osmgap.model.data import load_training_data
from osmgap.model.feeder import step_batches
from osmgap.model.train import sampling_weights


@pytest.fixture(scope="module")
def deepglobe(data):
    samples = load_training_data(data, ["deepglobe"], 1.0)
    return samples, sampling_weights(samples)


def _same(a, b) -> bool:
    return len(a) == len(b) and all(torch.equal(x[k], y[k]) for x, y in zip(a, b, strict=True) for k in range(3))


def test_workers_build_the_batches_the_trainer_would(deepglobe):
    samples, weights = deepglobe
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the workers' thread count: torch's resampling rounds by threads
    try:
        here = list(step_batches(samples, weights, 3, 96, 0.3, 5, 1, 7))
        workers = list(step_batches(samples, weights, 3, 96, 0.3, 5, 1, 7, workers=2))
    finally:
        torch.set_num_threads(threads)
    assert len(here) == 7 and _same(here, workers)
    x, y, v = here[0]
    assert x.shape == (3, 3, 96, 96) and y.shape == v.shape == (3, 1, 96, 96)
    assert not torch.equal(here[0][0], here[1][0])  # each step its own crops


def test_a_resumed_run_gets_the_same_batches(deepglobe):
    samples, weights = deepglobe
    whole = list(step_batches(samples, weights, 2, 64, 0.0, 9, 1, 6))
    assert _same(whole[3:], list(step_batches(samples, weights, 2, 64, 0.0, 9, 4, 6)))
    other_seed = list(step_batches(samples, weights, 2, 64, 0.0, 10, 1, 6))
    assert not np.array_equal(whole[0][0].numpy(), other_seed[0][0].numpy())
