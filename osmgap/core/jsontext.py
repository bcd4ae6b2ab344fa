"""JSON that every strict reader accepts: the files osmgap writes go to other tools (jq, QGIS,
JavaScript, MapRoulette), which refuse NaN and lone surrogates (an undecodable file name)."""
from __future__ import annotations

import json
import math
import re
from typing import Any

_SURROGATE = re.compile("[\ud800-\udfff]")


def strict(value: Any) -> Any:
    """``value`` with NaN/infinity as None and lone surrogates in text as U+FFFD."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {strict(k): strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict(v) for v in value]
    return value


def strict_json(value: Any, **kwargs: Any) -> str:
    """``json.dumps`` of ``strict(value)``; anything JSON has no type for is written as text."""
    return json.dumps(strict(value), allow_nan=False, default=str, **kwargs)
