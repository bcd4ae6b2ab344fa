"""overview.png: imagery (or a plain background), OSM roads, the evidence and the suggestions.

It is a picture, so it costs little: the imagery is read once at the picture's own resolution
(at most MAX_SIDE_PX a side, from the file's overviews or a decimated read) and each layer's lines
are drawn as one collection. It shows the whole AOI (where the imagery covers only part of it,
the rest is hatched: not looked at) and stays a picture, never a strip: a long thin AOI is shown
with what lies beside it.
"""
from __future__ import annotations

import io
import re
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
NO_IMAGERY_HATCH = "#b0b0a8"  # where the imagery has no pixel: hatched, not the black of a dark scene
# the picture shows at most this ratio of its long side to its short one: a 16 m x 1.7 km strip was
# drawn 609 x 10,439 px (and an east-west one 129 px tall, its legend over the title); the view is
# widened around the strip instead
MAX_ASPECT = 3.0
DPI = 110
MARK_BELOW_PX = 8.0  # a suggestion shorter than this in the picture is also marked with a ring
# a stranger's name (an AOI file's) may hold bidi controls that reverse the rest of the title
# ("70 suggestions" drawn "snoitseggus 07"); the picture shows the text without them
_BIDI_CONTROLS = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
AOI_HALO = "#202020"  # under the AOI's white outline: seen on a plain ground and on white imagery too
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
    """The picture's grid and its imagery (bands, rows, cols), read once at the picture's resolution,
    masked (``numpy.ma``) where the imagery has no pixel (outside it, nodata): drawn as "no
    imagery", not as the black of a dark scene."""
    grid = display_grid(analysis, imagery)
    with open_window_reader(imagery, grid) as reader:
        rgb, valid = reader.read_all()
    return grid, np.ma.MaskedArray(rgb, mask=np.broadcast_to(~valid, rgb.shape))


def picture_text(text: str) -> str:
    """Text for the picture: cleaned (osmgap.core.osmtags.clean_text), without bidi controls."""
    return clean_text(_BIDI_CONTROLS.sub("", text))


def view_extent(extent: tuple[float, ...], also: tuple[float, ...] | None = None) -> tuple[float, float, float, float]:
    """(left, right, bottom, top) of the picture: ``extent`` and ``also`` (the AOI's bounds, which
    reach past the imagery where it covers only part of the AOI), widened around the middle until
    neither side is more than MAX_ASPECT times the other."""
    left, right, bottom, top = extent
    if also is not None:
        left, right, bottom, top = min(left, also[0]), max(right, also[1]), min(bottom, also[2]), max(top, also[3])
    width, height = max(right - left, 1e-9), max(top - bottom, 1e-9)
    if height > MAX_ASPECT * width:
        pad = (height / MAX_ASPECT - width) / 2
        left, right = left - pad, right + pad
    elif width > MAX_ASPECT * height:
        pad = (width / MAX_ASPECT - height) / 2
        bottom, top = bottom - pad, top + pad
    return left, right, bottom, top


def _paths(geoms: Any) -> list[np.ndarray]:
    """The (n, 2) vertex arrays of every line part of ``geoms``: one LineCollection draws them all
    in one call, where a ``plot`` per line cost seconds on a large AOI."""
    parts = shapely.get_parts(np.asarray(list(geoms), dtype=object))
    lines = parts[np.isin(shapely.get_type_id(parts), (1, 2))] if len(parts) else parts
    return [shapely.get_coordinates(g) for g in lines]


def _rgba(rgb: np.ndarray) -> np.ndarray:
    """(rows, cols, 3) imagery, or (rows, cols, 4) transparent where ``rgb`` is masked (no pixel)."""
    pixels = np.moveaxis(np.ma.getdata(rgb), 0, -1)
    mask = np.ma.getmaskarray(rgb)
    if not mask.any():
        return pixels
    return np.dstack([pixels, (~mask.any(axis=0)).astype(pixels.dtype)])


def _reaches_past(inner: tuple[float, ...], outer: tuple[float, ...], slack: float) -> bool:
    """Whether (left, right, bottom, top) ``inner`` reaches more than ``slack`` past ``outer``."""
    return (inner[0] < outer[0] - slack or inner[1] > outer[1] + slack or inner[2] < outer[2] - slack
            or inner[3] > outer[3] + slack)


def _too_short_to_see(lines: np.ndarray, metres_per_px: float) -> np.ndarray:
    """The lines of ``lines`` shorter than MARK_BELOW_PX pixels of the picture."""
    lines = lines[np.isin(shapely.get_type_id(lines), (1, 2))] if len(lines) else lines
    return lines[shapely.length(lines) < MARK_BELOW_PX * metres_per_px]


def render_overview(path: str | Path, imagery: AnyImagery | None, analysis: Grid, osm_ways: gpd.GeoDataFrame,
                    graph: nx.Graph, suggestions: list[Suggestion], title: str, footnote: str,
                    evidence_label: str = "model's road graph",
                    backdrop: tuple[Grid, np.ndarray] | None = None, listed: tuple[str, ...] = ("missing_road",),
                    osm_label: str | None = "OSM roads", aoi: BaseGeometry | None = None) -> None:
    """Draw the picture; without imagery (candidates only) on a plain background. Matplotlib is
    imported here, when the picture is drawn, not when a run starts (1.4 s of start-up).
    ``backdrop``: :func:`read_backdrop`'s result when it was read beforehand (beside conflation);
    ``listed``: the kinds the legend names even when there are none; ``osm_label``: None when
    no OSM was given; ``aoi`` (WGS84): outlined, and all of it in the picture."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import patheffects
    from matplotlib.collections import LineCollection
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch, Rectangle

    if imagery is not None and backdrop is None:
        backdrop = read_backdrop(imagery, analysis)
    grid = backdrop[0] if backdrop is not None else analysis
    t = grid.transform
    extent = (t.c, t.c + t.a * grid.width, t.f + t.e * grid.height, t.f)
    ring = (shapely.boundary(gpd.GeoSeries([aoi], crs=WGS84).to_crs(grid.crs).values) if aoi is not None
            else None)
    aoi_box = None if ring is None else tuple(float(shapely.total_bounds(ring)[i]) for i in (0, 2, 1, 3))
    view = view_extent(extent, aoi_box)
    aspect = (view[3] - view[2]) / (view[1] - view[0])
    width_in = 9 if aspect <= 1.2 else 11 / aspect
    fig, ax = plt.subplots(figsize=(width_in, width_in * aspect), dpi=DPI)
    ax.set_facecolor(BACKGROUND)
    no_imagery = False
    if backdrop is not None:
        # the ground under the imagery, seen where it has no pixel and where the view reaches past it
        ax.add_patch(Rectangle((view[0], view[2]), view[1] - view[0], view[3] - view[2], facecolor=BACKGROUND,
                               edgecolor=NO_IMAGERY_HATCH, hatch="///", linewidth=0, zorder=0))
        ax.imshow(_rgba(backdrop[1]), extent=extent, interpolation="bilinear", zorder=0.5)
        no_imagery = _reaches_past(view, extent, abs(t.a)) or bool(np.ma.getmaskarray(backdrop[1]).any())
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
            short = _too_short_to_see(picked, (view[1] - view[0]) / (width_in * DPI))
            if len(short):  # a link of a few metres in a large AOI is under a pixel: ringed, to be found
                mid = shapely.line_interpolate_point(short, 0.5, normalized=True)
                ax.scatter(shapely.get_x(mid), shapely.get_y(mid), s=90, facecolors="none", edgecolors=colour,
                           linewidths=1.6, zorder=3)
    halo = [patheffects.withStroke(linewidth=3.4, foreground=AOI_HALO, alpha=0.6)]
    if ring is not None:  # the model also saw the imagery around it, drawn, not conflated
        ax.add_collection(LineCollection(_paths(ring), colors="white", linewidths=1.6, linestyles="-", alpha=0.9,
                                         path_effects=halo))
    ax.set_xlim(view[0], view[1])
    ax.set_ylim(view[2], view[3])
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(backdrop is None)
    ax.set_title(picture_text(title), fontsize=10, parse_math=False)  # user text: no '$' math, no surrogates
    handles: list[Any] = [Line2D([], [], color="#00b8d4", lw=2.2, label=osm_label)] if osm_label else []
    handles.append(Line2D([], [], color="#ffab00", lw=1.0, ls="--", label=evidence_label))
    if ring is not None:
        handles.append(Line2D([], [], color="white", lw=1.6, label="AOI (suggestions inside only)", path_effects=halo))
    if no_imagery:
        handles.append(Patch(facecolor=BACKGROUND, edgecolor=NO_IMAGERY_HATCH, hatch="///", lw=0,
                             label="no imagery: not looked at"))
    for kind, (colour, width, style, text) in KIND_STYLE.items():
        if counts.get(kind) or kind in listed:
            handles.append(Line2D([], [], color=colour, lw=width, ls=style, label=f"{text} ({counts.get(kind, 0)})"))
    if counts.get("misconnection"):
        handles.append(Line2D([], [], color="#2962ff", marker="X", ls="", label=f"misconnections ({counts['misconnection']})"))
    ax.legend(handles=handles, loc="lower right", fontsize=8, framealpha=0.8)
    wrapped = textwrap.wrap(picture_text(footnote), round(110 * width_in / 9))  # as wide as the picture
    ax.text(0, -0.01, "\n".join(wrapped), transform=ax.transAxes, fontsize=7, va="top", parse_math=False)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    write_bytes_atomic(path, buf.getvalue())
