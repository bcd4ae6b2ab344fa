"""Files osmgap hands to GDAL (imagery, masks, candidate and label lines): never a description
of other files or of a web service posing as data.

GDAL picks a driver by a file's content, whatever its name. A VRT (raster or vector) or a web
service description (WMS, WMTS, WCS, WFS) saved as ``roads.geojson`` or ``image.tif`` makes GDAL
itself fetch the URLs it names, outside osmgap's HTTP client (no timeouts, retries or cache of
osmgap's, and it tells a third party the file was opened and from where), or read any local
file it names into the run. A candidates file is often a stranger's. Such a description is read
only when its name says what it is (``.vrt``, ``.xml``): the user's own mosaic of GeoTIFFs, say.
"""
from __future__ import annotations

from pathlib import Path

from osmgap.errors import InputError

HEAD_BYTES = 4096  # GDAL's drivers identify these descriptions within the first bytes too
DESCRIPTIONS = {b"<vrtdataset": "a GDAL VRT (a description of other rasters)",
                b"<ogrvrtdatasource": "an OGR VRT (a description of other vector files)",
                b"<gdal_wms": "a GDAL WMS description (a web map service)",
                b"<gdal_wmts": "a GDAL WMTS description (a web map tile service)",
                b"<wcs_gdal": "a GDAL WCS description (a web coverage service)",
                b"<ogrwfsdatasource": "a GDAL WFS description (a web feature service)"}
DESCRIPTION_SUFFIXES = (".vrt", ".xml")


def check_gdal_file(path: Path) -> None:
    """InputError when ``path`` is a description of other files or of a web service but its name
    says it is data; unreadable files are left to GDAL's own error."""
    if path.name.lower().endswith(DESCRIPTION_SUFFIXES) or not path.is_file():
        return
    try:
        with open(path, "rb") as f:
            head = f.read(HEAD_BYTES).lower()
    except OSError:
        return
    for marker, what in DESCRIPTIONS.items():
        if marker in head:
            raise InputError(path, f"is {what}, not the data its name says: GDAL would read the files or web "
                                   f"addresses it names; if it is yours, give it a {DESCRIPTION_SUFFIXES[0]} name")
