"""Hostile output folders, state files, tiles and leftovers of killed runs (issue 14, items 5-9
and the --out part of 15). Every case starts from a real workspace: an earlier
``osmgap diff --candidates --state`` run on the Paris sample (its outputs and its state file).
A refused case exits 2 with one line naming the file and leaves the workspace byte-identical; a
failing publish exits 1 with one line and leaves it byte-identical too; an accepted case exits 0
with complete new outputs and one more run in the state. In-process, ~1 s a run."""
from __future__ import annotations

import errno
import functools
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest

import osmgap.core.atomic as atomic
from osmgap.core.atomic import run_token
from osmgap.core.datapaths import data_root
from osmgap.scale.tilestore import TileResult, TileStore
from osmgap.workspace.store import APPLICATION_ID, SCHEMA_VERSION
from tests.hostile.test_arguments import assert_refused, cli, snapshot

PARIS = data_root() / "sample_aoi" / "paris-1447"
OUTPUTS = ("maproulette.geojson", "overview.png", "suggestions.geojson", "suggestions.osm", "summary.json")
COMPARED = ("maproulette.geojson", "suggestions.geojson", "suggestions.osm")  # the same inputs, the same bytes


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """Candidates (all 10 real ways of the sample), OSM without 4 of them, and a real run with
    --state: its outputs and state file are every case's earlier workspace."""
    d = tmp_path_factory.mktemp("reference")
    ways = gpd.read_file(PARIS / "osm_roads.geojson")
    ways.to_file(d / "candidates.geojson", driver="GeoJSON")
    ways.iloc[:6].to_file(d / "osm.geojson", driver="GeoJSON")
    rc = cli_plain(_argv(d, d / "ws" / "out", d / "ws" / "state.sqlite"))
    assert rc == 0 and json.loads((d / "ws" / "out" / "summary.json").read_text())["suggestions"] >= 2
    return d


def cli_plain(argv: list[str]) -> int:
    from osmgap.cli import main

    return main(argv)


def _argv(ref: Path, out: Path, state: Path | None, *extra: str) -> list[str]:
    argv = ["diff", "--aoi", str(PARIS / "aoi.geojson"), "--osm", str(ref / "osm.geojson"),
            "--candidates", str(ref / "candidates.geojson"), "--out", str(out), *extra]
    return argv + (["--state", str(state)] if state else [])


@pytest.fixture
def ws(reference: Path, tmp_path: Path) -> Path:
    """A copy of the earlier workspace (out/ and state.sqlite), plus a file of the user's in out/."""
    shutil.copytree(reference / "ws", tmp_path / "ws")
    (tmp_path / "ws" / "out" / "notes.txt").write_text("the user's own notes")
    return tmp_path / "ws"


def _runs(state: Path) -> int:
    with sqlite3.connect(state) as db:
        return db.execute("SELECT count(*) FROM runs").fetchone()[0]


def assert_published(ref: Path, ws: Path, *others: str) -> None:
    """Complete, valid new outputs, the user's file (and ``others``) kept, no leftovers, the run
    recorded in a marked state file."""
    out = ws / "out"
    assert sorted(os.listdir(out)) == sorted([*OUTPUTS, "notes.txt", *others])
    for name in COMPARED:
        assert (out / name).read_bytes() == (ref / "ws" / "out" / name).read_bytes(), name
    assert json.loads((out / "summary.json").read_text())["suggestions"] >= 2
    ET.parse(out / "suggestions.osm")
    assert (out / "notes.txt").read_text() == "the user's own notes"
    assert not [p for p in ws.iterdir() if p.name.startswith(".")]
    state = ws / "state.sqlite"
    with sqlite3.connect(state) as db:
        assert db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert _runs(state) >= 1


def _earlier_outputs(ws: Path) -> None:
    """Make the earlier outputs tell apart from what the run would write."""
    for name in COMPARED:
        (ws / "out" / name).write_bytes(b"earlier " + name.encode())


# --- refused: exit 2, one line naming the file, the workspace byte-identical -----------------

def _file(p: Path, data: bytes = b"a file") -> Path:
    p.write_bytes(data)
    return p


def _folder_at(p: Path) -> Path:
    """An entry of the earlier outputs replaced by a folder (with a file the user cares about)."""
    p.unlink()
    p.mkdir()
    (p / "keep.txt").write_text("keep me")
    return p


def _garbage_in_the_middle(state: Path) -> Path:
    """64 bytes of garbage over the middle of a real state file, where a page holds suggestion
    rows (the stored geometry nearest the middle), as a bad sector or a torn copy leaves it."""
    raw = bytearray(state.read_bytes())
    hits, at = [], raw.find(b'"LineString"')
    while at >= 0:
        hits.append(at)
        at = raw.find(b'"LineString"', at + 1)
    middle = min(hits, key=lambda h: abs(h - len(raw) // 2))
    raw[middle:middle + 64] = np.random.default_rng(14).integers(0, 256, 64, dtype=np.uint8).tobytes()
    state.write_bytes(bytes(raw))
    return state


def _other_program(state: Path) -> Path:
    state.unlink()
    with sqlite3.connect(state) as db:
        db.execute("CREATE TABLE contacts (name TEXT, phone TEXT)")
        db.execute("INSERT INTO contacts VALUES ('Ada', '555-0100')")
    return state


def _geopackage(ws: Path) -> Path:
    """A real GeoPackage (SQLite, application_id 'GPKG'), e.g. a candidates file given by mistake."""
    gpd.read_file(PARIS / "osm_roads.geojson").to_file(ws / "roads.gpkg", driver="GPKG")
    return ws / "roads.gpkg"


def _sql(statements: str) -> Callable[[Path], Path]:
    def edit(state: Path) -> Path:
        with sqlite3.connect(state) as db:
            db.executescript(statements)
        return state
    return edit


def _truncated(state: Path) -> Path:
    state.write_bytes(state.read_bytes()[: state.stat().st_size // 2 + 100])
    return state


def _sys_kernel(ws: Path) -> Path:
    return Path("/sys/kernel")  # exists, and nobody (root included) can create anything in it


def _dangling(ws: Path) -> Path:
    os.symlink(ws / "nowhere", ws / "link")
    return ws / "link"


# (name, out(ws) or None, state(ws) or None, what the line names, what it says)
REFUSED: list[tuple[str, Callable | None, Callable | None, str, str]] = [
    ("out_is_a_file", lambda ws: _file(ws / "out.txt"), None, "out.txt", "not a folder"),
    ("out_is_a_dangling_link", _dangling, None, "link", "not a folder"),
    ("out_under_a_file", lambda ws: _file(ws / "f.txt") / "out", None, "f.txt", "not a folder"),
    ("out_cannot_be_written", _sys_kernel, None, "/sys/kernel", "cannot be written"),
    ("out_parent_cannot_be_written", lambda ws: _sys_kernel(ws) / "osmgap-out", None, "/sys/kernel",
     "cannot be written"),
    ("summary_json_is_a_folder", lambda ws: _folder_at(ws / "out" / "summary.json").parent, None,
     "summary.json", "is a folder"),
    ("suggestions_osm_is_a_folder", lambda ws: _folder_at(ws / "out" / "suggestions.osm").parent, None,
     "suggestions.osm", "is a folder"),
    ("overview_png_is_a_folder", lambda ws: _folder_at(ws / "out" / "overview.png").parent, None,
     "overview.png", "is a folder"),
    ("state_corrupt_page", None, lambda ws: _garbage_in_the_middle(ws / "state.sqlite"), "state.sqlite", "damaged"),
    ("state_truncated", None, lambda ws: _truncated(ws / "state.sqlite"), "state.sqlite", "state file"),
    ("state_not_sqlite", None, lambda ws: _file(ws / "state.sqlite", b"runs: 3\n" * 50), "state.sqlite",
     "not an osmgap state file"),
    ("state_of_another_program", None, lambda ws: _other_program(ws / "state.sqlite"), "state.sqlite",
     "another program's SQLite file"),
    ("state_is_a_geopackage", None, _geopackage, "roads.gpkg",
     "another program's SQLite file"),
    ("state_newer_user_version", None, lambda ws: _sql(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")(
        ws / "state.sqlite"), "state.sqlite", "newer than this osmgap"),
    ("state_newer_meta_schema", None, lambda ws: _sql("UPDATE meta SET value = '7' WHERE key = 'schema_version'")(
        ws / "state.sqlite"), "state.sqlite", "newer than this osmgap"),
    ("state_table_redefined", None, lambda ws: _sql(
        "PRAGMA writable_schema = ON; UPDATE sqlite_master SET sql = replace(sql, 'out_dir', 'out_dyr') "
        "WHERE name = 'runs'; PRAGMA writable_schema = OFF;")(ws / "state.sqlite"), "state.sqlite",
     "definition of table runs"),
    ("state_row_not_geojson", None, lambda ws: _sql(
        "UPDATE suggestions SET geometry = '{\"tyqe\": \"LineString\"}' WHERE rowid = 2")(ws / "state.sqlite"),
     "state.sqlite", "geometry is not a JSON object"),
    ("state_is_a_folder", None, lambda ws: _folder(ws / "states"), "states", "is a folder"),
    ("new_state_under_a_file", None, lambda ws: _file(ws / "f.txt") / "state.sqlite", "f.txt", "not a folder"),
    ("new_state_out_is_a_file", lambda ws: _file(ws / "out.txt"), lambda ws: ws / "new.sqlite", "out.txt",
     "not a folder"),
]


def _folder(p: Path) -> Path:
    p.mkdir()
    return p


@pytest.mark.parametrize("name, out_of, state_of, named, says", REFUSED, ids=[c[0] for c in REFUSED])
def test_refused_and_nothing_written(reference, ws, capsys, name, out_of, state_of, named, says):
    out = out_of(ws) if out_of else ws / "out"
    state = state_of(ws) if state_of else ws / "state.sqlite"
    err = assert_refused(ws, _argv(reference, out, state), named, capsys)
    assert says in err
    assert not (ws / "new.sqlite").exists()


def test_a_run_refused_for_its_input_creates_no_state_file(reference, ws, capsys):
    argv = _argv(reference, ws / "out", ws / "new.sqlite")
    argv[argv.index("--candidates") + 1] = str(ws / "missing.geojson")
    assert_refused(ws, argv, "missing.geojson", capsys)


# --- accepted: exit 0, complete new outputs --------------------------------------------------

def _read_only_outputs(ws: Path) -> None:
    """Read-only files in a writable folder: replaced, as ``mv`` would (the folder is what counts)."""
    for name in OUTPUTS:
        os.chmod(ws / "out" / name, 0o444)


def _legacy_state(ws: Path) -> None:
    """A state file of osmgap before the marks: application_id and user_version 0."""
    _sql("PRAGMA application_id = 0; PRAGMA user_version = 0;")(ws / "state.sqlite")


def _empty_state(ws: Path) -> None:
    (ws / "state.sqlite").write_bytes(b"")


def _raising(code: int) -> Callable:
    def fail(*args: object) -> None:
        raise OSError(code, os.strerror(code), str(args[0]))
    return fail


def _rename_refused_for_out(monkeypatch: pytest.MonkeyPatch, ws: Path, code: int) -> None:
    """--out on its own mount point: neither swapping nor renaming it is possible."""
    real = os.rename
    out = ws / "out"

    def rename(src, dst, *args, **kwargs):  # noqa: ANN001, ANN202
        if out in (Path(src), Path(dst)):
            raise OSError(code, os.strerror(code), str(src), None, str(dst))
        return real(src, dst, *args, **kwargs)
    monkeypatch.setattr(atomic, "_exchange", _raising(code))
    monkeypatch.setattr(os, "rename", rename)


ACCEPTED: list[tuple[str, Callable]] = [
    ("read_only_earlier_outputs", lambda ws, mp: _read_only_outputs(ws)),
    ("out_a_mount_point_exdev", lambda ws, mp: _rename_refused_for_out(mp, ws, errno.EXDEV)),
    ("out_a_mount_point_ebusy", lambda ws, mp: _rename_refused_for_out(mp, ws, errno.EBUSY)),
    ("no_renameat2_two_renames", lambda ws, mp: mp.setattr(atomic, "_exchange", _raising(errno.ENOSYS))),
    ("state_of_osmgap_before_the_marks", lambda ws, mp: _legacy_state(ws)),
    ("state_zero_bytes", lambda ws, mp: _empty_state(ws)),
    ("users_folder_in_out_kept", lambda ws, mp: _user_folder(ws)),
]


def _user_folder(ws: Path) -> None:
    (ws / "out" / "maproulette-dry-run").mkdir()
    (ws / "out" / "maproulette-dry-run" / "request-1.json").write_text('{"dry": true}')


@pytest.mark.parametrize("name, prepare", ACCEPTED, ids=[c[0] for c in ACCEPTED])
def test_accepted_and_published_whole(reference, ws, monkeypatch, name, prepare):
    _earlier_outputs(ws)
    prepare(ws, monkeypatch)
    kept = {p: p.read_bytes() for p in (ws / "out").rglob("*") if p.is_file() and p.name not in OUTPUTS}
    runs = _runs(ws / "state.sqlite") if (ws / "state.sqlite").stat().st_size else 0
    assert cli_plain(_argv(reference, ws / "out", ws / "state.sqlite")) == 0
    monkeypatch.undo()
    assert_published(reference, ws, *{p.relative_to(ws / "out").parts[0] for p in kept} - {"notes.txt"})
    assert {p: p.read_bytes() for p in kept} == kept
    assert _runs(ws / "state.sqlite") == runs + 1


# --- a publish that fails half-way: exit 1, one line, the workspace byte-identical ----------

def _nth_move_into_out_fails(monkeypatch: pytest.MonkeyPatch, ws: Path, n: int) -> None:
    """The mount-point path, with the n-th rename into or out of --out failing (EIO)."""
    _rename_refused_for_out(monkeypatch, ws, errno.EXDEV)
    mount_point_rename, seen, out = os.rename, [], ws / "out"

    def rename(src, dst, *args, **kwargs):  # noqa: ANN001, ANN202
        if out in (Path(src).parent, Path(dst).parent):
            seen.append(src)
            if len(seen) == n:
                raise OSError(errno.EIO, os.strerror(errno.EIO), str(src))
        return mount_point_rename(src, dst, *args, **kwargs)
    monkeypatch.setattr(os, "rename", rename)


def _nth_move_fault(n: int, ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _nth_move_into_out_fails(monkeypatch, ws, n)


def _disk_full_at_summary(monkeypatch: pytest.MonkeyPatch, ws: Path) -> None:
    import osmgap.jobs.diff

    real = osmgap.jobs.diff.write_text_atomic

    def write(path, text):  # noqa: ANN001, ANN202
        if Path(path).name == "summary.json":
            Path(path).write_text(text[:10])  # half a file, as a full disk leaves it
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(path, text)
    monkeypatch.setattr(osmgap.jobs.diff, "write_text_atomic", write)


FAILING: list[tuple[str, Callable, str]] = [
    ("swap_fails", lambda ws, mp: mp.setattr(atomic, "_exchange", _raising(errno.EIO)), "Input/output error"),
    ("second_of_two_renames_fails", lambda ws, mp: _second_rename_fails(mp, ws), "Input/output error"),
    *[(f"mount_point_move_{n}_fails", functools.partial(_nth_move_fault, n), "Input/output error") for n in (1, 4, 9)],
    ("disk_full_while_staging", lambda ws, mp: _disk_full_at_summary(mp, ws), "No space left on device"),
]


def _second_rename_fails(monkeypatch: pytest.MonkeyPatch, ws: Path) -> None:
    real, out = os.rename, ws / "out"

    def rename(src, dst, *args, **kwargs):  # noqa: ANN001, ANN202
        if Path(dst) == out and ".staging." in Path(src).name:  # the new folder in; putting the old back works
            raise OSError(errno.EIO, os.strerror(errno.EIO), str(src))
        return real(src, dst, *args, **kwargs)
    monkeypatch.setattr(atomic, "_exchange", _raising(errno.ENOSYS))
    monkeypatch.setattr(os, "rename", rename)


@pytest.mark.parametrize("name, fault, says", FAILING, ids=[c[0] for c in FAILING])
def test_failed_publish_leaves_everything_as_it_was(reference, ws, monkeypatch, capsys, name, fault, says):
    _earlier_outputs(ws)
    before = snapshot(ws)
    fault(ws, monkeypatch)
    rc, err = cli(_argv(reference, ws / "out", ws / "state.sqlite"), capsys)
    monkeypatch.undo()
    assert rc == 1 and len(err.strip().splitlines()) == 1 and says in err, err
    assert snapshot(ws) == before


# --- leftovers of killed runs ----------------------------------------------------------------

def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _staging(ws: Path, token: str) -> Path:
    d = ws / f".out.staging.{token}.x7k2m9q1"
    d.mkdir()
    (d / "summary.json").write_text("half")
    return d


def test_staging_folder_of_a_dead_run_is_removed(reference, ws):
    stale = _staging(ws, run_token(_dead_pid()))
    assert cli_plain(_argv(reference, ws / "out", ws / "state.sqlite")) == 0
    assert not stale.exists()
    assert_published(reference, ws)


def test_staging_folder_of_a_live_run_is_kept(reference, ws):
    with subprocess.Popen(["sleep", "60"]) as live:
        try:
            alive = _staging(ws, run_token(live.pid))
            assert cli_plain(_argv(reference, ws / "out", ws / "state.sqlite")) == 0
            assert (alive / "summary.json").read_text() == "half"
        finally:
            live.kill()
    shutil.rmtree(alive)
    assert_published(reference, ws)


def test_a_run_killed_mid_swap_is_restored_then_published(reference, ws):
    """Killed between its two renames: --out is gone, the earlier folder sits beside it."""
    (ws / "out").rename(ws / f".out.old.{run_token(_dead_pid())}.x7k2m9q1")
    assert cli_plain(_argv(reference, ws / "out", ws / "state.sqlite")) == 0
    assert_published(reference, ws)  # notes.txt came back with the earlier folder


def test_a_run_killed_while_writing_leaves_nothing_the_next_run_keeps(reference, ws):
    """A real process SIGKILLed inside its staging folder (a non-tiled run's write stage)."""
    script = ("import sys, time\nfrom osmgap.core.atomic import staged_output_dir, write_text_atomic\n"
              "with staged_output_dir(sys.argv[1]) as s:\n    write_text_atomic(s / 'summary.json', '{')\n"
              "    print(s, flush=True)\n    time.sleep(60)\n")
    from tests.conftest import PROJECT

    with subprocess.Popen([sys.executable, "-c", script, str(ws / "out")], stdout=subprocess.PIPE, text=True,
                          cwd=PROJECT) as proc:
        stage = Path(proc.stdout.readline().strip())
        assert stage.parent == ws and stage.is_dir()
        proc.kill()
    assert stage.exists()
    assert cli_plain(_argv(reference, ws / "out", ws / "state.sqlite")) == 0
    assert not stage.exists()
    assert_published(reference, ws)


# --- tile files a killed or damaged --resume finds --------------------------------------------

def _tile() -> TileResult:
    acc = np.linspace(0, 1, 48 * 48, dtype=np.float32).reshape(48, 48)  # windows' weighted probabilities
    return TileResult("r00000_c00001", acc, np.full((48, 48), 2.0, np.float32))  # and their weights


def _npy(data: bytes) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, np.zeros((48, 48), np.float32))
    return buf.getvalue()


def _wrong_dtype(data: bytes) -> bytes:
    import io

    buf = io.BytesIO()
    np.savez(buf, acc=np.zeros((48, 48), np.float64), cov=np.ones((48, 48), np.float64))
    return buf.getvalue()


def _shapes_differ(data: bytes) -> bytes:
    return TileResult("k", np.zeros((4, 4), np.float32), np.ones((4, 5), np.float32)).to_bytes()


BAD_TILES: list[tuple[str, Callable[[bytes], bytes]]] = [
    ("zero_bytes", lambda d: b""),
    ("truncated", lambda d: d[: len(d) // 2]),
    ("truncated_to_the_header", lambda d: d[:30]),
    ("garbage", lambda d: np.random.default_rng(8).integers(0, 256, len(d), dtype=np.uint8).tobytes()),
    ("one_flipped_byte", lambda d: d[:len(d) - 300] + bytes([d[len(d) - 300] ^ 0xFF]) + d[len(d) - 299:]),
    ("a_plain_npy", _npy),
    ("wrong_dtype", _wrong_dtype),
    ("weights_of_another_shape", _shapes_differ),
]


@pytest.mark.parametrize("name, damage", BAD_TILES, ids=[c[0] for c in BAD_TILES])
def test_unreadable_tile_is_forgotten_not_fatal(tmp_path, name, damage):
    store = TileStore(tmp_path / "work", {"case": "hostile"})
    store.save(_tile())
    path = store.path(_tile().key)
    path.write_bytes(damage(path.read_bytes()))
    assert store.load(_tile().key) is None
    assert not path.exists() and store.done() == set()


def test_zero_byte_tile_is_not_counted_done(tmp_path):
    store = TileStore(tmp_path / "work", {"case": "hostile"})
    store.save(_tile())
    store.path("r00000_c00002").write_bytes(b"")
    assert store.done() == {"r00000_c00001"}
    back = store.load("r00000_c00001")
    assert back is not None and np.array_equal(back.acc, _tile().acc) and np.array_equal(back.cov, _tile().cov)


def test_tile_path_taken_by_a_folder(tmp_path):
    store = TileStore(tmp_path / "work", {"case": "hostile"})
    store.path("r00000_c00001").mkdir()
    assert store.load("r00000_c00001") is None and not store.path("r00000_c00001").exists()
    store.save(_tile())
    assert store.load("r00000_c00001") is not None


def test_a_state_that_cannot_be_written_is_refused_before_any_output_moves(reference, ws, capsys, monkeypatch):
    """A state osmgap may read but not write (a read-only file for a user who is not root; root
    writes anything, so the kernel's answer is given here): the new outputs replaced last week's,
    then recording failed with an internal error, outputs and state disagreeing."""
    import osmgap.workspace.store as store

    state = ws / "state.sqlite"
    real = os.access
    monkeypatch.setattr(store.os, "access", lambda p, mode, **kw: False if (
        Path(p) == state and mode & os.W_OK) else real(p, mode, **kw))
    err = assert_refused(ws, _argv(reference, ws / "out", state), "state.sqlite", capsys)
    assert "cannot write the state file" in err


def test_outputs_are_never_read_half_swapped(tmp_path):
    """A run writing into the folder it stands in (`--out .`) moves its entries in one by one,
    journalled. Killed half-way, the folder held this run's suggestions beside the last run's
    summary, and `osmgap publish` sent them as that run: reading the outputs undoes the swap first."""
    from osmgap.workspace.outputs import read_outputs
    from tests.sample_outputs import sample_ways, write_outputs

    out = tmp_path / "out"
    ways = sample_ways(data_root())
    old = write_outputs(out, ways[:2])
    new = write_outputs(tmp_path / "new", ways[2:5])
    script = (
        "import os, shutil, sys\nfrom osmgap.core.atomic import staged_output_dir\n"
        "real, count = os.rename, [0]\n"
        "def rename(a, b):\n    count[0] += 1\n    if count[0] == 4:\n        os._exit(9)\n    return real(a, b)\n"
        "with staged_output_dir('.', replaces={'summary.json', 'suggestions.geojson'}) as s:\n"
        "    for name in ('suggestions.geojson', 'summary.json'):\n"
        "        shutil.copyfile(os.path.join(sys.argv[1], name), s / name)\n"
        "    os.rename = rename\n")
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path / "new")], cwd=out, capture_output=True)
    assert proc.returncode == 9, proc.stderr  # killed inside the swap
    assert [p.name for p in out.iterdir() if p.name.startswith(".osmgap.old.")]  # its journal is there
    read = read_outputs(out)
    assert (read.summary_sha256, [f["id"] for f in read.features]) == (
        old.summary_sha256, [f["id"] for f in old.features])
    assert new.summary_sha256 != old.summary_sha256
