"""Training batches, each drawn by a generator of its own seeded by (seed, step).

Why per step: a batch is then the same whether the training process builds it or one of N
crop workers does, and after a resume, so a GPU run fed by a machine's cores (its crops and
augmentation cost ~10x the GPU's step) trains on the crops a CPU run would (bit for bit at the
same torch thread count; torch's threaded resampling rounds differently by a float ulp).
"""
from __future__ import annotations

import multiprocessing
import os
from collections.abc import Generator, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset

from osmgap.model.augment import erase_patches, random_crop
from osmgap.model.data import Sample

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # images (B, C, H, W), masks and valid (B, 1, H, W)
MAX_CROP_WORKERS = 15  # beside one GPU: past this the GPU, not the crops, sets the pace


def training_crop(sample: Sample, crop: int, erase: float, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """One augmented crop (image, mask, valid); a share ``erase`` of them with a strip painted over."""
    x, y, v = random_crop(sample, crop, rng)
    if erase and rng.random() < erase:
        x, y = erase_patches(x, y, v, rng)
    return x, y, v


def step_batch(samples: list[Sample], weights: np.ndarray, batch: int, crop: int, erase: float,
               seed: int, step: int) -> Batch:
    """The batch of training step ``step``: ``batch`` crops of images drawn by ``weights``."""
    rng = np.random.default_rng((seed, step))
    crops = [training_crop(samples[i], crop, erase, rng) for i in rng.choice(len(samples), batch, p=weights)]
    x, y, v = (torch.from_numpy(np.stack([c[k] for c in crops])) for k in range(3))
    return x, y[:, None], v[:, None]


class _StepBatches(IterableDataset):
    """Steps ``first..last``; crop worker i of n builds steps first+i, first+i+n, ... (a DataLoader
    takes one from each worker in turn, so they come out in step order)."""

    def __init__(self, samples: list[Sample], weights: np.ndarray, batch: int, crop: int, erase: float,
                 seed: int, first: int, last: int) -> None:
        self.samples, self.weights = samples, weights
        self.batch, self.crop, self.erase, self.seed, self.first, self.last = batch, crop, erase, seed, first, last

    def __iter__(self) -> Iterator[Batch]:
        info = torch.utils.data.get_worker_info()
        worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
        for step in range(self.first + worker, self.last + 1, workers):
            yield step_batch(self.samples, self.weights, self.batch, self.crop, self.erase, self.seed, step)


def _one_thread(_: int) -> None:
    torch.set_num_threads(1)  # n workers on n cores; torch's own threads would fight them


def crop_workers(device: torch.device) -> int:
    """Processes building batches: none on a CPU (its cores run the step), all cores but one
    beside a GPU (at most :data:`MAX_CROP_WORKERS`)."""
    if device.type == "cpu":
        return 0
    return max(0, min(MAX_CROP_WORKERS, (os.cpu_count() or 1) - 1))


def step_batches(samples: list[Sample], weights: np.ndarray, batch: int, crop: int, erase: float, seed: int,
                 first: int, last: int, workers: int = 0) -> Generator[Batch, None, None]:
    """The batches of steps ``first..last`` in order, built here or by ``workers`` processes."""
    dataset = _StepBatches(samples, weights, batch, crop, erase, seed, first, last)
    if workers == 0 or last < first:
        yield from dataset
        return
    # fork shares the samples (hundreds of MB) with the workers instead of pickling a copy to each
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
    yield from DataLoader(dataset, batch_size=None, num_workers=workers, worker_init_fn=_one_thread,
                          prefetch_factor=4, pin_memory=torch.cuda.is_available(), multiprocessing_context=context)
