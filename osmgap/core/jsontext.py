"""JSON that every strict reader accepts: the files osmgap writes go to other tools (jq, QGIS,
JavaScript, MapRoulette), which refuse NaN and lone surrogates (an undecodable file name).

A numpy number is written as the number it is (``json.dumps`` knows none of numpy's types, and
its ``default=str`` fallback wrote ``np.float32(nan)`` as the text "nan", ``np.int64(3)`` as "3"),
an array as a list, and a key JSON has no type for (a tuple) as its text, where it used to raise.
"""
from __future__ import annotations

import json
import math
import re
from typing import Any

_SURROGATE = re.compile("[\ud800-\udfff]")


def strict(value: Any) -> Any:
    """``value`` with NaN/infinity as None, lone surrogates in text as U+FFFD, numpy scalars and
    arrays as Python numbers and lists, and dict keys as text, numbers, booleans or None."""
    if hasattr(value, "tolist") and hasattr(value, "ndim"):  # numpy scalar or array, without importing numpy
        value = value.tolist()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_key(k): strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict(v) for v in value]
    return value


def _key(key: Any) -> Any:
    """A dict key json.dumps accepts (str, int, float, bool, None), strict like any value."""
    key = strict(key)
    return key if key is None or isinstance(key, (str, int, float, bool)) else strict(str(key))


def strict_json(value: Any, **kwargs: Any) -> str:
    """``json.dumps`` of ``strict(value)``; anything JSON has no type for is written as text."""
    return json.dumps(strict(value), allow_nan=False, default=str, **kwargs)
