"""Suggestion ids that survive re-runs: anchored on OSM elements, not on snapped coordinates.

Snapping coordinates to a grid and hashing them (the first design) fails whenever a point lies
near a cell boundary: with ~10 m cells a 1 m wobble changes one id in five. No rounding of a
continuous position escapes this, since every grid has boundaries; what does not move between
runs is OSM itself. So an id is a hash of:

- an *anchor*: discrete OSM facts the suggestion is tied to. missing_road and missing_link: for
  each end joined to OSM, the smallest id among the OSM ways passing within 6 m of the join
  (so a join near a junction names the same way whichever of the junction's ways, nodes or
  sides it lands on; whether it snapped onto a node, even a dead end's, does not matter), a
  tunnel or bridge only where no surface way is that near; misconnection: the two crossing
  ways; unsupported_osm_way: the way. Only a suggestion with no OSM contact at all falls back to
  a coarse 0.01 degree (~1 km) cell of its midpoint;
- a *rank* among the suggestions of one run that share the anchor, ordered by where they meet
  the anchor ways, then by midpoint; values within ORDER_TIE_M of each other count as equal and
  pass to the next (two gaps leaving one node on either side of a way meet it at the same
  metre). Ranks change only if two such suggestions swap places, i.e. lie within the wobble of
  each other, or a new one appears between them.

Hazards left, said plainly: an end that sits right at the edge of reaching an OSM way (joined in
one run, free in the next), a gap ending in a cluster of junctions more than 6 m apart (where
it is joined can change), a new gap with the same anchor appearing in a later run, and, for
contactless suggestions only, a midpoint within the wobble of a 1 km cell edge (about 0.4 % of
them for a 1 m wobble). Measured with a < 1 m wobble of every candidate vertex (tests/test_ids,
5 re-runs, seeds 11 and 12 of the deletion): no id changed among 343 + 445 matched suggestions
in Kotka; in central Helsinki 14 of 923 (1.5 %, seed 11) and 18 of 892 (2.0 %, seed 12), every one of them a gap
whose end landed on another way or stopped free (its length changed by 2-50 m), where the
snapped-endpoint ids changed 51 of 896 and the first anchor design 25 of 921.
"""
from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from dataclasses import dataclass
from functools import cmp_to_key

from shapely.geometry.base import BaseGeometry

CELL_DEG = 0.01
M_PER_DEG = 111_320.0
ORDER_TIE_M = 2.0  # order values closer than this are a tie a re-run could break either way
PREFIX = "osmgap-"


@dataclass(frozen=True)
class IdKey:
    """What identifies one suggestion: a discrete ``anchor`` and an ``order`` among its peers:
    metres along the anchor, then tie-breaks (metres too) used where the first differ by less
    than ORDER_TIE_M, i.e. by what a re-run could change."""

    anchor: tuple
    order: float | tuple[float, ...]

    def orders(self) -> tuple[float, ...]:
        return self.order if isinstance(self.order, tuple) else (float(self.order),)


def fallback_anchor(kind: str, geom_wgs84: BaseGeometry) -> tuple:
    """Anchor of a suggestion that touches no OSM element: a coarse cell of its midpoint."""
    mid = geom_wgs84.interpolate(0.5, normalized=True) if geom_wgs84.geom_type == "LineString" else geom_wgs84
    return (kind, "cell", int(mid.x // CELL_DEG), int(mid.y // CELL_DEG))


def fallback_order(geom_wgs84: BaseGeometry) -> tuple[float, float]:
    """The midpoint, east then north, in (approximate) metres."""
    mid = geom_wgs84.interpolate(0.5, normalized=True) if geom_wgs84.geom_type == "LineString" else geom_wgs84
    return mid.x * M_PER_DEG * math.cos(math.radians(mid.y)), mid.y * M_PER_DEG


def _compare(a: IdKey, b: IdKey) -> int:
    """Order of two keys of one anchor: by the first order value that differs by more than
    ORDER_TIE_M; where none does, by the first value as it is."""
    oa, ob = a.orders(), b.orders()
    for x, y in zip(oa, ob):
        if abs(x - y) > ORDER_TIE_M:
            return -1 if x < y else 1
    return (oa[0] > ob[0]) - (oa[0] < ob[0])


def assign_ids(keys: list[IdKey]) -> list[str]:
    """One id per key: the anchor's hash and the key's rank among keys with the same anchor."""
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i, key in enumerate(keys):
        groups[key.anchor].append(i)
    ids = [""] * len(keys)

    def by_order(m: int, n: int) -> int:
        return _compare(keys[m], keys[n])

    for anchor, members in groups.items():
        for rank, i in enumerate(sorted(members, key=cmp_to_key(by_order))):
            digest = hashlib.sha1(f"{anchor!r}#{rank}".encode()).hexdigest()[:12]
            ids[i] = PREFIX + digest
    return ids


def lone_id(kind: str, geom_wgs84: BaseGeometry) -> str:
    """The id of a single suggestion with no OSM anchor (tests, hand-made suggestions)."""
    return assign_ids([IdKey(fallback_anchor(kind, geom_wgs84), 0.0)])[0]
