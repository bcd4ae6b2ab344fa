"""The OSM readers keep railway lines apart as ways mapped as something other than a road
(RoadNetwork.other_ways, osmgap.core.osmtags.OTHER_LINES), on their level, from a .pbf, an .osm
XML file and an Overpass answer alike (the Overpass query asks for them); tram lines, platforms
and railways embedded in a street are not read. Checked against a plain osmium read of the same
real files."""
from __future__ import annotations

import json
from pathlib import Path

import osmium

from osmgap.core.aoi import Aoi, load_aoi
from osmgap.core.osmtags import OTHER_LINES
from osmgap.sources.osm import load_osm
from osmgap.sources.overpass import overpass_cache_path, overpass_query

OVERPASS_FIXTURE = Path(__file__).parent.parent / "data" / "overpass_west_oakland.json"
OVERPASS_BBOX = "-122.3040,37.8035,-122.2975,37.8085"  # the recorded answer's AOI
BART = {50969015, 51049060}  # BART's aerial through West Oakland: railway=subway, bridge=yes, layer=1


def _railways(path: Path) -> dict[int, dict[str, str]]:
    """The railway=* ways of a file with at least two of their nodes in it (a line, not a way
    that only touches the extract)."""
    processor = (osmium.FileProcessor(str(path), osmium.osm.NODE | osmium.osm.WAY).with_locations()
                 .with_filter(osmium.filter.EntityFilter(osmium.osm.WAY)))
    return {w.id: dict(w.tags) for w in processor
            if "railway" in w.tags and sum(n.location.valid() for n in w.nodes) >= 2}


def _everywhere(path: Path) -> Aoi:
    return Aoi(load_aoi("-180,-85,180,85").geometry, name="everywhere", source=str(path))


def test_helsinki_railways_are_other_ways(helsinki, data: Path):
    railways = _railways(data / "osm" / "helsinki.osm.pbf")
    lines = {i: t["railway"] for i, t in railways.items() if t["railway"] in ("rail", "subway", "abandoned")}
    assert len(lines) >= 140 and set(lines.values()) == {"rail", "subway", "abandoned"}
    others = helsinki.other_ways
    read = dict(zip(others.osm_id, others.what))
    assert {i: read.get(i) for i in lines} == {i: f"railway={v}" for i, v in lines.items()}
    levels = dict(zip(others.osm_id, others.level))
    assert {levels[i] for i, v in lines.items() if v == "subway"} == {-4}  # the metro, in its tunnel
    assert {levels[i] for i, v in lines.items() if v == "rail"} == {0}
    trams_and_platforms = {i for i, t in railways.items() if t["railway"] in ("tram", "platform") and "highway" not in t}
    assert len(trams_and_platforms) >= 200
    assert not trams_and_platforms & (set(read) | set(helsinki.ways.osm_id))


def test_oakland_xml_viaduct_is_an_other_way_above_the_street(data: Path):
    path = data / "osm" / "west-oakland.osm"
    assert {i for i, t in _railways(path).items() if t["railway"] == "subway" and t.get("layer") == "1"} == BART
    net = load_osm(str(path), _everywhere(path))
    others = net.other_ways[net.other_ways.osm_id.isin(BART)]
    assert sorted(zip(others.osm_id, others.what, others.level)) == [(i, "railway=subway", 1) for i in sorted(BART)]


def test_overpass_query_asks_for_railway_lines():
    query = overpass_query(load_aoi(OVERPASS_BBOX))
    values = "|".join(sorted(OTHER_LINES["railway"]))
    assert f'way["railway"~"^({values})$"](37.8035000,-122.3040000,37.8085000,-122.2975000);' in query
    assert "tram" not in query and "platform" not in query


def test_overpass_railways_are_other_ways(tmp_path: Path, data: Path, no_network):
    """The recorded answer plus BART's real ways and nodes, as Overpass returns them, and one of
    them again as if its track lay in a street (embedded=yes, a made-up id): BART is an other way
    on level 1; the embedded copy is nothing."""
    path = data / "osm" / "west-oakland.osm"
    ways = {w.id: ([n.ref for n in w.nodes], dict(w.tags)) for w in osmium.FileProcessor(str(path), osmium.osm.WAY)
            if w.id in BART}
    wanted = {n for refs, _ in ways.values() for n in refs}
    nodes = {n.id: (n.location.lon, n.location.lat) for n in osmium.FileProcessor(str(path), osmium.osm.NODE)
             if n.id in wanted}
    doc = json.loads(OVERPASS_FIXTURE.read_text(encoding="utf-8"))
    doc["elements"] += [{"type": "node", "id": i, "lon": lon, "lat": lat, "version": 1} for i, (lon, lat) in nodes.items()]
    doc["elements"] += [{"type": "way", "id": i, "nodes": refs, "tags": tags, "version": 1} for i, (refs, tags) in ways.items()]
    refs, tags = ways[min(BART)]
    doc["elements"].append({"type": "way", "id": 1, "nodes": refs, "tags": {**tags, "embedded": "yes"}, "version": 1})
    aoi = load_aoi(OVERPASS_BBOX)
    cache = overpass_cache_path(overpass_query(aoi), tmp_path)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(doc))
    net = load_osm("overpass", aoi, cache_dir=tmp_path)
    rail = net.other_ways[net.other_ways.what.str.startswith("railway=")]
    assert sorted(zip(rail.osm_id, rail.what, rail.level)) == [(i, "railway=subway", 1) for i in sorted(BART)]
    assert not BART & set(net.ways.osm_id)


def test_lifecycle_prefixed_railways_are_other_ways(tmp_path: Path, data: Path):
    """OSM's lifecycle form of an old line (abandoned:railway=rail, disused:railway=rail: the
    wiki's successor of railway=abandoned/disused) is read as railway=abandoned is: Helsinki's real
    railway=abandoned way, retagged each way in a copy of the extract; embedded in a street it is
    nothing, and a former tram line (abandoned:railway=tram) is nothing either, as trams are not."""
    source = data / "osm" / "helsinki.osm.pbf"
    old = next(i for i, t in _railways(source).items() if t["railway"] == "abandoned")
    forms = {"abandoned:railway": "rail", "disused:railway": "rail"}
    for key, value in [*forms.items(), ("abandoned:railway", "tram")]:
        for embedded in ("no", "yes"):
            path = tmp_path / f"{key.replace(':', '-')}-{value}-{embedded}.osm.pbf"
            with osmium.SimpleWriter(str(path)) as writer:
                for obj in osmium.FileProcessor(str(source)):
                    if obj.is_way() and obj.id == old:
                        tags = {k: v for k, v in obj.tags if k != "railway"} | {key: value, "embedded": embedded}
                        writer.add(obj.replace(tags=tags))
                    else:
                        writer.add(obj)
            net = load_osm(str(path), _everywhere(path))
            read = dict(zip(net.other_ways.osm_id, net.other_ways.what))
            want = f"{key}={value}" if value == "rail" and embedded == "no" else None
            assert read.get(old) == want, (key, value, embedded)
            assert old not in set(net.ways.osm_id)
