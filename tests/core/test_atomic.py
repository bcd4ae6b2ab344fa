"""Atomic files and all-or-nothing output folders: every way of publishing (one swap, two
renames, entry by entry on a mount point), their rollbacks, and the clean-up of dead runs."""
import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import osmgap.core.atomic as atomic
from osmgap.core.atomic import (
    check_output_dir,
    clean_stale,
    run_token,
    staged_output_dir,
    write_text_atomic,
)
from osmgap.errors import InputError
from tests.conftest import PROJECT


def snapshot(root: Path) -> dict[str, bytes | str]:
    """Every entry under ``root`` (hidden ones too): file bytes, or 'dir' / 'link'."""
    out: dict[str, bytes | str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            out[rel] = "link" if p.is_symlink() else "dir" if p.is_dir() else p.read_bytes()
    return out


def earlier(tmp_path: Path) -> Path:
    """An output folder of an earlier run, with a file and a folder of the user's beside."""
    out = tmp_path / "out"
    with staged_output_dir(out) as stage:
        write_text_atomic(stage / "a.txt", "old a")
        write_text_atomic(stage / "b.txt", "old b")
    (out / "notes.txt").write_text("the user's")
    (out / "dry-run").mkdir()
    (out / "dry-run" / "req.json").write_text("{}")
    return out


def publish(out: Path, a: str = "new a", b: str = "new b") -> None:
    with staged_output_dir(out) as stage:
        write_text_atomic(stage / "a.txt", a)
        write_text_atomic(stage / "b.txt", b)
        (stage / "tiles").mkdir()
        write_text_atomic(stage / "tiles" / "t.json", "[]")


def assert_published(out: Path) -> None:
    assert (out / "a.txt").read_text() == "new a" and (out / "b.txt").read_text() == "new b"
    assert (out / "tiles" / "t.json").read_text() == "[]"
    assert (out / "notes.txt").read_text() == "the user's" and (out / "dry-run" / "req.json").read_text() == "{}"
    assert sorted(p.name for p in out.parent.iterdir()) == ["out"]
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_staged_dir_moves_files_only_on_success(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(RuntimeError):
        with staged_output_dir(out) as stage:
            write_text_atomic(stage / "a.txt", "half")
            raise RuntimeError("stage failed")
    assert not out.exists() and list(tmp_path.iterdir()) == []
    with staged_output_dir(out) as stage:
        write_text_atomic(stage / "a.txt", "whole")
    assert (out / "a.txt").read_text() == "whole" and len(list(tmp_path.iterdir())) == 1


def test_parents_made_for_a_failed_run_are_removed(tmp_path):
    with pytest.raises(RuntimeError), staged_output_dir(tmp_path / "x" / "y" / "out"):
        raise RuntimeError("failed")
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_replaces_and_is_readable(tmp_path):
    f = tmp_path / "x.json"
    write_text_atomic(f, "1")
    write_text_atomic(f, "2")
    assert f.read_text() == "2" and [p.name for p in tmp_path.iterdir()] == ["x.json"]
    assert os.stat(f).st_mode & 0o044  # group/others may read


def test_one_swap_keeps_the_users_entries_and_the_folder_mode(tmp_path):
    out = earlier(tmp_path)
    os.chmod(out, 0o750)
    inode = os.stat(out / "notes.txt").st_ino
    publish(out)
    assert_published(out)
    assert os.stat(out / "notes.txt").st_ino == inode  # hard-linked, not copied
    assert os.stat(out).st_mode & 0o777 == 0o750


def test_without_renameat2_two_renames_do_it(tmp_path, monkeypatch):
    out = earlier(tmp_path)
    monkeypatch.setattr(atomic, "_exchange", _raising(errno.ENOSYS))
    publish(out)
    assert_published(out)


@pytest.mark.parametrize("code", [errno.EXDEV, errno.EBUSY])
def test_out_that_cannot_be_renamed_gets_its_entries_one_by_one(tmp_path, monkeypatch, code):
    """A mount point: renaming --out itself fails with EXDEV or EBUSY."""
    out = earlier(tmp_path)
    monkeypatch.setattr(atomic, "_exchange", _raising(code))
    publish(out)
    assert_published(out)


def _in_out(out):
    return lambda src, dst: out in (Path(src).parent, Path(dst).parent)


def _onto_out(out):
    return lambda src, dst: Path(dst) == out


@pytest.mark.parametrize("no_exchange, fail_at, which", [
    *[(errno.EXDEV, n, _in_out) for n in (1, 2, 3, 4, 5)],  # a mount point: entry by entry, any move failing
    (errno.ENOSYS, 1, _onto_out),  # no renameat2: the second of two renames failing puts the old folder back
])
def test_a_failed_rename_is_rolled_back(tmp_path, monkeypatch, no_exchange, fail_at, which):
    out = earlier(tmp_path)
    before = snapshot(tmp_path)
    monkeypatch.setattr(atomic, "_exchange", _raising(no_exchange))
    monkeypatch.setattr(os, "rename", _nth_rename_fails(fail_at, which(out)))
    with pytest.raises(OSError, match="Input/output error"):
        publish(out)
    assert snapshot(tmp_path) == before


REPLACES = {"a.txt", "b.txt", "c.txt", "d.txt"}  # a verb's outputs; c.txt: written by the earlier run only


def publish_replacing(out: Path) -> None:
    with staged_output_dir(out, replaces=REPLACES) as stage:
        write_text_atomic(stage / "a.txt", "new a")
        write_text_atomic(stage / "b.txt", "new b")


@pytest.mark.parametrize("no_exchange", [None, errno.ENOSYS, errno.EXDEV])
def test_outputs_the_run_replaces_but_did_not_write_are_removed(tmp_path, monkeypatch, no_exchange):
    """An earlier run's output this run does not write (a diff's suggestions under a scan's new
    summary) must not stay beside the new ones; the user's entries stay, in every mode."""
    out = earlier(tmp_path)
    write_text_atomic(out / "c.txt", "old c")
    if no_exchange:
        monkeypatch.setattr(atomic, "_exchange", _raising(no_exchange))
    publish_replacing(out)
    assert sorted(p.name for p in out.iterdir()) == ["a.txt", "b.txt", "dry-run", "notes.txt"]
    assert (out / "a.txt").read_text() == "new a" and (out / "notes.txt").read_text() == "the user's"
    assert sorted(p.name for p in out.parent.iterdir()) == ["out"]


@pytest.mark.parametrize("fail_at", [1, 2, 3, 4, 5])  # the 5th: c.txt, moved out last
def test_a_failed_entry_swap_puts_the_removed_outputs_back(tmp_path, monkeypatch, fail_at):
    out = earlier(tmp_path)
    write_text_atomic(out / "c.txt", "old c")
    before = snapshot(tmp_path)
    monkeypatch.setattr(atomic, "_exchange", _raising(errno.EXDEV))
    monkeypatch.setattr(os, "rename", _nth_rename_fails(fail_at, _in_out(out)))
    with pytest.raises(OSError, match="Input/output error"):
        publish_replacing(out)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("cwd", ["out", "out/dry-run"])
def test_out_holding_the_working_folder_is_published_in_place(tmp_path, monkeypatch, cwd):
    """``--out .``: a swap would leave the process (and the user's shell) in a removed folder,
    where relative input paths no longer resolve; the entries move in instead."""
    out = earlier(tmp_path)
    monkeypatch.chdir(tmp_path / cwd)
    inode = os.stat(out).st_ino
    publish(out)
    assert_published(out)
    assert os.stat(out).st_ino == inode  # the same folder, not a swapped-in one
    assert Path.cwd() == tmp_path / cwd
    assert Path("a.txt" if cwd == "out" else "../a.txt").read_text() == "new a"  # relative paths still resolve


def test_failed_swap_changes_nothing(tmp_path, monkeypatch):
    out = earlier(tmp_path)
    before = snapshot(tmp_path)
    monkeypatch.setattr(atomic, "_exchange", _raising(errno.EIO))
    with pytest.raises(OSError):
        publish(out)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("name", ["a.txt", "tiles"])
def test_an_entry_of_another_kind_is_refused_before_anything_moves(tmp_path, name):
    out = earlier(tmp_path)
    victim = out / name
    if victim.exists():
        victim.unlink()
        victim.mkdir()
        (victim / "keep").write_text("x")
    else:
        victim.write_text("a file where a folder goes")
    before = snapshot(tmp_path)
    with pytest.raises(InputError, match=f"{name}: is a"):
        publish(out)
    assert snapshot(tmp_path) == before


def test_real_mount_point_when_the_machine_allows_one(tmp_path):
    """A tmpfs on --out (root with CAP_SYS_ADMIN, as in this project's containers); where
    mounting is not allowed, the EXDEV/EBUSY tests above stand in for it."""
    out = tmp_path / "out"
    out.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(out)], capture_output=True).returncode == 0
    try:
        (out / "notes.txt").write_text("the user's")
        (out / "dry-run").mkdir()
        (out / "dry-run" / "req.json").write_text("{}")
        publish(out)
        assert_published(out)
    finally:
        if mounted:
            subprocess.run(["umount", str(out)], check=True)


# checks before any work --------------------------------------------------------------------
@pytest.mark.parametrize("case", ["file", "dangling link", "under a file", "unwritable", "unwritable parent"])
def test_check_output_dir_refuses(tmp_path, case):
    (tmp_path / "f").write_text("x")
    os.symlink(tmp_path / "nowhere", tmp_path / "link")
    out = {"file": tmp_path / "f", "dangling link": tmp_path / "link", "under a file": tmp_path / "f" / "out",
           "unwritable": Path("/sys/kernel"), "unwritable parent": Path("/sys/kernel/osmgap/out")}[case]
    with pytest.raises(InputError, match=str(out)):
        check_output_dir(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f", "link"]


def test_check_output_dir_accepts_new_and_existing_folders(tmp_path):
    check_output_dir(tmp_path / "new" / "deeper")
    check_output_dir(tmp_path)
    assert list(tmp_path.iterdir()) == []


# runs killed half-way ----------------------------------------------------------------------
def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_folders_of_dead_runs_go_live_ones_stay(tmp_path):
    out = earlier(tmp_path)
    with subprocess.Popen(["sleep", "60"]) as live:
        try:
            dead = tmp_path / f".out.staging.{run_token(dead_pid())}.abcd1234"
            alive = tmp_path / f".out.staging.{run_token(live.pid)}.abcd1234"
            reused = tmp_path / f".out.staging.{atomic.HOST}-{live.pid}-1.abcd1234"  # a pid now someone else's
            other_host = tmp_path / f".out.staging.00000000-{live.pid}-1.abcd1234"
            legacy_old, legacy_new = tmp_path / ".out.staging.k2j3h4g5", tmp_path / ".out.staging.q9w8e7r6"
            for d in (dead, alive, reused, other_host, legacy_old, legacy_new):
                d.mkdir()
                (d / "x").write_text("x")
            week_ago = os.stat(legacy_old).st_mtime - atomic.UNKNOWN_OWNER_STALE_S - 60
            os.utime(legacy_old, (week_ago, week_ago))
            clean_stale(out)
            left = sorted(p.name for p in tmp_path.iterdir())
            assert left == sorted(["out", alive.name, other_host.name, legacy_new.name])
        finally:
            live.kill()


def test_a_swap_killed_between_its_two_renames_is_restored(tmp_path):
    out = earlier(tmp_path)
    before = snapshot(out)
    out.rename(tmp_path / f".out.old.{run_token(dead_pid())}.abcd1234")
    clean_stale(out)
    assert snapshot(out) == before and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize("moved", [0, 1, 2, 3])
def test_an_entry_swap_killed_half_way_is_rolled_back(tmp_path, moved):
    """The journal a killed run left inside --out: earlier entries back, new ones out."""
    out = earlier(tmp_path)
    before = snapshot(out)
    journal = out / f".osmgap.old.{run_token(dead_pid())}.abcd1234"
    (journal / "entries").mkdir(parents=True)
    (journal / "manifest.json").write_text(json.dumps({"a.txt": True, "b.txt": True, "new.txt": False}))
    steps = [lambda: os.rename(out / "a.txt", journal / "entries" / "a.txt"),
             lambda: (out / "a.txt").write_text("new a"),
             lambda: os.rename(out / "b.txt", journal / "entries" / "b.txt")]
    for step in steps[:moved]:
        step()
    if moved == 3:
        (out / "new.txt").write_text("new")
    clean_stale(out)
    assert snapshot(out) == before


def test_a_completed_entry_swap_is_not_undone(tmp_path):
    out = earlier(tmp_path)
    journal = out / f".osmgap.old.{run_token(dead_pid())}.abcd1234"
    (journal / "entries").mkdir(parents=True)
    (journal / "entries" / "a.txt").write_text("old a")  # manifest already removed: the swap was done
    (out / "a.txt").write_text("new a")
    clean_stale(out)
    assert (out / "a.txt").read_text() == "new a" and not journal.exists()


def test_a_killed_process_leaves_a_staging_folder_the_next_run_removes(tmp_path):
    script = ("import sys, time\nfrom osmgap.core.atomic import staged_output_dir, write_text_atomic\n"
              "with staged_output_dir(sys.argv[1]) as s:\n    write_text_atomic(s / 'a.txt', 'x')\n"
              "    print(s, flush=True)\n    time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "out")], stdout=subprocess.PIPE, text=True,
                            cwd=PROJECT)
    stage = Path(proc.stdout.readline().strip())
    assert stage.parent == tmp_path and (stage / "a.txt").exists()
    clean_stale(tmp_path / "out")  # alive: kept
    assert stage.exists()
    proc.kill()
    proc.wait()
    proc.stdout.close()
    publish(tmp_path / "out")
    assert not stage.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# helpers -----------------------------------------------------------------------------------
def _raising(code: int):
    def fail(a, b):
        raise OSError(code, os.strerror(code), str(a))
    return fail


def _nth_rename_fails(n: int, counts):
    """os.rename that fails with EIO on the n-th call that ``counts`` (src, dst)."""
    real = os.rename
    seen = []

    def rename(src, dst, *args, **kwargs):
        if counts(src, dst):
            seen.append(src)
            if len(seen) == n:
                raise OSError(errno.EIO, os.strerror(errno.EIO), str(src))
        return real(src, dst, *args, **kwargs)
    return rename


def test_a_folder_no_run_wrote_keeps_files_that_share_an_outputs_name(tmp_path):
    """``--out`` a folder of the user's: their map.html and folds.json are no earlier run's outputs
    to remove (a change run deleted them); beside an earlier run's summary.json they are."""
    markers = (("summary.json",), ("folds.json", "probability.tif"))
    replaces = {"summary.json", "map.html", "folds.json"}
    for earlier_run in (False, True):
        out = tmp_path / f"earlier-{earlier_run}"
        out.mkdir()
        (out / "map.html").write_text("my own map")
        (out / "folds.json").write_text('{"mine": 1}')
        if earlier_run:
            (out / "summary.json").write_text('{"old": 1}')
        with staged_output_dir(out, replaces=replaces, markers=markers) as stage:
            write_text_atomic(stage / "summary.json", '{"new": 1}')
        kept = sorted(p.name for p in out.iterdir())
        assert kept == (["summary.json"] if earlier_run else ["folds.json", "map.html", "summary.json"])
    cross = tmp_path / "cross"  # a cross-prediction's folder (no summary), then a diff into it
    cross.mkdir()
    (cross / "folds.json").write_text("{}")
    (cross / "probability.tif").write_bytes(b"tif")
    with staged_output_dir(cross, replaces=replaces | {"probability.tif"}, markers=markers) as stage:
        write_text_atomic(stage / "summary.json", "{}")
    assert sorted(p.name for p in cross.iterdir()) == ["summary.json"]
