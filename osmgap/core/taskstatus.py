"""MapRoulette's task statuses: the verdicts mappers give osmgap's suggestions.

Kept below the MapRoulette client because the state store's rules (fixed, false positive,
reopened) are written in these terms too. ``MRStatus`` names the numbers, so no rule compares
a task with a bare 2 or 5; the state stores the numbers (an IntEnum is one).
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class MRStatus(IntEnum):
    """Task.statusMap (maproulette-backend app/org/maproulette/framework/model/Task.scala)."""

    CREATED = 0
    FIXED = 1
    FALSE_POSITIVE = 2  # "Not an issue"
    SKIPPED = 3
    DELETED = 4
    ALREADY_FIXED = 5
    TOO_HARD = 6  # "Can't complete"
    ANSWERED = 7
    VALIDATED = 8
    DISABLED = 9

    @property
    def api_name(self) -> str:
        """The name the task extract CSV uses: ``False_Positive``, ``Already_Fixed``, ..."""
        return "_".join(word.capitalize() for word in self.name.split("_"))


MR_STATUS_NAMES: dict[int, str] = {int(s): s.api_name for s in MRStatus}
MR_STATUS_IDS: dict[str, int] = {name: number for number, name in MR_STATUS_NAMES.items()}


@dataclass(frozen=True)
class TaskStatus:
    """One row of a challenge's task extract."""

    task_id: int
    challenge_id: int
    name: str
    status: int
