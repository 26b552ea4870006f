"""A scan of source code for names used where a trait or an object should be asked instead."""

from __future__ import annotations

import ast
from collections.abc import Collection, Iterator
from pathlib import Path

import groupfx

SRC = Path(groupfx.__file__).resolve().parent
"""The package under test."""


def name_uses(tree: ast.AST, names: Collection[str], *, literal_lists: bool = False) -> list[tuple[int, str]]:
    """``(line, name)``, sorted, of each of ``names`` used as a string in a comparison, a match case or a dict
    key, and with ``literal_lists`` also in a tuple, list or set literal holding two or more of them."""
    found = []

    def strings(node):
        return [n for n in ast.walk(node) if isinstance(n, ast.Constant) and n.value in names]

    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            found += strings(node)
        elif isinstance(node, ast.match_case):
            found += strings(node.pattern)
        elif isinstance(node, ast.Dict):
            found += [c for key in node.keys if key is not None for c in strings(key)]
        elif literal_lists and isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            listed = [e for e in node.elts if isinstance(e, ast.Constant) and e.value in names]
            found += listed if len(listed) >= 2 else []
    return sorted({(c.lineno, c.value) for c in found})


def offenders(names: Collection[str], allowed, *, literal_lists: bool = False) -> Iterator[str]:
    """``path:line 'name'`` of each use in a module of the package for which ``allowed(path)`` is false."""
    for path in sorted(SRC.rglob("*.py")):
        if not allowed(path):
            for line, name in name_uses(ast.parse(path.read_text()), names, literal_lists=literal_lists):
                yield f"{path.relative_to(SRC)}:{line} {name!r}"
