"""The machine a benchmark ran on, in one line for its table's header.

:func:`describe` names the CPU (model name from ``/proc/cpuinfo``, else :mod:`platform`), the vector
extensions it has among :data:`VECTOR_FLAGS`, the CPU and features LLVM (so numba) compiles for, the cores
and memory, the OS and Python. Nothing here imports numba; llvmlite is read only where it is installed, and
every part that cannot be read says so instead of failing.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Collection
from pathlib import Path

VECTOR_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512dq", "avx512bw", "avx512vl", "avx512_vnni")
"""The vector extensions named, in this order, where ``/proc/cpuinfo`` lists them."""

LLVM_FEATURES = {"avx512_vnni": "avx512vnni"}
"""Names LLVM spells differently from ``/proc/cpuinfo``."""


def _cpuinfo(path: Path) -> tuple[str | None, set[str]]:
    """The first model name and the flags of ``/proc/cpuinfo`` (None and no flags where it is absent)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return None, set()
    name, flags = None, set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and name is None:
            name = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = set(value.split())
    return name, flags


def cpu_name(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name, or what :mod:`platform` knows of it."""
    name, _ = _cpuinfo(cpuinfo)
    return name or platform.processor() or platform.machine() or "unknown CPU"


def vector_extensions(cpuinfo: Path = Path("/proc/cpuinfo")) -> list[str]:
    """The extensions of :data:`VECTOR_FLAGS` the CPU reports, in that order (empty where unknown)."""
    _, flags = _cpuinfo(cpuinfo)
    return [flag for flag in VECTOR_FLAGS if flag in flags]


def llvm_target() -> str:
    """LLVM's host CPU name and which of :data:`VECTOR_FLAGS` it enables: what numba's code is built for."""
    try:
        from llvmlite import binding
    except ImportError:
        return "LLVM: llvmlite not installed"
    try:
        name = binding.get_host_cpu_name()
        features = binding.get_host_cpu_features()  # a mapping of feature name to bool
        enabled = [flag for flag in VECTOR_FLAGS if features.get(LLVM_FEATURES.get(flag, flag), False)]
    except Exception as error:  # a broken or odd llvmlite must not stop a benchmark's header
        return f"LLVM: host CPU not readable ({type(error).__name__})"
    forced = os.environ.get("NUMBA_CPU_NAME")
    chosen = f", numba told NUMBA_CPU_NAME={forced}" if forced else ""
    return f"LLVM target {name} ({', '.join(enabled) or 'no AVX'}{chosen})"


def memory_gib() -> float | None:
    """The machine's physical memory in GiB (None where the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return None


def widest(extensions: Collection[str]) -> str:
    """The widest x86 vector extension among ``extensions``: ``AVX-512``, ``AVX2`` or ``no AVX2``."""
    return "AVX-512" if "avx512f" in extensions else "AVX2" if "avx2" in extensions else "no AVX2"


def short(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU and its widest vector extension, for a table row, e.g. ``AMD EPYC 7B13, AVX2``."""
    vectors = vector_extensions(cpuinfo)
    return f"{cpu_name(cpuinfo)}, {widest(vectors) if vectors else 'vector extensions unknown'}"


def describe() -> str:
    """The machine in one line, e.g. ``Intel Xeon ... (avx, avx2, fma, avx512f); LLVM target ...; 2 cores,
    24 GiB, Linux 6.1 x86_64, Python 3.12.1``."""
    vectors = vector_extensions()
    memory = memory_gib()
    parts = [
        f"{cpu_name()} ({', '.join(vectors) if vectors else 'vector extensions unknown'})",
        llvm_target(),
        f"{os.cpu_count() or '?'} cores, {f'{memory:.0f} GiB' if memory else 'memory unknown'},"
        f" {platform.system()} {platform.release()} {platform.machine()},"
        f" Python {platform.python_version()}",
    ]
    return "; ".join(parts)


if __name__ == "__main__":
    print(describe())
