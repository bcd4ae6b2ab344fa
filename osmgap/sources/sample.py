"""Sample AOIs: a directory with ``aoi.geojson`` and ``manifest.json`` naming the data it uses.

The data files are never committed; the manifest gives each file's path under the data
directory, its SHA-256 and its public source, and this loader finds and checks them.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from osmgap.core.datapaths import data_root
from osmgap.errors import InputError


@dataclass
class SampleAoi:
    name: str
    directory: Path
    files: dict[str, dict[str, Any]]

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
        doc = json.loads(manifest.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(manifest, f"sample manifest is not valid JSON ({exc})") from None
    return SampleAoi(doc.get("name", directory.name), directory, doc.get("files", {}))
