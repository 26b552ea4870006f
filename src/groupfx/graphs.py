"""Model graphs: rendered with Graphviz's ``dot`` where it is installed, else written as DOT source."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import graphviz
import pymc as pm

from groupfx.files import atomic_path


@dataclass(frozen=True)
class GraphFile:
    """A model graph on disk.

    Attributes
    ----------
    name : str
        What the graph shows, e.g. ``"Mundlak"``.
    path : pathlib.Path
        The PNG file, or the ``.dot`` file where ``dot`` is missing.
    rendered : bool
        Whether ``path`` is a PNG.
    source : str
        The DOT source.
    """

    name: str
    path: Path
    rendered: bool
    source: str


RENDER_HINT = "Install Graphviz (Debian: apt-get install graphviz) and run: dot -Tpng FILE.dot -o FILE.png"


def dot_available() -> bool:
    """Whether Graphviz's ``dot`` program is on the PATH."""
    return shutil.which("dot") is not None


def model_graph(model: pm.Model) -> graphviz.Digraph:
    """The PyMC model's graph (plates by dimension)."""
    return pm.model_to_graphviz(model)


def write_graph(graph: graphviz.Digraph, stem: str | Path, name: str) -> GraphFile:
    """Write ``graph`` as ``stem.png`` where ``dot`` exists, else as ``stem.dot``."""
    stem = Path(stem)
    source = graph.source
    if dot_available():
        path = stem.with_suffix(".png")
        with atomic_path(path) as tmp:
            tmp.write_bytes(graph.pipe(format="png"))
        return GraphFile(name, path, True, source)
    path = stem.with_suffix(".dot")
    with atomic_path(path) as tmp:
        tmp.write_text(source)
    return GraphFile(name, path, False, source)
