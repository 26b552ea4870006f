"""What a study measured, per scenario, model and effect: bias, RMSE, coverage, width, LOO wins.

Monte-Carlo standard errors come with the bias (sd of the errors / sqrt(R)) and the coverage
(sqrt(c (1 - c) / R)), so a reader can tell a real shortfall from replicate noise. Failed fits are
counted and left out of every other column. A strategy fitted both one-way and two-way (a scenario with
periods) has a row of each, the two-way one labelled e.g. ``Mundlak (two-way)``, and the two compete in the
LOO wins as two models (the same y, so their elpd compare).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from groupfx.models.builders import get_spec

TWO_WAY_LABEL = " (two-way)"
"""What a two-way fit's label adds to its strategy's, e.g. ``Mundlak (two-way)``."""

SUMMARY_COLUMNS = (
    "scenario",
    "model",
    "two_way",
    "parameter",
    "truth",
    "fits",
    "failed",
    "bias",
    "bias_se",
    "rmse",
    "coverage",
    "coverage_se",
    "width",
    "loo_win_rate",
    "max_r_hat",
    "sample_s",
)
"""Columns of the summary table (``summary.csv``), in order."""


def fit_label(model: str, two_way: bool) -> str:
    """The label of a strategy's fit in tables and figures: its own, with :data:`TWO_WAY_LABEL` if two-way."""
    return get_spec(model).label + (TWO_WAY_LABEL if two_way else "")


def _two_way(results: pd.DataFrame) -> pd.Series:
    """The ``two_way`` column (all false in rows made before two-way fits)."""
    if "two_way" not in results:
        return pd.Series(False, index=results.index)
    return results["two_way"].eq(True)


def loo_wins(results: pd.DataFrame) -> pd.Series:
    """Share of each scenario's replicates in which each fit had the highest elpd_loo, indexed by scenario
    and fit label (:func:`fit_label`: a two-way fit is a model of its own).

    Only replicates in which every fit succeeded are compared (elpd of one outcome is comparable
    across models of the same data).
    """
    labels = [fit_label(m, t) for m, t in zip(results["model"], _two_way(results), strict=True)]
    results = results.assign(model=labels)
    ok = results[(results["status"] == "ok") & (results["parameter"] == "bxy")]
    models_per_scenario = results.groupby("scenario")["model"].nunique()
    complete = ok.groupby(["scenario", "replicate"])["model"].transform("nunique") == ok["scenario"].map(
        models_per_scenario
    )
    ok = ok[complete]
    if ok.empty:
        return pd.Series(dtype=float, name="loo_win_rate")
    best = ok.loc[ok.groupby(["scenario", "replicate"])["elpd_loo"].idxmax(), ["scenario", "model"]]
    counts = best.value_counts()
    replicates = ok.groupby("scenario")["replicate"].nunique()
    index = pd.MultiIndex.from_frame(ok[["scenario", "model"]].drop_duplicates())
    wins = pd.Series([counts.get(key, 0) / replicates[key[0]] for key in index], index=index)
    return wins.rename("loo_win_rate")


def summarise_study(results: pd.DataFrame) -> pd.DataFrame:
    """One row per scenario, fit (model, one-way or two-way) and effect: the study's measurements (see
    :data:`SUMMARY_COLUMNS`; ``model`` is the fit's label, :func:`fit_label`)."""
    wins = loo_wins(results)
    results = results.assign(two_way=_two_way(results))
    rows = []
    for (scenario, model, two_way, parameter), group in results.groupby(
        ["scenario", "model", "two_way", "parameter"], sort=False
    ):
        label = fit_label(model, two_way)
        ok = group[group["status"] == "ok"]
        n = len(ok)
        error = ok["mean"] - ok["truth"]
        coverage = float(ok["covers"].astype(float).mean()) if n else np.nan
        rows.append(
            {
                "scenario": scenario,
                "model": label,
                "two_way": bool(two_way),
                "parameter": parameter,
                "truth": float(group["truth"].iloc[0]),
                "fits": n,
                "failed": int((group["status"] != "ok").sum()),
                "bias": float(error.mean()) if n else np.nan,
                "bias_se": float(error.std(ddof=1) / np.sqrt(n)) if n > 1 else np.nan,
                "rmse": float(np.sqrt((error**2).mean())) if n else np.nan,
                "coverage": coverage,
                "coverage_se": float(np.sqrt(coverage * (1 - coverage) / n)) if n else np.nan,
                "width": float((ok["hdi_high"] - ok["hdi_low"]).mean()) if n else np.nan,
                "loo_win_rate": float(wins.get((scenario, label), np.nan)),
                "max_r_hat": float(ok["r_hat"].max()) if n else np.nan,
                "sample_s": float(ok["sample_s"].mean()) if n else np.nan,
            }
        )
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
