"""The few plain lines ``osmgap diff`` ends with: what was looked at, what was seen, what is
suggested, and, when nothing is, why. A newcomer must tell "working, area complete" from
"broken" without opening summary.json."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from osmgap.conflate.params import ConflateParams

KIND_WORDS = {"missing_road": ("missing road", "missing roads"), "missing_link": ("missing link", "missing links"),
              "unsupported_osm_way": ("OSM way without evidence", "OSM ways without evidence"),
              "misconnection": ("misconnection", "misconnections"),
              "missing_connection": ("missing connection between two junctions", "missing connections between two "
                                     "junctions")}  # a connection's geometry is unknown: said where they are listed
MATCHED_ENOUGH = 0.5  # of the fixes matched, for "the map explains the traces" to mean anything
PARTLY_COVERED = 0.9  # of the AOI covered by the imagery, under which "completely mapped" is not said
# an analysed area under this (a 100 m square) seldom holds a road that runs min_length_m (30 m) clear
# of its 5 m edge margin: nothing seen there says little about the model or the imagery
SMALL_AREA_KM2 = 0.01
EVIDENCE_WORDS = {"imagery": "the model saw", "candidates": "the candidate file holds", "gps": "the GPS traces show"}


def evidence_km(summary: dict[str, Any]) -> float:
    """Km of road in the evidence, whichever source it came from."""
    if summary.get("evidence") == "candidates":
        return float(summary.get("candidates", {}).get("km", 0.0))
    return float(summary.get("predicted_road_km", summary.get("gps_road_km", 0.0)))


def _evidence_words(summary: dict[str, Any], km: float) -> str:
    """How much road the evidence holds, in words. A GPS run's figure is the road its traffic off
    the map draws: "the GPS traces show 0.00 km" beside 42,038 fixes read as "no traces"."""
    gps = summary.get("gps", {})
    if summary.get("evidence") == "gps" and "points" in gps:
        return (f"the GPS traces ({gps['points']:,} points of {gps.get('trips', '?')} trips) show {km:.2f} km "
                "off the mapped roads")
    return f"{EVIDENCE_WORDS.get(summary.get('evidence', ''), 'the evidence shows')} {km:.2f} km"


def summary_lines(summary: dict[str, Any], out: Path) -> list[str]:
    cover = summary.get("coverage", {})
    share = cover.get("imagery_aoi_share")
    area = f"Area analysed: {cover.get('area_analysed_km2', 0):.3g} km2"
    lines = [area + (f" ({share:.0%} of the AOI is covered by the imagery)." if share is not None else " (the whole AOI).")]
    seen = evidence_km(summary)
    lines.append(f"Roads: {_evidence_words(summary, seen)}; "
                 f"OSM already has {summary.get('osm_road_km', 0):.2f} km ({summary.get('osm_ways', 0)} ways) in the AOI.")
    by_kind = summary.get("by_kind", {})
    if summary.get("suggestions"):
        kinds = ", ".join(f"{n} {KIND_WORDS.get(k, (k, k))[n != 1]}" for k, n in by_kind.items())
        if by_kind.get("missing_connection"):
            kinds += " (geometry unknown: in suggestions.geojson, not in suggestions.osm)"
        lines.append(f"Suggested: {kinds}, {summary['km_suggested']:.2f} km. Open {out / 'suggestions.osm'} in JOSM "
                     f"(or look at {out / 'overview.png'}).")
    else:
        lines.append("Nothing suggested: " + _why_nothing(summary, seen))
    if otherwise := summary.get("conflation", {}).get("mapped_otherwise"):
        n = sum(otherwise.values())
        tags = ", ".join(f"{tag} {count}" for tag, count in sorted(otherwise.items(), key=lambda kv: -kv[1]))
        lines.append(f"Left out: {n} road{'' if n == 1 else 's'} along ways OSM maps as something other than a "
                     f"road ({tags}): mapped, not missing.")
    if retag := summary.get("conflation", {}).get("retag_instead"):
        n = sum(retag.values())
        tags = ", ".join(f"{tag} {count}" for tag, count in sorted(retag.items()))
        lines.append(f"Retag: {n} suggested road{'' if n == 1 else 's'} run{'s' if n == 1 else ''} along a way OSM "
                     f"has as {tags}: if built, retag that way (the fixme names it) rather than drawing a new one.")
    if cached := cached_osm_line(summary):
        lines.append(cached)
    if "demonstration" in summary:
        demo = summary["demonstration"]
        lines.append(f"This is a demonstration: {len(demo['removed_osm_ids'])} OSM ways ({demo['removed_km']:.2f} km: "
                     f"{', '.join(demo['removed_names'])}) were taken out on purpose; they are not missing from OSM.")
    return lines


def cached_osm_line(summary: dict[str, Any]) -> str | None:
    """The line saying OSM came from an Overpass answer osmgap kept (osmgap.sources.overpass):
    a mapper rerunning after mapping some of the gaps would otherwise see them again, unexplained."""
    osm = summary.get("osm") or {}
    if osm.get("cached_s") is None:
        return None
    minutes = int(osm["cached_s"]) // 60
    age = f"{minutes} min" if minutes < 120 else f"{minutes / 60:.0f} h"
    return (f"OSM: Overpass's answer of {osm.get('fetched', '?')}, kept {age}: roads mapped since are not in it "
            "(--osm-max-age 0 asks again).")


def _why_nothing(summary: dict[str, Any], seen: float) -> str:
    from osmgap.jobs.coverage import model_saw_too_little  # it reads rasterio: not for --help

    tolerance = summary.get("conflation", {}).get("tolerance_m")
    cover = summary.get("coverage", {})
    if not cover.get("area_analysed_km2"):
        return "the imagery covers none of the AOI."
    if seen == 0:
        if summary.get("evidence") == "imagery":
            where = _partly(cover)
            if cover["area_analysed_km2"] < SMALL_AREA_KM2:
                return (f"the model saw no road in the {cover['area_analysed_km2'] * 1e6:,.0f} m2 analysed{where}: too "
                        "small an area to find one in (a road must run 30 m inside it, clear of its edges); give a "
                        "larger AOI.")
            return (f"the model saw no road here{where} (very dark, blurred or unusual imagery does this too: "
                    "look at overview.png and probability.tif).")
        matching = summary.get("gps_matching")
        if matching and not matching.get("off_map_steps") and not matching.get("detours"):
            return _gps_found_nothing(matching, summary.get("gps", {}).get("trips", 0))
        return "the evidence holds no road line inside the AOI."
    if unsure := _left_out_unsure(summary):
        return unsure
    osm_km = float(summary.get("osm_road_km", 0.0))
    if summary.get("evidence") == "imagery" and model_saw_too_little(seen, osm_km):
        return (f"the model saw only {seen:.2f} km of road where OSM has {osm_km:.2f} km: too little to judge "
                "the area (a model that reads this imagery poorly finds nothing; look at overview.png and "
                "probability.tif).")
    within = f"within {tolerance:.0f} m of" if tolerance else "close to"
    if cover["area_analysed_km2"] < SMALL_AREA_KM2:
        return (f"every road the evidence shows in the {cover['area_analysed_km2'] * 1e6:,.0f} m2 analysed is {within} "
                "an OSM way or too short to report: too small an area to call mapped; give a larger AOI.")
    share = cover.get("imagery_aoi_share")
    if share is not None and share < PARTLY_COVERED:
        return (f"in the {cover['area_analysed_km2']:.3g} km2 the imagery covers ({share:.1%} of the AOI; the rest "
                f"was not looked at), every road the evidence shows is {within} an OSM way or too short to report.")
    return (f"every road the evidence shows is {within} an OSM way or too short to report: "
            "the area looks completely mapped.")


def _left_out_unsure(summary: dict[str, Any]) -> str | None:
    """Why nothing was suggested when possible roads were found and dropped for their low confidence
    (summary.json's ``conflation.dropped.low_confidence``); None when none was. Said as "the area
    looks completely mapped", 20 deleted streets a source scored low (or on another scale) were gone."""
    n = int(summary.get("conflation", {}).get("dropped", {}).get("low_confidence") or 0)
    if not n:
        return None
    why = "a low confidence"
    if summary.get("evidence") == "candidates":  # GPS runs raise the minimum (osmgap.gps.discovery)
        column = summary.get("candidates", {}).get("confidence_column")
        why = f"a confidence under {ConflateParams.min_confidence:g}" + (
            f" (the source's {column!r} column: is its scale right?)" if column else "")
    return (f"{n} possible road{'' if n == 1 else 's'} the evidence shows {'was' if n == 1 else 'were'} left out for "
            f"{why}; that is not a completely mapped area.")


def _partly(cover: dict[str, Any]) -> str:
    """' (the imagery covers 8% of the AOI)' where it covers only part of it, else ''."""
    share = cover.get("imagery_aoi_share")
    return f" (the imagery covers {share:.0%} of the AOI)" if share is not None and share < PARTLY_COVERED else ""


def _gps_found_nothing(matching: dict[str, Any], trips: int) -> str:
    """Why GPS traces with nothing off the map gave nothing: the map explains them, or too few of
    their fixes could be matched to tell (times out of order, single fixes)."""
    share = matching.get("matched_share", 0)
    counted = f"{trips} trip{'' if trips == 1 else 's'}, {100 * share:.0f} % of the fixes matched"
    if share >= MATCHED_ENOUGH:
        return f"the mapped roads explain every trip ({counted}; none left the map or drove round a missing road)."
    if back := matching.get("steps_back_in_time"):
        why = (f"{back} steps go back in time, and each trip is cut there: are the fixes of each trip "
               "in time order?")
    elif alone := matching.get("fixes_alone"):
        fixes = "1 fix stands" if alone == 1 else f"{alone} fixes stand"
        why = (f"{fixes} alone (a trip of one fix, or cut off by over 300 s of silence or a jump faster than "
               "180 km/h: are the times right?), and no route can be read from one fix.")
    else:
        why = "the rest are too few or too close together in their trips to be matched."
    return f"too few fixes could be matched to the mapped roads to tell ({counted}): {why}"
