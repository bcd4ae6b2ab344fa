"""Secrets are masked in every log line once registered, a library's and a traceback included,
and the URL parameters imagery providers name their keys by are masked in printed URLs."""
from __future__ import annotations

import io
import logging

import pytest

from osmgap.core.secrets import never_log, public_url, url_secrets


def test_a_registered_secret_is_masked_in_a_librarys_log_line_and_its_traceback():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)  # a handler that was there before the secret was known
    try:
        never_log("k3y-0f-th3-t1l3s")
        try:
            raise ValueError("url=https://tiles.example/1/2/3.png?key=k3y-0f-th3-t1l3s")
        except ValueError:
            logging.getLogger("some.library").warning("Failed to parse headers (url=%s)",
                                                            "https://tiles.example/1/2/3.png?key=k3y-0f-th3-t1l3s",
                                                            exc_info=True)
    finally:
        root.removeHandler(handler)
    text = stream.getvalue()
    assert "Failed to parse headers (url=https://tiles.example/1/2/3.png?key=***)" in text
    assert "Traceback" in text and "ValueError: url=https://tiles.example/1/2/3.png?key=***" in text
    assert "k3y-0f-th3-t1l3s" not in text


@pytest.mark.parametrize("query,secret", [
    ("api=c01h-LINZ-KEY", "c01h-LINZ-KEY"),  # LINZ Basemaps
    ("app_id=HERE-ID&app_code=HERE-CODE", "HERE-CODE"),  # HERE
    ("connectId=maxar-connect-id", "maxar-connect-id"),  # Maxar SecureWatch
    ("access_token=pk.mapbox", "pk.mapbox"),
    ("apikey=thunder", "thunder"),
])
def test_the_names_imagery_providers_give_their_keys_are_masked(query, secret):
    url = f"https://tiles.example/{{z}}/{{x}}/{{y}}.png?{query}&style=dark"
    assert secret not in public_url(url) and "style=dark" in public_url(url)
    assert secret in url_secrets(url)
