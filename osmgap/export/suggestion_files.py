"""The three suggestion files every verb that suggests writes: JOSM, GeoJSON, MapRoulette tasks."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from osmgap.core.datamodel import RoadNetwork, Suggestion
from osmgap.export.geojson import write_maproulette, write_suggestions_geojson
from osmgap.export.josm import Bounds, write_josm


def write_suggestion_files(folder: Path, suggestions: list[Suggestion], bounds: Bounds,
                           roads: RoadNetwork | None, notes: list[str],
                           per_suggestion: dict[str, Any]) -> None:
    """suggestions.osm, suggestions.geojson and maproulette.geojson into ``folder``; ``roads``
    gives the existing nodes new ways join (ids, versions, tags)."""
    write_josm(folder / "suggestions.osm", suggestions, bounds, existing_nodes=roads.nodes if roads else None,
               node_tags=roads.node_tags if roads else None, notes=notes,
               graph_ids=roads is not None and roads.provenance.get("format") == "mapconstruction")
    write_suggestions_geojson(folder / "suggestions.geojson", suggestions, per_suggestion)
    write_maproulette(folder / "maproulette.geojson", suggestions, per_suggestion)
