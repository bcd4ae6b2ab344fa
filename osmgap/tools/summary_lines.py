"""The few plain lines ``osmgap diff`` ends with: what was looked at, what was seen, what is
suggested, and, when nothing is, why. A newcomer must tell "working, area complete" from
"broken" without opening summary.json."""
from __future__ import annotations

from pathlib import Path
from typing import Any

KIND_WORDS = {"missing_road": "missing roads", "missing_link": "missing links",
              "unsupported_osm_way": "OSM ways without evidence",
              "missing_connection": "missing connections between two junctions (geometry unknown: in "
                                    "suggestions.geojson, not in suggestions.osm)"}
EVIDENCE_WORDS = {"imagery": "the model saw", "candidates": "the candidate file holds", "gps": "the GPS traces show"}


def evidence_km(summary: dict[str, Any]) -> float:
    """Km of road in the evidence, whichever source it came from."""
    if summary.get("evidence") == "candidates":
        return float(summary.get("candidates", {}).get("km", 0.0))
    return float(summary.get("predicted_road_km", summary.get("gps_road_km", 0.0)))


def summary_lines(summary: dict[str, Any], out: Path) -> list[str]:
    cover = summary.get("coverage", {})
    share = cover.get("imagery_aoi_share")
    area = f"Area analysed: {cover.get('area_analysed_km2', 0):.3g} km2"
    lines = [area + (f" ({share:.0%} of the AOI is covered by the imagery)." if share is not None else " (the whole AOI).")]
    seen = evidence_km(summary)
    lines.append(f"Roads: {EVIDENCE_WORDS.get(summary.get('evidence', ''), 'the evidence shows')} {seen:.2f} km; "
                 f"OSM already has {summary.get('osm_road_km', 0):.2f} km ({summary.get('osm_ways', 0)} ways) in the AOI.")
    by_kind = summary.get("by_kind", {})
    if summary.get("suggestions"):
        kinds = ", ".join(f"{n} {KIND_WORDS.get(k, k)}" for k, n in by_kind.items())
        lines.append(f"Suggested: {kinds}, {summary['km_suggested']:.2f} km. Open {out / 'suggestions.osm'} in JOSM "
                     f"(or look at {out / 'overview.png'}).")
    else:
        lines.append("Nothing suggested: " + _why_nothing(summary, seen))
    if "demonstration" in summary:
        demo = summary["demonstration"]
        lines.append(f"This is a demonstration: {len(demo['removed_osm_ids'])} OSM ways ({demo['removed_km']:.2f} km: "
                     f"{', '.join(demo['removed_names'])}) were taken out on purpose; they are not missing from OSM.")
    return lines


def _why_nothing(summary: dict[str, Any], seen: float) -> str:
    tolerance = summary.get("conflation", {}).get("tolerance_m")
    if not summary.get("coverage", {}).get("area_analysed_km2"):
        return "the imagery covers none of the AOI."
    if seen == 0:
        if summary.get("evidence") == "imagery":
            return ("the model saw no road here (very dark, blurred or unusual imagery does this too: "
                    "look at overview.png and probability.tif).")
        matching = summary.get("gps_matching")
        if matching and not matching.get("off_map_steps") and not matching.get("detours"):
            trips = summary.get("gps", {}).get("trips", 0)
            return (f"the mapped roads explain every trip ({trips} trip{'' if trips == 1 else 's'}, "
                    f"{100 * matching.get('matched_share', 0):.0f} % of the fixes matched; none left the map or "
                    "drove round a missing road).")
        return "the evidence holds no road line inside the AOI."
    within = f"within {tolerance:.0f} m of" if tolerance else "close to"
    return (f"every road the evidence shows is {within} an OSM way or too short to report: "
            "the area looks completely mapped.")
