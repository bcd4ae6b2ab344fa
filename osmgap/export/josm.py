"""suggestions.osm: proposed roads as new OSM ways for a mapper to check in JOSM.

What JOSM's reader (OsmReader, Debian josm r18646) fixes:
- root ``upload="false"`` is UploadPolicy.DISCOURAGED: JOSM asks before uploading the layer.
  Not ``"never"`` (BLOCKED): Layer > Merge gives the data layer the stricter policy of the
  two (DataSetMerger), so merging the suggestions into the mapper's data blocked the upload
  of all of it, and copy and paste makes new nodes of the existing ones a way joins (its joins
  lost, duplicate nodes). Not ``locked="true"`` either: a mapper must be able to fix a way.
- an existing OSM node a new way joins is written as it is in the OSM input: id, version and
  all its tags (a merge with equal versions takes the merged file's copy: a node without its
  tags would silently lose them).
- new objects have negative ids and no version; JOSM treats them as new without any
  ``action`` (its own files add ``action="modify"``, which a new object does not need).
- an existing OSM node that a new way joins keeps its real id and version and has no action
  (JOSM refuses a positive id without a version).
Each way carries ``highway`` and a human ``fixme``, and, where levelled evidence put it in a
tunnel or on a bridge, that evidence's ``tunnel``/``bridge``/``layer`` (real OSM tags a mapper keeps,
so the way is not drawn as a road on top of the street it passes under or over, and a ``fixme``
that asks for what imagery cannot show: a tunnel's portals, a bridge's ends); the suggestion id
travels in an XML comment,
which JOSM drops, so no tool hint ever reaches an uploadable tag (MapWithAI-style ``conn=``
hints included: a connection is either a shared existing node or a sentence in ``fixme``).
A suggestion end joined to an existing OSM node carries that node's exact coordinates, so it is
written as the node itself (osmgap.conflate.suggestions); an end that meets a way between its nodes is
a new node, and the ``fixme`` names the way it must be joined to. Any vertex at the spot of an
existing node (or of another new way's vertex) becomes that node, except an inner vertex of a
tunnel or bridge: it meets other levels only at its ends, where it lands; an inner vertex of one
where such a node lies is left out (a second node there would be a duplicate node).

Every tag comes from the one vocabulary (osmgap.core.osmtags.way_tags): a value outside it is
dropped with one warning naming the file, so no text from a candidate file becomes a tag of its
own; every comment goes through osmgap.core.osmtags.comment_text (no '--', no character XML
forbids), so JOSM opens the file whatever licence text or file name the run was given.

No ``<bounds>``: JOSM reads one as an area whose OSM data the file holds (a DataSource, the
"downloaded area"), which this file does not. With it, JOSM took the existing nodes a way joins
(their ways not in the file) for data inside a downloaded area, so it did not ask before they were
deleted or merged, and Layer > Merge added the whole AOI to the data layer's downloaded area (real
Helsinki, a layer downloaded for the AOI's north part: 16,609 of its nodes outside the downloaded
area before the merge, 3,766 after). The AOI is said in a comment instead.

Comments JOSM drops, so what a mapper must know before uploading (a demonstration's roads are in
OSM already; the imagery is not cleared for tracing) is said in each way's ``fixme`` too
(``caution``), and otherwise the ``fixme`` asks to be removed once the way is checked, as the
MapRoulette osmChange's does (osmgap.maproulette.osmchange).
The file is serialized 1,000 elements at a time, never as one ElementTree: 100,000 suggestions of
10 vertices took 1.55 GB more memory that way, 0.64 GB now.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import chain, islice
from pathlib import Path
from typing import Any

from shapely.geometry import LineString

from osmgap import __version__
from osmgap.core.atomic import write_bytes_atomic
from osmgap.core.datamodel import Attachment, Suggestion
from osmgap.core.osmtags import (
    CONFIDENCE_ASSUMED,
    MAX_TAG_LEN,
    comment_text,
    coord_text,
    count_dropped,
    level_key,
    level_tags,
    warn_dropped,
    way_tags,
)

Bounds = tuple[float, float, float, float]  # minlon, minlat, maxlon, maxlat (WGS84)
ExistingNodes = Mapping[int, tuple[int | None, float, float]]  # RoadNetwork.nodes
NodeTags = Mapping[int, Mapping[str, str]]  # RoadNetwork.node_tags
Coord = tuple[str, str]  # (lon, lat) written with 7 decimals: equal text means one node

# Kinds whose geometry is a road to draw; the others point at existing OSM ways or junctions,
# and drawing them as new ways would only invite duplicates.
NEW_GEOMETRY_KINDS = {"missing_road": "possible missing road",
                      "missing_link": "possible missing connection",
                      "appeared_road": "road built since the earlier image (osmgap change)"}
REMOVE_WHEN_DONE = ", then remove this fixme"  # JOSM's validator never asks: a checked way would keep it


def osm_xml(suggestions: list[Suggestion], bounds: Bounds, generator: str = "osmgap", *,
            existing_nodes: ExistingNodes | None = None, node_tags: NodeTags | None = None,
            notes: Sequence[str] = (), graph_ids: bool = False, caution: str = "") -> bytes:
    """OSM XML 0.6 bytes for JOSM; the same input always gives the same bytes.

    Ways are written in the order of ``suggestions``; kinds that are not new geometry are left
    out. Vertices that coincide at 7 decimals become one node, so touching suggestions stay
    connected; where ``existing_nodes`` (id -> (version, lon, lat)) has a node with a known
    version at that spot, the way joins it instead. ``bounds`` (the AOI) is said in a comment,
    not as ``<bounds>`` (module docstring); ``caution`` goes into every way's ``fixme``.
    """
    root = ET.Element("osm", {"version": "0.6", "generator": f"{generator} {__version__}",
                              "upload": "false"})
    nodes = _NodeTable(existing_nodes or {}, node_tags or {})
    drawable = [s for s in suggestions if s.kind in NEW_GEOMETRY_KINDS]
    vertices = _on_levels([_line_keys(s.geometry) for s in drawable], [level_key(s.level_tags) for s in drawable],
                          set(nodes.existing))
    ways = [(s, nodes.refs(keys)) for s, keys in zip(drawable, vertices) if len(keys) >= 2]
    first_way_id = -len(nodes.new_keys) - 1
    comments = [ET.Comment(comment_text(note)) for note in [*notes, _aoi_note(bounds)]]
    drawn = (_way_element(first_way_id - i, s, refs, graph_ids, caution) for i, (s, refs) in enumerate(ways))
    return _serialized(root, chain(comments, nodes.elements(), drawn))


def _serialized(root: ET.Element, children: Iterable[ET.Element[Any]], batch: int = 1000) -> bytes:
    """``root`` with ``children`` as ``ET.indent(root, "  ")`` and ``ET.tostring`` would write it,
    ``batch`` children at a time (``children`` may be a generator): no tree of the whole file in
    memory, and not one ``tostring`` call per element either (twice as slow)."""
    start = ET.tostring(root, encoding="unicode")  # '<osm ... />': no child yet
    out = bytearray(f"<?xml version='1.0' encoding='UTF-8'?>\n{start.removesuffix(' />')}>\n".encode())
    pending = iter(children)
    while group := list(islice(pending, batch)):
        holder = ET.Element("_")
        holder.extend(group)
        ET.indent(holder, space="  ")
        out += ET.tostring(holder, encoding="utf-8")[len(b"<_>\n"):-len(b"</_>")]  # each child "  <...>\n"
    out += b"</osm>\n"
    return bytes(out)


def _aoi_note(bounds: Bounds) -> str:
    minlon, minlat, maxlon, maxlat = _checked(bounds)
    return (f"Area of interest: lon {coord_text(minlon)}..{coord_text(maxlon)}, lat {coord_text(minlat)}.."
            f"{coord_text(maxlat)}. This file holds no OSM data of it, only suggested ways (and the existing "
            "nodes they join): download the area's OSM data to check them against.")


def write_josm(path: str | Path, suggestions: list[Suggestion], bounds: Bounds, *,
               generator: str = "osmgap", existing_nodes: ExistingNodes | None = None,
               node_tags: NodeTags | None = None, notes: Sequence[str] = (), graph_ids: bool = False,
               caution: str = "") -> None:
    """Write :func:`osm_xml` atomically, so JOSM never opens half a file; one warning names the
    file if a suggestion had a tag value outside the vocabulary (dropped)."""
    write_bytes_atomic(path, osm_xml(suggestions, bounds, generator, existing_nodes=existing_nodes,
                                     node_tags=node_tags, notes=notes, graph_ids=graph_ids, caution=caution))
    warn_dropped(path, count_dropped((s.highway, s.level_tags) for s in suggestions if s.kind in NEW_GEOMETRY_KINDS))


def fixme_text(suggestion: Suggestion, graph_ids: bool = False, caution: str = "") -> str:
    """The sentence a mapper reads in JOSM; it names the tool and says what to check, and which
    OSM way an end must still be joined to where no existing node lies at that end (with
    ``graph_ids``, the roads came from a graph whose way ids are no OSM ids: the end is given as
    lat,lon, and the id said to be the graph's; ``_graph_joins``). Imagery
    shows no tunnel and not where a bridge's deck ends: a way on its own level asks for what the
    levelled road lines it came from must be checked for (osmgap.export.josm.level_check).
    ``caution`` (what the mapper must know before uploading) comes right after that, where the
    255 characters of a tag never cut it; without one the text asks for the fixme's removal once
    checked, where that fits (an uploaded "possible missing road" fixme would stay on the road)."""
    phrase = NEW_GEOMETRY_KINDS.get(suggestion.kind, suggestion.kind.replace("_", " "))
    check = level_check(level_tags(suggestion.level_tags)) or "check imagery"
    said = ("no confidence given by its source" if suggestion.evidence.get("confidence_source") == CONFIDENCE_ASSUMED
            else f"confidence {suggestion.confidence:.2f}")
    head = f"osmgap: {phrase}, {check} ({said})"
    rest = ""
    proposed = suggestion.evidence.get("retag_way")  # osmgap.conflate.otherways: RETAG_INSTEAD
    if isinstance(proposed, int):  # before the joins, so that the 255 characters of a tag keep it
        rest += (f"; OSM has way {proposed} here as {suggestion.evidence.get('retag_way_now', 'highway=proposed')}: "
                 "if built, retag that way rather than add this one")
    loose = [j for j in suggestion.joins if j.node_id is None]
    if loose and graph_ids:
        rest += f"; {_graph_joins(suggestion, loose)}"
    elif loose:
        ends = "; ".join(f"join its {'first' if j.end == 0 else 'last'} node to way {j.way_id}" for j in loose)
        rest += f"; {ends}"
    twin = suggestion.evidence.get("second_carriageway_of")  # osmgap.gps.carriageways
    if isinstance(twin, int):
        of = f"the road beside it (mapconstruction graph edge {twin}, not an OSM way)" if graph_ids else f"way {twin}"
        rest += f"; other carriageway of {of}: if so, tag both oneway=yes (drawn in this one's direction)"
    if caution:
        return f"{head}; {caution}{rest}"
    asked = f"{head}{REMOVE_WHEN_DONE}{rest}"
    return asked if len(asked) <= MAX_TAG_LEN else head + rest


def _graph_joins(suggestion: Suggestion, loose: list[Attachment]) -> str:
    """Where each loose end must be joined, for roads from a mapconstruction graph: its ids are the
    benchmark's own (a chain's smallest edge id), which no map a mapper opens shows, so the end is
    given as lat,lon (JOSM's search and 'Jump to position' take it) and the id only as a reference."""
    coords = list(suggestion.geometry.coords) if suggestion.geometry.geom_type == "LineString" else []
    ends = []
    for j in loose:
        at = f" at {coords[j.end][1]:.5f},{coords[j.end][0]:.5f}" if coords else ""
        ends.append(f"join its {'first' if j.end == 0 else 'last'} node to the road{at}")
    ids = sorted({j.way_id for j in loose})
    many = len(ids) > 1
    return (f"{'; '.join(ends)} (mapconstruction graph edge{'s' if many else ''} {', '.join(map(str, ids))}, "
            f"not OSM way{'s' if many else ''})")


def level_check(level_tags: Mapping[str, str]) -> str:
    """What to check on a way drawn from levelled road lines (a tunnel, a building passage, a
    bridge, a layer), '' for one on the surface."""
    tunnel = str(level_tags.get("tunnel", "")).strip().lower()
    layer = level_tags.get("layer")
    which = f" (layer={layer})" if layer is not None else ""
    if tunnel == "building_passage":
        return "building passage from levelled road lines: check where it enters and leaves the building"
    if tunnel:
        return ("tunnel from levelled road lines (not visible on imagery): "
                f"check the portal positions and the layer{which}")
    if level_tags.get("bridge"):
        return f"bridge from levelled road lines: check where the bridge begins and ends and the layer{which}"
    if layer is not None:
        return f"on layer {layer} from levelled road lines: check the layer and where it meets other levels"
    return ""


Vertex = tuple[Coord, str]  # a position and the level it lies on ('' where ways may join there)


class _NodeTable:
    """One node per distinct 7-decimal coordinate and level; new nodes numbered -1, -2, ... in
    first use. A vertex on no particular level joins an existing node at its spot, unless a tag
    of that node cannot be written in XML exactly as it is (a control character, possible in a
    .pbf): the node would change on merge."""

    def __init__(self, existing: ExistingNodes, tags: NodeTags):
        self.tags = tags
        self.existing: dict[Coord, tuple[int, int]] = {}
        for node_id, (version, lon, lat) in sorted(existing.items()):
            if version is not None and node_id > 0 and all(map(_xml_writable, _flat(tags.get(node_id)))):
                self.existing.setdefault(_key(lon, lat), (node_id, int(version)))
        self.ids: dict[Vertex, int] = {}
        self.new_keys: list[Coord] = []
        self.used_existing: list[Coord] = []

    def refs(self, vertices: list[Vertex]) -> list[int]:
        return [self._id(v) for v in vertices]

    def _id(self, vertex: Vertex) -> int:
        if vertex not in self.ids:
            key, level = vertex
            if not level and key in self.existing:
                self.ids[vertex] = self.existing[key][0]
                self.used_existing.append(key)
            else:
                self.new_keys.append(key)
                self.ids[vertex] = -len(self.new_keys)
        return self.ids[vertex]

    def elements(self) -> Iterator[ET.Element]:
        """Existing nodes first (real id, version and every tag exactly as the input has it, no
        action: what JOSM merges into a data layer must be the node as it is, or the merge
        silently changes it), then the new ones."""
        for key in self.used_existing:
            node_id, version = self.existing[key]
            node = ET.Element("node", {"id": str(node_id), "version": str(version), "lat": key[1], "lon": key[0]})
            for k, v in sorted((self.tags.get(node_id) or {}).items()):
                ET.SubElement(node, "tag", {"k": k, "v": v})
            yield node
        for i, key in enumerate(self.new_keys):
            yield ET.Element("node", {"id": str(-1 - i), "lat": key[1], "lon": key[0]})


def _flat(tags: Mapping[str, str] | None) -> list[str]:
    return [text for kv in (tags or {}).items() for text in kv]


def _xml_writable(text: str) -> bool:
    """XML 1.0 can carry ``text`` (tab, newline and carriage return are written escaped)."""
    return not any((c < " " and c not in "\t\n\r") or "\ud800" <= c <= "\udfff" or c in "\ufffe\uffff"
                   for c in text)


def _on_levels(lines: list[list[Coord]], levels: list[str], existing: set[Coord]) -> list[list[Vertex]]:
    """Per way, its vertices with the level each lies on: the inner vertices of a way on its own
    level (a tunnel, a bridge) lie on that level, every other vertex on none (ways join there).
    An inner vertex of a levelled way at the spot of an existing node or of a vertex on another
    level is left out: it would connect two levels at a crossing, or duplicate a node."""
    placed = [[(key, level if level and 0 < i < len(keys) - 1 else "") for i, key in enumerate(keys)]
              for keys, level in zip(lines, levels)]
    seen: dict[Coord, set[str]] = {}
    for vertices in placed:
        for key, level in vertices:
            seen.setdefault(key, set()).add(level)
    out = []
    for vertices in placed:
        kept: list[Vertex] = []
        for key, level in vertices:
            if level and (key in existing or seen[key] != {level}):
                continue
            if not kept or kept[-1] != (key, level):
                kept.append((key, level))
        out.append(kept)
    return out


def _key(lon: float, lat: float) -> Coord:
    return coord_text(lon), coord_text(lat)


def _line_keys(geometry: LineString) -> list[Coord]:
    """Vertex keys of a line without the consecutive repeats that rounding can make
    (JOSM flags a way that visits the same node twice in a row)."""
    keys: list[Coord] = []
    for x, y, *_ in geometry.coords:
        key = _key(x, y)
        if not keys or keys[-1] != key:
            keys.append(key)
    return keys


def _checked(bounds: Bounds) -> Bounds:
    minlon, minlat, maxlon, maxlat = bounds
    if not (minlon <= maxlon and minlat <= maxlat):
        raise ValueError(f"bounds must be (minlon, minlat, maxlon, maxlat), got {bounds}")
    return bounds


def _way_element(way_id: int, suggestion: Suggestion, refs: list[int], graph_ids: bool, caution: str) -> ET.Element:
    way = ET.Element("way", {"id": str(way_id)})
    way.append(ET.Comment(comment_text(suggestion.id)))
    for ref in refs:
        ET.SubElement(way, "nd", {"ref": str(ref)})
    tags, _ = way_tags(suggestion.highway, suggestion.level_tags, fixme_text(suggestion, graph_ids, caution))
    for k, v in sorted(tags.items()):
        ET.SubElement(way, "tag", {"k": k, "v": v})
    return way
