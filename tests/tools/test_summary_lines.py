"""The plain lines a diff ends with must not call an area complete on evidence that cannot say so."""
from pathlib import Path

from osmgap.tools.summary_lines import summary_lines

OUT = Path("out")


def _summary(seen_km: float = 0.44, osm_km: float = 0.67, share: float = 1.0, analysed_km2: float = 0.024,
             **extra) -> dict:
    return {"evidence": "imagery", "predicted_road_km": seen_km, "osm_road_km": osm_km, "osm_ways": 10,
            "suggestions": 0, "by_kind": {}, "conflation": {"tolerance_m": 9.0},
            "coverage": {"area_analysed_km2": analysed_km2, "imagery_aoi_share": share}, **extra}


def test_a_model_that_sees_the_roads_says_the_area_looks_mapped():
    assert "the area looks completely mapped" in summary_lines(_summary(), OUT)[-1]


def test_a_model_that_sees_little_of_osm_does_not_call_the_area_mapped():
    """A model that reads the imagery poorly (a model of a few steps, a new sensor) sees little."""
    last = summary_lines(_summary(seen_km=0.07, osm_km=0.41), OUT)[-1]
    assert "too little to judge" in last and "0.07 km" in last and "completely mapped" not in last


def test_imagery_covering_a_sliver_of_the_aoi_says_the_rest_was_not_looked_at():
    last = summary_lines(_summary(share=0.000003), OUT)[-1]
    assert "0.0% of the AOI; the rest was not looked at" in last and "completely mapped" not in last


def test_gps_evidence_is_not_judged_by_its_share_of_osm():
    """Traces show the roads driven, a small part of any map: that says nothing about the model."""
    s = _summary(seen_km=0.5, osm_km=30.0, evidence="gps", gps_road_km=0.5)
    del s["predicted_road_km"]
    assert "completely mapped" in summary_lines(s, OUT)[-1]


def test_one_suggestion_is_singular():
    lines = summary_lines(_summary(suggestions=1, by_kind={"missing_road": 1}, km_suggested=0.05), OUT)
    assert lines[-1].startswith("Suggested: 1 missing road, 0.05 km.")


def test_nothing_seen_in_a_tiny_area_blames_the_area_not_the_imagery():
    """80 x 45 m of a street corner, most of it off the image: "the model saw no road (very dark,
    blurred or unusual imagery...)" sent a mapper to look for a fault in a good image."""
    last = summary_lines(_summary(seen_km=0.0, analysed_km2=0.0003, share=0.08), OUT)[-1]
    assert "in the 300 m2 analysed (the imagery covers 8% of the AOI): too small an area" in last
    assert "dark" not in last
    assert "very dark" in summary_lines(_summary(seen_km=0.0), OUT)[-1]


def test_a_tiny_area_is_not_called_completely_mapped():
    last = summary_lines(_summary(seen_km=0.04, osm_km=0.0, analysed_km2=0.0029), OUT)[-1]
    assert "too small an area to call mapped" in last and "completely mapped" not in last


def test_a_gps_run_says_its_traces_and_that_the_km_are_off_the_map():
    """A GPS-only run said "the GPS traces show 0.00 km" beside 42,038 fixes, which read as "no
    traces": the figure is the road the traffic off the mapped roads draws."""
    s = _summary(seen_km=0.0, evidence="gps", gps_road_km=0.0, gps={"points": 42038, "trips": 886})
    del s["predicted_road_km"]
    roads = summary_lines(s, OUT)[1]
    assert roads.startswith("Roads: the GPS traces (42,038 points of 886 trips) show 0.00 km off the mapped roads;")
