"""Errors that the CLI turns into exit codes.

An ``InputError`` is the user's to fix (exit 2); a ``ServiceError`` is a server's failure (exit 1);
``Busy``: another run holds the state (exit 3); anything else is a bug in osmgap (exit 1).
Its message is one line that names the file and the problem, control characters escaped.
"""
from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
"""C0, DEL and C1 controls, line and paragraph separators, lone surrogates (an undecodable name)."""


def escape_controls(text: str) -> str:
    """``text`` with each control character written as Python's repr writes it (``\\n``,
    ``\\x1b``): a file name cannot forge a second line or a terminal escape in a message."""
    return _CONTROL.sub(lambda m: repr(m[0])[1:-1], text)


class InputError(Exception):
    """Bad input: a missing, corrupt or unsuitable file or argument."""

    def __init__(self, source: str | Path | None, problem: str):
        self.source = str(source) if source is not None else None
        self.problem = problem
        shown = escape_controls(problem)
        super().__init__(f"{escape_controls(self.source)}: {shown}" if self.source else shown)

    def __reduce__(self) -> tuple[type[InputError], tuple[str | None, str]]:
        """Rebuilt from both parts, so an InputError raised in a Dask worker arrives whole."""
        return InputError, (self.source, self.problem)


class ServiceError(Exception):
    """A server osmgap needs (Overpass, a tile server) failed after the retries: down, overloaded,
    or answering what is no answer. Not the user's input (exit 1, as a MapRoulette failure), one
    line naming the server and what it did."""

    def __init__(self, service: str, problem: str):
        self.service = service
        self.problem = problem
        super().__init__(f"{escape_controls(service)}: {escape_controls(problem)}")

    def __reduce__(self) -> tuple[type[ServiceError], tuple[str, str]]:
        return ServiceError, (self.service, self.problem)


EXIT_BUSY = 3  # Busy's exit code: cron tells "skipped, another run is on" from a failure


class Busy(Exception):
    """Another osmgap process holds the lock of the state this run would write (exit 3: nothing
    done, nothing wrong; osmgap.workspace.lock)."""


def one_line(exc: BaseException) -> str:
    """An exception's text on one line (library messages span lines), or its type's name."""
    return escape_controls(" ".join(str(exc).split())) or type(exc).__name__


@contextlib.contextmanager
def nesting_refused(source: str | Path, kind: str) -> Iterator[None]:
    """Python's JSON and TOML parsers (and code walking what they read) recurse once per level:
    a file nested deeper than the recursion limit is an InputError naming it, not a crash."""
    try:
        yield
    except RecursionError:
        raise InputError(source, f"{kind} nested too deeply to read") from None
