"""Sample AOIs: a directory with ``aoi.geojson`` and ``manifest.json`` naming the data it uses.

The data files are never committed; the manifest gives each file's path under the data
directory, its SHA-256 and its public source, and this loader finds and checks them.

A sample may be a *demonstration*: its manifest names OSM ways to take out before the diff, so a
newcomer whose first area is completely mapped still sees what a suggested missing road looks
like. The run says so in its summary and in every output's notes; nothing pretends those roads
are really missing from OpenStreetMap.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from osmgap.core.datamodel import RoadNetwork
from osmgap.core.datapaths import data_root
from osmgap.errors import InputError, nesting_refused


@dataclass(frozen=True)
class Demonstration:
    """OSM ways a demonstration sample takes out (``remove_osm_ids``), and why (``text``)."""

    remove_osm_ids: frozenset[int]
    text: str

    def apply(self, roads: RoadNetwork) -> tuple[RoadNetwork, dict[str, Any]]:
        """``roads`` without the named ways, and what was taken out (ids, names, km) for the summary."""
        gone = roads.ways["osm_id"].isin(self.remove_osm_ids)
        removed = roads.ways[gone]
        metric = removed.to_crs(removed.estimate_utm_crs()) if len(removed) else removed
        names = sorted({str(t.get("name")) for t in removed["tags"] if isinstance(t, dict) and t.get("name")})
        kept = replace(roads, ways=roads.ways[~gone].reset_index(drop=True))
        return kept, {"text": self.text, "removed_osm_ids": sorted(int(i) for i in set(removed["osm_id"])),
                      "removed_names": names, "removed_km": round(float(metric.length.sum()) / 1000, 3)}


@dataclass
class SampleAoi:
    name: str
    directory: Path
    files: dict[str, dict[str, Any]]
    demonstration: Demonstration | None = None

    def path(self, role: str) -> Path:
        """The verified local path of the file that plays ``role`` (imagery, osm, ...)."""
        entry = self.files.get(role)
        if entry is None:
            raise InputError(self.directory / "manifest.json", f"sample AOI has no '{role}' file")
        root = data_root()
        path = root / entry["path"]
        if not path.exists():
            raise InputError(path, f"sample data missing; download it from: {entry.get('source', 'see manifest')}")
        if sha256_of(path) != entry["sha256"]:
            raise InputError(path, "checksum does not match the sample manifest (corrupt or different file)")
        return path

    def info(self, role: str) -> dict[str, Any]:
        return dict(self.files.get(role, {}))


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def find_sample(spec: str) -> SampleAoi | None:
    """The sample AOI that ``spec`` names (its directory), or None when it is not one."""
    directory = Path(spec)
    manifest = directory / "manifest.json"
    if not (directory.is_dir() and manifest.exists()):
        return None
    try:
        with nesting_refused(manifest, "sample manifest JSON"):
            doc = json.loads(manifest.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(manifest, f"sample manifest is not valid JSON ({exc})") from None
    demo = _demonstration(manifest, doc.get("demonstration"))
    return SampleAoi(doc.get("name", directory.name), directory, doc.get("files", {}), demo)


def _demonstration(manifest: Path, entry: Any) -> Demonstration | None:
    if entry is None:
        return None
    ids = entry.get("remove_osm_ids") if isinstance(entry, dict) else None
    text = entry.get("text") if isinstance(entry, dict) else None
    if not (isinstance(ids, list) and ids and all(isinstance(i, int) and i > 0 for i in ids) and isinstance(text, str)):
        raise InputError(manifest, "'demonstration' must hold 'remove_osm_ids' (positive integers) and a 'text'")
    return Demonstration(frozenset(ids), text)
