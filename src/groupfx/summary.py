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
    for column in ("model", "bxy", "bzy", "LOO rank", "diagnostics"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for fit in fits.values():
        rows = estimates[estimates["model"] == fit.label].set_index("parameter")
        cells = []
        for param in ("bxy", "bzy"):
            r = rows.loc[param]
            mark = "" if pd.isna(r["covers_truth"]) else (" ✓" if r["covers_truth"] else " ✗")
            note = " (not identified)" if not r["identified"] else ""
            cells.append(f"{r['mean']:+.2f} [{r['hdi_low']:+.2f}, {r['hdi_high']:+.2f}]{mark}{note}")
        rank = int(comparison.loc[fit.label, "rank"]) + 1
        diagnostics = "ok" if not fit.issues else f"[yellow]{len(fit.issues)} warning(s)[/yellow]"
        table.add_row(fit.label, *cells, str(rank), diagnostics)
    return table
