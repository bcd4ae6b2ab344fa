"""Build road networks (osmgap.model.linknet for the shipped one, smp for others) and save/load
osmgap checkpoints.

A checkpoint carries everything inference needs besides the weights: architecture, encoder,
input channels, the ground resolution the net was trained at, normalization stats and the
threshold chosen on validation data. Weights are stored as float16 to keep shipped models small.
``decoder="1d"`` swaps Linknet's transposed convolutions for the 1D decoder of Sun et al.
"""
from __future__ import annotations

import copy
import hashlib
import io
import json
import math
import weakref
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from osmgap.core.atomic import write_bytes_atomic
from osmgap.errors import InputError
from osmgap.model import linknet
from osmgap.model.choices import DECODERS

DEFAULT_MODEL = Path(__file__).resolve().parent / "weights" / "default.pt"
CHECKPOINT_FORMAT = "osmgap-model-1"
MAX_IN_CHANNELS = 256


def shear_rows(x: torch.Tensor) -> torch.Tensor:
    """Shift row ``i`` right by ``i`` pixels: (N, C, H, W) -> (N, C, H, W + H - 1), zeros elsewhere.

    After the shear a line running down and to the left (the anti-diagonal) is vertical, so a
    (9, 1) convolution there is a 9x9 convolution restricted to the anti-diagonal here. Done by
    padding each row with H zeros, flattening, and re-cutting rows one pixel shorter.
    """
    n, c, h, w = x.shape
    flat = F.pad(x, (0, h)).reshape(n, c, h * (w + h))
    return flat[..., : h * (w + h - 1)].reshape(n, c, h, w + h - 1)


def unshear_rows(y: torch.Tensor, width: int) -> torch.Tensor:
    """The inverse of ``shear_rows`` for an image ``width`` pixels wide."""
    n, c, h, sheared = y.shape
    flat = F.pad(y.reshape(n, c, h * sheared), (0, h))
    return flat.reshape(n, c, h, sheared + 1)[..., :width]


class LineUpsample(nn.Module):
    """Sun et al. (CVPR 2019)'s 1D decoder step: x2 upsampling, then four sets of 1D kernels
    (horizontal, vertical, anti-diagonal, diagonal; length 9), a quarter of the filters each,
    concatenated, then batch norm and ReLU like the transposed convolution it replaces.

    Roads are long thin lines, and a 1D kernel gathers evidence along a line nine pixels long
    for the parameters of a 3x3 kernel (9 weights per channel pair).

    Why upsample then convolve: a stride-2 transposed convolution is a convolution over the
    zero-stuffed map; with a kernel one pixel thick, every other row (or column) of the output
    would receive nothing but the bias. Nearest-neighbour upsampling followed by a stride-1
    convolution avoids that checkerboard.

    Why shear for the diagonals: a 9x9 kernel masked to its diagonal would spend 81 multiply-adds
    per tap position for 9 useful ones; shearing rows (a pad-and-reshape, exact, no
    interpolation) turns the diagonal into a column, so a (9, 1) convolution does the same work
    at 9 multiply-adds on a map about twice as wide. ``tests/model/test_decoder1d.py`` checks that the
    sheared convolution equals the masked 9x9 one.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int = 9):
        super().__init__()
        if out_channels % 4:
            raise ValueError(f"1D decoder needs a multiple of 4 filters, got {out_channels}")
        q, pad = out_channels // 4, kernel // 2
        self.horizontal = nn.Conv2d(in_channels, q, (1, kernel), padding=(0, pad), bias=False)
        self.vertical = nn.Conv2d(in_channels, q, (kernel, 1), padding=(pad, 0), bias=False)
        self.anti_diagonal = nn.Conv2d(in_channels, q, (kernel, 1), padding=(pad, 0), bias=False)
        self.diagonal = nn.Conv2d(in_channels, q, (kernel, 1), padding=(pad, 0), bias=False)
        self.norm = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        w = x.shape[-1]
        mirrored = torch.flip(x, dims=(-1,))
        parts = [
            self.horizontal(x),
            self.vertical(x),
            unshear_rows(self.anti_diagonal(shear_rows(x)), w),
            torch.flip(unshear_rows(self.diagonal(shear_rows(mirrored)), w), dims=(-1,)),
        ]
        return F.relu(self.norm(torch.cat(parts, dim=1)), inplace=True)


def use_line_decoder(net: nn.Module) -> nn.Module:
    """Swap every transposed convolution of an smp Linknet decoder for a ``LineUpsample``."""
    blocks = getattr(getattr(net, "decoder", None), "blocks", None)
    if blocks is None or not type(net).__name__ == "Linknet":
        raise ValueError("the 1D decoder replaces Linknet's decoder blocks; use --arch Linknet")
    for block in blocks:
        upsample = block.block[1]  # 1x1 conv, [transposed conv, norm, ReLU], 1x1 conv
        conv = upsample[0]
        block.block[1] = LineUpsample(conv.in_channels, conv.out_channels)
    return net


@dataclass
class ModelMeta:
    arch: str = "Linknet"
    encoder: str = "resnet18"
    in_channels: int = 3
    resolution_m: float = 1.0
    mean: list[float] = field(default_factory=lambda: [0.5, 0.5, 0.5])
    std: list[float] = field(default_factory=lambda: [0.25, 0.25, 0.25])
    threshold: float = 0.5
    decoder: str = "plain"  # or "1d" (Linknet only); checkpoints without the field are plain
    training: dict[str, Any] = field(default_factory=dict)


META_KEYS = frozenset(f.name for f in fields(ModelMeta))


def check_architecture(arch: object, encoder: object, decoder: object, source: str | Path | None = None) -> None:
    """``arch``/``encoder``/``decoder`` name a network smp can build; else an InputError naming
    ``source`` (a checkpoint) or the option (--arch, --encoder, --decoder)."""
    if isinstance(arch, str) and isinstance(encoder, str) and isinstance(decoder, str) \
            and linknet.builds(arch, encoder, decoder):
        return  # built here without importing smp (osmgap.model.linknet)
    import segmentation_models_pytorch as smp
    from segmentation_models_pytorch.encoders import encoders

    if not isinstance(arch, str) or arch.lower() not in smp.MODEL_ARCHITECTURES_MAPPING:
        raise InputError(source or "--arch", f"unknown architecture {arch!r} "
                                             f"(known: {', '.join(smp.MODEL_ARCHITECTURES_MAPPING)})")
    if not isinstance(encoder, str) or encoder not in encoders:
        raise InputError(source or "--encoder", f"unknown encoder {encoder!r} (e.g. resnet18, resnet34, efficientnet-b0)")
    if decoder not in DECODERS:
        raise InputError(source or "--decoder", f"unknown decoder {decoder!r} (known: {', '.join(DECODERS)})")
    if decoder == "1d" and arch.lower() != "linknet":
        raise InputError(source or "--decoder", f"the 1D decoder replaces Linknet's decoder blocks, not {arch}'s")


def check_meta(raw: object, source: str | Path) -> ModelMeta:
    """A checkpoint's metadata as ModelMeta, every field checked: an unknown key (a model of
    another osmgap) or a value no network could have is an InputError naming ``source``."""
    if not isinstance(raw, dict):
        raise InputError(source, "not an osmgap model (its metadata is not a table)")
    unknown = sorted(set(raw) - META_KEYS)
    if unknown:
        raise InputError(source, f"unknown model metadata key(s) {', '.join(map(repr, unknown))} "
                                 "(written by another osmgap version?)")
    meta = ModelMeta(**raw)
    check_architecture(meta.arch, meta.encoder, meta.decoder, source)
    problem = _meta_problem(meta)
    if problem:
        raise InputError(source, f"model metadata: {problem}")
    return meta


def _meta_problem(meta: ModelMeta) -> str | None:
    """What is wrong with the numbers of ``meta``, if anything."""
    n = meta.in_channels
    if not (type(n) is int and 1 <= n <= MAX_IN_CHANNELS):
        return f"in_channels {n!r} is not a band count from 1 to {MAX_IN_CHANNELS}"
    if not (_finite(meta.resolution_m) and meta.resolution_m > 0):
        return f"resolution_m {meta.resolution_m!r} is not a number > 0"
    for name, values in (("mean", meta.mean), ("std", meta.std)):
        if not (isinstance(values, list) and len(values) == n and all(_finite(v) for v in values)):
            return f"{name} is not {n} finite numbers, one per band"
    if min(meta.std) <= 0:
        return "std has a value <= 0"
    if not (_finite(meta.threshold) and 0 <= meta.threshold <= 1):
        return f"threshold {meta.threshold!r} is not a number from 0 to 1"
    if not isinstance(meta.training, dict):
        return "training is not a table"
    return None


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def build_net(meta: ModelMeta) -> torch.nn.Module:
    """The network ``meta`` names, with random init: no pretrained weights can be fetched here."""
    check_architecture(meta.arch, meta.encoder, meta.decoder)
    if linknet.builds(meta.arch, meta.encoder, meta.decoder):
        return linknet.Linknet(meta.encoder, meta.in_channels)
    import segmentation_models_pytorch as smp

    try:
        net = smp.create_model(
            meta.arch, encoder_name=meta.encoder, encoder_weights=None,
            in_channels=meta.in_channels, classes=1,
        )
    except (KeyError, ValueError) as exc:
        raise InputError(None, f"unknown architecture/encoder {meta.arch}/{meta.encoder}: {exc}") from None
    if meta.decoder == "1d":
        try:
            use_line_decoder(net)
        except ValueError as exc:
            raise InputError(None, str(exc)) from None
    return net


def save_checkpoint(path: str | Path, net: torch.nn.Module, meta: ModelMeta) -> None:
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in net.state_dict().items()}
    buf = io.BytesIO()
    # Plain JSON types only, so that torch.load(weights_only=True) can read the metadata back.
    plain_meta = json.loads(json.dumps(meta.__dict__, default=str))
    torch.save({"format": CHECKPOINT_FORMAT, "meta": plain_meta, "state_dict": state}, buf)
    write_bytes_atomic(path, buf.getvalue())


def model_file(path: str | Path | None) -> Path:
    """The checkpoint ``--model`` or ``--init`` names; none, or the word ``default`` (what
    summary.json calls it), is the shipped model."""
    if not path or (str(path) == "default" and not Path(path).exists()):
        return DEFAULT_MODEL
    return Path(path)


def model_sha256(path: str | Path | None) -> str:
    """The SHA-256 of the checkpoint ``path`` names (model_file): which model made a run's
    outputs, whatever its path (``osmgap train`` may write another model under the same name)."""
    with model_file(path).open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


# the other files osmgap writes with torch, by their format (osmgap.model.resume.STATE_FORMAT,
# osmgap.model.encoder_file.ENCODER_FORMAT), and what takes them: given as a model by mistake
OTHER_OSMGAP_FILES = {
    "osmgap-train-state-1": "it is a training state (osmgap train --resume takes it; the model is the .pt beside it)",
    "osmgap-encoder-1": "it is a pretrained encoder (osmgap pretrain's; osmgap train --init-encoder takes it)",
}


def read_checkpoint(path: str | Path | None = None) -> tuple[dict[str, torch.Tensor], ModelMeta]:
    """The weights and checked metadata of a checkpoint written by ``save_checkpoint``; anything
    else (random bytes, a zip, an empty file, a torch file of another program) is an InputError."""
    path = model_file(path)
    if not path.is_file():
        raise InputError(path, "model file not found" if not path.exists() else "model is not a file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InputError(path, f"not a readable osmgap model ({type(exc).__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        other = OTHER_OSMGAP_FILES.get(str(ckpt.get("format"))) if isinstance(ckpt, dict) else None
        raise InputError(path, f"not an osmgap model: {other}" if other else
                         f"not an osmgap model (expected format {CHECKPOINT_FORMAT})")
    state = ckpt.get("state_dict")
    if not (isinstance(state, dict) and state and all(isinstance(v, torch.Tensor) for v in state.values())):
        raise InputError(path, "not an osmgap model (no weights)")
    return state, check_meta(ckpt.get("meta"), path)


SAME_NETWORK = ("arch", "encoder", "in_channels", "resolution_m", "mean", "std", "decoder")


def average_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], a_meta: ModelMeta, b_meta: ModelMeta,
                    alpha: float) -> dict[str, torch.Tensor]:
    """(1 - alpha) x ``a`` + alpha x ``b``, weight by weight (a "model soup"); integer buffers
    (BatchNorm's batch count) come from the nearer one. Both must be the same network with the
    same input normalisation, else a ValueError naming what differs."""
    differ = [k for k in SAME_NETWORK if getattr(a_meta, k) != getattr(b_meta, k)]
    if differ or a.keys() != b.keys():
        raise ValueError(f"not the same network: {', '.join(differ) or 'the weights have other names'} differ")
    return {k: (1 - alpha) * a[k].float() + alpha * b[k].float() if a[k].is_floating_point()
            else (b[k] if alpha >= 0.5 else a[k]) for k in a}


def load_checkpoint(path: str | Path | None = None, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, ModelMeta]:
    """Load a checkpoint written by ``save_checkpoint``; the net is in eval mode on ``device``.
    Weights that do not fit the network its metadata names (another architecture or encoder)
    are an InputError naming the file."""
    source = model_file(path)
    state, meta = read_checkpoint(source)
    try:
        net = build_net(meta)
    except InputError as exc:
        raise InputError(source, exc.problem) from None
    misfit = _misfit(net.state_dict(), state)
    if misfit:
        raise InputError(source, f"its weights do not fit the {meta.arch}/{meta.encoder} network its metadata "
                                 f"names ({misfit})")
    net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    return net.to(device).eval(), meta


def _misfit(expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor]) -> str:
    """How ``found`` weights differ from a network's ``expected`` ones; empty when they fit."""
    missing = len(expected.keys() - found.keys())
    unexpected = len(found.keys() - expected.keys())
    reshaped = sum(found[k].shape != v.shape for k, v in expected.items() if k in found)
    parts = [f"{n} {what}" for n, what in ((missing, "missing"), (unexpected, "unexpected"),
                                          (reshaped, "of another shape")) if n]
    return ", ".join(parts)


# A folded net must give the unfolded one's logits to this (fp32 rounding is ~1e-5); else it is not used.
FOLD_TOLERANCE = 1e-3
FOLD_PROBE_PX = 64
_CONVS = (nn.Conv2d, nn.ConvTranspose2d)
_INFERENCE_NETS: weakref.WeakKeyDictionary[nn.Module, nn.Module] = weakref.WeakKeyDictionary()


def _fold_pairs(module: nn.Module) -> int:
    """Fold each BatchNorm2d that directly follows a convolution into it (the norm becomes an
    Identity), in ``module`` and below; returns how many were folded. Two layouts are known:
    a Sequential's consecutive (conv, norm) children, and a block's ``convN``/``bnN`` attribute
    pairs (torchvision's ResNet stem and blocks, which smp's ResNet encoders are)."""
    folded = 0
    for child in module.children():
        folded += _fold_pairs(child)
    pairs: list[tuple[str, str]] = []
    if isinstance(module, nn.Sequential):
        names = [name for name, _ in module.named_children()]
        pairs = [(a, b) for a, b in zip(names, names[1:])]
    else:
        pairs = [(f"conv{n}", f"bn{n}") for n in range(1, 5)]
    for conv_name, bn_name in pairs:
        conv, bn = getattr(module, conv_name, None), getattr(module, bn_name, None)
        if isinstance(conv, _CONVS) and isinstance(bn, nn.BatchNorm2d) and bn.track_running_stats:
            setattr(module, conv_name, fuse_conv_bn_eval(conv, bn, transpose=isinstance(conv, nn.ConvTranspose2d)))
            setattr(module, bn_name, nn.Identity())
            folded += 1
    return folded


def fold_batchnorm(net: nn.Module, in_channels: int = 3) -> tuple[nn.Module, int]:
    """A copy of an eval-mode ``net`` with its BatchNorms folded into the preceding convolutions
    (w' = w * g / sqrt(var + eps), b' = (b - mean) * g / sqrt(var + eps) + beta): the same function
    with one pass over memory fewer per layer. Checked on a probe input: if the copy's logits differ
    from the net's by more than FOLD_TOLERANCE (a layout where the norm does not directly follow
    the convolution), the net itself is returned. Returns the net to use and how many were folded."""
    if net.training:  # a norm in training mode uses the batch's statistics: nothing to fold
        return net, 0
    folded = copy.deepcopy(net)
    count = _fold_pairs(folded)
    if not count:
        return net, 0
    device = next(net.parameters()).device
    probe = torch.rand(1, in_channels, FOLD_PROBE_PX, FOLD_PROBE_PX, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        before = net(probe.to(device)).float()
        after = folded(probe.to(device)).float()
    if not torch.allclose(before, after, atol=FOLD_TOLERANCE, rtol=0):
        return net, 0
    return folded, count


def inference_net(net: nn.Module, in_channels: int = 3) -> nn.Module:
    """The net as inference runs it: BatchNorm folded (:func:`fold_batchnorm`) and channels-last
    weights (bench/model.py: ~1.5x on a CPU). Made once per net (a scan predicts block after block)
    and never in place: the caller's net stays trainable."""
    if net not in _INFERENCE_NETS:
        folded, _ = fold_batchnorm(net, in_channels)
        _INFERENCE_NETS[net] = folded.to(memory_format=torch.channels_last)
    return _INFERENCE_NETS[net]


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
