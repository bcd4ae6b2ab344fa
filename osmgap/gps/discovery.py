"""GPS-only discovery: roads that vehicles drove but OSM lacks, with no imagery at all.

Trip coverage (osmgap.gps.density) becomes a road likelihood raster; its ridges, thresholded
and skeletonised by the same osmgap.graph.skeleton.extract_graph that serves imagery, become a road
graph; conflation then treats it like any other evidence, and a gap's confidence is the mean
likelihood along it. Cleanup sizes are larger than for imagery: a GPS "road" is as wide as the
spread of its traces (10-30 m), and holes in it are lanes and parking bays, not trees.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from osmgap.conflate.conflate import Evidence
from osmgap.conflate.params import ConflateParams
from osmgap.core.grid import Grid, grid_over
from osmgap.core.traces import GpsTraces
from osmgap.gps.density import DensityParams, road_likelihood, trip_counts
from osmgap.graph.skeleton import GraphParams, extract_graph

# OSM is clipped to the AOI but traces just outside it blur in: a road running along the AOI's
# border shows as a GPS ridge inside it with no OSM way left beside it. Evidence this close to
# the border is not judged.
EDGE_MARGIN_M = 25.0
GPS_GRAPH = GraphParams(threshold=0.5, min_blob_m2=400.0, max_hole_m2=600.0, spur_m=25.0, min_component_m=60.0,
                        simplify_m=2.0)


@dataclass(frozen=True)
class DiscoveryParams:
    resolution_m: float = 4.0  # finer than the GPS error gains nothing and costs time
    density: DensityParams = field(default_factory=DensityParams)
    graph: GraphParams = GPS_GRAPH


def discovery_grid(bounds_metric: tuple[float, float, float, float], crs: object,
                   params: DiscoveryParams = DiscoveryParams()) -> Grid:
    return grid_over(bounds_metric, crs, params.resolution_m)


def gps_evidence(traces: GpsTraces, grid: Grid, params: DiscoveryParams = DiscoveryParams()) -> Evidence:
    """The road graph the traces (in ``grid.crs``) show, with the likelihood raster behind it."""
    prob = road_likelihood(trip_counts(traces, grid, params.density), grid, params.density)
    return Evidence(extract_graph(prob, params.graph), prob)


def gps_conflate_params(params: ConflateParams) -> ConflateParams:
    """Conflation settings for GPS-only evidence: a wider margin at the AOI border."""
    return replace(params, edge_margin_m=max(params.edge_margin_m, EDGE_MARGIN_M))
