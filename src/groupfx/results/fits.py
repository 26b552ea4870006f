"""What a fit returns, the dict of fits :func:`groupfx.fit_all` returns, and the tables made from fits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from html import escape
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd

from groupfx.data.grouped import GroupedData
from groupfx.engines.diagnostics import DiagnosticIssue, parameter_diagnostics
from groupfx.engines.sampling import SamplerSettings
from groupfx.errors import InputError
from groupfx.inference.engine import Engine, choose_engine
from groupfx.loo import subsample
from groupfx.models.builders import ModelSpec, build_model, get_spec
from groupfx.models.priors import Prior
from groupfx.util.files import atomic_path

HDI_PROB = 0.94
ESTIMATE_COLUMNS = (
    "model",
    "parameter",
    "term",
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
    "within_estimate",
)
"""Columns of the estimates table (``estimates.csv``), in order."""
EFFECTS = ("bxy", "bzy")
"""The causal parameters every model shares: the effect of each x and of each z on y, on the family's link
scale (``bzy`` only when there are group-level covariates)."""
SUMMARY_DIMS = {"x_var", "z_var", "x_other"}
"""Parameters with no dimension but these (one entry per covariate) are summarised like scalars."""


def effect_terms(data: GroupedData) -> list[tuple[str, str]]:
    """``(parameter, term)`` of every effect: ``("bxy", x)`` per x, then ``("bzy", z)`` per z."""
    return [("bxy", name) for name in data.x_names] + [("bzy", name) for name in data.z_names]


def effect_label(parameter: str, term: str, data: GroupedData) -> str:
    """``bxy`` with one x and ``bxy[married]`` with several: what figures and tables call an effect."""
    single = data.n_x == 1 if parameter == "bxy" else data.n_z == 1
    return parameter if single and term in ("x", "z") else f"{parameter}[{term}]"


def truth_of(truth: Mapping[str, float] | None, parameter: str, term: str) -> float | None:
    """The true value of ``parameter`` for covariate ``term``: ``truth["bxy[term]"]`` or ``truth["bxy"]``."""
    if not truth:
        return None
    value = truth.get(f"{parameter}[{term}]", truth.get(parameter))
    return None if value is None else float(value)


@dataclass(repr=False)
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

    def engine(self) -> Engine:
        """The engine :func:`~groupfx.inference.engine.choose_engine` picks for this fit (not compiled)."""
        return choose_engine(self.model, self.data, self.family, self.priors, self.settings)

    @cached_property
    def expected_outcome(self):
        """The expected outcome over draws (:class:`~groupfx.engines.expected.ExpectedOutcome`), made once by
        the fit's engine: in closed form where the fused kernel expresses the model, else compiled from the
        PyMC model."""
        return self.engine().expected_outcome()

    def summary(self, var_names: Sequence[str] | None = None, hdi_prob: float = HDI_PROB) -> pd.DataFrame:
        """Posterior mean, sd, HDI, R-hat and ESS of the summary parameters (or ``var_names``).

        One row per parameter and covariate (``term``: the x or z it belongs to, empty for scalars), indexed
        by ``parameter``.
        """
        names = list(var_names) if var_names is not None else scalar_parameters(self.idata)
        return summary_table(self.idata, names, hdi_prob)

    def __getstate__(self) -> dict:
        # the expected outcome is a compiled function made on demand: rebuilt after unpickling, not sent
        state = dict(self.__dict__)
        state.pop("expected_outcome", None)
        return state

    def to_netcdf(self, path: str | Path) -> Path:
        """Write the InferenceData (posterior, sampler statistics, observed y) atomically."""
        path = Path(path)
        with atomic_path(path) as tmp:
            self.idata.to_netcdf(str(tmp))
        return path

    def describe(self, hdi_prob: float = HDI_PROB) -> str:
        """One line saying what this fit is: model, family, data size, draws, each ``bxy`` with its HDI.

        Examples
        --------
        >>> result.describe()  # doctest: +SKIP
        'Mundlak (mundlak), bernoulli, 2000 units in 30 groups, 4 x 1000 draws, bxy = 0.03 [-0.11, 0.16], ...'
        """
        posterior = self.idata.posterior
        bxy = posterior["bxy"]
        effects = []
        for term in self.data.x_names:
            values = bxy.sel(x_var=term).to_numpy().ravel()
            low, high = az.hdi(values, hdi_prob=hdi_prob)
            effects.append(
                f"{effect_label('bxy', term, self.data)} = {values.mean():.2f} [{low:.2f}, {high:.2f}]"
            )
        issues = len(self.issues)
        return (
            f"{self.label} ({self.model}), {self.family}, {self.data.size_text},"
            f" {posterior.sizes['chain']} x {posterior.sizes['draw']} draws, {', '.join(effects)},"
            f" {issues} issue{'' if issues == 1 else 's'}"
        )

    def __repr__(self) -> str:
        return f"<Fit {self.describe()}>"

    def _repr_html_(self) -> str:
        """Jupyter's view: the one-line description above the summary table."""
        return f"<p><b>Fit</b>: {escape(self.describe())}</p>\n{_html_table(self.summary())}"


class Fits(dict):
    """The fits of :func:`groupfx.fit_all`: a dict of :class:`Fit` keyed by registry name, in the order asked.

    It is an ordinary dict (``fits["mundlak"]``, ``list(fits)``, picklable) that also shows itself briefly:
    its ``repr`` is one line, and in Jupyter it shows the estimates table and, with several fits, the
    PSIS-LOO comparison.
    """

    def describe(self) -> str:
        """One line: how many models, which, the family and the data size."""
        if not self:
            return "no models"
        first = next(iter(self.values()))
        count = len(self)
        return (
            f"{count} model{'' if count == 1 else 's'} ({', '.join(self)}), {first.family},"
            f" {first.data.size_text}"
        )

    def __repr__(self) -> str:
        return f"<Fits: {self.describe()}>"

    def _repr_html_(self) -> str:
        """Jupyter's view: the estimates of every fit, and the PSIS-LOO comparison when there are several."""
        heading = f"<p><b>Fits</b>: {escape(self.describe())}</p>"
        if not self:
            return heading
        table = estimates(self).drop(columns=["truth", "covers_truth", "within_estimate"])
        parts = [heading, _html_table(table.set_index(["model", "parameter", "term"]))]
        if len(self) > 1:
            parts += ["<p>PSIS-LOO comparison (best first)</p>", _html_table(compare(self))]
        return "\n".join(parts)


def _html_table(frame: pd.DataFrame) -> str:
    return frame.to_html(float_format=lambda v: f"{v:.3f}", na_rep="", border=0)


def as_fit_list(fits: Fit | Mapping[str, Fit] | Sequence[Fit], what: str = "this function") -> list[Fit]:
    """The fits as a list, from one :class:`Fit`, a sequence of them or a mapping (such as :class:`Fits`).

    Parameters
    ----------
    fits : Fit, sequence of Fit or mapping of str to Fit
        What the caller was given.
    what : str
        Who asks, for the error message (``"compare"``, ``"plot_forest"``...).

    Returns
    -------
    list of Fit
        In the given order; never empty.

    Raises
    ------
    InputError
        When there is no fit, or something in place of a fit is not one.
    """
    if isinstance(fits, Fit):
        return [fits]
    if isinstance(fits, Mapping):
        items = list(fits.values())
    elif isinstance(fits, Sequence) and not isinstance(fits, str):
        items = list(fits)
    else:
        raise InputError(
            f"{what} takes a Fit, a list of fits or the dict of groupfx.fit_all (got {type(fits).__name__})."
        )
    if not items:
        raise InputError(
            f"{what} needs at least one fit (got none); fit a model with groupfx.fit or fit_all."
        )
    strangers = [type(item).__name__ for item in items if not isinstance(item, Fit)]
    if strangers:
        raise InputError(
            f"{what} takes fits made by groupfx.fit or fit_all (got a {strangers[0]} among them)."
        )
    return items


def summary_table(idata: az.InferenceData, names: Sequence[str], hdi_prob: float = HDI_PROB) -> pd.DataFrame:
    """Posterior mean, sd, HDI, R-hat and ESS of the parameters ``names`` of ``idata``.

    One row per parameter and covariate (``term``: the x or z it belongs to, empty for scalars), indexed by
    ``parameter``: :meth:`Fit.summary`'s table, and the study's rows per effect.
    """
    names = list(names)
    posterior = idata.posterior[names]
    hdi = az.hdi(posterior, hdi_prob=hdi_prob)
    diag = parameter_diagnostics(idata, names)
    rows = []
    for name in names:
        draws = posterior[name]
        dims = [d for d in draws.dims if d not in ("chain", "draw")]
        terms = [""] if not dims else [str(t) for t in draws[dims[0]].to_numpy()]
        for position, term in enumerate(terms):
            selection = {dims[0]: position} if dims else {}
            values = draws.isel(selection).to_numpy().ravel()
            interval = hdi[name].isel(selection)
            label = f"{name}[{term}]" if dims else name
            rows.append(
                {
                    "parameter": name,
                    "term": term,
                    "mean": float(values.mean()),
                    "sd": float(values.std(ddof=1)),
                    "hdi_low": float(interval.sel(hdi="lower")),
                    "hdi_high": float(interval.sel(hdi="higher")),
                    "r_hat": float(diag.loc[label, "r_hat"]),
                    "ess_bulk": float(diag.loc[label, "ess_bulk"]),
                    "ess_tail": float(diag.loc[label, "ess_tail"]),
                }
            )
    return pd.DataFrame(rows).set_index("parameter")


def scalar_parameters(idata: az.InferenceData) -> list[str]:
    """Posterior variables with no dimension besides chain, draw and at most one covariate dimension."""
    return [
        name
        for name, var in idata.posterior.data_vars.items()
        if var.ndim == 2 or (var.ndim == 3 and var.dims[2] in SUMMARY_DIMS)
    ]


def estimates(
    fits: Fit | Mapping[str, Fit] | Sequence[Fit],
    truth: Mapping[str, float] | None = None,
    hdi_prob: float = HDI_PROB,
    within: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per model and scalar parameter: estimate, interval, truth and diagnostics.

    Parameters
    ----------
    fits : Fit, sequence of Fit or mapping of str to Fit
        The fits, in the order the table should follow (at least one).
    truth : mapping of str to float, optional
        True values of the effects by parameter name (``bxy``, ``bzy``) or by parameter and covariate
        (``bxy[married]``) (simulated data); ``covers_truth`` says whether the HDI holds it.
    hdi_prob : float
        Mass of the highest-density interval (default 0.94).
    within : pandas.DataFrame, optional
        The frequentist within estimates of :func:`groupfx.results.crosscheck.within_estimate`; their estimate
        of each x fills ``within_estimate`` on the ``bxy`` rows (NaN elsewhere).

    Returns
    -------
    pandas.DataFrame
        Columns ``model, parameter, term, mean, sd, hdi_low, hdi_high, truth, covers_truth, r_hat,
        ess_bulk, ess_tail, identified, within_estimate``; ``term`` names the x or z of a per-covariate
        parameter.
    """
    frames = []
    for fit in as_fit_list(fits, "estimates"):
        table = fit.summary(hdi_prob=hdi_prob).reset_index()
        table.insert(0, "model", fit.label)
        table["truth"] = [
            truth_of(truth, p, t) if p in EFFECTS else None
            for p, t in zip(table["parameter"], table["term"], strict=True)
        ]
        table["truth"] = table["truth"].astype(float)
        covers = (table["hdi_low"] <= table["truth"]) & (table["truth"] <= table["hdi_high"])
        table["covers_truth"] = covers.where(table["truth"].notna()).astype("boolean")
        table["identified"] = ~table["parameter"].isin(list(fit.spec.not_identified))
        cross = {} if within is None else dict(zip(within["term"], within["estimate"], strict=True))
        table["within_estimate"] = [
            cross.get(t, np.nan) if p == "bxy" else np.nan
            for p, t in zip(table["parameter"], table["term"], strict=True)
        ]
        frames.append(table)
    return pd.concat(frames, ignore_index=True)[list(ESTIMATE_COLUMNS)]


SINGLE_COMPARE_COLUMNS = ("rank", "elpd_loo", "p_loo", "weight", "se", "scale")
"""Columns of :func:`compare` for one fit: nothing it could be compared with is reported."""


def compare(fits: Fit | Mapping[str, Fit] | Sequence[Fit]) -> pd.DataFrame:
    """Rank the fits by PSIS-LOO of the outcome, best first.

    Parameters
    ----------
    fits : Fit, sequence of Fit or mapping of str to Fit
        One fit or several.

    Returns
    -------
    pandas.DataFrame
        Indexed by model label. With several fits, ArviZ's ``compare`` table (``rank, elpd_loo, p_loo,
        elpd_diff, weight, se, dse, warning, scale``). With one fit, one row of
        :data:`SINGLE_COMPARE_COLUMNS`: its ``elpd_loo``, ``p_loo`` and ``se``, rank 0 and weight 1; the
        columns that only mean something against another model (``elpd_diff``, ``dse``) and ArviZ's
        ``warning`` flag are left out (the Pareto k of its observations are in ``fit.loo.pareto_k``).
        Where a fit was scored on a subsample of the units (large data, ``loo="auto"``), the table is
        :func:`groupfx.loo.subsample.compare_table`'s: the same columns, the differences estimated on the
        units every model shares, plus ``subsample_se``, ``subsample_dse`` and ``subsample`` (units
        smoothed exactly); a single subsampled fit's row adds ``subsample_se`` and ``subsample``.

    Raises
    ------
    InputError
        When there is no fit.
    """
    fits = as_fit_list(fits, "compare")
    if len(fits) == 1:
        (fit,) = fits
        row = {
            "rank": 0,
            "elpd_loo": float(fit.loo.elpd_loo),
            "p_loo": float(fit.loo.p_loo),
            "weight": 1.0,
            "se": float(fit.loo.se),
            "scale": str(fit.loo.scale),
        }
        columns = list(SINGLE_COMPARE_COLUMNS)
        if subsample.is_subsampled(fit.loo):
            row |= {"subsample_se": float(fit.loo.subsample_se), "subsample": subsample.n_subsample(fit.loo)}
            columns += ["subsample_se", "subsample"]
        return pd.DataFrame([row], index=pd.Index([fit.label], name="model"))[columns]
    elpds = {fit.label: fit.loo for fit in fits}
    if any(subsample.is_subsampled(elpd) for elpd in elpds.values()):
        return subsample.compare_table(elpds)
    table = az.compare(elpds, ic="loo")
    table.index.name = "model"
    return table


__all__ = [
    "Fit",
    "Fits",
    "as_fit_list",
    "compare",
    "effect_terms",
    "estimates",
    "mundlak_effects",
    "scalar_parameters",
]


def mundlak_effects(
    fits: Fit | Mapping[str, Fit] | Sequence[Fit], hdi_prob: float = HDI_PROB
) -> pd.DataFrame:
    """Within, contextual and between effects of each x for the Mundlak models.

    In the Mundlak model ``bxy`` is the within-group effect, ``buy`` the contextual effect of the group
    mean of x and ``bxy + buy`` the between-group effect. In the latent model u is on its own scale: since
    the group mean of x is ``ax + bux u``, its contextual effect per unit of x is ``buy / bux``. Each is
    computed draw by draw, per x, as each model's ``spec.contextual_effect`` says. (The shared-latent model
    has one u for all the x, so its contextual effect does not split by x and it is left out.)

    Returns
    -------
    pandas.DataFrame
        Columns ``model, term, effect, mean, sd, hdi_low, hdi_high``; empty when neither Mundlak model was
        fitted.
    """
    columns = ["model", "term", "effect", "mean", "sd", "hdi_low", "hdi_high"]
    rows = []
    for fit in as_fit_list(fits, "mundlak_effects"):
        how = fit.spec.contextual_effect
        if how is None:
            continue
        post = fit.idata.posterior
        contextual = post["buy"] if how == "buy" else post["buy"] / post["bux"]
        for term in fit.data.x_names:
            for effect, draws in (
                ("within", post["bxy"]),
                ("contextual", contextual),
                ("between", post["bxy"] + contextual),
            ):
                values = draws.sel(x_var=term).to_numpy().ravel()
                low, high = az.hdi(values, hdi_prob=hdi_prob)
                rows.append(
                    {
                        "model": fit.label,
                        "term": term,
                        "effect": effect,
                        "mean": values.mean(),
                        "sd": values.std(ddof=1),
                        "hdi_low": float(low),
                        "hdi_high": float(high),
                    }
                )
    return pd.DataFrame(rows, columns=columns)
