"""Native code's stdout is kept off osmgap's: written through the C library, as spdlog writes."""
import subprocess
import sys

SCRIPT = """
import ctypes, logging, sys
from osmgap.core.quiet import native_stdout_quiet
libc = ctypes.CDLL(None)
if sys.argv[1] == "-v":
    logging.getLogger("osmgap").setLevel(logging.INFO)
print("before", flush=True)
with native_stdout_quiet():
    with native_stdout_quiet():  # nested, as a matcher built inside a match would be
        libc.printf(b"[info] native line\\n")
    libc.printf(b"[info] second native line\\n")
print("after", flush=True)
libc.printf(b"native after\\n")
"""


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", SCRIPT, *args], capture_output=True, text=True, check=True)


def test_native_lines_go_nowhere_by_default_and_stdout_comes_back():
    proc = _run("-q")
    assert proc.stdout.splitlines() == ["before", "after", "native after"] and "[info]" not in proc.stderr


def test_native_lines_go_to_stderr_when_verbose():
    proc = _run("-v")
    assert proc.stdout.splitlines() == ["before", "after", "native after"]
    assert proc.stderr.splitlines() == ["[info] native line", "[info] second native line"]

