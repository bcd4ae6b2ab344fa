"""suggestions.geojson and MapRoulette's line-by-line GeoJSON, built from the same features.

Every feature carries ``priority`` (0 high .. 2 low, MapRoulette's own scale; see
osmgap.conflate.priority for the challenge rules that read it) and ``routing_impact`` (metres of detour
the suggestion removes), and ``attachments`` (the OSM way ids it refers to); an end that lands
on an existing OSM node (a known id and version, as suggestions.osm joins it) names it in
``first_node`` / ``last_node``, so a pre-drawn cooperative way (osmgap.maproulette.osmchange)
is joined there, not drawn with a duplicate node on top; a suggestion that
levelled evidence puts in a tunnel or on a bridge also its ``tunnel``/``bridge``/``layer``, as in
suggestions.osm: ``highway`` and the level come from the one vocabulary
(osmgap.core.osmtags.way_tags; a value outside it is dropped with one warning naming the file),
and every text (licence, attribution, file names, warnings) is osmgap.core.osmtags.clean_text,
so no lone surrogate of an undecodable file name or control character reaches a JSON reader.

MapRoulette (maproulette-backend ChallengeProvider.taskNameFromJsValue) names a task after the
first feature of its FeatureCollection: the feature's own ``id``, ``@id``, ``osmid``, ``osm_id``
or ``name``, then the same keys in its properties, else a random UUID (and then a re-upload
duplicates the task). Each feature carries the suggestion id both as the feature ``id`` and as
``properties.id``. Its front end (AsIdentifiableFeature.isValidId) reads an id such as
``123``, ``w123`` or ``way/123`` as an OSM element, so ids of that shape are refused here.
"""
from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from osmgap.core.atomic import write_bytes_atomic
from osmgap.core.datamodel import Suggestion
from osmgap.core.osmtags import clean_text, count_dropped, warn_dropped, way_tags

RS = b"\x1e"  # RFC 7464 record separator, which MapRoulette >= 3.6.5 expects before each task
CORE_PROPERTIES = ("id", "kind", "length_m", "confidence", "highway", "priority", "routing_impact")
_OSM_LIKE_ID = re.compile(r"^(node|way|relation|n|r|w)?/?\d+$")
_Scalar = (str, int, float, bool)


def suggestions_feature_collection(suggestions: list[Suggestion],
                                   extra_properties: dict[str, Any] | None = None) -> dict:
    """A GeoJSON FeatureCollection (RFC 7946, WGS84), one LineString Feature per suggestion."""
    return {"type": "FeatureCollection",
            "features": [suggestion_feature(s, extra_properties) for s in suggestions]}


def suggestion_feature(suggestion: Suggestion,
                       extra_properties: dict[str, Any] | None = None) -> dict:
    """One Feature: core fields, scalar evidence as ``evidence_*``, then ``extra_properties``
    (imagery licence and attribution, warnings) which may not shadow the first two."""
    task_id = _task_id(suggestion.id)
    tags, _ = way_tags(suggestion.highway, suggestion.level_tags)
    props: dict[str, Any] = {
        "id": task_id, "kind": suggestion.kind, "length_m": round(float(suggestion.length_m), 1),
        "confidence": round(float(suggestion.confidence), 3),
        "highway": tags.pop("highway"), "priority": int(suggestion.priority),
        "routing_impact": None if suggestion.routing_impact is None else round(float(suggestion.routing_impact), 1),
    }
    props.update(tags)
    props.update(_evidence_properties(suggestion.evidence))
    if suggestion.attachments:
        props["attachments"] = ",".join(str(a) for a in suggestion.attachments)
    props.update(_end_nodes(suggestion))
    clash = sorted(set(props) & set(extra_properties or {}))
    if clash:
        raise ValueError(f"extra_properties would overwrite suggestion fields: {clash}")
    props.update({k: _json_scalar(v) for k, v in (extra_properties or {}).items()})
    return {"type": "Feature", "id": task_id, "geometry": _geometry(suggestion), "properties": props}


def _end_nodes(suggestion: Suggestion) -> dict[str, int]:
    """``first_node`` / ``last_node``: the existing OSM node each end of the line lands on."""
    if suggestion.geometry.geom_type != "LineString":
        return {}
    out: dict[str, int] = {}
    for join in suggestion.joins:
        key = "first_node" if join.end == 0 else "last_node"
        if join.node_id is not None and join.node_id > 0:
            out.setdefault(key, int(join.node_id))
    return out


def write_suggestions_geojson(path: str | Path, suggestions: list[Suggestion],
                              extra_properties: dict[str, Any] | None = None) -> None:
    """Write the FeatureCollection atomically (UTF-8, one feature a line, deterministic)."""
    fc = suggestions_feature_collection(suggestions, extra_properties)
    write_bytes_atomic(path, feature_lines(fc).encode("utf-8"))
    _warn_dropped(path, suggestions)


def feature_lines(fc: dict[str, Any]) -> str:
    """A FeatureCollection as JSON text with each feature on a line of its own: as readable and as
    easy to compare line by line as an indented file, and written by json's C encoder, which an
    indent turns off (3,733 suggestions: 0.65 s in json's Python encoder)."""
    head = json.dumps({k: v for k, v in fc.items() if k != "features"}, ensure_ascii=False, allow_nan=False)
    features = [json.dumps(f, ensure_ascii=False, allow_nan=False) for f in fc["features"]]
    body = "[\n" + ",\n".join(features) + "\n]" if features else "[]"
    return f'{head[:-1]}, "features": {body}}}\n' if head != "{}" else f'{{"features": {body}}}\n'


def maproulette_lines(suggestions: list[Suggestion],
                      extra_properties: dict[str, Any] | None = None) -> bytes:
    """One task per suggestion: RS, a compact one-feature FeatureCollection, newline.

    ASCII-only JSON: MapRoulette splits the upload on newlines, and escaped text survives any
    encoding its server assumes; json.dumps never writes a raw newline inside the record.
    """
    return line_by_line({"type": "FeatureCollection", "features": [suggestion_feature(s, extra_properties)]}
                        for s in suggestions)


def line_by_line(collections: Iterable[dict[str, Any]]) -> bytes:
    """RFC 7464 records, one compact ASCII JSON object (a task's FeatureCollection) each."""
    return b"".join(RS + json.dumps(fc, ensure_ascii=True, separators=(",", ":"), allow_nan=False).encode("ascii")
                    + b"\n" for fc in collections)


def write_maproulette(path: str | Path, suggestions: list[Suggestion],
                      extra_properties: dict[str, Any] | None = None) -> None:
    """Write the file for ``PUT /challenge/{id}/addFileTasks?lineByLine=true`` atomically."""
    write_bytes_atomic(path, maproulette_lines(suggestions, extra_properties))
    _warn_dropped(path, suggestions)


def _warn_dropped(path: str | Path, suggestions: list[Suggestion]) -> None:
    """One warning for the file if a suggestion had a tag value outside the vocabulary."""
    warn_dropped(path, count_dropped((s.highway, s.level_tags) for s in suggestions))


def _task_id(suggestion_id: str) -> str:
    if not isinstance(suggestion_id, str) or not suggestion_id.strip():
        raise ValueError(f"suggestion id must be a non-empty string, got {suggestion_id!r}")
    if _OSM_LIKE_ID.match(suggestion_id):
        raise ValueError(f"suggestion id {suggestion_id!r} looks like an OSM id; MapRoulette "
                         "would take it for one")
    return suggestion_id


def _geometry(suggestion: Suggestion) -> dict:
    """A LineString (a Point for a misconnection), 2-D coordinates at 7 decimals as in the .osm
    file (z, if any, is dropped)."""
    coords = [[round(float(x), 7), round(float(y), 7)] for x, y, *_ in suggestion.geometry.coords]
    if suggestion.geometry.geom_type == "Point":
        return {"type": "Point", "coordinates": coords[0]}
    return {"type": "LineString", "coordinates": coords}


def _evidence_properties(evidence: dict[str, Any]) -> dict[str, Any]:
    """Scalar evidence only: nested values do not survive MapRoulette's flat properties."""
    out = {}
    for key, value in evidence.items():
        value = _json_scalar(value)
        if value is None or isinstance(value, _Scalar):
            out[f"evidence_{key}"] = value
    return out


def _json_scalar(value: Any) -> Any:
    """numpy scalars to Python, dates to ISO text, NaN/inf to null (JSON has neither), text
    cleaned (osmgap.core.osmtags.clean_text)."""
    if isinstance(value, str):
        return clean_text(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", None) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
