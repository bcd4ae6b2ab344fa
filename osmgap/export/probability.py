"""probability.tif: the stitched road probability as a Cloud-Optimized GeoTIFF.

What the model saw, georeferenced, so a mapper can lay it under OSM in QGIS or JOSM (through
GDAL) and judge a suggestion against the raw evidence. Values are uint8 (probability x 255),
on the analysis grid (the AOI's UTM zone at the model's resolution: the grid every suggestion
was measured on), tiled 512 x 512 (128 x 128 for a small AOI), deflate-compressed, with overviews, so a viewer reads only
the blocks and the zoom level it shows. GDAL's COG driver writes it when this GDAL has one;
otherwise a tiled GeoTIFF with internal overviews is copied with COPY_SRC_OVERVIEWS, which is
the layout the COG driver produces.

Where nothing was looked at (outside the imagery, its nodata) a value of 0 would read as "no road
here"; given the area that was (``looked_at``), the file carries a GDAL mask (internal, so a COG
reader and QGIS show the rest as no data, transparent) and the values stay what the model wrote. It
names the program that wrote it and, given ``tags`` (the imagery's licence and attribution: the
raster is derived from it), carries them, as every other output does.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.enums import Resampling
from rasterio.features import rasterize
from rasterio.shutil import copy as raster_copy
from rasterio.windows import Window
from shapely.geometry.base import BaseGeometry

from osmgap import __version__
from osmgap.core.datamodel import ProbabilityRaster
from osmgap.core.memory import release_pages
from osmgap.core.osmtags import clean_text

BLOCK_PX = 512
SMALL_BLOCK_PX = 128  # for rasters under 1024 px a side, so that a small AOI still gets an overview
# GDAL's block cache while writing (MB). Its default, 5 % of RAM, let the COG copy of a 100 km2
# raster hold ~100 MB more, at the same speed; it runs beside conflation (osmgap.jobs.early_writes)
GDAL_CACHE_MB = 64
# Deflate's fastest level: a 105 Mpx (100 km2) raster in 2.3 s of CPU instead of 6.6 s at the default
# level 6, for a file 6 % larger (73 against 69 MB); the COG is written beside conflation, and a
# large AOI's run waited for it
DEFLATE_LEVEL = 1
MEANING = "road probability x 255"


def block_size(width: int, height: int) -> int:
    """GDAL makes overviews until one block holds the image: small rasters need small blocks."""
    return BLOCK_PX if max(width, height) >= 1024 else SMALL_BLOCK_PX


def probability_bytes(prob: np.ndarray) -> np.ndarray:
    """[0, 1] float -> uint8 0..255 (rounded, clipped)."""
    return np.clip(np.rint(prob * 255.0), 0, 255).astype(np.uint8)


def overview_factors(width: int, height: int) -> list[int]:
    """2, 4, 8, ... until the overview fits one block (what the COG driver does itself)."""
    factors, f = [], 2
    while max(width, height) / (f // 2) > block_size(width, height):
        factors.append(f)
        f *= 2
    return factors


def has_cog_driver() -> bool:
    with rasterio.Env() as env:
        return "COG" in env.drivers()


def write_probability_tif(path: str | Path, raster: ProbabilityRaster, threads: int = 1,
                          looked_at: BaseGeometry | None = None, tags: dict[str, str] | None = None,
                          meaning: str = MEANING) -> Path:
    """Write ``raster`` to ``path`` as a COG; the file appears whole or not at all. ``threads``:
    GDAL's compression threads (a large run writes it alone, after conflation: at 102.7 km2 the write
    stage took 3.7 s instead of 5.3 s). ``looked_at``: the area the evidence saw, in the raster's
    CRS (the rest masked; drawn strip by strip, so no AOI-sized mask is held); ``tags``: dataset
    metadata (licence, attribution, source); ``meaning``: what the values are (a GPS run's are no
    model's probability)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = raster.prob.shape
    block = block_size(width, height)
    profile = {"driver": "GTiff", "width": width, "height": height, "count": 1, "dtype": "uint8",
               "crs": raster.crs, "transform": raster.transform}
    cog = has_cog_driver()
    with tempfile.TemporaryDirectory(prefix=".probability.", dir=path.parent) as tmp, \
            rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB, GDAL_TIFF_INTERNAL_MASK=True):
        plain = Path(tmp) / "plain.tif"
        with rasterio.open(plain, "w", **profile, tiled=True, blockxsize=block, blockysize=block) as dst:
            for row in range(0, height, block):  # in strips: the raster may be a file-backed AOI-sized array
                rows = min(block, height - row)
                strip = Window(0, row, width, rows)
                dst.write(probability_bytes(raster.prob[row:row + rows]), 1, window=strip)
                release_pages(raster.prob)  # a file-backed AOI-sized raster: one strip resident at a time
                if looked_at is not None:
                    seen = rasterize([(looked_at, 255)], out_shape=(rows, width), fill=0, dtype="uint8",
                                     transform=raster.transform * Affine.translation(0, row))
                    dst.write_mask(seen, window=strip)
            dst.set_band_description(1, clean_text(meaning))
            dst.update_tags(1, meaning=f"{clean_text(meaning)} (osmgap)")
            dst.update_tags(TIFFTAG_SOFTWARE=f"osmgap {__version__}",
                            **{clean_text(k): clean_text(v) for k, v in (tags or {}).items()})
            if not cog:
                dst.build_overviews(overview_factors(width, height), Resampling.average)
        done = Path(tmp) / "cog.tif"
        if cog:
            raster_copy(plain, done, driver="COG", BLOCKSIZE=block, COMPRESS="DEFLATE", LEVEL=DEFLATE_LEVEL,
                        OVERVIEWS="IGNORE_EXISTING", OVERVIEW_RESAMPLING="AVERAGE", NUM_THREADS=str(threads))
        else:
            raster_copy(plain, done, driver="GTiff", TILED="YES", BLOCKXSIZE=block, BLOCKYSIZE=block,
                        COMPRESS="DEFLATE", ZLEVEL=DEFLATE_LEVEL, COPY_SRC_OVERVIEWS="YES", NUM_THREADS=str(threads))
        os.replace(done, path)
    return path
