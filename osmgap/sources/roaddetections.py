"""Microsoft RoadDetections (github.com/microsoft/RoadDetections): roads mined from Bing imagery,
ODbL, published as one TSV per region, read directly so nobody has to convert gigabytes first.

The layout, from that repository's README (FAQ "What is the data format?", commit 7a43614): each
row is an ISO 3166 alpha-3 code, a TAB, and the GeoJSON of one road, a Feature whose properties
hold ``WidthMeters`` (older drops: empty properties), e.g.
``IRQ<TAB>{"type":"Feature","geometry":{"type":"LineString","coordinates":[[44.88,31.96],...]},"properties":{}}``.
A bare geometry in the second column is read too. The downloads are zip files holding the TSV;
``.tsv``, ``.tsv.gz`` and a ``.zip`` with one ``.tsv`` inside are read as they are.

Why chunks: a region is up to 17 million rows. The rows are read 100,000 at a time, parsed by
GEOS (shapely.from_geojson) and only those whose bounds meet the AOI's are kept, so memory
follows the AOI, not the file. The files hold roads that GEOS cannot make a line of (a single
point: about 12 % of the US rows, issue #19 there): they are skipped and counted in one warning.
A row that is no JSON at all means the file is not this format: an InputError naming the row.
"""
from __future__ import annotations

import csv
import json
import logging
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from osmgap.core.aoi import Aoi
from osmgap.core.datamodel import WGS84
from osmgap.core.osmtags import clean_text
from osmgap.errors import InputError, one_line

log = logging.getLogger(__name__)

CHUNK_ROWS = 100_000
SUFFIXES = (".tsv", ".tsv.gz")


def is_roaddetections(path: Path) -> bool:
    """A RoadDetections TSV by its name: ``.tsv``/``.tsv.gz``, or a zip file holding one ``.tsv``."""
    name = path.name.lower()
    if name.endswith(SUFFIXES):
        return True
    if not (name.endswith(".zip") and path.is_file() and zipfile.is_zipfile(path)):
        return False
    with zipfile.ZipFile(path) as archive:
        members = [n for n in archive.namelist() if not n.endswith("/")]
    return len(members) == 1 and members[0].lower().endswith(".tsv")


def read_roaddetections(path: Path, aoi: Aoi) -> gpd.GeoDataFrame:
    """The rows' roads whose bounds meet the AOI's, as WGS84 lines with their ``region`` code."""
    minx, miny, maxx, maxy = aoi.bounds
    regions: list[np.ndarray] = []
    lines: list[np.ndarray] = []
    skipped = 0
    try:
        reader = pd.read_csv(path, sep="\t", header=None, names=["region", "geojson"], dtype=str,
                             quoting=csv.QUOTE_NONE, keep_default_na=False, chunksize=CHUNK_ROWS,
                             compression="infer", engine="c")
        first_row = 1
        for chunk in reader:
            geoms = _geometries(chunk["geojson"].to_numpy(object), first_row, path)
            first_row += len(chunk)
            ok = ~shapely.is_missing(geoms)
            ok[ok] = shapely.length(geoms[ok]) > 0  # a road of one repeated point is no line
            skipped += int((~ok).sum())
            bounds = shapely.bounds(geoms[ok])
            near = (bounds[:, 0] <= maxx) & (bounds[:, 2] >= minx) & (bounds[:, 1] <= maxy) & (bounds[:, 3] >= miny)
            lines.append(geoms[ok][near])
            regions.append(chunk["region"].to_numpy(object)[ok][near])
    except (pd.errors.ParserError, UnicodeDecodeError, zipfile.BadZipFile, EOFError, OSError) as exc:
        raise InputError(path, f"not a RoadDetections TSV (region TAB GeoJSON per row): {one_line(exc)[:200]}") from None
    if first_row == 1:
        raise InputError(path, "holds no rows")
    if skipped:
        log.warning("%s: skipped %d row(s) whose road is no line (a single point or one repeated point)",
                    clean_text(path), skipped)
    geometry = np.concatenate(lines) if lines else np.empty(0, dtype=object)
    return gpd.GeoDataFrame({"region": np.concatenate(regions) if regions else np.empty(0, dtype=object)},
                            geometry=gpd.GeoSeries(geometry, crs=WGS84))


def _geometries(texts: np.ndarray, first_row: int, path: Path) -> np.ndarray:
    """The geometry of each row's GeoJSON (a Feature's, or a bare geometry); None where GEOS can
    make none of a JSON object (a degenerate road, skipped); an InputError for a row that is not
    JSON, naming its row number."""
    geoms = shapely.from_geojson(texts, on_invalid="ignore")
    for i in np.flatnonzero(shapely.is_missing(geoms)):
        try:
            doc = json.loads(texts[i])
        except (json.JSONDecodeError, TypeError):
            doc = None
        if not isinstance(doc, dict) or doc.get("type") not in ("Feature", "LineString", "MultiLineString"):
            raise InputError(path, f"row {first_row + i}: the second column is not the GeoJSON of a road "
                                   f"({clean_text(texts[i], 60)!r})")
    return geoms
