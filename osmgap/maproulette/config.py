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
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import tomllib

from osmgap.errors import InputError, nesting_refused

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
    key, source = (env_key, "$MAPROULETTE_API_KEY") if env_key else ((from_file.get("api_key") or "").strip(), str(path))
    if key:
        _check_key(key, source)
    url, url_source = next((u, where) for u, where in ((api_url, "--api-url"),
                                                       (os.environ.get("MAPROULETTE_API_URL"), "$MAPROULETTE_API_URL"),
                                                       (from_file.get("api_url"), str(path)),
                                                       (DEFAULT_API_URL, "default")) if u)
    return MapRouletteConfig(_check_url(url, url_source), key or None, source if key else "nowhere")


def _check_key(key: str, source: str) -> None:
    """A key goes into an HTTP header as it is: one that cannot (a line break, a space, a
    character beyond ASCII) is refused here, without showing it, rather than by ``requests``
    in a message that would quote it."""
    if not all(33 <= ord(c) <= 126 for c in key):
        raise InputError(source, "the MapRoulette API key has spaces, line breaks or other characters an "
                                 "API key does not have; copy it again from MapRoulette > your user > API key")


def _check_url(url: str, source: str) -> str:
    """An http(s) URL with a host and nothing that would travel into messages or logs with it
    (user:password@, ?query, #fragment). Plain http to another machine sends the key in clear."""
    parts = urllib.parse.urlsplit(url.strip())
    if "@" in parts.netloc or parts.query or parts.fragment:
        raise InputError(source, "the MapRoulette API URL must not hold user:password@, ?query or #fragment "
                                 "(the key goes into the apiKey header, from $MAPROULETTE_API_KEY or the config file)")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if parts.scheme not in ("http", "https") or not parts.hostname or port == 0 \
            or any(not c.isprintable() or c.isspace() for c in url.strip()):
        raise InputError(source, "the MapRoulette API URL must be http(s)://HOST[:PORT]/..., "
                                 "e.g. https://maproulette.org/api/v2")
    if parts.scheme == "http" and parts.hostname not in ("localhost", "127.0.0.1", "::1"):
        log.warning("%s: the MapRoulette API URL is plain http; the API key travels unencrypted", source)
    return urllib.parse.urlunsplit(parts).rstrip("/")


def _read_file(path: Path, required: bool) -> dict[str, str]:
    if not path.is_file():
        if required:
            raise InputError(path, "MapRoulette config file not found")
        return {}
    try:
        with nesting_refused(path, "TOML"):
            doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(path, f"not valid TOML ({exc})") from None
    if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("%s can be read by other users; it holds an API key: chmod 600 it", path)
    bad = {k: v for k, v in doc.items() if k in ("api_key", "api_url") and not isinstance(v, str)}
    if bad:
        raise InputError(path, f"{', '.join(bad)} must be a string")
    return {k: v for k, v in doc.items() if k in ("api_key", "api_url")}
