"""Is this week's OSM file last week's? A weekly run diffed against an extract that nobody
refreshed (the download job broke) would send mappers, week after week, to draw roads the map has
had for days: said in the run's warnings (and so in its report), from what the state kept of the
last run of the same AOI.
"""
from __future__ import annotations

import datetime as dt
import json
from typing import Any

from osmgap.workspace.store import Store

UNCHANGED_AFTER_DAYS = 6  # a weekly run; reruns the same day with the same file are nothing to say
SAME_FILE_KEYS = ("source", "file_bytes", "file_modified")


def unchanged_osm_warning(store: Store, aoi: str, osm: dict[str, Any], now: str) -> str | None:
    """A warning when ``osm`` (this run's RoadNetwork.provenance) is the very file the last run of
    ``aoi`` read, and that run is at least UNCHANGED_AFTER_DAYS older than ``now`` (ISO 8601)."""
    if not all(osm.get(key) is not None for key in SAME_FILE_KEYS):
        return None  # Overpass (always asked again), or a file read by an osmgap that did not say
    runs = store.runs(aoi)
    if not runs:
        return None
    summary = json.loads(runs[-1]["summary"])
    last = summary.get("osm") if isinstance(summary, dict) else None
    if not isinstance(last, dict) or any(last.get(key) != osm[key] for key in SAME_FILE_KEYS):
        return None
    try:
        days = (_moment(now) - _moment(str(runs[-1]["time"]))).days
    except ValueError:  # a time the state should not hold: nothing to say
        return None
    if days < UNCHANGED_AFTER_DAYS:
        return None
    return (f"WARNING: {osm['source']}: the same file as the run of {str(runs[-1]['time'])[:10]} ({days} days "
            "earlier, not modified since): roads mapped since then will look missing; refresh the extract")


def _moment(iso: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)
