"""OpenStreetMap roads of an AOI, from a .osm/.osm.pbf file, a GeoJSON export, or Overpass.

Whatever the source, the result is the same ``RoadNetwork``: road ways only (``ROAD_CLASSES``),
clipped to the AOI polygon, in WGS84. Sources with node ids (.osm, .pbf, Overpass) also fill
``RoadNetwork.nodes`` with id -> (version, lon, lat) for every node of a kept way, so a JOSM
writer can attach new ways to existing nodes with their real ids and versions. Every source also
gives the AOI's parking lots (``amenity=parking`` areas: closed ways and multipolygon relations,
or GeoJSON polygons), clipped to the AOI, as ``RoadNetwork.parking``: conflation reports the
roads it finds inside them as parking aisles (osmgap.conflate.parking).

``load_osm`` picks the reader from what ``--osm`` names; .osm/.osm.pbf files are read here through
osmium, GeoJSON in osmgap.sources.osm_geojson, Overpass in osmgap.sources.overpass, and every reader
assembles its network with osmgap.sources.osmways.
"""
from __future__ import annotations

import bz2
import datetime as dt
import gzip
import re
import tempfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any, cast

import geopandas as gpd
import numpy as np
import osmium
import shapely
from osmium.filter import EntityFilter, IdFilter, TagFilter
from shapely.geometry import LineString, Point

from osmgap.core.aoi import Aoi
from osmgap.core.datamodel import (  # why a road way could not be read whole: RoadNetwork.unreadable's reason
    CUT_AT_EDGE,
    MISSING_NODES,
    NO_GEOMETRY,
    NOT_A_LINE,
    NOT_FINITE,
    WGS84,
    RoadNetwork,
)
from osmgap.core.osmtags import (  # ROAD_CLASSES: the one vocabulary, re-exported here
    EDITED_KEY,
    LIFECYCLE_KEYS,
    OTHER_LINES,
    OTHER_WAY_KEYS,
    ROAD_CLASSES,
    mapped_otherwise,
    way_level,
)
from osmgap.errors import InputError, one_line
from osmgap.sources.osm_age import age_facts, edit_time, file_facts, header_time
from osmgap.sources.osm_extent import Bounds, check_reaches_aoi, partial_cover_warning, union_bounds
from osmgap.sources.osm_geojson import load_geojson
from osmgap.sources.osmways import (
    NOT_LOTS,
    UNREADABLE_REACH_DEG,
    Lot,
    NodeTable,
    NodeTags,
    OtherWay,
    Unreadable,
    Way,
    clip_lots,
    clip_to_aoi,
    known_line,
    near_aoi,
    near_other_ways,
    road_network,
    unknown_stretches,
    why_missing,
)
from osmgap.sources.overpass import OVERPASS_MAX_AGE_S, OVERPASS_SPEC, load_overpass, overpass_url

__all__ = ["CUT_AT_EDGE", "MISSING_NODES", "NO_GEOMETRY", "NOT_A_LINE", "NOT_FINITE", "NOT_LOTS", "ROAD_CLASSES",
           "file_format", "load_mapconstruction", "load_osm", "load_osmium_file", "mapconstruction_files"]

# File suffixes osmium reads (it picks the decoder and decompressor from the name).
_OSMIUM_SUFFIXES = {".osm.pbf": "pbf", ".pbf": "pbf", ".osm": "osm-xml", ".osm.bz2": "osm-xml",
                    ".osm.gz": "osm-xml"}
_GEOJSON_SUFFIXES = (".geojson", ".json")


def load_osm(spec: str, aoi: Aoi, cache_dir: Path | None = None, graph_crs: str | None = None,
             max_age_h: float | None = None) -> RoadNetwork:
    """Read the OSM roads of ``aoi`` from a file, (``spec == 'overpass'``) the Overpass API (its
    cached answer while younger than ``max_age_h`` hours, default OVERPASS_MAX_AGE_S), or a
    mapconstruction graph (``VERTICES,EDGES`` or a folder holding both) in ``graph_crs``."""
    if spec == OVERPASS_SPEC:
        return load_overpass(aoi, cache_dir, url=overpass_url(),
                             max_age_s=OVERPASS_MAX_AGE_S if max_age_h is None else max_age_h * 3600)
    graph_files = mapconstruction_files(spec)
    if graph_files is not None:
        return load_mapconstruction(graph_files, aoi, graph_crs)
    path = Path(spec)
    if not path.is_file():
        raise InputError(path, "OSM file not found")
    fmt = file_format(path)
    if fmt is None:
        raise InputError(path, "unknown OSM file type: expected .osm, .osm.pbf, .osm.bz2, "
                               ".geojson or .json, or the word 'overpass'")
    net = load_geojson(path, aoi) if fmt == "geojson" else load_osmium_file(path, aoi, fmt)
    net.provenance.update(file_facts(path))
    return net


def mapconstruction_files(spec: str) -> tuple[Path, Path] | None:
    """(vertices, edges) when ``spec`` names a mapconstruction graph, the way GPS benchmarks ship
    their map: ``VERTICES,EDGES`` or a folder holding one ``*vertices*.txt`` and one ``*edges*.txt``."""
    if "," in spec:
        vertices, edges = (Path(part) for part in spec.split(",", 1))
        for path in (vertices, edges):
            if not path.is_file():
                raise InputError(path, "mapconstruction graph file not found (--osm VERTICES,EDGES)")
        return vertices, edges
    folder = Path(spec)
    if not folder.is_dir():
        return None
    found = [sorted(folder.glob(f"*{part}*.txt")) for part in ("vertices", "edges")]
    if any(len(files) != 1 for files in found):
        raise InputError(folder, "a folder given as --osm must hold one *vertices*.txt and one *edges*.txt "
                                 "(a mapconstruction graph)")
    return found[0][0], found[1][0]


def load_mapconstruction(files: tuple[Path, Path], aoi: Aoi, crs: str | None) -> RoadNetwork:
    """Roads of ``aoi`` from a mapconstruction graph: one way per junction-to-junction chain
    (osmgap.sources.mapgraph), class ``road``, no tags, node ids or versions. Its edges that
    could not be read (a vertex it lacks) are unreadable ways, as an .osm way with missing nodes is."""
    from osmgap.sources.mapgraph import read_graph_and_defects  # only for benchmark graphs

    if crs is None:
        raise InputError(files[0], "a mapconstruction graph has bare coordinates: give their CRS with --osm-crs EPSG:N "
                                  "(--gps-crs in change and train)")
    frame, defects = read_graph_and_defects(*files, crs)
    frame = frame.to_crs(WGS84)
    ways = [Way(osm_id=int(i), highway="road", version=None, node_ids=None, tags={"highway": "road"}, geometry=g)
            for i, g in zip(frame.osm_id, frame.geometry)]
    clipped = clip_to_aoi(ways, aoi)
    if not clipped and len(frame):
        west, south, east, north = (float(v) for v in frame.total_bounds)
        check_reaches_aoi(files[0], aoi, (west, south, east, north))
    where = gpd.GeoSeries([g for _, g in defects.edges], crs=crs).to_crs(WGS84)
    unreadable = [Unreadable(eid, MISSING_NODES, g) for (eid, _), g in zip(defects.edges, where)]
    twice = (f"WARNING: {files[0]}: {len(defects.twice)} vertex id{'s' * (len(defects.twice) > 1)} given twice at "
             f"different positions ({', '.join(map(str, defects.twice[:5]))}{' ...' * (len(defects.twice) > 5)}): "
             "their edges are not read") if defects.twice else None
    return road_network(clipped, {}, source=f"{files[0]},{files[1]}", fmt="mapconstruction",
                        unreadable=near_aoi(unreadable, aoi), warning=twice)


def file_format(path: Path) -> str | None:
    """'pbf', 'osm-xml' or 'geojson' from the file name; None when osmgap cannot read it."""
    name = path.name.lower()
    for suffix in sorted(_OSMIUM_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return _OSMIUM_SUFFIXES[suffix]
    if name.endswith(_GEOJSON_SUFFIXES):
        return "geojson"
    return None


# --- .osm / .osm.pbf through osmium ------------------------------------------------------


def load_osmium_file(path: Path, aoi: Aoi, fmt: str = "pbf") -> RoadNetwork:
    """Roads of ``aoi`` from an OSM XML or PBF file, with node ids and versions.

    Streaming passes keep Python objects to the few that matter: the first sees only road
    ways (filtered in C++) with node locations; the next only the nodes of kept ways. A file
    whose ways come before their nodes, or that holds deleted objects, is read from a clean copy
    (``_live_nodes_first``).
    """
    try:
        xml = _xml_facts(path) if fmt == "osm-xml" else _XmlFacts([], frozenset())
        boxes, current = _header(path)
        declared = xml.bounds or boxes
        try:
            if xml.gone:
                raise _NotAsIs
            read = _read(path, aoi, want_extent=not declared, check_order=True)
        except _NotAsIs:
            with tempfile.TemporaryDirectory(prefix="osmgap-osm-") as tmp:
                read = _read(_live_nodes_first(path, xml.gone, Path(tmp)), aoi, want_extent=not declared,
                             check_order=False)
        if not read.ways:  # an unmapped place, or the wrong file: where does the file's data lie?
            check_reaches_aoi(path, aoi, union_bounds(declared) or read.extent)
    except (RuntimeError, osmium.InvalidLocationError, OSError, EOFError, zlib.error) as exc:  # how osmium
        # reports corrupt, truncated or unreadable input, and a coordinate such as lat="nan"; and the
        # decompressors the XML text pass uses
        why = one_line(exc)[:200]
        hint = "; sort it with `osmium sort IN -o OUT`" if "out of order" in why else ""
        raise InputError(path, f"cannot read OSM data ({why}){hint}") from None
    facts, stale = age_facts(path, current, read.newest)
    said = " ".join(w for w in (partial_cover_warning(path, aoi, declared), stale) if w) or None
    net = road_network(read.ways, read.nodes, source=str(path), fmt=fmt, lots=read.lots,
                       unreadable=near_aoi(read.unreadable, aoi), warning=said, node_tags=read.node_tags,
                       others=near_other_ways(read.others, aoi))
    net.provenance.update(facts)
    return net


@dataclass(frozen=True)
class _Read:
    """What one file gave for an AOI (``_read``)."""

    ways: list[Way]
    unreadable: list[Unreadable]
    others: list[OtherWay]
    newest: dt.datetime | None
    nodes: NodeTable
    node_tags: NodeTags
    lots: list[Lot]
    extent: Bounds | None  # where its roads lie, asked for when it has none in the AOI and declares no area


class _NotAsIs(Exception):
    """A file osmium cannot read as it is: read from a clean copy (``_live_nodes_first``)."""


def _read(data: Path, aoi: Aoi, want_extent: bool, check_order: bool) -> _Read:
    """The roads, their nodes and the parking lots of ``aoi`` in ``data``. _NotAsIs, when
    ``check_order``, for a file whose ways came before nodes it holds (Overpass turbo's
    ``out body; >; out skel qt;``): osmium's location index knows only the nodes it has seen, so
    every such way would read as "nodes missing from the file"."""
    read, unreadable, others, newest, missing = _scan_road_ways(data, aoi)
    if check_order and missing and _holds_a_node(data, missing):
        raise _NotAsIs
    ways = clip_to_aoi(read, aoi)
    wanted = {n for w in ways for n in (w.node_ids or ()) if n > 0}  # a new node (negative id) is no OSM node
    nodes, node_tags = _scan_nodes(data, wanted) if wanted else ({}, {})
    lots = clip_lots(_scan_parking(data), aoi)
    extent = _road_extent(data) if want_extent and not ways else None
    return _Read(ways, unreadable, others, newest, nodes, node_tags, lots, extent)


def _holds_a_node(path: Path, ids: set[int]) -> bool:
    """Whether the file holds any node of ``ids`` (positive ids: osmium's IdFilter takes no others)."""
    found = osmium.FileProcessor(str(path), osmium.osm.NODE).with_filter(IdFilter(ids))
    return next(iter(found), None) is not None


def _live_nodes_first(path: Path, gone: frozenset[tuple[str, int]], folder: Path) -> Path:
    """A copy of ``path`` in ``folder`` that osmium's one-pass readers read whole: its nodes, then
    its ways, then its relations, without the objects deleted in it (``gone``, and any osmium
    reads as not visible), so that no deleted road reads as a live one. One pass per kind: such
    files (saved from Overpass turbo or JOSM) are small."""
    copy = folder / "nodes-first.osm.pbf"
    with osmium.SimpleWriter(str(copy)) as writer:
        for kind in (osmium.osm.NODE, osmium.osm.WAY, osmium.osm.RELATION):
            for obj in cast("Iterable[osmium.osm.OSMObject[Any]]", osmium.FileProcessor(str(path), kind)):
                if obj.visible and (obj.type_str(), obj.id) not in gone:
                    writer.add(obj)
    return copy


@dataclass(frozen=True)
class _XmlFacts:
    """What osmium does not tell of an OSM XML file: every ``<bounds>`` (a file JOSM saved has one
    per download; osmium's header keeps the first) and the objects deleted in it, as (``'n'``,
    ``'w'`` or ``'r'``, id): JOSM keeps a deletion not yet uploaded as ``action="delete"``, which
    osmium ignores; ``visible="false"`` marks one too."""

    bounds: list[Bounds]
    gone: frozenset[tuple[str, int]]


_XML_CHUNK = 1 << 20
_XML_OPENERS: dict[str, Callable[[Path], IO[bytes]]] = {
    ".bz2": lambda p: cast("IO[bytes]", bz2.open(p, "rb")), ".gz": lambda p: cast("IO[bytes]", gzip.open(p, "rb"))}
_GONE_MARKS = (b"action='delete'", b'action="delete"', b"visible='false'", b'visible="false"')
_OBJECT_TAG = re.compile(rb"<(node|way|relation)\s([^>]*)>")
_FIRST_OBJECT = re.compile(rb"<(?:node|way|relation)[\s/>]")
_BOUNDS_TAG = re.compile(rb"<bounds\s([^>]*)>")
_ATTRIBUTE = re.compile(rb"""([\w:]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")


def _xml_facts(path: Path) -> _XmlFacts:
    """One streaming text pass over an OSM XML file (plain, .bz2 or .gz), a MiB at a time, each
    piece cut before a ``<`` (which no attribute value holds unescaped) so that no tag is split:
    the ``<bounds>`` before its first object, and its deleted objects (tags parsed only in the
    pieces that hold a deletion mark: most files have none)."""
    bounds: list[Bounds] = []
    gone: set[tuple[str, int]] = set()
    head, carry = True, b""
    with _XML_OPENERS.get(path.suffix.lower(), lambda p: p.open("rb"))(path) as f:
        while True:
            chunk = f.read(_XML_CHUNK)
            text = carry + chunk
            cut = text.rfind(b"<") if chunk else len(text)
            if cut <= 0:  # one tag so far: read on
                carry = text
                continue
            piece, carry = text[:cut], text[cut:]
            if head:
                first = _FIRST_OBJECT.search(piece)
                bounds += [b for b in map(_bounds_of, _BOUNDS_TAG.findall(piece[:first.start() if first else None]))
                           if b is not None]
                head = first is None
            if any(mark in piece for mark in _GONE_MARKS):
                gone.update(_deleted(kind, attributes) for kind, attributes in _OBJECT_TAG.findall(piece))
            if not chunk:
                break
    gone.discard(("", 0))
    return _XmlFacts(bounds, frozenset(gone))


def _attributes(text: bytes) -> dict[str, str]:
    return {k.decode(): (a or b).decode("utf-8", "replace") for k, a, b in _ATTRIBUTE.findall(text)}


def _deleted(kind: bytes, text: bytes) -> tuple[str, int]:
    """(osmium's type letter, id) of an object tag marked deleted; ('', 0) for any other."""
    said = _attributes(text)
    if said.get("action") != "delete" and said.get("visible") != "false":
        return "", 0
    try:
        return kind[:1].decode(), int(said["id"])
    except (KeyError, ValueError):
        return "", 0


def _bounds_of(text: bytes) -> Bounds | None:
    """West, south, east, north of a ``<bounds>`` tag; None for one that gives no box."""
    said = _attributes(text)
    try:
        west, south, east, north = (float(said[k]) for k in ("minlon", "minlat", "maxlon", "maxlat"))
    except (KeyError, ValueError):
        return None
    ok = all(np.isfinite((west, south, east, north))) and west <= east and south <= north
    return (west, south, east, north) if ok else None


def _header(path: Path) -> tuple[list[Bounds], dt.datetime | None]:
    """The area the file says it covers (a .osm.pbf header's or a .osm's first ``<bounds>``
    box) and when it says its data was current (osmgap.sources.osm_age.header_time), where it says so."""
    reader = osmium.io.Reader(str(path), osmium.osm.NOTHING)
    try:
        header = reader.header()
        b, current = header.box(), header_time(header)
    finally:
        reader.close()
    if not b.valid():
        return [], current
    return [(b.bottom_left.lon, b.bottom_left.lat, b.top_right.lon, b.top_right.lat)], current


def _road_extent(path: Path) -> Bounds | None:
    """The box around every road node of the file (a second pass, only when none is in the AOI)."""
    processor = (osmium.FileProcessor(str(path), osmium.osm.NODE | osmium.osm.WAY).with_locations()
                 .with_filter(EntityFilter(osmium.osm.WAY))
                 .with_filter(TagFilter(*(("highway", c) for c in sorted(ROAD_CLASSES)))))
    boxes = []
    for w in cast("Iterable[osmium.osm.Way]", processor):
        xy = np.array([(n.lon, n.lat) for n in w.nodes if n.location.valid()], dtype=float).reshape(-1, 2)
        if len(xy):
            boxes.append((*xy.min(axis=0), *xy.max(axis=0)))
    return union_bounds(boxes)


def _scan_road_ways(path: Path, aoi: Aoi) -> tuple[list[Way], list[Unreadable], list[OtherWay], dt.datetime | None,
                                                set[int]]:
    """Road ways whose bbox meets the AOI's bbox, geometry from the file's node locations (and
    the newest edit time among them, where the file has metadata), and in
    the same pass the ways mapped as something else that may look like a road (footways, roads
    under construction: RoadNetwork.other_ways; the line through their known nodes); a way
    with nodes the file lacks (an extract cut at its border, a broken file) is the line through
    its known nodes (it does connect them) and is also listed as unreadable, with where its
    unknown nodes may lie. Nodes with negative ids (not uploaded yet: a file JOSM saved) are
    located in a pass of their own, since osmium's location index holds positive ids only. Last,
    the positive ids of the nodes that ways near the AOI lack (``_read`` looks for them: a file
    whose ways come first)."""
    processor = (osmium.FileProcessor(str(path), osmium.osm.NODE | osmium.osm.WAY)
                 .with_locations()
                 .with_filter(EntityFilter(osmium.osm.WAY))
                 .with_filter(TagFilter(*_ROAD_OR_OTHER_TAGS)))
    reach = _reach(aoi)
    ways: list[Way] = []
    unreadable: list[Unreadable] = []
    others: list[OtherWay] = []
    deferred: list[tuple[Way, np.ndarray]] = []  # ways with new (negative-id) nodes, located below
    newest: dt.datetime | None = None
    missing: set[int] = set()
    for w in cast("Iterable[osmium.osm.Way]", processor):  # the entity filter passes ways only
        if not w.visible:  # deleted (a history file): no road
            continue
        if w.tags.get("highway") not in ROAD_CLASSES:
            _keep_other(w, reach, others)
            continue
        xy = np.array([(n.lon, n.lat) if n.location.valid() else (np.nan, np.nan) for n in w.nodes],
                      dtype=float).reshape(-1, 2)
        if np.isnan(xy[:, 0]).any() and any(n.ref < 0 for n in w.nodes):
            deferred.append((_way_of(w), xy))
        elif _near(xy, reach):  # the Way (its tags, its node list) only for the ways near the AOI
            way = _way_of(w)
            _keep_way(way, xy, ways, unreadable)
            missing.update(_lacked(way, xy))
            edited = edit_time(w.timestamp)
            newest = edited if edited is not None and (newest is None or edited > newest) else newest
    if deferred:
        located = _new_node_locations(path, {r for way, _ in deferred for r in way.node_ids or () if r < 0})
        for way, xy in deferred:
            for i, ref in enumerate(way.node_ids or ()):
                if ref in located:
                    xy[i] = located[ref]
            if _near(xy, reach):
                _keep_way(way, xy, ways, unreadable)
                missing.update(_lacked(way, xy))
    return ways, unreadable, others, newest, missing


def _lacked(way: Way, xy: np.ndarray) -> list[int]:
    """The positive ids of the nodes of ``way`` with no known position (NaN in ``xy``)."""
    lost = np.isnan(xy[:, 0])
    return [ref for ref, gone in zip(way.node_ids or (), lost) if gone and ref > 0] if lost.any() else []


# The (key, value) pairs of a road or another way (osmgap.core.osmtags.mapped_otherwise), so that
# osmium's C++ filter passes no other way to Python (every footway of a city is read; its parks' are not)
_ROAD_OR_OTHER_TAGS = sorted({("highway", c) for c in ROAD_CLASSES}
                             | {(key, value) for key, values in OTHER_LINES.items() for value in values}
                             | {(key, c) for key in LIFECYCLE_KEYS for c in ROAD_CLASSES})


def _keep_other(w: osmium.osm.Way, reach: tuple[float, float, float, float], others: list[OtherWay]) -> None:
    """Add ``w`` to ``others`` when it is mapped as something other than a road and lies near the
    AOI: its line made by osmium in C++ (a city has more footways than roads), or through its
    known nodes where the file lacks some."""
    tags = {key: w.tags[key] for key in OTHER_WAY_KEYS if key in w.tags}  # not all of a way's tags: slow in Python
    if tags.get("highway") == "construction" and (edited := edit_time(w.timestamp)) is not None:
        tags[EDITED_KEY] = edited.isoformat()  # a construction nobody touched for years is likely finished
    what = mapped_otherwise(tags)
    if what is None:
        return
    try:
        line = shapely.from_wkb(_WKB.create_linestring(w, osmium.geom.use_nodes.ALL))
    except (RuntimeError, osmium.InvalidLocationError):  # nodes the file lacks (cut at its edge): the known ones
        known = [(n.lon, n.lat) for n in w.nodes if n.location.valid()]
        if len(known) < 2:
            return
        line = LineString(known)
    minx, miny, maxx, maxy = line.bounds
    if minx <= reach[2] and maxx >= reach[0] and miny <= reach[3] and maxy >= reach[1]:
        others.append(OtherWay(w.id, what, line, way_level(tags)))


_WKB = osmium.geom.WKBFactory()


def _way_of(w: osmium.osm.Way) -> Way:
    return Way(osm_id=w.id, highway=w.tags["highway"], version=w.version or None, node_ids=[n.ref for n in w.nodes],
               tags=dict(w.tags), geometry=LineString())


def _near(xy: np.ndarray, reach: tuple[float, float, float, float]) -> bool:
    """A way with no known node may lie anywhere: kept, to be listed as unreadable if near."""
    known = xy[np.isfinite(xy).all(axis=1)]
    return not len(known) or _bbox_overlaps(known, reach)


def _keep_way(way: Way, xy: np.ndarray, ways: list[Way], unreadable: list[Unreadable]) -> None:
    """Add ``way`` (its nodes at ``xy``, NaN where unknown) to ``ways`` and/or ``unreadable``."""
    known = xy[np.isfinite(xy).all(axis=1)]
    line = known_line(xy)
    if line is not None:
        ways.append(replace(way, geometry=line))
    if len(known) < len(xy):
        unreadable.append(Unreadable(way.osm_id, why_missing(xy), unknown_stretches(xy)))
    elif line is None:  # one node, none, or all in one place: no line, but a road is there
        unreadable.append(Unreadable(way.osm_id, NOT_A_LINE, Point(known[0]) if len(known) else Point()))


def _new_node_locations(path: Path, wanted: set[int]) -> dict[int, tuple[float, float]]:
    """(lon, lat) of the ``wanted`` negative-id nodes: a file JOSM saved holds few, so one plain pass."""
    processor = osmium.FileProcessor(str(path), osmium.osm.NODE)
    return {n.id: (n.location.lon, n.location.lat) for n in cast("Iterable[osmium.osm.Node]", processor)
            if n.id in wanted and n.location.valid()}


def _reach(aoi: Aoi) -> tuple[float, float, float, float]:
    """The AOI's bbox grown by UNREADABLE_REACH_DEG."""
    minx, miny, maxx, maxy = aoi.bounds
    m = UNREADABLE_REACH_DEG
    return minx - m, miny - m, maxx + m, maxy + m


def _bbox_overlaps(xy: np.ndarray, bounds: tuple[float, float, float, float]) -> bool:
    """Cheap rejection before any shapely geometry is built."""
    minx, miny, maxx, maxy = bounds
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    return lo[0] <= maxx and hi[0] >= minx and lo[1] <= maxy and hi[1] >= miny


def _scan_nodes(path: Path, node_ids: set[int]) -> tuple[NodeTable, NodeTags]:
    """id -> (version, lon, lat) for ``node_ids``, and the tags of those that have any; ids
    absent from the file are left out."""
    processor = (osmium.FileProcessor(str(path), osmium.osm.NODE)
                 .with_filter(IdFilter(node_ids)))
    table: NodeTable = {}
    tags: NodeTags = {}
    for n in cast("Iterable[osmium.osm.Node]", processor):
        if n.location.valid():
            table[n.id] = (n.version or None, n.location.lon, n.location.lat)
            if len(n.tags):
                tags[n.id] = {t.k: t.v for t in n.tags}
    return table, tags


def _scan_parking(path: Path) -> list[Lot]:
    """``amenity=parking`` areas, assembled by osmium from closed ways and multipolygon
    relations; a lot whose nodes the extract lacks (cut at its border) cannot be, and is left out."""
    lot_filter = TagFilter(("amenity", "parking"))
    processor = osmium.FileProcessor(str(path)).with_areas(lot_filter).with_filter(lot_filter)
    wkb = osmium.geom.WKBFactory()
    lots: list[Lot] = []
    for obj in cast("Iterable[osmium.osm.OSMObject[Any]]", processor):  # a data file holds no changesets
        if not obj.is_area():
            continue
        assert isinstance(obj, osmium.osm.Area)  # what is_area() tests
        try:
            geometry = shapely.from_wkb(wkb.create_multipolygon(obj))
        except RuntimeError:  # osmium: an invalid location or ring
            continue
        lots.append(Lot("way" if obj.from_way() else "relation", obj.orig_id(), obj.tags.get("parking"), geometry))
    return lots
