"""The workspace state: one SQLite file that remembers runs, suggestions and what became of them.

Why: a weekly job must never re-flag a gap a reviewer rejected, nor one that was mapped since,
and a report needs the history. Runs of every AOI of a workspace share one file (default
``<out>/../osmgap.sqlite``); rows are keyed by AOI name and suggestion id.

Suggestion status: ``open`` (found, not on MapRoulette yet), ``published`` (a MapRoulette task
exists), ``fixed`` (mapped: covered by OSM, gone from the detections, or marked fixed on
MapRoulette) and ``dismissed`` (a reviewer said false positive; never flagged again). Every
change of status is also an ``events`` row, which is what the report plots.

Times are ISO 8601 UTC text. ``OSMGAP_NOW`` (ISO 8601) replaces the clock, so tests and
back-fills can play "a week later".
"""
from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from osmgap.errors import InputError

SCHEMA_VERSION = 1
STATUSES = ("open", "published", "fixed", "dismissed")
STATE_FILENAME = "osmgap.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    aoi TEXT NOT NULL,
    time TEXT NOT NULL,
    out_dir TEXT NOT NULL,
    summary_sha256 TEXT NOT NULL UNIQUE,
    imagery TEXT, osm TEXT, model TEXT,
    suggestions INTEGER NOT NULL,
    new INTEGER NOT NULL DEFAULT 0, reopened INTEGER NOT NULL DEFAULT 0,
    fixed INTEGER NOT NULL DEFAULT 0, dismissed_seen INTEGER NOT NULL DEFAULT 0,
    summary TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS suggestions (
    aoi TEXT NOT NULL,
    id TEXT NOT NULL,
    kind TEXT NOT NULL,
    geometry TEXT NOT NULL,
    properties TEXT NOT NULL,
    length_m REAL NOT NULL,
    first_seen TEXT NOT NULL, last_seen TEXT NOT NULL,
    first_run INTEGER, last_run INTEGER,
    status TEXT NOT NULL CHECK (status IN ('open', 'published', 'fixed', 'dismissed')),
    reason TEXT NOT NULL DEFAULT '',
    challenge_id INTEGER, task_id INTEGER, mr_status INTEGER,
    updated TEXT NOT NULL,
    PRIMARY KEY (aoi, id)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    aoi TEXT NOT NULL, suggestion_id TEXT NOT NULL,
    time TEXT NOT NULL, run_id INTEGER,
    status TEXT NOT NULL, reason TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS challenges (
    id INTEGER PRIMARY KEY,
    api_url TEXT NOT NULL,
    project_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    aoi TEXT NOT NULL,
    part INTEGER NOT NULL,
    content_sha256 TEXT NOT NULL DEFAULT '',
    tasks INTEGER NOT NULL DEFAULT 0,
    published TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS aois (
    name TEXT PRIMARY KEY,
    geometry TEXT NOT NULL,
    osm TEXT NOT NULL,
    updated TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_aoi ON events (aoi, time);
"""


def now_iso() -> str:
    """The current time (or ``$OSMGAP_NOW``) as ISO 8601 UTC with a ``Z``."""
    fixed = os.environ.get("OSMGAP_NOW")
    if fixed:
        try:
            moment = datetime.fromisoformat(fixed.replace("Z", "+00:00"))
        except ValueError:
            raise InputError("OSMGAP_NOW", f"not an ISO 8601 time: {fixed!r}") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
    else:
        moment = datetime.now(timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def default_state_path(out_dir: str | Path) -> Path:
    """``<out>/../osmgap.sqlite``: one state file for all the AOIs of a workspace."""
    return Path(out_dir).resolve().parent / STATE_FILENAME


@dataclass(frozen=True)
class StatusChange:
    """One status change to apply; ``None`` fields are left as they are."""

    status: str
    reason: str
    run_id: int | None = None
    challenge_id: int | None = None
    task_id: int | None = None
    mr_status: int | None = None


class Store:
    """The SQLite state file; use as a context manager, write inside :meth:`transaction`."""

    def __init__(self, path: str | Path, *, create: bool = True):
        self.path = Path(path)
        if not self.path.exists() and not create:
            raise InputError(self.path, "state file not found (run `osmgap diff --state` first)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA busy_timeout = 60000")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise InputError(self.path, f"not an osmgap state file ({exc})") from None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.db.close()

    def _migrate(self) -> None:
        self.db.executescript(_SCHEMA)
        row = self.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None:
            self.db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        elif int(row["value"]) > SCHEMA_VERSION:
            raise InputError(self.path, f"state file has schema {row['value']}, newer than this "
                                        f"osmgap ({SCHEMA_VERSION}); upgrade osmgap")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All or nothing: an exception rolls every write of the block back."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # runs ---------------------------------------------------------------------------------
    def run_by_summary(self, summary_sha256: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM runs WHERE summary_sha256 = ?", (summary_sha256,)).fetchone()

    def add_run(self, aoi: str, time: str, out_dir: str, summary_sha256: str,
                summary: dict[str, Any]) -> int:
        cur = self.db.execute(
            "INSERT INTO runs (aoi, time, out_dir, summary_sha256, imagery, osm, model, suggestions, summary)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (aoi, time, out_dir, summary_sha256, _path_of(summary.get("imagery")),
             _path_of(summary.get("osm"), "source"), _path_of(summary.get("model")),
             int(summary.get("suggestions", 0)), json.dumps(summary, sort_keys=True, default=str)))
        return int(cur.lastrowid)

    def set_run_counts(self, run_id: int, counts: dict[str, int]) -> None:
        self.db.execute("UPDATE runs SET new = ?, reopened = ?, fixed = ?, dismissed_seen = ? WHERE id = ?",
                        (counts["new"], counts["reopened"], counts["fixed"], counts["dismissed_seen"], run_id))

    def runs(self, aoi: str | None = None) -> list[sqlite3.Row]:
        if aoi is None:
            return self.db.execute("SELECT * FROM runs ORDER BY time, id").fetchall()
        return self.db.execute("SELECT * FROM runs WHERE aoi = ? ORDER BY time, id", (aoi,)).fetchall()

    def aoi_names(self) -> list[str]:
        rows = self.db.execute("SELECT DISTINCT aoi FROM runs UNION SELECT DISTINCT aoi FROM suggestions ORDER BY 1")
        return [r[0] for r in rows]

    # suggestions --------------------------------------------------------------------------
    def suggestion(self, aoi: str, suggestion_id: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM suggestions WHERE aoi = ? AND id = ?", (aoi, suggestion_id)).fetchone()

    def suggestions(self, aoi: str, statuses: tuple[str, ...] = STATUSES) -> list[sqlite3.Row]:
        marks = ",".join("?" * len(statuses))
        return self.db.execute(f"SELECT * FROM suggestions WHERE aoi = ? AND status IN ({marks}) ORDER BY id",
                               (aoi, *statuses)).fetchall()

    def statuses(self, aoi: str) -> dict[str, str]:
        """Suggestion id -> status, for filtering what gets published."""
        return {r["id"]: r["status"] for r in self.db.execute("SELECT id, status FROM suggestions WHERE aoi = ?", (aoi,))}

    def add_suggestion(self, aoi: str, feature: dict[str, Any], time: str, run_id: int | None,
                       change: StatusChange) -> None:
        props = feature.get("properties") or {}
        self.db.execute(
            "INSERT INTO suggestions (aoi, id, kind, geometry, properties, length_m, first_seen, last_seen,"
            " first_run, last_run, status, reason, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (aoi, feature["id"], str(props.get("kind", "missing_road")), json.dumps(feature["geometry"]),
             json.dumps(props, sort_keys=True), float(props.get("length_m") or 0.0), time, time,
             run_id, run_id, change.status, change.reason, time))
        self._event(aoi, feature["id"], time, change)

    def saw_again(self, aoi: str, feature: dict[str, Any], time: str, run_id: int | None) -> None:
        """A known suggestion found by another run: newest geometry and properties, last seen."""
        props = feature.get("properties") or {}
        self.db.execute(
            "UPDATE suggestions SET geometry = ?, properties = ?, length_m = ?, last_seen = ?, last_run = ?"
            " WHERE aoi = ? AND id = ?",
            (json.dumps(feature["geometry"]), json.dumps(props, sort_keys=True),
             float(props.get("length_m") or 0.0), time, run_id, aoi, feature["id"]))

    def change(self, aoi: str, suggestion_id: str, time: str, change: StatusChange) -> None:
        """Set status and reason (and task fields given); an event only when the status changes."""
        old = self.suggestion(aoi, suggestion_id)
        if old is None:
            raise KeyError(f"{aoi}/{suggestion_id} is not in {self.path}")
        self.db.execute(
            "UPDATE suggestions SET status = ?, reason = ?, updated = ?,"
            " challenge_id = COALESCE(?, challenge_id), task_id = COALESCE(?, task_id),"
            " mr_status = COALESCE(?, mr_status) WHERE aoi = ? AND id = ?",
            (change.status, change.reason, time, change.challenge_id, change.task_id, change.mr_status,
             aoi, suggestion_id))
        if old["status"] != change.status:
            self._event(aoi, suggestion_id, time, change)

    def forget_tasks_except(self, aoi: str, challenge_id: int, task_ids: set[int]) -> None:
        """Tasks of this challenge that are gone (removeUnmatched dropped them): no task any more."""
        rows = self.db.execute("SELECT id, task_id FROM suggestions WHERE aoi = ? AND challenge_id = ?",
                               (aoi, challenge_id)).fetchall()
        for r in rows:
            if r["task_id"] not in task_ids:
                self.db.execute("UPDATE suggestions SET task_id = NULL, challenge_id = NULL, mr_status = NULL"
                                " WHERE aoi = ? AND id = ?", (aoi, r["id"]))

    def _event(self, aoi: str, suggestion_id: str, time: str, change: StatusChange) -> None:
        if change.status not in STATUSES:
            raise ValueError(f"unknown status {change.status!r}")
        self.db.execute("INSERT INTO events (aoi, suggestion_id, time, run_id, status, reason)"
                        " VALUES (?, ?, ?, ?, ?, ?)",
                        (aoi, suggestion_id, time, change.run_id, change.status, change.reason))

    def events(self, aoi: str) -> list[sqlite3.Row]:
        return self.db.execute("SELECT * FROM events WHERE aoi = ? ORDER BY time, id", (aoi,)).fetchall()

    # MapRoulette challenges ---------------------------------------------------------------
    def challenges(self, aoi: str) -> list[sqlite3.Row]:
        return self.db.execute("SELECT * FROM challenges WHERE aoi = ? ORDER BY name, part", (aoi,)).fetchall()

    def challenge(self, challenge_id: int) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM challenges WHERE id = ?", (challenge_id,)).fetchone()

    def save_challenge(self, challenge_id: int, *, api_url: str, project_id: int, name: str, aoi: str,
                       part: int, content_sha256: str, tasks: int, time: str) -> None:
        self.db.execute(
            "INSERT INTO challenges (id, api_url, project_id, name, aoi, part, content_sha256, tasks, published)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET api_url = excluded.api_url,"
            " project_id = excluded.project_id, name = excluded.name, aoi = excluded.aoi, part = excluded.part,"
            " content_sha256 = excluded.content_sha256, tasks = excluded.tasks, published = excluded.published",
            (challenge_id, api_url, project_id, name, aoi, part, content_sha256, tasks, time))

    # AOI snapshot for the report map ------------------------------------------------------
    def save_aoi(self, name: str, geometry: dict[str, Any], osm: dict[str, Any], time: str) -> None:
        self.db.execute("INSERT INTO aois VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET"
                        " geometry = excluded.geometry, osm = excluded.osm, updated = excluded.updated",
                        (name, json.dumps(geometry), json.dumps(osm), time))

    def aoi(self, name: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM aois WHERE name = ?", (name,)).fetchone()


def _path_of(info: Any, key: str = "path") -> str:
    return str(info.get(key, "")) if isinstance(info, dict) else ""
