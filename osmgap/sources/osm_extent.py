"""Does an OSM source reach the AOI? Diffed against roads of another place, every road the
evidence shows would look missing: a wrong file must not pass for an unmapped area.

An unmapped place has no road in the AOI, but its extract's roads (or its declared area, a
.osm.pbf's header box) lie around it; the wrong extract's lie elsewhere. A source with no road
at all and no declared area says nothing either way, and is read as it is.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import shapely
from shapely.geometry import box

from osmgap.core.aoi import Aoi
from osmgap.errors import InputError

Bounds = tuple[float, float, float, float]  # west, south, east, north (degrees)

NEAR_DEG = 0.005  # ~500 m: roads this close to the AOI make it a place the source knows
FULL_SHARE = 0.99  # a declared area covering less of the AOI than this is warned about


class OsmElsewhere(InputError):
    """An OSM file of another place (exit 2). Its advice is the one for ``--osm`` of an AOI
    (diff, scan, change, train); a verb that reads OSM for something else (eval's ``--labels``,
    where the area is an image's) catches it and says its own from ``extent`` and ``area``."""

    def __init__(self, source: str | Path, extent: Bounds, area: Bounds):
        self.extent, self.area = extent, area
        super().__init__(source, f"no road in or near the AOI: the file covers {show_bounds(extent)}, the AOI is at "
                                 f"{show_bounds(area)}; give an OSM extract of the AOI (or --osm overpass)")


def check_reaches_aoi(source: str | Path, aoi: Aoi, extent: Bounds | None) -> None:
    """An InputError (:class:`OsmElsewhere`) when ``extent`` (where the source's roads, or its
    declared area, lie) does not come near the AOI; called when no road of the source lies in the AOI."""
    if extent is None:
        return
    west, south, east, north = aoi.bounds
    if box(*extent).intersects(box(west - NEAR_DEG, south - NEAR_DEG, east + NEAR_DEG, north + NEAR_DEG)):
        return
    raise OsmElsewhere(source, extent, aoi.bounds)


def partial_cover_warning(source: str | Path, aoi: Aoi, declared: Sequence[Bounds]) -> str | None:
    """A warning when the source's declared area (a file header's box; every ``<bounds>`` of a
    file JOSM saved, one per download, taken together) covers only part of the AOI: roads in the
    rest are not in it, so the evidence there would all look missing."""
    if not declared or aoi.geometry.area == 0:
        return None
    covered = shapely.union_all([box(*b) for b in declared])  # the boxes themselves, not one box around them
    share = aoi.geometry.intersection(covered).area / aoi.geometry.area
    if share >= FULL_SHARE:
        return None
    return (f"WARNING: {source}: the file covers only {share:.0%} of the AOI ({_show_all(declared)}); the rest of "
            "the AOI has no OSM data here, so every road seen there is suggested: use an extract of the whole AOI")


def _show_all(declared: Sequence[Bounds]) -> str:
    shown = "; ".join(show_bounds(b) for b in declared[:3])
    return shown + (f" and {len(declared) - 3} more boxes" if len(declared) > 3 else "")


def union_bounds(bounds: list[Bounds]) -> Bounds | None:
    """The box around all ``bounds``; None for none."""
    if not bounds:
        return None
    return (min(b[0] for b in bounds), min(b[1] for b in bounds), max(b[2] for b in bounds), max(b[3] for b in bounds))


def show_bounds(bounds: Bounds | tuple[float, ...]) -> str:
    """West, south, east, north in degrees, as messages about where data lies say it."""
    west, south, east, north = bounds
    return f"lon {west:.4f}..{east:.4f}, lat {south:.4f}..{north:.4f}"
