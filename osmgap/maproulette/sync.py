"""Read the fate of published tasks back from MapRoulette into the state.

Why: reviewers decide on MapRoulette. A task marked *Not an issue* (status 2, false positive)
must make osmgap drop that gap for good; *Fixed* / *Already fixed* mark it mapped. The statuses
come from each challenge's task extract (``GET /challenge/:id/tasks/extract``), one request per
challenge, and are folded in by osmgap.workspace.tracking.apply_task_statuses. ``dismissed``
counts a reviewer's or the owner's verdicts only, as the weekly report does; a gap dismissed
with a rejected road it lies along (the same road under another id) is counted in ``twins``
(osmgap.workspace.tracking.dismissed_as_twin). Every extract is
read (and checked) before the first is folded in, so a server that fails or answers nonsense
halfway leaves the state as it was.
"""
from __future__ import annotations

import logging

from osmgap.maproulette.api import MapRouletteClient
from osmgap.workspace.store import Store
from osmgap.workspace.tracking import apply_task_statuses

log = logging.getLogger(__name__)


def sync_statuses(store: Store, client: MapRouletteClient, aoi: str) -> dict[str, int]:
    """Fold the task statuses of every challenge published for ``aoi`` from this server."""
    totals = {"challenges": 0, "tasks": 0, "dismissed": 0, "fixed": 0, "twins": 0, "unknown": 0, "unchanged": 0,
              "gone": 0}
    fetched = []
    for row in store.challenges(aoi):
        if row["api_url"] != client.config.api_url:
            continue
        tasks = client.task_statuses(row["id"])
        if tasks is None:  # deleted on MapRoulette: the others are still read
            log.warning("challenge %s (id %s) is gone from %s: its tasks are no longer read", row["name"], row["id"],
                        client.config.api_url)
            totals["gone"] += 1
            continue
        fetched.append(tasks)
    for tasks in fetched:
        totals["challenges"] += 1
        totals["tasks"] += len(tasks)
        if client.dry_run:
            continue
        for key, n in apply_task_statuses(store, aoi, tasks).items():
            totals[key] += n
    return totals
