"""Secrets (API keys, tile keys, credentials in URLs) masked wherever text leaves osmgap.

Why one module: a key reaches text in many ways, in osmgap's own messages (masked where they are
made: :func:`redact`, :func:`public_url`) and in libraries' log lines, which osmgap does not
write: urllib3 logs the whole URL it fetched when a server's answer has a malformed header line,
and a tile URL carries its key in the query. :func:`never_log` registers a value, and from then
on every log line of the process, a traceback included, has it masked on its way to stderr
(osmgap's own handler, the one a library's record falls back to where none is set, as in a Dask
worker, and any handler added before the value was registered).
"""
from __future__ import annotations

import html
import json
import logging
import re
import threading
import urllib.parse
from collections.abc import Iterable

MASK = "***"
# query parameters named like credentials: keys, tokens, signatures, passwords; also the names
# imagery providers give their keys (LINZ Basemaps "api", HERE "app_code"/"app_id", Maxar
# SecureWatch "connectId"); a harmless parameter masked by mistake costs a printed URL nothing
SECRET_PARAM = re.compile(
    r"(?i)(key|token|secret|signature|sig|password|passwd|auth|credential|^api$|app_?code|app_?id|connect_?id|session)")

_registered: set[str] = set()
_lock = threading.Lock()


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every secret masked, also as a URL, form, HTML or JSON string would
    quote it (an error page may echo a header in any of these)."""
    for secret in secrets:
        if not secret:
            continue
        forms = {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret),
                 html.escape(secret), json.dumps(secret)[1:-1]}
        for form in sorted(forms, key=len, reverse=True):
            text = text.replace(form, MASK)
    return text


def quoted(value: object, secrets: Iterable[str | None], limit: int = 40) -> str:
    """``value`` quoted for a message, cut to ``limit`` characters after the secrets are masked
    (a secret cut first would no longer be found, and its first characters would show)."""
    return repr(redact(str(value), secrets)[:limit])


def url_secrets(url: str) -> list[str]:
    """The credential values a URL carries (query parameters named like keys, a password)."""
    parts = urllib.parse.urlsplit(url)
    found = [v for k, v in urllib.parse.parse_qsl(parts.query) if SECRET_PARAM.search(k) and v]
    return found + ([parts.password] if parts.password else [])


def public_url(url: str) -> str:
    """``url`` fit to print or write into an output: the values of query parameters that look
    like credentials (``access_token``, ``apikey``, ``sig``, ...) and any ``user:password@``
    masked. Tile URL templates often carry a key; summaries and error lines must not."""
    parts = urllib.parse.urlsplit(url)
    netloc = f"{MASK}@{parts.netloc.rsplit('@', 1)[-1]}" if "@" in parts.netloc else parts.netloc
    pairs = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    query = "&".join(f"{k}={MASK if SECRET_PARAM.search(k) else v}" for k, v in pairs)
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


class _Masking(logging.Filter):
    """Masks the registered secrets in a record's message and traceback (the record is changed
    in place, so every handler after this one sees it masked too)."""

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = sorted(_registered, key=len, reverse=True)
        if not secrets:
            return True
        message = record.getMessage()
        masked = redact(message, secrets)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, secrets)
        return True


_MASKING = _Masking()


def never_log(*secrets: str | None) -> None:
    """Mask these values in every log line of this process from now on."""
    values = {s for s in secrets if s}
    if not values:
        return
    with _lock:
        _registered.update(values)
    mask_log_handlers()


def mask_log_handlers() -> None:
    """Put the mask on the root logger's handlers and on the last-resort handler (idempotent):
    at each registration, and by the CLI once it has set up its handler."""
    handlers = [*logging.getLogger().handlers, *([logging.lastResort] if logging.lastResort else [])]
    for handler in handlers:
        if _MASKING not in handler.filters:
            handler.addFilter(_MASKING)
