"""The three suggestion files every verb that suggests writes: JOSM, GeoJSON, MapRoulette tasks."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from osmgap.core.datamodel import RoadNetwork, Suggestion
from osmgap.export.geojson import write_maproulette, write_suggestions_geojson
from osmgap.export.josm import Bounds, write_josm

# A demonstration's suggestions are OSM roads taken out on purpose (osmgap.sources.sample): JOSM
# shows no comment, so the way itself says it, or a mapper who merges the file uploads a duplicate.
DEMONSTRATION_CAUTION = "DEMONSTRATION: this road is in OSM already, do not upload it"
# Geometry a model traced from imagery nobody cleared for OSM is derived from it: said where JOSM
# shows it (the notes' warning is a comment), as publish pre-draws roads for cleared imagery only.
NOT_CLEARED_CAUTION = "imagery not cleared for OSM: retrace it on permitted imagery"


def write_suggestion_files(folder: Path, suggestions: list[Suggestion], bounds: Bounds,
                           roads: RoadNetwork | None, notes: list[str],
                           per_suggestion: dict[str, Any], imagery_cleared: bool | None = None) -> None:
    """suggestions.osm, suggestions.geojson and maproulette.geojson into ``folder``; ``roads``
    gives the existing nodes new ways join (ids, versions, tags); a ``demonstration`` in
    ``per_suggestion``, else ``imagery_cleared`` False (imagery evidence not cleared for tracing
    into OSM; None: no imagery, or not said), is said in every way's fixme too."""
    caution = (DEMONSTRATION_CAUTION if per_suggestion.get("demonstration")
               else NOT_CLEARED_CAUTION if imagery_cleared is False else "")
    write_josm(folder / "suggestions.osm", suggestions, bounds, existing_nodes=roads.nodes if roads else None,
               node_tags=roads.node_tags if roads else None, notes=notes,
               graph_ids=roads is not None and roads.provenance.get("format") == "mapconstruction",
               caution=caution)
    write_suggestions_geojson(folder / "suggestions.geojson", suggestions, per_suggestion)
    write_maproulette(folder / "maproulette.geojson", suggestions, per_suggestion)
