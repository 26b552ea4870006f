"""The seed notebook's figures, one function per figure.

Every function returns a :class:`matplotlib.figure.Figure` and leaves saving to the caller
(:func:`save_figure`). The figures are drawn in ArviZ's ``arviz-darkgrid`` style on a white background
inside a style context, so importing or calling this module never changes matplotlib's global settings,
and no backend is chosen here: scripts that run headless call ``matplotlib.use("Agg")`` themselves.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import ParamSpec

import arviz as az
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from groupfx.data.grouped import GroupedData
from groupfx.errors import InputError
from groupfx.results.fits import EFFECTS, Fit, as_fit_list, compare, effect_label, effect_terms, truth_of
from groupfx.util.files import atomic_path

STYLE = {
    **{key: value for key, value in plt.style.library["arviz-darkgrid"].items() if key != "axes.prop_cycle"},
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
}
"""ArviZ's ``arviz-darkgrid`` settings, applied in a context to every figure. Its colour cycle is left out:
colours named ``"C0"``, ``"C1"``... are resolved when the figure is drawn, after the context has closed,
so a cycle set only inside the context would colour one figure with two palettes."""
DPI = 100
"""Resolution of saved figures, as in the seed notebook."""
MAX_POINTS = 20_000
"""Scatter plots of larger tables show a fixed random subsample of this many units."""

FitsLike = Fit | Mapping[str, Fit] | Sequence[Fit]
"""What the functions drawing several models take: one Fit, a sequence of them, or a mapping such as the
dict of :func:`groupfx.fit_all`."""
P = ParamSpec("P")


def _styled(function: Callable[P, Figure]) -> Callable[P, Figure]:
    """Build the figure inside the style context and draw it once there, so lazily made ticks take it."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> Figure:
        with plt.style.context(STYLE):
            fig = function(*args, **kwargs)
            fig.draw_without_rendering()
        return fig

    return wrapper


def _one_fit(fit: FitsLike, what: str, several: str) -> Fit:
    """The one fit a single-model figure draws: a Fit, or a collection holding exactly one."""
    if isinstance(fit, Fit):
        return fit
    fits = as_fit_list(fit, what)
    if len(fits) > 1:
        names = ", ".join(f.model for f in fits)
        raise InputError(
            f"{what} draws one Fit, got {len(fits)} ({names}); pass one, such as fits[{fits[0].model!r}],"
            f" or use {several} for several."
        )
    return fits[0]


def _subsample(n: int, max_points: int = MAX_POINTS) -> np.ndarray:
    """Indices of at most ``max_points`` units, the same on every call."""
    if n <= max_points:
        return np.arange(n)
    return np.sort(np.random.default_rng(0).choice(n, size=max_points, replace=False))


def _label_groups(ax: Axes, labels: np.ndarray, max_labels: int = 40) -> None:
    """Put group labels on the x axis at codes ``0 .. G-1``, thinned when there are many."""
    step = max(1, int(np.ceil(len(labels) / max_labels)))
    positions = np.arange(len(labels))[::step]
    ax.set_xticks(positions, [str(label) for label in labels[::step]], rotation=90 if step > 1 else 0)


@_styled
def plot_group_counts(data: GroupedData) -> Figure:
    """Bar chart of the number of units in each group.

    Parameters
    ----------
    data : GroupedData
        The table.

    Returns
    -------
    matplotlib.figure.Figure
        One axis with one bar per group, group labels on the x axis.
    """
    fig, ax = plt.subplots(figsize=(10, 6), layout="constrained")
    ax.bar(np.arange(data.n_groups), data.group_sizes, color="C0")
    _label_groups(ax, data.group_labels)
    ax.set(xlabel=data.names["group"], ylabel="count", title="Group counts")
    return fig


def _stacked_axes(count: int, height: float = 6.0) -> tuple[Figure, list[Axes]]:
    """A column of ``count`` axes, one per x."""
    fig, axes = plt.subplots(count, 1, figsize=(10, height * count), squeeze=False, layout="constrained")
    return fig, list(axes[:, 0])


@_styled
def plot_x_by_group(data: GroupedData) -> Figure:
    """Scatter of each ``x`` by group with each group's mean marked.

    Parameters
    ----------
    data : GroupedData
        The table; above :data:`MAX_POINTS` units a fixed subsample is drawn (the means use every unit).

    Returns
    -------
    matplotlib.figure.Figure
        One axis per x: the units as points, the group means as horizontal bars.
    """
    fig, axes = _stacked_axes(data.n_x)
    shown = _subsample(data.n_units)
    xbar = data.xbar
    for k, (ax, name) in enumerate(zip(axes, data.x_names, strict=True)):
        ax.scatter(data.group[shown], data.x[shown, k], s=12, alpha=0.4, color="C0", label="unit")
        ax.scatter(np.arange(data.n_groups), xbar[:, k], marker="_", s=400, linewidths=2.5, color="C1",
                   label="group mean")  # fmt: skip
        _label_groups(ax, data.group_labels)
        ax.legend(loc="best")
        ax.set(xlabel=data.names["group"], ylabel=name, title=f"{name} by group")
    return fig


@_styled
def plot_y_by_x(data: GroupedData, n_bins: int = 20, jitter: float = 0.04) -> Figure:
    """Scatter of ``y`` against each ``x`` with the mean of ``y`` in bins of ``x``.

    Parameters
    ----------
    data : GroupedData
        The table; above :data:`MAX_POINTS` units a fixed subsample is drawn (the bins use every unit).
    n_bins : int
        Number of equal-count bins of ``x`` (fewer when there are few units or few distinct values).
    jitter : float
        Half-width of the uniform vertical jitter that keeps points at y = 0 and 1 apart.

    Returns
    -------
    matplotlib.figure.Figure
        One axis per x: the jittered units and the mean of ``y`` (share of ``y = 1`` when binary) per bin.
    """
    fig, axes = _stacked_axes(data.n_x)
    y = np.asarray(data.y, dtype=float)
    shown = _subsample(data.n_units)
    noise = np.random.default_rng(0).uniform(-jitter, jitter, size=shown.size)
    binary = bool(np.isin(y, (0.0, 1.0)).all())
    y_name = data.names["y"]
    for k, (ax, name) in enumerate(zip(axes, data.x_names, strict=True)):
        x = data.x[:, k]
        ax.scatter(x[shown], y[shown] + noise, s=12, alpha=0.3, color="C0", label="unit (jittered)")
        bins = max(1, min(n_bins, data.n_units // 20))
        edges = np.unique(np.quantile(x, np.linspace(0, 1, bins + 1)))
        which = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, max(len(edges) - 2, 0))
        counts = np.bincount(which)
        keep = counts > 0
        x_mid = np.bincount(which, weights=x)[keep] / counts[keep]
        y_mean = np.bincount(which, weights=y)[keep] / counts[keep]
        label = f"share of {y_name} = 1" if binary else f"mean of {y_name}"
        ax.plot(x_mid, y_mean, "o-", color="C1", linewidth=2, label=f"{label} ({len(x_mid)} bins of {name})")
        ax.legend(loc="best")
        ax.set(xlabel=name, ylabel=y_name, title=f"{y_name} by {name}")
    return fig


def _panels(data: GroupedData, params: Sequence[str]) -> list[tuple[str, str]]:
    """``(parameter, term)`` of each panel: the effects in ``params``, one per covariate."""
    return [(p, t) for p, t in effect_terms(data) if p in params]


def _posterior_row(
    fit: Fit, axes: Sequence[Axes], truth: Mapping[str, float] | None, params: Sequence[str]
) -> None:
    """az.plot_posterior of ``params`` (every covariate) on ``axes``, with the truth as reference value."""
    panels = _panels(fit.data, params)
    ref_val: dict[str, list[dict[str, object]]] = {}
    for param, term in panels:
        value = truth_of(truth, param, term)
        if value is not None:
            dim = "x_var" if param == "bxy" else "z_var"
            ref_val.setdefault(param, []).append({dim: term, "ref_val": value})
    names = list(dict.fromkeys(param for param, _ in panels))
    az.plot_posterior(fit.idata, var_names=names, ref_val=ref_val or None, ax=np.asarray(axes))
    for ax, (param, term) in zip(axes, panels, strict=True):
        ax.set_title(effect_label(param, term, fit.data), fontsize=14)


@_styled
def plot_posteriors(
    fit: Fit, truth: Mapping[str, float] | None = None, params: Sequence[str] = EFFECTS
) -> Figure:
    """Posterior densities of one fit, one panel per parameter.

    Parameters
    ----------
    fit : Fit
        The fitted model (one; a list or dict holding only it is taken too, several are refused: draw
        them with :func:`plot_model_grid`).
    truth : mapping of str to float, optional
        True values; each is drawn as ArviZ's reference value on its parameter's panel.
    params : sequence of str
        Effects to show (default ``("bxy", "bzy")``), one panel per covariate.

    Returns
    -------
    matplotlib.figure.Figure
        One row of axes, one per effect and covariate, titled ``"<label>: posterior"``.

    Raises
    ------
    InputError
        When given several fits.
    """
    fit = _one_fit(fit, "plot_posteriors", "plot_model_grid")
    columns = len(_panels(fit.data, params))
    fig, axes = plt.subplots(1, columns, figsize=(6 * columns, 5), squeeze=False, layout="constrained")
    _posterior_row(fit, axes[0], truth, params)
    fig.suptitle(f"{fit.label}: posterior", fontsize=16)
    return fig


@_styled
def plot_model_grid(
    fits: FitsLike, truth: Mapping[str, float] | None = None, params: Sequence[str] = EFFECTS
) -> Figure:
    """The seed's stacked comparison: one row of posterior panels per model, columns sharing x.

    Parameters
    ----------
    fits : Fit, sequence of Fit or mapping of str to Fit
        The fits, top to bottom (one is a one-row grid).
    truth : mapping of str to float, optional
        True values, drawn as reference values.
    params : sequence of str
        Effects, one column per covariate (default ``("bxy", "bzy")``).

    Returns
    -------
    matplotlib.figure.Figure
        One row per fit, one column per effect and covariate; each row's first axis has the model label.
    """
    fits = as_fit_list(fits, "plot_model_grid")
    columns = len(_panels(fits[0].data, params))
    fig, axes = plt.subplots(
        len(fits),
        columns,
        figsize=(6 * columns, max(5.0, 3.2 * len(fits))),
        sharex="col",
        squeeze=False,
        layout="constrained",
    )
    for row, fit in zip(axes, fits, strict=True):
        _posterior_row(fit, row, truth, params)
        row[0].set_ylabel(fit.label, fontsize=13)
    fig.suptitle("Model comparison", fontsize=16)
    return fig


def _forest(ax: Axes, fits: list[Fit], param: str, truth: Mapping[str, float] | None) -> None:
    """az.plot_forest of one parameter across models on ``ax``, with a dashed line at the truth."""
    az.plot_forest(
        [fit.idata for fit in fits],
        model_names=[fit.label for fit in fits],
        var_names=[param],
        combined=True,
        ax=ax,
    )
    legend = ax.get_legend()
    handles = list(legend.legend_handles)[::-1] if legend else []  # ArviZ lists the models bottom-up
    labels = [text.get_text() for text in legend.get_texts()][::-1] if legend else []
    terms = [t for p, t in effect_terms(fits[0].data) if p == param]
    values = {truth_of(truth, param, term) for term in terms}
    if len(values) == 1 and None not in values:  # one line only when every covariate shares the truth
        handles.append(ax.axvline(values.pop(), color="k", linestyle="--"))
        labels.append("truth")
    if handles:
        ax.legend(handles, labels, loc="best")
    ax.set_title(param, fontsize=16)


@_styled
def plot_forest(fits: FitsLike, param: str, truth: Mapping[str, float] | None = None) -> Figure:
    """Forest plot of one parameter across models (94% HDI, chains combined).

    Parameters
    ----------
    fits : Fit, sequence of Fit or mapping of str to Fit
        The fits.
    param : str
        A scalar parameter every fit has.
    truth : mapping of str to float, optional
        True values; the one of ``param`` is drawn as a dashed vertical line.

    Returns
    -------
    matplotlib.figure.Figure
        One axis, titled ``param``.
    """
    fig, ax = plt.subplots(figsize=(10, 5), layout="constrained")
    _forest(ax, as_fit_list(fits, "plot_forest"), param, truth)
    return fig


@_styled
def plot_forests(
    fits: FitsLike, truth: Mapping[str, float] | None = None, params: Sequence[str] = EFFECTS
) -> Figure:
    """The seed's forest figure: one forest plot per parameter, stacked.

    Parameters
    ----------
    fits : Fit, sequence of Fit or mapping of str to Fit
        The fits.
    truth : mapping of str to float, optional
        True values, drawn as dashed vertical lines.
    params : sequence of str
        Scalar parameters, one panel each (default ``("bxy", "bzy")``).

    Returns
    -------
    matplotlib.figure.Figure
        ``len(params)`` axes in one column.
    """
    fits = as_fit_list(fits, "plot_forests")
    params = [p for p in params if any(p == q for q, _ in effect_terms(fits[0].data))]
    fig, axes = plt.subplots(
        len(params), 1, figsize=(10, 5 * len(params)), squeeze=False, layout="constrained"
    )
    for ax, param in zip(axes[:, 0], params, strict=True):
        _forest(ax, fits, param, truth)
    fig.suptitle("Model comparison", fontsize=16)
    return fig


@_styled
def plot_loo_compare(comparison: pd.DataFrame | FitsLike) -> Figure:
    """ArviZ's plot of a PSIS-LOO comparison of two or more models.

    Parameters
    ----------
    comparison : pandas.DataFrame, or the fits
        The table of :func:`groupfx.compare` (or ``arviz.compare``) of two or more models, or the fits
        themselves (a sequence or mapping), compared here.

    Returns
    -------
    matplotlib.figure.Figure
        One axis: ELPD per model with standard errors, best at the top.

    Raises
    ------
    InputError
        When there is only one model: there is nothing to compare (its elpd_loo is in ``fit.loo``).
    """
    if not isinstance(comparison, pd.DataFrame):
        comparison = compare(as_fit_list(comparison, "plot_loo_compare"))
    if len(comparison) < 2:
        names = ", ".join(map(str, comparison.index)) or "none"
        raise InputError(
            f"plot_loo_compare draws a comparison of two or more models, got {len(comparison)} ({names});"
            " fit more models, or read the one model's elpd_loo in groupfx.compare(fit)."
        )
    fig, ax = plt.subplots(figsize=(10, 5), layout="constrained")
    az.plot_compare(comparison, ax=ax)
    return fig


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Save a figure as PNG at :data:`DPI` dots per inch, atomically, then close it.

    The image is written to a temporary file beside ``path`` and renamed onto it, so ``path`` is never
    left half-written. The figure is closed even if saving fails.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure.
    path : str or pathlib.Path
        Where to write it (PNG whatever the suffix); missing folders are created.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=DPI, facecolor="white")
    finally:
        plt.close(fig)
    return path


__all__ = [
    "plot_forest",
    "plot_forests",
    "plot_group_counts",
    "plot_loo_compare",
    "plot_model_grid",
    "plot_posteriors",
    "plot_x_by_group",
    "plot_y_by_x",
    "save_figure",
]


def plot_causal_dag(truth: Mapping[str, float] | None = None, u_sd: float | None = None) -> Figure:
    """The seed study's causal graph: U -> x, U -> y, z -> y and the effect of interest x -> y.

    Drawn with matplotlib, so it needs no Graphviz. ``U`` is dashed (unobserved); edges carry the true
    coefficients when ``truth`` is given.

    Parameters
    ----------
    truth : mapping of str to float, optional
        True ``bxy`` and ``bzy`` to print on their edges.
    u_sd : float, optional
        Standard deviation of ``U`` to print on its node.

    Returns
    -------
    matplotlib.figure.Figure
    """
    truth = truth or {}
    fig, ax = plt.subplots(figsize=(6, 3.6), facecolor="white")
    nodes = {"U": (0.5, 0.85), "z": (0.92, 0.85), "x": (0.15, 0.2), "y": (0.85, 0.2)}
    labels = {"U": "U (group, unobserved)" + (f"\n~ Normal(0, {u_sd:g})" if u_sd is not None else ""),
              "z": "z (group)", "x": "x (unit)", "y": "y (unit)"}  # fmt: skip
    bzy = f"bzy = {truth['bzy']:g}" if "bzy" in truth else "bzy"
    bxy = f"bxy = {truth['bxy']:g}  (?)" if "bxy" in truth else "bxy  (?)"
    edges = [("U", "x", "1"), ("U", "y", "1"), ("z", "y", bzy), ("x", "y", bxy)]
    for start, end, text in edges:
        (x0, y0), (x1, y1) = nodes[start], nodes[end]
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                    arrowprops={"arrowstyle": "-|>", "lw": 2 if start == "x" else 1.3, "shrinkA": 28,
                                "shrinkB": 28, "color": "C3" if start == "x" else "0.25"})  # fmt: skip
        vertical = abs(x1 - x0) < 0.2
        ax.text((x0 + x1) / 2 + (0.03 if vertical else 0), (y0 + y1) / 2 + 0.04, text,
                ha="left" if vertical else "center", fontsize=10, color="0.2")  # fmt: skip
    for name, (x, y) in nodes.items():
        ax.text(x, y, labels[name], ha="center", va="center", fontsize=11,
                bbox={"boxstyle": "round,pad=0.5", "fc": "white", "ec": "0.3",
                      "ls": "--" if name == "U" else "-"})  # fmt: skip
    ax.set(xlim=(0, 1.05), ylim=(0, 1.05))
    ax.axis("off")
    ax.set_title("Causal graph: U confounds x -> y", fontsize=12)
    return fig
