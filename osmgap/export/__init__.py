"""Writers of the files a mapper opens: JOSM .osm, suggestions GeoJSON, MapRoulette tasks.

``overview.py`` (matplotlib) is not imported here, so the light writers load without it.
"""
from __future__ import annotations

from osmgap.export.geojson import (suggestions_feature_collection, write_maproulette,
                                   write_suggestions_geojson)
from osmgap.export.josm import osm_xml, write_josm

__all__ = ["osm_xml", "write_josm", "suggestions_feature_collection",
           "write_suggestions_geojson", "write_maproulette"]
