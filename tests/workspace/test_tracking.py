"""The state across runs: new, seen again, fixed, dismissed, on real roads of the sample."""
from __future__ import annotations

import json
import sqlite3

import pytest
from shapely.affinity import translate
from shapely.geometry import mapping, shape

from osmgap.core.taskstatus import TaskStatus
from osmgap.errors import InputError
from osmgap.export.report import gather
from osmgap.workspace.store import Store, now_iso
from osmgap.workspace.tracking import apply_task_statuses, precision, record_run
from tests.sample_outputs import sample_area, sample_ways, ways_frame, write_outputs


@pytest.fixture
def ways(data):
    return sample_ways(data)


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "osmgap.sqlite") as s:
        yield s


def _run(store, tmp_path, name, suggested, osm, monkeypatch, when):
    monkeypatch.setenv("OSMGAP_NOW", when)
    outputs = write_outputs(tmp_path / name, suggested)
    return outputs, record_run(store, outputs, area=sample_area(), osm_ways=ways_frame(osm))


def _status(store, outputs, i):
    return store.suggestion("paris-1447", outputs.features[i]["id"])


def test_a_run_later_marks_mapped_roads_fixed_and_reopens_what_comes_back(store, ways, tmp_path, monkeypatch):
    week1, rec1 = _run(store, tmp_path, "w1", ways[:5], ways[5:], monkeypatch, "2025-01-06T04:00:00Z")
    assert rec1.counts["new"] == 5 and all(_status(store, week1, i)["status"] == "open" for i in range(5))
    # a week later roads 3 and 4 are in OSM and no longer suggested
    week2, rec2 = _run(store, tmp_path, "w2", ways[:3], ways[3:], monkeypatch, "2025-01-13T04:00:00Z")
    assert rec2.counts == {"new": 0, "reopened": 0, "fixed": 2, "dismissed_seen": 0, "merged": 0, "fixed_seen": 0}
    row = store.suggestion("paris-1447", week1.features[3]["id"])
    assert (row["status"], row["reason"], row["last_seen"]) == ("fixed", "covered by OSM", "2025-01-06T04:00:00Z")
    # road 2 vanishes without OSM covering it: the model lost it, which is not "mapped"
    _, rec3 = _run(store, tmp_path, "w3", ways[:2], ways[3:], monkeypatch, "2025-01-20T04:00:00Z")
    assert store.suggestion("paris-1447", week1.features[2]["id"])["reason"] == "no longer detected"
    # and road 2 found again: open again
    _, rec4 = _run(store, tmp_path, "w4", ways[:3], ways[3:], monkeypatch, "2025-01-27T04:00:00Z")
    assert rec4.counts["reopened"] == 1
    assert store.suggestion("paris-1447", week1.features[2]["id"])["status"] == "open"
    statuses = [e["status"] for e in store.events("paris-1447") if e["suggestion_id"] == week1.features[2]["id"]]
    assert statuses == ["open", "fixed", "open"]


def test_recording_the_same_run_twice_changes_nothing(store, ways, tmp_path, monkeypatch):
    outputs, first = _run(store, tmp_path, "w1", ways[:4], ways[4:], monkeypatch, "2025-01-06T04:00:00Z")
    again = record_run(store, outputs, area=sample_area(), osm_ways=ways_frame(ways[4:]))
    assert again.already_recorded and again.run_id == first.run_id
    assert len(store.runs("paris-1447")) == 1 and len(store.events("paris-1447")) == 4


def test_false_positive_is_dismissed_for_good_even_under_a_new_id(store, ways, tmp_path, monkeypatch):
    week1, _ = _run(store, tmp_path, "w1", ways[:3], ways[3:], monkeypatch, "2025-01-06T04:00:00Z")
    fp = week1.features[0]["id"]
    counts = apply_task_statuses(store, "paris-1447", [TaskStatus(501, 9, fp, 2), TaskStatus(502, 9, week1.features[1]["id"], 0)])
    assert counts["dismissed"] == 1 and store.suggestion("paris-1447", fp)["status"] == "dismissed"
    assert store.suggestion("paris-1447", week1.features[1]["id"])["status"] == "published"
    # the same road found again, and also shifted by ~4 m (imagery offset) under another id
    # (say its end now reaches another OSM way, which changes the anchor of its id)
    shifted = json.loads(json.dumps(ways[0]))
    shifted["geometry"] = mapping(translate(shape(ways[0]["geometry"]), xoff=0.00004, yoff=0.00002))
    shifted["properties"]["osm_id"] = -shifted["properties"]["osm_id"]
    week2, rec = _run(store, tmp_path, "w2", [ways[0], shifted, ways[1], ways[2]], ways[3:], monkeypatch,
                      "2025-01-13T04:00:00Z")
    assert week2.features[1]["id"] != fp
    twin = store.suggestion("paris-1447", week2.features[1]["id"])
    assert twin["status"] == "dismissed" and twin["reason"] == f"same road as dismissed {fp}"
    assert store.suggestion("paris-1447", fp)["status"] == "dismissed"
    assert rec.counts["dismissed_seen"] == 2 and rec.counts["new"] == 0


def test_maproulette_fixed_is_sticky_and_precision_counts_reviews(store, ways, tmp_path, monkeypatch):
    week1, _ = _run(store, tmp_path, "w1", ways[:4], ways[4:], monkeypatch, "2025-01-06T04:00:00Z")
    ids = [f["id"] for f in week1.features]
    apply_task_statuses(store, "paris-1447", [TaskStatus(1, 9, ids[0], 1), TaskStatus(2, 9, ids[1], 2),
                                              TaskStatus(3, 9, ids[2], 5), TaskStatus(4, 9, ids[3], 3)])
    assert precision(store, "paris-1447") == {"aoi": "paris-1447", "reviewed": 3, "false_positives": 1,
                                              "precision": pytest.approx(0.667, abs=1e-3)}
    # the mapper fixed road 0, but OSM here is still the old extract: it is found again
    _run(store, tmp_path, "w2", ways[:4], ways[4:], monkeypatch, "2025-01-13T04:00:00Z")
    assert store.suggestion("paris-1447", ids[0])["status"] == "fixed"
    assert store.suggestion("paris-1447", ids[0])["reason"] == "MapRoulette: Fixed"
    assert store.suggestion("paris-1447", ids[3])["status"] == "published"  # skipped: still to do


def test_a_run_of_another_area_under_the_same_name_is_refused(store, ways, tmp_path, monkeypatch):
    """It would call every suggestion of the first area unseen (issue 18.3: never two areas in
    one history); nothing of it is recorded."""
    week1, _ = _run(store, tmp_path, "w1", ways[:2], [], monkeypatch, "2025-01-06T04:00:00Z")
    monkeypatch.setenv("OSMGAP_NOW", "2025-01-13T04:00:00Z")
    far = translate(sample_area(), xoff=1.0)  # a run of a different area, same AOI name
    with pytest.raises(InputError, match="'paris-1447' already belongs to another area"):
        record_run(store, write_outputs(tmp_path / "w2", []), area=far, osm_ways=ways_frame([]))
    assert {r["status"] for r in store.suggestions("paris-1447")} == {"open"} and len(store.runs()) == 1


def test_a_file_that_is_not_a_state_is_refused(tmp_path):
    bad = tmp_path / "osmgap.sqlite"
    bad.write_text("not sqlite at all, just text " * 40)
    with pytest.raises(InputError, match="not an osmgap state file"):
        Store(bad)
    with pytest.raises(InputError, match="no state file here"):
        Store(tmp_path / "missing.sqlite", create=False)


def test_state_from_a_newer_osmgap_is_refused(tmp_path):
    path = tmp_path / "osmgap.sqlite"
    Store(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(InputError, match="newer"):
        Store(path)


def test_clock_can_be_set_for_replays(monkeypatch):
    monkeypatch.setenv("OSMGAP_NOW", "2025-03-01T12:00:00+01:00")
    assert now_iso() == "2025-03-01T11:00:00Z"
    monkeypatch.setenv("OSMGAP_NOW", "next tuesday")
    with pytest.raises(InputError, match="OSMGAP_NOW"):
        now_iso()


def test_a_new_gap_given_the_id_of_a_mapped_or_rejected_one_gets_its_own(store, ways, tmp_path, monkeypatch):
    """Ids are an OSM anchor and a rank: a new gap along the ways of a gap mapped since can be
    given its id, and took over its verdict (never published). A diff with --state gives it ID-2;
    the same road seen again keeps its id and its history."""
    from shapely.geometry import LineString

    from osmgap.core.datamodel import Suggestion
    from osmgap.workspace.tracking import own_ids

    week1, _ = _run(store, tmp_path, "w1", ways[:3], ways[3:], monkeypatch, "2025-01-06T04:00:00Z")
    _run(store, tmp_path, "w2", ways[1:3], ways[:1] + ways[3:], monkeypatch, "2025-01-13T04:00:00Z")  # A mapped
    a_id = week1.features[0]["id"]
    assert store.suggestion("paris-1447", a_id)["status"] == "fixed"
    a_line = shape(ways[0]["geometry"])
    other = shape(ways[5]["geometry"])  # another road of the sample, elsewhere
    given = [Suggestion(a_id, "missing_road", LineString(other.coords), 50.0, 0.9),
             Suggestion(a_id, "missing_road", LineString(a_line.coords), 50.0, 0.9),
             Suggestion("osmgap-unknown", "missing_road", LineString(other.coords), 50.0, 0.9)]
    assert [s.id for s in own_ids(store, "paris-1447", given)] == [f"{a_id}-2", a_id, "osmgap-unknown"]


def test_a_gap_where_this_run_had_no_imagery_is_not_called_fixed(store, ways, tmp_path, monkeypatch):
    """A week whose image covers only part of the AOI: the gaps under the rest were reported
    "fixed: no longer detected" (and left their MapRoulette challenge) though nothing looked."""
    from shapely.geometry import box

    week1, _ = _run(store, tmp_path, "w1", ways[:4], ways[4:], monkeypatch, "2025-01-06T04:00:00Z")
    monkeypatch.setenv("OSMGAP_NOW", "2025-01-13T04:00:00Z")
    lines = [shape(f["geometry"]) for f in week1.features]
    first = lines[0]
    seen = box(*first.buffer(0.0003).bounds)  # the new image shows the first road's surroundings only
    unseen = [i for i, g in enumerate(lines) if g.intersection(seen).length < 0.8 * g.length]
    assert unseen and 0 not in unseen
    rec = record_run(store, write_outputs(tmp_path / "w2", []), area=sample_area(), osm_ways=ways_frame([]),
                     seen_area=seen)
    assert _status(store, week1, 0)["reason"] == "no longer detected"
    assert all(_status(store, week1, i)["status"] == "open" for i in unseen)
    assert rec.counts["fixed"] == 4 - len(unseen)


def test_a_short_gap_between_unchanged_ways_is_not_called_covered_by_osm(store, ways, tmp_path, monkeypatch):
    """A missing link of 15-25 m lies within the corridor of the ways it joins, so a week in which
    it was not seen again called it "covered by OSM" though OSM had not changed; where OSM did
    change under it, it still is."""
    from shapely.ops import substring

    from osmgap.core.aoi import load_aoi, reproject
    from tests.sample_outputs import SAMPLE_AOI

    aoi = load_aoi(str(SAMPLE_AOI))

    def stub(way: dict, osm_id: int) -> dict:  # its middle 20 m, as a suggestion of its own
        metric = aoi.to_metric(shape(way["geometry"]))
        half = metric.length / 2
        piece = reproject(substring(metric, half - 10.0, half + 10.0), aoi.metric_crs, "EPSG:4326")
        return {**way, "geometry": mapping(piece), "properties": {**way["properties"], "osm_id": osm_id}}

    kept, mapped = stub(ways[5], 900000001), stub(ways[0], 900000002)
    week1, _ = _run(store, tmp_path, "w1", [kept, mapped], ways[1:], monkeypatch, "2025-01-06T04:00:00Z")
    _run(store, tmp_path, "w2", [], ways, monkeypatch, "2025-01-13T04:00:00Z")  # way 0 mapped; way 5 as before
    assert (_status(store, week1, 0)["status"], _status(store, week1, 0)["reason"]) == ("fixed", "no longer detected")
    assert (_status(store, week1, 1)["status"], _status(store, week1, 1)["reason"]) == ("fixed", "covered by OSM")


def _stub_at_end(line_wgs84, length_m):
    """A side street ``length_m`` long leaving ``line_wgs84``'s last vertex at a right angle (WGS84)."""
    from shapely.geometry import LineString

    from osmgap.core.aoi import reproject, utm_crs_for

    crs = utm_crs_for(line_wgs84.centroid.x, line_wgs84.centroid.y)
    line = reproject(line_wgs84, "EPSG:4326", crs)
    (x0, y0), (x1, y1) = line.coords[-2], line.coords[-1]
    dx, dy = x1 - x0, y1 - y0
    norm = (dx * dx + dy * dy) ** 0.5
    stub = LineString([(x1, y1), (x1 - dy / norm * length_m, y1 + dx / norm * length_m)])
    return reproject(stub, crs, "EPSG:4326")


def test_a_gap_given_the_id_of_a_published_gap_of_another_road_gets_its_own(store, ways, tmp_path, monkeypatch):
    """Week 2: the road of a published gap was mapped, and a 13 m side street at its end drew the
    same anchor and rank. It took the id, and with it the MapRoulette task, which then pointed at
    the other street, while nothing recorded the mapped road as fixed. The same road drawn again,
    or grown, keeps its id."""
    from shapely.geometry import LineString

    from osmgap.core.datamodel import Suggestion
    from osmgap.workspace.tracking import own_ids

    week1, _ = _run(store, tmp_path, "w1", ways[:3], ways[3:], monkeypatch, "2025-01-06T04:00:00Z")
    a_id = week1.features[0]["id"]
    apply_task_statuses(store, "paris-1447", [TaskStatus(501, 9, a_id, 0)])
    assert store.suggestion("paris-1447", a_id)["status"] == "published"
    a_line = LineString([(x, y) for x, y, *_ in shape(ways[0]["geometry"]).coords])
    given = [Suggestion(a_id, "missing_road", _stub_at_end(a_line, 13.0), 13.0, 0.9),
             Suggestion(a_id, "missing_road", translate(a_line, 0.00003, 0.0), 50.0, 0.9)]  # ~2 m east
    assert [s.id for s in own_ids(store, "paris-1447", given)] == [f"{a_id}-2", a_id]


def test_a_side_street_at_the_end_of_a_rejected_road_is_not_its_twin(store, ways, tmp_path, monkeypatch):
    """A reviewer's "not an issue" dismisses the open gaps along the rejected road (the same road
    under another id), not a short street that only meets it at its end."""
    from tests.sample_outputs import write_outputs as write

    week1, _ = _run(store, tmp_path, "w1", ways[:1], ways[1:], monkeypatch, "2025-01-06T04:00:00Z")
    rejected = week1.features[0]["id"]
    a_line = shape(ways[0]["geometry"])
    stub = {"type": "Feature", "properties": {**ways[0]["properties"], "osm_id": 900001},
            "geometry": mapping(_stub_at_end(a_line, 13.0))}
    monkeypatch.setenv("OSMGAP_NOW", "2025-01-13T04:00:00Z")
    week2 = write(tmp_path / "w2", [ways[0], stub])
    record_run(store, week2, area=sample_area(), osm_ways=ways_frame(ways[1:]))
    side = next(f["id"] for f in week2.features if f["id"] != rejected)
    apply_task_statuses(store, "paris-1447", [TaskStatus(501, 9, rejected, 2)])
    assert store.suggestion("paris-1447", rejected)["status"] == "dismissed"
    assert store.suggestion("paris-1447", side)["status"] == "open"


def test_a_gap_marked_fixed_on_maproulette_but_still_found_is_counted(store, ways, tmp_path, monkeypatch):
    """"Already fixed" stands (the gap is not published again), but a run that still finds the
    road missing says so: the mapper's word may be wrong, or OSM not yet updated."""
    week1, _ = _run(store, tmp_path, "w1", ways[:2], ways[2:], monkeypatch, "2025-01-06T04:00:00Z")
    done = week1.features[0]["id"]
    apply_task_statuses(store, "paris-1447", [TaskStatus(501, 9, done, 5)])  # Already_Fixed
    _, rec = _run(store, tmp_path, "w2", ways[:2], ways[2:], monkeypatch, "2025-01-13T04:00:00Z")
    assert rec.counts["fixed_seen"] == 1
    assert store.suggestion("paris-1447", done)["status"] == "fixed"
    said = [n for n in gather(store, "paris-1447").notes if "marked fixed on MapRoulette" in n]
    assert len(said) == 1 and done in said[0]


def test_a_rejected_road_stays_rejected_in_an_aoi_enlarged_under_a_new_name(store, ways, tmp_path, monkeypatch):
    """A changed area must take a new --name; the road a reviewer rejected in the old AOI came
    back as new (and was published again) in the new one."""
    from dataclasses import replace as with_fields

    week1, _ = _run(store, tmp_path, "w1", ways[:2], ways[2:], monkeypatch, "2025-01-06T04:00:00Z")
    rejected = week1.features[0]["id"]
    apply_task_statuses(store, "paris-1447", [TaskStatus(501, 9, rejected, 2)])
    monkeypatch.setenv("OSMGAP_NOW", "2025-01-13T04:00:00Z")
    again = write_outputs(tmp_path / "w2", ways[:2])
    bigger = with_fields(again, summary={**again.summary, "aoi": {**again.summary["aoi"], "name": "paris-bigger"}})
    rec = record_run(store, bigger, area=sample_area().buffer(0.001), osm_ways=ways_frame(ways[2:]))
    assert (rec.counts["new"], rec.counts["dismissed_seen"]) == (1, 1)
    assert store.suggestion("paris-bigger", rejected)["status"] == "dismissed"


def test_a_line_is_along_another_where_it_runs_its_way_not_where_it_only_lies_near():
    """A 20 m piece along a 360 m road is that road (a gap now part of a longer one; a re-found
    piece of a rejected road); a 13 m side street leaving it, at its end or its middle, all of it
    within 15 m of the road, is not."""
    from shapely.geometry import LineString

    from osmgap.workspace.tracking import _same_place

    road = LineString([(0, 0), (360, 0)])
    assert _same_place(LineString([(100, 3), (120, 3)]), road)
    assert not _same_place(LineString([(360, 0), (360, 13)]), road)
    assert not _same_place(LineString([(180, 0), (180, 13)]), road)


def test_a_gap_marked_fixed_on_maproulette_keeps_its_id_when_drawn_longer(store, ways, tmp_path, monkeypatch):
    """More evidence drew a gap a mapper had marked "Already fixed" longer, to another way (a new
    anchor): its id went to no one, so the road came back as a new gap and a new task. The longer
    line takes the old id (and its verdict), not an ID-2 of its own."""
    from shapely.geometry import LineString

    from osmgap.core.datamodel import Suggestion
    from osmgap.workspace.tracking import stable_ids

    week1, _ = _run(store, tmp_path, "w1", ways[:2], ways[2:], monkeypatch, "2025-01-06T04:00:00Z")
    done = week1.features[0]["id"]
    apply_task_statuses(store, "paris-1447", [TaskStatus(501, 9, done, 5)])  # Already_Fixed
    line = LineString([(x, y) for x, y, *_ in shape(ways[0]["geometry"]).coords])  # 139 m
    grown = LineString([*line.coords, _stub_at_end(line, 80.0).coords[-1]])  # on past its end, at a right angle
    given = [Suggestion("osmgap-newanchor", "missing_road", grown, 219.0, 0.9)]
    assert [s.id for s in stable_ids(store, "paris-1447", given)] == [done]
