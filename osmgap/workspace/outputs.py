"""Read a ``diff`` output directory back: its summary and its suggestion features.

Publish, sync and report work from what ``diff`` wrote, so they can run later, elsewhere, or on
an older directory; a missing or damaged file is the user's to fix (InputError).
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from osmgap.core.atomic import check_settled
from osmgap.errors import InputError, nesting_refused

RUN_OUTPUTS = frozenset({
    "summary.json", "overview.png",  # every verb that writes a folder
    "suggestions.osm", "suggestions.geojson", "maproulette.geojson", "probability.tif",  # diff
    "changes.geojson", "probability_before.tif", "probability_after.tif",  # change
    "tiles.geojson", "map.html",  # scan
    "folds.json",  # train --aoi (cross-prediction)
})
"""What one run of a verb writes into ``--out``: a new run replaces all of them, the ones it does
not write included, so that a folder never holds one run's summary beside another's files
(``osmgap publish`` trusts that the summary and the suggestions belong together)."""
RUN_MARKERS = (("summary.json",), ("folds.json", "probability.tif"))
"""What an earlier run of any verb left in its folder (train --aoi writes no summary): only beside
one of them are RUN_OUTPUTS that run's, to remove (``--out`` a folder of the user's holding a
map.html of their own lost it to a change run)."""
MAX_DEPTH = 64
"""Levels of lists and objects a summary or suggestions file, or a state row's JSON
(osmgap.workspace.store), may nest: osmgap writes fewer than ten."""


@dataclass(frozen=True)
class DiffOutputs:
    out_dir: Path
    summary: dict[str, Any]
    summary_sha256: str
    features: list[dict[str, Any]]

    @property
    def aoi_name(self) -> str:
        return str(self.summary["aoi"]["name"])


def read_outputs(out_dir: str | Path) -> DiffOutputs:
    """summary.json and suggestions.geojson of ``out_dir``, checked enough to act on, never in
    the middle of a swap (osmgap.core.atomic.check_settled): one run's summary with another's
    suggestions would be published as one."""
    out_dir = Path(out_dir)
    check_settled(out_dir)
    summary_path = out_dir / "summary.json"
    raw = _read(summary_path)
    summary = _json(summary_path, raw)
    if not isinstance(summary, dict) or not isinstance(summary.get("aoi"), dict) or "name" not in summary["aoi"]:
        raise InputError(summary_path, "not an osmgap summary (no aoi.name); run `osmgap diff` into this directory")
    geojson_path = out_dir / "suggestions.geojson"
    doc = _json(geojson_path, _read(geojson_path))
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection" or not isinstance(doc.get("features"), list):
        raise InputError(geojson_path, "not a GeoJSON FeatureCollection")
    for i, f in enumerate(doc["features"]):
        if not (isinstance(f, dict) and isinstance(f.get("id"), str) and isinstance(f.get("geometry"), dict)):
            raise InputError(geojson_path, f"feature {i} has no string id or no geometry")
        coordinates = f["geometry"].get("coordinates")
        if coordinates is not None and not _finite(coordinates):  # a hand edit: no server may be sent it
            raise InputError(geojson_path, f"feature {i} ({f['id']}) has a coordinate that is not a finite number")
    return DiffOutputs(out_dir, summary, hashlib.sha256(raw).hexdigest(), doc["features"])


def _finite(coordinates: Any) -> bool:
    """Every number in a GeoJSON coordinate array is finite (json reads NaN and Infinity)."""
    if isinstance(coordinates, list):
        return all(_finite(c) for c in coordinates)
    return isinstance(coordinates, (int, float)) and not isinstance(coordinates, bool) and math.isfinite(coordinates)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(path, "missing; run `osmgap diff --out` into this directory first") from None
    except OSError as exc:
        raise InputError(path, f"cannot read ({exc.strerror})") from None


def _json(path: Path, raw: bytes) -> Any:
    """The document, no deeper than MAX_DEPTH: what publish, the state and the report do with it
    walks it recursively, and must not fail on a hand-edited file after it was accepted here."""
    try:
        with nesting_refused(path, "JSON"):
            doc = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(path, f"not valid JSON ({exc})") from None
    if deeper_than(doc, MAX_DEPTH):
        raise InputError(path, f"JSON nested more than {MAX_DEPTH} levels deep; osmgap writes no such file")
    return doc


def deeper_than(doc: Any, limit: int) -> bool:
    """Whether lists and objects in ``doc`` nest more than ``limit`` levels (walked without recursion)."""
    level = [doc]
    for _ in range(limit):
        level = [v for c in level if isinstance(c, (list, dict)) for v in (c.values() if isinstance(c, dict) else c)]
    return any(isinstance(c, (list, dict)) for c in level)
