"""Tests of the figures: each returns a Figure with the right panels, truth lines and labels."""

from __future__ import annotations

import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

import groupfx
from groupfx.data.simulate import SimulatedData
from groupfx.report import plots

MODELS = ["naive", "fixed", "mundlak"]


@pytest.fixture(scope="module")
def sim() -> SimulatedData:
    return groupfx.simulate(n_groups=6, n_units=120)


@pytest.fixture(scope="module")
def fits(sim) -> dict[str, groupfx.Fit]:
    with warnings.catch_warnings():  # PSIS-LOO warns about Pareto k with so few draws
        warnings.simplefilter("ignore", UserWarning)
        return groupfx.fit_all(sim, models=MODELS, draws=50, tune=50, chains=2, warn=False)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def has_data(ax) -> bool:
    return bool(ax.lines or ax.collections or ax.patches)


def data_axes(fig: Figure) -> list:
    return [ax for ax in fig.axes if has_data(ax)]


def vertical_lines_at(ax, x: float) -> list[Line2D]:
    """Lines on ``ax`` that are vertical at ``x``."""
    found = []
    for line in ax.lines:
        xs = np.asarray(line.get_xdata(), dtype=float)
        if xs.size and np.allclose(xs, x):
            found.append(line)
    return found


def test_group_counts_bars_match_group_sizes(sim):
    data = sim.data
    fig = plots.plot_group_counts(data)
    assert isinstance(fig, Figure)
    (ax,) = data_axes(fig)
    heights = [patch.get_height() for patch in ax.patches]
    np.testing.assert_array_equal(heights, data.group_sizes)
    assert [t.get_text() for t in ax.get_xticklabels()] == [str(g) for g in data.group_labels]
    assert ax.get_xlabel() == "group"


def test_x_by_group_marks_group_means(sim):
    data = sim.data
    fig = plots.plot_x_by_group(data)
    (ax,) = data_axes(fig)
    units, means = ax.collections
    assert len(units.get_offsets()) == data.n_units
    np.testing.assert_allclose(
        means.get_offsets(), np.column_stack([np.arange(data.n_groups), data.xbar[:, 0]])
    )
    assert ax.get_ylabel() == "x"


def test_y_by_x_jitters_points_and_draws_binned_share(sim):
    data = sim.data
    fig = plots.plot_y_by_x(data, jitter=0.04)
    (ax,) = data_axes(fig)
    points = np.asarray(ax.collections[0].get_offsets())
    np.testing.assert_allclose(points[:, 0], data.x[:, 0])
    offset = points[:, 1] - data.y
    assert np.all(np.abs(offset) <= 0.04) and np.any(offset != 0)
    (line,) = ax.lines
    assert np.all(np.diff(line.get_xdata()) > 0)
    assert np.all((line.get_ydata() >= 0) & (line.get_ydata() <= 1))


def test_y_by_x_share_follows_a_step_in_y():
    x = np.linspace(-3, 3, 400)
    data = groupfx.GroupedData(
        y=(x > 0).astype(int),
        x=x,
        group=np.arange(400) % 4,
        z=np.zeros(4),
        group_labels=np.array(["a", "b", "c", "d"]),
    )
    (line,) = plots.plot_y_by_x(data, n_bins=10).axes[0].lines
    xs, share = np.asarray(line.get_xdata()), np.asarray(line.get_ydata())
    assert len(xs) == 10
    np.testing.assert_array_equal(share, (xs > 0).astype(float))


def test_posteriors_one_panel_per_parameter_with_truth(sim, fits):
    fig = plots.plot_posteriors(fits["naive"], sim.truth)
    axes = data_axes(fig)
    assert len(axes) == 2
    assert [ax.get_title() for ax in axes] == ["bxy", "bzy"]
    assert vertical_lines_at(axes[0], sim.truth["bxy"])
    assert vertical_lines_at(axes[1], sim.truth["bzy"])
    assert fig.get_suptitle() == "Naive: posterior"


def test_posteriors_without_truth_draw_no_reference(fits):
    fig = plots.plot_posteriors(fits["mundlak"], None, params=("bxy",))
    (ax,) = data_axes(fig)
    texts = [t.get_text() for t in ax.texts]
    assert not any("<" in text for text in texts), texts
    assert fig.get_suptitle() == "Mundlak: posterior"


@pytest.mark.parametrize("as_sequence", [False, True])
def test_model_grid_one_row_per_model(sim, fits, as_sequence):
    given = list(fits.values()) if as_sequence else fits
    fig = plots.plot_model_grid(given, sim.truth)
    axes = np.asarray(fig.axes).reshape(len(MODELS), 2)
    assert all(has_data(ax) for ax in axes.ravel())
    assert [ax.get_ylabel() for ax in axes[:, 0]] == [fit.label for fit in fits.values()]
    assert axes[0, 0].get_shared_x_axes().joined(axes[0, 0], axes[-1, 0])
    assert not axes[0, 0].get_shared_x_axes().joined(axes[0, 0], axes[0, 1])
    for row in axes:
        assert vertical_lines_at(row[0], sim.truth["bxy"])
        assert vertical_lines_at(row[1], sim.truth["bzy"])


def test_forest_has_dashed_truth_line_and_model_legend(sim, fits):
    fig = plots.plot_forest(fits, "bzy", sim.truth)
    (ax,) = data_axes(fig)
    truth_lines = [ln for ln in vertical_lines_at(ax, sim.truth["bzy"]) if ln.get_linestyle() == "--"]
    assert len(truth_lines) == 1
    legend = ax.get_legend()
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels == [fit.label for fit in fits.values()] + ["truth"]
    # Models run top to bottom in the order given; each legend entry has its interval's colour as rendered
    # (the intervals' colours are fixed when drawn, the legend's "C0"... are resolved at save time).
    intervals = sorted(
        (
            (np.mean([np.asarray(seg)[:, 1].mean() for seg in c.get_segments()]), tuple(c.get_color()[0]))
            for c in ax.collections
        ),
        reverse=True,
    )
    top_down = list(dict.fromkeys(colour for _, colour in intervals))
    assert top_down == [to_rgba(handle.get_color()) for handle in legend.legend_handles[:-1]]
    assert ax.get_title() == "bzy"


def test_forest_without_truth_has_no_dashed_line(fits):
    (ax,) = data_axes(plots.plot_forest(fits, "bxy"))
    assert not [ln for ln in ax.lines if ln.get_linestyle() == "--"]


def test_forests_one_panel_per_parameter(sim, fits):
    fig = plots.plot_forests(fits, sim.truth)
    axes = data_axes(fig)
    assert [ax.get_title() for ax in axes] == ["bxy", "bzy"]
    for ax, param in zip(axes, ("bxy", "bzy"), strict=True):
        assert vertical_lines_at(ax, sim.truth[param])


def test_loo_compare_lists_every_model(fits):
    fig = plots.plot_loo_compare(groupfx.compare(fits))
    (ax,) = data_axes(fig)
    labels = {t.get_text() for t in ax.get_yticklabels()}
    assert {fit.label for fit in fits.values()} <= labels


def test_plotting_leaves_global_style_alone(sim):
    before = dict(matplotlib.rcParams)
    fig = plots.plot_group_counts(sim.data)
    assert dict(matplotlib.rcParams) == before
    assert to_rgba(fig.get_facecolor()) == to_rgba("white")
    assert fig.axes[0].get_facecolor() != to_rgba(before["axes.facecolor"])


def test_save_figure_writes_png_atomically(sim, tmp_path):
    fig = plots.plot_group_counts(sim.data)
    target = tmp_path / "figures" / "counts.png"
    result = plots.save_figure(fig, target)
    assert result == target
    assert target.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert [p.name for p in target.parent.iterdir()] == ["counts.png"]
    assert not plt.fignum_exists(fig.number)
    width, height = fig.get_size_inches() * plots.DPI
    image = plt.imread(target)
    assert image.shape[:2] == (round(height), round(width))


def test_save_figure_replaces_existing_file_and_cleans_up_on_failure(sim, tmp_path):
    target = tmp_path / "counts.png"
    target.write_bytes(b"old")
    plots.save_figure(plots.plot_group_counts(sim.data), target)
    assert target.read_bytes().startswith(b"\x89PNG")

    class Broken(Exception):
        pass

    fig = plots.plot_group_counts(sim.data)

    def fail(*args, **kwargs):
        raise Broken

    fig.savefig = fail
    with pytest.raises(Broken):
        plots.save_figure(fig, target)
    assert target.read_bytes().startswith(b"\x89PNG")
    assert [p.name for p in tmp_path.iterdir()] == ["counts.png"]
    assert not plt.fignum_exists(fig.number)


def test_causal_dag_marks_the_truth_and_the_unobserved_confounder():
    fig = plots.plot_causal_dag({"bxy": 0.0, "bzy": 1.0}, u_sd=1.5)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "bxy = 0  (?)" in texts and "bzy = 1" in texts
    confounder = next(t for t in fig.axes[0].texts if t.get_text().startswith("U (group, unobserved)"))
    assert "Normal(0, 1.5)" in confounder.get_text()
    assert confounder.get_bbox_patch().get_linestyle() == "--"
    assert len([c for c in fig.axes[0].get_children() if type(c).__name__ == "Annotation"]) == 4


def test_figures_drawn_side_by_side_are_the_files_drawn_one_by_one(sim, fits, tmp_path):
    import os

    from groupfx.report.drawing import draw_figures

    drawings = {  # closures over the data and fits: the workers inherit them
        "group_counts": lambda: plots.plot_group_counts(sim.data),
        "y_by_x": lambda: plots.plot_y_by_x(sim.data),
        "forest": lambda: plots.plot_forests(fits, sim.truth),
    }
    meanwhile: list[int] = []
    one = draw_figures(drawings, tmp_path / "one", workers=1)
    two = draw_figures(drawings, tmp_path / "two", workers=2, meanwhile=lambda: meanwhile.append(os.getpid()))
    assert meanwhile == [os.getpid()]
    assert list(one) == list(two) == list(drawings)
    for key in drawings:
        assert one[key] == tmp_path / "one" / f"{key}.png" and two[key] == tmp_path / "two" / f"{key}.png"
        assert one[key].read_bytes() == two[key].read_bytes()
    assert sorted(path.name for path in (tmp_path / "two").iterdir()) == sorted(f"{k}.png" for k in drawings)
