"""A pretrained encoder on disk (``osmgap pretrain`` writes it, ``osmgap train --init-encoder``
reads it): the encoder's weights, what it is (architecture, encoder, bands) and how it was made."""
from __future__ import annotations

import io
from pathlib import Path
from typing import cast

import torch
from torch import nn

from osmgap.core.atomic import write_bytes_atomic
from osmgap.errors import InputError
from osmgap.model.nets import ModelMeta

ENCODER_FORMAT = "osmgap-encoder-1"


def save_encoder(path: str | Path, encoder: nn.Module, meta: ModelMeta, record: dict) -> None:
    buf = io.BytesIO()
    torch.save({"format": ENCODER_FORMAT, "arch": meta.arch, "encoder": meta.encoder,
                "in_channels": meta.in_channels, "pretraining": record,
                "state_dict": {k: v.detach().cpu() for k, v in encoder.state_dict().items()}}, buf)
    write_bytes_atomic(Path(path), buf.getvalue())


def load_encoder_into(net: nn.Module, meta: ModelMeta, path: str | Path) -> dict:
    """Replace ``net``'s encoder weights by a pretrained encoder's; return its pretraining record."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError) as exc:
        raise InputError(path, f"cannot read the pretrained encoder: {exc}") from None
    if not isinstance(saved, dict) or saved.get("format") != ENCODER_FORMAT:
        raise InputError(path, f"not a pretrained osmgap encoder (expected format {ENCODER_FORMAT}; "
                               "write one with osmgap pretrain)")
    if (saved["encoder"], saved["in_channels"]) != (meta.encoder, meta.in_channels):
        raise InputError(path, f"is a {saved['encoder']} encoder of {saved['in_channels']} band(s); the net "
                               f"being trained has a {meta.encoder} encoder of {meta.in_channels}")
    cast(nn.Module, net.encoder).load_state_dict(saved["state_dict"])
    return dict(saved.get("pretraining", {}))
