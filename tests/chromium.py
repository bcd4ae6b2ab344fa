"""Open a page in headless Chromium (Debian ``chromium``): the browser is the reader that
matters for the report, not our own parser.

Flags: no sandbox (containers), no GPU, no background networking, component updates, sync or
first-run work, a fresh profile each time, and every host name resolving to nothing, so a
page that tried to fetch anything from the network would show it by missing content.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
         "--host-resolver-rules=MAP * ~NOTFOUND"]


def chromium_binary() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError("headless Chromium not found: apt-get install -y chromium (scripts/setup.sh --test)")


def _run(extra: list[str], page: Path, timeout_s: float, query: str = "",
         flags: list[str] = FLAGS) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        cmd = [chromium_binary(), *flags, f"--user-data-dir={profile}", *extra, page.resolve().as_uri() + query]
        return subprocess.run(cmd, capture_output=True, timeout=timeout_s, check=False)


def dump_dom_with_loopback(page: Path, query: str = "", budget_ms: int = 5000, timeout_s: float = 120) -> str:
    """Like dump_dom, but 127.0.0.1 stays reachable (a test's local server standing in for a
    desktop program such as JOSM) and the page gets ``budget_ms`` of virtual time after loading,
    so the requests it makes finish before the DOM is taken."""
    flags = [f for f in FLAGS if not f.startswith("--host-resolver-rules")]
    flags.append("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1")
    return _dom(_run(["--dump-dom", f"--virtual-time-budget={budget_ms}"], page, timeout_s, query, flags))


def dump_dom(page: Path, timeout_s: float = 120) -> str:
    """The DOM after the page loaded, serialised by Chromium."""
    return _dom(_run(["--dump-dom"], page, timeout_s))


def _dom(proc: subprocess.CompletedProcess) -> str:
    if proc.returncode != 0 or not proc.stdout:
        raise RuntimeError(f"chromium --dump-dom failed ({proc.returncode}): {proc.stderr.decode()[-2000:]}")
    return proc.stdout.decode("utf-8")


def screenshot(page: Path, png: Path, size: tuple[int, int] = (1000, 2400), timeout_s: float = 120) -> Path:
    png.parent.mkdir(parents=True, exist_ok=True)
    png.unlink(missing_ok=True)
    proc = _run([f"--screenshot={png.resolve()}", f"--window-size={size[0]},{size[1]}"], page, timeout_s)
    if proc.returncode != 0 or not png.is_file():
        raise RuntimeError(f"chromium --screenshot failed ({proc.returncode}): {proc.stderr.decode()[-2000:]}")
    return png


def with_click(page: Path, selector: str, dest: Path) -> Path:
    """A copy of ``page`` at ``dest`` that clicks the middle of the first element matching the
    CSS ``selector`` once loaded (a test harness appended to the page, not part of it)."""
    click = (f"<script>const el = document.querySelector({selector!r}); const r = el.getBoundingClientRect();"
             "el.dispatchEvent(new MouseEvent('click', {bubbles: true, cancelable: true, view: window,"
             " clientX: r.x + r.width / 2, clientY: r.y + r.height / 2}));</script></body>")
    text = page.read_text(encoding="utf-8")
    at = text.rindex("</body>")
    dest.write_text(text[:at] + click + text[at + len("</body>"):], encoding="utf-8")
    return dest
