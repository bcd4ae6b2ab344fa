"""The forward pass's precision: bf16 autocast only where the hardware multiplies bf16 natively,
full fp32 when asked (``--fp32``), and bf16 scores the real Paris chip within issue 17's 0.005 IoU
of fp32."""
import os

import numpy as np
import pytest
import torch

import osmgap.model.infer as infer
from osmgap.cli import build_parser
from osmgap.core.precision import FP32_ENV, forced_fp32, fp32_forced
from osmgap.jobs.eval import evaluate_imagery
from osmgap.model.infer import autocast_dtype


def test_a_cpu_gets_bf16_only_where_it_is_native(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.delenv(FP32_ENV, raising=False)
    monkeypatch.setattr(infer, "cpu_has_bf16", lambda: True)
    assert autocast_dtype(cpu) == torch.bfloat16
    monkeypatch.setattr(infer, "cpu_has_bf16", lambda: False)
    assert autocast_dtype(cpu) is None  # emulated bf16 is slower than fp32
    monkeypatch.setattr(infer, "cpu_has_bf16", lambda: True)
    monkeypatch.setenv(FP32_ENV, "1")
    assert autocast_dtype(cpu) is None
    monkeypatch.setenv(FP32_ENV, "0")
    assert autocast_dtype(cpu) == torch.bfloat16


def test_fp32_is_forced_within_the_block_only(monkeypatch):
    monkeypatch.delenv(FP32_ENV, raising=False)
    with forced_fp32(True):
        assert fp32_forced() and os.environ[FP32_ENV] == "1"  # processes started here inherit it
    assert not fp32_forced() and FP32_ENV not in os.environ
    monkeypatch.setenv(FP32_ENV, "0")
    with forced_fp32(True):
        assert fp32_forced()
    assert os.environ[FP32_ENV] == "0"  # the caller's own setting comes back
    with forced_fp32(False):
        assert not fp32_forced()


@pytest.mark.parametrize("verb", ["diff", "scan", "change", "eval", "train"])
def test_every_model_verb_takes_fp32(verb):
    required = {"diff": ["--aoi", "a", "--out", "o"], "scan": ["--aoi", "a", "--out", "o"],
                "change": ["--aoi", "a", "--before", "b", "--after", "c", "--out", "o"],
                "eval": ["--imagery", "i", "--labels", "l"], "train": ["--out", "o"]}[verb]
    assert build_parser().parse_args([verb, *required, "--fp32"]).fp32
    assert not build_parser().parse_args([verb, *required]).fp32


def test_bf16_scores_the_real_paris_chip_like_fp32(paris, monkeypatch):
    """Emulated where the CPU lacks bf16 (slower, same rounding), so this holds on any machine."""
    image, labels = paris / "image.tif", paris / "osm_roads.geojson"
    monkeypatch.setattr(infer, "autocast_dtype", lambda device: None)
    full = evaluate_imagery(image, labels)
    monkeypatch.setattr(infer, "autocast_dtype", lambda device: torch.bfloat16)
    half = evaluate_imagery(image, labels)
    assert full["iou"] > 0.2  # the model finds the chip's roads: the comparison means something
    assert abs(half["iou"] - full["iou"]) < 0.005
    assert half["iou"] != full["iou"] or not np.isclose(half["precision"], full["precision"], rtol=0, atol=0)
