"""Priority 0..2 from confidence, routing impact, length and class."""
from __future__ import annotations

from shapely.geometry import LineString

from osmgap.conflate.priority import HIGH, LOW, MEDIUM, priority
from osmgap.core.datamodel import Suggestion

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
