"""Fit diagnostics checked against thresholds: R-hat, effective sample size, divergences, Pareto k."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import arviz as az
import numpy as np
import pandas as pd

from groupfx.errors import DiagnosticWarning

RHAT_MAX = 1.01
ESS_MIN = 400
PARETO_K_MAX = 0.7
"""Pareto k above which PSIS-LOO is unreliable for a unit (Vehtari et al. 2024)."""


@dataclass(frozen=True)
class DiagnosticIssue:
    """One diagnostic outside its threshold.

    Attributes
    ----------
    model : str
        Model label.
    parameter : str
        Parameter (with its element, e.g. ``a[3]``), ``"sampler"`` for divergences, or ``"loo"`` for
        Pareto k.
    kind : str
        ``"r_hat"``, ``"ess_bulk"``, ``"ess_tail"``, ``"divergences"`` or ``"pareto_k"``.
    value : float
        The measured value (for ``"pareto_k"``: how many units have k above the threshold).
    threshold : float
        The threshold it crossed.
    out_of : int, optional
        For ``"pareto_k"``: the number of units whose k was computed.
    subsample_of : int, optional
        For ``"pareto_k"`` of a LOO on a subsample of the units: the number of units in the data.
    """

    model: str
    parameter: str
    kind: str
    value: float
    threshold: float
    out_of: int | None = None
    subsample_of: int | None = None

    @property
    def of_sampler(self) -> bool:
        """Whether the issue is the sampler's (R-hat, ESS, divergences) rather than LOO's (Pareto k)."""
        return self.kind != "pareto_k"

    @property
    def message(self) -> str:
        """One line that names the model, the parameter and the fix to try."""
        if self.kind == "divergences":
            return (
                f"{self.model}: {int(self.value)} divergent transitions; raise target_accept or"
                " tighten the priors, and read the estimates with care."
            )
        if self.kind == "pareto_k":
            n, one = int(self.value), int(self.value) == 1
            among = subsample_phrase(self.subsample_of)
            return (
                f"{self.model}: {n} of {self.out_of:,} units{among} {'has' if one else 'have'} Pareto k >"
                f" {self.threshold}: PSIS-LOO is unreliable for {'it' if one else 'them'} (influential units,"
                " often in small groups or groups whose y barely varies); its elpd and rank are approximate."
            )
        if self.kind == "r_hat":
            return (
                f"{self.model}: R-hat of {self.parameter} is {self.value:.3f} (> {self.threshold});"
                " the chains disagree: run more tuning or check identification."
            )
        trusted = "its tails (the HDI)" if self.kind == "ess_tail" else "its mean and sd"
        return (
            f"{self.model}: {self.kind.removeprefix('ess_')} ESS of {self.parameter} is {self.value:.0f}"
            f" (< {self.threshold:.0f}); run more draws before trusting {trusted}."
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


def subsample_phrase(n_units: int | None) -> str:
    """``" (a random subsample of the N)"`` after a count of units whose Pareto k covers a subsample of
    the ``n_units`` (empty where it covers them all: ``n_units`` None)."""
    return f" (a random subsample of the {n_units:,})" if n_units else ""


def pareto_k_issues(
    pareto_k: np.ndarray, model_label: str, *, k_max: float = PARETO_K_MAX, n_units: int | None = None
) -> list[DiagnosticIssue]:
    """The Pareto-k issue of a fit's PSIS-LOO: one, counting the units with k above ``k_max``, or none.

    Parameters
    ----------
    pareto_k : array-like
        Pareto k of each unit (``ELPDData.pareto_k``).
    model_label : str
        Name used in the message.
    k_max : float
        Threshold (default 0.7).
    n_units : int, optional
        Units in the data, where ``pareto_k`` covers a subsample of them (``ELPDData.n_data_points``).
    """
    k = np.asarray(pareto_k, dtype=float)
    bad = int((k > k_max).sum())
    subsample_of = n_units if n_units is not None and n_units > k.size else None
    return (
        [DiagnosticIssue(model_label, "loo", "pareto_k", bad, k_max, int(k.size), subsample_of)]
        if bad
        else []
    )


_KIND_TEXT = {"r_hat": "R-hat > {t}", "ess_bulk": "bulk ESS < {t:.0f}", "ess_tail": "tail ESS < {t:.0f}"}


def condense(issues: list[DiagnosticIssue]) -> list[str]:
    """One line per model and kind of issue: the issue itself, or a count with the worst parameter."""
    groups: dict[tuple[str, str], list[DiagnosticIssue]] = {}
    for issue in issues:
        groups.setdefault((issue.model, issue.kind), []).append(issue)
    lines = []
    for (model, kind), members in groups.items():
        if len(members) == 1 or kind not in _KIND_TEXT:  # divergences and Pareto k: one per fit
            lines.extend(member.message for member in members)
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
