"""Every threshold of conflation in one place, in metres and degrees, with the reason for each."""
from __future__ import annotations

from dataclasses import dataclass

# Change detection: a road is new (or gone) only where the other date shows none this near.
CHANGE_MARGIN_M = 4.0


@dataclass(frozen=True)
class ConflateParams:
    # A candidate point is explained by OSM when an OSM way lies within near_m in any direction,
    # or within tolerance_m running the same way (max_angle_deg). The offset between evidence and
    # OSM is removed first (osmgap.conflate.offset), so the tolerance only absorbs what is left: local
    # misregistration and the error of a traced or predicted centreline.
    tolerance_m: float = 12.0
    near_m: float = 4.0
    max_angle_deg: float = 30.0
    step_m: float = 2.5  # spacing of the points along candidates at which all of this is tested
    # Reporting thresholds. Free-standing pieces shorter than min_length_m are mostly driveways,
    # parking aisles and noise; a piece joined to OSM at both ends is a connection and may be
    # shorter. A gap must run min_body_m beyond the reach of every OSM way (no slivers).
    min_length_m: float = 30.0
    min_connector_m: float = 12.0
    min_body_m: float = 8.0
    min_confidence: float = 0.5
    default_confidence: float = 0.75  # candidates that carry no confidence/score of their own
    edge_margin_m: float = 5.0  # ignore evidence hugging the AOI/imagery border
    # A gap running beside an OSM way for most of its length (parallel_share), at most
    # parallel_max_m away and within parallel_angle_deg of its direction, is a sidewalk, a
    # service road or a duplicate of that way, not a missing road (JOSM MapWithAI's dupe check,
    # Microsoft RoadDetections' conflation), unless the OSM way is one half of a dual
    # carriageway (oneway), whose other half is exactly such a parallel line.
    parallel_max_m: float = 25.0
    parallel_angle_deg: float = 20.0
    parallel_share: float = 0.7
    # A new road whose points lie within the tolerance of ways OSM maps as something else that
    # may look like a road (footway, cycleway, construction, taxiway, railway) for this share of its
    # length is that way, mapped: not suggested (osmgap.conflate.otherways).
    mapped_otherwise_share: float = 0.5
    # Joining: an end reaching an OSM way is attached to it, to its existing node when one lies
    # within node_snap_m of the meeting point (joining a node needs no change to the OSM way).
    node_snap_m: float = 4.0
    # A free end that stops this short of an OSM way lying ahead of it (within FREE_END_ANGLE_DEG
    # of its heading) joins it: a detection fading out before its junction. Twice near_m for
    # imagery; GPS evidence stops where the map explains its trips, off-map distance short.
    free_end_reach_m: float = 8.0
    # Almost-junctions: an OSM dead end this close to another way, with evidence of a road
    # between them, is a missing_link (JOSM's UnconnectedWays uses 10 m without evidence).
    max_link_m: float = 30.0
    # Offset between evidence and OSM: estimated within max_offset_m, warned about above
    # offset_warn_m (imagery that far off should be realigned before anyone traces from it).
    max_offset_m: float = 25.0
    offset_warn_m: float = 5.0
    unsupported: bool = False  # report unsupported_osm_way (low priority, off by default)
