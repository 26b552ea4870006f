"""Lay out a PyMC model's graph as Graphviz's ``dot`` lays out ``pm.model_to_graphviz``: boxes, plates, edges.

No system program is needed, so the picture is the same on every machine. The structure is PyMC's own
(:class:`pymc.model_graph.ModelGraph`: nodes with their kind, edges, plates by dimension); the layout is
a small layered one:

1. **Ranks.** Every node sits at least one rank below each of its parents; nodes then move between their
   parents and children to shorten the edges (a node without parents sits just above its highest child).
2. **Blocks.** Each plate is a block spanning the ranks of its nodes, so its rectangle holds exactly its
   nodes; a node outside every plate is a block of one. Blocks are packed left to right rank by rank.
3. **Order.** Blocks, and the nodes in each rank of a block, are ordered by barycentre passes, then by
   moves and swaps while fewer edges cross (or pass through a node); blocks then slide towards the nodes
   they are joined to.
4. **Edges** leave a node's bottom and enter the next one's top; an edge that skips ranks passes each
   skipped rank through a gap between its nodes.

The layout is plain geometry (points); :mod:`groupfx.models.graph_drawing` draws it.
"""

from __future__ import annotations

import graphlib
import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pymc as pm
from matplotlib.font_manager import FontProperties
from matplotlib.textpath import TextPath
from pymc.model_graph import (
    DEFAULT_NODE_FORMATTERS,
    ModelGraph,
    NodeType,
    create_plate_label_with_dim_length,
)

FONT_FAMILY = "DejaVu Sans"
"""Shipped with matplotlib: the same text, so the same layout, on every machine."""
FONT = FontProperties(family=FONT_FAMILY)
NODE_FONT_SIZE = 11.0
PLATE_FONT_SIZE = 10.0
LINE_HEIGHT = 1.25 * NODE_FONT_SIZE
PLATE_LINE_HEIGHT = 1.2 * PLATE_FONT_SIZE
NODE_GAP = 12.0
"""Points between two nodes side by side in one block."""
BLOCK_GAP = 16.0
"""Points between two blocks (plates, or nodes outside plates) in one rank."""
PLATE_PAD = 8.0
"""Points between a plate's rectangle and its nodes."""
EDGE_ROOM = 34.0
"""Points of a rank gap left free of plates' borders, for the edges."""
MARGIN = 6.0
GREY = "#d3d3d3"
"""Graphviz's fill for ``style=filled``."""
ROUNDS = 6
"""Barycentre passes."""
TARGET_WIDTH = 760.0
"""Points: a rank wider than this (about the width of the report's page) is split over two ranks where it
has nodes without parents to move up."""
RANDOM = (NodeType.FREE_RV, NodeType.OBSERVED_RV)
DATA_ROUNDING = 7.0
PLATE_STYLE = "round,pad=0,rounding_size=8"


@dataclass(frozen=True)
class GraphNode:
    """A variable of the model as its graph shows it.

    Attributes
    ----------
    name : str
        The variable's name.
    kind : pymc.model_graph.NodeType
        Free or observed random variable, deterministic, data or potential.
    label : tuple of str
        The lines drawn in the node, as PyMC labels it: name, ``~``, distribution.
    plate : str or None
        The label of the plate holding it (e.g. ``"group (6)"``), None for a scalar.
    """

    name: str
    kind: NodeType
    label: tuple[str, ...]
    plate: str | None


@dataclass(frozen=True)
class ModelStructure:
    """What a model graph shows: nodes in the model's order, edges and plates.

    Attributes
    ----------
    nodes : tuple of GraphNode
    edges : tuple of (str, str)
        ``(parent, child)`` pairs.
    plates : dict of str to tuple of str
        Plate label to the names of the nodes in it.
    """

    nodes: tuple[GraphNode, ...]
    edges: tuple[tuple[str, str], ...]
    plates: dict[str, tuple[str, ...]]

    def parents(self, name: str) -> list[str]:
        """The parents of ``name``."""
        return [parent for parent, child in self.edges if child == name]

    def children(self, name: str) -> list[str]:
        """The children of ``name``."""
        return [child for parent, child in self.edges if parent == name]


def model_structure(model: pm.Model) -> ModelStructure:
    """Read a PyMC model's graph: its nodes (with kind and label), edges and plates.

    Parameters
    ----------
    model : pymc.Model

    Returns
    -------
    ModelStructure
        Nodes, edges and plates in the order the model defines its variables, so that the drawing does
        not depend on the order of Python's sets.
    """
    graph = ModelGraph(model)
    order = {name: i for i, name in enumerate(model.named_vars)}
    nodes = []
    plates: dict[str, tuple[str, ...]] = {}
    for plate in graph.get_plates():
        label = create_plate_label_with_dim_length(plate.dim_info) if plate.dim_info else None
        members = sorted(plate.variables, key=lambda info: order[info.var.name])
        if label is not None:
            plates[label] = tuple(info.var.name for info in members)
        for info in members:
            text = DEFAULT_NODE_FORMATTERS[info.node_type](info.var)["label"]
            nodes.append(GraphNode(info.var.name, info.node_type, tuple(text.split("\n")), label))
    nodes.sort(key=lambda node: order[node.name])
    pairs = {(parent, child) for child, parent in graph.edges()}
    edges = sorted(pairs, key=lambda edge: (order[edge[0]], order[edge[1]]))
    plates = dict(sorted(plates.items(), key=lambda item: order[item[1][0]]))
    return ModelStructure(tuple(nodes), tuple(edges), plates)


@dataclass(frozen=True)
class Box:
    """An axis-aligned rectangle by its centre and size, in points (y up).

    Attributes
    ----------
    x, y : float
        Centre.
    width, height : float
    """

    x: float
    y: float
    width: float
    height: float

    @property
    def left(self) -> float:
        return self.x - self.width / 2

    @property
    def right(self) -> float:
        return self.x + self.width / 2

    @property
    def bottom(self) -> float:
        return self.y - self.height / 2

    @property
    def top(self) -> float:
        return self.y + self.height / 2

    def overlaps(self, other: Box) -> bool:
        """Whether the two rectangles share any area."""
        return (
            self.left < other.right
            and other.left < self.right
            and self.bottom < other.top
            and other.bottom < self.top
        )

    def contains(self, other: Box) -> bool:
        """Whether ``other`` lies wholly inside this rectangle."""
        return (
            self.left <= other.left
            and other.right <= self.right
            and self.bottom <= other.bottom
            and other.top <= self.top
        )


@dataclass(frozen=True)
class GraphLayout:
    """Where everything of a model graph goes, in points (y up, origin at the lower left).

    Attributes
    ----------
    structure : ModelStructure
    ranks : dict of str to int
        Node to its rank, 0 at the top.
    nodes : dict of str to Box
        Node to the rectangle its shape fills.
    plates : dict of str to Box
        Plate label to its rectangle.
    plate_text : dict of str to str
        Plate label to the text in its lower right corner (one dimension a line).
    labels : dict of str to Box
        Plate label to the rectangle of that text, beside the nodes of the plate's last rank.
    routes : dict of (str, str) to tuple of (float, float)
        Edge ``(parent, child)`` to the points it passes: leaving the parent's bottom, then the top and the
        bottom of the gap it takes through each rank it skips, entering the child's top.
    width, height : float
        The drawing's size.
    """

    structure: ModelStructure
    ranks: dict[str, int]
    nodes: dict[str, Box]
    plates: dict[str, Box]
    plate_text: dict[str, str]
    labels: dict[str, Box]
    routes: dict[tuple[str, str], tuple[tuple[float, float], ...]]
    width: float
    height: float


@lru_cache(maxsize=1024)
def text_width(text: str, size: float) -> float:
    """Width in points of ``text`` in the drawing's font at ``size`` points."""
    if not text.strip():
        return 0.0
    return float(TextPath((0, 0), text, size=size, prop=FONT).get_extents().width)


def node_size(node: GraphNode) -> tuple[float, float]:
    """Width and height in points of the node's shape around its label."""
    text_w = max(text_width(line, NODE_FONT_SIZE) for line in node.label)
    text_h = LINE_HEIGHT * len(node.label)
    if node.kind in RANDOM:  # an ellipse through the corners of the text's rectangle, a little flattened
        return math.sqrt(2) * text_w + 8, 1.3 * text_h
    if node.kind == NodeType.POTENTIAL:
        return text_w + 28, text_h + 14
    return text_w + 16, text_h + 8


def plate_label_lines(label: str) -> list[str]:
    """A plate's label with one dimension a line (``group (6) x`` over ``x_var (2)``), to keep it narrow."""
    parts = label.split(" x ")
    return [f"{part} x" for part in parts[:-1]] + parts[-1:]


def assign_ranks(structure: ModelStructure) -> dict[str, int]:
    """Rank of every node: strictly below each of its parents, with short edges.

    A node starts at its longest path from a node without parents; then, over a few sweeps from the
    bottom, each node moves within the ranks its parents and children leave free towards the side with
    more edges (so a node without parents sits just above its highest child).
    """
    names = [node.name for node in structure.nodes]
    parents = {name: structure.parents(name) for name in names}
    children = {name: structure.children(name) for name in names}
    ranks: dict[str, int] = {}
    for name in graphlib.TopologicalSorter(parents).static_order():
        ranks[name] = 1 + max((ranks[p] for p in parents[name]), default=-1)
    for _ in range(4):
        for name in sorted(names, key=lambda n: -ranks[n]):
            if not children[name]:
                continue
            if len(children[name]) > len(parents[name]):
                ranks[name] = min(ranks[c] for c in children[name]) - 1
            elif len(children[name]) < len(parents[name]):
                ranks[name] = 1 + max((ranks[p] for p in parents[name]), default=-1)
    top = min(ranks.values(), default=0)
    return {name: rank - top for name, rank in ranks.items()}


@dataclass
class _Order:
    """The left-to-right order of blocks, and of the nodes in each rank of each block."""

    blocks: list[str]
    rows: dict[str, dict[int, list[str]]]

    def copy(self) -> _Order:
        rows = {block: {rank: list(names) for rank, names in r.items()} for block, r in self.rows.items()}
        return _Order(list(self.blocks), rows)


class _Layouter:
    """Places one structure's nodes for an order of its blocks, and searches for a good order."""

    def __init__(self, structure: ModelStructure) -> None:
        self.structure = structure
        self.ranks = assign_ranks(structure)
        self.sizes = {node.name: node_size(node) for node in structure.nodes}
        self.node_height = max((h for _, h in self.sizes.values()), default=0.0)
        self.block_of = {node.name: node.plate or f"node:{node.name}" for node in structure.nodes}
        self.order = self._first_order()
        self.plate_labels = {label: plate_label_lines(label) for label in structure.plates}
        self.label_width = {
            label: max(text_width(line, PLATE_FONT_SIZE) for line in lines) + 4
            for label, lines in self.plate_labels.items()
        }
        self._measure()
        if self._stagger():
            self.order = self._first_order()
            self._measure()
        self.rank_gap = 2 * PLATE_PAD + EDGE_ROOM
        self.in_rank: dict[int, list[str]] = {}
        for name, rank in self.ranks.items():
            self.in_rank.setdefault(rank, []).append(name)
        self.neighbours = {
            node.name: structure.parents(node.name) + structure.children(node.name)
            for node in structure.nodes
        }

    def _measure(self) -> None:
        """Each block's ranks and width, and the room each of its rows may use.

        A plate's label sits beside the nodes of its last rank, in the lower right corner, so that no edge
        leaving those nodes crosses it.
        """
        self.span = {block: (min(rows), max(rows)) for block, rows in self.order.rows.items()}
        self.block_width: dict[str, float] = {}
        self.room: dict[tuple[str, int], tuple[float, float]] = {}  # (block, rank): from its left edge
        for block, rows in self.order.rows.items():
            last = self.span[block][1]
            label = self.label_width.get(block, 0.0)
            beside = self._row_width(rows[last]) + (NODE_GAP + label if label else 0.0)
            inner = max([beside] + [self._row_width(names) for rank, names in rows.items() if rank != last])
            pad = PLATE_PAD if label else 0.0
            self.block_width[block] = inner + 2 * pad
            for rank in rows:
                used = inner - (NODE_GAP + label if label and rank == last else 0.0)
                self.room[(block, rank)] = (pad, pad + used)

    def _stagger(self) -> bool:
        """Move blocks of nodes without parents one rank up while their rank is wider than
        :data:`TARGET_WIDTH` and the rank above stays narrower; whether any moved."""
        members: dict[str, list[str]] = {}
        for node in self.structure.nodes:
            members.setdefault(self.block_of[node.name], []).append(node.name)
        moved = False
        for _ in range(len(members)):
            spans = {b: {self.ranks[n] for n in names} for b, names in members.items()}
            widths: dict[int, float] = {}
            for block, ranks in spans.items():
                for rank in range(min(ranks), max(ranks) + 1):
                    widths[rank] = widths.get(rank, -BLOCK_GAP) + self.block_width[block] + BLOCK_GAP
            rank = max(widths, key=lambda r: (widths[r], -r))
            if widths[rank] <= TARGET_WIDTH:
                break
            above = widths.get(rank - 1, -BLOCK_GAP)
            movable = [
                b for b, ranks in spans.items()
                if ranks == {rank} and not any(self.structure.parents(n) for n in members[b])
                and above + 2 * (self.block_width[b] + BLOCK_GAP) <= widths[rank]
            ]  # fmt: skip
            if not movable:
                break
            block = max(movable, key=lambda b: self.block_width[b])
            for name in members[block]:
                self.ranks[name] -= 1
            moved = True
        if moved:
            top = min(self.ranks.values())
            self.ranks = {name: rank - top for name, rank in self.ranks.items()}
        return moved

    def _first_order(self) -> _Order:
        blocks: list[str] = []
        rows: dict[str, dict[int, list[str]]] = {}
        for node in self.structure.nodes:
            block = self.block_of[node.name]
            if block not in rows:
                blocks.append(block)
                rows[block] = {}
            rows[block].setdefault(self.ranks[node.name], []).append(node.name)
        return _Order(blocks, rows)

    def rank_y(self, rank: int) -> float:
        """Centre height of a rank (before the drawing is moved into positive coordinates)."""
        return -rank * (self.node_height + self.rank_gap)

    def _row_width(self, names: Sequence[str]) -> float:
        return sum(self.sizes[n][0] for n in names) + NODE_GAP * (len(names) - 1)

    def _put_row(self, xs: dict[str, float], names: Sequence[str], centre: float) -> None:
        x = centre - self._row_width(names) / 2
        for name in names:
            width = self.sizes[name][0]
            xs[name] = x + width / 2
            x += width + NODE_GAP

    def _ranks_of(self, block: str) -> range:
        first, last = self.span[block]
        return range(first, last + 1)

    def place(self, order: _Order, slide: bool = False) -> tuple[dict[str, float], dict[str, float]]:
        """The x centre of every node and the left edge of every block for ``order``.

        Blocks are packed from the left, each as far left as the blocks before it in its ranks allow, and
        each row is centred in its block; with ``slide``, blocks and then rows move, within the room
        their neighbours leave, towards the nodes they are joined to.
        """
        cursor: dict[int, float] = {}
        lefts: dict[str, float] = {}
        for block in order.blocks:
            left = max(cursor.get(rank, 0.0) for rank in self._ranks_of(block))
            lefts[block] = left
            for rank in self._ranks_of(block):
                cursor[rank] = left + self.block_width[block] + BLOCK_GAP
        xs: dict[str, float] = {}
        for block in order.blocks:
            for rank, names in order.rows[block].items():
                low, high = self.room[(block, rank)]
                self._put_row(xs, names, lefts[block] + (low + high) / 2)
        if slide:
            self._slide_blocks(order, lefts, xs, max(cursor.values()) - BLOCK_GAP)
            self._slide_rows(order, lefts, xs)
        return xs, lefts

    def _slide_blocks(
        self, order: _Order, lefts: dict[str, float], xs: dict[str, float], total: float
    ) -> None:
        in_rank: dict[int, list[str]] = {}
        for block in order.blocks:
            for rank in self._ranks_of(block):
                in_rank.setdefault(rank, []).append(block)
        for sweep in range(6):
            for block in order.blocks if sweep % 2 == 0 else reversed(order.blocks):
                members = [n for names in order.rows[block].values() for n in names]
                pulled = [n for n in members if any(self.block_of[m] != block for m in self.neighbours[n])]
                if not pulled:
                    continue
                target = float(
                    np.mean([xs[m] for n in pulled for m in self.neighbours[n] if m not in members])
                )
                shift = target - float(np.mean([xs[n] for n in pulled]))
                low, high = 0.0, total - self.block_width[block]
                for rank in self._ranks_of(block):
                    row = in_rank[rank]
                    i = row.index(block)
                    if i > 0:
                        low = max(low, lefts[row[i - 1]] + self.block_width[row[i - 1]] + BLOCK_GAP)
                    if i + 1 < len(row):
                        high = min(high, lefts[row[i + 1]] - BLOCK_GAP - self.block_width[block])
                new_left = min(max(lefts[block] + shift, low), max(high, low))
                for name in members:
                    xs[name] += new_left - lefts[block]
                lefts[block] = new_left

    def _slide_rows(self, order: _Order, lefts: dict[str, float], xs: dict[str, float]) -> None:
        for _ in range(3):
            for block in order.blocks:
                for rank, names in order.rows[block].items():
                    low, high = (lefts[block] + edge for edge in self.room[(block, rank)])
                    width = self._row_width(names)
                    pull = [xs[m] for n in names for m in self.neighbours[n] if self.block_of[m] != block]
                    if pull and width < high - low:
                        centre = min(max(float(np.mean(pull)), low + width / 2), high - width / 2)
                        self._put_row(xs, names, centre)

    def cost(self, order: _Order) -> float:
        """Crossing edges, edges that would pass through a node, and width (which shrinks the picture on
        the page) count; horizontal edge length a little."""
        xs, lefts = self.place(order)
        width = max(lefts[b] + self.block_width[b] for b in order.blocks)
        segments = [
            ((xs[p], self.rank_y(self.ranks[p])), (xs[c], self.rank_y(self.ranks[c])), {p, c})
            for p, c in self.structure.edges
        ]
        crossings = sum(
            _segments_cross(a0, a1, b0, b1)
            for i, (a0, a1, ends_a) in enumerate(segments)
            for b0, b1, ends_b in segments[i + 1 :]
            if not ends_a & ends_b
        )
        through = 0
        for (p, c), ((x0, y0), (x1, y1), _) in zip(self.structure.edges, segments, strict=True):
            for rank in range(self.ranks[p] + 1, self.ranks[c]):
                x = x0 + (x1 - x0) * (self.rank_y(rank) - y0) / (y1 - y0)
                through += any(abs(xs[n] - x) < self.sizes[n][0] / 2 + 4 for n in self.in_rank[rank])
        length = sum(abs(a1[0] - a0[0]) for a0, a1, _ in segments)
        return 40.0 * crossings + 40.0 * through + width / 5 + length / 100.0

    def barycentre(self, order: _Order) -> _Order:
        """One pass: blocks, then the nodes of each row, sorted by the mean x of what they are joined to."""
        xs, _ = self.place(order)

        def pull(names: Iterable[str], fallback: float) -> float:
            joined = [xs[m] for n in names for m in self.neighbours[n]]
            return float(np.mean(joined)) if joined else fallback

        new = order.copy()
        members = {b: [n for names in order.rows[b].values() for n in names] for b in order.blocks}
        own = {b: float(np.mean([xs[n] for n in members[b]])) for b in order.blocks}
        new.blocks.sort(key=lambda b: pull(members[b], own[b]))
        for rows in new.rows.values():
            for names in rows.values():
                names.sort(key=lambda n: pull([n], xs[n]))
        return new

    def improve(self, order: _Order) -> _Order:
        """Move blocks and swap neighbouring nodes in a row while that lowers the cost."""
        best, best_cost = order, self.cost(order)
        for _ in range(30):
            for candidate in self._moves(best):
                cost = self.cost(candidate)
                if cost < best_cost - 1e-9:
                    best, best_cost = candidate, cost
                    break
            else:
                return best
        return best

    def _moves(self, order: _Order) -> Iterable[_Order]:
        for i in range(len(order.blocks)):
            for j in range(len(order.blocks)):
                if i != j:
                    moved = order.copy()
                    moved.blocks.insert(j, moved.blocks.pop(i))
                    yield moved
        for block, rows in order.rows.items():
            for rank, names in rows.items():
                for i in range(len(names) - 1):
                    swapped = order.copy()
                    row = swapped.rows[block][rank]
                    row[i], row[i + 1] = row[i + 1], row[i]
                    yield swapped

    def best_order(self) -> _Order:
        order = self.order
        candidates = [order]
        for _ in range(ROUNDS):
            order = self.barycentre(order)
            candidates.append(order)
        return self.improve(min(candidates, key=self.cost))  # min keeps the first of equal costs


def _segments_cross(a0, a1, b0, b1) -> bool:
    def side(p, q, r) -> float:
        return (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])

    return side(b0, b1, a0) * side(b0, b1, a1) < 0 and side(a0, a1, b0) * side(a0, a1, b1) < 0


def layout_graph(structure: ModelStructure) -> GraphLayout:
    """Lay a model graph out in ranks: parents above children, plates around exactly their nodes.

    Parameters
    ----------
    structure : ModelStructure
        From :func:`model_structure`.

    Returns
    -------
    GraphLayout
    """
    layouter = _Layouter(structure)
    order = layouter.best_order()
    xs, lefts = layouter.place(order, slide=True)
    ranks = layouter.ranks
    raw = {name: Box(xs[name], layouter.rank_y(ranks[name]), *layouter.sizes[name]) for name in xs}
    half = layouter.node_height / 2
    raw_plates, raw_labels = {}, {}
    for label, lines in layouter.plate_labels.items():
        first, last = layouter.span[label]
        top = layouter.rank_y(first) + half + PLATE_PAD
        bottom = layouter.rank_y(last) - half - PLATE_PAD
        width = layouter.block_width[label]
        raw_plates[label] = Box(lefts[label] + width / 2, (top + bottom) / 2, width, top - bottom)
        text_w, text_h = layouter.label_width[label], PLATE_LINE_HEIGHT * len(lines)
        right = lefts[label] + width - PLATE_PAD
        raw_labels[label] = Box(right - text_w / 2, bottom + PLATE_PAD + text_h / 2, text_w, text_h)
    everything = [*raw.values(), *raw_plates.values()]
    left = min(b.left for b in everything) - MARGIN
    bottom = min(b.bottom for b in everything) - MARGIN
    width = max(b.right for b in everything) + MARGIN - left
    height = max(b.top for b in everything) + MARGIN - bottom

    def moved(box: Box) -> Box:
        return Box(box.x - left, box.y - bottom, box.width, box.height)

    nodes = {name: moved(box) for name, box in raw.items()}
    plates = {label: moved(box) for label, box in raw_plates.items()}
    labels = {label: moved(box) for label, box in raw_labels.items()}
    rank_y = {rank: layouter.rank_y(rank) - bottom for rank in set(ranks.values())}
    routes = _routes(structure, nodes, ranks, rank_y, layouter.node_height, plates, labels)
    plate_text = {label: "\n".join(lines) for label, lines in layouter.plate_labels.items()}
    return GraphLayout(structure, ranks, nodes, plates, plate_text, labels, routes, width, height)


def _routes(
    structure: ModelStructure,
    nodes: Mapping[str, Box],
    ranks: Mapping[str, int],
    rank_y: Mapping[int, float],
    band: float,
    plates: Mapping[str, Box],
    labels: Mapping[str, Box],
) -> dict[tuple[str, str], tuple[tuple[float, float], ...]]:
    """Every edge's points: through the nearest gap of each rank it skips, from port to port.

    A gap is clear of the rank's nodes, of plate labels, and of the plates that hold neither end of the
    edge."""
    top = {rank: y + band / 2 for rank, y in rank_y.items()}
    bottom = {rank: y - band / 2 for rank, y in rank_y.items()}
    middles: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for parent, child in structure.edges:
        x, y = nodes[parent].x, nodes[parent].y
        end = nodes[child]
        ends = {parent, child}
        points: list[tuple[float, float]] = []
        for rank in range(ranks[parent] + 1, ranks[child]):
            obstacles = [box for name, box in nodes.items() if ranks[name] == rank]
            obstacles += [box for box in labels.values() if box.bottom < top[rank] and bottom[rank] < box.top]
            obstacles += [
                box
                for label, box in plates.items()
                if box.bottom < top[rank]
                and bottom[rank] < box.top
                and not ends & set(structure.plates[label])
            ]
            along = x + (end.x - x) * (rank_y[rank] - y) / (end.y - y)
            gap = _free_x(along, obstacles)
            points += [(gap, top[rank]), (gap, bottom[rank])]
            x, y = gap, rank_y[rank]
        middles[(parent, child)] = points
    kinds = {node.name: node.kind for node in structure.nodes}
    exits = _ports(structure.edges, nodes, kinds, middles, leaving=True)
    entries = _ports(structure.edges, nodes, kinds, middles, leaving=False)
    return {edge: (exits[edge], *middles[edge], entries[edge]) for edge in structure.edges}


def _ports(edges, nodes, kinds, middles, leaving: bool) -> dict[tuple[str, str], tuple[float, float]]:
    """Where each edge leaves its parent's bottom (or enters its child's top): spread along it in the
    order of where the edges go, so that they do not cross at the node."""
    ports = {}
    ends: dict[str, list[tuple[float, tuple[str, str]]]] = {}
    for edge in edges:
        parent, child = edge
        here, there = (parent, child) if leaving else (child, parent)
        towards = middles[edge][0 if leaving else -1][0] if middles[edge] else nodes[there].x
        ends.setdefault(here, []).append((towards, edge))
    for name, targets in ends.items():
        box, kind = nodes[name], kinds[name]
        usable = 0.7 * box.width / 2 if kind in RANDOM else box.width / 2 - DATA_ROUNDING - 4
        spread = min(max(usable, 0.0), 7.0 * (len(targets) - 1))
        offsets = np.linspace(-spread, spread, len(targets)) if len(targets) > 1 else [0.0]
        for offset, (_, edge) in zip(offsets, sorted(targets), strict=True):
            depth = box.height / 2
            if kind in RANDOM:
                depth *= math.sqrt(max(0.0, 1 - (2 * offset / box.width) ** 2))
            ports[edge] = (box.x + offset, box.y - depth if leaving else box.y + depth)
    return ports


def _free_x(x: float, boxes: Sequence[Box], clearance: float = 7.0) -> float:
    """``x``, or the middle of the nearest gap clear (by ``clearance``) of every box."""
    blocked = sorted((b.left - clearance, b.right + clearance) for b in boxes)
    if not any(low < x < high for low, high in blocked):
        return x
    merged = [list(blocked[0])]
    for low, high in blocked[1:]:
        if low <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], high)
        else:
            merged.append([low, high])
    gaps = [merged[0][0]] + [(a[1] + b[0]) / 2 for a, b in itertools.pairwise(merged)] + [merged[-1][1]]
    return min(gaps, key=lambda gap: abs(gap - x))
