"""The raster grid every stage after imagery shares: north-up, in a metric CRS."""
from __future__ import annotations

import math
from dataclasses import dataclass

from affine import Affine
from rasterio.crs import CRS


@dataclass(frozen=True)
class Grid:
    """A north-up raster grid: the frame every stage after imagery shares."""

    transform: Affine
    width: int
    height: int
    crs: CRS

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(minx, miny, maxx, maxy) in ``crs``."""
        t = self.transform
        return t.c, t.f + t.e * self.height, t.c + t.a * self.width, t.f


def grid_over(bounds: tuple[float, float, float, float], crs: CRS, resolution: float) -> Grid:
    """A grid at ``resolution`` (CRS units) that covers ``bounds`` (in ``crs``)."""
    minx, miny, maxx, maxy = bounds
    width = max(1, int(math.ceil((maxx - minx) / resolution)))
    height = max(1, int(math.ceil((maxy - miny) / resolution)))
    return Grid(Affine(resolution, 0, minx, 0, -resolution, maxy), width, height, crs)


def window_grid(grid: Grid, window: tuple[int, int, int, int]) -> Grid:
    """The sub-grid of ``grid`` under a (row0, col0, row1, col1) window."""
    r0, c0, r1, c1 = window
    return Grid(grid.transform @ Affine.translation(c0, r0), c1 - c0, r1 - r0, grid.crs)
