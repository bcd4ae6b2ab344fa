"""The state file's marks and checks: osmgap's files carry application_id and user_version;
another program's file, a newer osmgap's or a damaged one is refused before anything is written;
checking never creates the file."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from osmgap.errors import InputError
from osmgap.workspace.store import APPLICATION_ID, SCHEMA_VERSION, TABLES, Store, check_state


def _pragmas(path: Path) -> tuple[int, int, set[str]]:
    with sqlite3.connect(path) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        return (db.execute("PRAGMA application_id").fetchone()[0], db.execute("PRAGMA user_version").fetchone()[0],
                tables)


def test_a_new_state_is_marked_as_osmgaps(tmp_path):
    Store(tmp_path / "s.sqlite").close()
    assert _pragmas(tmp_path / "s.sqlite") == (APPLICATION_ID, SCHEMA_VERSION, set(TABLES))


def test_checking_a_new_path_creates_nothing(tmp_path):
    check_state(tmp_path / "a" / "b" / "s.sqlite")
    assert list(tmp_path.iterdir()) == []


def test_a_state_of_osmgap_before_the_marks_is_marked_on_open(tmp_path):
    path = tmp_path / "s.sqlite"
    Store(path).close()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA application_id = 0")
        db.execute("PRAGMA user_version = 0")
    check_state(path)
    Store(path).close()
    assert _pragmas(path)[:2] == (APPLICATION_ID, SCHEMA_VERSION)


def test_a_ready_state_is_not_written_by_opening_it(tmp_path):
    path = tmp_path / "s.sqlite"
    Store(path).close()
    before = path.read_bytes()
    with Store(path) as store:
        assert store.runs() == []
    assert path.read_bytes() == before


@pytest.mark.parametrize("app_id, version, says", [
    (APPLICATION_ID, SCHEMA_VERSION + 1, "newer than this osmgap"),
    (0x47504B47, 10300, "another program's SQLite file"),  # a GeoPackage's marks
])
def test_a_marked_file_that_is_not_ours_gets_no_tables(tmp_path, app_id, version, says):
    path = tmp_path / "s.sqlite"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA application_id = {app_id}")
        db.execute(f"PRAGMA user_version = {version}")
    before = path.read_bytes()
    for opener in (check_state, Store):
        with pytest.raises(InputError, match=says):
            opener(path)
    assert path.read_bytes() == before and _pragmas(path)[2] == set()


def test_another_programs_tables_are_left_alone(tmp_path):
    path = tmp_path / "s.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE meta (k, v)")  # a name osmgap uses too
    before = path.read_bytes()
    with pytest.raises(InputError, match="another program's SQLite file .*tables meta"):
        Store(path)
    assert path.read_bytes() == before


def test_a_state_file_that_is_a_folder(tmp_path):
    with pytest.raises(InputError, match="is a folder"):
        Store(tmp_path)


def test_a_write_killed_half_way_is_rolled_back_not_refused(tmp_path):
    """A process SIGKILLed inside a write transaction leaves a hot journal: the check lets
    SQLite roll it back (the state as before that write) instead of calling the file broken."""
    import subprocess
    import sys

    path = tmp_path / "s.sqlite"
    Store(path).close()
    writer = ("import sqlite3, sys, time\ndb = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
              "db.execute('BEGIN IMMEDIATE')\n"
              "for i in range(3000):\n    db.execute('INSERT INTO meta VALUES (?, ?)', (f'k{i}', 'x' * 500))\n"
              "print('ready', flush=True)\ntime.sleep(60)\n")
    with subprocess.Popen([sys.executable, "-c", writer, str(path)], stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout.readline().strip() == "ready"
        proc.kill()
    assert (tmp_path / "s.sqlite-journal").exists()
    check_state(path)
    with Store(path) as store:
        assert [tuple(r) for r in store.db.execute("SELECT * FROM meta")] == [("schema_version", str(SCHEMA_VERSION))]


def test_an_empty_state_file_is_no_record_for_readers_and_stays_empty(tmp_path):
    """`: > osmgap.sqlite` then report, sync or a publish dry run: they read, so they must not turn
    the file into a state (they did); a diff or a publish, which record, may."""
    path = tmp_path / "osmgap.sqlite"
    path.write_bytes(b"")
    with pytest.raises(InputError, match="an empty file: nothing was recorded"):
        Store(path, create=False)
    assert path.stat().st_size == 0
    with Store(path) as store:  # a writer makes it a state
        assert store.runs("anything") == []
    assert path.stat().st_size > 0
