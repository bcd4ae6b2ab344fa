"""The state lock (osmgap.workspace.lock) of a workspace that does not exist yet, and of a run
that is refused: a new workspace's first run is locked like any other, and a run that leaves no
state leaves no lock file (nor the folders made for it) behind, without two runs ever holding
two different lock files."""
from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import osmgap.tools.diff
from osmgap.cli import main
from osmgap.workspace.lock import exclusive
from osmgap.workspace.store import Store
from tests.sample_outputs import sample_ways, write_outputs

BBOX = "2.29,48.99,2.30,49.00"


def held_by_someone(lock: Path) -> bool:
    """Whether a lock is held on the file now at ``lock`` (flock on a new open file conflicts
    with any other, in this process too)."""
    if not lock.exists():
        return False
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


@pytest.mark.parametrize("records", [False, True])
def test_a_diff_into_a_state_folder_not_made_yet_is_locked(tmp_path, monkeypatch, records):
    """`diff --state NEW/DEEPER/s.sqlite` ran with no lock at all: its folder took no lock file."""
    state = tmp_path / "nonexist" / "deeper" / "s.sqlite"
    lock = state.with_name("s.sqlite.lock")
    seen = {}

    def diff(req, args):  # the run itself: is the lock held while it goes on?
        seen["held"] = held_by_someone(lock)
        if records:
            Store(state).close()
        return 0

    monkeypatch.setattr(osmgap.tools.diff, "_diff", diff)
    assert main(["diff", "--aoi", BBOX, "--name", "here", "--osm", "x.osm", "--candidates", "x.geojson",
                 "--out", str(tmp_path / "out"), "--state", str(state)]) == 0
    assert seen == {"held": True}
    if records:  # the state stays, and its lock file with it
        assert state.exists() and lock.exists() and not held_by_someone(lock)
    else:  # nothing recorded: nothing left, not even the folders made for the lock
        assert not (tmp_path / "nonexist").exists()


def test_a_refused_report_leaves_no_lock_file(data, tmp_path, capsys):
    """`report --out DIR` without a state exits 2; it left an empty osmgap.sqlite.lock beside DIR."""
    out = tmp_path / "ws" / "run"
    write_outputs(out, sample_ways(data)[:1])
    assert main(["report", "--out", str(out)]) == 2
    assert "osmgap.sqlite" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "ws").iterdir()) == ["run"]


def test_a_run_waiting_on_a_lock_file_that_is_removed_locks_the_path_anew(tmp_path):
    """The holder removes the lock file of a run that left no state while a second run waits on
    it: the second run must then hold the file at the path, or a third would lock a new file
    beside it and run at the same time."""
    lock = tmp_path / "new" / "s.sqlite.lock"
    waiter = None
    try:
        with exclusive(lock, keep=lambda: False):
            waiter = subprocess.Popen([sys.executable, "-c", (
                "import sys, time\nfrom osmgap.workspace.lock import exclusive\n"
                f"with exclusive({str(lock)!r}, wait_s=60, poll_s=0.02):\n"
                "    print('held', flush=True)\n    time.sleep(60)\n")], stdout=subprocess.PIPE, text=True)
            deadline = time.monotonic() + 30
            while not _has_open(waiter.pid, lock):  # waiting on the very file this block holds
                assert waiter.poll() is None and time.monotonic() < deadline
                time.sleep(0.02)
        assert waiter.stdout is not None and waiter.stdout.readline().strip() == "held"
        assert held_by_someone(lock)
    finally:
        if waiter is not None:
            waiter.kill()
            waiter.wait()


def _has_open(pid: int, path: Path) -> bool:
    fds = Path(f"/proc/{pid}/fd")
    try:
        return any(os.readlink(fd) == str(path) for fd in fds.iterdir())
    except (FileNotFoundError, ProcessLookupError):
        return False


def test_a_task_run_whose_diff_is_refused_leaves_no_lock_file(tmp_path, capsys):
    """`osmgap run` of a new workspace whose diff is refused (exit 2) leaves nothing beside its state."""
    task = tmp_path / "ws" / "tasks" / "t.toml"
    task.parent.mkdir(parents=True)
    task.write_text(f'name = "t"\nschedule = "weekly"\nroot = ".."\n\n[diff]\naoi = "{BBOX}"\n'
                    'candidates = "roads.geojson"\nosm = "osm/missing.osm.pbf"\nout = "out/t"\n')
    assert main(["run", str(task)]) == 2
    assert "candidates file not found" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "ws").iterdir()) == ["tasks"]
