"""Build smp networks and save/load osmgap checkpoints.

A checkpoint carries everything inference needs besides the weights: architecture, encoder,
input channels, the ground resolution the net was trained at, normalization stats and the
threshold chosen on validation data. Weights are stored as float16 to keep shipped models small.
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import segmentation_models_pytorch as smp

from osmgap.atomic import write_bytes_atomic
from osmgap.errors import InputError

DEFAULT_MODEL = Path(__file__).resolve().parent / "weights" / "default.pt"
CHECKPOINT_FORMAT = "osmgap-model-1"


@dataclass
class ModelMeta:
    arch: str = "Linknet"
    encoder: str = "resnet18"
    in_channels: int = 3
    resolution_m: float = 1.0
    mean: list[float] = field(default_factory=lambda: [0.5, 0.5, 0.5])
    std: list[float] = field(default_factory=lambda: [0.25, 0.25, 0.25])
    threshold: float = 0.5
    training: dict[str, Any] = field(default_factory=dict)


def build_net(meta: ModelMeta) -> torch.nn.Module:
    """An smp network with random init: no pretrained weights can be fetched here."""
    try:
        return smp.create_model(
            meta.arch, encoder_name=meta.encoder, encoder_weights=None,
            in_channels=meta.in_channels, classes=1,
        )
    except (KeyError, ValueError) as exc:
        raise InputError(None, f"unknown architecture/encoder {meta.arch}/{meta.encoder}: {exc}") from None


def save_checkpoint(path: str | Path, net: torch.nn.Module, meta: ModelMeta) -> None:
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in net.state_dict().items()}
    buf = io.BytesIO()
    # Plain JSON types only, so that torch.load(weights_only=True) can read the metadata back.
    plain_meta = json.loads(json.dumps(meta.__dict__, default=str))
    torch.save({"format": CHECKPOINT_FORMAT, "meta": plain_meta, "state_dict": state}, buf)
    write_bytes_atomic(path, buf.getvalue())


def load_checkpoint(path: str | Path | None = None, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, ModelMeta]:
    """Load a checkpoint written by ``save_checkpoint``; the net is in eval mode on ``device``."""
    path = Path(path) if path else DEFAULT_MODEL
    if not path.exists():
        raise InputError(path, "model file not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InputError(path, f"not a readable osmgap model ({type(exc).__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise InputError(path, f"not an osmgap model (expected format {CHECKPOINT_FORMAT})")
    meta = ModelMeta(**ckpt["meta"])
    net = build_net(meta)
    net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in ckpt["state_dict"].items()})
    return net.to(device).eval(), meta


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
