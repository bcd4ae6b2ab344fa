"""Training state on disk, so that a stopped run (time budget, a crash, a lent GPU taken back)
continues where it was instead of starting over.

The shipped checkpoint (``osmgap.model.nets.save_checkpoint``) holds float16 weights and nothing
else; a training state holds what the next step needs: float32 weights, the optimizer's moments,
the schedule's position, the step, the random generators, the best score so far and the history.
It is written atomically beside the checkpoint (``OUT.state``) at every validation.
"""
from __future__ import annotations

import io
import pickle
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from osmgap.core.atomic import write_bytes_atomic
from osmgap.errors import InputError

STATE_FORMAT = "osmgap-train-state-1"


@dataclass
class TrainState:
    step: int
    best: dict[str, Any]
    history: list[dict[str, Any]]
    loss_avg: float | None
    config: dict[str, Any]
    meta: dict[str, Any]
    evals_since_best: int = 0
    elapsed_s: float = 0.0  # trained so far, every resumed call included


def state_path(out: str | Path) -> Path:
    return Path(str(out) + ".state")


def save_state(path: Path, state: TrainState, net: torch.nn.Module, opt: torch.optim.Optimizer,
               sched: Any) -> None:
    """Everything a resumed run needs; the batches need no generator state (each step seeds its own:
    osmgap.model.feeder)."""
    buf = io.BytesIO()
    torch.save({
        "format": STATE_FORMAT, "state": state.__dict__, "net": net.state_dict(), "opt": opt.state_dict(),
        "sched": sched.state_dict(), "torch_rng": torch.get_rng_state(), "python_rng": pickle.dumps(random.getstate()),
    }, buf)
    write_bytes_atomic(path, buf.getvalue())


def read_state(path: str | Path) -> TrainState:
    """The step, settings and record of a training state, nothing restored: what a resumed run is
    checked against before any data is loaded (its net of another architecture would not load)."""
    return TrainState(**_saved(Path(path))["state"])


def load_state(path: str | Path, net: torch.nn.Module, opt: torch.optim.Optimizer, sched: Any) -> TrainState:
    """Restore ``net``, ``opt``, ``sched`` and the random generators in place; return the state."""
    saved = _saved(Path(path))
    net.load_state_dict(saved["net"])
    opt.load_state_dict(saved["opt"])
    sched.load_state_dict(saved["sched"])
    torch.set_rng_state(saved["torch_rng"])
    random.setstate(pickle.loads(saved["python_rng"]))
    return TrainState(**saved["state"])


def _saved(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise InputError(path, "training state not found (it is written beside --out as OUT.state)")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=False)  # our own file: optimizer state
    except Exception as exc:
        raise InputError(path, f"not a readable training state ({type(exc).__name__})") from None
    if not isinstance(saved, dict) or saved.get("format") != STATE_FORMAT:
        raise InputError(path, f"not an osmgap training state (expected format {STATE_FORMAT})")
    return saved
