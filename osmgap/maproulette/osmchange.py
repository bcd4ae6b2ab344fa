"""osmChange for one suggestion: the road pre-drawn for a MapRoulette cooperative task.

Why: with ``cooperativeWork`` attached (meta version 2, type 2 = change file; file type xml,
format osc, base64 content, as maproulette/mr-cli writes it) MapRoulette hands the change to
JOSM, so the mapper starts from the drawn road and only has to check, connect and tag it.
One new way is created. An end that lands on an existing OSM node (the task's ``first_node`` /
``last_node``, osmgap.export.geojson) is that node, referenced by its id and not written: the
change creates nothing on top of it, as mr-cli's own osmChange of a way drawn onto existing
nodes does. JOSM reads such a node as incomplete in the task's layer, and merged onto the
mapper's data layer the way joins the node there (checked with JOSM's OsmChangeReader and
DataSetMerger). Every other vertex is a new node (negative id, no version). An end that meets a
road between its nodes is left to the mapper, and the way's ``fixme`` says so (without it
nothing said that such an end, drawn on the road it meets, is not joined to it; JOSM's
validator then flags the duplicate nodes there, and its fixme warning stops an upload unread).
The way's tags are the task's ``highway`` and level (tunnel/bridge/layer) read back through the
one vocabulary (osmgap.core.osmtags.way_tags): a task file edited by anyone can put no other tag
on the way, and of its node and way ids only digits are read.
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
    props = feature.get("properties") or {}
    ends = end_nodes(props)
    if len(keys) == 2 and len(ends) == 2 and len(set(ends.values())) == 1:
        ends = {}  # a hand edit that joins one node to itself: both ends drawn as new nodes
    refs: list[int] = []
    root = ET.Element("osmChange", {"version": "0.6", "generator": f"osmgap {__version__}"})
    create = ET.SubElement(root, "create")
    for i, (lon, lat) in enumerate(keys):
        existing = ends.get("first_node") if i == 0 else ends.get("last_node") if i == len(keys) - 1 else None
        if existing is not None:
            refs.append(existing)
        else:
            refs.append(-len(create) - 1)
            ET.SubElement(create, "node", {"id": str(refs[-1]), "lat": lat, "lon": lon})
    way = ET.SubElement(create, "way", {"id": str(-len(create) - 1)})
    for ref in refs:
        ET.SubElement(way, "nd", {"ref": str(ref)})
    tags, _ = way_tags(props.get("highway"), {k: props[k] for k in LEVEL_KEYS if k in props},
                       cooperative_fixme(props, loose=[e for e in ("first", "last") if f"{e}_node" not in ends]))
    for k, v in sorted(tags.items()):
        ET.SubElement(way, "tag", {"k": k, "v": v})
    return ET.tostring(root, encoding="UTF-8", xml_declaration=True)


def end_nodes(props: dict[str, Any]) -> dict[str, int]:
    """The task's ``first_node`` / ``last_node`` that are OSM node ids (digits, > 0)."""
    out = {}
    for key in ("first_node", "last_node"):
        text = str(props.get(key) if props.get(key) is not None else "").strip()
        if text.isascii() and text.isdigit() and 0 < int(text) < 2**63:
            out[key] = int(text)
    return out


def cooperative_fixme(props: dict[str, Any], loose: list[str] | None = None) -> str:
    """What the mapper must do before uploading the pre-drawn way; of the task's text only the
    way ids it names are read (as numbers: a task file edited by anyone writes nothing else).
    ``loose``: the ends ("first", "last") that land on no existing node (both if not given)."""
    loose = ["first", "last"] if loose is None else loose
    ids = [part.strip() for part in str(props.get("attachments") or "").split(",")]
    ways = ", ".join(i for i in ids if i.isascii() and i.isdigit())
    known = f" (way {ways})" if ways else ""
    join = ("check the junctions at its ends" if not loose else
            f"join its ends to the roads they meet{known}" if len(loose) == 2 else
            f"join its {loose[0]} node to the road it meets{known}")
    return f"osmgap: pre-drawn possible missing road: check imagery, {join}, set its class, then remove this fixme"


def cooperative_work(feature: dict[str, Any]) -> dict[str, Any]:
    """The ``cooperativeWork`` object of a line-by-line task."""
    return {"meta": {"version": 2, "type": COOPERATIVE_CHANGE_FILE},
            "file": {"type": "xml", "format": "osc", "encoding": "base64",
                     "content": base64.b64encode(osmchange_xml(feature)).decode("ascii")}}
