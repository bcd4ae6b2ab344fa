"""Publish a run's suggestions as MapRoulette tasks: create or update, never duplicate.

Why it is built this way:
- Suggestions the state knows as ``dismissed`` or ``fixed`` are left out, so nobody is asked
  again about a false positive or a road mapped since (see osmgap.workspace.tracking); so are
  kinds the instruction does not fit (``PUBLISHED_KINDS``).
- A challenge holds at most ``max_tasks`` (MapRoulette's cap, 50,000): more tasks go to
  "NAME (part 2)", ... in id order. Parts that are no longer needed are emptied, and so is the
  AOI's challenge of an earlier name (the task file's challenge renamed): its open tasks would
  stay for good, roads mapped since among them.
- The challenge is found by name in the project (``GET /project/:id/challenge/:name``) and only
  updated when a field differs. One this state recorded under that name that the name no longer
  finds (or finds another challenge: one made under the old name since is someone else's) is
  read by its id (``GET /challenge/:id``): its owner renamed it on MapRoulette. Its tasks stay
  there and its owner's name stays (publish says so); a new challenge under the old name would
  hold the same roads again, the reviewed ones of the renamed one among them. Only a recorded
  challenge that is gone (404, deleted) is made anew, and emptied as retired (``gone_ok``).
- Tasks are uploaded with ``removeUnmatched=true``, which makes MapRoulette drop its
  Created/Skipped tasks first, so gaps that went away disappear; reviewed
  tasks (false positive, fixed) stay. MapRoulette gives re-created tasks new ids, so an upload
  that would be the same bytes as the last one (state ``content_sha256``) is skipped when all
  its tasks are still there: re-publishing the same run sends no write at all.
- MapRoulette counts the tasks already in a challenge *before* removeUnmatched removes any
  (ChallengeController.addTasksToChallengeFromFile), so when old + new would pass the cap the
  old incomplete tasks are removed by an empty upload first.
"""
from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass, field
from typing import Any

from osmgap.errors import InputError
from osmgap.export.geojson import line_by_line
from osmgap.export.josm import NEW_GEOMETRY_KINDS
from osmgap.maproulette.api import MapRouletteClient, MapRouletteError, TransientError
from osmgap.maproulette.challenge import (
    DEFAULT_CHECKIN_COMMENT,
    MAX_TASKS_PER_CHALLENGE,
    PriorityThresholds,
    challenge_body,
    check_template,
    default_instruction,
    differs,
    evidence_of,
    public_aoi_name,
)
from osmgap.maproulette.osmchange import cooperative_work
from osmgap.workspace.outputs import DiffOutputs
from osmgap.workspace.store import Store, now_iso
from osmgap.workspace.tracking import apply_task_statuses

log = logging.getLogger(__name__)

NOT_REPUBLISHED = ("dismissed", "fixed")
# Kinds the challenge's instruction is written for (check, then draw and connect a road); the
# others ask the opposite (unsupported_osm_way: is this mapped way really there?) or another edit
# (misconnection: a junction or a bridge), and a mapper told to "draw it" drew a duplicate.
PUBLISHED_KINDS = (*NEW_GEOMETRY_KINDS, "missing_connection")


@dataclass(frozen=True)
class PublishOptions:
    challenge: str
    project_id: int
    instruction: str | None = None  # None: the default for the run's evidence (default_instruction)
    checkin_comment: str = DEFAULT_CHECKIN_COMMENT
    cooperative: bool = False
    source_cleared: bool = False  # the road source's or GPS traces' licence allows them in OSM (cooperative)
    max_tasks: int = MAX_TASKS_PER_CHALLENGE
    thresholds: PriorityThresholds = PriorityThresholds()


@dataclass
class Part:
    """One challenge's worth of tasks."""

    number: int
    name: str
    ids: list[str]
    data: bytes
    body: dict[str, Any]

    @property
    def sha256(self) -> str:
        """Of the task file only: a new instruction updates the challenge, not its tasks."""
        return hashlib.sha256(self.data).hexdigest()


@dataclass
class PublishPlan:
    aoi: str
    parts: list[Part]
    skipped: dict[str, int]
    warning: str | None = None


@dataclass
class PartResult:
    name: str
    challenge_id: int | str
    challenge: str  # created / updated / unchanged
    uploaded: bool
    tasks: int


@dataclass
class PublishResult:
    plan: PublishPlan
    parts: list[PartResult] = field(default_factory=list)
    emptied: list[int] = field(default_factory=list)


def plan_publish(outputs: DiffOutputs, statuses: dict[str, str], options: PublishOptions) -> PublishPlan:
    """Which tasks go to which challenge, and the exact bytes of each upload."""
    source = outputs.out_dir / "suggestions.geojson"
    if not options.challenge.strip() or "/" in options.challenge:
        raise InputError("--challenge", "challenge name must be non-empty and contain no '/'")
    if options.max_tasks < 1:
        raise InputError("--max-tasks", "must be at least 1")
    if "demonstration" in outputs.summary:  # a sample with OSM ways taken out on purpose (osmgap.sources.sample)
        raise InputError(outputs.out_dir / "summary.json", "this diff is a demonstration (OSM ways were taken out "
                                                          "on purpose): its suggestions are not missing from OSM "
                                                          "and are never published")
    skipped: dict[str, int] = {}
    kept = []
    for feature in sorted(outputs.features, key=lambda f: f["id"]):
        status = statuses.get(feature["id"])
        kind = (feature.get("properties") or {}).get("kind", "missing_road")
        if kind not in PUBLISHED_KINDS:
            skipped[kind] = skipped.get(kind, 0) + 1
        elif status in NOT_REPUBLISHED:
            skipped[status] = skipped.get(status, 0) + 1
        else:
            kept.append(_task_feature(feature))
    evidence = evidence_of(outputs.summary, kept)
    pre_drawing = options.cooperative and any(pre_drawn(f) for f in kept)
    instruction = options.instruction or default_instruction(evidence, kept, pre_drawn=pre_drawing)
    check_template(instruction, kept, source)
    warning = next((f["properties"]["warning"] for f in kept if f["properties"].get("warning")), None)
    if options.cooperative and warning:
        raise InputError(source, "cooperative tasks would put geometry traced from imagery that is not "
                                 "cleared for OSM into OSM; re-run diff on cleared imagery (--imagery-cleared)")
    if options.cooperative and evidence in ("candidates", "gps") and not options.source_cleared:
        raise InputError(source, f"cooperative tasks would copy the {evidence_owner(evidence)} geometry into OSM, "
                                 "an import (wiki.openstreetmap.org/wiki/Import/Guidelines): give --source-cleared "
                                 "once its licence allows it and the import is agreed, or publish without --cooperative")
    n_parts = math.ceil(len(kept) / options.max_tasks)
    area = public_aoi_name(outputs.summary)  # None: a bbox with no name, the texts name the challenge
    parts = []
    for k in range(n_parts):
        chunk = kept[k * options.max_tasks:(k + 1) * options.max_tasks]
        name = part_name(options.challenge, k + 1)
        body = challenge_body(name, options.project_id, instruction=instruction,
                              checkin_comment=options.checkin_comment, thresholds=options.thresholds,
                              aoi=area, warning=_said(warning, kept), evidence=evidence, challenge=options.challenge)
        records = [_task_record(f, options.cooperative) for f in chunk]
        parts.append(Part(k + 1, name, [f["id"] for f in chunk], line_by_line(records), body))
    return PublishPlan(outputs.aoi_name, parts, skipped, warning)


def evidence_owner(evidence: str) -> str:
    return "road source's" if evidence == "candidates" else "GPS traces'"


def check_project(client: MapRouletteClient, options: PublishOptions) -> bool:
    """True, or InputError when the project does not exist: asked before the state is opened,
    so a wrong ``--project`` (or a refused key) writes nothing."""
    if client.project(options.project_id) is None:
        raise InputError("--project", f"MapRoulette has no project {options.project_id} at {client.config.api_url}")
    return True


def part_name(challenge: str, number: int) -> str:
    """Part 1 keeps the plain name, so a small AOI has one challenge of the name asked for."""
    return challenge if number == 1 else f"{challenge} (part {number})"


def execute_publish(plan: PublishPlan, client: MapRouletteClient, options: PublishOptions,
                    store: Store | None) -> PublishResult:
    """Send the plan (``check_project`` first); with a store (not in a dry run) remember
    challenges and task ids."""
    result = PublishResult(plan)
    for part in plan.parts:
        result.parts.append(_publish_part(part, client, options, store, plan.aoi))
    if store is not None:
        used = {str(p.challenge_id) for p in result.parts}
        for row in store.challenges(plan.aoi):  # a part no longer needed, or the AOI's challenge under its old name
            retired = (row["api_url"] == client.config.api_url and row["project_id"] == options.project_id
                       and str(row["id"]) not in used and row["tasks"] > 0)
            if retired:
                # deleted on MapRoulette by its owner: nothing left to empty, and every later run
                # failed on the 404 (exit 1) while the state still counted its tasks
                if not client.add_file_tasks(row["id"], b"", remove_unmatched=True, gone_ok=True):
                    log.warning("challenge %s (%s) is no longer on MapRoulette: nothing to empty", row["id"], row["name"])
                _remember(store, client, options, plan.aoi, row["id"], row["part"], row["name"], "", 0)
                result.emptied.append(row["id"])
    return result


def _publish_part(part: Part, client: MapRouletteClient, options: PublishOptions,
                  store: Store | None, aoi: str) -> PartResult:
    existing = _find(part, client, options, store, aoi)
    if existing is not None and store is not None:
        _check_owner(store, existing["id"], aoi, part.name)
    shown, body = part.name, part.body
    if existing is not None and isinstance(existing.get("name"), str) and existing["name"] != part.name:
        shown = existing["name"]  # renamed by its owner (found by its id): the owner's name wins
        body = {**part.body, "name": shown}
    if existing is None:
        existing, action = _create(part, client, options), "created"
    elif differs(body, existing):
        client.update_challenge(existing["id"], {**body, "id": existing["id"]})
        action = "updated"
    else:
        action = "unchanged"
    if shown != part.name:
        log.info("challenge %s is %r on MapRoulette, osmgap's %r: found by its id", existing["id"], shown, part.name)
        action += f" (renamed on MapRoulette from {part.name!r}, found by its id; its owner's name is kept)"
    cid = existing["id"]
    remembered = store.challenge(cid) if store is not None and action != "created" else None
    if store is not None and remembered is None:  # known before any task goes up: sync reads it whatever happens next
        _remember(store, client, options, aoi, cid, part.number, part.name, "", 0)
    tasks = (client.task_statuses(cid) or []) if action != "created" else []
    if remembered is not None and remembered["content_sha256"] == part.sha256 and _all_there(part, tasks):
        log.info("challenge %s: tasks unchanged since the last upload", cid)
        if store is not None:  # what was read is news all the same (a task deleted since: dismissed)
            apply_task_statuses(store, aoi, [t for t in tasks if t.name in set(part.ids)])
        return PartResult(shown, cid, action, False, len(part.ids))
    remove_first = len(tasks) + len(part.ids) > options.max_tasks
    if remove_first:  # the server counts old tasks before it removes them
        client.add_file_tasks(cid, b"", remove_unmatched=True)
    client.add_file_tasks(cid, part.data, remove_unmatched=not remove_first)
    now_there = client.task_statuses(cid) or []  # the new task ids
    if not client.dry_run and not _all_there(part, now_there):  # answered, not done: nothing remembered, rerun uploads
        missing = len(set(part.ids) - {t.name for t in now_there})
        raise MapRouletteError(f"challenge {cid}: the server answered the upload but lacks {missing} of its "
                               f"{len(part.ids)} task(s); run publish again")
    if store is not None:
        apply_task_statuses(store, aoi, [t for t in now_there if t.name in set(part.ids)])
        with store.transaction():
            store.forget_tasks_except(aoi, int(cid), {t.task_id for t in now_there})
        _remember(store, client, options, aoi, cid, part.number, part.name, part.sha256, len(part.ids))
    return PartResult(shown, cid, action, True, len(part.ids))


def _find(part: Part, client: MapRouletteClient, options: PublishOptions, store: Store | None,
          aoi: str) -> dict[str, Any] | None:
    """The part's challenge on MapRoulette: the one of its name, unless this state recorded
    another under that name (for this AOI, server and project) that is still there, whatever
    its owner renamed it to: newest upload first, one holding tasks before an emptied one. The
    state keeps osmgap's name for it (the part's), by which the next publish finds it again."""
    found = client.challenge_by_name(options.project_id, part.name)
    if store is None:
        return found
    recorded = [r for r in store.challenges(aoi) if r["name"] == part.name
                and r["api_url"] == client.config.api_url and r["project_id"] == options.project_id]
    if not recorded or (found is not None and str(found["id"]) in {str(r["id"]) for r in recorded}):
        return found
    for row in sorted(recorded, key=lambda r: (r["tasks"] > 0, r["published"]), reverse=True):
        doc = client.challenge(row["id"])
        if doc is not None and doc.get("parent") in (None, options.project_id):
            return doc
    return found  # every one recorded is gone: as for a challenge never published


def _create(part: Part, client: MapRouletteClient, options: PublishOptions) -> dict[str, Any]:
    """POST once; if the answer got lost, look before posting again (no duplicate challenge)."""
    try:
        return client.create_challenge(part.body)
    except TransientError as exc:
        log.warning("creating challenge %r: %s; checking whether it exists", part.name, exc)
        found = client.challenge_by_name(options.project_id, part.name)
        return found if found is not None else client.create_challenge(part.body)


def _check_owner(store: Store, cid: int, aoi: str, name: str) -> None:
    """A challenge this state publishes another AOI's tasks to is not this AOI's: its upload
    (removeUnmatched) would take the other AOI's open tasks off MapRoulette."""
    row = store.challenge(int(cid))
    if row is not None and row["aoi"] != aoi:
        raise InputError("--challenge", f"challenge {name!r} (id {cid}) holds the tasks of AOI {row['aoi']!r} in this "
                                        f"state; publishing {aoi!r} there would remove them: give this AOI a challenge "
                                        "of its own")


def _all_there(part: Part, tasks: list[Any]) -> bool:
    """Every task of the part is on the server; one its owner deleted counts, since MapRoulette
    keeps its name and no upload brings it back (the state dismisses it: tracking)."""
    return set(part.ids) <= {t.name for t in tasks}


def _remember(store: Store, client: MapRouletteClient, options: PublishOptions, aoi: str, cid: int,
              number: int, name: str, sha: str, tasks: int) -> None:
    with store.transaction():
        store.save_challenge(int(cid), api_url=client.config.api_url, project_id=options.project_id, name=name,
                             aoi=aoi, part=number, content_sha256=sha, tasks=tasks, time=now_iso())


def _said(warning: str | None, kept: list[dict[str, Any]]) -> str | None:
    """The challenge description's warning: the imagery's (not cleared for tracing) and the OSM
    input's (an extract covering part of the AOI, or old: some tasks may be roads OSM has)."""
    osm = next((f["properties"]["osm_warning"] for f in kept if f["properties"].get("osm_warning")), None)
    return " ".join(w for w in (warning, osm) if w) or None


def _task_feature(feature: dict[str, Any]) -> dict[str, Any]:
    """The feature as a task: id kept, null properties dropped (MapRoulette's priority rules
    would try to read a null as a number)."""
    props = {k: v for k, v in (feature.get("properties") or {}).items() if v is not None}
    return {"type": "Feature", "id": feature["id"], "geometry": feature["geometry"], "properties": props}


def pre_drawn(feature: dict[str, Any]) -> bool:
    """Whether a cooperative challenge's task of ``feature`` carries its road drawn: a new road
    only, and not one OSM has as proposed, which is a retag of that way (a pre-drawn second way
    would duplicate it)."""
    props = feature.get("properties") or {}
    return props.get("kind", "missing_road") in NEW_GEOMETRY_KINDS and "evidence_retag_way" not in props


def _task_record(feature: dict[str, Any], cooperative: bool) -> dict[str, Any]:
    record: dict[str, Any] = {"type": "FeatureCollection", "features": [feature]}
    if cooperative and pre_drawn(feature):
        record["cooperativeWork"] = cooperative_work(feature)
    return record
