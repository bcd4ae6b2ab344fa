"""Metric findings (gaps, links, crossings, unsupported ways) -> Suggestions a mapper receives.

Each finding becomes WGS84 geometry whose joined ends carry the exact coordinates of the OSM node
they join (so the JOSM writer reuses that node with its id and version), the OSM way ids it
refers to, its routing impact, its priority and its stable id.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np
import shapely
from shapely.geometry import LineString
from shapely.geometry.base import BaseGeometry

from osmgap.conflate.crossings import Crossing
from osmgap.conflate.gaps import Gap
from osmgap.conflate.ids import IdKey, assign_ids, fallback_anchor, fallback_order
from osmgap.conflate.joins import Join
from osmgap.conflate.links import Link
from osmgap.conflate.osmindex import OsmIndex
from osmgap.conflate.priority import priority
from osmgap.conflate.routing import Anchor, detours
from osmgap.conflate.support import Unsupported
from osmgap.core.aoi import reproject
from osmgap.core.datamodel import WGS84, Attachment, Suggestion

ANCHOR_REACH_M = 6.0


@dataclass
class Draft:
    """A suggestion before ids, routing and priority: metric joins kept for those steps."""

    suggestion: Suggestion
    joins: list[Join]
    id_key: IdKey
    route: tuple[Anchor, Anchor, float] | None = None
    metric: BaseGeometry | None = None


def from_gaps(gaps: list[Gap], kinds: list[str], osm: OsmIndex, crs: object) -> list[Draft]:
    """Drafts of gaps (``kinds``: each one's suggestion kind), reprojected and anchored in one go
    for all of them (one at a time took a second for a city's 3,700 gaps and links)."""
    if not gaps:
        return []
    lines = np.asarray([g.line for g in gaps], dtype=object)
    wgs = reproject(lines, crs, WGS84)
    mids = shapely.line_interpolate_point(lines, 0.5, normalized=True)
    anchors = iter(_join_anchors([j for g in gaps for j in g.joins], osm))
    drafts = []
    for gap, kind, line, mid in zip(gaps, kinds, wgs, mids):
        exact = _exact_ends(line, gap.joins, osm)
        s = Suggestion(id="", kind=kind, geometry=exact, length_m=float(gap.line.length), confidence=gap.confidence,
                       highway=gap.highway, evidence=dict(gap.evidence), attachments=_way_ids(gap.joins, osm),
                       joins=[_attachment(j, osm) for j in gap.joins], level_tags=dict(gap.level_tags))
        own = sorted((next(anchors) for _ in gap.joins), key=lambda a: a[:3])  # by way id, line, point
        key = (IdKey((kind, *[(a[0],) for a in own]), (*[a[3] for a in own], mid.x, mid.y)) if own
               else IdKey(fallback_anchor(kind, exact), fallback_order(exact)))
        drafts.append(Draft(s, gap.joins, key, _route(gap.joins, gap.line.length, osm), gap.line))
    return drafts


def from_links(links: list[Link], osm: OsmIndex, crs: object) -> list[Draft]:
    """A link is drawn as a gap of kind ``missing_link`` in its dead-end way's class."""
    gaps = [Gap(k.line, k.joins, k.confidence, "road", {"evidence_share": round(k.share, 2)},
                level_tags=dict(k.level_tags)) for k in links]
    drafts = from_gaps(gaps, ["missing_link"] * len(gaps), osm, crs)
    for draft, link in zip(drafts, links):
        draft.suggestion.highway = _dead_end_class(link.dead_end, osm)
    return drafts


def from_crossing(c: Crossing, osm: OsmIndex, crs: object) -> Draft:
    wgs = reproject(c.point, crs, WGS84)
    ways = sorted(int(osm.osm_id[k]) for k in c.lines)
    s = Suggestion(id="", kind="misconnection", geometry=wgs, length_m=0.0, confidence=c.confidence,
                   highway=str(osm.highway[c.lines[0]]), attachments=ways,
                   evidence={"crossing_without_node": True})
    anchors = tuple(_anchor_on(k, np.array([c.point.x, c.point.y]), osm) for k in c.lines)
    first = anchors[0] if osm.osm_id[c.lines[0]] <= osm.osm_id[c.lines[1]] else anchors[1]
    order = float(osm.segs.along[first.segment] + first.t * osm.segs.length[first.segment])
    return Draft(s, [], IdKey(("misconnection", *ways), order), (anchors[0], anchors[1], 0.0))


def from_unsupported(u: Unsupported, osm: OsmIndex, crs: object) -> Draft:
    wgs = reproject(u.geometry, crs, WGS84)
    way = int(osm.osm_id[u.line])
    s = Suggestion(id="", kind="unsupported_osm_way", geometry=wgs, length_m=float(u.geometry.length),
                   confidence=u.confidence, highway=str(osm.highway[u.line]), attachments=[way],
                   evidence={"support_share": round(u.support, 2)})
    return Draft(s, [], IdKey(("unsupported_osm_way", way), 0.0))


def finish(drafts: list[Draft], osm: OsmIndex) -> list[Suggestion]:
    """Routing impact, priority and ids; sorted by priority, then length."""
    routed = [d for d in drafts if d.route is not None]
    for d, impact in zip(routed, detours(osm, cast("list[tuple[Anchor, Anchor, float]]", [d.route for d in routed]))):
        d.suggestion.routing_impact = round(impact, 1)
    for d in drafts:
        if d.suggestion.routing_impact is None:
            d.suggestion.routing_impact = 0.0
        d.suggestion.priority = priority(d.suggestion)
    for d, sid in zip(drafts, assign_ids([d.id_key for d in drafts])):
        d.suggestion.id = sid
    return [d.suggestion for d in sorted(drafts, key=lambda d: (d.suggestion.priority, -d.suggestion.length_m, d.suggestion.id))]


def _exact_ends(wgs: LineString, joins: list[Join], osm: OsmIndex) -> LineString:
    """Joined ends on an existing vertex get that vertex's own WGS84 coordinates, untouched by
    the metric round trip, so they equal the OSM node's at 7 decimals."""
    coords = [tuple(c[:2]) for c in wgs.coords]
    for j in joins:
        if j.vertex is not None:
            coords[j.end] = tuple(osm.vertex_lonlat[j.vertex])
    return LineString(coords)


def _attachment(j: Join, osm: OsmIndex) -> Attachment:
    way = int(osm.osm_id[osm.segs.line[j.segment]])
    return Attachment(end=j.end, way_id=way, node_id=osm.node_id(j.vertex) if j.vertex is not None else None)


def _way_ids(joins: list[Join], osm: OsmIndex) -> list[int]:
    return sorted({int(osm.osm_id[osm.segs.line[j.segment]]) for j in joins})


def _join_anchors(joins: list[Join], osm: OsmIndex) -> list[tuple[int, int, tuple[float, float], float]]:
    """Per join: the OSM id and line of the way it is anchored on, the join point, and how far along
    that way it meets it (a suggestion's id key: its anchors sorted by the first three, the first
    by id first, then where along them it meets them). The way: of those passing within
    ANCHOR_REACH_M of the join, the one with the smallest id (then the first line), so a join
    near a junction names the same way whichever of the junction's ways, nodes or sides it
    landed on in this run. Ways on their own level (tunnels, bridges) count only where no other
    way is in reach: a surface road is not anchored on the service tunnel under the street it joins."""
    if not joins:
        return []
    points = shapely.points(np.asarray([j.xy for j in joins], float))
    which, seg = osm.segs.tree.query(points, predicate="dwithin", distance=ANCHOR_REACH_M)
    lonely = np.setdiff1d(np.arange(len(joins)), which)  # none in reach: the way it was joined to
    which = np.r_[which, lonely]
    line = np.r_[osm.segs.line[seg], osm.segs.line[[j.segment for j in joins]][lonely]].astype(np.int64)
    own_level = {int(k): osm.on_own_level(int(k)) for k in np.unique(line)}
    raised = np.asarray([own_level[int(k)] for k in line], bool)
    order = np.lexsort((line, osm.osm_id[line], raised, which))
    first = order[np.r_[True, which[order][1:] != which[order][:-1]]]
    chosen = line[first]  # one per join, in join order (``which`` sorted first)
    along = shapely.line_locate_point(osm.lines[chosen], points)
    return [(int(osm.osm_id[k]), int(k), j.xy, float(a)) for k, j, a in zip(chosen, joins, along)]


def _route(joins: list[Join], length: float, osm: OsmIndex) -> tuple[Anchor, Anchor, float] | None:
    if len(joins) != 2:
        return None
    a, b = (Anchor(j.segment, _t(j, osm)) for j in joins)
    return a, b, length


def _t(j: Join, osm: OsmIndex) -> float:
    a, b = osm.segs.a[j.segment], osm.segs.b[j.segment]
    d = b - a
    return float(np.clip(np.dot(np.asarray(j.xy) - a, d) / np.dot(d, d), 0.0, 1.0))


def _anchor_on(line: int, xy: np.ndarray, osm: OsmIndex) -> Anchor:
    """The anchor on ``line``'s segment nearest ``xy``."""
    segs = np.flatnonzero(osm.segs.line == line)
    a, ab = osm.segs.a[segs], osm.segs.b[segs] - osm.segs.a[segs]
    t = np.clip(np.einsum("ij,ij->i", xy - a, ab) / np.einsum("ij,ij->i", ab, ab), 0, 1)
    d = np.hypot(*(a + t[:, None] * ab - xy).T)
    k = int(np.argmin(d))
    return Anchor(int(segs[k]), float(t[k]))


def _dead_end_class(vertex: int, osm: OsmIndex) -> str:
    """A link continues its dead-end way: same class."""
    return str(osm.highway[osm.line_of_vertex[vertex]])
