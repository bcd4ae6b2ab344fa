r"""The MapRoulette challenge JSON for a set of suggestions: texts, priority rules, templating.

Why each piece:
- ``instruction`` may use ``{{property}}``. MapRoulette's web client replaces such a tag with the
  task's property, or with nothing when the task lacks it (maproulette3
  src/hooks/UsePropertyReplacement/UsePropertyReplacement.js ``replacePropertyTags``: a plain
  replacement, ``/(^|[^{])\{\{([^{][^}]*)}}/`` -> ``_get(properties, tag, "")``). It has no
  mustache sections: ``{{#x}}...{{/x}}`` would blank the two tags and show the text between to
  every task. So a text only some tasks can fill is never sent as a section: the default
  instruction is assembled per run, from the pieces every task can fill (``default_instruction``),
  and a user's instruction with a tag some task lacks (the mapper would read a sentence with a
  hole in it) is refused (``check_template``).
- Priority rules use MapRoulette's rule JSON (maproulette-backend Challenge.scala
  ``matchesJSONRule``: ``{"condition": "AND"|"OR", "rules": [{"value": "key.value",
  "type": "integer"|"double"|"long"|"string", "operator": ">=", ...}]}``), sent as JSON text
  because the API reads ``highPriorityRule`` as a string. A suggestion's ``priority`` is on
  MapRoulette's own scale (0 high, 1 medium, 2 low) and already weighs its routing impact; the
  rules follow it, and a very large ``routing_impact`` (detour removed, metres) is high whatever
  the rest. A task without a ``priority`` matches no rule and gets ``defaultPriority`` (medium).
- The imagery licence warning of a run goes into the description, where every mapper sees it.
- The texts name the AOI, except an AOI with no name of its own (a bbox given no ``--name``, the
  AOI a state refuses to record without one): its placeholder name ``bbox`` tells a mapper
  nothing, so the blurb names the challenge (``--challenge``) instead. So does a file AOI called
  by its file's stem (it has no ``name`` and got no ``--name``) where that stem is a generic word
  (``aoi.geojson``, ``roads.geojson``, ``Untitled-1.geojson``: ``GENERIC_NAME_WORDS``).
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from osmgap.core.osmtags import CONFIDENCE_ASSUMED
from osmgap.errors import InputError

MAX_TASKS_PER_CHALLENGE = 50_000  # maproulette-backend config maxTasksPerChallenge

PRIORITY_HIGH, PRIORITY_MEDIUM, PRIORITY_LOW = 0, 1, 2
PLACEHOLDER = re.compile(r"(?:^|[^{])\{\{([^{][^}]*)\}\}")  # MapRoulette's own tag pattern, tag name as it reads it

# What found the road, by summary.json's ``evidence``: the instruction's first sentence and the
# words the description uses. ``None``: a run that does not say (an older osmgap).
INTROS = {
    "imagery": "A road model sees a road on aerial imagery that OpenStreetMap does not have here: about "
               "{{length_m}} m long, model confidence {{confidence}}.",
    "candidates": "The road data {{evidence_source}} has a road here that OpenStreetMap does not have: about "
                  "{{length_m}} m long, confidence {{confidence}}.",
    "gps": "GPS traces of several trips run along a road here that OpenStreetMap does not have: about "
           "{{length_m}} m long, confidence {{confidence}}.",
    None: "osmgap finds a road here that OpenStreetMap does not have: about {{length_m}} m long, "
          "confidence {{confidence}}.",
}
# A candidates run whose source gives no confidence: every task would show the same assumed figure.
UNSCORED_INTRO = ("The road data {{evidence_source}} has a road here that OpenStreetMap does not have: about "
                  "{{length_m}} m long (the data gives no confidence of its own).")
FOUND_ON = {"imagery": "on imagery", "candidates": "in another road source", "gps": "in GPS traces",
            None: "in its evidence"}
# Optional pieces: each is kept only when every task fills all of its tags.
IMAGERY_PIECES = ("{{imagery_attribution}}", "{{imagery_licence}}", "captured {{imagery_date}}")
GPS_PIECE = "GPS traces along it: {{evidence_gps_trips}} trips ({{evidence_gps_verdict}})."
CHECK = "1. Check it on imagery you may trace from"
STEPS = ("2. If the road is there, {draw}, connect it to the roads it meets and give it its real highway class.\n"
         "3. If there is no road, mark the task *Not an issue*; if it is mapped already, *Already fixed*. "
         "osmgap will not flag it again.")
# Only a cooperative challenge (publish --cooperative) pre-draws the road, and not in every task
# (osmgap.maproulette.publish.pre_drawn): "the pre-drawn one" of any other would be no task's.
DRAW, DRAW_OR_FIX = "draw it", "draw it (or fix the pre-drawn one)"
# Said where some task is a road OSM has as highway=proposed or as a construction likely finished
# (osmgap.conflate.otherways): MapRoulette has no sections, so the sentence names the property that
# tells which tasks.
RETAG_STEP = ("   Where the task's evidence_retag_way names a way, OSM has this road as proposed or under construction: "
              "if it is built, retag that way (from its proposed=* or construction=* value) rather than drawing a "
              "second one.")
DEFAULT_CHECKIN_COMMENT = "Add a road missing from OpenStreetMap #osmgap #maproulette"


def placeholders(text: str) -> list[str]:
    """The tags MapRoulette replaces in ``text``, as it reads their names (spaces included)."""
    return sorted(set(PLACEHOLDER.findall(text)))


def evidence_of(summary: dict[str, Any], tasks: list[dict[str, Any]]) -> str | None:
    """The run's evidence: summary.json's ``evidence``; for a summary without it, 'imagery' when
    every task names its imagery (what older runs wrote), else None."""
    said = summary.get("evidence")
    if isinstance(said, str) and said in INTROS:
        return said
    return "imagery" if tasks and all(_fills(t, "imagery_attribution") for t in tasks) else None


def default_instruction(evidence: str | None, tasks: list[dict[str, Any]], pre_drawn: bool = False) -> str:
    """The instruction for a run whose evidence is ``evidence``, of the pieces every task fills:
    imagery names and the GPS support appear only when every task has them; the pre-drawn road
    only where some task carries one (``pre_drawn``)."""
    def kept(pieces: Iterable[str]) -> list[str]:
        return [p for p in pieces if all(all(_fills(t, name) for name in placeholders(p)) for t in tasks)]

    intro = INTROS[evidence] if kept([INTROS[evidence]]) else INTROS[None]
    if evidence == "candidates" and tasks and kept([UNSCORED_INTRO]) and all(
            (t.get("properties") or {}).get("evidence_confidence_source") == CONFIDENCE_ASSUMED for t in tasks):
        intro = UNSCORED_INTRO
    gps = kept([GPS_PIECE])
    imagery = kept(IMAGERY_PIECES)
    check = f"{CHECK} (imagery of this run: {', '.join(imagery)})." if imagery else f"{CHECK}."
    retag = any("evidence_retag_way" in (t.get("properties") or {}) for t in tasks)
    steps = STEPS.format(draw=DRAW_OR_FIX if pre_drawn else DRAW)
    steps = steps.replace("\n3.", f"\n{RETAG_STEP}\n3.") if retag else steps
    return "\n\n".join([" ".join([intro, *gps]), f"{check}\n{steps}"])


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
    """Every ``{{name}}`` must be a property of every task, else the mapper reads a blank."""
    for name in placeholders(instruction):
        if name[:1] in ("#", "^", "/"):
            raise InputError(source, f"instruction uses {{{{{name}}}}}: MapRoulette has no mustache sections, "
                                     "it would show the text inside to every task")
        for feature in tasks:
            if not _fills(feature, name):
                raise InputError(source, f"instruction uses {{{{{name}}}}} but task {feature.get('id')} has no "
                                         f"property {name!r} (MapRoulette would show a blank there)")


def _fills(task: dict[str, Any], name: str) -> bool:
    """Whether MapRoulette puts text for ``{{name}}`` in this task (None or '' show as nothing)."""
    return (task.get("properties") or {}).get(name) not in (None, "")


def public_aoi_name(summary: dict[str, Any]) -> str | None:
    """The AOI's name as the public texts give it, from a diff's summary; None for an AOI with no
    name of its own: a bbox given no ``--name`` (named ``bbox``, as osmgap.core.aoi.load_aoi
    names it; the one AOI a state refuses without ``--name``), or a file named by its generic
    stem (:func:`generic_file_name`)."""
    from osmgap.core.aoi import BBOX_NAME, is_bbox  # shapely: not for `osmgap publish --help` (tools import this)

    aoi = summary.get("aoi") or {}
    name, source = str(aoi.get("name", "")), aoi.get("source")
    if name != BBOX_NAME:
        return None if source is not None and generic_file_name(name, str(source)) else name
    try:
        return None if source is None or is_bbox(str(source)) else name  # a summary before "source": a bbox
    except InputError:  # a malformed bbox is no file either
        return None


GENERIC_NAME_WORDS = frozenset({
    "aoi", "area", "areas", "of", "interest", "study", "polygon", "polygons", "poly", "shape", "shapes", "geometry",
    "road", "roads", "export", "exported", "map", "maps", "untitled", "unnamed", "new", "my", "boundary",
    "boundaries", "bounds", "bbox", "extent", "region", "zone", "layer", "feature", "features", "selection",
    "data", "file", "geojson", "json", "output", "download", "downloads", "copy", "test", "temp", "tmp", "clip",
    "mask", "draft", "final", "input", "osm", "osmgap"})
"""Words of a file name that say nothing of the place (``Untitled-1``, ``area_of_interest``,
``roads export (2)``): a name made of them only (digits and signs aside) is no name to show."""


def generic_file_name(name: str, source: str) -> bool:
    """Whether ``name`` is what osmgap.core.aoi.load_aoi calls the AOI file ``source`` when the
    file has no name of its own (its stem; a sample directory's name for ``aoi.geojson``), and
    is made of GENERIC_NAME_WORDS only."""
    path = Path(source)
    if name != (path.parent.name if path.name == "aoi.geojson" else path.stem):
        return False  # the file's own name, or --name
    return all(word in GENERIC_NAME_WORDS for word in re.findall(r"[^\W\d_]+", name.lower()))  # letters, any script


def challenge_body(name: str, project_id: int, *, instruction: str, checkin_comment: str,
                   thresholds: PriorityThresholds, aoi: str | None, warning: str | None,
                   evidence: str | None = "imagery", challenge: str | None = None) -> dict[str, Any]:
    """The flattened challenge JSON for POST /challenge and PUT /challenge/:id. ``aoi``: the
    AOI's name (:func:`public_aoi_name`); None: it has none, and the texts name the challenge
    (``challenge``, the name every part shares; default ``name``)."""
    where = f"area {aoi}" if aoi is not None else "in this challenge's area"
    blurb = (f"Missing roads in {aoi}, found by osmgap" if aoi is not None else
             f"{challenge or name}: missing roads found by osmgap")
    description = (f"Roads that osmgap found {FOUND_ON.get(evidence, FOUND_ON[None])} but not in OpenStreetMap, "
                   f"{where}. Each task is one piece of a missing road, farther than the tolerance from every "
                   "mapped road; the missing road it belongs to is at least the minimum length, or joins two "
                   "mapped roads.")
    if warning:
        description += f"\n\n**{warning}**"
    return {"name": name, "parent": int(project_id), "description": description,
            "blurb": blurb, "instruction": instruction,
            "checkinComment": checkin_comment, "checkinSource": "osmgap",
            **priority_rules(thresholds)}


def differs(body: dict[str, Any], existing: dict[str, Any]) -> list[str]:
    """Fields of ``body`` that the server's challenge does not already have (rules compared as
    JSON, since the server answers them as objects)."""
    out = []
    for key, value in body.items():
        have = existing.get(key)
        if key.endswith("PriorityRule"):
            value, have = json.loads(value), _server_rule(have)
        if value != have:
            out.append(key)
    return out


def _server_rule(have: Any) -> Any:
    """A rule as the server answered it, read as JSON where it is text; text that is no JSON
    (or nested too deeply for the parser) is None, so the rule differs and is sent again."""
    if not isinstance(have, str):
        return have
    try:
        return json.loads(have)
    except (ValueError, RecursionError):
        return None


def _rule_text(rule: dict[str, Any]) -> str:
    return json.dumps(rule, separators=(",", ":"), sort_keys=True)
