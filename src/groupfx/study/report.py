"""The study's report: figures of bias, coverage, interval width and LOO wins, and one HTML page."""

from __future__ import annotations

import html
import shutil
from collections.abc import Mapping, Sequence
from importlib.metadata import version
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from groupfx.report.html import EmbeddedImage
from groupfx.report.plots import STYLE, save_figure
from groupfx.results.fits import HDI_PROB
from groupfx.study.scenarios import Scenario
from groupfx.study.summary import TWO_WAY_LABEL, summarise_study
from groupfx.study.tasks import StudySettings
from groupfx.util.files import atomic_directory, atomic_path, output_kind


def _panel_grid(scenarios: Sequence[str], fits: int = 5) -> tuple[Figure, np.ndarray]:
    """Panels for the scenarios, two a row, tall enough for ``fits`` labelled rows each."""
    columns = min(2, len(scenarios))
    rows = int(np.ceil(len(scenarios) / columns))
    height = 3.2 * max(1.0, fits / 6)
    fig, axes = plt.subplots(rows, columns, figsize=(6.5 * columns, height * rows + 0.6), squeeze=False,
                             layout="constrained")  # fmt: skip
    for ax in axes.ravel()[len(scenarios) :]:
        ax.set_visible(False)
    return fig, axes.ravel()


def plot_metric(
    summary: pd.DataFrame, metric: str, parameter: str = "bxy", reference: float | None = None
) -> Figure:
    """One panel per scenario: ``metric`` of ``parameter`` per model, with Monte-Carlo error bars.

    Parameters
    ----------
    summary : pandas.DataFrame
        The table of :func:`groupfx.study.summary.summarise_study`.
    metric : str
        ``bias``, ``coverage``, ``width``, ``rmse`` or ``loo_win_rate``; bias and coverage get +-2
        Monte-Carlo standard errors.
    parameter : str
        The effect (``bxy`` or ``bzy``).
    reference : float, optional
        A vertical reference line (0 for bias, the nominal 0.94 for coverage).
    """
    titles = {"bias": "bias", "coverage": f"coverage of the {HDI_PROB:.0%} HDI", "width": "mean HDI width",
              "rmse": "RMSE", "loo_win_rate": "share of replicates LOO ranks first"}  # fmt: skip
    table = summary[summary["parameter"] == parameter] if metric != "loo_win_rate" else summary
    table = table.drop_duplicates(["scenario", "model"])
    scenarios = list(dict.fromkeys(table["scenario"]))
    with plt.style.context(STYLE):
        per_scenario = table.groupby("scenario").size()
        fig, axes = _panel_grid(scenarios, int(per_scenario.max()) if len(per_scenario) else 5)
        for ax, scenario in zip(axes, scenarios, strict=False):
            rows = table[table["scenario"] == scenario]
            position = np.arange(len(rows))[::-1]
            value = rows[metric].to_numpy(dtype=float)
            error = rows.get(f"{metric}_se")
            xerr = None
            if error is not None:
                low, high = value - 2 * error.to_numpy(dtype=float), value + 2 * error.to_numpy(dtype=float)
                if metric == "coverage":  # a share: the bars stop at 0 and 1
                    low, high = np.clip(low, 0, 1), np.clip(high, 0, 1)
                xerr = np.vstack([value - low, high - value])
            two_way = rows["two_way"].eq(True).to_numpy() if "two_way" in rows else np.zeros(len(rows), bool)
            for fits, color in ((~two_way, "C0"), (two_way, "C1")):  # two-way fits in a colour of their own
                if fits.any():
                    ax.errorbar(value[fits], position[fits], xerr=None if xerr is None else xerr[:, fits],
                                fmt="o", color=color, capsize=4)  # fmt: skip
            ax.set_yticks(position, rows["model"])
            if reference is not None:
                ax.axvline(reference, color="k", linestyle="--", linewidth=1)
            ax.set_title(scenario, fontsize=12)
        label = titles[metric] + ("" if metric == "loo_win_rate" else f" of {parameter}")
        fig.suptitle(label + (" (error bars: ±2 Monte-Carlo se)" if metric in ("bias", "coverage") else ""))
        fig.draw_without_rendering()
    return fig


def remove_stale_figures(out_dir: str | Path) -> list[Path]:
    """Remove the temporary figures folders a killed report left inside a study folder groupfx made.

    Everything in a marked study folder is groupfx's (and a running study holds its lock), so a
    ``.figures.*.tmp`` folder there is a leftover; in any other folder nothing is touched.
    """
    out_dir = Path(out_dir)
    if output_kind(out_dir) != "study":
        return []
    stale = [p for p in out_dir.glob(".figures.*.tmp") if p.is_dir() and not p.is_symlink()]
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return stale


def write_study_report(
    results: pd.DataFrame,
    scenarios: Sequence[Scenario],
    settings: StudySettings,
    out_dir: str | Path,
    timings: Mapping[str, float] | None = None,
) -> Path:
    """Write ``summary.csv``, ``results.csv``, ``figures/`` and ``report.html`` into ``out_dir``.

    The figures folder is replaced as a whole and each file atomically, so a reader never sees a mix.

    Returns
    -------
    pathlib.Path
        The report.
    """
    out_dir = Path(out_dir)
    summary = summarise_study(results)
    with atomic_path(out_dir / "summary.csv") as tmp:
        summary.to_csv(tmp, index=False)
    with atomic_path(out_dir / "results.csv") as tmp:
        results.to_csv(tmp, index=False)
    figures = {
        "bias_bxy": ("bias", "bxy", 0.0),
        "coverage_bxy": ("coverage", "bxy", HDI_PROB),
        "width_bxy": ("width", "bxy", None),
        "bias_bzy": ("bias", "bzy", 0.0),
        "coverage_bzy": ("coverage", "bzy", HDI_PROB),
        "loo_wins": ("loo_win_rate", "bxy", None),
    }
    images = {}
    remove_stale_figures(out_dir)
    with atomic_directory(out_dir / "figures") as tmp:
        for key, (metric, parameter, reference) in figures.items():
            path = save_figure(plot_metric(summary, metric, parameter, reference), tmp / f"{key}.png")
            images[key] = EmbeddedImage.from_file(path, key.replace("_", " "))
    page = _page(summary, results, scenarios, settings, images, timings or {})
    with atomic_path(out_dir / "report.html") as tmp:
        tmp.write_text(page, encoding="utf-8")
    return out_dir / "report.html"


def _page(summary, results, scenarios, settings, images, timings) -> str:
    table = summary.copy()
    shown = table.drop(columns=["truth", "two_way"]).to_html(
        index=False, float_format=lambda v: f"{v:.3f}", na_rep="", border=0
    )
    failures = results[results["status"] != "ok"].drop_duplicates(["scenario", "replicate", "model"])
    failed_html = (
        "<p>Every fit succeeded.</p>"
        if failures.empty
        else failures[["scenario", "replicate", "model", "reason"]].to_html(index=False, border=0)
    )
    scenario_items = "".join(
        f"<li><b>{html.escape(s.name)}</b>: {s.n_groups} groups, {s.n_units} units ({s.sizes} sizes), "
        f"a0 = {s.a0:g}, bxy = {s.bxy:g}, bzy = {s.bzy:g}, U sd {s.u_sd:g}, U → x {s.ux:g}, {s.family}"
        + (
            f"; {s.n_periods} periods, period shock V sd {s.time_sd:g}, V → x {s.bvx:g}, V → y {s.bvy:g}"
            if s.two_way
            else ""
        )
        + f". {html.escape(s.description)}</li>"
        for s in scenarios
    )
    two_way_text = (
        " In a scenario with periods each strategy is fitted to every replicate twice: one-way (the periods"
        f" ignored) and two-way (<i>{html.escape(TWO_WAY_LABEL.strip())}</i>: period terms beside the"
        " group's: free period intercepts, crossed pooled intercepts, the period means of x or a latent"
        " period shift); the naive regression ignores both factors and is fitted once. A period shock that"
        " drives x and y biases every one-way fit, within groups too."
        if any(s.two_way for s in scenarios)
        else ""
    )
    figure_html = "".join(
        f'<img src="{image.uri}" alt="{html.escape(image.alt)}">' for image in images.values()
    )
    timing_text = ", ".join(f"{k} {v:.0f} s" for k, v in timings.items())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>groupfx recovery study</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;line-height:1.45}}
img{{max-width:100%}} table{{border-collapse:collapse;font-size:0.85em}}
td,th{{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}}</style></head><body>
<h1>groupfx recovery study</h1>
<p>{settings.replicates} replicates of each scenario; models {", ".join(settings.models)}; each fit
{settings.chains} chains x ({settings.tune} tuning + {settings.draws} draws) with nutpie,
seed {settings.seed}.
{html.escape(timing_text)}</p>
<h2>Scenarios</h2><ul>{scenario_items}</ul>
<h2>What each strategy delivers</h2>
<p>Bias is the mean of posterior mean minus truth; coverage the share of replicates whose {HDI_PROB:.0%} HDI
holds the truth (nominal {HDI_PROB:.0%}); width the mean HDI width; the LOO win rate the share of
replicates in which PSIS-LOO ranks the model first. <i>_se</i> columns are Monte-Carlo standard errors.
Under fixed effects, bzy is not identified (z is constant within groups): its interval is mostly prior.
{two_way_text}</p>
{figure_html}
{shown}
<h2>Failed fits</h2>{failed_html}
<p style="color:#777">groupfx {version("groupfx")}</p>
</body></html>
"""
