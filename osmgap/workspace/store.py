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

import functools
import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import shapely
import shapely.errors
import shapely.geometry
from shapely.geometry.base import BaseGeometry

from osmgap.core.aoi import load_aoi
from osmgap.core.atomic import check_output_dir
from osmgap.errors import InputError, one_line
from osmgap.workspace.outputs import MAX_DEPTH, deeper_than

SCHEMA_VERSION = 1  # also the file's PRAGMA user_version
APPLICATION_ID = 0x6F736D67  # "osmg": PRAGMA application_id of every osmgap state file
STATUSES = ("open", "published", "fixed", "dismissed")
STATE_FILENAME = "osmgap.sqlite"
SAME_AREA_DEG = 1e-7  # ~1 cm: an AOI read again is the same area; anything more is another one
TABLES = ("meta", "runs", "suggestions", "events", "challenges", "aois")
JSON_COLUMNS = {"runs": ("summary",), "suggestions": ("geometry", "properties"), "aois": ("geometry", "osm")}

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


def check_state(path: str | Path, *, full: bool = True, writable: bool = False) -> None:
    """Refuse (InputError) a state file osmgap cannot use, without writing anything: a folder,
    a file that is not SQLite, another program's SQLite file, a newer osmgap's, a damaged one
    (schema not osmgap's; ``full``: also ``PRAGMA integrity_check`` and every row read back),
    with ``writable`` a file or folder that cannot be written (a diff's outputs would replace the
    last ones, then recording the run fail), or a new file's folder that cannot be written. A
    missing file is fine: it is created only when a run has succeeded. Only a write killed
    half-way is undone (SQLite's own journal rollback)."""
    path = Path(path)
    if path.is_dir():
        raise InputError(path, "is a folder, not a state file")
    if not os.path.lexists(path):
        check_output_dir(path.parent)
        return
    hot = os.path.lexists(f"{path}-journal")  # a write killed half-way: SQLite rolls it back, which needs rw
    try:
        db = sqlite3.connect(path.resolve().as_uri() + ("" if hot else "?mode=ro"), uri=True)
    except sqlite3.Error as exc:
        raise InputError(path, f"cannot open the state file ({one_line(exc)})") from None
    try:
        _inspect(db, path)
        if full:
            _integrity(db, path)
    finally:
        db.close()
    if writable and not (os.access(path, os.W_OK) and os.access(path.resolve().parent, os.W_OK)):  # + its journal
        raise InputError(path, "cannot write the state file or its folder (read-only?): the run could not be "
                               "recorded, so nothing is done")


def _inspect(db: sqlite3.Connection, path: Path) -> None:
    """Refuse what is not an osmgap state file of this or an older schema; an empty file is fine.
    Files of osmgap before the marks (application_id 0) are known by their meta table."""
    try:
        app_id = db.execute("PRAGMA application_id").fetchone()[0]
        version = db.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except (sqlite3.Error, ValueError) as exc:
        raise InputError(path, f"not an osmgap state file ({one_line(exc)})") from None
    legacy = app_id == 0 and {"meta", "runs", "suggestions"} <= tables
    if app_id != APPLICATION_ID and not legacy and (app_id != 0 or tables):
        raise InputError(path, f"another program's SQLite file (application_id {app_id}, tables "
                               f"{', '.join(sorted(tables)) or 'none'}), not an osmgap state file; "
                               "give --state a new path")
    if "meta" in tables:  # the schema version osmgap wrote before user_version
        try:
            row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            version = max(version, int(row[0])) if row is not None else version
        except (sqlite3.Error, ValueError) as exc:
            raise InputError(path, f"state file is damaged ({one_line(exc)})") from None
    if version > SCHEMA_VERSION:
        raise InputError(path, f"state file has schema {version}, newer than this osmgap "
                               f"({SCHEMA_VERSION}); upgrade osmgap")
    _check_schema(db, path)


def _check_schema(db: sqlite3.Connection, path: Path) -> None:
    """Each osmgap table and index present is defined as osmgap defines it (garbage in the
    schema page renames columns or breaks constraints, which integrity_check does not see)."""
    try:
        found = {(r[0], r[1]): r[2] for r in db.execute("SELECT type, name, sql FROM sqlite_master")}
    except (sqlite3.Error, ValueError) as exc:
        raise InputError(path, f"state file is damaged ({one_line(exc)})") from None
    for key, sql in _expected_schema().items():
        if key in found and found[key] != sql:
            raise InputError(path, f"state file is damaged (the definition of {key[0]} {key[1]} is not "
                                   "osmgap's); restore it from a backup or give --state a new path")


@functools.lru_cache(maxsize=1)
def _expected_schema() -> dict[tuple[str, str], str]:
    """(type, name) -> SQL of every table and index, as SQLite stores them."""
    db = sqlite3.connect(":memory:")
    try:
        db.executescript(_SCHEMA)
        return {(r[0], r[1]): r[2] for r in db.execute("SELECT type, name, sql FROM sqlite_master")}
    finally:
        db.close()


def _ready(db: sqlite3.Connection) -> bool:
    """Marked as osmgap's, of this schema, with every table."""
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    return (db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
            and db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION and set(TABLES) <= tables)


def _integrity(db: sqlite3.Connection, path: Path) -> None:
    """Every page (``PRAGMA integrity_check``), then every row decoded as osmgap will read it:
    garbage inside a record's text passes SQLite's own check."""
    try:
        problems = [r[0] for r in db.execute("PRAGMA integrity_check(5)")]
        if problems == ["ok"]:
            problems = _unreadable_rows(db)
    except (sqlite3.Error, ValueError) as exc:  # ValueError: text that is not UTF-8
        problems = [str(exc)]
    if problems != ["ok"]:
        raise InputError(path, f"state file is damaged ({one_line(Exception(problems[0]))}); "
                               "restore it from a backup or give --state a new path")


def _unreadable_rows(db: sqlite3.Connection) -> list[str]:
    """['ok'], or the first row that cannot be read back (text that is not UTF-8, JSON that is
    not, or that nests deeper than any osmgap writes)."""
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    for table in (t for t in TABLES if t in tables):
        cursor = db.execute(f"SELECT rowid, * FROM {table}")  # noqa: S608 (names from TABLES)
        names = [d[0] for d in cursor.description]
        json_at = [i for i, name in enumerate(names) if name in JSON_COLUMNS.get(table, ())]
        for row in cursor:
            for i in json_at:
                problem = _json_problem(row[i], geometry=names[i] == "geometry")
                if problem:
                    return [f"{table} row {row[0]}: {names[i]} {problem}"]
    return ["ok"]


def _json_problem(text: str, *, geometry: bool) -> str | None:
    """None for JSON of an object (``geometry``: a GeoJSON geometry shapely reads) no deeper than
    MAX_DEPTH, else what is wrong: a row parsed below the recursion limit but hundreds of levels
    deep would fail whatever walks it later (the report, publish), or be a hostile file."""
    what = "is not a JSON object" + (" with a geometry" if geometry else "")
    try:
        value = json.loads(text)
    except (TypeError, ValueError, RecursionError):  # RecursionError: nested too deeply for the parser
        return what
    if deeper_than(value, MAX_DEPTH):
        return f"nested more than {MAX_DEPTH} levels deep; osmgap writes no such row"
    if geometry:
        try:
            shapely.geometry.shape(value)
        except (TypeError, ValueError, AttributeError, KeyError, IndexError, RecursionError,
                shapely.errors.ShapelyError):
            return what
    return None if isinstance(value, dict) else what


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

    def __init__(self, path: str | Path, *, create: bool = True, check: bool = True):
        """Open (and on first use create) the state; ``check``: a full integrity check first."""
        self.path = Path(path)
        empty = self.path.is_file() and self.path.stat().st_size == 0  # nothing recorded: made into a state only by writers
        if (empty or not os.path.lexists(self.path)) and not create:
            raise InputError(self.path, f"{'an empty file' if empty else 'no state file here'}: nothing was recorded "
                                        "(a diff records its run only "
                                        "with --state); run `osmgap diff ... --state PATH` first, or give --state "
                                        "the file the runs were recorded in")
        check_state(self.path, full=check)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA busy_timeout = 60000")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise InputError(self.path, f"not an osmgap state file ({one_line(exc)})") from None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.db.close()

    def _migrate(self) -> None:
        """Mark the file as osmgap's and create the tables, in one transaction; checked first
        (again under the write lock), so another program's or a newer file gets nothing. A
        file that is ready is not written to."""
        if _ready(self.db):
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            _inspect(self.db, self.path)
            self.db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self.db.execute(statement)
            self.db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

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
        assert cur.lastrowid is not None  # set by the INSERT above
        return int(cur.lastrowid)

    def set_run_counts(self, run_id: int, counts: dict[str, int]) -> None:
        self.db.execute("UPDATE runs SET new = ?, reopened = ?, fixed = ?, dismissed_seen = ? WHERE id = ?",
                        (counts["new"], counts["reopened"], counts["fixed"], counts["dismissed_seen"], run_id))

    def last_report(self, aoi: str) -> tuple[str, int | None] | None:
        """When the last report of ``aoi`` was written and the last event it saw (None: a state
        reported before events were counted so): its "since" starts there."""
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (f"report:{aoi}",)).fetchone()
        if row is None:
            return None
        seen = self.db.execute("SELECT value FROM meta WHERE key = ?", (f"report_event:{aoi}",)).fetchone()
        return str(row[0]), (int(seen[0]) if seen is not None and str(seen[0]).isdigit() else None)

    def reported(self, aoi: str, time: str, last_event: int) -> None:
        """Note a report of ``aoi`` at ``time`` that saw events up to id ``last_event``: the next
        one counts what came after by id, so a clock set back between runs loses no change."""
        with self.transaction():
            self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (f"report:{aoi}", time))
            self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (f"report_event:{aoi}", str(last_event)))

    def runs(self, aoi: str | None = None) -> list[sqlite3.Row]:
        """The runs in the order they were recorded (not by their clock's time, which may go back)."""
        if aoi is None:
            return self.db.execute("SELECT * FROM runs ORDER BY id").fetchall()
        return self.db.execute("SELECT * FROM runs WHERE aoi = ? ORDER BY id", (aoi,)).fetchall()

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
        return self.db.execute("SELECT * FROM events WHERE aoi = ? ORDER BY id", (aoi,)).fetchall()

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

    def check_area(self, name: str, geometry: BaseGeometry) -> None:
        """InputError when the state keeps ``name`` for another area (see :func:`check_aoi`)."""
        _refuse_other_area(self.db, self.path, name, geometry)


def check_aoi(path: str | Path, aoi_spec: str, name: str | None = None) -> None:
    """Refuse, before any work and without writing, to record the AOI ``aoi_spec`` (``--aoi``,
    named ``name`` or by its file) in the state at ``path`` when the state keeps its name for
    another area.

    Why an error and not a second key: a name is what people give ``report``, ``publish`` and
    task files; two areas under one name would need a hidden key to tell apart, and an edited
    polygon would start a fresh history without anyone saying so. Asking for another ``--name``
    keeps every history whole and visible. A missing state file holds nothing to clash with."""
    path = Path(path)
    if not path.is_file():
        return
    aoi = load_aoi(aoi_spec, name)
    db = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
    try:
        _refuse_other_area(db, path, aoi.name, aoi.geometry)
    except sqlite3.Error:
        return  # an older or damaged file: check_state says what is wrong with it
    finally:
        db.close()


def _refuse_other_area(db: sqlite3.Connection, path: Path, name: str, geometry: BaseGeometry) -> None:
    """The AOI the state keeps under ``name`` (its polygon; for a run recorded without one, its
    bounds) must be ``geometry`` read again, to ~1 cm."""
    row = db.execute("SELECT geometry FROM aois WHERE name = ?", (name,)).fetchone()
    if row is not None:
        kept, new = shapely.geometry.shape(json.loads(row[0])), geometry
    else:
        run = db.execute("SELECT summary FROM runs WHERE aoi = ? ORDER BY id DESC LIMIT 1",
                         (name,)).fetchone()
        bounds = (json.loads(run[0]).get("aoi") or {}).get("bounds") if run is not None else None
        if not bounds:
            return
        kept, new = shapely.geometry.box(*bounds), shapely.geometry.box(*geometry.bounds)
    if shapely.equals_exact(shapely.normalize(kept), shapely.normalize(new), SAME_AREA_DEG):
        return
    b = ",".join(f"{v:.5f}" for v in kept.bounds)
    raise InputError(path, f"AOI name {name!r} already belongs to another area in this state (bounds {b}); "
                           "give this area its own --name (or a 'name' in its AOI file) so the two histories "
                           "stay apart")


def _path_of(info: Any, key: str = "path") -> str:
    return str(info.get(key, "")) if isinstance(info, dict) else ""
