"""The forward pass's numeric precision switch, kept apart from torch so the CLI sets it cheaply.

By default the model runs under bf16 autocast where the hardware has it (``osmgap.model.infer.
autocast_dtype``); ``FP32_ENV`` forces full fp32. It is an environment variable so that the
processes a run spawns (model tiles, Dask workers) inherit it.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

FP32_ENV = "OSMGAP_FP32"


def fp32_forced() -> bool:
    return os.environ.get(FP32_ENV, "") not in ("", "0")


@contextmanager
def forced_fp32(on: bool) -> Iterator[None]:
    """Within the block (and in processes started from it), full fp32 when ``on``."""
    if not on:
        yield
        return
    before = os.environ.get(FP32_ENV)
    os.environ[FP32_ENV] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(FP32_ENV, None)
        else:
            os.environ[FP32_ENV] = before
