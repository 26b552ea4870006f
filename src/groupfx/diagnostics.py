"""Sampler diagnostics: R-hat, effective sample size and divergences, checked against thresholds."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import arviz as az
import numpy as np
import pandas as pd

from groupfx.errors import DiagnosticWarning

RHAT_MAX = 1.01
ESS_MIN = 400


@dataclass(frozen=True)
class DiagnosticIssue:
    """One diagnostic outside its threshold.

    Attributes
    ----------
    model : str
        Model label.
    parameter : str
        Parameter (with its element, e.g. ``a[3]``), or ``"sampler"`` for divergences.
    kind : str
        ``"r_hat"``, ``"ess_bulk"``, ``"ess_tail"`` or ``"divergences"``.
    value : float
        The measured value.
    threshold : float
        The threshold it crossed.
    """

    model: str
    parameter: str
    kind: str
    value: float
    threshold: float

    @property
    def message(self) -> str:
        """One line that names the model, the parameter and the fix to try."""
        if self.kind == "divergences":
            return (
                f"{self.model}: {int(self.value)} divergent transitions; raise target_accept or"
                " tighten the priors, and read the estimates with care."
            )
        if self.kind == "r_hat":
            return (
                f"{self.model}: R-hat of {self.parameter} is {self.value:.3f} (> {self.threshold});"
                " the chains disagree: run more tuning or check identification."
            )
        return (
            f"{self.model}: {self.kind.removeprefix('ess_')} ESS of {self.parameter} is {self.value:.0f}"
            f" (< {self.threshold:.0f}); run more draws before trusting its tails."
        )


def parameter_diagnostics(idata: az.InferenceData, var_names: list[str] | None = None) -> pd.DataFrame:
    """R-hat, bulk and tail ESS of every parameter element, one row each (index like ``a[3]``)."""
    posterior = idata.posterior if var_names is None else idata.posterior[var_names]
    rhat = az.rhat(posterior)
    ess_bulk = az.ess(posterior, method="bulk")
    ess_tail = az.ess(posterior, method="tail")
    rows = []
    for name in posterior.data_vars:
        flat = {
            k: np.atleast_1d(v[name].to_numpy()).ravel()
            for k, v in (("r_hat", rhat), ("ess_bulk", ess_bulk), ("ess_tail", ess_tail))
        }
        extra_dims = posterior[name].dims[2:]
        if extra_dims:
            labels = (
                [str(c) for c in posterior[name][extra_dims[0]].to_numpy()]
                if len(extra_dims) == 1
                else [str(i) for i in range(flat["r_hat"].size)]
            )
            index = [f"{name}[{label}]" for label in labels]
        else:
            index = [name]
        rows.append(pd.DataFrame(flat, index=index))
    return pd.concat(rows)


def find_issues(
    idata: az.InferenceData,
    model_label: str,
    *,
    rhat_max: float = RHAT_MAX,
    ess_min: float = ESS_MIN,
) -> list[DiagnosticIssue]:
    """Every diagnostic of a fit outside its threshold.

    Parameters
    ----------
    idata : arviz.InferenceData
        A fit's draws with ``sample_stats.diverging``.
    model_label : str
        Name used in the messages.
    rhat_max, ess_min : float
        Thresholds (defaults 1.01 and 400).
    """
    issues = []
    divergences = int(idata.sample_stats["diverging"].sum()) if "diverging" in idata.sample_stats else 0
    if divergences:
        issues.append(DiagnosticIssue(model_label, "sampler", "divergences", divergences, 0))
    table = parameter_diagnostics(idata)
    for parameter, row in table.iterrows():
        if not np.isfinite(row.r_hat) or row.r_hat > rhat_max:
            issues.append(DiagnosticIssue(model_label, str(parameter), "r_hat", float(row.r_hat), rhat_max))
        for kind in ("ess_bulk", "ess_tail"):
            if row[kind] < ess_min:
                issues.append(DiagnosticIssue(model_label, str(parameter), kind, float(row[kind]), ess_min))
    return issues


_KIND_TEXT = {"r_hat": "R-hat > {t}", "ess_bulk": "bulk ESS < {t:.0f}", "ess_tail": "tail ESS < {t:.0f}"}


def condense(issues: list[DiagnosticIssue]) -> list[str]:
    """One line per model and kind of issue: the issue itself, or a count with the worst parameter."""
    groups: dict[tuple[str, str], list[DiagnosticIssue]] = {}
    for issue in issues:
        groups.setdefault((issue.model, issue.kind), []).append(issue)
    lines = []
    for (model, kind), members in groups.items():
        if len(members) == 1:
            lines.append(members[0].message)
            continue
        worst = (
            max(members, key=lambda i: i.value) if kind == "r_hat" else min(members, key=lambda i: i.value)
        )
        lines.append(
            f"{model}: {_KIND_TEXT[kind].format(t=worst.threshold)} for {len(members)} parameters; worst: "
            + worst.message.split(": ", 1)[1]
        )
    return lines


def warn_issues(issues: list[DiagnosticIssue]) -> None:
    """Emit a :class:`~groupfx.errors.DiagnosticWarning` per model and kind of issue."""
    for line in condense(issues):
        warnings.warn(line, DiagnosticWarning, stacklevel=3)
