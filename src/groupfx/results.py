"""What a fit returns, and the tables made from several fits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import arviz as az
import pandas as pd

from groupfx.data import GroupedData
from groupfx.diagnostics import DiagnosticIssue, parameter_diagnostics
from groupfx.files import atomic_path
from groupfx.models import ModelSpec, build_model, get_spec
from groupfx.priors import Prior
from groupfx.sampling import SamplerSettings

HDI_PROB = 0.94
ESTIMATE_COLUMNS = (
    "model",
    "parameter",
    "mean",
    "sd",
    "hdi_low",
    "hdi_high",
    "truth",
    "covers_truth",
    "r_hat",
    "ess_bulk",
    "ess_tail",
    "identified",
)
"""Columns of the estimates table (``estimates.csv``), in order."""
EFFECTS = ("bxy", "bzy")
"""The causal parameters every model shares: the effect of x and of z on y, on the family's link scale."""


@dataclass
class Fit:
    """One strategy fitted to one data set.

    Attributes
    ----------
    model : str
        Registry name of the strategy (``naive``, ``fixed``, ...).
    idata : arviz.InferenceData
        Posterior and sampler statistics (no per-unit draws).
    data : GroupedData
        The data it was fitted to.
    settings : SamplerSettings
        How it was sampled.
    priors : dict of str to Prior
        The priors in force.
    seed : int
        The sampler seed this model used.
    loo : arviz.ELPDData
        PSIS-LOO of the outcome.
    issues : list of DiagnosticIssue
        Diagnostics outside their thresholds.
    timings : dict of str to float
        Seconds spent compiling, sampling and computing LOO.
    family : str
        The outcome family.
    """

    model: str
    idata: az.InferenceData
    data: GroupedData
    settings: SamplerSettings
    priors: dict[str, Prior]
    seed: int
    loo: az.ELPDData
    issues: list[DiagnosticIssue] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    family: str = "bernoulli"

    @property
    def spec(self) -> ModelSpec:
        """The strategy's registry entry."""
        return get_spec(self.model)

    @property
    def label(self) -> str:
        """Human name of the strategy."""
        return self.spec.label

    @property
    def divergences(self) -> int:
        """Divergent transitions after warm-up."""
        return int(self.idata.sample_stats["diverging"].sum())

    def pymc_model(self):
        """Rebuild the PyMC model (for its graph or further computation)."""
        return build_model(self.model, self.data, self.priors, self.family)

    def summary(self, var_names: Sequence[str] | None = None, hdi_prob: float = HDI_PROB) -> pd.DataFrame:
        """Posterior mean, sd, HDI, R-hat and ESS of the scalar parameters (or ``var_names``)."""
        names = list(var_names) if var_names is not None else scalar_parameters(self.idata)
        posterior = self.idata.posterior[names]
        stacked = posterior.stack(sample=("chain", "draw"))
        hdi = az.hdi(posterior, hdi_prob=hdi_prob)
        diag = parameter_diagnostics(self.idata, names)
        rows = []
        for name in names:
            rows.append(
                {
                    "parameter": name,
                    "mean": float(stacked[name].mean()),
                    "sd": float(stacked[name].std(ddof=1)),
                    "hdi_low": float(hdi[name].sel(hdi="lower")),
                    "hdi_high": float(hdi[name].sel(hdi="higher")),
                    "r_hat": float(diag.loc[name, "r_hat"]),
                    "ess_bulk": float(diag.loc[name, "ess_bulk"]),
                    "ess_tail": float(diag.loc[name, "ess_tail"]),
                }
            )
        return pd.DataFrame(rows).set_index("parameter")

    def to_netcdf(self, path: str | Path) -> Path:
        """Write the InferenceData (posterior, sampler statistics, observed y) atomically."""
        path = Path(path)
        with atomic_path(path) as tmp:
            self.idata.to_netcdf(str(tmp))
        return path


def scalar_parameters(idata: az.InferenceData) -> list[str]:
    """Names of the posterior variables with no dimension besides chain and draw."""
    return [name for name, var in idata.posterior.data_vars.items() if var.ndim == 2]


def estimates(
    fits: Mapping[str, Fit] | Sequence[Fit],
    truth: Mapping[str, float] | None = None,
    hdi_prob: float = HDI_PROB,
) -> pd.DataFrame:
    """One row per model and scalar parameter: estimate, interval, truth and diagnostics.

    Parameters
    ----------
    fits : mapping or sequence of Fit
        The fits, in the order the table should follow.
    truth : mapping of str to float, optional
        True values by parameter name (simulated data); ``covers_truth`` says whether the HDI holds it.
    hdi_prob : float
        Mass of the highest-density interval (default 0.94).

    Returns
    -------
    pandas.DataFrame
        Columns ``model, parameter, mean, sd, hdi_low, hdi_high, truth, covers_truth, r_hat, ess_bulk,
        ess_tail, identified``.
    """
    truth = {k: v for k, v in (truth or {}).items() if k in EFFECTS}
    frames = []
    for fit in _as_list(fits):
        table = fit.summary(hdi_prob=hdi_prob).reset_index()
        table.insert(0, "model", fit.label)
        table["truth"] = table["parameter"].map(truth).astype(float)
        covers = (table["hdi_low"] <= table["truth"]) & (table["truth"] <= table["hdi_high"])
        table["covers_truth"] = covers.where(table["truth"].notna()).astype("boolean")
        table["identified"] = ~table["parameter"].isin(list(fit.spec.not_identified))
        frames.append(table)
    return pd.concat(frames, ignore_index=True)[list(ESTIMATE_COLUMNS)]


def compare(fits: Mapping[str, Fit] | Sequence[Fit]) -> pd.DataFrame:
    """Rank the fits by PSIS-LOO of the outcome (ArviZ's ``compare`` table, best first)."""
    fits = _as_list(fits)
    if len(fits) < 2:
        raise ValueError("compare needs at least two fits.")
    table = az.compare({fit.label: fit.loo for fit in fits}, ic="loo")
    table.index.name = "model"
    return table


def _as_list(fits: Mapping[str, Fit] | Sequence[Fit]) -> list[Fit]:
    return list(fits.values()) if isinstance(fits, Mapping) else list(fits)


__all__ = ["Fit", "compare", "estimates", "mundlak_effects", "scalar_parameters"]


def mundlak_effects(fits: Mapping[str, Fit] | Sequence[Fit], hdi_prob: float = HDI_PROB) -> pd.DataFrame:
    """Within, contextual and between effects of x for the Mundlak models.

    In the Mundlak model ``bxy`` is the within-group effect, ``buy`` the contextual effect of the group
    mean of x and ``bxy + buy`` the between-group effect. In the latent model u is on its own scale: since
    the group mean of x is ``ax + bux u``, its contextual effect per unit of x is ``buy / bux``. Each is
    computed draw by draw.

    Returns
    -------
    pandas.DataFrame
        Columns ``model, effect, mean, sd, hdi_low, hdi_high``; empty when neither Mundlak model was fitted.
    """
    rows = []
    for fit in _as_list(fits):
        if fit.model not in ("mundlak", "latent"):
            continue
        post = fit.idata.posterior
        contextual = post["buy"] if fit.model == "mundlak" else post["buy"] / post["bux"]
        for effect, draws in (
            ("within", post["bxy"]),
            ("contextual", contextual),
            ("between", post["bxy"] + contextual),
        ):
            values = draws.to_numpy().ravel()
            low, high = az.hdi(values, hdi_prob=hdi_prob)
            rows.append(
                {
                    "model": fit.label,
                    "effect": effect,
                    "mean": values.mean(),
                    "sd": values.std(ddof=1),
                    "hdi_low": float(low),
                    "hdi_high": float(high),
                }
            )
    return pd.DataFrame(rows, columns=["model", "effect", "mean", "sd", "hdi_low", "hdi_high"])
