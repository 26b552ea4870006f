"""The short summary printed on the terminal at the end of a run."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
from rich.markup import escape
from rich.table import Table

from groupfx.results.fits import Fit, as_fit_list, effect_label, effect_terms, truth_of


def summary_table(
    fits: Mapping[str, Fit],
    estimates: pd.DataFrame,
    comparison: pd.DataFrame | None,
    truth: Mapping[str, float] | None = None,
) -> Table:
    """One row per model: each effect with its 94% HDI (the x effects, and the z effects when there are
    at most four effects in all), LOO rank and diagnostics.

    With one model there is nothing to rank, so the LOO column is left out (and ``comparison`` may be
    None).
    """
    fits = as_fit_list(fits, "summary_table")
    ranked = len(fits) > 1
    first = fits[0]
    terms = effect_terms(first.data)
    if len(terms) > 4:
        terms = [(p, t) for p, t in terms if p == "bxy"]
    title = "Estimates (mean [94% HDI])"
    known = [(effect_label(p, t, first.data), truth_of(truth, p, t)) for p, t in terms]
    if any(value is not None for _, value in known):
        title += "  truth: " + ", ".join(f"{name} = {value:g}" for name, value in known if value is not None)
    table = Table(title=escape(title))
    table.add_column("model", justify="left", no_wrap=True)
    for name, _ in known:
        table.add_column(escape(name), justify="right", no_wrap=True)
        table.add_column("94% HDI", justify="right", no_wrap=True)
    if ranked:
        table.add_column("LOO", justify="right", no_wrap=True)
    table.add_column("diagnostics", justify="right", no_wrap=True)
    for fit in fits:
        rows = estimates[estimates["model"] == fit.label].set_index(["parameter", "term"])
        cells = []
        for key in terms:
            r = rows.loc[key]
            mark = "" if pd.isna(r["covers_truth"]) else (" ✓" if r["covers_truth"] else " ✗")
            note = "*" if not r["identified"] else ""
            cells += [f"{r['mean']:.2f}{note}", escape(f"[{r['hdi_low']:.2f}, {r['hdi_high']:.2f}]{mark}")]
        rank = [str(int(comparison.loc[fit.label, "rank"]) + 1)] if ranked else []
        diagnostics = "ok" if not fit.issues else f"[yellow]{len(fit.issues)} issues[/yellow]"
        table.add_row(fit.label, *cells, *rank, diagnostics)
    notes = ["LOO: rank by PSIS-LOO (1 = best)"] if ranked else []
    if truth:
        notes.append("✓/✗: the HDI covers the truth or not")
    if any(not identified for identified in estimates["identified"]):
        notes.append("*: not identified by the data")
    table.caption = "; ".join(notes) or None
    return table
