"""Keeps numba's on-disk caches of groupfx's kernels true to their sources.

numba caches a compiled function under its own module and checks only that module's file when it loads it.
A cached function that calls a function of another module (the C callbacks call the kernels, the kernels
the unit pass, the unit pass the vector math) holds the callee's compiled code too, and keeps it after the
callee's module alone changes: after an upgrade that changed ``kernels.py`` but not ``native.py``, the C
callbacks would run the old kernel. So before the first module with cached numba code is imported,
:func:`refresh_stale_caches` compares one digest of all of them (and numba's version) with the digest
stamped beside their caches, and removes those caches where it differs; numba then compiles afresh once.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

CACHED_MODULES = (
    "engines/vector_math.py",
    "engines/unit_pass.py",
    "engines/kernels.py",
    "engines/native.py",
    "engines/expected.py",
    "loo/psis.py",
    "loo/fused.py",
)
"""groupfx's modules with ``cache=True`` numba functions, relative to the package (a test keeps it whole)."""
STAMP = "groupfx-numba-sources.sha256"
"""The file beside the caches that holds the digest of the sources they were compiled from."""

_done: set[Path] = set()


def sources_digest(root: Path, modules: Sequence[str] = CACHED_MODULES) -> str:
    """One SHA-256 of every module's bytes (with its name) and numba's version."""
    import numba

    digest = hashlib.sha256(numba.__version__.encode())
    for module in modules:
        digest.update(module.encode() + b"\0" + (root / module).read_bytes() + b"\0")
    return digest.hexdigest()


def cache_folders(source: Path) -> list[Path]:
    """Where numba may keep the caches of ``source``: ``__pycache__`` beside it, and the folders of numba's
    other cache locators (``NUMBA_CACHE_DIR``, the user-wide cache) that exist."""
    folders = [source.parent / "__pycache__"]
    try:  # numba's own locators, so the folders are the ones numba uses
        from numba import config
        from numba.core.caching import InTreeCacheLocator, UserProvidedCacheLocator, UserWideCacheLocator
    except ImportError:  # a numba without these internals: the in-tree folder is still handled
        return folders
    classes = [InTreeCacheLocator, UserWideCacheLocator] + (
        [UserProvidedCacheLocator] if config.CACHE_DIR else []
    )
    for locator_class in classes:
        try:  # the constructor only computes the folder (from_function would create it)
            folder = Path(locator_class(_probe, str(source)).get_cache_path())
        except Exception:
            continue
        if folder.is_dir():
            folders.append(folder)
    return list(dict.fromkeys(folders))


def numba_folder(source: Path) -> Path | None:
    """The folder numba will write the caches of ``source`` to, made now as numba would make it.

    numba takes the first of its cache locators that can make its folder and write there (the in-tree
    ``__pycache__``, else the user-wide cache); stamping that folder before numba first writes to it keeps
    the next process from taking the caches this one compiles for stale ones. ``None`` without numba's
    internals or a folder it can use.
    """
    try:
        from numba.core.caching import CacheImpl
    except ImportError:
        return None
    for locator_class in CacheImpl._locator_classes:
        try:
            locator = locator_class.from_function(_probe, str(source))
        except Exception:
            continue
        if locator is not None:
            return Path(locator.get_cache_path())
    return None


def _probe() -> None:
    """A function for numba's locators, which read a line number from it (not used for the folder)."""


def refresh_stale_caches(root: Path | None = None, modules: Sequence[str] = CACHED_MODULES) -> list[Path]:
    """Remove the numba caches of ``modules`` unless they were compiled from these very sources.

    Parameters
    ----------
    root : pathlib.Path, optional
        The package folder (default: groupfx's).
    modules : sequence of str
        The modules with cached numba functions, relative to ``root``.

    Returns
    -------
    list of pathlib.Path
        The cache files removed (none when the stamp matches, or when this ran already in this process).
    """
    root = Path(root) if root is not None else Path(__file__).resolve().parents[1]
    if root in _done:
        return []
    _done.add(root)
    digest = sources_digest(root, modules)
    removed: list[Path] = []
    for module in modules:
        source = root / module
        for folder in cache_folders(source):
            stamp = folder / STAMP
            try:
                if stamp.read_text().strip() == digest:
                    continue
            except OSError:
                pass
            for path in folder.glob(f"{source.stem}.*"):
                if path.suffix in (".nbi", ".nbc"):
                    try:
                        path.unlink()
                        removed.append(path)
                    except OSError:
                        pass
    stamped = {folder for module in modules for folder in cache_folders(root / module)}
    stamped |= {folder for module in modules if (folder := numba_folder(root / module)) is not None}
    for folder in stamped:  # numba's own folder too, before it first writes there (a fresh install)
        if folder.is_dir():
            _write_stamp(folder / STAMP, digest)
    return removed


def _write_stamp(path: Path, digest: str) -> None:
    """Write the digest through a temporary file and a rename (a read-only folder is left alone)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(digest + "\n")
        temporary.replace(path)
    except OSError:
        temporary.unlink(missing_ok=True)
