"""Where the MapRoulette server and API key come from, without ever showing the key.

Order: ``--api-url`` / the ``MAPROULETTE_API_URL`` and ``MAPROULETTE_API_KEY`` environment
variables, then a TOML file (``--config``, default ``~/.config/osmgap/maproulette.toml``) with
``api_key = "..."`` and optionally ``api_url = "https://.../api/v2"``. The key is only ever put
in the ``apiKey`` header; ``repr`` and every message show it masked.
"""
from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import tomllib

from osmgap.errors import InputError

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://maproulette.org/api/v2"
DEFAULT_CONFIG = Path("~/.config/osmgap/maproulette.toml")
DEFAULT_TIMEOUT = (10.0, 120.0)  # connect, read (an upload of 50,000 tasks takes a while)


@dataclass(frozen=True)
class MapRouletteConfig:
    api_url: str
    api_key: str | None = field(default=None, repr=False)
    key_source: str = "nowhere"

    def __repr__(self) -> str:
        shown = "***" if self.api_key else None
        return f"MapRouletteConfig(api_url={self.api_url!r}, api_key={shown!r}, key_source={self.key_source!r})"

    @property
    def web_url(self) -> str:
        """The site the tasks are shown on: the API URL without ``/api/v2``."""
        return self.api_url.rstrip("/").removesuffix("/api/v2")

    def require_key(self) -> str:
        if not self.api_key:
            raise InputError(self.key_source if self.key_source != "nowhere" else None,
                             "no MapRoulette API key: set MAPROULETTE_API_KEY or api_key in "
                             f"{DEFAULT_CONFIG} (MapRoulette > your user > API key)")
        return self.api_key


def load_config(api_url: str | None = None, config_path: str | Path | None = None) -> MapRouletteConfig:
    """Resolve server and key; a named config file that is missing or bad is an InputError."""
    path = Path(config_path).expanduser() if config_path else DEFAULT_CONFIG.expanduser()
    from_file = _read_file(path, required=config_path is not None)
    env_key = os.environ.get("MAPROULETTE_API_KEY", "").strip()
    key, source = (env_key, "$MAPROULETTE_API_KEY") if env_key else (from_file.get("api_key"), str(path))
    url = api_url or os.environ.get("MAPROULETTE_API_URL") or from_file.get("api_url") or DEFAULT_API_URL
    if not str(url).startswith(("http://", "https://")):
        raise InputError(api_url and "--api-url" or str(path), f"MapRoulette API URL must be http(s)://..., got {url!r}")
    return MapRouletteConfig(str(url).rstrip("/"), key or None, source if key else "nowhere")


def _read_file(path: Path, required: bool) -> dict[str, str]:
    if not path.is_file():
        if required:
            raise InputError(path, "MapRoulette config file not found")
        return {}
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(path, f"not valid TOML ({exc})") from None
    if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("%s can be read by other users; it holds an API key: chmod 600 it", path)
    bad = {k: v for k, v in doc.items() if k in ("api_key", "api_url") and not isinstance(v, str)}
    if bad:
        raise InputError(path, f"{', '.join(bad)} must be a string")
    return {k: v for k, v in doc.items() if k in ("api_key", "api_url")}
