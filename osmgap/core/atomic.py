"""Write outputs so that a reader never sees half a file and a failed run changes nothing.

``write_bytes_atomic`` writes one file through a temp file and a rename.

``staged_output_dir`` is how every verb publishes a folder of outputs. What it guarantees:

* ``check_output_dir`` (also called on entry) refuses, as an ``InputError``, an ``out`` that is a
  file or a folder that cannot be written, so a verb can refuse it before any computation.
* The run writes into a staging folder; no entry of ``out`` changes until the block has
  succeeded. On any failure the staging folder is removed and ``out`` keeps its earlier entries
  byte for byte (it is not even created if it did not exist, nor are missing parents).
* Names the verb ``replaces`` (every output any osmgap run writes) belong to one run: those the
  run does not write are removed, not kept, so a folder never mixes two runs' outputs (a scan's
  summary beside an earlier diff's suggestions). Other entries (the user's notes, the report) stay.
* A run's output whose kind differs from what is at its name in ``out`` (``summary.json`` a
  folder) is refused as an ``InputError`` before anything moves.
* Usual case, the staging folder a sibling of ``out``: entries of ``out`` the run does not write
  are hard-linked (or copied) into it, then it is swapped with ``out`` in one step (Linux
  ``renameat2(RENAME_EXCHANGE)``; elsewhere two renames, the first undone if the second fails). A
  reader sees the whole old folder or the whole new one; the old one is removed only after the swap.
* ``out`` a mount point (or a rename of ``out`` fails with EXDEV/EBUSY, or its parent is not
  writable, or it is the working folder or above it: ``--out .``): the run's entries are staged
  inside ``out`` and moved in one by one; each replaced entry waits in a journal folder inside
  ``out`` until all are in, and any failure moves them back.
  Only here can a reader see a mix, for the moment of the moves; a crash in that moment is rolled
  back by the next run.
* Staging and journal folders are named after their run (host, pid, process start time). Each run
  first removes those of dead runs (restoring what a killed swap left half-done); those of live
  runs are never touched; those whose owner cannot be checked (another host) only after a week.
"""
from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import stat
import tempfile
import time
from collections.abc import Callable, Collection, Iterator
from pathlib import Path

from osmgap.errors import InputError

log = logging.getLogger(__name__)

HOST = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]
UNKNOWN_OWNER_STALE_S = 7 * 86400  # a staging folder whose run cannot be checked is stale after a week
INSIDE = ".osmgap."  # prefix of osmgap's own folders inside ``out`` (mount-point mode, probes)
_TOKEN = re.compile(r"([0-9a-f]{8})-(\d+)-(\d+)")
_KINDS = ("staging", "old", "probe")
_FALLBACK_ERRNOS = (errno.EXDEV, errno.EBUSY)  # a rename of ``out`` itself is impossible: entry by entry


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temp file in the same directory, then rename."""
    write_files_atomic({Path(path): data})


def write_files_atomic(files: dict[Path, bytes]) -> None:
    """Write every file through a temp file beside it, all of them to disk first, then rename
    them one after the other: a run killed while writing leaves every file as it was, and the
    files of one run (a report's page and its summary) are replaced together but for a moment."""
    temps: list[tuple[str, Path]] = []
    try:
        for path, data in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
            temps.append((tmp, path))
            os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; outputs are for others to read
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        while temps:
            tmp, path = temps[0]
            os.replace(tmp, path)
            temps.pop(0)
    except BaseException:
        for tmp, _ in temps:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


# checks before any work ----------------------------------------------------------------------
def check_output_dir(out: str | Path) -> None:
    """Refuse an output folder osmgap could not write: an existing file (or dangling link), or a
    folder (or, if it does not exist yet, its nearest existing parent) that cannot be written."""
    out = Path(out)
    if os.path.lexists(out) and not out.is_dir():
        raise InputError(out, "exists and is not a folder; osmgap writes a folder of files there")
    existing = out if out.is_dir() else _nearest_existing(out.parent)
    if not existing.is_dir():
        raise InputError(out, f"cannot be created: {existing} is not a folder")
    problem = _write_problem(existing)
    if problem:
        where = "" if existing == out else f" (its parent {existing})"
        raise InputError(out, f"folder cannot be written{where}: {problem}")


def check_output_file(path: str | Path) -> None:
    """Refuse an output file osmgap could not write, before any work: a folder at its name, or a
    parent that is a file or cannot be written (the file is written through a temp file beside it)."""
    path = Path(path)
    if path.is_dir():
        raise InputError(path, "is a folder; give the name of the file to write")
    existing = _nearest_existing(path.parent)
    if not existing.is_dir():
        raise InputError(path, f"cannot be created: {existing} is not a folder")
    problem = _write_problem(existing)
    if problem:
        raise InputError(path, f"cannot be written in {existing}: {problem}")


def _nearest_existing(path: Path) -> Path:
    while not os.path.lexists(path) and path != path.parent:
        path = path.parent
    return path


def _write_problem(folder: Path) -> str | None:
    """Why nothing can be created in ``folder`` (None: it can). Tried for real, as permission
    bits say nothing to root and nothing about read-only or special file systems."""
    try:
        os.rmdir(tempfile.mkdtemp(prefix=f"{INSIDE}probe.{run_token()}.", dir=folder))
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


# run tokens and stale folders ----------------------------------------------------------------
def _proc_stat(pid: int) -> list[str] | None:
    """Fields 3.. of /proc/PID/stat (state, ppid, ...), None without /proc or the process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def _start_ticks(pid: int) -> str:
    fields = _proc_stat(pid)
    return fields[19] if fields else "0"  # field 22, starttime: tells a reused pid from its first owner


def run_token(pid: int | None = None) -> str:
    """``HOST-PID-START`` of a process (default: this one), as put into staging folder names."""
    pid = os.getpid() if pid is None else pid
    return f"{HOST}-{pid}-{_start_ticks(pid)}"


def _owner_alive(token: str, mtime: float) -> bool:
    """Whether the run that named a folder ``token`` may still be running."""
    m = _TOKEN.fullmatch(token)
    if m is None or m[1] != HOST:  # an older osmgap's name, or another machine's: only age tells
        return time.time() - mtime < UNKNOWN_OWNER_STALE_S
    pid, start = int(m[2]), m[3]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's
    fields = _proc_stat(pid)
    if fields is None:
        return start == "0"  # no /proc: the pid alone
    return fields[0] != "Z" and (start == "0" or fields[19] == start)


def _our_folders(where: Path, prefix: str) -> Iterator[tuple[str, Path, str]]:
    """(kind, path, token) of each folder ``PREFIX KIND . TOKEN . RANDOM`` in ``where``."""
    try:
        entries = list(os.scandir(where))
    except OSError:
        return
    for entry in entries:
        if not entry.name.startswith(prefix) or not entry.is_dir(follow_symlinks=False):
            continue
        kind, _, rest = entry.name[len(prefix):].partition(".")
        if kind in _KINDS:
            yield kind, Path(entry.path), rest.rpartition(".")[0]


def clean_stale(out: str | Path) -> None:
    """Remove the staging and journal folders of dead runs beside and inside ``out``, first
    finishing or undoing what a killed swap left half-done."""
    out = Path(out)
    for kind, path, token in _our_folders(out.parent, f".{out.name}."):
        if _owner_alive(token, _mtime(path)):
            continue
        if kind == "old" and not os.path.lexists(out):  # killed between its two renames
            log.warning("%s: restored from %s, left by a killed run", out, path.name)
            os.rename(path, out)
        else:
            _remove(path)
    if out.is_dir() and not out.is_symlink():
        for kind, path, token in _our_folders(out, INSIDE):
            if _owner_alive(token, _mtime(path)):
                continue
            if kind == "old" and (path / "manifest.json").exists():  # killed while moving entries in
                log.warning("%s: earlier outputs restored from %s, left by a killed run", out, path.name)
                _roll_back(path, out)
            _close_journal(path)


def check_settled(out: str | Path) -> None:
    """Make ``out`` safe to read: a swap a killed run left half-done is undone (``clean_stale``);
    one a live run is doing now is an InputError (its entries are half old, half new)."""
    out = Path(out)
    clean_stale(out)
    if out.is_dir() and not out.is_symlink():
        for kind, path, token in _our_folders(out, INSIDE):
            if kind == "old" and (path / "manifest.json").exists() and _owner_alive(token, _mtime(path)):
                raise InputError(out, "another osmgap run is writing its outputs now; try again when it has finished")


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return time.time()


def _remove(path: Path) -> None:
    """Remove a folder of ours, read-only sub-folders too; what still resists is logged, and
    removed by a later run."""
    def writable_again(func: Callable[[str], object], failed: str, _exc: object) -> None:
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(failed), 0o700)
            func(failed)

    if os.path.lexists(path):
        shutil.rmtree(path, onerror=writable_again)
    if os.path.lexists(path):
        log.warning("could not remove %s; a later run will", path)


# the staged folder ---------------------------------------------------------------------------
@contextlib.contextmanager
def staged_output_dir(out_dir: str | Path, replaces: Collection[str] = (),
                      markers: Collection[Collection[str]] = ()) -> Iterator[Path]:
    """Yield a staging folder; when the block succeeds, publish it as ``out_dir``, without the
    entries named in ``replaces`` that the run did not write (see the module docstring for what
    is guaranteed); with ``markers``, only where ``out_dir`` holds every entry of one of them (an
    earlier run wrote there: a folder of the user's keeps files that merely share a name)."""
    check_output_dir(out_dir)
    out = Path(out_dir).resolve()
    clean_stale(out)
    if markers and not any(all(os.path.lexists(out / name) for name in marker) for marker in markers):
        replaces = ()  # no earlier run wrote here: a map.html or folds.json in it is the user's own
    made = _make_parents(out.parent)
    inside = out.is_dir() and (os.path.ismount(out) or _write_problem(out.parent) is not None or _holds_cwd(out))
    where, prefix = (out, f"{INSIDE}staging.") if inside else (out.parent, f".{out.name}.staging.")
    try:
        stage = Path(tempfile.mkdtemp(prefix=f"{prefix}{run_token()}.", dir=where))
    except BaseException:
        _unmake(made)
        raise
    published = False
    try:
        os.chmod(stage, stat.S_IMODE(out.stat().st_mode) if out.is_dir() else 0o777 & ~_umask())
        yield stage
        _publish(stage, out, set(replaces))
        published = True
    finally:
        _remove(stage)
        if not published:
            _unmake(made)


def _holds_cwd(folder: Path) -> bool:
    """True when ``folder`` is the working folder or above it (``--out .``): swapping it would
    leave this process and the user's shell in a removed folder, where relative paths fail."""
    try:
        cwd = Path.cwd().resolve()
    except OSError:
        return False
    return cwd == folder or folder in cwd.parents


def _make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; the ones created, to undo on failure."""
    made = []
    while not os.path.lexists(folder):
        made.append(folder)
        folder = folder.parent
    for path in reversed(made):
        path.mkdir()
    return made


def _unmake(made: list[Path]) -> None:
    for path in made:
        with contextlib.suppress(OSError):
            path.rmdir()


def _publish(stage: Path, out: Path, replaces: set[str]) -> None:
    produced = sorted(os.listdir(stage))
    if not os.path.lexists(out):
        os.rename(stage, out)  # nothing earlier to keep: one rename
        return
    _check_kinds(stage, out, produced)
    stale = sorted(n for n in replaces - set(produced) if os.path.lexists(out / n))
    if stage.parent != out and os.stat(stage).st_dev == os.stat(out).st_dev:
        try:
            _carry_over(out, stage, set(produced) | replaces)
            _swap_folders(stage, out)
            return
        except OSError as exc:
            if exc.errno not in _FALLBACK_ERRNOS:
                raise
            log.info("%s cannot be renamed (%s); moving the outputs in one by one", out, exc.strerror)
    _swap_entries(stage, out, produced, stale)


def _check_kinds(stage: Path, out: Path, produced: list[str]) -> None:
    for name in produced:
        target = out / name
        if target.is_symlink() or not target.exists():
            continue
        if target.is_dir() != (stage / name).is_dir():
            what, writes = ("a folder", "a file") if target.is_dir() else ("a file", "a folder")
            raise InputError(target, f"is {what} where osmgap writes {writes}; move it away and run again")


def _carry_over(out: Path, stage: Path, left_out: set[str]) -> None:
    """Entries of ``out`` not in ``left_out`` go into the new folder too (hard links)."""
    for entry in os.scandir(out):
        if entry.name in left_out or entry.name.startswith(INSIDE):
            continue
        _link_tree(entry.path, str(stage / entry.name))


def _link_tree(src: str, dst: str) -> None:
    """Like shutil.copytree with hard links, but an EXDEV comes out as itself (a bind mount)."""
    if not os.path.isdir(src) or os.path.islink(src):
        _link_or_copy(src, dst)
        return
    os.mkdir(dst)
    for name in os.listdir(src):
        _link_tree(os.path.join(src, name), os.path.join(dst, name))
    shutil.copystat(src, dst, follow_symlinks=False)  # last: a read-only mode would stop the links


def _link_or_copy(src: str, dst: str) -> None:
    if os.path.islink(src):
        os.symlink(os.readlink(src), dst)
        return
    try:
        os.link(src, dst, follow_symlinks=False)
    except OSError as exc:
        if exc.errno in _FALLBACK_ERRNOS:
            raise
        shutil.copy2(src, dst, follow_symlinks=False)


def _exchange(a: Path, b: Path) -> None:
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE); ENOSYS where not available."""
    libc = ctypes.CDLL(None, use_errno=True)
    if not hasattr(libc, "renameat2"):
        raise OSError(errno.ENOSYS, os.strerror(errno.ENOSYS), str(a))
    at_fdcwd, rename_exchange = -100, 2
    if libc.renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), str(a), None, str(b))


def _swap_folders(stage: Path, out: Path) -> None:
    """Put the complete ``stage`` in place of ``out``; ``out`` unchanged if this raises."""
    try:
        _exchange(stage, out)
    except OSError as exc:
        if exc.errno not in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
        _rename_twice(stage, out)
    # ``stage`` now holds the earlier outputs; the caller removes it


def _rename_twice(stage: Path, out: Path) -> None:
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.{run_token()}.", dir=out.parent))
    try:
        os.rename(out, old)  # onto the empty folder just made: the name cannot be taken meanwhile
    except BaseException:
        old.rmdir()
        raise
    try:
        os.rename(stage, out)
    except BaseException:
        os.rename(old, out)
        raise
    _remove(old)


def _swap_entries(stage: Path, out: Path, produced: list[str], stale: list[str]) -> None:
    """Move the run's entries into ``out`` one by one and the ``stale`` ones out, journalled;
    all moved back on failure."""
    token = run_token()
    inner = stage if stage.parent == out else Path(tempfile.mkdtemp(prefix=f"{INSIDE}staging.{token}.", dir=out))
    journal = Path(tempfile.mkdtemp(prefix=f"{INSIDE}old.{token}.", dir=out))
    try:
        for name in produced if inner != stage else ():
            shutil.move(str(stage / name), str(inner / name))  # copies across file systems
        existed = {name: os.path.lexists(out / name) for name in produced + stale}
        write_text_atomic(journal / "manifest.json", json.dumps(existed))
        (journal / "entries").mkdir()
        for name in produced + stale:
            if existed[name]:
                os.rename(out / name, journal / "entries" / name)
            if name not in stale:
                os.rename(inner / name, out / name)
    except BaseException:
        _roll_back(journal, out)  # should this fail too, the journal stays for the next run
        _close_journal(journal)
        raise
    finally:
        if inner != stage:
            _remove(inner)
    _close_journal(journal)


def _roll_back(journal: Path, out: Path) -> None:
    """Undo a journalled entry swap, however far it got: earlier entries back, new ones out."""
    manifest = journal / "manifest.json"
    if not manifest.exists():
        return  # nothing in ``out`` was touched yet
    discard = journal / "discard"
    discard.mkdir(exist_ok=True)
    for name, existed in json.loads(manifest.read_text()).items():
        saved, target = journal / "entries" / name, out / name
        if existed and not os.path.lexists(saved):
            continue  # never moved away: still the earlier entry
        if os.path.lexists(target):
            os.rename(target, discard / name)
        if existed:
            os.rename(saved, target)


def _close_journal(journal: Path) -> None:
    """Remove a journal whose swap is complete or undone. Its manifest goes first: without one
    a journal is never rolled back, so a later run cannot undo a swap that succeeded."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(journal / "manifest.json")
    _remove(journal)
