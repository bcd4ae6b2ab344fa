"""osmChange for one suggestion: the road pre-drawn for a MapRoulette cooperative task.

Why: with ``cooperativeWork`` attached (meta version 2, type 2 = change file; file type xml,
format osc, base64 content, as maproulette/mr-cli writes it) MapRoulette hands the change to
JOSM, so the mapper starts from the drawn road and only has to check, connect and tag it.
Only new nodes and one new way are created (negative ids, no version); joining existing
roads is left to the mapper, who sees them in JOSM, and the way's ``fixme`` says so (without it
nothing said that its ends, drawn on the roads they meet, are not joined to them; JOSM's
validator then flags the duplicate nodes there, and its fixme warning stops an upload unread).
The way's tags are the task's ``highway`` and level (tunnel/bridge/layer) read back through the
one vocabulary (osmgap.core.osmtags.way_tags): a task file edited by anyone can put no other tag
on the way.
"""
from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from typing import Any

from osmgap import __version__
from osmgap.core.osmtags import LEVEL_KEYS, coord_text, way_tags

COOPERATIVE_CHANGE_FILE = 2  # MapRoulette cooperativeWork meta.type for an osmChange file


def osmchange_xml(feature: dict[str, Any]) -> bytes:
    """An osmChange 0.6 document creating the feature's LineString as a new way."""
    keys: list[tuple[str, str]] = []
    for lon, lat, *_ in feature["geometry"]["coordinates"]:
        key = (coord_text(float(lon)), coord_text(float(lat)))
        if not keys or keys[-1] != key:  # rounding can make repeats; a way may not repeat a node
            keys.append(key)
    if len(keys) < 2:
        raise ValueError(f"suggestion {feature.get('id')} has fewer than two distinct points")
    root = ET.Element("osmChange", {"version": "0.6", "generator": f"osmgap {__version__}"})
    create = ET.SubElement(root, "create")
    for i, (lon, lat) in enumerate(keys, 1):
        ET.SubElement(create, "node", {"id": str(-i), "lat": lat, "lon": lon})
    way = ET.SubElement(create, "way", {"id": str(-len(keys) - 1)})
    for i in range(1, len(keys) + 1):
        ET.SubElement(way, "nd", {"ref": str(-i)})
    props = feature.get("properties") or {}
    tags, _ = way_tags(props.get("highway"), {k: props[k] for k in LEVEL_KEYS if k in props}, cooperative_fixme(props))
    for k, v in sorted(tags.items()):
        ET.SubElement(way, "tag", {"k": k, "v": v})
    return ET.tostring(root, encoding="UTF-8", xml_declaration=True)


def cooperative_fixme(props: dict[str, Any]) -> str:
    """What the mapper must do before uploading the pre-drawn way; of the task's text only the
    way ids it names are read (as numbers: a task file edited by anyone writes nothing else)."""
    ids = [part.strip() for part in str(props.get("attachments") or "").split(",")]
    ways = ", ".join(i for i in ids if i.isascii() and i.isdigit())
    join = f"join its ends to the roads they meet (way {ways})" if ways else "join its ends to the roads they meet"
    return f"osmgap: pre-drawn possible missing road: check imagery, {join}, set its class, then remove this fixme"


def cooperative_work(feature: dict[str, Any]) -> dict[str, Any]:
    """The ``cooperativeWork`` object of a line-by-line task."""
    return {"meta": {"version": 2, "type": COOPERATIVE_CHANGE_FILE},
            "file": {"type": "xml", "format": "osc", "encoding": "base64",
                     "content": base64.b64encode(osmchange_xml(feature)).decode("ascii")}}
