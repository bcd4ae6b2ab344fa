"""The OSM tag vocabulary osmgap reads and writes: road classes, levels (tunnel, bridge, layer),
one-way rules, and the form of tag values, texts and coordinates in the files it writes.

Every stage that reads a road's class, level or direction, or writes a tag, a text or a
coordinate, comes here, so the readers (OSM, candidates) and the writers (JOSM, GeoJSON,
MapRoulette) cannot drift apart. Why a closed vocabulary: candidate files come from strangers,
and a value such as ``tunnel=yes;highway=motorway;name=X`` must never become tags of its own
(osmgap once split level texts on ';' and '='); so a value is kept only when it is one OSM
documents for its key, and every other one is dropped and counted (``warn_dropped``).
"""
from __future__ import annotations

import datetime as dt
import logging
import math
import numbers
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path

log = logging.getLogger(__name__)

MAX_TAG_LEN = 255  # OSM API limit on a tag value
TEXT_LIMIT = 2000  # longest free text (a licence, a file name) written into a comment or property
# Code points XML 1.0 forbids (C0 controls but tab/LF/CR, lone surrogates, U+FFFE/U+FFFF) and the
# C1 controls it discourages: none may reach a file JOSM or a JSON reader opens.
_NOT_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_DASHES = re.compile("-{2,}")

# highway=* values a vehicle can drive on (or that imagery shows as a road surface); paths,
# steps, platforms, indoor corridors and unbuilt ways are not what a road model detects.
ROAD_CLASSES: frozenset[str] = frozenset({
    "motorway", "trunk", "primary", "secondary", "tertiary",
    "motorway_link", "trunk_link", "primary_link", "secondary_link", "tertiary_link",
    "unclassified", "residential", "living_street", "service", "road", "track",
    "pedestrian", "busway",
})
# highway=* values that say a line is no road, as candidate sources commonly give them; like every
# value outside ROAD_CLASSES they are left out (line_class), these without a warning.
NOT_ROADS: frozenset[str] = frozenset({"footway", "cycleway", "path", "steps", "bridleway", "corridor", "platform",
                                       "elevator", "proposed", "construction", "abandoned", "razed", "via_ferrata"})
# Ways OSM maps as something other than a road that imagery or traces may show as one (a paved
# path, a cycle track, a road being built, a runway): a suggestion along one is no missing road,
# it is mapped (osmgap.conflate.otherways); steps and indoor corridors too, which a source holding
# every highway=* line gives (real Helsinki: 22 false "missing roads" fewer, bench/conflation
# unchanged). Not platforms: bus platforms run along the curb, and hid deleted streets in
# bench/conflation (pooled recall seed 0 0.982 -> 0.977). The unbuilt (proposed) is read, and
# suggested as a retag (RETAG_INSTEAD): a road seen where one is only proposed has been built.
# Railways: a rail line, a surface metro or a disused line is a straight ballasted corridor that
# imagery shows as a road and official road data may hold. Real Helsinki, 290 of its 961 streets
# deleted, every road and its railway lines as candidates: 81 false "missing roads" on railway=rail,
# 4 on railway=abandoned, 1 on the metro (a levelled source's tunnel line); none with railways read,
# no deleted street lost (156 of 163 found, as before), bench/conflation unchanged (seeds 0-4).
# They meet a line only on its own level (osmgap.conflate.otherways.OWN_LEVEL_ONLY): metros run in
# tunnels under streets and on viaducts over them. Not railway=tram:
# tram tracks run inside streets, and read they hid the streets around them (bench/conflation
# pooled recall seed 0 0.982 -> 0.964, Helsinki 0.966 -> 0.917); nor a railway embedded in a street
# (RAIL_IN_STREET); nor the unbuilt (proposed) or gone (razed). Not railway=platform: a station's
# platform hid a pedestrian square beside it (bench/conflation seed 4, 0.9274 -> 0.9266), and no
# source here draws platforms as roads.
OTHER_LINES: dict[str, frozenset[str]] = {
    "highway": frozenset({"footway", "cycleway", "path", "bridleway", "trail", "construction", "raceway",
                          "bus_guideway", "escape", "abandoned", "disused", "proposed", "steps", "corridor"}),
    "aeroway": frozenset({"runway", "taxiway"}),
    "leisure": frozenset({"track"}),
    "railway": frozenset({"rail", "light_rail", "narrow_gauge", "subway", "monorail", "funicular", "preserved",
                          "miniature", "disused", "abandoned", "construction"}),
    # the same lines out of use, tagged with OSM's lifecycle prefixes (railway=abandoned's successor
    # on the wiki): the corridor stays, often a track or a trail on the old ballast
    **{f"{life}:railway": frozenset({"rail", "light_rail", "narrow_gauge", "subway", "monorail", "funicular",
                                     "preserved", "miniature"}) for life in ("disused", "abandoned")},
}
RAILWAY_KEYS = tuple(key for key in OTHER_LINES if key.endswith("railway"))
# OSM wiki Key:embedded: a railway (other than a tram, where it is implied) whose track lies in a
# street's surface says so, embedded=yes; it runs inside that street, so, as a tram, it is no other way
RAIL_IN_STREET = "embedded"
# A road under construction (highway=construction, construction=* a road class or not said) whose
# opening_date has passed, or, without one, that nobody edited for STALE_CONSTRUCTION_DAYS (Osmose's
# "finished construction?" check, item 4070): a road seen along it has likely been built and the
# way never retagged (real Kotka: way 40640266, construction=tertiary, untouched since 2015).
FINISHED_CONSTRUCTION = "highway=construction, likely finished"
STALE_CONSTRUCTION_DAYS = 2 * 365
EDITED_KEY = "@timestamp"  # a way's last edit as osmium export names it; the readers add it from the metadata
# of OTHER_LINES, the ways a road seen along is still suggested, as a retag of that way: a proposed
# road the imagery shows has been built, and so has a road whose construction is likely finished
RETAG_INSTEAD = frozenset({"highway=proposed", FINISHED_CONSTRUCTION})
# a road out of use or gone (its value a road class), mapped so on purpose: razed:, demolished:,
# removed:, destroyed: and was: are how OSM keeps a road that old imagery still shows from being
# drawn again (the wiki's lifecycle prefixes), which is what osmgap would otherwise ask for
LIFECYCLE_KEYS = ("abandoned:highway", "disused:highway", "razed:highway", "demolished:highway", "removed:highway",
                  "destroyed:highway", "was:highway")
# Suggestion.evidence["confidence_source"] where the road source gives no confidence of its own and
# every line counted ConflateParams.default_confidence: a figure nobody measured, said as such in
# the fixme, the GeoJSON and the MapRoulette instruction.
CONFIDENCE_ASSUMED = "assumed"
UNKNOWN_CLASS = "road"  # OSM's highway=road: a road whose class is not known
_HIGHWAY_VALUE = re.compile(r"[a-z][a-z0-9_]*")  # the form of every highway=* value the OSM wiki documents

# OSM wiki Key:tunnel and Key:bridge, documented values (besides 'no').
TUNNEL_VALUES: frozenset[str] = frozenset({"yes", "building_passage", "culvert", "flooded", "avalanche_protector"})
BRIDGE_VALUES: frozenset[str] = frozenset({"yes", "viaduct", "aqueduct", "boardwalk", "cantilever", "covered",
                                           "low_water_crossing", "movable", "trestle"})
LAYER_MIN, LAYER_MAX = -5, 5  # OSM wiki Key:layer: valid values are the integers -5..5

NO_SEPARATION = {"", "no", "0", "false"}
# Tags that put a way on its own level: crossing such a way without a shared node is correct.
LEVEL_TAGS = ("bridge", "tunnel", "layer", "covered", "level")
# The tags that say which level a road is on (way_level); candidates may carry them too.
LEVEL_KEYS = ("tunnel", "bridge", "layer")
# The keys mapped_otherwise and way_level read: all a reader need keep of a way that is no road.
OTHER_WAY_KEYS = ("highway", *OTHER_LINES, *LIFECYCLE_KEYS, RAIL_IN_STREET, *LEVEL_KEYS, "construction", "opening_date",
                  EDITED_KEY)
_LEVEL_VALUES = {"tunnel": TUNNEL_VALUES, "bridge": BRIDGE_VALUES}


ONEWAY_FORWARD = {"yes", "1", "true"}
ONEWAY_BACKWARD = {"-1", "reverse"}
IMPLIED_ONEWAY_JUNCTIONS = {"roundabout", "circular"}


def direction(tags: dict, highway: str = "") -> int:
    """How a way may be driven: +1 only first node -> last, -1 only last -> first, 0 both
    (``oneway``; implied on roundabouts and motorways unless ``oneway=no``)."""
    oneway = str(tags.get("oneway", "")).strip().lower()
    if oneway in ONEWAY_FORWARD:
        return 1
    if oneway in ONEWAY_BACKWARD:
        return -1
    if oneway in ("no", "0", "false"):
        return 0
    implied = str(tags.get("junction", "")).lower() in IMPLIED_ONEWAY_JUNCTIONS or str(highway) == "motorway"
    return 1 if implied else 0


def _given(value: object) -> str:
    """A source value as stripped text; '' where it gives none (None, NaN, empty). A whole number
    read as a float (an integer column with gaps becomes float: bridge=0 -> 0.0) is its integer."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        number = float(value)
        if math.isnan(number):
            return ""
        return str(int(number)) if number.is_integer() else str(number)
    return "" if value is None else str(value).strip()


def layer_number(value: object) -> int | None:
    """A ``layer`` value as OSM allows it (an integer -5..5, '2.0' read as 2), else None."""
    if isinstance(value, bool):
        return None
    try:
        number = float(_given(value))
    except ValueError:
        return None
    if not math.isfinite(number) or number != int(number) or not LAYER_MIN <= number <= LAYER_MAX:
        return None
    return int(number)


def road_class(value: object) -> str | None:
    """A ``highway`` value osmgap knows as a road class (any letter case), else None."""
    text = _given(value).lower()
    return text if text in ROAD_CLASSES else None


def mapped_otherwise(tags: Mapping, today: dt.date | None = None) -> str | None:
    """What OSM maps a way as (``highway=footway``, ``aeroway=taxiway``, ``railway=rail``,
    ``abandoned:highway``, FINISHED_CONSTRUCTION as of ``today``, default UTC's) when it is no
    road but may look like one (OTHER_LINES, LIFECYCLE_KEYS); None for a road (ROAD_CLASSES), a
    railway embedded in a street (RAIL_IN_STREET) and anything else. Of ``tags`` only
    OTHER_WAY_KEYS are read."""
    highway = tags.get("highway")
    if highway in ROAD_CLASSES:
        return None
    for key, values in OTHER_LINES.items():
        if tags.get(key) in values and not (key in RAILWAY_KEYS and _given(tags.get(RAIL_IN_STREET)) not in NO_SEPARATION):
            what = f"{key}={tags[key]}"
            return FINISHED_CONSTRUCTION if what == "highway=construction" and _finished(tags, today) else what
    return next((key for key in LIFECYCLE_KEYS if tags.get(key) in ROAD_CLASSES), None)


def _finished(tags: Mapping, today: dt.date | None) -> bool:
    """Whether a road's construction is likely finished (FINISHED_CONSTRUCTION): its opening_date
    passed, or none given and no edit for STALE_CONSTRUCTION_DAYS (EDITED_KEY). Not a path or a
    cycleway being built (construction=* of no road class)."""
    if _given(tags.get("construction")) not in ROAD_CLASSES | {""}:
        return False
    today = today or dt.datetime.now(dt.timezone.utc).date()
    opening = _last_day(tags.get("opening_date"))
    if opening is not None:
        return opening < today
    edited = _last_day(tags.get(EDITED_KEY))
    return edited is not None and (today - edited).days > STALE_CONSTRUCTION_DAYS


def _last_day(value: object) -> dt.date | None:
    """The last day a date as OSM gives it names (``2024-05-03``, ``2024-05``: its last day, ``2024``:
    31 December; an ISO time's day); None where it is no such date (``soon``, ``~2025``)."""
    m = re.fullmatch(r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:[T ].*)?)?)?", _given(value))
    if m is None:
        return None
    year, month, day = int(m[1]), int(m[2] or 12), int(m[3] or 0)
    try:
        return dt.date(year, month, day) if day else dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)
    except ValueError:
        return None


def no_class_given(value: object) -> bool:
    """Whether a line's highway cell gives no class: empty, or a text that says so as CSV, DBF and
    pandas exports write an empty cell (NULL, None, nan, N/A) and sources a class they do not know
    (unknown, as Overture does). Such a line is a road of no known class, as one with an empty cell
    is; read as a class, a source's missing values left its roads out."""
    return _given(value).lower() in {"", "null", "none", "nan", "n/a", "na", "<null>", "unknown"}


def line_class(value: object) -> str | None:
    """The class a road line of any source keeps, by the one rule the OSM readers apply (a way is
    read only when its ``highway`` is in ROAD_CLASSES): its road class (any letter case); None,
    the line left out, for a highway value that is no road class (footway, trail, bus_guideway:
    OSM's own ways of such a class are never read, so none can be a missing road); and
    ``UNKNOWN_CLASS`` when the source gives no class (``no_class_given``), or a text that is no
    highway value at all (``motorway;name=X``: no class, which ``way_tags`` counts as dropped)."""
    if no_class_given(value):
        return UNKNOWN_CLASS
    text = _given(value)
    cls = road_class(text)
    if cls is not None:
        return cls
    return None if _HIGHWAY_VALUE.fullmatch(text.lower()) else UNKNOWN_CLASS


def read_level_tags(tags: Mapping) -> tuple[dict[str, str], list[str]]:
    """The level tags among ``tags`` a new way on that level carries, and the keys whose value
    was dropped: ``tunnel``/``bridge`` with an OSM-documented value (lower case), ``layer`` an
    integer -5..5. Values that say 'surface' (empty, 'no', a lone layer 0) give no tag and are
    not dropped. Other keys of ``tags`` (a whole OSM way's tags) are not looked at."""
    if not any(key in tags for key in LEVEL_KEYS):  # most ways (~50,000 reads in a city's conflation)
        return {}, []
    out: dict[str, str] = {}
    dropped: list[str] = []
    for key in LEVEL_KEYS:
        text = _given(tags.get(key))
        if key == "layer":
            number = layer_number(text) if text else None
            if number is not None:
                out[key] = str(number)
        elif text.lower() in _LEVEL_VALUES[key]:
            out[key] = text.lower()
        elif text.lower() in NO_SEPARATION:
            continue
        if text and key not in out:
            dropped.append(key)
    if out == {"layer": "0"}:
        del out["layer"]  # the surface, said out loud
    return out, dropped


def level_tags(tags: Mapping) -> dict[str, str]:
    """``read_level_tags`` without the count: empty for a road on the surface."""
    return read_level_tags(tags)[0]


def way_level(tags: Mapping) -> int:
    """The level a road lies on: its ``layer`` when it has a valid one, else -1 for a tunnel
    (a building passage runs at street level), +1 for a bridge, 0 on the surface."""
    level = level_tags(tags)
    if "layer" in level:
        return int(level["layer"])
    if level.get("tunnel", "building_passage") != "building_passage":
        return -1
    return 1 if "bridge" in level else 0


def level_key(tags: Mapping) -> str:
    """``level_tags`` as one comparable text ('layer=-3;tunnel=yes'; '' on the surface)."""
    return ";".join(f"{k}={v}" for k, v in sorted(level_tags(tags).items()))


def from_level_key(key: str) -> dict[str, str]:
    """The tags of a ``level_key``, checked again: only the vocabulary comes back out."""
    return level_tags(dict(part.split("=", 1) for part in key.split(";") if "=" in part))


def way_tags(highway: object, level: Mapping, fixme: str | None = None) -> tuple[dict[str, str], list[str]]:
    """Every tag osmgap writes on a new way, and the keys it dropped: ``highway`` a road class
    ('road' when none is given or it is not one), the level tags (``read_level_tags``; any other
    key in ``level`` is dropped), and ``fixme`` when given (``tag_value``)."""
    cls = road_class(highway)
    dropped = ["highway"] if cls is None and _given(highway) else []
    checked, bad = read_level_tags(level)
    dropped += bad + [clean_text(k, 64) for k in level if k not in LEVEL_KEYS]
    tags = {"highway": cls or UNKNOWN_CLASS, **checked}
    if fixme is not None:
        tags["fixme"] = tag_value(fixme, "osmgap: check imagery")
    return tags, dropped


def count_dropped(ways: Iterable[tuple[object, Mapping]]) -> Counter:
    """How many values of each key ``way_tags`` drops over (highway, level tags) pairs."""
    return Counter(k for highway, level in ways for k in way_tags(highway, level)[1])


def warn_dropped(where: str | Path, dropped: Counter) -> None:
    """ONE warning for a file: how many values outside the vocabulary were dropped, per key."""
    dropped = +dropped  # keys counted zero times are no drop
    if not dropped:
        return
    per_key = ", ".join(f"{k}: {n}" for k, n in sorted(dropped.items()))
    log.warning("%s: dropped %d value(s) outside osmgap's vocabulary (%s): osmgap keeps only road highway "
                "classes, OSM's documented tunnel and bridge values, integer layers %d..%d and numeric confidences",
                clean_text(where), sum(dropped.values()), per_key, LAYER_MIN, LAYER_MAX)


def coord_text(value: float) -> str:
    """Coordinates with 7 decimals, the precision OSM stores (about 1 cm)."""
    if not math.isfinite(value):
        raise ValueError(f"coordinate is not finite: {value}")
    text = f"{value:.7f}"
    return "0.0000000" if text == "-0.0000000" else text


def clean_text(value: object, limit: int = TEXT_LIMIT) -> str:
    """Free text (a licence, a file name, a warning) any XML 1.0 or JSON reader accepts: code
    points XML forbids (controls, lone surrogates as undecodable file names give) become
    U+FFFD, runs of white space one space, and at most ``limit`` characters ('...' marks a cut)."""
    text = " ".join(_NOT_TEXT.sub("\ufffd", str(value)).split())
    return text if len(text) <= limit else text[:max(limit - 3, 0)].rstrip() + "..."


def tag_value(value: object, default: str) -> str:
    """A value OSM and XML 1.0 accept: ``clean_text`` of at most 255 characters, else ``default``."""
    return clean_text(value, MAX_TAG_LEN) or default


def comment_text(value: object) -> str:
    """The text of an XML comment: ``clean_text`` without '--' (XML forbids it inside a
    comment, and a '-' before the closing '-->'), padded with a space on each side."""
    return f" {_DASHES.sub('-', clean_text(value))} "
