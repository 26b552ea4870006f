"""Figures of the effects on the outcome scale and of the model checks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from groupfx.report.plots import _styled
from groupfx.results.checks import PredictiveCheck
from groupfx.results.fits import HDI_PROB


@_styled
def plot_average_contrasts(effects: pd.DataFrame, scale: str = "outcome") -> Figure:
    """The average contrast (AME) per model with its 94% HDI, and the truth where known.

    Parameters
    ----------
    effects : pandas.DataFrame
        The table of :func:`groupfx.results.effects.contrasts` for several models (``effects.csv``).
    scale : str
        What the outcome scale is, for the axis label (e.g. ``"probability"``).
    """
    table = effects[effects["group"] == "average"]
    fig, ax = plt.subplots(figsize=(9, 0.6 * len(table) + 1.8), layout="constrained")
    position = np.arange(len(table))[::-1]
    xerr = [table["mean"] - table["hdi_low"], table["hdi_high"] - table["mean"]]
    ax.errorbar(table["mean"], position, xerr=xerr, fmt="o", color="C0", capsize=4,
                label=f"posterior mean, {HDI_PROB:.0%} HDI")  # fmt: skip
    if table["truth"].notna().any():
        ax.axvline(float(table["truth"].iloc[0]), color="k", linestyle="--", label="truth")
    ax.axvline(0, color="0.6", linewidth=1)
    ax.set_yticks(position, table["model"])
    first = table.iloc[0]
    ax.set(xlabel=f"change in the {scale} when {first['x']} rises by {first['delta']:g}",
           title="Average effect over the units (AME)")  # fmt: skip
    ax.legend(loc="best")
    return fig


@_styled
def plot_group_contrasts(effects: pd.DataFrame) -> Figure:
    """Each group's contrast per model against the true one (simulated data) or across models."""
    table = effects[effects["group"] != "average"]
    models = list(dict.fromkeys(table["model"]))
    fig, ax = plt.subplots(figsize=(9, 6), layout="constrained")
    known = table["truth"].notna().all()
    for k, model in enumerate(models):
        rows = table[table["model"] == model]
        horizontal = rows["truth"] if known else np.arange(len(rows)) + 0.1 * k
        ax.scatter(horizontal, rows["mean"], s=18, color=f"C{k}", label=model, alpha=0.8)
    if known:
        limits = [table[["truth", "mean"]].min().min(), table[["truth", "mean"]].max().max()]
        ax.plot(limits, limits, color="k", linestyle="--", linewidth=1, label="equal to the truth")
        ax.set(xlabel="true contrast of the group", ylabel="posterior mean contrast")
    else:
        ax.set(xlabel="group", ylabel="posterior mean contrast")
    ax.set_title("Per-group effect of raising x")
    ax.legend(loc="best")
    return fig


@_styled
def plot_group_intercepts(intercepts: Mapping[str, np.ndarray], truth: np.ndarray) -> Figure:
    """Posterior group intercepts (link scale, x = 0) of each model against the true a0 + U_g + bzy z_g.

    Parameters
    ----------
    intercepts : mapping of str to numpy.ndarray
        Model label to draws ``(draws, G)`` (:func:`groupfx.results.checks.group_intercepts`).
    truth : numpy.ndarray
        The true intercept of each group, ``(G,)``.
    """
    fig, axes = plt.subplots(1, len(intercepts), figsize=(5.5 * len(intercepts), 5), squeeze=False,
                             sharey=True, layout="constrained")  # fmt: skip
    for k, (ax, (label, draws)) in enumerate(zip(axes[0], intercepts.items(), strict=True)):
        mean = draws.mean(axis=0)
        low, high = np.quantile(draws, [0.03, 0.97], axis=0)
        ax.errorbar(truth, mean, yerr=[mean - low, high - mean], fmt="o", color=f"C{k}", alpha=0.7, capsize=2)
        limits = [min(truth.min(), low.min()), max(truth.max(), high.max())]
        ax.plot(limits, limits, color="k", linestyle="--", linewidth=1)
        rmse = float(np.sqrt(np.mean((mean - truth) ** 2)))
        ax.set(title=f"{label} (RMSE {rmse:.2f})", xlabel="true intercept a0 + U + bzy z")
    axes[0, 0].set_ylabel("posterior intercept (94% interval)")
    return fig


@_styled
def plot_predictive_groups(checks: Mapping[str, PredictiveCheck], binary: bool) -> Figure:
    """Posterior predictive check per model: observed mean (share of y = 1) of each group against the
    central 94% of its replications, groups sorted by the observed value."""
    fig, axes = plt.subplots(len(checks), 1, figsize=(10, 2.6 * len(checks) + 0.6), squeeze=False,
                             sharex=True, layout="constrained")  # fmt: skip
    for ax, (label, check) in zip(axes[:, 0], checks.items(), strict=True):
        order = np.argsort(check.observed, kind="stable")
        low, high = np.quantile(check.replicated[:, order], [0.03, 0.97], axis=0)
        position = np.arange(order.size)
        ax.fill_between(position, low, high, color="C0", alpha=0.3, step="mid", label="replicated (94%)")
        ax.plot(position, check.observed[order], "o", color="C1", markersize=3, label="observed")
        ax.set_title(f"{label}: {check.outside:.0%} of groups outside", fontsize=11)
        ax.set_ylabel("share of y = 1" if binary else "mean of y")
    axes[0, 0].legend(loc="upper left")
    axes[-1, 0].set_xlabel("groups, sorted by the observed value")
    return fig


@_styled
def plot_calibration(checks: Mapping[str, PredictiveCheck], binary: bool) -> Figure:
    """Calibration: observed mean of y against the predicted one, in ten bins of units, per model."""
    fig, ax = plt.subplots(figsize=(7, 6), layout="constrained")
    low = min(c.calibration[["predicted", "observed"]].min().min() for c in checks.values())
    high = max(c.calibration[["predicted", "observed"]].max().max() for c in checks.values())
    ax.plot([low, high], [low, high], color="k", linestyle="--", linewidth=1, label="perfect calibration")
    for k, (label, check) in enumerate(checks.items()):
        ax.plot(
            check.calibration["predicted"], check.calibration["observed"], "o-", color=f"C{k}", label=label
        )
    what = "share of y = 1" if binary else "mean of y"
    ax.set(xlabel=f"predicted {what} (posterior mean, bins of units)", ylabel=f"observed {what}",
           title="Calibration")  # fmt: skip
    ax.legend(loc="best")
    return fig


@_styled
def plot_prior_predictive(prior_means: Mapping[str, np.ndarray], observed: float, binary: bool) -> Figure:
    """Prior predictive check: the mean of y in data sets drawn from each model's prior, and the data's."""
    fig, ax = plt.subplots(figsize=(9, 5), layout="constrained")
    values: Sequence[np.ndarray] = list(prior_means.values())
    ax.hist(values, bins=30, label=list(prior_means), alpha=0.7, histtype="stepfilled", stacked=False)
    ax.axvline(observed, color="k", linestyle="--", label="observed")
    what = "share of y = 1" if binary else "mean of y"
    ax.set(xlabel=f"{what} in a data set drawn from the prior", ylabel="data sets",
           title="Prior predictive check")  # fmt: skip
    ax.legend(loc="best")
    return fig
