"""A suggestions.osm that a mapper saved from JOSM is kept, not overwritten by the next run.

JOSM's File > Save writes the layer back to the file it was opened from: the mapper's fixes to
the suggested ways (a name, the right class, a join) are in ``--out``'s suggestions.osm, which the
next run (a weekly cron) would replace without a word. JOSM writes ``generator='JOSM'`` (osmgap
``generator="osmgap VERSION"``), so a file another program saved is told apart without any state.
The run copies it into its staged outputs under a name no run writes
(``suggestions.edited-<when it was saved>.osm``), so it is published with them, or not at all when
the run fails, and says so.
"""
from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

OSM_FILE = "suggestions.osm"
HEAD_BYTES = 4096
_GENERATOR = re.compile(rb"<osm\b[^>]*?\bgenerator\s*=\s*([\"'])(.*?)\1", re.DOTALL)


def saved_by(path: Path) -> str | None:
    """The ``generator`` of the .osm file at ``path`` (None: no such file, or none said)."""
    try:
        with open(path, "rb") as f:
            head = f.read(HEAD_BYTES)
    except OSError:
        return None
    found = _GENERATOR.search(head)
    return found.group(2).decode("utf-8", "replace") if found else None


def keep_edited(out_dir: Path, stage: Path) -> list[str]:
    """Copy ``out_dir``'s suggestions.osm into ``stage`` under a name of its own when another
    program than osmgap saved it; the run's warning for it (none when there was nothing to keep)."""
    earlier = out_dir / OSM_FILE
    generator = saved_by(earlier)
    if generator is None or generator.startswith("osmgap"):
        return []
    stamp = time.strftime("%Y%m%dT%H%M%S", time.localtime(earlier.stat().st_mtime))
    kept = f"suggestions.edited-{stamp}.osm"
    if not (out_dir / kept).exists():
        shutil.copy2(earlier, stage / kept)
    return [f"WARNING: {earlier} was saved by {generator} after osmgap wrote it (edited in JOSM?): kept as "
            f"{out_dir / kept}; this run writes a new {OSM_FILE}"]
