"""MapRoulette's task statuses: the verdicts mappers give osmgap's suggestions.

Kept below the MapRoulette client because the state store's rules (fixed, false positive,
reopened) are written in these terms too.
"""
from __future__ import annotations

from dataclasses import dataclass

# Task.statusMap (maproulette-backend app/org/maproulette/framework/model/Task.scala).
MR_STATUS_NAMES = {0: "Created", 1: "Fixed", 2: "False_Positive", 3: "Skipped", 4: "Deleted",
                   5: "Already_Fixed", 6: "Too_Hard", 7: "Answered", 8: "Validated", 9: "Disabled"}
MR_STATUS_IDS = {name: number for number, name in MR_STATUS_NAMES.items()}


@dataclass(frozen=True)
class TaskStatus:
    """One row of a challenge's task extract."""

    task_id: int
    challenge_id: int
    name: str
    status: int
