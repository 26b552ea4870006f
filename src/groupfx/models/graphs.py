"""Model graphs: a PNG drawn with matplotlib (the same on every machine, no Graphviz needed) and, beside it,
the graph's Graphviz DOT source for anyone who wants to render or restyle it with ``dot``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import graphviz
import pymc as pm

from groupfx.models.graph_drawing import draw_model_graph
from groupfx.util.files import atomic_path

DPI = 100
"""Resolution of the graph PNGs (as the report's other figures)."""


@dataclass(frozen=True)
class GraphFile:
    """A model graph on disk.

    Attributes
    ----------
    name : str
        What the graph shows, e.g. ``"Mundlak"``.
    path : pathlib.Path
        The PNG file.
    dot_path : pathlib.Path
        The DOT source file beside it.
    source : str
        The DOT source.
    """

    name: str
    path: Path
    dot_path: Path
    source: str


def model_graph(model: pm.Model) -> graphviz.Digraph:
    """The PyMC model's graph as Graphviz objects (plates by dimension); only its source is used here."""
    return pm.model_to_graphviz(model)


def write_graph(model: pm.Model, stem: str | Path, name: str) -> GraphFile:
    """Write the model's graph as ``stem.png`` (drawn by :mod:`.graph_drawing`) and ``stem.dot``.

    Parameters
    ----------
    model : pymc.Model
        The model whose graph to write.
    stem : str or pathlib.Path
        Path of the two files without their suffix, e.g. ``figures/graph_mundlak``.
    name : str
        What the graph shows, for the report.

    Returns
    -------
    GraphFile
    """
    stem = Path(stem)
    png, dot = stem.with_suffix(".png"), stem.with_suffix(".dot")
    source = model_graph(model).source
    with atomic_path(dot) as tmp:
        tmp.write_text(source)
    figure = draw_model_graph(model, dpi=DPI)
    with atomic_path(png) as tmp:
        figure.savefig(tmp, format="png", dpi=DPI, facecolor="white")
    return GraphFile(name, png, dot, source)
