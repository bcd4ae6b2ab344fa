"""Rasterize OSM roads with a width per road class (training labels, overlays, offset checks)."""
from __future__ import annotations

import geopandas as gpd
import numpy as np
from rasterio import features

from osmgap.core.grid import Grid

# Typical carriageway widths in metres by highway class; a class not listed gets DEFAULT_WIDTH_M.
ROAD_WIDTH_M = {
    "motorway": 20.0, "trunk": 16.0, "primary": 14.0, "secondary": 12.0, "tertiary": 10.0,
    "motorway_link": 8.0, "trunk_link": 8.0, "primary_link": 8.0, "secondary_link": 8.0, "tertiary_link": 8.0,
    "unclassified": 7.0, "residential": 7.0, "road": 7.0, "living_street": 6.0, "busway": 7.0,
    "pedestrian": 6.0, "service": 5.0, "track": 4.0,
}
DEFAULT_WIDTH_M = 6.0


def road_width_m(highway: str | None) -> float:
    return ROAD_WIDTH_M.get(highway or "", DEFAULT_WIDTH_M)


def rasterize_roads(ways: gpd.GeoDataFrame, grid: Grid, width_scale: float = 1.0) -> np.ndarray:
    """uint8 mask (1 = road) of ``ways`` on ``grid``, each way buffered to its class width.

    ``grid`` must be in a metric CRS so that buffers are in metres.
    """
    mask = np.zeros((grid.height, grid.width), np.uint8)
    if len(ways) == 0:
        return mask
    metric = ways.to_crs(grid.crs)
    half_widths = np.array([road_width_m(h) * width_scale / 2 for h in metric["highway"]])
    polygons = metric.geometry.buffer(half_widths, cap_style="flat")
    shapes = ((g, 1) for g in polygons if g is not None and not g.is_empty)
    return features.rasterize(shapes, out=mask, transform=grid.transform, all_touched=False)
