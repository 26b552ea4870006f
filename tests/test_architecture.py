"""The layers of ARCHITECTURE.md hold in the code: every import runs down, none closes a circle, the public
API is the documented list, and ARCHITECTURE.md names every module.

Imports are read with ``ast`` from every module, at the top and inside functions alike, so a circle cannot
hide behind an import made late.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import groupfx

SRC = Path(groupfx.__file__).resolve().parent
ROOT = SRC.parents[1]
LAYERS = (
    "errors",
    "util",
    "data",
    "models",
    "engines",
    "loo",
    "inference",
    "results",
    "report",
    "study",
    "api",
)
"""From the bottom up: a module may import its own layer and the layers below it, never one above."""
SUBPACKAGES = ("util", "data", "models", "engines", "loo", "inference", "results", "report", "study")


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in sorted(SRC.rglob("*.py"))}


def layer_of(module: str) -> str:
    """``groupfx.engines.kernels`` -> ``engines``; the package's own modules (cli, demo, fitting and the
    package itself) are the top, ``api``; ``groupfx.errors`` is the bottom."""
    parts = module.split(".")
    if len(parts) == 1:
        return "api"
    if parts[1] == "errors":
        return "errors"
    return parts[1] if parts[1] in SUBPACKAGES else "api"


def imports_of(module: str) -> set[str]:
    """The groupfx modules ``module`` imports, anywhere in its body."""
    tree = ast.parse(MODULES[module].read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "groupfx"}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{module}: relative import; write groupfx.<subpackage>.<module>"
            base = node.module or ""
            if base.split(".")[0] != "groupfx":
                continue
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.add(submodule if submodule in MODULES else base)
    found.discard(module)
    unknown = found - set(MODULES)
    assert not unknown, f"{module} imports modules that do not exist: {sorted(unknown)}"
    return found


GRAPH = {module: imports_of(module) for module in MODULES}


def test_every_import_runs_down_the_layers():
    upward = [
        f"{module} ({layer_of(module)}) imports {target} ({layer_of(target)})"
        for module, targets in GRAPH.items()
        for target in sorted(targets)
        if LAYERS.index(layer_of(target)) > LAYERS.index(layer_of(module))
    ]
    assert not upward, "imports that run up the layers:\n" + "\n".join(upward)


def test_no_circles_of_imports():
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(GRAPH[module]):
            if state.get(target) == "open":
                cycle = [*path[path.index(target) :], target] if target in path else [module, target]
                pytest.fail("import circle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, [*path, target])
        state[module] = "done"

    for module in MODULES:
        if module not in state:
            visit(module, [module])


def test_the_layer_test_sees_the_modules_and_the_imports():
    # the check above cannot pass vacuously: it reads every layer and a known import of each kind
    assert {layer_of(m) for m in MODULES} == set(LAYERS)
    assert "groupfx.inference.engine" in GRAPH["groupfx.results.fits"]
    assert "groupfx.fitting" in GRAPH["groupfx.cli"]  # made inside a function
    assert layer_of("groupfx.report.html") == "report" and layer_of("groupfx") == "api"


def test_every_subpackage_is_a_package():
    for name in SUBPACKAGES:
        assert (SRC / name / "__init__.py").is_file(), name
        assert ast.get_docstring(ast.parse((SRC / name / "__init__.py").read_text())), name


def documented_api() -> list[str]:
    """The names, in backticks, of the list in ARCHITECTURE.md's "Public API" section."""
    text = (ROOT / "ARCHITECTURE.md").read_text()
    section = text.split("## Public API", 1)[1].split("\n## ", 1)[0]
    paragraphs = [paragraph for paragraph in section.split("\n\n") if paragraph.strip()]
    return re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", paragraphs[1])  # the first says where the rest are


def test_the_public_api_is_the_documented_list():
    names = documented_api()
    assert sorted(groupfx.__all__) == sorted(names)
    assert len(set(names)) == len(names)
    for name in groupfx.__all__:
        assert hasattr(groupfx, name), name


def test_architecture_names_every_module():
    text = (ROOT / "ARCHITECTURE.md").read_text()
    missing = [
        str(path.relative_to(SRC))
        for path in MODULES.values()
        if path.name != "__init__.py" and f"`{path.relative_to(SRC).as_posix()}`" not in text
    ]
    assert not missing, f"ARCHITECTURE.md does not name: {missing}"
