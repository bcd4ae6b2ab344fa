"""overview.png: imagery, OSM roads, the model's roads and the suggestions in one picture."""
from __future__ import annotations

import io
import textwrap
from pathlib import Path

import geopandas as gpd
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import networkx as nx  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from osmgap.aoi import reproject  # noqa: E402
from osmgap.atomic import write_bytes_atomic  # noqa: E402
from osmgap.datamodel import WGS84, Suggestion  # noqa: E402
from osmgap.sources.imagery import Grid, Imagery, WindowReader, grid_over  # noqa: E402

MAX_SIDE_PX = 1600


def display_grid(analysis: Grid, imagery: Imagery) -> Grid:
    """The analysis extent at the imagery's own resolution, capped at MAX_SIDE_PX a side."""
    t = analysis.transform
    bounds = (t.c, t.f + t.e * analysis.height, t.c + t.a * analysis.width, t.f)
    side = max(bounds[2] - bounds[0], bounds[3] - bounds[1])
    return grid_over(bounds, analysis.crs, max(imagery.resolution_m, side / MAX_SIDE_PX))


def render_overview(path: str | Path, imagery: Imagery, analysis: Grid, osm_ways: gpd.GeoDataFrame,
                    graph: nx.Graph, suggestions: list[Suggestion], title: str, footnote: str) -> None:
    grid = display_grid(analysis, imagery)
    with WindowReader(imagery, grid) as reader:
        rgb, _ = reader.read_all()
    t = grid.transform
    extent = (t.c, t.c + t.a * grid.width, t.f + t.e * grid.height, t.f)
    aspect = grid.height / max(grid.width, 1)
    width_in = 9 if aspect <= 1.2 else max(5.0, 11 / aspect)
    fig, ax = plt.subplots(figsize=(width_in, width_in * aspect), dpi=110)
    ax.imshow(np.moveaxis(rgb, 0, -1), extent=extent, interpolation="bilinear")
    for geom in osm_ways.to_crs(grid.crs).geometry:
        ax.plot(*geom.xy, color="#00e5ff", lw=2.2, alpha=0.9)
    for _, _, data in graph.edges(data=True):
        ax.plot(*data["geometry"].xy, color="#ffd400", lw=1.0, ls="--", alpha=0.9)
    for s in suggestions:
        ax.plot(*reproject(s.geometry, WGS84, grid.crs).xy, color="#ff1744", lw=3.2, alpha=0.95)
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_axis_off()
    ax.set_title(title, fontsize=10)
    ax.legend(handles=[
        Line2D([], [], color="#00e5ff", lw=2.2, label="OSM roads"),
        Line2D([], [], color="#ffd400", lw=1.0, ls="--", label="model's road graph"),
        Line2D([], [], color="#ff1744", lw=3.2, label=f"suggested missing roads ({len(suggestions)})"),
    ], loc="lower right", fontsize=8, framealpha=0.8)
    ax.text(0, -0.01, "\n".join(textwrap.wrap(footnote, 110)), transform=ax.transAxes, fontsize=7, va="top")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    write_bytes_atomic(path, buf.getvalue())
