"""Train a road segmentation net on real imagery/mask pairs (``osmgap train``).

Deliberately simple, for a CPU first: random crops, flips/rot90/colour/scale augmentation, Dice+BCE,
AdamW with a one-cycle or cosine schedule (losses: ``osmgap.model.losses``), a fixed seed, validation IoU every ``eval_every`` steps
and the best checkpoint kept. The step runs under bf16 autocast where the device has native bf16
(as inference does: :func:`training_dtype`), fp32 elsewhere or with ``--fp32``. ``max_minutes`` bounds wall time so a run fits the machine it is on;
``patience`` stops a run that no longer improves; beside a GPU, crop workers build the batches
(``osmgap.model.feeder``); every validation also writes a training state
(``OUT.state``, ``osmgap.model.resume``) that ``resume`` continues from.
"""
from __future__ import annotations

import json
import math
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from tqdm import tqdm

from osmgap.core.atomic import write_files_atomic
from osmgap.errors import InputError
from osmgap.metrics.pixel import pixel_scores
from osmgap.model.choices import SCHEDULES
from osmgap.model.data import Sample, is_validation
from osmgap.model.encoder_file import load_encoder_into
from osmgap.model.feeder import crop_workers, step_batches
from osmgap.model.infer import autocast_dtype, predict_array
from osmgap.model.kinds import image_kinds, known_kinds
from osmgap.model.losses import LossConfig
from osmgap.model.nets import ModelMeta, build_net, load_checkpoint, pick_device, read_checkpoint, save_checkpoint
from osmgap.model.resume import TrainState, load_state, read_state, save_state, state_path


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
    decoder: str = "plain"  # "1d": Sun et al.'s 1D decoder (Linknet only)
    schedule: str = "onecycle"  # or "cosine" (cosine decay from lr after a 5 % linear warm-up)
    patience: int | None = None  # stop after this many validations without a better IoU
    resume: str | None = None  # training state (OUT.state) to continue from
    progress: bool = False  # a progress bar with the loss and the best validation IoU
    save_state: bool = True  # write OUT.state (optimizer, schedule, step) at every validation, for --resume
    cldice: float = 0.0  # loss ingredients: osmgap.model.losses.LossConfig
    near_road_weight: float = 1.0
    bootstrap: float = 0.0
    init_encoder: str | None = None  # then the encoder's weights from this pretrained encoder (osmgap pretrain)
    erase: float = 0.0  # share of crops with a street-shaped strip painted over and unlabelled (augment.erase_patches)

    @property
    def loss(self) -> LossConfig:
        return LossConfig(cldice=self.cldice, near_road_weight=self.near_road_weight, bootstrap=self.bootstrap)


# what a resumed run must share with the run it continues (the schedule's length and shape, the net)
RESUME_MUST_MATCH = ("arch", "encoder", "decoder", "resolution_m", "steps", "batch", "crop", "lr", "schedule",
                     "cldice", "near_road_weight", "bootstrap", "erase")


def check_init(cfg: TrainConfig) -> None:
    """The --init checkpoint is a readable model of the network being trained (same
    architecture, encoder and decoder), said before any data is loaded or step taken."""
    if not cfg.init:
        return
    _, meta = read_checkpoint(cfg.init)
    have, want = (meta.arch, meta.encoder, meta.decoder), (cfg.arch, cfg.encoder, cfg.decoder)
    if tuple(str(v).lower() for v in have) != tuple(str(v).lower() for v in want):
        raise InputError(cfg.init, f"--init model is {'/'.join(have)} (arch/encoder/decoder), not the "
                                   f"{'/'.join(want)} being trained; pass --arch, --encoder and --decoder to match")


def check_resume(cfg: TrainConfig, out: Path) -> TrainState | None:
    """--resume continues the run that wrote the state, said before any data is loaded: with the
    settings it was written with (a state of another architecture failed as an internal error,
    8,000 characters of weight names), beside this --out (resumed into another --out the run
    trained, then found no model to finish), with steps left to take."""
    if not cfg.resume:
        return None
    resume, beside = Path(cfg.resume), state_path(out)
    state = read_state(resume)
    changed = [f"{k} {state.config.get(k)!r} -> {getattr(cfg, k)!r}" for k in RESUME_MUST_MATCH
               if state.config.get(k) != getattr(cfg, k)]
    if changed:
        raise InputError(resume, "was written by a run with other settings; resume with the same "
                                 f"ones ({', '.join(changed)})")
    if resume.resolve() != beside.resolve():
        whose = (f"the state of the run whose --out is {str(resume)[:-len('.state')]}: give that --out"
                 if resume.name.endswith(".state") else f"not {beside}, the state this run's --out keeps")
        raise InputError(resume, f"is {whose} (a state continues the checkpoint written beside it)")
    if state.step >= cfg.steps:
        raise InputError(resume, f"is of a run that took all its {cfg.steps} steps: nothing is left to resume "
                                 f"(to train {out} further, start a new run with --init {out} and another --out)")
    return state


def check_resumed_images(state: TrainState, trn: list[Sample], val: list[Sample], resume: str | Path) -> None:
    """A resumed run trains and validates on the images the run it continues did: other --data or
    --pair would make one model of two recipes, its record naming only the last."""
    record = state.meta.get("training") or {}
    for kind, had, now in (("training", record.get("train_names"), trn), ("validation", record.get("val_names"), val)):
        names = sorted(s.name for s in now)
        if isinstance(had, list) and sorted(map(str, had)) != names:
            gone, new = sorted(set(had) - set(names)), sorted(set(names) - set(had))
            raise InputError(resume, f"was written by a run with other {kind} images ({len(gone)} missing now, "
                                     f"{len(new)} new, e.g. {(gone or new)[0]}): resume with the same --data and "
                                     "--pair, or start a new run")


HEARTBEAT_S = 60.0  # without a progress bar, a step line at least this often (validations may be far apart)


class RunClock:
    """Seconds trained, across resumes: what a ``cosine-fit`` schedule anneals by."""

    def __init__(self, before_s: float = 0.0) -> None:
        self.before_s, self.started = before_s, time.time()

    def elapsed(self) -> float:
        return self.before_s + time.time() - self.started


def cosine_factor(progress: float, warm_share: float = 0.05) -> float:
    """Linear warm-up over ``warm_share`` of the run, then cosine decay to 0 at progress 1."""
    if progress < warm_share:
        return max(progress, 1e-3) / warm_share
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (progress - warm_share) / (1 - warm_share))))


def make_schedule(opt: torch.optim.Optimizer, steps: int, lr: float, schedule: str = "onecycle",
                  clock: RunClock | None = None, budget_minutes: float | None = None,
                  ) -> torch.optim.lr_scheduler.LRScheduler:
    """One-cycle (warm up to ``lr`` over 10 %, anneal), cosine (5 % linear warm-up, cosine decay)
    or cosine-fit: the same cosine over whichever of ``steps`` and ``budget_minutes`` (on
    ``clock``) runs out first, so a run on a machine of unknown speed (a rented GPU) still ends
    annealed. A run too short for a cycle's two phases (a smoke test, a first try) keeps ``lr``
    constant."""
    if steps < 4:
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    if schedule == "onecycle":  # each phase at least 2 steps: OneCycleLR divides by (phase steps - 1)
        warm_share = min(0.5, max(0.1, 2.0 / steps))
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=warm_share)
    if schedule == "cosine":
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda step: cosine_factor(step / steps))
    if schedule == "cosine-fit":
        if clock is None or not budget_minutes:
            raise InputError(None, "the cosine-fit schedule needs --max-minutes")
        budget_s = budget_minutes * 60

        def fit_factor(step: int) -> float:
            return cosine_factor(max(step / steps, clock.elapsed() / budget_s))

        return torch.optim.lr_scheduler.LambdaLR(opt, fit_factor)
    raise InputError(None, f"unknown schedule {schedule!r} (known: {', '.join(SCHEDULES)})")


def sampling_weights(samples: list[Sample]) -> np.ndarray:
    """How often each image is cropped: a dataset by the square root of its pixels (a few chips of
    a new sensor are not drowned by hundreds of crops of the old one, nor oversampled to
    memorisation), an image within it by its pixels."""
    pixels = np.array([s.mask.size if s.valid is None else int(s.valid.sum()) for s in samples], np.float64)
    domains = [s.domain for s in samples]
    totals = {d: pixels[[i for i, x in enumerate(domains) if x == d]].sum() for d in set(domains)}
    weights = np.array([np.sqrt(totals[d]) * p / max(totals[d], 1.0) for d, p in zip(domains, pixels, strict=True)])
    return weights / weights.sum()


def channel_stats(samples: list[Sample]) -> tuple[list[float], list[float]]:
    bands = samples[0].image.shape[0]
    pixels = np.concatenate([s.image.reshape(bands, -1)[:, ::7] for s in samples], axis=1)
    return pixels.mean(axis=1).tolist(), (pixels.std(axis=1) + 1e-6).tolist()


def training_dtype(device: torch.device) -> torch.dtype | None:
    """bf16 autocast for the training step where inference uses it; never fp16, whose small range
    would need loss scaling (None: fp32)."""
    dtype = autocast_dtype(device)
    return dtype if dtype == torch.bfloat16 else None


def evaluate(net: torch.nn.Module, meta: ModelMeta, samples: list[Sample], device: torch.device) -> dict[str, float]:
    """Pooled pixel scores over whole validation images at the model's threshold."""
    preds, truths = [], []
    for s in samples:
        prob = predict_array(net, meta, s.image, device=device, views=1)  # one view: validation keeps pace with training
        keep = slice(None) if s.valid is None else s.valid.ravel()
        preds.append((prob >= meta.threshold).ravel()[keep])
        truths.append(s.mask.ravel().astype(bool)[keep])
    return pixel_scores(np.concatenate(preds), np.concatenate(truths))


def train(samples: list[Sample], cfg: TrainConfig, out: Path,
          log: Callable[[str], None] = print, val: list[Sample] | None = None) -> dict:
    """Train, keep the best checkpoint by validation IoU at ``out``; return the training record.

    ``val``: validate on these and train on all of ``samples`` (cross-prediction picks its own
    split); by default a hash-chosen tenth of ``samples`` validates.
    """
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    device = pick_device()
    chosen_split = val is None  # osmgap train's own images (a caller's split, cross-prediction's folds, may lack roads)
    if val is None:
        val = [s for s in samples if is_validation(s.name)]
        trn = [s for s in samples if not is_validation(s.name)]
        own = [s.name.split("/", 1)[1] for s in val if s.domain == "pair"]
        if own and trn:  # a user with two or three chips of their own must know one does not train
            log(f"{len(own)} --pair image(s) fell in the validation tenth (a hash of the names) and choose the "
                f"checkpoint and threshold instead of training: {', '.join(own)}")
    else:
        trn = list(samples)
    if not trn:  # one image of one's own, in the validation tenth: it must train, or nothing can
        log("every image fell in the validation split (the hash-chosen tenth): training and validating on them "
            "(the validation figure and the threshold are optimistic)")
        trn = val
    elif not val:  # a few images of one's own (--pair): better an optimistic figure than none
        log("no image falls in the validation split: validating on the training images (optimistic)")
        val = trn
    on_training = any(v is t for v in val for t in trn)  # validation figures measured on training images
    score_name = "IoU on training images" if on_training else "val IoU"
    if chosen_split and not any(s.mask.any() for s in trn):  # nothing to learn but "no road anywhere"
        raise InputError(None, f"the training labels hold no road (0 road pixels in {len(trn)} image(s)): "
                               "training would teach the model that there is no road; give labels with roads")
    mean, std = channel_stats(trn)
    meta = ModelMeta(arch=cfg.arch, encoder=cfg.encoder, resolution_m=cfg.resolution_m, mean=mean, std=std,
                     decoder=cfg.decoder, in_channels=trn[0].image.shape[0])
    net = build_net(meta)
    lineage: dict[str, Any] = {}  # what the model started from knew, in the record beside what it trains on
    if cfg.init:
        check_init(cfg)
        start, start_meta = load_checkpoint(cfg.init)
        if start_meta.in_channels != meta.in_channels:
            raise InputError(cfg.init, f"--init model reads {start_meta.in_channels} band(s); the training images "
                                       f"have {meta.in_channels}")
        net.load_state_dict(start.state_dict())
        mean, std = start_meta.mean, start_meta.std  # train and infer on the inputs the weights expect
        meta.mean, meta.std = mean, std
        meta.threshold = start_meta.threshold  # validated at the threshold it came with, until calibrated
        lineage["init_image_kinds"] = known_kinds(start_meta.training)  # what it knew (None: its record does not say)
    if cfg.init_encoder and not cfg.resume:
        pretraining = load_encoder_into(net, meta, cfg.init_encoder)
        log(f"encoder from {cfg.init_encoder} (pretrained {pretraining.get('steps_done', '?')} steps "
            f"on {pretraining.get('images', '?')} images)")
    net = net.to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    clock = RunClock()
    sched = make_schedule(opt, cfg.steps, cfg.lr, cfg.schedule, clock, cfg.max_minutes)
    state = TrainState(step=0, best={"iou": -1.0}, history=[], loss_avg=None, config=dict(cfg.__dict__),
                       meta=dict(meta.__dict__))
    if cfg.resume:
        check_resumed_images(cast(TrainState, check_resume(cfg, out)), trn, val, cfg.resume)
        state = load_state(cfg.resume, net, opt, sched)
        meta = ModelMeta(**state.meta)
        clock.before_s = state.elapsed_s
        mean, std = meta.mean, meta.std
        budget = f" of its {cfg.max_minutes:g}" if cfg.max_minutes is not None else ""
        log(f"resumed at step {state.step} (best {score_name} {state.best.get('iou', -1):.4f}; "
            f"{state.elapsed_s / 60:.1f}{budget} min trained)")
    elif cfg.init:  # the starting point: did fine-tuning help, and the model to keep if it did not
        net.eval()
        scores = evaluate(net, meta, val, device)
        state.history.append({"step": 0, "loss": None, "val_iou": round(scores["iou"], 4), "minutes": 0.0})
        log(f"step 0 (the --init model) {score_name} {scores['iou']:.4f} P {scores['precision']:.3f} "
            f"R {scores['recall']:.3f}")
        state.best = {**scores, "step": 0}
        meta.training = _record(cfg, trn, val, state.best, state.history, 0.0, device, lineage)
        publish_checkpoint(out, net, meta, _in_progress(meta.training, 0, meta.threshold))
    norm_mean = torch.tensor(mean, device=device)[None, :, None, None]
    norm_std = torch.tensor(std, device=device)[None, :, None, None]
    weights = sampling_weights(trn)
    loss_fn = cfg.loss
    dtype = training_dtype(device)
    log(f"training step in {'bf16 autocast' if dtype else 'fp32'} on {device}")
    started = last_said = time.time()
    step = first = state.step
    stop_reason = None
    bar = tqdm(total=cfg.steps, initial=state.step, disable=not cfg.progress, desc="train", unit="step",
               dynamic_ncols=True)
    workers = crop_workers(device)
    if workers:
        log(f"{workers} crop workers feed the {device.type} step")
    batches = step_batches(trn, weights, cfg.batch, cfg.crop, cfg.erase, cfg.seed, state.step + 1, cfg.steps, workers)
    for step, (x, y, v) in zip(range(state.step + 1, cfg.steps + 1), batches, strict=True):
        net.train()
        x, y, v = (t.to(device, non_blocking=True) for t in (x, y, v))
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            logits = net((x - norm_mean) / norm_std)
        loss = loss_fn(logits.float(), y, v)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        state.loss_avg = loss.item() if state.loss_avg is None else 0.95 * state.loss_avg + 0.05 * loss.item()
        bar.update(1)
        bar.set_postfix(loss=f"{state.loss_avg:.4f}", val_iou=f"{state.best.get('iou', -1):.4f}")
        if not cfg.progress and time.time() - last_said >= HEARTBEAT_S:  # a log file or cron: a line now and then
            last_said = time.time()
            to_go = (cfg.steps - step) / max((step - first) / max(last_said - started, 1e-9), 1e-9)
            if cfg.max_minutes is not None:
                to_go = min(to_go, cfg.max_minutes * 60 - clock.elapsed())
            log(f"step {step}/{cfg.steps} loss {state.loss_avg:.4f} ({(last_said - started) / 60:.1f} min, "
                f"about {max(to_go, 0) / 60:.0f} min to go)")
        # the whole run's minutes, resumed calls included: a run resumed after a crash does not start
        # its budget again (--max-minutes 0.1 resumed once trained 18 s)
        out_of_time = cfg.max_minutes is not None and clock.elapsed() > cfg.max_minutes * 60
        if step % cfg.eval_every == 0 or step == cfg.steps or out_of_time:
            net.eval()
            scores = evaluate(net, meta, val, device)
            elapsed = time.time() - started
            state.history.append({"step": step, "loss": round(state.loss_avg, 4), "val_iou": round(scores["iou"], 4),
                                  "minutes": round(elapsed / 60, 1)})
            log(f"step {step}/{cfg.steps} loss {state.loss_avg:.4f} {score_name} {scores['iou']:.4f} "
                f"P {scores['precision']:.3f} R {scores['recall']:.3f} ({elapsed / 60:.1f} min)")
            if scores["iou"] > state.best["iou"]:
                state.best, state.evals_since_best = {**scores, "step": step}, 0
                meta.training = _record(cfg, trn, val, state.best, state.history, elapsed, device, lineage)
                publish_checkpoint(out, net, meta, _in_progress(meta.training, step, meta.threshold))
            else:
                state.evals_since_best += 1
            state.step, state.meta = step, json.loads(json.dumps(meta.__dict__, default=str))
            state.elapsed_s = clock.elapsed()
            if cfg.save_state:
                save_state(state_path(out), state, net, opt, sched)
            if cfg.patience and state.evals_since_best >= cfg.patience:
                stop_reason = f"no better validation IoU in {cfg.patience} evaluations (early stopping)"
        if out_of_time and not stop_reason:
            stop_reason = f"time budget of {cfg.max_minutes} min reached"
        if stop_reason:
            log(f"stopping at step {step}: {stop_reason}")
            break
    batches.close()  # a run stopped early: its crop workers end now
    bar.close()
    best, history = state.best, state.history
    record = _record(cfg, trn, val, best, history, time.time() - started, device, lineage)
    record["steps_done"] = step
    record["stopped"] = stop_reason or "all steps done"
    if best.get("step") == 0:
        log(f"no fine-tuned checkpoint beat the --init model ({score_name} {best.get('iou', 0.0):.4f} at step 0): "
            "keeping the --init model")
    net, meta = load_checkpoint(out, device)  # the best checkpoint, as written
    before = meta.threshold
    record["threshold"] = choose_threshold(net, meta, val, device)
    if record["threshold"]["calibrated"]:
        said = (f"threshold {before:.2f} -> {meta.threshold:.2f}, calibrated on {len(val)} "
                f"{'training' if on_training else 'validation'} image(s)")
        if on_training:
            said += "; optimistic when calibrated on the training images"
        if meta.threshold in (THRESHOLDS[0], THRESHOLDS[-1]):
            said += (f"; at the edge of the range searched ({THRESHOLDS[0]:.2f}-{THRESHOLDS[-1]:.2f}): the model's "
                     "probabilities are off-scale for these images, check it with osmgap eval on an image you know")
        log(said)
    else:
        whose = " (the --init model's)" if cfg.init else ""
        log(f"the validation images hold no road: threshold kept at {meta.threshold:.2f}{whose}, not calibrated")
    publish_checkpoint(out, net, meta, record)
    return record


THRESHOLDS = tuple(float(t) for t in np.round(np.arange(0.2, 0.81, 0.05), 2))  # searched by choose_threshold


def choose_threshold(net: torch.nn.Module, meta: ModelMeta, val: list[Sample], device: torch.device) -> dict:
    """Set ``meta.threshold`` to the probability threshold that maximizes validation IoU (a net
    trained with Dice is rarely best at 0.5, and graph extraction depends on the threshold); keep
    it where the validation images hold no road (every threshold ties there). Returns what was chosen."""
    keep = [slice(None) if s.valid is None else s.valid.ravel() for s in val]
    truth = np.concatenate([s.mask.ravel().astype(bool)[k] for s, k in zip(val, keep, strict=True)])
    if not truth.any():
        return {"threshold": float(meta.threshold), "calibrated": False, "reason": "no road in the validation images"}
    # one view, the network's own output (the shipped threshold, 0.4, was chosen so before inference averaged views)
    probs = np.concatenate([predict_array(net, meta, s.image, device=device, views=1).ravel()[k]
                            for s, k in zip(val, keep, strict=True)])
    scores = {t: pixel_scores(probs >= t, truth) for t in THRESHOLDS}
    best_t = max(scores, key=lambda t: scores[t]["iou"])
    meta.threshold = float(best_t)
    meta.training["threshold_scores"] = {str(t): round(v["iou"], 4) for t, v in scores.items()}
    meta.training["best_at_threshold"] = scores[best_t]
    return {"threshold": float(best_t), "calibrated": True, **scores[best_t]}


def calibrate_threshold(checkpoint: Path, val: list[Sample], device: torch.device | None = None) -> dict:
    """Pick the probability threshold that maximizes validation IoU and store it in the checkpoint."""
    device = device or pick_device()
    net, meta = load_checkpoint(checkpoint, device)
    chosen = choose_threshold(net, meta, val, device)
    save_checkpoint(checkpoint, net, meta)
    return chosen


def publish_checkpoint(out: Path, net: torch.nn.Module, meta: ModelMeta, record: dict) -> None:
    """Write the checkpoint and its ``.json`` record together, so that a stopped run (Ctrl-C) never
    leaves one run's model beside another run's record."""
    with tempfile.TemporaryDirectory(prefix="osmgap-ckpt-") as tmp:
        save_checkpoint(Path(tmp) / "m.pt", net, meta)
        weights = (Path(tmp) / "m.pt").read_bytes()
    write_files_atomic({Path(out): weights, Path(str(out) + ".json"): json.dumps(record, indent=2).encode()})


def _in_progress(record: dict, step: int, threshold: float) -> dict:
    """The record of a checkpoint written during training, before the threshold is calibrated."""
    return {**record, "steps_done": step, "stopped": f"in progress at step {step} (resume with --resume OUT.state)",
            "threshold": {"threshold": threshold, "calibrated": False, "reason": "training not finished"}}


def _record(cfg: TrainConfig, trn: list[Sample], val: list[Sample], best: dict, history: list,
            seconds: float, device: torch.device, lineage: dict[str, Any] | None = None) -> dict:
    return {
        "config": cfg.__dict__, "train_images": len(trn), "val_images": len(val), "image_kinds": image_kinds(trn),
        **(lineage or {}),
        "val_names": [s.name for s in val], "train_names": [s.name for s in trn], "best": best, "history": history,
        "seconds": round(seconds, 1), "device": str(device), "torch": str(torch.__version__),
        "threads": torch.get_num_threads(), "precision": str(training_dtype(device) or torch.float32),
    }
