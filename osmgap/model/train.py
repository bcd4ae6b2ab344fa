"""Train a road segmentation net on real imagery/mask pairs (``osmgap train``).

Deliberately simple for a CPU: random crops, flips/rot90/colour/scale augmentation, Dice+BCE,
AdamW with a cosine schedule, a fixed seed, validation IoU every ``eval_every`` steps and the
best checkpoint kept. ``max_minutes`` bounds wall time so a run fits the machine it is on.
"""
from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from osmgap.metrics import pixel_scores
from osmgap.model.data import Sample, is_validation
from osmgap.model.infer import predict_array
from osmgap.model.nets import ModelMeta, build_net, load_checkpoint, pick_device, save_checkpoint


@dataclass
class TrainConfig:
    arch: str = "Linknet"
    encoder: str = "resnet18"
    resolution_m: float = 1.0
    steps: int = 1000
    batch: int = 8
    crop: int = 256
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0
    eval_every: int = 100
    max_minutes: float | None = None
    init: str | None = None  # start from this checkpoint's weights (warm start)


def dice_bce_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BCE for per-pixel calibration plus soft Dice, which copes with ~5 % road pixels."""
    bce = F.binary_cross_entropy_with_logits(logits, target)
    prob = torch.sigmoid(logits)
    inter = (prob * target).sum(dim=(1, 2, 3))
    dice = 1 - (2 * inter + 1) / (prob.sum(dim=(1, 2, 3)) + target.sum(dim=(1, 2, 3)) + 1)
    return bce + dice.mean()


def channel_stats(samples: list[Sample]) -> tuple[list[float], list[float]]:
    pixels = np.concatenate([s.image.reshape(3, -1)[:, ::7] for s in samples], axis=1)
    return pixels.mean(axis=1).tolist(), (pixels.std(axis=1) + 1e-6).tolist()


def random_crop(sample: Sample, crop: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A random crop with scale jitter (0.8-1.25), flips, rot90 and brightness/contrast/hue jitter."""
    scale = float(np.exp(rng.uniform(np.log(0.8), np.log(1.25))))
    src = max(8, int(round(crop / scale)))
    img, mask = sample.image, sample.mask
    _, h, w = img.shape
    if h < src or w < src:  # pad small chips with zeros (no road)
        ph, pw = max(0, src - h), max(0, src - w)
        img = np.pad(img, ((0, 0), (0, ph), (0, pw)))
        mask = np.pad(mask, ((0, ph), (0, pw)))
        _, h, w = img.shape
    r, c = rng.integers(0, h - src + 1), rng.integers(0, w - src + 1)
    x = torch.from_numpy(np.ascontiguousarray(img[:, r:r + src, c:c + src]))[None]
    y = torch.from_numpy(np.ascontiguousarray(mask[r:r + src, c:c + src]).astype(np.float32))[None, None]
    if src != crop:
        x = F.interpolate(x, size=(crop, crop), mode="bilinear", align_corners=False)
        y = (F.interpolate(y, size=(crop, crop), mode="bilinear", align_corners=False) > 0.5).float()
    x, y = x[0].numpy(), y[0, 0].numpy()
    k = int(rng.integers(0, 4))
    x, y = np.rot90(x, k, axes=(1, 2)), np.rot90(y, k)
    if rng.random() < 0.5:
        x, y = x[:, :, ::-1], y[:, ::-1]
    gain = rng.uniform(0.75, 1.3) * rng.uniform(0.92, 1.08, size=3)  # contrast and a hue-ish tint
    bias = rng.uniform(-0.1, 0.1)
    mean = x.mean(axis=(1, 2), keepdims=True)
    x = np.clip((x - mean) * gain[:, None, None] + mean + bias, 0, 1)
    return np.ascontiguousarray(x, np.float32), np.ascontiguousarray(y, np.float32)


def evaluate(net: torch.nn.Module, meta: ModelMeta, samples: list[Sample], device: torch.device) -> dict[str, float]:
    """Pooled pixel scores over whole validation images at the model's threshold."""
    preds, truths = [], []
    for s in samples:
        prob = predict_array(net, meta, s.image, device=device)
        preds.append((prob >= meta.threshold).ravel())
        truths.append(s.mask.ravel().astype(bool))
    return pixel_scores(np.concatenate(preds), np.concatenate(truths))


def train(samples: list[Sample], cfg: TrainConfig, out: Path,
          log: Callable[[str], None] = print) -> dict:
    """Train, keep the best checkpoint by validation IoU at ``out``; return the training record."""
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    device = pick_device()
    val = [s for s in samples if is_validation(s.name)]
    trn = [s for s in samples if not is_validation(s.name)]
    mean, std = channel_stats(trn)
    meta = ModelMeta(arch=cfg.arch, encoder=cfg.encoder, resolution_m=cfg.resolution_m, mean=mean, std=std)
    net = build_net(meta)
    if cfg.init:
        start, start_meta = load_checkpoint(cfg.init)
        if (start_meta.arch, start_meta.encoder) != (cfg.arch, cfg.encoder):
            raise ValueError(f"--init model is {start_meta.arch}/{start_meta.encoder}, not {cfg.arch}/{cfg.encoder}")
        net.load_state_dict(start.state_dict())
        meta.mean, meta.std = start_meta.mean, start_meta.std  # keep the inputs the weights expect
    net = net.to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.steps, pct_start=0.1)
    norm_mean = torch.tensor(mean, device=device)[None, :, None, None]
    norm_std = torch.tensor(std, device=device)[None, :, None, None]
    weights = np.array([s.mask.size for s in trn], np.float64)
    weights /= weights.sum()  # bigger images are sampled more often
    started = time.time()
    best = {"iou": -1.0}
    history = []
    loss_avg = None
    step = 0
    for step in range(1, cfg.steps + 1):
        net.train()
        batch = [random_crop(trn[i], cfg.crop, rng) for i in rng.choice(len(trn), cfg.batch, p=weights)]
        x = torch.from_numpy(np.stack([b[0] for b in batch])).to(device)
        y = torch.from_numpy(np.stack([b[1] for b in batch]))[:, None].to(device)
        loss = dice_bce_loss(net((x - norm_mean) / norm_std), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        loss_avg = loss.item() if loss_avg is None else 0.95 * loss_avg + 0.05 * loss.item()
        out_of_time = cfg.max_minutes is not None and time.time() - started > cfg.max_minutes * 60
        if step % cfg.eval_every == 0 or step == cfg.steps or out_of_time:
            net.eval()
            scores = evaluate(net, meta, val, device)
            elapsed = time.time() - started
            history.append({"step": step, "loss": round(loss_avg, 4), "val_iou": round(scores["iou"], 4), "minutes": round(elapsed / 60, 1)})
            log(f"step {step}/{cfg.steps} loss {loss_avg:.4f} val IoU {scores['iou']:.4f} "
                f"P {scores['precision']:.3f} R {scores['recall']:.3f} ({elapsed / 60:.1f} min)")
            if scores["iou"] > best["iou"]:
                best = {**scores, "step": step}
                meta.training = _record(cfg, trn, val, best, history, elapsed, device)
                save_checkpoint(out, net, meta)
        if out_of_time:
            log(f"stopping at step {step}: time budget of {cfg.max_minutes} min reached")
            break
    record = _record(cfg, trn, val, best, history, time.time() - started, device)
    record["steps_done"] = step
    record["threshold"] = calibrate_threshold(out, val, device)
    Path(str(out) + ".json").write_text(json.dumps(record, indent=2))
    return record


def calibrate_threshold(checkpoint: Path, val: list[Sample], device: torch.device | None = None) -> dict:
    """Pick the probability threshold that maximizes validation IoU and store it in the checkpoint.

    A net trained with Dice is rarely best at 0.5, and graph extraction depends on the threshold.
    """
    device = device or pick_device()
    net, meta = load_checkpoint(checkpoint, device)
    probs = np.concatenate([predict_array(net, meta, s.image, device=device).ravel() for s in val])
    truth = np.concatenate([s.mask.ravel().astype(bool) for s in val])
    scores = {t: pixel_scores(probs >= t, truth) for t in np.round(np.arange(0.2, 0.81, 0.05), 2)}
    best_t = max(scores, key=lambda t: scores[t]["iou"])
    meta.threshold = float(best_t)
    meta.training["threshold_scores"] = {str(t): round(v["iou"], 4) for t, v in scores.items()}
    meta.training["best_at_threshold"] = scores[best_t]
    save_checkpoint(checkpoint, net, meta)
    return {"threshold": float(best_t), **scores[best_t]}


def _record(cfg: TrainConfig, trn: list[Sample], val: list[Sample], best: dict, history: list,
            seconds: float, device: torch.device) -> dict:
    return {
        "config": cfg.__dict__, "train_images": len(trn), "val_images": len(val),
        "val_names": [s.name for s in val], "best": best, "history": history,
        "seconds": round(seconds, 1), "device": str(device), "torch": str(torch.__version__),
        "threads": torch.get_num_threads(),
    }
