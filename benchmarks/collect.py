"""``make bench`` (last step): gather every part's table into ``benchmarks/results.md``.

Each part writes its own file as it finishes (``seed_results.md``, ``kernel_results.md``,
``scale_results.md``, ``study_results.md``), so a part can be rerun alone; this step puts them in one
page, in the issue's order, with the machine they ran on. A part that has not run yet is named, not
invented.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

from groupfx.util.files import atomic_path

HERE = Path(__file__).resolve().parent
PARTS = (
    "seed_results.md",
    "kernel_results.md",
    "scale_results.md",
    "study_results.md",
    "levers_results.md",
    "peers_results.md",
    "design_results.md",
    "target_accept_results.md",
    "loo_results.md",
)


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> int:
    lines = [
        "# Benchmarks",
        "",
        f"Gathered on {_cpu()}, {os.cpu_count()} cores, {platform.system()} {platform.machine()}, Python"
        f" {platform.python_version()}. Reproduce with `make bench`; each part below was measured side by"
        " side in one run of its script, and says when and on which machine (a part whose header names"
        " only the architecture predates the machine line: its CPU was not recorded).",
    ]
    for number, name in enumerate(PARTS, start=1):
        path = HERE / name
        if not path.exists():
            lines += ["", f"## {number}. Not run yet (`{name}` is missing)."]
            continue
        title, *body = path.read_text(encoding="utf-8").splitlines()
        lines += ["", f"## {number}. {title.lstrip('# ')}"]
        lines += ["#" + line if line.startswith("#") else line for line in body]
    out = HERE / "results.md"
    with atomic_path(out) as tmp:
        tmp.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
