"""How old is an OSM file's data? Diffed against an old extract, every road mapped since looks
missing, and a weekly run sends mappers to draw roads the map already has.

A file made from the planet or a replication feed (Geofabrik's, ``osmium extract``'s) says in its
header when its data was current (``osmosis_replication_timestamp``): older than STALE_DAYS, it is
warned about. Without that, the newest edit of the AOI's roads is recorded, not warned about: a
quiet place's roads may rightly be years old in a fresh extract.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import osmium

STALE_DAYS = 30  # an extract older than this misses a month of mapping: said at every run
HEADER_TIME_KEYS = ("osmosis_replication_timestamp", "timestamp")
EPOCH_YEAR = 1970  # a file without metadata gives every object the time 0


def header_time(header: osmium.io.Header) -> dt.datetime | None:
    """When the file's data was current, as its header says (None: it does not say)."""
    return utc_time(next((header.get(key) for key in HEADER_TIME_KEYS if header.get(key)), None))


def utc_time(said: str | None) -> dt.datetime | None:
    """An ISO 8601 time as OSM tools write it (``Z`` or no zone: UTC); None if it is not one."""
    if not said:
        return None
    try:
        moment = dt.datetime.fromisoformat(said.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def edit_time(timestamp: dt.datetime) -> dt.datetime | None:
    """An object's edit time, None where the file has no metadata."""
    return timestamp if timestamp.year > EPOCH_YEAR else None


def age_facts(path: Path, current: dt.datetime | None, newest_road_edit: dt.datetime | None,
              now: dt.datetime | None = None) -> tuple[dict[str, Any], str | None]:
    """The provenance fields (``extract_time``: ``current``, when the header says it;
    ``newest_road_edit``) and the warning for an extract older than STALE_DAYS."""
    facts = {key: iso_utc(value) for key, value in (("extract_time", current), ("newest_road_edit", newest_road_edit))
             if value is not None}
    return facts, stale_warning(path, current, "use a fresh extract (or --osm overpass)", now=now)


def stale_warning(source: str | Path, current: dt.datetime | None, advice: str, limit_days: int = STALE_DAYS,
                  now: dt.datetime | None = None) -> str | None:
    """The warning for OSM data current at ``current`` more than ``limit_days`` ago (None when
    younger or undated), naming ``source`` and ending in ``advice``: what every OSM source says."""
    if current is None:
        return None
    days = ((now or dt.datetime.now(dt.timezone.utc)) - current).days
    if days <= limit_days:
        return None
    return f"WARNING: {source}: its data is from {current:%Y-%m-%d} ({days} days ago): roads mapped since " \
           f"will look missing; {advice}"


def file_facts(path: Path) -> dict[str, Any]:
    """What tells one copy of an OSM file from the next (``file_bytes``, ``file_modified``): a
    weekly run can then tell an extract nobody refreshed (osmgap.workspace.freshness)."""
    stat = path.stat()
    return {"file_bytes": stat.st_size,
            "file_modified": iso_utc(dt.datetime.fromtimestamp(stat.st_mtime, dt.timezone.utc))}


def iso_utc(moment: dt.datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, to the second: how the summary dates things."""
    return moment.astimezone(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
