"""Priority 0 (high) .. 2 (low), the scale MapRoulette uses for tasks.

Points for what makes a suggestion worth a mapper's time first: evidence confidence, the detour
it removes (routing impact), length, and road class; parking aisles and unsupported OSM ways
are always low. The integer is written as the ``priority`` property of every task, and the
challenge's priority rules (``osmgap.maproulette.challenge.priority_rules``) map it onto MapRoulette's.
"""
from __future__ import annotations

from osmgap.core.datamodel import Suggestion

HIGH, MEDIUM, LOW = 0, 1, 2
MAJOR_CLASSES = frozenset({"motorway", "trunk", "primary", "secondary", "tertiary", "motorway_link",
                           "trunk_link", "primary_link", "secondary_link", "tertiary_link"})
MINOR_CLASSES = frozenset({"service", "track"})


def priority(s: Suggestion) -> int:
    if s.kind == "unsupported_osm_way" or s.evidence.get("parking_aisle"):
        return LOW
    points = 0
    points += 1 if s.confidence >= 0.8 else -1 if s.confidence < 0.6 else 0
    impact = s.routing_impact or 0.0
    points += 2 if impact >= 500 else 1 if impact >= 100 else 0
    if s.kind == "missing_road":  # links and misconnections are short by nature
        points += 1 if s.length_m >= 200 else -1 if s.length_m < 50 else 0
    points += 1 if s.highway in MAJOR_CLASSES else -1 if s.highway in MINOR_CLASSES else 0
    return HIGH if points >= 2 else LOW if points <= -1 else MEDIUM
