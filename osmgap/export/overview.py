"""overview.png: imagery (or a plain background), OSM roads, the evidence and the suggestions."""
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

from osmgap.core.aoi import reproject  # noqa: E402
from osmgap.core.atomic import write_bytes_atomic  # noqa: E402
from osmgap.core.datamodel import WGS84, Suggestion  # noqa: E402
from osmgap.core.grid import Grid, grid_over  # noqa: E402
from osmgap.core.osmtags import clean_text  # noqa: E402
from osmgap.sources.xyz import AnyImagery, open_window_reader  # noqa: E402

MAX_SIDE_PX = 1600
BACKGROUND = "#f4f4f0"  # no imagery: a plain light ground
KIND_STYLE = {  # colour, line width, line style, legend text
    "missing_road": ("#ff1744", 3.2, "-", "suggested missing roads"),
    "missing_link": ("#d500f9", 3.2, "-", "missing links"),
    "unsupported_osm_way": ("#616161", 2.0, ":", "OSM ways without evidence"),
}


def display_grid(analysis: Grid, imagery: AnyImagery) -> Grid:
    """The analysis extent at the imagery's own resolution, capped at MAX_SIDE_PX a side."""
    t = analysis.transform
    bounds = (t.c, t.f + t.e * analysis.height, t.c + t.a * analysis.width, t.f)
    side = max(bounds[2] - bounds[0], bounds[3] - bounds[1])
    return grid_over(bounds, analysis.crs, max(imagery.resolution_m, side / MAX_SIDE_PX))


def render_overview(path: str | Path, imagery: AnyImagery | None, analysis: Grid, osm_ways: gpd.GeoDataFrame,
                    graph: nx.Graph, suggestions: list[Suggestion], title: str, footnote: str,
                    evidence_label: str = "model's road graph") -> None:
    """Draw the picture; without imagery (candidates only) on a plain background."""
    grid = display_grid(analysis, imagery) if imagery is not None else analysis
    t = grid.transform
    extent = (t.c, t.c + t.a * grid.width, t.f + t.e * grid.height, t.f)
    aspect = grid.height / max(grid.width, 1)
    width_in = 9 if aspect <= 1.2 else max(5.0, 11 / aspect)
    fig, ax = plt.subplots(figsize=(width_in, width_in * aspect), dpi=110)
    if imagery is not None:
        with open_window_reader(imagery, grid) as reader:
            rgb, _ = reader.read_all()
        ax.imshow(np.moveaxis(rgb, 0, -1), extent=extent, interpolation="bilinear")
    else:
        ax.set_facecolor(BACKGROUND)
    for geom in osm_ways.to_crs(grid.crs).geometry:
        ax.plot(*geom.xy, color="#00b8d4", lw=2.2, alpha=0.9)
    for _, _, data in graph.edges(data=True):
        ax.plot(*data["geometry"].xy, color="#ffab00", lw=1.0, ls="--", alpha=0.9)
    counts: dict[str, int] = {}
    for s in suggestions:
        counts[s.kind] = counts.get(s.kind, 0) + 1
        geom = reproject(s.geometry, WGS84, grid.crs)
        if s.kind == "misconnection":
            ax.plot(geom.x, geom.y, marker="X", color="#2962ff", markersize=11, markeredgecolor="white")
        else:
            colour, width, style, _ = KIND_STYLE.get(s.kind, KIND_STYLE["missing_road"])
            ax.plot(*geom.xy, color=colour, lw=width, ls=style, alpha=0.95)
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(imagery is None)
    ax.set_title(clean_text(title), fontsize=10, parse_math=False)  # user text: no '$' math, no surrogates
    handles = [Line2D([], [], color="#00b8d4", lw=2.2, label="OSM roads"),
               Line2D([], [], color="#ffab00", lw=1.0, ls="--", label=evidence_label)]
    for kind, (colour, width, style, text) in KIND_STYLE.items():
        if counts.get(kind) or kind == "missing_road":
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
