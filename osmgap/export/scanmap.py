"""map.html of ``osmgap scan``: a self-contained Leaflet page of the scored tiles.

One file, no network: Leaflet's JavaScript and CSS (fetched at setup from the npm registry,
integrity-checked, see scripts/fetch_leaflet.sh) and the tiles are inlined, so the page works
offline and from a mail attachment. There is no background map on purpose: a tile server would
be the one thing it fetched. Tiles are coloured by score; a click sends the tile to JOSM through
its remote control (``load_and_zoom``; base URL editable in the page or given as ``?josm=``)
and offers an iD link.
"""
from __future__ import annotations

import json
import os
from html import escape
from pathlib import Path
from typing import Any

from osmgap.core.atomic import write_text_atomic
from osmgap.errors import InputError

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE / "templates" / "scanmap.html"
PIN = HERE / "leaflet.pin"
DEFAULT_LEAFLET_DIR = HERE / "vendor" / "leaflet"
DEFAULT_JOSM_URL = "http://127.0.0.1:8111"


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
        raise InputError(folder, f"Leaflet {want} for the scan map is {found}: run scripts/fetch_leaflet.sh "
                                 "(scripts/setup.sh does) or set OSMGAP_LEAFLET_DIR")
    return js.read_text(encoding="utf-8"), css.read_text(encoding="utf-8")


def _script_safe(text: str) -> str:
    """Text that cannot close the <script>/<style> element it is inlined into."""
    return text.replace("</", "<\\/")


def render_scan_map(tiles: dict[str, Any], aoi_geometry: dict[str, Any], title: str,
                    josm_url: str = DEFAULT_JOSM_URL) -> str:
    """The page as a string."""
    js, css = leaflet_assets()
    data = {"tiles": tiles, "aoi": aoi_geometry, "josm": josm_url.rstrip("/"), "title": title}
    page = TEMPLATE.read_text(encoding="utf-8")
    for key, value in (("TITLE", escape(title)), ("LEAFLET_VERSION", escape(pinned_leaflet_version())),
                       ("LEAFLET_CSS", css.replace("</style", "<\\/style")), ("LEAFLET_JS", _script_safe(js)),
                       ("DATA", _script_safe(json.dumps(data)))):
        page = page.replace("{{" + key + "}}", value)
    return page


def write_scan_map(path: str | Path, tiles: dict[str, Any], aoi_geometry: dict[str, Any], title: str,
                   josm_url: str = DEFAULT_JOSM_URL) -> None:
    write_text_atomic(path, render_scan_map(tiles, aoi_geometry, title, josm_url))
