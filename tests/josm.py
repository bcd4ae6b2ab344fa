"""Run JOSM's own validator on a file we wrote: the reader that matters is JOSM's, not ours.

Observed with Debian ``josm`` 0.0.svn18646 on OpenJDK 17:
- ``java -jar josm.jar validate -i FILE -o OUT.geojson``; OUT is RS-delimited line-by-line
  GeoJSON, one FeatureCollection per issue. Its first feature carries ``message``, ``test``,
  ``code``, ``severity`` and ``severityInteger``; the other features are the objects involved.
  No issue gives an empty OUT.
- ``severity`` is translated ("Fehler" under --language=de), so we force English and judge by
  ``severityInteger``: 1 "Errors", 2 "Warnings", 3 "Other".
- A file JOSM cannot read (bad XML, a way with a missing node, a positive id without version)
  exits 1, logs "Could not load input file" on stdout and the cause as SEVERE on stderr, and
  writes no OUT. Any of the three marks a failure here.
- JOSM ignores $HOME for its files (Java takes user.home from the password database), so
  ``-Duser.home`` and ``-Djosm.home`` point at a temporary directory: no preferences leak in or
  out. Its API-capabilities test tries to reach api.openstreetmap.org and logs a SEVERE line
  when offline; that does not fail the run.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

JOSM_JAR = Path(os.environ.get("OSMGAP_JOSM_JAR", "/usr/share/josm/josm.jar"))
SEVERITY = {1: "Errors", 2: "Warnings", 3: "Other"}
LOAD_FAILED = "Could not load input file"


class JosmError(RuntimeError):
    """JOSM did not read the file, or did not finish."""


def josm_available() -> bool:
    return shutil.which("java") is not None and JOSM_JAR.is_file()


def josm_validate(osm_path: Path, out_dir: Path, timeout_s: float = 300) -> list[dict]:
    """JOSM's issues for ``osm_path`` as GeoJSON features; raises JosmError if it cannot parse it."""
    if not josm_available():
        raise JosmError(f"JOSM not installed at {JOSM_JAR} (scripts/setup.sh --test installs it)")
    osm_path, out_dir = Path(osm_path).resolve(), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = (out_dir / f"{osm_path.stem}.josm-validation.geojson").resolve()
    out.unlink(missing_ok=True)  # JOSM appends to an output it cannot delete
    proc = _java(["-jar", str(JOSM_JAR), "validate", "--language=en", "-i", str(osm_path), "-o", str(out)],
                 timeout_s, f"JOSM validate of {osm_path}")
    stdout = proc.stdout.decode("utf-8", "replace")
    stderr = proc.stderr.decode("utf-8", "replace")
    if proc.returncode != 0 or LOAD_FAILED in stdout + stderr or not out.is_file():
        raise JosmError(f"JOSM could not validate {osm_path} (exit {proc.returncode}):\n"
                        f"{_severe_lines(stderr) or stderr[-4000:]}")
    return parse_validator_output(out.read_bytes())


def josm_merge(data_osm: Path, changes: list[Path], timeout_s: float = 300) -> dict:
    """The osmChange files merged in turn by JOSM onto the data layer ``data_osm`` (tests/JosmMerge.java):
    ``conflicts`` and, per new way, its nodes as (id, is_new, is_complete, lon, lat, referrers)."""
    if not josm_available():
        raise JosmError(f"JOSM not installed at {JOSM_JAR} (scripts/setup.sh --test installs it)")
    source = Path(__file__).with_name("JosmMerge.java")
    proc = _java(["-cp", str(JOSM_JAR), str(source), str(Path(data_osm).resolve()),
                  *(str(Path(c).resolve()) for c in changes)], timeout_s, f"JOSM merge of {len(changes)} osmChange file(s)")
    stdout = proc.stdout.decode("utf-8", "replace")
    lines = [line for line in stdout.splitlines() if line.startswith(("conflicts ", "way ", "node "))]
    if proc.returncode != 0 or not lines or not lines[0].startswith("conflicts "):
        raise JosmError(f"JOSM could not merge {[str(c) for c in changes]} onto {data_osm} (exit {proc.returncode}):\n"
                        f"{proc.stderr.decode('utf-8', 'replace')[-4000:]}")
    result: dict = {"conflicts": 0, "ways": []}
    for line in lines:  # JOSM's own log lines go to stdout too
        kind, first, *rest = line.split()
        if kind == "conflicts":
            result["conflicts"] = int(first)
        elif kind == "way":
            result["ways"].append([])
        elif kind == "node":
            new, complete, lon, lat, referrers = rest
            result["ways"][-1].append((int(first), new == "new", complete == "complete",
                                       None if lon == "-" else float(lon), None if lat == "-" else float(lat),
                                       int(referrers)))
    return result


def josm_save(osm_path: Path, saved: Path, timeout_s: float = 300) -> None:
    """``osm_path`` opened and saved to ``saved`` by JOSM's own reader and writer (tests/JosmSave.java)."""
    if not josm_available():
        raise JosmError(f"JOSM not installed at {JOSM_JAR} (scripts/setup.sh --test installs it)")
    source = Path(__file__).with_name("JosmSave.java")
    proc = _java(["-cp", str(JOSM_JAR), str(source), str(Path(osm_path).resolve()), str(Path(saved).resolve())],
                 timeout_s, f"JOSM save of {osm_path}")
    if proc.returncode != 0:
        raise JosmError(f"JOSM could not save {osm_path}: {proc.stderr.decode('utf-8', 'replace')[-4000:]}")


def _java(args: list[str], timeout_s: float, what: str) -> subprocess.CompletedProcess:
    """``java ARGS`` headless, with a throwaway home (no preferences in or out), English, UTF-8."""
    with tempfile.TemporaryDirectory(prefix="josm-home-") as home:
        cmd = ["java", "-Djava.awt.headless=true", f"-Duser.home={home}", f"-Djosm.home={home}/josm", *args]
        env = {**os.environ, "HOME": home, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
        try:
            return subprocess.run(cmd, capture_output=True, timeout=timeout_s, env=env, cwd=home)
        except subprocess.TimeoutExpired as e:
            raise JosmError(f"{what} ran past {timeout_s} s") from e


def parse_validator_output(data: bytes) -> list[dict]:
    """Issue features (first feature of each record), with ``related`` = the other features."""
    issues = []
    for record in data.split(b"\x1e"):
        if record.strip():
            first, *related = json.loads(record)["features"]
            issues.append({**first, "related": related})
    return issues


def severity(issue: dict) -> str:
    """English severity name, from the language-independent integer."""
    return SEVERITY.get(issue["properties"].get("severityInteger"), issue["properties"]["severity"])


def _severe_lines(log: str) -> str:
    return "\n".join(line for line in log.splitlines()
                     if "SEVERE" in line and "ApiCapabilities" not in line)
