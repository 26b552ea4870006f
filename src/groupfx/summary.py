"""The short summary printed on the terminal at the end of a run."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
from rich.table import Table

from groupfx.results import Fit


def summary_table(
    fits: Mapping[str, Fit],
    estimates: pd.DataFrame,
    comparison: pd.DataFrame,
    truth: Mapping[str, float] | None = None,
) -> Table:
    """One row per model: bxy and bzy with their 94% HDI, LOO rank and diagnostics."""
    title = "Estimates (mean [94% HDI])"
    if truth:
        title += "  truth: " + ", ".join(f"{k} = {truth[k]:g}" for k in ("bxy", "bzy") if k in truth)
    table = Table(title=title)
    for column in ("model", "bxy", "94% HDI", "bzy", "94% HDI ", "LOO", "diagnostics"):
        table.add_column(column, justify="left" if column == "model" else "right", no_wrap=True)
    for fit in fits.values():
        rows = estimates[estimates["model"] == fit.label].set_index("parameter")
        cells = []
        for param in ("bxy", "bzy"):
            r = rows.loc[param]
            mark = "" if pd.isna(r["covers_truth"]) else (" ✓" if r["covers_truth"] else " ✗")
            note = "*" if not r["identified"] else ""
            cells += [f"{r['mean']:.2f}{note}", f"[{r['hdi_low']:.2f}, {r['hdi_high']:.2f}]{mark}"]
        rank = int(comparison.loc[fit.label, "rank"]) + 1
        diagnostics = "ok" if not fit.issues else f"[yellow]{len(fit.issues)} issues[/yellow]"
        table.add_row(fit.label, *cells, str(rank), diagnostics)
    notes = ["LOO: rank by PSIS-LOO (1 = best)"]
    if truth:
        notes.append("✓/✗: the HDI covers the truth or not")
    if any(not identified for identified in estimates["identified"]):
        notes.append("*: not identified by the data")
    table.caption = "; ".join(notes)
    return table
