"""The Leaflet pages osmgap writes: ``osmgap scan``'s map.html, and what report.html shares with it.

One file each: Leaflet's JavaScript and CSS (fetched at setup from the npm registry,
integrity-checked, see scripts/fetch_leaflet.sh), the shared map script (templates/webmap.js:
basemap, JOSM remote control and iD links, popups) and the data are inlined, so a page opens from
disk or a mail attachment. The one thing it fetches is the basemap (OpenStreetMap's standard tiles
unless ``--basemap`` says otherwise, or ``none``); without network the vector layers still show.

Escaping: every text from a file or a server reaches the page either HTML-escaped or inside the
inlined JSON with ``<``, ``>`` and ``&`` as ``\\u`` escapes (so no text can end or re-open the
script element), and the page's script writes it with ``textContent``, never as HTML.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from osmgap.core.atomic import write_text_atomic
from osmgap.errors import InputError

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
PIN = HERE / "leaflet.pin"
DEFAULT_LEAFLET_DIR = HERE / "vendor" / "leaflet"
DEFAULT_JOSM_URL = "http://127.0.0.1:8111"
OSM_TILES = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
# OSM's tile usage policy asks for this attribution, linked to the copyright page.
OSM_ATTRIBUTION = '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors'
ROADS_ATTRIBUTION = "roads: " + OSM_ATTRIBUTION + " (ODbL)"
TILE_PLACEHOLDERS = {"z", "x", "y", "-y", "s", "r"}  # what Leaflet's TileLayer fills in


@dataclass(frozen=True)
class Basemap:
    """A tile layer under the vectors; ``attribution`` is HTML built here (Leaflet shows it as such)."""

    url: str
    attribution: str
    max_zoom: int = 19


def check_josm_url(text: str) -> str:
    """``text`` if it is an http(s) URL with a host (JOSM's remote control); InputError otherwise:
    without a scheme the page would resolve it against its own file and call JOSM "not reachable"."""
    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError("--josm-url", f"{text!r} must be an http(s) URL, e.g. {DEFAULT_JOSM_URL}")
    return text.strip()


def parse_basemap(text: str) -> Basemap | None:
    """``osm`` (OpenStreetMap's standard tiles), ``none`` (no basemap: the page loads nothing), or
    an http(s) tile URL with {z}, {x} and {y} (or {-y}); InputError for anything else."""
    spec = text.strip()
    if spec.lower() == "none":
        return None
    if spec.lower() == "osm" or spec == OSM_TILES:
        return Basemap(OSM_TILES, OSM_ATTRIBUTION)
    parts = urlsplit(spec)
    keys = set(re.findall(r"\{([^{}]*)\}", spec))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError("--basemap", f"{spec!r} is not an http(s) tile URL, 'osm' or 'none'")
    if not {"z", "x"} <= keys or not keys & {"y", "-y"} or keys - TILE_PLACEHOLDERS:
        raise InputError("--basemap", f"{spec!r} must hold {{z}}, {{x}} and {{y}} (or {{-y}}), and no placeholder "
                                      f"but {', '.join(sorted(TILE_PLACEHOLDERS))}")
    return Basemap(spec, "basemap: " + escape(parts.hostname))


def pinned_leaflet_version() -> str:
    for line in PIN.read_text(encoding="utf-8").splitlines():
        if line.startswith("LEAFLET_VERSION="):
            return line.split("=", 1)[1].strip()
    raise RuntimeError(f"{PIN}: no LEAFLET_VERSION")


def leaflet_dir() -> Path:
    return Path(os.environ.get("OSMGAP_LEAFLET_DIR") or DEFAULT_LEAFLET_DIR)


def leaflet_assets() -> tuple[str, str]:
    """Leaflet's (js, css) text; InputError naming the folder when setup has not fetched it."""
    folder = leaflet_dir()
    want = pinned_leaflet_version()
    version = (folder / "VERSION").read_text().strip() if (folder / "VERSION").is_file() else None
    js, css = folder / "leaflet.js", folder / "leaflet.css"
    if version != want or not js.is_file() or not css.is_file():
        found = f"found {version}" if version else "not found"
        raise InputError(folder, f"Leaflet {want} for the map pages is {found}: run scripts/fetch_leaflet.sh "
                                 "(scripts/setup.sh does) or set OSMGAP_LEAFLET_DIR")
    return js.read_text(encoding="utf-8"), css.read_text(encoding="utf-8")


def _script_safe(text: str) -> str:
    """Trusted code that cannot close the <script>/<style> element it is inlined into."""
    return text.replace("</", "<\\/")


def script_json(value: Any) -> str:
    """JSON to inline in a <script>: ``<``, ``>`` and ``&`` as \\u escapes (valid JSON and JS),
    so no text in it can close the element or open a comment the HTML parser would act on."""
    text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_page(template: str, data: dict[str, Any], texts: dict[str, str],
                html_parts: dict[str, str] | None = None, basemap: Basemap | None = None) -> str:
    """``templates/<template>`` with Leaflet, the shared script and ``data`` inlined.

    ``texts`` are escaped here; ``html_parts`` are HTML their caller built and escaped. One pass
    over the template's ``{{KEY}}`` marks, so nothing inserted is read as a mark again."""
    js, css = leaflet_assets()
    data = {**data, "basemap": asdict(basemap) if basemap else None,  # OSM's tiles credit OSM already
            "roads_attribution": None if basemap and basemap.url == OSM_TILES else ROADS_ATTRIBUTION}
    values = {"LEAFLET_VERSION": escape(pinned_leaflet_version()), "LEAFLET_CSS": _script_safe(css),
              "LEAFLET_JS": _script_safe(js), "WEBMAP_JS": _script_safe((TEMPLATES / "webmap.js").read_text("utf-8")),
              "WEBMAP_CSS": _script_safe((TEMPLATES / "webmap.css").read_text("utf-8")),
              "DATA": script_json(data), **{k: escape(v, quote=True) for k, v in texts.items()}, **(html_parts or {})}
    page = (TEMPLATES / template).read_text(encoding="utf-8")
    return re.sub(r"\{\{([A-Z_]+)\}\}", lambda m: values[m.group(1)], page)


def render_scan_map(tiles: dict[str, Any], aoi_geometry: dict[str, Any], title: str,
                    josm_url: str = DEFAULT_JOSM_URL, osm: dict[str, Any] | None = None,
                    basemap: Basemap | None = None, aoi_name: str = "",
                    unmapped: dict[str, Any] | None = None, warnings: list[str] | None = None,
                    evidence: dict[str, bool] | None = None) -> str:
    """map.html as a string: the scored tiles, the road they lack (``unmapped``) and the OSM
    roads over the basemap; the run's ``warnings`` in the panel (a page read alone must say what
    its greys do not mean); ``evidence``: which sources ran ({"model": .., "gps": ..})."""
    empty = {"type": "FeatureCollection", "features": []}
    data = {"tiles": tiles, "aoi": aoi_geometry, "osm": osm or empty, "unmapped": unmapped or empty,
            "josm": josm_url.rstrip("/"), "title": title, "aoi_name": aoi_name, "warnings": warnings or [],
            "evidence": evidence or {"model": True, "gps": False}}
    return render_page("scanmap.html", data, {"TITLE": title}, basemap=basemap)


def write_scan_map(path: str | Path, tiles: dict[str, Any], aoi_geometry: dict[str, Any], title: str,
                   josm_url: str = DEFAULT_JOSM_URL, osm: dict[str, Any] | None = None,
                   basemap: Basemap | None = None, aoi_name: str = "",
                   unmapped: dict[str, Any] | None = None, warnings: list[str] | None = None,
                   evidence: dict[str, bool] | None = None) -> None:
    write_text_atomic(path, render_scan_map(tiles, aoi_geometry, title, josm_url, osm, basemap, aoi_name, unmapped,
                                            warnings, evidence))


def lines_collection(frame: Any, columns: tuple[str, ...] = ("osm_id", "highway")) -> dict[str, Any]:
    """Road lines of a GeoDataFrame (WGS84) as a FeatureCollection for a page: coordinates to
    1e-6 degree (~0.1 m), only ``columns`` as properties, so the page stays small."""
    import shapely

    if frame is None or len(frame) == 0:
        return {"type": "FeatureCollection", "features": []}
    keep = [c for c in columns if c in frame.columns]
    geoms = shapely.set_precision(frame.geometry.to_numpy(), 1e-6)
    features = []
    for i, g in enumerate(geoms):
        if g is None or g.is_empty:
            continue
        props = {c: _plain(frame[c].iloc[i]) for c in keep}
        features.append({"type": "Feature", "properties": props, "geometry": shapely.geometry.mapping(g)})
    return {"type": "FeatureCollection", "features": features}


def _plain(value: Any) -> Any:
    """A JSON-ready cell: numpy numbers as Python ones, missing values as None."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    return value.item() if hasattr(value, "item") else value
