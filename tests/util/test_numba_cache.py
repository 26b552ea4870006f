"""numba's caches of groupfx's kernels are removed when any module with cached code changes, and kept
otherwise: a cached caller holds its callees' compiled code, which numba does not check."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import groupfx
from groupfx.util import numba_cache
from groupfx.util.numba_cache import CACHED_MODULES, STAMP, refresh_stale_caches

PACKAGE = Path(groupfx.__file__).resolve().parent
MODULES = ("engines/callee.py", "engines/caller.py")


def package(tmp_path: Path) -> Path:
    """A package of two modules, each with numba cache files beside it."""
    for module in MODULES:
        source = tmp_path / module
        source.parent.mkdir(exist_ok=True)
        source.write_text(f"# {module}\n")
        cache = source.parent / "__pycache__"
        cache.mkdir(exist_ok=True)
        for name in (
            f"{source.stem}.f-3.py311.nbi",
            f"{source.stem}.f-3.py311.1.nbc",
            f"{source.stem}.cpython-311.pyc",
        ):
            (cache / name).write_bytes(b"compiled")
    return tmp_path


def cache_files(root: Path) -> set[str]:
    return {
        path.name for path in (root / "engines" / "__pycache__").iterdir() if path.suffix in (".nbi", ".nbc")
    }


def test_caches_go_when_one_module_changes_and_stay_otherwise(tmp_path, monkeypatch):
    root = package(tmp_path)
    monkeypatch.setattr(numba_cache, "_done", set())
    removed = refresh_stale_caches(root, MODULES)  # no stamp yet: compiled from sources nobody vouches for
    assert {path.name for path in removed} == {"callee.f-3.py311.nbi", "callee.f-3.py311.1.nbc",
                                               "caller.f-3.py311.nbi", "caller.f-3.py311.1.nbc"}  # fmt: skip
    assert (root / "engines" / "__pycache__" / "caller.cpython-311.pyc").exists()  # Python's own: kept
    stamp = root / "engines" / "__pycache__" / STAMP
    assert stamp.read_text().strip() == numba_cache.sources_digest(root, MODULES)
    # numba compiles again; the same sources next time: nothing removed
    package(root)
    (root / "engines" / "callee.py").write_text("# engines/callee.py\n")
    monkeypatch.setattr(numba_cache, "_done", set())
    assert refresh_stale_caches(root, MODULES) == [] and len(cache_files(root)) == 4
    # the callee alone changes: the caller's cache (holding the callee's old code) goes too
    (root / "engines" / "callee.py").write_text("# engines/callee.py, changed\n")
    monkeypatch.setattr(numba_cache, "_done", set())
    removed = refresh_stale_caches(root, MODULES)
    assert {path.name.split(".")[0] for path in removed} == {"callee", "caller"} and not cache_files(root)
    # once per process
    package(root)
    (root / "engines" / "callee.py").write_text("# something else\n")
    assert refresh_stale_caches(root, MODULES) == []


def test_a_fresh_install_stamps_the_folder_numba_will_write_to(tmp_path, monkeypatch):
    """No ``__pycache__`` yet: the stamp goes where numba will put the caches this process compiles, so
    the next process keeps them (before, it found them unstamped and removed them)."""
    for module in MODULES:
        (tmp_path / module).parent.mkdir(exist_ok=True)
        (tmp_path / module).write_text(f"# {module}\n")
    monkeypatch.setattr(numba_cache, "_done", set())
    assert refresh_stale_caches(tmp_path, MODULES) == []
    folder = numba_cache.numba_folder(tmp_path / MODULES[0])
    assert folder == tmp_path / "engines" / "__pycache__"  # a writable tree: numba's in-tree folder
    digest = numba_cache.sources_digest(tmp_path, MODULES)
    assert (folder / STAMP).read_text().strip() == digest
    # this process's numba writes its caches there; the next process keeps them
    package(tmp_path)
    (tmp_path / "engines" / "callee.py").write_text("# engines/callee.py\n")
    (tmp_path / "engines" / "caller.py").write_text("# engines/caller.py\n")
    monkeypatch.setattr(numba_cache, "_done", set())
    assert refresh_stale_caches(tmp_path, MODULES) == [] and len(cache_files(tmp_path)) == 4


def test_the_list_names_every_module_with_cached_numba_code():
    cached = set()
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.keyword)
                and node.arg == "cache"
                and getattr(node.value, "value", None) is True
            ):
                cached.add(path.relative_to(PACKAGE).as_posix())
    assert cached == set(CACHED_MODULES)


def test_importing_the_engines_stamps_the_real_caches(tmp_path):
    code = "import groupfx.engines.kernels, groupfx.loo.fused"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    digest = numba_cache.sources_digest(PACKAGE)
    for folder in ("engines", "loo"):
        stamp = PACKAGE / folder / "__pycache__" / STAMP
        if stamp.parent.is_dir() and any(stamp.parent.glob("*.nbi")):
            assert stamp.read_text().strip() == digest
