"""The MapRoulette challenge JSON for a set of suggestions: texts, priority rules, templating.

Why each piece:
- ``instruction`` may use ``{{property}}`` (MapRoulette replaces it with the task's property);
  a placeholder that some task lacks would show up raw to the mapper, so it is refused here.
- Priority rules use MapRoulette's rule JSON (maproulette-backend Challenge.scala
  ``matchesJSONRule``: ``{"condition": "AND"|"OR", "rules": [{"value": "key.value",
  "type": "integer"|"double"|"long"|"string", "operator": ">=", ...}]}``), sent as JSON text
  because the API reads ``highPriorityRule`` as a string. A suggestion's ``priority`` is on
  MapRoulette's own scale (0 high, 1 medium, 2 low) and already weighs its routing impact; the
  rules follow it, and a very large ``routing_impact`` (detour removed, metres) is high whatever
  the rest. A task without a ``priority`` matches no rule and gets ``defaultPriority`` (medium).
- The imagery licence warning of a run goes into the description, where every mapper sees it.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from osmgap.errors import InputError

MAX_TASKS_PER_CHALLENGE = 50_000  # maproulette-backend config maxTasksPerChallenge

PRIORITY_HIGH, PRIORITY_MEDIUM, PRIORITY_LOW = 0, 1, 2
PLACEHOLDER = re.compile(r"\{\{\s*([^{}\s]+)\s*\}\}")

DEFAULT_INSTRUCTION = (
    "A road model sees a road on aerial imagery that OpenStreetMap does not have here: about "
    "{{length_m}} m long, model confidence {{confidence}}.\n\n"
    "1. Check it on imagery you may trace from (the detection used {{imagery_attribution}}, "
    "{{imagery_licence}}, captured {{imagery_date}}).\n"
    "2. If the road is there, draw it (or fix the pre-drawn one), connect it to the roads it meets "
    "and give it its real highway class.\n"
    "3. If there is no road, mark the task *Not an issue*; if it is mapped already, *Already fixed*. "
    "osmgap will not flag it again."
)
DEFAULT_CHECKIN_COMMENT = "Add a road missing from OpenStreetMap #osmgap #maproulette"


@dataclass(frozen=True)
class PriorityThresholds:
    """High: ``priority`` <= ``high_priority`` or ``routing_impact`` >= ``high_routing_impact_m``;
    medium: ``priority`` <= ``medium_priority``; low: the rest with a priority."""

    high_priority: int = PRIORITY_HIGH
    medium_priority: int = PRIORITY_MEDIUM
    high_routing_impact_m: float = 1000.0


def priority_rules(t: PriorityThresholds) -> dict[str, Any]:
    """``defaultPriority`` and the three rule fields of a challenge body."""
    def at_most(level: int) -> dict[str, Any]:
        return {"value": f"priority.{level}", "type": "integer", "operator": "<="}
    high = {"condition": "OR", "rules": [at_most(t.high_priority), {
        "value": f"routing_impact.{t.high_routing_impact_m}", "type": "double", "operator": ">="}]}
    medium = {"condition": "AND", "rules": [at_most(t.medium_priority)]}
    low = {"condition": "AND", "rules": [{"value": f"priority.{t.medium_priority}", "type": "integer", "operator": ">"}]}
    return {"defaultPriority": PRIORITY_MEDIUM, "highPriorityRule": _rule_text(high),
            "mediumPriorityRule": _rule_text(medium), "lowPriorityRule": _rule_text(low)}


def check_template(instruction: str, tasks: list[dict[str, Any]], source: str | Path) -> None:
    """Every ``{{name}}`` must be a property of every task, else the mapper sees it raw."""
    for name in sorted(set(PLACEHOLDER.findall(instruction))):
        for feature in tasks:
            if name not in (feature.get("properties") or {}):
                raise InputError(source, f"instruction uses {{{{{name}}}}} but task {feature.get('id')} "
                                         f"has no property {name!r}")


def challenge_body(name: str, project_id: int, *, instruction: str, checkin_comment: str,
                   thresholds: PriorityThresholds, aoi: str, warning: str | None) -> dict[str, Any]:
    """The flattened challenge JSON for POST /challenge and PUT /challenge/:id."""
    description = (f"Roads that osmgap found on imagery but not in OpenStreetMap, area {aoi}. "
                   "Each task is one gap longer than the minimum length and farther than the "
                   "tolerance from every mapped road.")
    if warning:
        description += f"\n\n**{warning}**"
    return {"name": name, "parent": int(project_id), "description": description,
            "blurb": f"Missing roads in {aoi}, found by osmgap", "instruction": instruction,
            "checkinComment": checkin_comment, "checkinSource": "osmgap",
            **priority_rules(thresholds)}


def differs(body: dict[str, Any], existing: dict[str, Any]) -> list[str]:
    """Fields of ``body`` that the server's challenge does not already have (rules compared as
    JSON, since the server answers them as objects)."""
    out = []
    for key, value in body.items():
        have = existing.get(key)
        if key.endswith("PriorityRule"):
            value = json.loads(value)
            have = json.loads(have) if isinstance(have, str) else have
        if value != have:
            out.append(key)
    return out


def _rule_text(rule: dict[str, Any]) -> str:
    return json.dumps(rule, separators=(",", ":"), sort_keys=True)
