"""The OSM tag vocabulary osmgap reads and writes: levels (tunnel, bridge, layer), one-way rules,
and the form of tag values and coordinates in the files it writes.

Every stage that reads a road's level or direction, or writes a tag or a coordinate, comes here,
so the readers (OSM, candidates) and the writers (JOSM, MapRoulette) cannot drift apart.
"""
from __future__ import annotations

import math
import re

MAX_TAG_LEN = 255  # OSM API limit on a tag value
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

NO_SEPARATION = {"", "no", "0", "false"}
# Tags that put a way on its own level: crossing such a way without a shared node is correct.
LEVEL_TAGS = ("bridge", "tunnel", "layer", "covered", "level")
# The tags that say which level a road is on (way_level); candidates may carry them too.
LEVEL_KEYS = ("tunnel", "bridge", "layer")


ONEWAY_FORWARD = {"yes", "1", "true"}
ONEWAY_BACKWARD = {"-1", "reverse"}
IMPLIED_ONEWAY_JUNCTIONS = {"roundabout", "circular"}


def direction(tags: dict, highway: str = "") -> int:
    """How a way may be driven: +1 only first node -> last, -1 only last -> first, 0 both
    (``oneway``; implied on roundabouts and motorways unless ``oneway=no``)."""
    oneway = str(tags.get("oneway", "")).strip().lower()
    if oneway in ONEWAY_FORWARD:
        return 1
    if oneway in ONEWAY_BACKWARD:
        return -1
    if oneway in ("no", "0", "false"):
        return 0
    implied = str(tags.get("junction", "")).lower() in IMPLIED_ONEWAY_JUNCTIONS or str(highway) == "motorway"
    return 1 if implied else 0


def _layer_number(value: object) -> float | None:
    """A ``layer`` value as a finite number, else None (missing, text, NaN, inf)."""
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def way_level(tags: dict) -> int:
    """The level a road lies on: its ``layer`` when it has a numeric one, else -1 for a tunnel
    (a building passage runs at street level), +1 for a bridge, 0 on the surface."""
    layer = _layer_number(tags.get("layer", ""))
    if layer is not None:
        return int(round(layer))
    tunnel = str(tags.get("tunnel", "no")).strip().lower()
    if tunnel not in NO_SEPARATION and tunnel != "building_passage":
        return -1
    return 1 if str(tags.get("bridge", "no")).strip().lower() not in NO_SEPARATION else 0


def level_tags(tags: dict) -> dict[str, str]:
    """The tags among ``tunnel``/``bridge``/``layer`` that a new way on this level carries, as
    the source gave them: ``tunnel`` and ``bridge`` unless empty or 'no', ``layer`` when it is
    an integer. Empty for a road on the surface."""
    out = {}
    for key in LEVEL_KEYS:
        value = tags.get(key)
        text = "" if value is None or (isinstance(value, float) and value != value) else str(value).strip()
        if key == "layer":
            number = _layer_number(text)
            if number is not None and number == int(number):
                out[key] = str(int(number))
        elif text.lower() not in NO_SEPARATION:
            out[key] = text
    if out.get("layer") == "0" and len(out) == 1:
        del out["layer"]  # the surface, said out loud
    return out


def level_key(tags: dict) -> str:
    """``level_tags`` as one comparable text ('layer=-3;tunnel=yes'; '' on the surface)."""
    return ";".join(f"{k}={v}" for k, v in sorted(level_tags(tags).items()))


def from_level_key(key: str) -> dict[str, str]:
    """The tags of a ``level_key``."""
    return dict(part.split("=", 1) for part in key.split(";") if "=" in part)


def coord_text(value: float) -> str:
    """Coordinates with 7 decimals, the precision OSM stores (about 1 cm)."""
    if not math.isfinite(value):
        raise ValueError(f"coordinate is not finite: {value}")
    text = f"{value:.7f}"
    return "0.0000000" if text == "-0.0000000" else text


def tag_value(value: str, default: str) -> str:
    """A value OSM and XML 1.0 accept: no control characters, at most 255 characters."""
    clean = _XML_ILLEGAL.sub("", str(value)).strip()[:MAX_TAG_LEN]
    return clean or default
