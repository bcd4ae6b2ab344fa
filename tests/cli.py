"""Running the ``osmgap`` command from tests: in a child process, as a user or cron runs it.

In-process runs (``osmgap.cli.main``) are the fast choice for bad-input cases; a child process
is for what only a real process shows: exit codes after a kill, the lock, start-up imports.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import PROJECT


def osmgap_cli(*args: str, cwd: Path = PROJECT, env: dict[str, str] | None = None,
               timeout: float = 600) -> subprocess.CompletedProcess:
    """``python -m osmgap ARGS`` in ``cwd``; stdout and stderr captured as text."""
    return subprocess.run([sys.executable, "-m", "osmgap", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)
