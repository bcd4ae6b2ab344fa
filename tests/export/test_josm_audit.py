"""suggestions.osm as a mapper uses it in JOSM: opened beside (or merged into) a downloaded data
layer of the same area, each way reviewed and uploaded. Real Helsinki ways and nodes (ids,
versions, tags), real Paris sample geometry, and JOSM's own classes (Debian josm)."""
from __future__ import annotations

import json
import tracemalloc
import xml.etree.ElementTree as ET
from pathlib import Path

import osmium
import pytest
from shapely.affinity import translate
from shapely.geometry import LineString, shape

from osmgap.conflate.conflate import stable_id
from osmgap.core.datamodel import Attachment, Suggestion
from osmgap.core.osmtags import MAX_TAG_LEN
from osmgap.export.josm import osm_xml, write_josm
from osmgap.export.suggestion_files import write_suggestion_files
from tests.josm import JOSM_JAR, _java, josm_validate

STREET_OVER_TUNNEL = 29186154  # a real street of central Helsinki, every vertex an OSM node
HELSINKI_AOI = (24.9352, 60.1642, 24.9534, 60.1791)  # about the extract's roads
REMOVE_WHEN_DONE = ", then remove this fixme"
DEMONSTRATION_CAUTION = "DEMONSTRATION: this road is in OSM already, do not upload it"
NOT_CLEARED_CAUTION = "imagery not cleared for OSM: retrace it on permitted imagery"

# What JOSM does with a file's <bounds> (a DataSource: "downloaded area"), read by its own classes:
# per existing node of SUGG, whether Command's outlying check (what Delete, Merge Nodes, Combine
# Way ask about) takes it for outside the downloaded area; and how many nodes of the data layer
# DATA are outside it before and after Layer > Merge of SUGG into it (DataSetMerger).
OUTLYING_JAVA = """
import java.io.FileInputStream;
import java.util.Collections;
import org.openstreetmap.josm.command.Command;
import org.openstreetmap.josm.data.Preferences;
import org.openstreetmap.josm.data.osm.*;
import org.openstreetmap.josm.gui.progress.NullProgressMonitor;
import org.openstreetmap.josm.io.OsmReader;
import org.openstreetmap.josm.spi.preferences.Config;

public class Outlying {
    static DataSet read(String path) throws Exception {
        return OsmReader.parseDataSet(new FileInputStream(path), NullProgressMonitor.INSTANCE);
    }
    static int outside(DataSet ds) {
        int n = 0;
        for (Node node : ds.getNodes())
            if (!node.isNew() && (Command.checkOutlyingOrIncompleteOperation(Collections.singleton(node), null)
                                  & Command.IS_OUTSIDE) != 0) n++;
        return n;
    }
    public static void main(String[] args) throws Exception {
        Config.setPreferencesInstance(new Preferences());
        DataSet sugg = read(args[0]);
        int existing = 0;
        for (Node node : sugg.getNodes()) if (!node.isNew()) existing++;
        System.out.println("suggestions " + existing + " " + outside(sugg));
        DataSet data = read(args[1]);
        System.out.println("before " + outside(data));
        new DataSetMerger(data, read(args[0])).merge();
        System.out.println("after " + outside(data) + " " + data.getUploadPolicy());
    }
}
"""


def _street(helsinki) -> LineString:
    way = helsinki.ways[helsinki.ways["osm_id"] == STREET_OVER_TUNNEL].iloc[0]
    return LineString(way.geometry.coords)


def _suggestion(geom: LineString, **kw) -> Suggestion:
    return Suggestion(id=stable_id(geom), kind="missing_road", geometry=geom, length_m=100.0,
                      confidence=kw.pop("confidence", 0.8), highway=kw.pop("highway", "residential"), **kw)


def _fixmes(data: bytes) -> list[str]:
    return [t.get("v", "") for t in ET.fromstring(data).iter("tag") if t.get("k") == "fixme"]


def test_the_file_declares_no_downloaded_area_and_says_the_aoi_in_a_comment(helsinki):
    """A <bounds> tells JOSM the file holds the area's OSM data; this one holds none of it."""
    data = osm_xml([_suggestion(_street(helsinki))], HELSINKI_AOI, existing_nodes=helsinki.nodes)
    root = ET.fromstring(data, parser=ET.XMLParser(target=ET.TreeBuilder(insert_comments=True)))
    assert root.find("bounds") is None
    said = [c.text for c in root if c.tag is ET.Comment and "Area of interest" in (c.text or "")]
    assert said == [" Area of interest: lon 24.9352000..24.9534000, lat 60.1642000..60.1791000. This file holds "
                    "no OSM data of it, only suggested ways (and the existing nodes they join): download the "
                    "area's OSM data to check them against. "]
    with pytest.raises(ValueError, match="bounds must be"):
        osm_xml([], (1.0, 2.0, 0.0, 3.0))


@pytest.mark.slow  # runs JOSM
def test_josm_keeps_asking_before_the_joined_nodes_or_undownloaded_data_are_touched(helsinki, data, tmp_path):
    """The mapper downloaded OSM around one street of a larger AOI and merged suggestions.osm into
    that layer. With the file's <bounds>, JOSM took every existing node the suggested way joins
    for downloaded data (no question before deleting or merging a node whose ways it never saw),
    and the merge made the whole AOI "downloaded" in the data layer."""
    street = _street(helsinki)
    sugg = tmp_path / "suggestions.osm"
    write_josm(sugg, [_suggestion(street)], HELSINKI_AOI, existing_nodes=helsinki.nodes,
               node_tags=helsinki.node_tags)
    layer = tmp_path / "downloaded.osm"  # the real extract as a JOSM download around the street
    with osmium.SimpleWriter(str(layer)) as writer:
        for obj in osmium.FileProcessor(str(data / "osm" / "helsinki.osm.pbf")):
            writer.add(obj)
    minlon, minlat, maxlon, maxlat = street.buffer(0.001).bounds
    text = layer.read_text(encoding="utf-8")
    head = text.index(">", text.index("<osm")) + 1
    layer.write_text(f'{text[:head]}\n  <bounds minlat="{minlat:.7f}" minlon="{minlon:.7f}" maxlat="{maxlat:.7f}" '
                     f'maxlon="{maxlon:.7f}"/>{text[head:]}', encoding="utf-8")
    source = tmp_path / "Outlying.java"
    source.write_text(OUTLYING_JAVA)
    proc = _java(["-cp", str(JOSM_JAR), str(source), str(sugg), str(layer)], 300, "JOSM outlying check")
    out = dict(line.split(" ", 1) for line in proc.stdout.decode().splitlines()
               if line.startswith(("suggestions ", "before ", "after ")))
    assert proc.returncode == 0 and len(out) == 3, proc.stderr.decode()[-2000:]
    existing, outside = map(int, out["suggestions"].split())
    assert existing >= 4 and outside == existing  # JOSM asks before any of them is deleted or merged
    before = int(out["before"])
    after, policy = out["after"].split()
    assert before > 1000 and int(after) == before  # the merge marks no area as downloaded
    assert policy == "DISCOURAGED"  # upload="false" still asks before the upload


def _paris_suggestions(paris: Path) -> list[Suggestion]:
    """Three real streets of the Paris sample, moved 0.0003 degrees: roads new to OSM."""
    features = json.loads((paris / "osm_roads.geojson").read_text())["features"]
    lines = [LineString(shape(f["geometry"]).coords) for f in features[:3]]
    return [_suggestion(translate(g, 0.0003, 0.0003), confidence=0.9, highway="road") for g in lines]


def test_a_demonstrations_ways_say_in_josm_that_they_are_in_osm(paris, tmp_path):
    """A demonstration's suggestions are OSM streets taken out on purpose; the file said "do not
    upload" only in an XML comment, which JOSM drops: nothing a mapper sees in JOSM said it."""
    ways = _paris_suggestions(paris)
    write_suggestion_files(tmp_path, ways, (2.2812, 48.981, 2.2830, 48.9828), None, [],
                           {"demonstration": "Demonstration: 3 OSM ways were taken out ..."})
    fixmes = _fixmes((tmp_path / "suggestions.osm").read_bytes())
    assert len(fixmes) == 3 and all(DEMONSTRATION_CAUTION in f and REMOVE_WHEN_DONE not in f for f in fixmes)
    write_suggestion_files(tmp_path, ways, (2.2812, 48.981, 2.2830, 48.9828), None, [], {})
    assert not any(DEMONSTRATION_CAUTION in f for f in _fixmes((tmp_path / "suggestions.osm").read_bytes()))


def test_ways_traced_from_imagery_not_cleared_for_osm_say_so_in_josm(paris, tmp_path):
    """The warning that the imagery is not cleared for tracing into OSM was an XML comment only;
    the ways (model-traced geometry) were one confirmation away from an upload."""
    ways, aoi = _paris_suggestions(paris), (2.2812, 48.981, 2.2830, 48.9828)
    said = {}
    for cleared in (False, True, None):
        write_suggestion_files(tmp_path, ways, aoi, None, [], {}, imagery_cleared=cleared)
        said[cleared] = _fixmes((tmp_path / "suggestions.osm").read_bytes())
    assert all(NOT_CLEARED_CAUTION in f and REMOVE_WHEN_DONE not in f for f in said[False])
    assert all(NOT_CLEARED_CAUTION not in f and REMOVE_WHEN_DONE in f for f in said[True] + said[None])
    write_suggestion_files(tmp_path, ways, aoi, None, [], {"demonstration": "Demonstration"}, imagery_cleared=False)
    assert all(DEMONSTRATION_CAUTION in f and NOT_CLEARED_CAUTION not in f  # the demonstration's says more
               for f in _fixmes((tmp_path / "suggestions.osm").read_bytes()))


@pytest.mark.slow  # runs JOSM
def test_josm_shows_the_demonstration_caution_on_each_way(paris, tmp_path):
    write_suggestion_files(tmp_path, _paris_suggestions(paris), (2.2812, 48.981, 2.2830, 48.9828), None,
                           ["Demonstration: do not upload"], {"demonstration": "Demonstration: do not upload"})
    issues = josm_validate(tmp_path / "suggestions.osm", tmp_path / "josm")  # each way: "Unspecific highway type"
    seen = [i["properties"].get("fixme", "") for i in issues if i["properties"].get("@id", "").startswith("way/")]
    assert len(seen) == 3 and all(DEMONSTRATION_CAUTION in f for f in seen)


def test_the_fixme_asks_to_be_removed_once_checked_where_that_fits(helsinki):
    """JOSM's validator never asks about a fixme: a checked way was uploaded with "possible missing
    road" on it. The request comes after what to check; where the 255 characters of a tag would
    cut the ends to join, it is left out instead."""
    street = _street(helsinki)
    plain = _suggestion(street)
    (fixme,) = _fixmes(osm_xml([plain], HELSINKI_AOI))
    assert fixme == "osmgap: possible missing road, check imagery (confidence 0.80), then remove this fixme"
    long = _suggestion(street, joins=[Attachment(0, 1234567890), Attachment(-1, 1234567891)],
                       evidence={"retag_way": 1234567892, "retag_way_now": "highway=proposed"})
    (fixme,) = _fixmes(osm_xml([long], HELSINKI_AOI))
    assert len(fixme) <= MAX_TAG_LEN < len(fixme) + len(REMOVE_WHEN_DONE) and REMOVE_WHEN_DONE not in fixme
    assert fixme.endswith("; join its first node to way 1234567890; join its last node to way 1234567891")


def test_a_large_file_is_not_built_as_one_tree(helsinki):
    """4,076 real Helsinki ways (16,548 vertices, joined to their real nodes) as suggestions: the
    writer held the whole file as an ElementTree, 14 times the file's size at its peak (a
    100,000-suggestion file: 1.55 GB more memory); now 7 times (0.64 GB)."""
    lines = [g for g in helsinki.ways.geometry if g.geom_type == "LineString"]
    many = [_suggestion(translate(g, 0.002 * k, 0.0)) for k in range(4) for g in lines]
    tracemalloc.start()
    try:
        written = osm_xml(many, HELSINKI_AOI, existing_nodes=helsinki.nodes, node_tags=helsinki.node_tags)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(many) > 4000 and written.count(b"<way ") == len(many)
    assert peak < 10 * len(written), peak / len(written)


def test_the_bytes_are_what_elementtree_writes_for_the_whole_tree(helsinki):
    """Written one element at a time, the file is byte for byte the indented ElementTree of it."""
    lines = [g for g in helsinki.ways.geometry if g.geom_type == "LineString"][:1500]
    written = osm_xml([_suggestion(g) for g in lines], HELSINKI_AOI, existing_nodes=helsinki.nodes,
                      node_tags=helsinki.node_tags, notes=["Roads: © OpenStreetMap contributors (ODbL)."])
    root = ET.fromstring(written, parser=ET.XMLParser(target=ET.TreeBuilder(insert_comments=True)))
    assert len(root) > 2500  # > 1000 elements: more than one batch
    ET.indent(root, space="  ")
    assert ET.tostring(root, encoding="UTF-8", xml_declaration=True) + b"\n" == written
