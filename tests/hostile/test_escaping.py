"""Hostile tag values and texts (issue 14, items 3 and 4), end to end through `osmgap diff`.

The promise: a stranger's candidate file or a careless argument puts no tag of its own into
suggestions.osm, suggestions.geojson or maproulette.geojson (a way carries ``highway``, ``fixme``
and valid ``tunnel``/``bridge``/``layer`` only: osmgap.core.osmtags); every dropped value is
counted in ONE warning naming the file; and JOSM opens every .osm, whatever text went into its
comments (licences, attributions, dates, file names with '--', control characters, lone
surrogates, ']]>', quotes and '<&>', very long text).

Real inputs only: the Kotka extract with three ways deleted and all its ways given back as a
levelled candidate source (their real tunnel/bridge/layer), the deleted ways carrying the hostile
values, so the roads that come back are the ones that carry them; the Paris sample (imagery,
fast, no model: --candidates) for the imagery texts. Every run is in-process, once, in a module
fixture; JOSM reads all the .osm files in one start (tests marked slow, as the project's JOSM
tests are).
"""
from __future__ import annotations

import html
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import osmium
import pandas as pd
import pytest

from osmgap.cli import main
from osmgap.core.osmtags import (
    BRIDGE_VALUES,
    ROAD_CLASSES,
    TUNNEL_VALUES,
    clean_text,
    comment_text,
    from_level_key,
    read_level_tags,
    way_level,
)
from osmgap.maproulette.osmchange import osmchange_xml
from tests.josm import JOSM_JAR, LOAD_FAILED, JosmError, josm_validate, parse_validator_output, severity
from tests.roads import as_candidates

DELETED = (62061739, 369836409, 75553162)  # a residential street, a parking aisle, a connector
KOTKA_BBOX = "26.9320,60.5190,26.9450,60.5250"
BACK = ["residential", "residential", "service"]  # the classes of the three ways that come back
INJECTION = "yes;highway=motorway;name=Injected Name;fixme=ok to upload"
MARKERS = (b"Injected", b"ok to upload", b"motorway", b"Name")  # none may reach an output file
PARIS_DELETED = (27236016, 27746679)
LEVEL = ("tunnel", "bridge", "layer")
EVIDENCE = {"evidence_unexplained_m", "evidence_beside_osm_share", "evidence_parking_aisle", "evidence_source",
            "evidence_confidence_source"}
ENDS = {"first_node", "last_node"}  # the existing OSM node an end lands on: a number or nothing
CORE = {"id", "kind", "length_m", "confidence", "highway", "priority", "routing_impact", "attachments"}
IMAGERY = {"imagery_licence", "imagery_attribution", "imagery_date", "warning"}


@dataclass(frozen=True)
class Case:
    """One hostile run. ``values``: properties the deleted ways' lines get (Kotka); ``args``:
    imagery texts (Paris); ``level``: the level tags every way that comes back must carry;
    ``highways``: the classes the ways come back with (None: their lines lost their class, so
    each is 'road' or the class a neighbouring piece merged into its edge gives it);
    ``dropped``: the counts the one warning must give (empty: no warning)."""

    values: dict = field(default_factory=dict)
    driver: str = "GeoJSON"
    name: str = "roads.geojson"
    level: dict = field(default_factory=dict)
    highways: tuple | None = tuple(BACK)
    dropped: dict = field(default_factory=dict)
    paris: bool = False
    args: dict = field(default_factory=dict)
    aoi_name: str | None = None


LONG = "yes" + ";highway=motorway" * 6000  # about 100 kB
SURROGATES = os.fsdecode(b"\xff\xfe")  # what Python makes of undecodable bytes in a name or an argument
CASES: dict[str, Case] = {
    # --- tag injection through a candidate file's properties (GeoJSON)
    "tunnel_injection": Case({"tunnel": INJECTION}, dropped={"tunnel": 3}),
    "bridge_injection": Case({"bridge": INJECTION}, dropped={"bridge": 3}),
    "layer_injection": Case({"layer": "1;highway=motorway;name=Injected Name"}, dropped={"layer": 3}),
    "layer_above_range": Case({"layer": "6"}, dropped={"layer": 3}),
    "layer_below_range": Case({"layer": "-99"}, dropped={"layer": 3}),
    "layer_fraction": Case({"layer": "0.5"}, dropped={"layer": 3}),
    "layer_nan_text": Case({"layer": "NaN"}, dropped={"layer": 3}),
    "highway_injection": Case({"highway": "motorway;name=Injected Name"}, highways=None,
                              dropped={"highway": 3}),
    "highway_xml_attribute": Case({"highway": 'residential" /><tag k="name" v="Injected Name'},
                                  highways=None, dropped={"highway": 3}),
    "tunnel_xml_attribute": Case({"tunnel": 'yes"/><tag k="fixme" v="ok to upload'}, dropped={"tunnel": 3}),
    "tunnel_control_chars": Case({"tunnel": "yes\n\x1bhighway=motorway\x7f"}, dropped={"tunnel": 3}),
    "bridge_lookalike_letters": Case({"bridge": "y\u0435s"}, dropped={"bridge": 3}),  # Cyrillic e
    "tunnel_very_long": Case({"tunnel": LONG}, dropped={"tunnel": 3}),
    "confidence_injection": Case({"confidence": "0.9;fixme=ok to upload"}, dropped={"confidence": 3}),
    "name_like_properties": Case({"name": "Injected Name", "fixme": "ok to upload", "note": "Injected Name",
                                  "id": "way/1", "kind": "motorway", "priority": "Injected Name",
                                  "osm_id": "1;name=Injected Name", "@id": "way/1"}),
    "valid_values_kept": Case({"bridge": " Viaduct ", "layer": "+1"}, level={"bridge": "viaduct", "layer": "1"}),
    "valid_tunnel_bad_layer": Case({"tunnel": "building_passage", "layer": "-6"},
                                   level={"tunnel": "building_passage"}, dropped={"layer": 3}),
    "surface_values_are_no_drop": Case({"tunnel": "no", "bridge": "false", "layer": "0"}),
    # --- the same through a GeoPackage (typed columns)
    "gpkg_tunnel_injection": Case({"tunnel": INJECTION}, driver="GPKG", name="roads.gpkg", dropped={"tunnel": 3}),
    "gpkg_layer_number_out_of_range": Case({"layer": 99.0}, driver="GPKG", name="roads.gpkg", dropped={"layer": 3}),
    "gpkg_highway_injection": Case({"highway": "motorway;fixme=ok to upload"}, driver="GPKG", name="roads.gpkg",
                                   highways=None, dropped={"highway": 3}),
    "gpkg_name_like_properties": Case({"name": "Injected Name", "fixme": "ok to upload"}, driver="GPKG",
                                      name="roads.gpkg"),
    # --- candidate file names that go into an XML comment and a GeoJSON property
    "file_name_dashes": Case(name="roads--x---y-.geojson"),
    "file_name_control_chars": Case(name="roads\x01\x1b\x7f\x85.geojson"),
    "file_name_surrogates": Case(name=f"roads-{SURROGATES}.geojson"),
    "file_name_markup": Case(name="roads]]><&>\"'.geojson"),
    "file_name_very_long": Case(name="r-" * 120 + ".geojson"),
    "gpkg_file_name_surrogates": Case(driver="GPKG", name=f"roads--{SURROGATES}.gpkg"),
    # --- imagery texts (Paris sample: --candidates with --imagery)
    "licence_dashes": Case(paris=True, args={"--imagery-licence": "CC-BY--SA --->x<!-- -"}),
    "attribution_control_chars": Case(paris=True, args={"--imagery-attribution": "Maxar\x00\x01\x08\x0b\x1f\x7f\x9f co"}),
    "date_cdata_end": Case(paris=True, args={"--imagery-date": "2016-01-01]]><![CDATA[x"}),
    "texts_surrogates": Case(paris=True, args={"--imagery-licence": f"L{SURROGATES}\ud800",
                                               "--imagery-attribution": f"A\udfff{SURROGATES}-"}),
    "texts_quotes_and_markup": Case(paris=True, args={"--imagery-attribution": "\"<&>' Maxar & <co>",
                                                      "--imagery-licence": "'\"&amp;<b>"}),
    "licence_very_long": Case(paris=True, args={"--imagery-licence": "L-" * 50000 + "-"}),
    "aoi_name_hostile": Case(paris=True, aoi_name="AOI -- $\\frac{x}$ \x01 ]]> <&> \udcff"),
}


@dataclass
class Run:
    """What one case's run left: exit code, output folder, the warnings logged."""

    code: int
    out: Path
    warnings: list[str]


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _kotka_sources(data: Path, kotka, d: Path) -> tuple[Path, gpd.GeoDataFrame, np.ndarray]:
    """The real extract without DELETED (osmium, ids intact), and all ways as levelled candidates."""
    osm = d / "kotka-edited.osm.pbf"
    with osmium.SimpleWriter(str(osm)) as w:
        for obj in osmium.FileProcessor(str(data / "osm" / "kotka.osm.pbf")):
            if not (obj.is_way() and obj.id in DELETED):
                w.add(obj)
    return osm, as_candidates(kotka.ways, levelled=True), kotka.ways["osm_id"].isin(DELETED).to_numpy()


def _candidate_file(base: gpd.GeoDataFrame, deleted: np.ndarray, case: Case, d: Path) -> Path:
    frame = base.copy()
    if case.driver == "GPKG":  # a typed layer column, as a GeoPackage has it
        frame["layer"] = pd.to_numeric(frame["layer"], errors="coerce")
    for key, value in case.values.items():
        if key not in frame.columns:
            frame[key] = None
        frame[key] = frame[key].astype(object)
        frame.loc[deleted, key] = value
    if case.driver == "GPKG" and "layer" in case.values:
        frame["layer"] = frame["layer"].astype(float)
    path = d / case.name
    frame.to_file(_gdal_path(path, d), driver=case.driver)
    return path


def _gdal_path(path: Path, d: Path) -> Path:
    """GDAL writes UTF-8 names only: a name with undecodable bytes is written, then renamed."""
    try:
        str(path).encode("utf-8")
        return path
    except UnicodeEncodeError:
        return d / "tmp-name-for-gdal"


def _paris_sources(paris: Path, d: Path) -> tuple[Path, Path]:
    """The sample's OSM roads without PARIS_DELETED, and all of them as candidate lines."""
    fc = json.loads((paris / "osm_roads.geojson").read_text())
    kept = [f for f in fc["features"] if int(f["properties"]["osm_id"]) not in PARIS_DELETED]
    osm, cands = d / "paris-osm.geojson", d / "paris-roads.geojson"
    osm.write_text(json.dumps({**fc, "features": kept}))
    lines = [{"type": "Feature", "properties": {}, "geometry": f["geometry"]} for f in fc["features"]]
    cands.write_text(json.dumps({"type": "FeatureCollection", "features": lines}))
    return osm, cands


def _run(argv: list[str], out: Path) -> Run:
    handler = _Records()
    logger = logging.getLogger("osmgap")
    logger.addHandler(handler)
    try:
        code = main(argv + ["--out", str(out)])
    finally:
        logger.removeHandler(handler)
    return Run(code, out, handler.messages)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, data, kotka, paris) -> dict[str, Run]:
    """Every case's run, once."""
    d = tmp_path_factory.mktemp("hostile-escaping")
    osm, base, deleted = _kotka_sources(data, kotka, d)
    paris_osm, paris_cands = _paris_sources(paris, d)
    out: dict[str, Run] = {}
    for key, case in CASES.items():
        folder = d / key
        folder.mkdir()
        if case.paris:
            aoi = paris / "aoi.geojson"
            if case.aoi_name is not None:
                fc = json.loads(aoi.read_text())
                fc["features"][0]["properties"]["name"] = case.aoi_name
                aoi = folder / "aoi.geojson"
                aoi.write_text(json.dumps(fc))
            argv = ["diff", "--aoi", str(aoi), "--osm", str(paris_osm), "--candidates", str(paris_cands),
                    "--imagery", str(paris / "image.tif"), *[x for kv in case.args.items() for x in kv]]
        else:
            cands = _candidate_file(base, deleted, case, folder)
            if not cands.exists():
                (folder / "tmp-name-for-gdal").rename(cands)
            argv = ["diff", "--aoi", KOTKA_BBOX, "--osm", str(osm), "--candidates", str(cands)]
        out[key] = _run(argv, folder / "out")
    return out


def _ways(path: Path) -> list[dict[str, str]]:
    return [{t.get("k"): t.get("v") for t in w.findall("tag")} for w in ET.fromstring(path.read_bytes()).findall("way")]


def _comments(path: Path) -> list[str]:
    parser = ET.XMLParser(target=ET.TreeBuilder(insert_comments=True))
    root = ET.fromstring(path.read_bytes(), parser=parser)
    return [c.text for c in root.iter() if c.tag is ET.Comment]


def _features(out: Path) -> tuple[list[dict], list[dict]]:
    """suggestions.geojson's features and maproulette.geojson's (one per record)."""
    geojson = json.loads((out / "suggestions.geojson").read_bytes().decode("utf-8"))["features"]
    records = (out / "maproulette.geojson").read_bytes().decode("ascii").split("\x1e")
    tasks = [json.loads(r)["features"][0] for r in records if r.strip()]
    return geojson, tasks


def _vocabulary_warnings(run: Run) -> list[str]:
    return [w for w in run.warnings if "outside osmgap's vocabulary" in w]


@pytest.mark.parametrize("key", sorted(CASES))
def test_hostile_values_and_texts_give_only_osmgaps_tags(runs, key):
    """Exit 0; every way in suggestions.osm carries exactly highway, fixme and the case's valid
    level tags; both GeoJSON files exactly the same classes and levels and only osmgap's
    properties; no injected text anywhere; texts in comments and properties cleaned; the dropped
    values counted in one warning naming the file (none where nothing was dropped)."""
    case, run = CASES[key], runs[key]
    assert run.code == 0, run.warnings
    ways = _ways(run.out / "suggestions.osm")
    expected_ways = len(BACK) if not case.paris else len(ways)
    assert len(ways) == expected_ways >= 2
    for tags in ways:
        assert set(tags) == {"highway", "fixme"} | set(case.level)
        assert {k: tags[k] for k in case.level} == case.level and tags["fixme"].startswith("osmgap: ")
        assert tags["highway"] in ROAD_CLASSES
        assert tags.get("tunnel", "yes") in TUNNEL_VALUES and tags.get("bridge", "yes") in BRIDGE_VALUES
    if case.highways is not None and not case.paris:
        assert sorted(t["highway"] for t in ways) == sorted(case.highways)
    elif not case.paris:
        assert {t["highway"] for t in ways} <= {*BACK, "road"} and "road" in {t["highway"] for t in ways}
    geojson, tasks = _features(run.out)
    for features in (geojson, tasks):
        assert sorted(f["properties"]["highway"] for f in features if f["properties"]["kind"] != "misconnection") \
            == sorted(t["highway"] for t in ways)
        for f in features:
            props = f["properties"]
            assert set(props) - EVIDENCE - IMAGERY - ENDS == CORE | set(case.level) or "attachments" not in props
            assert set(props) <= CORE | EVIDENCE | IMAGERY | ENDS | set(case.level)
            assert all(type(props[k]) is int and props[k] > 0 for k in ENDS & set(props))
            assert {k: props[k] for k in LEVEL if k in props} == case.level
    for name in ("suggestions.osm", "suggestions.geojson", "maproulette.geojson"):
        data = (run.out / name).read_bytes()
        assert not [m for m in MARKERS if m in data], name
    _check_texts(case, run, geojson + tasks)
    warned = _vocabulary_warnings(run)
    if case.dropped:
        counts = ", ".join(f"{k}: {n}" for k, n in sorted(case.dropped.items()))
        assert len(warned) == 1 and f"({counts})" in warned[0] and clean_text(case.name)[:60] in warned[0]
    else:
        assert warned == []


def _check_texts(case: Case, run: Run, features: list[dict]) -> None:
    """Comments hold no '--' and nothing XML forbids; every text property is the cleaned text."""
    comments = _comments(run.out / "suggestions.osm")
    assert all("--" not in c and c.startswith(" ") and c.endswith(" ") for c in comments)
    assert all(clean_text(c) == c.strip() for c in comments)  # nothing XML forbids, one line
    given = {"--imagery-licence": "imagery_licence", "--imagery-attribution": "imagery_attribution",
             "--imagery-date": "imagery_date"}
    for f in features:
        props = f["properties"]
        for arg, prop in given.items():
            if arg in case.args:
                assert props[prop] == clean_text(case.args[arg])
        if not case.paris:
            assert props["evidence_source"] == clean_text(case.name)
    if not case.paris:
        assert any(f"Candidate roads: {re.sub('-{2,}', '-', clean_text(case.name))}" in c for c in comments)
    if case.paris and case.args:
        (imagery_note,) = [c for c in comments if c.startswith(" Imagery: ")]
        assert len(imagery_note) <= 2100  # a 100 kB licence is cut, not copied into every comment


# The vocabulary itself: (tags a source gives, level tags kept, keys dropped, level).
VOCABULARY = {
    "injection": ({"tunnel": INJECTION}, {}, ["tunnel"], 0),
    "documented_values": ({"tunnel": "Culvert", "bridge": "boardwalk"}, {"tunnel": "culvert", "bridge": "boardwalk"},
                          [], -1),
    "layer_range": ({"layer": "5", "bridge": "yes"}, {"layer": "5", "bridge": "yes"}, [], 5),
    "layer_outside": ({"layer": "-6", "bridge": "yes"}, {"bridge": "yes"}, ["layer"], 1),
    "layer_number_types": ({"layer": -2.0}, {"layer": "-2"}, [], -2),
    "layer_bool_inf_text": ({"layer": True, "tunnel": float("inf"), "bridge": "1e309"}, {}, ["tunnel", "bridge", "layer"],
                            0),
    "surface_said_out_loud": ({"tunnel": "no", "bridge": "0", "layer": "0"}, {}, [], 0),
    "building_passage_at_street_level": ({"tunnel": "building_passage"}, {"tunnel": "building_passage"}, [], 0),
    "other_keys_not_read": ({"highway": "motorway", "name": "x", "fixme": "y"}, {}, [], 0),
}


@pytest.mark.parametrize("key", sorted(VOCABULARY))
def test_the_vocabulary_keeps_only_documented_values(key):
    tags, kept, dropped, level = VOCABULARY[key]
    assert read_level_tags(tags) == (kept, dropped) and way_level(tags) == level


@pytest.mark.parametrize("text", ["a--b", "---", "-", "x-", "<!-- -->", "]]>", "\x00\x01\x1b\x7f\x9f", "\ud800\udfff",
                                  "\ufffe\uffff", "a\r\n\tb", "L-" * 5000])
def test_a_comment_text_is_one_line_xml_allows(text):
    comment = comment_text(text)
    assert "--" not in comment and comment.startswith(" ") and comment.endswith(" ") and len(comment) <= 2002
    ET.fromstring(f"<r><!--{comment}--></r>".encode())  # well-formed XML 1.0 (expat is as strict as JOSM)


def test_a_level_key_cannot_smuggle_tags():
    """Level tags travel between stages as one text (osmgap.core.osmtags.level_key); read back,
    only the vocabulary comes out, whatever the text holds."""
    assert from_level_key("tunnel=yes;highway=motorway;name=Injected Name;layer=-3") == {"tunnel": "yes", "layer": "-3"}


# The cooperative osmChange of a task is built from maproulette.geojson's properties, a file
# anyone may have edited: (properties, the tags its way must carry).
OSMCHANGE_CASES = {
    "injected": ({"highway": "motorway;name=Injected Name", "tunnel": INJECTION, "layer": "9",
                  "name": "Injected Name", "fixme": "ok to upload", "first_node": "12 OR 1=1", "last_node": 1500.0},
                 {"highway": "road"}),
    "xml_in_values": ({"highway": 'service"/><tag k="name" v="Injected Name', "bridge": "<&>]]>--\x01",
                       "first_node": '5"/><nd ref="7', "last_node": "-3"},
                      {"highway": "road"}),
    "valid_level": ({"highway": "service", "tunnel": "YES", "layer": -2, "name": "Injected Name"},
                    {"highway": "service", "tunnel": "yes", "layer": "-2"}),
}


@pytest.fixture(scope="module")
def osmchanges(runs, tmp_path_factory) -> dict[str, Path]:
    """Each case's osmChange, built from a real task of the tunnel_injection run."""
    d = tmp_path_factory.mktemp("osmchange")
    _, tasks = _features(runs["tunnel_injection"].out)
    out = {}
    for key, (props, _) in OSMCHANGE_CASES.items():
        out[key] = d / f"{key}.osc"
        out[key].write_bytes(osmchange_xml({**tasks[0], "properties": {**tasks[0]["properties"], **props}}))
    return out


@pytest.mark.parametrize("key", sorted(OSMCHANGE_CASES))
def test_the_cooperative_osmchange_carries_only_the_vocabulary(osmchanges, key):
    root = ET.fromstring(osmchanges[key].read_bytes())
    (way,) = root.findall("create/way")
    tags = {t.get("k"): t.get("v") for t in way.findall("tag")}
    assert tags.pop("fixme").startswith("osmgap: pre-drawn possible missing road")
    assert tags == OSMCHANGE_CASES[key][1]
    assert not [m for m in MARKERS if m in osmchanges[key].read_bytes()]
    if "first_node" in OSMCHANGE_CASES[key][0]:  # only an id of digits joins the way to an existing node
        assert all(int(nd.get("ref")) < 0 for nd in way.findall("nd"))


def _josm_batch(paths: dict[str, Path], work: Path) -> dict[str, list[dict] | str]:
    """JOSM's issues for every file, read in one start (it writes NAME.geojson beside the working
    folder for each input); where that start fails, each file is read alone to find the culprit.
    A file JOSM cannot read gets the error text instead of issues."""
    work.mkdir(parents=True, exist_ok=True)
    inputs = {k: work / f"{k}{p.suffix}" for k, p in paths.items()}
    for key, path in paths.items():
        shutil.copyfile(path, inputs[key])
    with tempfile.TemporaryDirectory(prefix="josm-home-") as home:
        cmd = ["java", "-Djava.awt.headless=true", f"-Duser.home={home}", f"-Djosm.home={home}/josm", "-jar",
               str(JOSM_JAR), "validate", "--language=en", *[x for p in inputs.values() for x in ("-i", str(p))]]
        env = {**os.environ, "HOME": home, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
        proc = subprocess.run(cmd, capture_output=True, timeout=600, env=env, cwd=work)
    log = (proc.stdout + proc.stderr).decode("utf-8", "replace")
    outputs = {k: work / f"{k}.geojson" for k in paths}
    if proc.returncode == 0 and LOAD_FAILED not in log and all(p.is_file() for p in outputs.values()):
        return {k: parse_validator_output(p.read_bytes()) for k, p in outputs.items()}
    return {key: _josm_alone(path, work / key) for key, path in paths.items()}


def _josm_alone(path: Path, work: Path) -> list[dict] | str:
    """JOSM's issues for one file, or the error text where it cannot read it."""
    try:
        return josm_validate(path, work)
    except JosmError as exc:
        return str(exc)


@pytest.fixture(scope="module")
def josm_verdicts(runs, osmchanges, tmp_path_factory) -> dict[str, list[dict] | str]:
    work = tmp_path_factory.mktemp("josm-batch")
    files = {k: r.out / "suggestions.osm" for k, r in runs.items() if (r.out / "suggestions.osm").is_file()}
    verdicts = _josm_batch(files, work)
    for key, path in osmchanges.items():  # JOSM reads an osmChange only alone ("Could not find a layer" in a batch)
        verdicts[f"osmchange-{key}"] = _josm_alone(path, work / key)
    return verdicts


@pytest.mark.slow
@pytest.mark.parametrize("key", sorted(CASES) + [f"osmchange-{k}" for k in sorted(OSMCHANGE_CASES)])
def test_josm_opens_the_osm_file(josm_verdicts, key):
    """JOSM's own reader opens the case's suggestions.osm (or osmChange), and its validator
    finds no error."""
    verdict = josm_verdicts[key]
    assert not isinstance(verdict, str), verdict
    assert [i["properties"]["message"] for i in verdict if severity(i) == "Errors"] == []


# --- the map pages (issue 18.2): texts from files and servers reach report.html and map.html
HOSTILE_HTML = ('</script><script>document.body.dataset.pwned="1"</script><!--<script> '
                '<img src=x onerror="document.body.dataset.pwned=2"> & "q" \u2028 ]]>')


def _hostile_pages(tmp_path: Path, paris: Path) -> tuple[Path, Path]:
    """report.html and map.html whose every outside text (AOI name, suggestion id, reason and
    properties, OSM tags, run time, tile id) is HOSTILE_HTML, rendered in-process."""
    from shapely.geometry import mapping

    from osmgap.core.aoi import load_aoi
    from osmgap.export.report import ReportData, render_html
    from osmgap.export.scanmap import parse_basemap, render_scan_map

    way = json.loads((paris / "osm_roads.geojson").read_text())["features"][0]
    area = mapping(load_aoi(str(paris)).geometry)
    row = {"id": HOSTILE_HTML, "kind": "missing_road", "status": "open", "reason": HOSTILE_HTML, "length_m": 50.0,
           "first_seen": HOSTILE_HTML, "last_seen": HOSTILE_HTML, "task_id": None, "geometry": json.dumps(way["geometry"]),
           "properties": json.dumps({"confidence": 0.9, "imagery_attribution": HOSTILE_HTML, HOSTILE_HTML: 1})}
    osm = {"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": way["geometry"],
                                                      "properties": {"highway": HOSTILE_HTML, "osm_id": 1}}]}
    data = ReportData(HOSTILE_HTML, "2025-01-01T00:00:00Z", [{"time": HOSTILE_HTML}], [row], [],
                      [{"aoi": HOSTILE_HTML, "reviewed": 0, "false_positives": 0, "precision": None}], area, osm,
                      {}, [HOSTILE_HTML], [HOSTILE_HTML])
    report = tmp_path / "report.html"
    report.write_text(render_html(data, parse_basemap("https://tiles.example.org/{z}/{x}/{y}.png?q=\"<b>")))
    tile = {"type": "Feature", "id": HOSTILE_HTML, "geometry": area,
            "properties": {"id": HOSTILE_HTML, "z": 18, "x": 1, "y": 2, "rank": 1, "score": 5.0, "predicted_m": 5.0,
                           "osm_m": 0.0, "lat": 48.98, "lon": 2.28, "josm_query": "left=1", "id_url": "https://x.org/"}}
    scan = tmp_path / "map.html"
    scan.write_text(render_scan_map({"type": "FeatureCollection", "features": [tile]}, area,
                                    f"osmgap scan: {HOSTILE_HTML}", osm=osm, aoi_name=HOSTILE_HTML))
    return report, scan


def test_the_map_pages_show_hostile_texts_as_text(tmp_path, paris):
    """Chromium runs both pages (a suggestion's popup open): nothing in the texts runs or
    becomes an element, and each text shows as written."""
    from tests.chromium import dump_dom, with_click

    report, scan = _hostile_pages(tmp_path, paris)
    for page, selector, parts in ((report, "path.suggestion", 9), (scan, "path.scan-tile", 3)):
        dom = dump_dom(with_click(page, selector, tmp_path / f"clicked-{page.name}"))
        assert "data-pwned" not in dom and not re.search(r"<img[^>]*onerror", dom)
        assert "<script>document.body" not in dom and 'src="x"' not in dom
        assert "osmgap-popup" in dom  # the click opened the popup, whose texts are in the count below
        assert dom.count(html.escape(HOSTILE_HTML, quote=False)) >= parts, page.name
