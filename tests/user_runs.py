"""What the black-box tests share: groupfx run as a user runs it, a folder's contents, a refusal's shape."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import groupfx

SRC = Path(groupfx.__file__).resolve().parents[1]
"""The source tree under test: put first on the subprocess's path, whatever its working folder."""


def user_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment with :data:`SRC` first on ``PYTHONPATH`` (and ``extra`` on top)."""
    env = dict(os.environ) | (extra or {})
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), *filter(None, [os.environ.get("PYTHONPATH")])])
    return env


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every entry under ``folder`` (hidden ones too): file bytes, or None for a folder."""
    return {
        str(path.relative_to(folder)): None if path.is_dir() else path.read_bytes()
        for path in sorted(folder.rglob("*"))
    }


def assert_refused(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """Exit 2, one line on stderr starting ``groupfx: error:`` and holding every fragment, no traceback,
    nothing on stdout (so no progress display was started and nothing was fitted); returns the line."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr[-3000:]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("groupfx: error: ") and "Traceback" not in result.stderr
    assert result.stdout == ""
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]
