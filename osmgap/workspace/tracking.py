"""What became of each suggestion, run after run: the rules that keep osmgap from nagging.

Why: the worst a recurring job can do is flag again what a reviewer rejected or what was mapped
since. So a run's suggestions are merged into the state by these rules:

- (before the run's outputs are written, ``diff --state``) a new id along an open, published,
  vanished or MapRoulette-fixed gap the run did not find takes that gap's id (``successor_ids``:
  an edit near its end changed its OSM anchor, or more evidence drew it longer), so a mapper's
  "fixed" stays with the road;
- new id -> ``open``; but a new id whose line lies along a dismissed one (>= 80 % of it within
  15 m) is the same road seen again and is ``dismissed`` at once; likewise, when a reviewer's
  false positive is synced, the open/published suggestions along it are dismissed with it;
- known id -> last seen updated; ``dismissed`` and MapRoulette-``fixed`` stay as they are
  (sticky); ``fixed`` because it had vanished (``covered by OSM`` / ``no longer detected``)
  becomes ``open`` again when it is found again;
- ``open``/``published`` id inside the AOI that this run did not produce -> ``fixed``, with reason
  ``covered by OSM`` when no piece of it longer than the minimum gap length lies outside the
  tolerance of the run's OSM roads (so the diff could not have reported it) and either the last
  run's roads did not cover it so, or a line this run's OSM has and the last run's had not runs
  along it (a short link between two ways was "covered" by them all along), ``part of ID`` when
  it lies along a longer gap of this run (two gaps drawn as one: the road is still missing, and
  the reports count it neither fixed nor new), else ``no longer detected``, but only where the
  run's imagery had usable pixels (a gap under a part the imagery of this run does not cover is
  no news).

MapRoulette task statuses (from ``osmgap sync``) map as: 2 False_Positive -> ``dismissed``;
4 Deleted (by the challenge's owner) -> ``dismissed`` too, though not counted as a reviewer's
false positive; 1 Fixed and 5 Already_Fixed -> ``fixed``; others only record the task status
(the task exists, so the suggestion is ``published``).

Diff outputs keep every suggestion; dismissed and fixed ones are dropped when publishing.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry

from osmgap.conflate.otherways import angle_deg, heading_at
from osmgap.core.aoi import reproject, utm_crs_for
from osmgap.core.datamodel import WGS84, Suggestion
from osmgap.core.taskstatus import MR_STATUS_NAMES, MRStatus, TaskStatus
from osmgap.workspace.outputs import DiffOutputs
from osmgap.workspace.store import StatusChange, Store, now_iso

SAME_ROAD_FRACTION = 0.8  # share of a new line within SAME_ROAD_M of a dismissed one: same road
SAME_ROAD_M = 15.0
SEEN_FRACTION = 0.8  # share of a vanished gap that must lie where the evidence could show it
NEW_LINE_M = 2.0  # a line of this run's OSM this close to one of the last run's is that line (redrawn)
SUCCESSOR_FRACTION = 0.5  # share of a vanished gap a new line must cover to take over its id
# a line lies along another where it also runs its way: a side street's first metres at a
# junction lie within SAME_ROAD_M of the road it leaves, all of them, and run along none of it
ALONG_DEG = 30.0
ALONG_STEP_M = 2.0  # spacing of the points at which a line's direction is compared
REOPENABLE = ("covered by OSM", "no longer detected")
REOPENED_REASON = "found again"  # a vanished gap's reason for being open again (the report's "reopened")
TWIN_REASON = "same road as dismissed"
MERGED_REASON = "part of"  # + the id of the longer gap of a later run that it lies along
MR_REASON = "MapRoulette:"  # + the task status's name: a reviewer's or mapper's verdict

MR_FALSE_POSITIVE = MRStatus.FALSE_POSITIVE
MR_REJECTED = (MR_FALSE_POSITIVE, MRStatus.DELETED)  # a reviewer or the challenge's owner said no
MR_FIXED = (MRStatus.FIXED, MRStatus.ALREADY_FIXED)
MR_REVIEWED = (*MR_FIXED, MR_FALSE_POSITIVE)  # statuses that are a reviewer's verdict on the suggestion


@dataclass
class RunRecord:
    run_id: int
    already_recorded: bool = False
    # fixed_seen: gaps a mapper or reviewer called fixed (MapRoulette) that this run still finds
    counts: dict[str, int] = field(default_factory=lambda: {"new": 0, "reopened": 0, "fixed": 0,
                                                            "dismissed_seen": 0, "merged": 0, "fixed_seen": 0})


def record_run(store: Store, outputs: DiffOutputs, *, area: BaseGeometry | None = None,
               osm_ways: gpd.GeoDataFrame | None = None, tolerance_m: float = 15.0,
               min_length_m: float = 30.0, seen_area: BaseGeometry | None = None) -> RunRecord:
    """Merge one diff run into the state (see the module doc); recording a run twice is a no-op.

    ``area`` (WGS84) limits which unseen suggestions may be called fixed; ``osm_ways`` (WGS84)
    decides between ``covered by OSM`` and ``no longer detected`` and is kept for the report map;
    ``seen_area`` (WGS84, default ``area``) is where the evidence could show a road this time
    (imagery with usable pixels): a gap mostly outside it is not "no longer detected".
    """
    known = store.run_by_summary(outputs.summary_sha256)
    if known is not None:
        return RunRecord(int(known["id"]), already_recorded=True)
    aoi, time = outputs.aoi_name, now_iso()
    if area is not None:  # two areas under one name would merge into one history
        store.check_area(aoi, area)
    crs = _metric_crs(area, outputs.features)
    osm_corridor = _corridor(osm_ways, crs, tolerance_m)
    # OSM as the last run saw it (read only if a gap went unseen): a gap that its roads already
    # "covered" (a short link between two ways lies within their corridor) was reported all the
    # same, so its going is no mapper's doing
    before: list[BaseGeometry | None] = []
    new_osm: _NewOsm | None = None  # ... unless a way drawn since runs along it: it was mapped
    with store.transaction():
        record = RunRecord(store.add_run(aoi, time, str(outputs.out_dir.resolve()), outputs.summary_sha256,
                                         outputs.summary))
        # a reviewer's "not an issue" is about a place: it holds in every AOI of the state (an AOI
        # enlarged under a new --name, as a changed area must be, brought the road back as new)
        dismissed = _lines([r for name in store.aoi_names() for r in store.suggestions(name, ("dismissed",))], crs)
        seen = set()
        for feature in outputs.features:
            seen.add(feature["id"])
            _merge_feature(store, aoi, feature, time, record, dismissed, crs)
        area_metric = reproject(area, WGS84, crs) if area is not None else None
        seen_metric = reproject(seen_area, WGS84, crs) if seen_area is not None else None
        hosts: list[tuple[str, str, BaseGeometry]] = []
        for row in store.suggestions(aoi, ("open", "published")):
            if row["id"] in seen:
                continue
            line = reproject(shape(json.loads(row["geometry"])), WGS84, crs)
            if area_metric is not None and not line.intersects(area_metric):
                continue  # outside what this run looked at: no news about it
            covered = _covered(line, osm_corridor, min_length_m)
            if covered and not before:
                last_osm = _saved_osm(store, aoi)
                before.append(_corridor(last_osm, crs, tolerance_m))
                new_osm = _NewOsm(osm_ways, last_osm, crs) if last_osm is not None else None
            covered = covered and (not _covered(line, before[0], min_length_m)
                                   or (new_osm is not None and new_osm.runs_along(line, tolerance_m)))
            if not covered:  # still missing from OSM: drawn this time as part of a longer gap?
                hosts = hosts or [(str(f["id"]), str(f["properties"].get("kind")),
                                   reproject(shape(f["geometry"]), WGS84, crs)) for f in outputs.features]
                host = next((hid for hid, kind, geom in hosts if kind == row["kind"] and _same_place(line, geom)), None)
                if host is not None:
                    store.change(aoi, row["id"], time, StatusChange("fixed", f"{MERGED_REASON} {host}",
                                                                     run_id=record.run_id))
                    record.counts["merged"] += 1
                    continue
            if not covered and seen_metric is not None and _along_area(line, seen_metric) < SEEN_FRACTION:
                continue  # no imagery there this time: not seen, so not "no longer detected" either
            store.change(aoi, row["id"], time, StatusChange(
                "fixed", "covered by OSM" if covered else "no longer detected", run_id=record.run_id))
            record.counts["fixed"] += 1
        if area is not None and osm_ways is not None:
            keep = [c for c in ("osm_id", "highway", "geometry") if c in osm_ways.columns]
            store.save_aoi(aoi, mapping(area), json.loads(osm_ways[keep].to_json()), time)
        store.set_run_counts(record.run_id, record.counts)
    return record


def _merge_feature(store: Store, aoi: str, feature: dict[str, Any], time: str, record: RunRecord,
                   dismissed: list[tuple[str, BaseGeometry]], crs: Any) -> None:
    old = store.suggestion(aoi, feature["id"])
    if old is None:
        line = reproject(shape(feature["geometry"]), WGS84, crs)
        twin = next((sid for sid, d in dismissed if _same_place(line, d)), None)
        change = (StatusChange("dismissed", f"{TWIN_REASON} {twin}", run_id=record.run_id) if twin
                  else StatusChange("open", "new", run_id=record.run_id))
        store.add_suggestion(aoi, feature, time, record.run_id, change)
        record.counts["dismissed_seen" if twin else "new"] += 1
        return
    store.saw_again(aoi, feature, time, record.run_id)
    if old["status"] == "dismissed":
        record.counts["dismissed_seen"] += 1
    elif old["status"] == "fixed" and reopenable(old["reason"]):
        store.change(aoi, feature["id"], time, StatusChange("open", REOPENED_REASON, run_id=record.run_id))
        record.counts["reopened"] += 1
    elif old["status"] == "fixed":  # their word stands (not published again), but said: OSM may lack it still
        record.counts["fixed_seen"] += 1


def reopenable(reason: str) -> bool:
    """Whether a ``fixed`` gap is open again when found again: it had vanished from the diff, no
    mapper or reviewer said it was done."""
    return reason in REOPENABLE or _part_of_longer(reason)


def merged(row: Any) -> bool:
    """A gap (a state row or event) drawn as part of a longer one: neither fixed nor new (the road
    is still missing)."""
    return row["status"] == "fixed" and _part_of_longer(row["reason"])


def fixed_on_maproulette(row: Any) -> bool:
    """A gap (a state row) a mapper or reviewer marked fixed on MapRoulette: their word stands."""
    return row["status"] == "fixed" and str(row["reason"]).startswith(MR_REASON)


def _part_of_longer(reason: Any) -> bool:
    return str(reason).startswith(f"{MERGED_REASON} ")


def dismissed_as_twin(status: str, reason: Any) -> bool:
    """A suggestion (a state row's or an event's status and reason) dismissed as the same road
    as one rejected or dismissed before, under another id: no reviewer's verdict on it, so it is
    not "newly dismissed" in sync's counts (they count it apart, ``twins``) nor "dismissed" in
    the report's "since" line; kept out of publishing all the same."""
    return status == "dismissed" and str(reason).startswith(TWIN_REASON)


def apply_task_statuses(store: Store, aoi: str, tasks: Iterable[TaskStatus]) -> dict[str, int]:
    """Fold MapRoulette's task statuses into the state; counts of what changed. A false positive
    (or a task its owner deleted) also dismisses the open/published suggestions along it (the
    same road under another id), counted as ``twins``, not ``dismissed`` (:func:`dismissed_as_twin`)."""
    counts = {"dismissed": 0, "fixed": 0, "twins": 0, "unknown": 0, "unchanged": 0}
    time = now_iso()
    rejected: list[tuple[str, Any]] = []
    with store.transaction():
        for task in tasks:
            row = store.suggestion(aoi, task.name)
            if row is None:
                counts["unknown"] += 1
                continue
            name = MR_STATUS_NAMES.get(task.status, str(task.status))
            if task.status in MR_REJECTED:
                change = StatusChange("dismissed", f"{MR_REASON} {name}")
                rejected.append((task.name, row))
            elif task.status in MR_FIXED and row["status"] != "dismissed":
                change = StatusChange("fixed", f"{MR_REASON} {name}")
            elif row["status"] == "open":
                change = StatusChange("published", "on MapRoulette")
            else:
                change = StatusChange(row["status"], row["reason"])
            change = StatusChange(change.status, change.reason, challenge_id=task.challenge_id,
                                  task_id=task.task_id, mr_status=task.status)
            counts[_news(row["status"], change)] += 1
            store.change(aoi, task.name, time, change)
        for sid, row, change in _twins(store, aoi, rejected):
            counts[_news(row["status"], change)] += 1
            store.change(aoi, sid, time, change)
    return counts


def _news(old: str, change: StatusChange) -> str:
    """The key of ``apply_task_statuses``'s counts that a change from status ``old`` adds to."""
    if change.status == old or change.status not in ("dismissed", "fixed"):
        return "unchanged"
    return "twins" if dismissed_as_twin(change.status, change.reason) else change.status


def _twins(store: Store, aoi: str, rejected: list[tuple[str, Any]]) -> list[tuple[str, Any, StatusChange]]:
    """The open or published suggestions that lie along one a reviewer rejected, with the change
    that dismisses each (id, state row, change).

    A later run may have seen the same road under another id (its OSM anchor changed when the
    roads around it were mapped) before the verdict was synced; it must not be published again."""
    if not rejected:
        return []
    geoms = {sid: shape(json.loads(row["geometry"])) for sid, row in rejected}
    crs = _metric_crs(None, [{"geometry": mapping(g)} for g in geoms.values()])
    zones = [(sid, reproject(g, WGS84, crs)) for sid, g in geoms.items()]
    rows = store.suggestions(aoi, ("open", "published"))
    out = []
    for row, (sid, line) in zip(rows, _lines(rows, crs)):
        twin = next((rid for rid, zone in zones if rid != sid and _same_place(line, zone)), None)
        if twin is not None:
            out.append((sid, row, StatusChange("dismissed", f"{TWIN_REASON} {twin}")))
    return out


def precision(store: Store, aoi: str) -> dict[str, Any]:
    """Reviewer-measured precision: 1 - false positives / reviewed (MapRoulette verdicts only)."""
    rows = store.suggestions(aoi)
    reviewed = sum(1 for r in rows if r["mr_status"] in MR_REVIEWED)
    false_pos = sum(1 for r in rows if r["mr_status"] == MR_FALSE_POSITIVE)
    return {"aoi": aoi, "reviewed": reviewed, "false_positives": false_pos,
            "precision": round(1 - false_pos / reviewed, 3) if reviewed else None}


def _metric_crs(area: BaseGeometry | None, features: list[dict[str, Any]]) -> Any:
    if area is not None:
        centre = area.centroid
    elif features:
        centre = shape(features[0]["geometry"]).centroid
    else:
        return utm_crs_for(0.0, 0.0)
    return utm_crs_for(centre.x, centre.y)


def _corridor(osm_ways: gpd.GeoDataFrame | None, crs: Any, tolerance_m: float) -> BaseGeometry | None:
    if osm_ways is None:
        return None
    if len(osm_ways) == 0:
        return shapely.Polygon()
    return shapely.union_all(shapely.buffer(osm_ways.to_crs(crs).geometry.values, tolerance_m))


def _lines(rows: Iterable[Any], crs: Any) -> list[tuple[str, BaseGeometry]]:
    return [(r["id"], reproject(shape(json.loads(r["geometry"])), WGS84, crs)) for r in rows]


def _saved_osm(store: Store, aoi: str) -> gpd.GeoDataFrame | None:
    """The OSM roads the state kept for ``aoi`` at its last run (None: none kept)."""
    row = store.aoi(aoi)
    features = json.loads(row["osm"]).get("features") if row is not None and row["osm"] else None
    return gpd.GeoDataFrame.from_features(features, crs=WGS84) if features else None


class _NewOsm:
    """The lines of this run's OSM roads that the last run's did not have (farther than
    NEW_LINE_M from all of them), to tell a gap a mapper drew from one the model missed.

    Why: a short gap that joins two ways lies within their corridor, so last week's OSM already
    "covered" it and its going could not be told from a miss: 2 of the 6 roads mapped in a week
    of real Kotka (a 38 m and a 19 m piece) were "no longer detected". Lines, not way ids: a way
    redrawn (a new id, the same line) is no new road, and a way extended is one."""

    def __init__(self, now: gpd.GeoDataFrame | None, last: gpd.GeoDataFrame | None, crs: Any) -> None:
        self.now = _metric_lines(now, crs)
        self.last = _metric_lines(last, crs)
        self.now_tree, self.last_tree = shapely.STRtree(self.now), shapely.STRtree(self.last)

    def runs_along(self, line: BaseGeometry, distance_m: float) -> bool:
        """Whether a new line runs along ``line`` (>= SAME_ROAD_FRACTION of it within
        ``distance_m`` of one, running its way within ALONG_DEG); never along a point (a
        misconnection): no line runs along one."""
        if not line.length:
            return False
        near = self.now[self.now_tree.query(line, predicate="dwithin", distance=distance_m)]
        if not len(near):
            return False
        old = self.last[self.last_tree.query(line, predicate="dwithin", distance=distance_m + NEW_LINE_M)]
        new = shapely.union_all(near)
        if len(old):
            new = new.difference(shapely.union_all(shapely.buffer(old, NEW_LINE_M)))
        parts = [g for g in getattr(new, "geoms", [new]) if g.geom_type == "LineString" and g.length]
        return bool(parts) and _share_along(line, np.array(parts, dtype=object), distance_m) >= SAME_ROAD_FRACTION


def _metric_lines(ways: gpd.GeoDataFrame | None, crs: Any) -> np.ndarray:
    if ways is None or not len(ways):
        return np.array([], dtype=object)
    geoms = shapely.get_parts(ways.to_crs(crs).geometry.values)
    return np.array([g for g in geoms if g.geom_type == "LineString" and g.length], dtype=object)


def _covered(line: BaseGeometry, corridor: BaseGeometry | None, min_length_m: float) -> bool:
    """Whether OSM's ``corridor`` leaves no piece of ``line`` a diff could still report, nor half
    of a line shorter than that (which any corridor, even none, would "cover" otherwise)."""
    if corridor is None:
        return False
    if not line.length:
        return bool(line.within(corridor))
    return _longest_outside(line, corridor) < min(min_length_m, line.length / 2)


def _longest_outside(line: BaseGeometry, zone: BaseGeometry) -> float:
    """Length of the longest piece of ``line`` outside ``zone``: what a diff could still report."""
    rest = line.difference(zone)
    return max((g.length for g in getattr(rest, "geoms", [rest]) if not g.is_empty), default=0.0)


def stable_ids(store: Store, aoi: str, suggestions: list[Suggestion]) -> list[Suggestion]:
    """``suggestions`` with the ids the state knows them by: a gap keeps its id when an edit
    nearby changes its OSM anchor (``successor_ids``), and a gap given the id of another road's
    verdict gets one of its own (``own_ids``)."""
    return own_ids(store, aoi, successor_ids(store, aoi, suggestions))


def successor_ids(store: Store, aoi: str, suggestions: list[Suggestion]) -> list[Suggestion]:
    """``suggestions`` where each one the state does not know takes the id of the open,
    published, vanished ("no longer detected") or MapRoulette-fixed gap of the same kind it runs
    along, if this run did not produce that id.

    Why: an id is an OSM anchor and a rank (osmgap.conflate.ids); a way redrawn or split near a
    gap's end changes its anchor, and more evidence (another week's GPS trips) draws the same gap
    longer, to other ways; the same road then came back under a new id: "fixed" and "new" in the
    weekly report for a road nobody mapped, and its MapRoulette task replaced. Each line must lie
    along the other for at least half its length (an end may have moved onto the edited way), and
    one of them along the other for >= 80 % (within SAME_ROAD_M): the new along the old (an end
    moved), or the old along the new (the gap grew). Each old id goes to one line, the one that
    overlaps it most. A gap a mapper marked fixed on MapRoulette passes its id on too: under a
    new id the road it was about came back ``new`` and was published again in the challenge the
    mapper had just closed; under its own id the verdict stands (``fixed_seen``, said in the
    report)."""
    unknown = [i for i, s in enumerate(suggestions) if store.suggestion(aoi, s.id) is None]
    if not unknown:
        return suggestions
    produced = {s.id for s in suggestions}
    olds = [r for r in store.suggestions(aoi, ("open", "published", "fixed"))
            if r["id"] not in produced and _succeeded(r)]
    if not olds:
        return suggestions
    crs = _metric_crs(None, [{"geometry": mapping(suggestions[unknown[0]].geometry)}])
    old_lines = _lines(olds, crs)
    kinds = {r["id"]: r["kind"] for r in olds}
    pairs = []
    for i in unknown:
        line = reproject(suggestions[i].geometry, WGS84, crs)
        for oid, old in old_lines:
            if kinds[oid] != suggestions[i].kind or line.distance(old) > SAME_ROAD_M:
                continue
            if _successor(line, old):
                pairs.append((_along(old, line), i, oid))
    out, taken = list(suggestions), set()
    for _, i, oid in sorted(pairs, reverse=True):
        if out[i].id == suggestions[i].id and oid not in taken:
            out[i] = replace(suggestions[i], id=oid)
            taken.add(oid)
    return out


def _succeeded(row: Any) -> bool:
    """Whether a state row's id may pass to a line that succeeds it (``successor_ids``): a gap
    still to do, one that vanished (it reopens) or one a mapper marked fixed (the verdict stays
    with its road); not one rejected (its twins are dismissed, ``_merge_feature``)."""
    return row["status"] in ("open", "published") or fixed_on_maproulette(row) or (
        row["status"] == "fixed" and reopenable(row["reason"]))


def _successor(new: BaseGeometry, old: BaseGeometry) -> bool:
    """``new`` is ``old`` drawn again, an end moved or the gap grown (``successor_ids``)."""
    covered, along = _along(old, new), _along(new, old)
    return min(covered, along) >= SUCCESSOR_FRACTION and max(covered, along) >= SAME_ROAD_FRACTION


def _along_area(geom: BaseGeometry, area: BaseGeometry) -> float:
    """Share of ``geom``'s length inside ``area`` (1 or 0 for a point)."""
    if geom.length == 0:
        return float(geom.intersects(area))
    return geom.intersection(area).length / geom.length


def _along(geom: BaseGeometry, other: BaseGeometry) -> float:
    """Share of ``geom``'s length within SAME_ROAD_M of ``other`` (1 for a point near it)."""
    if geom.length == 0:
        return float(geom.within(other.buffer(SAME_ROAD_M)))
    return geom.intersection(other.buffer(SAME_ROAD_M)).length / geom.length


def own_ids(store: Store, aoi: str, suggestions: list[Suggestion]) -> list[Suggestion]:
    """``suggestions`` with an id of their own where the state gives theirs to a gap of another
    road: an id is an OSM anchor and a rank (osmgap.conflate.ids), so a new gap along the ways of
    one mapped, rejected or gone since can be given its id, and would take over its verdict
    (never published) or its MapRoulette task (moved to another street, while the road it was
    about was mapped and nothing said so). The new one becomes ID-2 (-3, ...), the same each
    week while the old one is remembered. The same road is a line along the old one, or, for a
    gap that ``successor_ids`` may hand on, one that succeeds it (an end moved, the gap grew)."""
    out = []
    for s in suggestions:
        line = None
        sid, n = s.id, 1
        while (row := store.suggestion(aoi, sid)) is not None:
            old = shape(json.loads(row["geometry"]))
            crs = utm_crs_for(old.centroid.x, old.centroid.y)
            line = line if line is not None else reproject(s.geometry, WGS84, crs)
            old = reproject(old, WGS84, crs)
            if _same_place(line, old) or (_succeeded(row) and _successor(line, old)):
                break  # the same road: its history is its own
            n += 1
            sid = f"{s.id}-{n}"
        out.append(s if sid == s.id else replace(s, id=sid))
    return out


def _same_place(geom: BaseGeometry, other: BaseGeometry) -> bool:
    """A line along another (>= 80 % of it within SAME_ROAD_M of it, running its way within
    ALONG_DEG), or a point near one (a misconnection is a point)."""
    if geom.length == 0 or other.length == 0:
        return _along(geom, other) >= SAME_ROAD_FRACTION
    return _share_along(geom, np.array([other], dtype=object), SAME_ROAD_M) >= SAME_ROAD_FRACTION


def _share_along(geom: BaseGeometry, others: np.ndarray, distance_m: float) -> float:
    """Share of (a line) ``geom``'s length within ``distance_m`` of the nearest of the lines
    ``others``, running its way there within ALONG_DEG."""
    at = np.linspace(0.0, geom.length, max(5, int(np.ceil(geom.length / ALONG_STEP_M)) + 1))
    points = shapely.line_interpolate_point(geom, at)
    dist = shapely.distance(points[:, None], others[None, :])
    nearest = others[np.argmin(dist, axis=1)]
    near = dist.min(axis=1) <= distance_m
    turn = angle_deg(heading_at(np.full(len(points), geom, dtype=object), points), heading_at(nearest, points))
    return float(np.mean(near & (turn <= ALONG_DEG)))
