"""Model graphs without Graphviz: a PNG drawn by matplotlib and the DOT source beside it, for every model.

The layout is checked as a reader would look at it: every parent above its child, no two nodes on top of
each other, every plate around exactly its own nodes, labels and edges clear of the nodes they do not
belong to.
"""

from __future__ import annotations

import base64
import itertools
import os
import re
import shutil

import matplotlib.image
import numpy as np
import pytest

import groupfx
from groupfx.models import graph_drawing, graph_layout, graphs
from groupfx.models.builders import DEFAULT_MODELS, build_model
from groupfx.models.graph_layout import layout_graph, model_structure
from groupfx.report.outputs import causal_graph, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def no_dot(monkeypatch):
    """A PATH without Graphviz's ``dot``, as on a fresh machine."""
    kept = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d and not shutil.which("dot", path=d)]
    monkeypatch.setenv("PATH", os.pathsep.join(kept))
    assert shutil.which("dot") is None


@pytest.fixture(scope="module")
def tiny():
    return groupfx.simulate(n_groups=6, n_units=60, seed=5)


@pytest.fixture(scope="module")
def several(tiny):
    """The tiny table with three x and two z."""
    frame = tiny.to_frame()
    rng = np.random.default_rng(2)
    frame["x2"] = rng.normal(size=len(frame))
    frame["x3"] = frame["x"] - frame["x2"]
    frame["z2"] = rng.normal(size=tiny.data.n_groups)[frame["group"].to_numpy()]
    return groupfx.GroupedData.from_frame(frame, x=["x", "x2", "x3"], z=["z", "z2"])


CASES = [*((name, "one") for name in DEFAULT_MODELS), *((name, "several") for name in DEFAULT_MODELS)]


@pytest.fixture(params=[*CASES, ("causal", "one")], ids=lambda case: "-".join(case))
def model(request, tiny, several):
    name, table = request.param
    if name == "causal":
        return causal_graph(tiny)
    return build_model(name, tiny.data if table == "one" else several)


def test_write_graph_needs_no_graphviz_and_keeps_the_dot_source(model, tmp_path, no_dot):
    written = graphs.write_graph(model, tmp_path / "graph_m", "M")
    assert written.path == tmp_path / "graph_m.png" and written.dot_path == tmp_path / "graph_m.dot"
    assert written.path.read_bytes()[:8] == PNG_MAGIC
    pixels = matplotlib.image.imread(written.path)
    layout = layout_graph(model_structure(model))
    expected = (layout.height / 72 * graphs.DPI, layout.width / 72 * graphs.DPI)
    assert np.allclose(pixels.shape[:2], expected, atol=1)
    assert (pixels[..., :3] < 0.5).any()  # something black is drawn on the white
    source = written.dot_path.read_text()
    assert source == written.source == graphs.model_graph(model).source
    assert source.startswith("digraph")
    for name in (node.name for node in layout.structure.nodes):
        assert re.search(rf"\b{re.escape(name)}\b", source)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["graph_m.dot", "graph_m.png"]  # no temporary left


def test_structure_is_pymcs_graph(model):
    structure = model_structure(model)
    names = [node.name for node in structure.nodes]
    assert sorted(names) == sorted(
        v.name for v in model.free_RVs + model.observed_RVs + model.deterministics + model.data_vars
        + model.potentials
    )  # fmt: skip
    assert len(set(structure.edges)) == len(structure.edges)
    for plate, members in structure.plates.items():
        for name in members:
            dims = model.named_vars_to_dims.get(name, ())
            assert all(dim in plate for dim in dims)
    observed = {v.name for v in model.observed_RVs}
    for node in structure.nodes:
        assert node.label[0] == node.name and node.label[1] == "~"
        assert (node.kind.name == "OBSERVED_RV") == (node.name in observed)


def test_layout_is_readable(model):
    layout = layout_graph(model_structure(model))
    structure = layout.structure
    boxes = layout.nodes
    assert set(boxes) == {node.name for node in structure.nodes}
    for parent, child in structure.edges:  # every parent above its child
        assert layout.ranks[parent] < layout.ranks[child]
        assert boxes[parent].bottom > boxes[child].top
    names = list(boxes)
    for i, a in enumerate(names):  # no two nodes overlap
        for b in names[i + 1 :]:
            assert not boxes[a].overlaps(boxes[b]), (a, b)
    plates = list(layout.plates)
    for label, plate in layout.plates.items():  # every plate holds exactly its nodes
        members = set(structure.plates[label])
        for name, box in boxes.items():
            if name in members:
                assert plate.contains(box), (label, name)
            else:
                assert not plate.overlaps(box), (label, name)
        assert plate.contains(layout.labels[label])
        assert not any(layout.labels[label].overlaps(box) for box in boxes.values())
        assert layout.plate_text[label].replace("\n", " ") == label
    for i, a in enumerate(plates):  # plates do not overlap one another
        for b in plates[i + 1 :]:
            assert not layout.plates[a].overlaps(layout.plates[b]), (a, b)
    everything = [*boxes.values(), *layout.plates.values()]
    assert min(b.left for b in everything) >= 0 and max(b.right for b in everything) <= layout.width
    assert min(b.bottom for b in everything) >= 0 and max(b.top for b in everything) <= layout.height


def _along(points, steps=24):
    """Points along the drawn edge through ``points``."""
    path = graph_drawing._edge_path(points)
    return [curve.point_at_t(t) for curve, _ in path.iter_bezier() for t in np.linspace(0, 1, steps)]


def test_edges_run_from_parent_to_child_clear_of_other_nodes(model):
    layout = layout_graph(model_structure(model))
    for (parent, child), points in layout.routes.items():
        start, end = layout.nodes[parent], layout.nodes[child]
        assert points[0][1] == pytest.approx(start.bottom, abs=start.height / 2)
        assert start.left <= points[0][0] <= start.right and points[0][1] <= start.y
        assert end.left <= points[-1][0] <= end.right and points[-1][1] >= end.y
        ys = [y for _, y in _along(points)]
        assert all(a >= b - 1e-9 for a, b in itertools.pairwise(ys))  # always downwards
        for x, y in _along(points):
            for name, box in layout.nodes.items():
                if name not in (parent, child):
                    assert not (box.left < x < box.right and box.bottom < y < box.top), (parent, child, name)


def test_the_drawing_is_the_same_every_time(tiny):
    first = layout_graph(model_structure(build_model("latent", tiny.data)))
    again = layout_graph(model_structure(build_model("latent", tiny.data)))
    assert first.nodes == again.nodes and first.routes == again.routes


def test_a_wide_rank_is_split_to_fit_the_page(tiny):
    """The multilevel model's outcome has eight parents: in one rank they would be far wider than the
    report's page, so some move a rank up."""
    layout = layout_graph(model_structure(build_model("multilevel", tiny.data)))
    parents = [p for p, c in layout.structure.edges if c == "y_obs"]
    assert len(parents) == 8 and len({layout.ranks[p] for p in parents}) == 2
    assert layout.width <= 1.1 * graph_layout.TARGET_WIDTH


@pytest.mark.slow
def test_report_shows_every_model_graph_without_graphviz(small_sim, small_fits, tmp_path, no_dot):
    out = tmp_path / "out"
    page = write_report(small_fits, out, simulated=small_sim).read_text()
    assert "was not found" not in page
    for fit in [*small_fits.values(), None]:
        label, key = (fit.label, fit.model) if fit else ("causal", "causal")
        match = re.search(
            rf'<img src="data:image/png;base64,([^"]+)" alt="Graph of the {label} model">', page
        )
        assert match, label
        png = out / "figures" / f"graph_{key}.png"
        assert base64.b64decode(match.group(1)) == png.read_bytes()
        assert png.read_bytes()[:8] == PNG_MAGIC
        assert (out / "figures" / f"graph_{key}.dot").read_text().startswith("digraph")
        assert f"<code>figures/graph_{key}.dot</code>" in page
