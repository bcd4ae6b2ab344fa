from __future__ import annotations

import json
from pathlib import Path

from osmgap.core.jsontext import strict_json


def test_nan_infinity_and_lone_surrogates_become_what_strict_readers_accept():
    text = strict_json({"score": float("nan"), "far": [float("inf"), 1.5], "name": "caf\udce9.tif",
                        "path": Path("/x/y")})
    text.encode("utf-8")  # a lone surrogate would raise here
    doc = json.loads(text, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    assert doc == {"score": None, "far": [None, 1.5], "name": "caf\ufffd.tif", "path": "/x/y"}
