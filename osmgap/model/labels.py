"""Road labels of any kind on an analysis grid: a road mask for pixel scores and a road graph
for APLS/TOPO (``osmgap eval``) and the mask for training (``osmgap train --pair``).

Three kinds of label files are read the same way:

- a mask raster (GeoTIFF, any CRS, or a PNG/JPEG placed by a world file with its CRS beside it;
  non-zero = road), reprojected to the grid by nearest neighbour; its graph is the skeleton graph
  of the mask, as a model's output would give. A mask says nothing outside its own extent nor
  where it declares no data (nodata, an internal mask or alpha): there the labels are unknown
  (``LabelSource.known``), neither road nor background, and are left out of scores and training;
- OSM (.osm, .osm.pbf, .osm.bz2, or GeoJSON of ways with ``osm_id``), road classes only, each way
  drawn as wide as its class (``osmgap.graph.rasterize``);
- any other line file GDAL reads (e.g. SpaceNet centrelines), drawn ``DEFAULT_WIDTH_M`` wide, or
  by its ``highway`` class when it has one.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import rasterio
import shapely
from rasterio.enums import ColorInterp, Resampling
from rasterio.errors import RasterioError, RasterioIOError
from rasterio.features import geometry_mask
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds
from scipy import ndimage
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

from osmgap.core.aoi import Aoi, check_earth_crs, utm_crs_for
from osmgap.core.datamodel import ProbabilityRaster
from osmgap.core.grid import Grid, window_grid
from osmgap.errors import InputError, nesting_refused
from osmgap.graph.lines import build_line_graph
from osmgap.graph.rasterize import ROAD_WIDTH_M, rasterize_roads
from osmgap.graph.skeleton import GraphParams, extract_graph
from osmgap.sources.candidates import finite_lines
from osmgap.sources.gdal_files import check_gdal_file
from osmgap.sources.imagery import Imagery, analysis_grid
from osmgap.sources.osm import load_osm
from osmgap.sources.osm_extent import show_bounds

# a mask may be any raster GDAL places on the earth: a PNG or JPEG by its world file (.pgw, .wld)
RASTER_SUFFIXES = (".tif", ".tiff", ".vrt", ".img", ".jp2", ".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp")
OSM_SUFFIXES = (".osm", ".osm.pbf", ".pbf", ".osm.bz2")


@dataclass
class RoadLabels:
    mask: np.ndarray  # (H, W) uint8, 1 = road, on the grid
    graph: nx.Graph  # road graph in the grid's CRS (metres)
    kind: str  # "mask", "osm" or "lines"


def footprint_grid(imagery: Imagery, resolution_m: float) -> tuple[Grid, Aoi]:
    """The grid over a whole image's footprint in its UTM zone at ``resolution_m``, and the
    footprint as an AOI (what a labelled chip is scored or trained on)."""
    footprint = box(*imagery.bounds_wgs84)
    crs = utm_crs_for(footprint.centroid.x, footprint.centroid.y)
    return analysis_grid(imagery, footprint, crs, resolution_m), Aoi(footprint, imagery.path.stem, str(imagery.path))


@dataclass
class LabelSource:
    """A labels file opened on a grid and drawn a window at a time, so an image too large for one
    mask in memory can be scored tile by tile (``osmgap eval``): each window's mask is the part of
    the one ``load_labels`` draws over the whole grid. ``lines`` (in the grid's CRS, with their
    ``highway`` class) for OSM and line files; None for a mask raster."""

    path: Path
    grid: Grid
    kind: str
    lines: gpd.GeoDataFrame | None

    def mask(self, window: tuple[int, int, int, int] | None = None) -> np.ndarray:
        """uint8 road mask (1 = road) of the grid, or of its (row0, col0, row1, col1) ``window``."""
        grid = self.grid if window is None else window_grid(self.grid, window)
        if self.lines is None:
            return mask_on_grid(self.path, grid)[0]
        if window is None:
            return rasterize_roads(self.lines, grid)
        reach = max(ROAD_WIDTH_M.values()) + abs(grid.transform.a)  # a way just outside still paints in
        return rasterize_roads(self.lines.iloc[self.lines.sindex.query(box(*grid.bounds).buffer(reach))], grid)

    def known(self, window: tuple[int, int, int, int] | None = None) -> np.ndarray:
        """bool: where the labels say road or not road on the grid (or its ``window``). Lines say
        it everywhere; a mask raster only inside its extent and where it holds data: its nodata
        read as road, a Paris mask with half of it nodata scored IoU 0.159 instead of 0.335."""
        grid = self.grid if window is None else window_grid(self.grid, window)
        if self.lines is None:
            return mask_on_grid(self.path, grid)[1]
        return np.ones((grid.height, grid.width), bool)

    def line_graph(self) -> nx.Graph:
        """The road graph of line labels (a mask's is extracted from the mask: ``labels_from_mask``)."""
        if self.lines is None:
            raise ValueError(f"{self.path}: mask labels have no line graph")
        lines = self.lines.geometry.to_numpy()
        return build_line_graph(lines, np.ones(len(lines)), self.lines["highway"].to_numpy(dtype=object), self.grid.crs)


def open_labels(path: str | Path, grid: Grid, aoi: Aoi) -> LabelSource:
    """Labels from ``path`` (kind chosen by its name and content) on ``grid``, not drawn yet."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "labels file not found")
    check_gdal_file(path)
    name = path.name.lower()
    if name.endswith(RASTER_SUFFIXES):
        _check_mask_meets(path, grid)
        return LabelSource(path, grid, "mask", None)
    if name.endswith(OSM_SUFFIXES) or _is_osm_geojson(path):
        return LabelSource(path, grid, "osm", load_osm(str(path), aoi).ways.to_crs(grid.crs))
    try:
        lines = gpd.read_file(path)
    except Exception as exc:  # pyogrio raises several types for unreadable files
        raise InputError(path, f"not a mask raster, OSM file or line file ({type(exc).__name__})") from None
    if lines.crs is None:
        raise InputError(path, "line file has no CRS")
    check_earth_crs(lines.crs, path)
    lines = lines[lines.geometry.geom_type.isin(["LineString", "MultiLineString"])]
    lines = finite_lines(lines, path) if len(lines) else lines
    lines = lines.set_geometry(shapely.force_2d(lines.geometry.to_numpy()), crs=lines.crs)  # a Z (often 0) says nothing here
    if "highway" not in lines.columns:
        lines = lines.assign(highway=None)
    footprint = gpd.GeoSeries([box(*grid.bounds)], crs=grid.crs).to_crs(lines.crs).iloc[0]
    drawn = len(lines)
    lines = lines.clip(footprint).explode(index_parts=False)
    if drawn and lines.geometry.is_empty.all():  # no road at all (a road-free chip) is a fair label; elsewhere is not
        raise InputError(path, f"none of its {drawn} lines lies on the image: {_elsewhere(lines.crs, footprint)}")
    return LabelSource(path, grid, "lines", lines[~lines.geometry.is_empty].to_crs(grid.crs))


def load_labels(path: str | Path, grid: Grid, aoi: Aoi) -> RoadLabels:
    """Labels from ``path`` (kind chosen by its name and content) on ``grid``, drawn whole (a
    mask's unknown pixels as not road: ``LabelSource.known`` says where they are)."""
    return whole_labels(open_labels(path, grid, aoi))


def area_on_grid(area_wgs84: BaseGeometry, grid: Grid, touched: bool = False) -> np.ndarray:
    """bool: the pixels of ``grid`` whose centre lies in ``area_wgs84`` (an AOI), or with
    ``touched`` every pixel it touches (the imagery's usable part as ``measure_coverage``
    outlines it, simplified by half a pixel: a pixel it touches shows some of the image)."""
    if area_wgs84.is_empty:
        return np.zeros((grid.height, grid.width), bool)
    area = gpd.GeoSeries([area_wgs84], crs="EPSG:4326").to_crs(grid.crs)
    return geometry_mask(area, out_shape=(grid.height, grid.width), transform=grid.transform, invert=True,
                         all_touched=touched)


def whole_labels(source: LabelSource) -> RoadLabels:
    """The mask over the whole grid and the graph of opened labels."""
    if source.lines is None:
        return labels_from_mask(source.mask(), source.grid)
    return RoadLabels(source.mask(), source.line_graph(), source.kind)


NO_CRS = ("mask raster has no CRS: it must be georeferenced (a world file gives none: add it, e.g. "
          "gdal_edit.py -a_srs EPSG:32631 FILE)")


def mask_on_grid(path: Path, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """A mask raster's first band resampled onto ``grid`` (nearest): uint8, 1 where non-zero and
    known; and bool, where it is known (inside the raster, not its nodata, mask or alpha, and
    the pixels its edge crosses)."""
    try:
        with rasterio.open(path) as src:
            if src.crs is None:
                raise InputError(path, NO_CRS)
            alpha = ColorInterp.alpha in src.colorinterp  # GDAL masks by it already: no alpha of our own
            # nodata 0 is the background: QGIS's Rasterize declares it by default, and unknown it
            # would leave only the roads to score
            background = {"src_nodata": None} if src.nodata == 0 else {}
            with WarpedVRT(src, crs=grid.crs, transform=grid.transform, width=grid.width, height=grid.height,
                           resampling=Resampling.nearest, add_alpha=not alpha, **background) as vrt:
                values, known = vrt.read(1), vrt.read_masks(1) > 0
    except RasterioIOError as exc:
        raise InputError(path, f"not a raster rasterio can read ({str(exc).splitlines()[0][:120]})") from None
    road = ((values > 0) & known).astype(np.uint8)  # a nodata value (255, say) is no road
    if not known.all():  # a pixel the mask's edge crosses is known (background, as it was), as the
        known = ndimage.binary_dilation(known)  # image's edge pixels are usable
    return road, known


def _check_mask_meets(path: Path, grid: Grid) -> None:
    """An InputError for a mask that cannot be read whole (truncated: said now, not after the
    model ran) or that does not overlap the image: scored against it the model would look
    perfect (nothing to find) or hopeless, and mean neither."""
    try:
        src = rasterio.open(path)
    except RasterioIOError:
        return  # not a raster: said where the mask is drawn, with rasterio's reason
    with src:
        if src.crs is None:
            raise InputError(path, NO_CRS)
        try:
            for _, window in src.block_windows(1):  # block by block: memory stays small
                src.read(1, window=window)
        except RasterioError:
            raise InputError(path, "the mask cannot be read whole: truncated or corrupt?") from None
        bounds = transform_bounds(src.crs, grid.crs, *src.bounds)
    if not box(*bounds).intersects(box(*grid.bounds)):
        raise InputError(path, f"the mask does not overlap the image: {_elsewhere(grid.crs, box(*grid.bounds))}")


def _elsewhere(crs: object, footprint: BaseGeometry) -> str:
    """Where the image lies, in degrees, for a message about labels of another place."""
    west, south, east, north = (float(v) for v in gpd.GeoSeries([footprint], crs=crs).to_crs("EPSG:4326").total_bounds)
    return (f"the image covers {show_bounds((west, south, east, north))}; "
            "are these the labels of this image?")


def labels_from_mask(mask: np.ndarray, grid: Grid) -> RoadLabels:
    """Labels from a road mask on ``grid``: the graph is the mask's cleaned skeleton graph."""
    raster = ProbabilityRaster(mask.astype(np.float32), grid.transform, grid.crs)
    return RoadLabels(mask.astype(np.uint8), extract_graph(raster, GraphParams(threshold=0.5)), "mask")


def _is_osm_geojson(path: Path) -> bool:
    """A GeoJSON whose first feature carries ``osm_id``: an OSM export, read as OSM."""
    if not path.name.lower().endswith((".geojson", ".json")):
        return False
    try:
        with nesting_refused(path, "JSON"):
            features = json.loads(path.read_bytes()).get("features") or [{}]
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return False
    except OSError as exc:  # no permission: the user's input, exit 2
        raise InputError(path, f"cannot read ({exc.strerror or exc})") from None
    return "osm_id" in (features[0].get("properties") or {})
