"""`osmgap publish` as the tests call it: in-process, against the fake server."""
from __future__ import annotations

from pathlib import Path

from osmgap.cli import main

CHALLENGE = "osmgap test: missing roads"


def publish(fake, out: Path, *extra: str) -> int:
    return main(["publish", "--out", str(out), "--challenge", CHALLENGE, "--project", "1",
                 "--api-url", fake.url, *extra])
