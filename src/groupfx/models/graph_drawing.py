"""Draw a laid-out model graph with matplotlib, as PyMC's Graphviz output looks; no system program needed.

Nodes are drawn as PyMC's Graphviz output draws them: an ellipse for a random variable (grey for an
observed one), a box for a deterministic, a rounded grey box for data, an octagon for a potential, each
with its name, ``~`` and its distribution; plates as rounded rectangles labelled in their lower right
corner with their dimensions and sizes. The positions come from :mod:`groupfx.models.graph_layout`.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import pymc as pm
from matplotlib.figure import Figure
from matplotlib.patches import Ellipse, FancyArrowPatch, FancyBboxPatch, Polygon, Rectangle
from matplotlib.path import Path as DrawPath
from pymc.model_graph import NodeType

from groupfx.models.graph_layout import (
    DATA_ROUNDING,
    FONT_FAMILY,
    GREY,
    NODE_FONT_SIZE,
    PLATE_FONT_SIZE,
    PLATE_STYLE,
    RANDOM,
    Box,
    GraphLayout,
    layout_graph,
    model_structure,
)


def _edge_path(points: Sequence[tuple[float, float]]) -> DrawPath:
    """The edge through ``points``, vertical at each of them: cubic Beziers between ranks, straight
    through the gaps of skipped ranks."""
    vertices = [points[0]]
    codes = [DrawPath.MOVETO]
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        bend = (y0 - y1) / 2
        vertices += [(x0, y0 - bend), (x1, y1 + bend), (x1, y1)]
        codes += [DrawPath.CURVE4] * 3
    return DrawPath(vertices, codes)


def _node_patch(box: Box, kind: NodeType):
    filled = kind in (NodeType.OBSERVED_RV, NodeType.DATA, NodeType.POTENTIAL)
    style = {"facecolor": GREY if filled else "white", "edgecolor": "black", "linewidth": 1.0, "zorder": 3}
    if kind in RANDOM:
        return Ellipse((box.x, box.y), box.width, box.height, **style)
    if kind == NodeType.DATA:
        r = DATA_ROUNDING
        return FancyBboxPatch((box.left + r, box.bottom + r), box.width - 2 * r, box.height - 2 * r,
                              boxstyle=f"round,pad={r},rounding_size={r}", **style)  # fmt: skip
    if kind == NodeType.POTENTIAL:
        c = min(box.width, box.height) * 0.29
        x0, x1, y0, y1 = box.left, box.right, box.bottom, box.top
        corners = [(x0 + c, y1), (x1 - c, y1), (x1, y1 - c), (x1, y0 + c), (x1 - c, y0), (x0 + c, y0),
                   (x0, y0 + c), (x0, y1 - c)]  # fmt: skip
        return Polygon(corners, closed=True, **style)
    return Rectangle((box.left, box.bottom), box.width, box.height, **style)


def draw_layout(layout: GraphLayout, dpi: float = 100) -> Figure:
    """Draw a laid-out graph: one point of the layout is one point of the figure.

    Parameters
    ----------
    layout : GraphLayout
        From :func:`layout_graph`.
    dpi : float
        Figure resolution.

    Returns
    -------
    matplotlib.figure.Figure
        Not registered with pyplot (nothing to close).
    """
    fig = Figure(figsize=(layout.width / 72, layout.height / 72), dpi=dpi, facecolor="white")
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, layout.width)
    ax.set_ylim(0, layout.height)
    ax.axis("off")
    for label, box in layout.plates.items():
        rounded = FancyBboxPatch((box.left, box.bottom), box.width, box.height, facecolor="none",
                                 boxstyle=PLATE_STYLE, edgecolor="black", zorder=1)  # fmt: skip
        ax.add_patch(rounded)
        text = layout.labels[label]
        ax.text(text.right, text.bottom, layout.plate_text[label], ha="right", va="bottom",
                fontsize=PLATE_FONT_SIZE, family=FONT_FAMILY, linespacing=1.0, zorder=2.5)  # fmt: skip
    for node in layout.structure.nodes:
        box = layout.nodes[node.name]
        ax.add_patch(_node_patch(box, node.kind))
        ax.text(box.x, box.y, "\n".join(node.label), ha="center", va="center", fontsize=NODE_FONT_SIZE,
                family=FONT_FAMILY, linespacing=1.05, zorder=4)  # fmt: skip
    for points in layout.routes.values():
        ax.add_patch(FancyArrowPatch(path=_edge_path(points), arrowstyle="-|>", mutation_scale=11,
                                     linewidth=0.9, color="black", zorder=2))  # fmt: skip
    return fig


def draw_model_graph(model: pm.Model, dpi: float = 100) -> Figure:
    """The PyMC model's graph as a matplotlib figure (no Graphviz needed).

    Parameters
    ----------
    model : pymc.Model
    dpi : float
        Figure resolution.

    Returns
    -------
    matplotlib.figure.Figure
    """
    return draw_layout(layout_graph(model_structure(model)), dpi)
