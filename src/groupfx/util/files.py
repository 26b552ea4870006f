"""Writing files and folders so that nothing is left half-written and nothing of the user's is lost.

Every output folder groupfx makes holds a small marker file, :data:`MARKER`, saying what it is (a ``report``
or a ``study``). groupfx writes into, replaces or cleans up only folders that carry it:

- :func:`check_output_folder` refuses, before any work, an output folder that exists and is not groupfx's
  (a regular file, a folder without the marker, the input's own folder), one that holds an input file, one
  whose parent cannot be written, and one another run is using;
- :func:`claim_output_folder` holds a lock on the folder for the length of a run (a second run into it is
  refused; the lock of a killed run is released by the operating system) and removes the temporary folders
  that killed runs left beside it, which it knows by their marker;
- :func:`atomic_directory` writes a folder beside its destination and moves it into place when complete.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import secrets
import shutil
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal

from groupfx.errors import InputError

MARKER = ".groupfx-output"
"""Name of the file inside every output folder groupfx made."""

OutputKind = Literal["report", "study"]
KINDS: tuple[str, ...] = ("report", "study")

_held: dict[tuple[Path, int], list[int]] = {}  # (folder, thread) -> [lock file descriptor, depth]
_held_guard = threading.Lock()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("groupfx")
    except PackageNotFoundError:  # pragma: no cover - a source tree without its metadata
        return "unknown"


def write_marker(folder: str | Path, kind: OutputKind, target: str | None = None) -> Path:
    """Mark ``folder`` as a groupfx output of ``kind``.

    Parameters
    ----------
    folder : str or pathlib.Path
        An existing folder groupfx made.
    kind : {"report", "study"}
        What the folder holds.
    target : str, optional
        Name of the folder this one will become (default: its own name); a temporary folder records the
        name of its destination, so that only runs into that destination clean it up.

    Returns
    -------
    pathlib.Path
        The marker file.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    folder = Path(folder)
    path = folder / MARKER
    record = {"kind": kind, "groupfx": _version(), "target": target or folder.name}
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    return path


def read_marker(folder: str | Path) -> dict[str, str] | None:
    """The marker of ``folder`` (keys ``kind``, ``groupfx``, ``target``), or None if it has none."""
    path = Path(folder) / MARKER
    try:
        if path.is_symlink() or not path.is_file():
            return None
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("kind") not in KINDS:
        return None
    return {key: str(value) for key, value in record.items()}


def output_kind(folder: str | Path) -> str | None:
    """``"report"`` or ``"study"`` for a folder groupfx made, None for anything else."""
    folder = Path(folder)
    if folder.is_symlink() or not folder.is_dir():
        return None
    record = read_marker(folder)
    return record["kind"] if record else None


def _is_empty_folder(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink() and not any(path.iterdir())


def _lock_path(folder: Path) -> Path:
    return folder.parent / f".{folder.name}.groupfx-lock"


def _holds(folder: Path) -> bool:
    with _held_guard:
        return (folder, threading.get_ident()) in _held


def check_output_folder(path: str | Path, kind: OutputKind, inputs: Iterable[str | Path | None] = ()) -> Path:
    """Refuse an output folder groupfx must not write, before any work is done.

    Allowed are a folder that does not exist yet (in a parent that can be written), an empty folder, and a
    folder groupfx made for the same ``kind`` (it carries :data:`MARKER`).

    Parameters
    ----------
    path : str or pathlib.Path
        The output folder (``--out``).
    kind : {"report", "study"}
        What will be written there.
    inputs : iterable of path, optional
        Files the run reads; the output folder may neither be one nor hold one. None entries are skipped.

    Returns
    -------
    pathlib.Path
        The folder's absolute path.

    Raises
    ------
    InputError
        One line naming the folder, what is wrong and the fix.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    given = Path(path)
    if given.is_symlink() and not given.exists():
        raise InputError(f"The output folder {given} is a link to nothing; choose another --out.")
    out = given.resolve()
    for item in inputs:
        if item is None:
            continue
        source = Path(item).resolve()
        if source == out or out in source.parents:
            raise InputError(
                f"The output folder {given} holds the input {item}; choose an --out outside it, e.g. a new"
                f" folder such as {source.parent / (source.stem + '-groupfx')}."
            )
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise InputError(
                f"The output {given} exists and is not a folder; groupfx will not replace it: choose another"
                " --out."
            )
        found = output_kind(out)
        if found is None and not _is_empty_folder(out):
            raise InputError(
                f"The folder {given} exists and is not a groupfx {kind} folder (it has no {MARKER} file);"
                " groupfx writes only into folders it made: choose a new --out (a report of a groupfx older"
                " than the marker is yours to remove)."
            )
        if found is not None and found != kind:
            raise InputError(
                f"The folder {given} holds a groupfx {found}, not a {kind}; choose another --out."
            )
    _check_writable(given, out)
    if kind == "study" and out.is_dir():  # a study is written into its folder, not swapped in
        _probe(given, out)
    if not _holds(out):
        _probe_lock(given, out)
    return out


def _check_writable(given: Path, out: Path) -> None:
    """Create and remove a file where the output folder goes (its parent, or the nearest that exists)."""
    ancestor = out.parent
    while not (ancestor.exists() or ancestor.is_symlink()) and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise InputError(
            f"The output folder {given} cannot be made: {ancestor} is a file, not a folder; choose another"
            " --out."
        )
    _probe(given, ancestor)


def _probe(given: Path, folder: Path) -> None:
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".groupfx-probe.", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise InputError(
            f"The output folder {given} cannot be written: creating a file in {folder} failed"
            f" ({error.strerror or error}); choose an --out in a folder you can write to."
        ) from None


def _acquire(given: Path, out: Path) -> int:
    """Lock ``out`` for this process; refuse if another run holds it."""
    lock = _lock_path(out)
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as error:
            raise InputError(
                f"The output folder {given} cannot be locked ({lock}: {error.strerror or error}); choose an"
                " --out in a folder you can write to."
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            holder = _read_holder(fd)
            os.close(fd)
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                who = f" (process {holder})" if holder else ""
                raise InputError(
                    f"The output folder {given} is in use by another groupfx run{who}; wait until it ends, or"
                    " choose another --out."
                ) from None
            raise InputError(
                f"The output folder {given} cannot be locked ({error.strerror or error}); choose an --out"
                " on a local disk."
            ) from None
        # the file may have been removed (and made anew) by the run that held it just before we locked
        try:
            current = os.stat(lock)
            opened = os.fstat(fd)
            same = (current.st_ino, current.st_dev) == (opened.st_ino, opened.st_dev)
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return fd
        os.close(fd)


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    except OSError:
        return ""
    return text if text.isdigit() else ""


def _release(out: Path, fd: int) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(_lock_path(out))  # while still locked: a waiting run then locks a file no one holds
    os.close(fd)


def _probe_lock(given: Path, out: Path) -> None:
    if out.parent.is_dir():
        _release(out, _acquire(given, out))


def remove_stale_temporaries(path: str | Path) -> list[Path]:
    """Remove the temporary folders that killed runs into ``path`` left beside it.

    Only folders named ``.<name>.*.tmp`` or ``.<name>.*.old`` that carry a marker naming ``<name>`` as
    their destination are removed: groupfx made those. Call it only while holding the folder's lock.

    Returns
    -------
    list of pathlib.Path
        The folders removed.
    """
    out = Path(path).resolve()
    prefix = f".{out.name}."
    removed = []
    if not out.parent.is_dir():
        return removed
    for entry in out.parent.iterdir():
        name = entry.name
        if not (name.startswith(prefix) and name.endswith((".tmp", ".old"))):
            continue
        if entry.is_symlink() or not entry.is_dir():
            continue
        record = read_marker(entry)
        if record is None or record.get("target") != out.name:
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
    return removed


def _make_parents(folder: Path) -> list[Path]:
    """Make ``folder`` and its missing parents; return those made, deepest first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    for item in reversed(missing):
        item.mkdir(exist_ok=True)
    return missing


@contextlib.contextmanager
def claim_output_folder(
    path: str | Path, kind: OutputKind, inputs: Iterable[str | Path | None] = ()
) -> Iterator[Path]:
    """Check the output folder, lock it for the block and clean up after killed runs.

    The checks of :func:`check_output_folder` run first and again once the lock is held. The lock is a
    file beside the folder (``.<name>.groupfx-lock``), locked with ``flock`` and removed on release; a
    killed run's lock is released by the operating system. Within one thread the claim is re-entrant, so
    a command may claim its folder early and the functions it calls claim it again.

    Parameters
    ----------
    path : str or pathlib.Path
        The output folder.
    kind : {"report", "study"}
        What will be written there.
    inputs : iterable of path, optional
        Files the run reads (see :func:`check_output_folder`).

    Yields
    ------
    pathlib.Path
        The folder's absolute path.

    Raises
    ------
    InputError
        If the folder may not be written, or another run holds it.
    """
    inputs = list(inputs)
    out = check_output_folder(path, kind, inputs)
    key = (out, threading.get_ident())
    with _held_guard:
        entry = _held.get(key)
        if entry is not None:
            entry[1] += 1
    if entry is not None:
        try:
            yield out
        finally:
            with _held_guard:
                entry[1] -= 1
        return
    made = _make_parents(out.parent)
    try:
        fd = _acquire(Path(path), out)
    except BaseException:
        _remove_empty(made)
        raise
    with _held_guard:
        _held[key] = [fd, 1]
    try:
        check_output_folder(path, kind, inputs)
        remove_stale_temporaries(out)
        yield out
    finally:
        with _held_guard:
            del _held[key]
        _release(out, fd)
        if not out.exists():
            _remove_empty(made)


def _remove_empty(folders: Iterable[Path]) -> None:
    for folder in folders:  # deepest first; a folder that is not empty stays
        with contextlib.suppress(OSError):
            folder.rmdir()


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        tmp_path.chmod(0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_directory(path: str | Path, kind: OutputKind | None = None) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; it replaces ``path`` only if the block succeeds.

    An existing ``path`` is kept untouched until the new folder is complete, then swapped out.

    Parameters
    ----------
    path : str or pathlib.Path
        The destination.
    kind : {"report", "study"}, optional
        Mark the folder as a groupfx output of this kind: the marker is written into the temporary folder
        before anything else (so a killed run's leftover is known by it), and an existing ``path`` is
        replaced only if it carries the same marker or is an empty folder. Without it, an existing folder
        is replaced whatever it holds (for folders inside a groupfx output, such as a study's figures).
    """
    path = Path(path).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        if kind is not None:
            write_marker(tmp, kind, target=path.name)
        yield tmp
        tmp.chmod(0o777 & ~_umask())
        if kind is not None:
            _swap_in(tmp, path, kind)
        elif path.exists():
            old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".old"))
            os.replace(path, old / path.name)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _swap_in(tmp: Path, path: Path, kind: OutputKind) -> None:
    """Move the complete folder ``tmp`` onto ``path``, replacing only a groupfx output of ``kind``."""
    if not (path.exists() or path.is_symlink()):
        os.rename(tmp, path)
        return
    if output_kind(path) == kind:
        old = path.parent / f".{path.name}.{secrets.token_hex(4)}.old"  # carries the old marker
        os.rename(path, old)
        os.rename(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
        return
    if _is_empty_folder(path):
        try:
            os.replace(tmp, path)  # the system refuses if a file appeared in it meanwhile
            return
        except OSError:
            pass
    raise InputError(
        f"The folder {path} is no longer empty or a groupfx {kind} folder, so it was left as it is;"
        " choose another --out."
    )
