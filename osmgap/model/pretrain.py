"""Self-supervised pretraining of the road net's encoder by masked reconstruction (issue 15, item 4).

Labels are scarce where the model fails (a new city, a new sensor) but imagery is not: the user's
own AOI is unlabelled imagery. Here the same network the road model uses is taught to paint in
square patches hidden from it (Pathak et al. 2016's context encoders, with MAE's high mask share),
which needs edges, textures and continuity of linear structures, roads among them. Only the
encoder is kept (``osmgap train --init-encoder``): its decoder learnt to paint, not to find roads.

Crops and augmentation are those of road training (the batches of :mod:`osmgap.model.feeder`,
built by crop workers beside a GPU), so a pretrained encoder has seen the same range of
resolutions, sensors and light; the step runs in bf16 autocast where road training does.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from osmgap.errors import InputError
from osmgap.model.data import Sample
from osmgap.model.encoder_file import save_encoder
from osmgap.model.feeder import crop_workers, step_batches
from osmgap.model.nets import ModelMeta, build_net, load_checkpoint, pick_device
from osmgap.model.train import RunClock, channel_stats, make_schedule, sampling_weights, training_dtype


@dataclass
class PretrainConfig:
    steps: int = 300
    batch: int = 6
    crop: int = 256
    lr: float = 5e-4
    weight_decay: float = 1e-4
    seed: int = 0
    patch: int = 16  # side of a hidden square, pixels (16 m at 1 m/px: wider than a street)
    mask_share: float = 0.6  # share of the patches hidden
    init: str | None = None  # start from this road model (its encoder, decoder, normalisation)
    max_minutes: float | None = None


def hide_patches(shape: tuple[int, ...], patch: int, share: float, rng: np.random.Generator) -> torch.Tensor:
    """(N, 1, H, W) float: 1 where a patch is hidden. Each of the crop's patch cells is hidden
    with probability ``share``."""
    n, _, h, w = shape
    cells = rng.random((n, 1, -(-h // patch), -(-w // patch))) < share
    hidden = torch.from_numpy(cells.astype(np.float32))
    return F.interpolate(hidden, scale_factor=patch, mode="nearest")[..., :h, :w]


def reconstruction_loss(painted: torch.Tensor, target: torch.Tensor, hidden: torch.Tensor,
                        valid: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over the hidden pixels that are imagery (no-data has nothing to paint)."""
    weight = hidden * valid
    return ((painted - target).abs() * weight).sum() / (weight.sum() * target.shape[1]).clamp(min=1)


def painter_net(meta: ModelMeta) -> nn.Module:
    """The road net's architecture with one output per input band instead of the road logit."""
    net = build_net(meta)
    head = cast(nn.Sequential, net.segmentation_head)
    conv = cast(nn.Conv2d, head[0])
    side = conv.kernel_size[0]
    head[0] = nn.Conv2d(conv.in_channels, meta.in_channels, side, padding=side // 2)
    return net


def pretrain(images: list[Sample], cfg: PretrainConfig, out: Path, meta: ModelMeta | None = None,
             log: Callable[[str], None] = print) -> dict:
    """Train the painter on ``images`` (their masks are ignored); write the encoder to ``out``."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    device = pick_device()
    if cfg.init:
        road, meta = load_checkpoint(cfg.init)
    elif meta is None:
        mean, std = channel_stats(images)
        meta = ModelMeta(mean=mean, std=std, in_channels=images[0].image.shape[0])
    if images[0].image.shape[0] != meta.in_channels:
        raise InputError(cfg.init, f"the model reads {meta.in_channels} band(s); the images have "
                                   f"{images[0].image.shape[0]}")
    net = painter_net(meta)
    if cfg.init:
        own = net.state_dict()
        net.load_state_dict({k: v for k, v in road.state_dict().items() if own[k].shape == v.shape}, strict=False)
    net = net.to(device).train()
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    clock = RunClock()
    # with a time budget the rate anneals by whichever of steps and minutes runs out first (a GPU of any speed)
    sched = (make_schedule(opt, cfg.steps, cfg.lr, "cosine-fit", clock, cfg.max_minutes) if cfg.max_minutes
             else make_schedule(opt, cfg.steps, cfg.lr))
    norm_mean = torch.tensor(meta.mean, device=device)[None, :, None, None]
    norm_std = torch.tensor(meta.std, device=device)[None, :, None, None]
    weights = sampling_weights(images)
    dtype = training_dtype(device)
    workers = crop_workers(device)
    log(f"pretraining in {'bf16 autocast' if dtype else 'fp32'} on {device}"
        + (f", {workers} crop workers" if workers else ""))
    started, losses, step = time.time(), [], 0
    batches = step_batches(images, weights, cfg.batch, cfg.crop, 0.0, cfg.seed, 1, cfg.steps, workers)
    for step, (x, _, valid) in zip(range(1, cfg.steps + 1), batches, strict=False):
        x = (x.to(device, non_blocking=True) - norm_mean) / norm_std
        valid = valid.to(device, non_blocking=True)
        hidden = hide_patches(tuple(x.shape), cfg.patch, cfg.mask_share, rng).to(device)
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            painted = net(x * (1 - hidden))
        loss = reconstruction_loss(painted.float(), x, hidden, valid)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        if step % 25 == 0 or step == cfg.steps:
            log(f"pretrain step {step}/{cfg.steps} reconstruction L1 {np.mean(losses[-25:]):.4f} "
                f"({(time.time() - started) / 60:.1f} min)")
        if cfg.max_minutes is not None and clock.elapsed() > cfg.max_minutes * 60:
            log(f"stopping at step {step}: time budget of {cfg.max_minutes} min reached")
            break
    record = {"config": asdict(cfg), "images": len(images), "steps_done": step,
              "first_loss": round(float(np.mean(losses[:25])), 4), "last_loss": round(float(np.mean(losses[-25:])), 4),
              "minutes": round((time.time() - started) / 60, 1), "device": str(device)}
    save_encoder(out, cast(nn.Module, net.encoder), meta, record)
    return record
