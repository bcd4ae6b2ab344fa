"""A GPS-only run against a mapconstruction benchmark graph (real Chicago UIC graph): the JOSM
fixme told the mapper to join an end to "the road of graph edge 652", an id no map a mapper
opens shows. It now says where (lat,lon, which JOSM's search takes), and that the id is the
graph's."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from shapely.geometry import LineString, Point
from shapely.ops import nearest_points

from osmgap.core.aoi import reproject
from osmgap.core.datamodel import WGS84, Attachment, Suggestion
from osmgap.export.josm import osm_xml

UTM = "EPSG:32616"
AT = re.compile(r"join its (first|last) node to the road at (-?\d+\.\d{5}),(-?\d+\.\d{5})")


def _connection(ways) -> tuple[Suggestion, dict[int, LineString]]:
    """A 40-80 m line from the middle of one real graph road to the nearest point of another
    (a missing connection), its ends on no graph vertex: both loose."""
    roads = {int(i): g for i, g in zip(ways.osm_id, ways.geometry)}
    ids = sorted(roads)
    for a in ids:
        start = roads[a].interpolate(0.5, normalized=True)
        for b in ids:
            end = nearest_points(start, roads[b])[1]
            if b != a and 40 < start.distance(end) < 80 and roads[a].distance(roads[b]) > 20:
                line = reproject(LineString([start, end]), UTM, WGS84)
                s = Suggestion(id="s", kind="missing_road", geometry=line, length_m=start.distance(end),
                               confidence=0.7, joins=[Attachment(0, a), Attachment(-1, b)], attachments=[a, b])
                return s, {0: roads[a], -1: roads[b]}
    raise AssertionError("no two roads 40-80 m apart")


def _fixme(s: Suggestion) -> str:
    root = ET.fromstring(osm_xml([s], s.geometry.bounds, graph_ids=True))
    return root.find("way/tag[@k='fixme']").get("v")


def test_loose_ends_on_a_benchmark_graph_say_where_to_join(chicago_ways):
    s, roads = _connection(chicago_ways)
    a, b = s.joins[0].way_id, s.joins[1].way_id
    fixme = _fixme(s)
    found = AT.findall(fixme)
    assert [f[0] for f in found] == ["first", "last"], fixme
    for (which, lat, lon), end in zip(found, (0, -1)):  # each place lies on the graph road it is to be joined to
        here = reproject(Point(float(lon), float(lat)), WGS84, UTM)
        assert here.distance(roads[end]) < 1.5, (which, here.distance(roads[end]))
    assert fixme.endswith(f"(mapconstruction graph edges {min(a, b)}, {max(a, b)}, not OSM ways)")
    assert f"way {a}" not in fixme and f"way {b}" not in fixme and len(fixme) <= 255 and not fixme.endswith("...")


def test_second_carriageway_of_a_graph_road_is_not_called_an_osm_way(chicago_ways):
    s, _ = _connection(chicago_ways)
    twin = s.joins[0].way_id
    s.joins, s.evidence = [], {"second_carriageway_of": twin}
    fixme = _fixme(s)
    assert f"other carriageway of the road beside it (mapconstruction graph edge {twin}, not an OSM way)" in fixme
    assert f"way {twin}" not in fixme
