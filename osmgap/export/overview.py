"""overview.png: imagery (or a plain background), OSM roads, the evidence and the suggestions.

It is a picture, so it costs little: the imagery is read once at the picture's own resolution
(at most MAX_SIDE_PX a side, from the file's overviews or a decimated read) and each layer's lines
are drawn as one collection.
"""
from __future__ import annotations

import io
import textwrap
from pathlib import Path
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from osmgap.core.atomic import write_bytes_atomic
from osmgap.core.datamodel import MISSING_CONNECTION, WGS84, Suggestion
from osmgap.core.grid import Grid, grid_over
from osmgap.core.osmtags import clean_text
from osmgap.sources.xyz import AnyImagery, open_window_reader

MAX_SIDE_PX = 1600
BACKGROUND = "#f4f4f0"  # no imagery: a plain light ground
KIND_STYLE = {  # colour, line width, line style, legend text
    "missing_road": ("#ff1744", 3.2, "-", "suggested missing roads"),
    "missing_link": ("#d500f9", 3.2, "-", "missing links"),
    "unsupported_osm_way": ("#616161", 2.0, ":", "OSM ways without evidence"),
    # a straight gap between two junctions, not the road: thin, dotted, its two ends marked
    MISSING_CONNECTION: ("#ff1744", 1.6, (0, (1, 3)), "missing connections: two junctions, road's course unknown"),
    "appeared_road": ("#00e676", 3.2, "-", "roads that appeared"),  # osmgap change
    "vanished_road": ("#ff6d00", 3.2, "-", "roads that vanished"),
}


def display_grid(analysis: Grid, imagery: AnyImagery) -> Grid:
    """The analysis extent at the imagery's own resolution, capped at MAX_SIDE_PX a side."""
    bounds = analysis.bounds
    side = max(bounds[2] - bounds[0], bounds[3] - bounds[1])
    return grid_over(bounds, analysis.crs, max(imagery.resolution_m, side / MAX_SIDE_PX))


def read_backdrop(imagery: AnyImagery, analysis: Grid) -> tuple[Grid, np.ndarray]:
    """The picture's grid and its imagery (bands, rows, cols), read once at the picture's resolution."""
    grid = display_grid(analysis, imagery)
    with open_window_reader(imagery, grid) as reader:
        rgb, _ = reader.read_all()
    return grid, rgb


def _paths(geoms: Any) -> list[np.ndarray]:
    """The (n, 2) vertex arrays of every line part of ``geoms``: one LineCollection draws them all
    in one call, where a ``plot`` per line cost seconds on a large AOI."""
    parts = shapely.get_parts(np.asarray(list(geoms), dtype=object))
    lines = parts[np.isin(shapely.get_type_id(parts), (1, 2))] if len(parts) else parts
    return [shapely.get_coordinates(g) for g in lines]


def render_overview(path: str | Path, imagery: AnyImagery | None, analysis: Grid, osm_ways: gpd.GeoDataFrame,
                    graph: nx.Graph, suggestions: list[Suggestion], title: str, footnote: str,
                    evidence_label: str = "model's road graph",
                    backdrop: tuple[Grid, np.ndarray] | None = None, listed: tuple[str, ...] = ("missing_road",),
                    osm_label: str | None = "OSM roads", aoi: BaseGeometry | None = None) -> None:
    """Draw the picture; without imagery (candidates only) on a plain background. Matplotlib is
    imported here, when the picture is drawn, not when a run starts (1.4 s of start-up).
    ``backdrop``: :func:`read_backdrop`'s result when it was read beforehand (beside conflation);
    ``listed``: the kinds the legend names even when there are none; ``osm_label``: None when
    no OSM was given; ``aoi`` (WGS84): outlined, where the picture shows context around it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection
    from matplotlib.lines import Line2D

    if imagery is not None and backdrop is None:
        backdrop = read_backdrop(imagery, analysis)
    grid = backdrop[0] if backdrop is not None else analysis
    t = grid.transform
    extent = (t.c, t.c + t.a * grid.width, t.f + t.e * grid.height, t.f)
    aspect = grid.height / max(grid.width, 1)
    width_in = 9 if aspect <= 1.2 else max(5.0, 11 / aspect)
    fig, ax = plt.subplots(figsize=(width_in, width_in * aspect), dpi=110)
    if backdrop is not None:
        ax.imshow(np.moveaxis(backdrop[1], 0, -1), extent=extent, interpolation="bilinear")
    else:
        ax.set_facecolor(BACKGROUND)
    ax.add_collection(LineCollection(_paths(osm_ways.to_crs(grid.crs).geometry.values), colors="#00b8d4", linewidths=2.2,
                                     alpha=0.9))
    edges = [data["geometry"] for _, _, data in graph.edges(data=True)]
    ax.add_collection(LineCollection(_paths(edges), colors="#ffab00", linewidths=1.0, linestyles="--", alpha=0.9))
    geoms = gpd.GeoSeries([s.geometry for s in suggestions], crs=WGS84).to_crs(grid.crs).values
    kinds = np.asarray([s.kind for s in suggestions], dtype=object)
    counts = {str(k): int(n) for k, n in zip(*np.unique(kinds, return_counts=True))} if len(kinds) else {}
    for kind in counts:
        picked = geoms[kinds == kind]
        if kind == "misconnection":
            ax.plot(shapely.get_x(picked), shapely.get_y(picked), ls="", marker="X", color="#2962ff", markersize=11,
                    markeredgecolor="white")
        else:
            colour, width, style, _ = KIND_STYLE.get(kind, KIND_STYLE["missing_road"])
            ax.add_collection(LineCollection(_paths(picked), colors=colour, linewidths=width, linestyles=style,
                                             alpha=0.95))
            if kind == MISSING_CONNECTION:
                ends = shapely.get_coordinates(shapely.boundary(picked))
                ax.plot(ends[:, 0], ends[:, 1], ls="", marker="o", color=colour, markersize=4)
    if aoi is not None:  # the model also saw the imagery around it, drawn, not conflated
        ring = shapely.boundary(gpd.GeoSeries([aoi], crs=WGS84).to_crs(grid.crs).values)
        ax.add_collection(LineCollection(_paths(ring), colors="white", linewidths=1.6, linestyles="-", alpha=0.9))
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(backdrop is None)
    ax.set_title(clean_text(title), fontsize=10, parse_math=False)  # user text: no '$' math, no surrogates
    handles = [Line2D([], [], color="#00b8d4", lw=2.2, label=osm_label)] if osm_label else []
    handles.append(Line2D([], [], color="#ffab00", lw=1.0, ls="--", label=evidence_label))
    if aoi is not None:
        handles.append(Line2D([], [], color="white", lw=1.6, label="AOI (suggestions inside only)"))
    for kind, (colour, width, style, text) in KIND_STYLE.items():
        if counts.get(kind) or kind in listed:
            handles.append(Line2D([], [], color=colour, lw=width, ls=style, label=f"{text} ({counts.get(kind, 0)})"))
    if counts.get("misconnection"):
        handles.append(Line2D([], [], color="#2962ff", marker="X", ls="", label=f"misconnections ({counts['misconnection']})"))
    ax.legend(handles=handles, loc="lower right", fontsize=8, framealpha=0.8)
    ax.text(0, -0.01, "\n".join(textwrap.wrap(clean_text(footnote), 110)), transform=ax.transAxes, fontsize=7,
            va="top", parse_math=False)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    write_bytes_atomic(path, buf.getvalue())
