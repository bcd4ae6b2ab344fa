"""Writers of the files a mapper opens: JOSM .osm, suggestions GeoJSON, MapRoulette tasks, the
overview picture, the probability COG, the scan map page and the state report."""
