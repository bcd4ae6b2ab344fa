"""Priority 0..2 and the MapRoulette rules that read it (maproulette-backend PriorityRule)."""
from __future__ import annotations

import json

from shapely.geometry import LineString

from osmgap.datamodel import Suggestion
from osmgap.priority import HIGH, LOW, MEDIUM, maproulette_priority_rules, priority

LINE = LineString([(26.95, 60.53), (26.951, 60.531)])


def _s(**kw) -> Suggestion:
    base = dict(id="osmgap-x", kind="missing_road", geometry=LINE, length_m=120.0, confidence=0.7,
                highway="residential", routing_impact=0.0)
    return Suggestion(**{**base, **kw})


def test_what_raises_and_lowers_priority():
    assert priority(_s()) == MEDIUM
    assert priority(_s(confidence=0.9, routing_impact=800.0)) == HIGH  # confident shortcut
    assert priority(_s(highway="primary", length_m=400.0)) == HIGH  # long main road
    assert priority(_s(confidence=0.55, length_m=35.0)) == LOW  # weak short stub
    assert priority(_s(confidence=0.95, routing_impact=2000.0, evidence={"parking_aisle": True})) == LOW
    assert priority(_s(kind="unsupported_osm_way", confidence=1.0, routing_impact=3000.0)) == LOW
    # a short link is not penalised for being short: its impact speaks for it
    assert priority(_s(kind="missing_link", length_m=8.0, routing_impact=300.0)) == MEDIUM
    assert priority(_s(kind="missing_link", length_m=8.0, routing_impact=600.0)) == HIGH


def test_maproulette_rules_match_the_property():
    rules = maproulette_priority_rules()
    assert rules["defaultPriority"] == MEDIUM
    for name, level in (("highPriorityRule", HIGH), ("mediumPriorityRule", MEDIUM), ("lowPriorityRule", LOW)):
        rule = json.loads(rules[name])
        (r,) = rule["rules"]
        key, value = r["value"].split(".", 1)  # how MapRoulette splits it
        assert (key, value, r["type"], r["operator"]) == ("priority", str(level), "integer", "==")
