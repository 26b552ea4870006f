"""PSIS-LOO on a subsample of the units, for data too large for every unit to pay for its smoothing.

Exact PSIS-LOO reads every draw of every unit's log-likelihood: at 100,000 units and 4,000 draws about
7 s on the 2 cores here, most of a naive model's 9 s of sampling. Magnusson, Andersen, Jonasson and
Vehtari (2019, "Bayesian leave-one-out cross-validation for large data", ICML; R's ``loo::loo_subsample``)
estimate the sum instead by a difference estimator: a cheap approximation ``a_i`` of every unit's
elpd_loo (here the log-likelihood at the posterior mean of the linear predictor, ``plpd``: one pass over
the units with one draw), plus the mean error of that approximation on a simple random sample of ``m``
units where PSIS runs exactly:

    elpd_hat = sum_i a_i + N mean_{j in S}(e_j - a_j)

unbiased whatever the approximation, with the subsampling variance ``N^2 (1 - m/N) var(e - a) / m`` and
an estimate of the usual standard error from the same subsample (:func:`difference_estimate`, the
estimators of ``loo``'s ``srs_diff_est``). Where the approximation is good (models with few parameters
beside many units: the naive model, the fixed slopes) a few thousand units give a subsampling error far
below one unit of elpd; where it is not (a group intercept per 100 units) the needed subsample grows
towards all units, and :func:`loo` then computes every unit exactly.

Every model fitted to the same data draws its subsample as a prefix of one permutation of the units
(:func:`subsample_order`, seeded by the number of units alone), so the units two models share are the
first ``min(m_a, m_b)`` and :func:`compare_table` estimates each difference from the same units: the
approximation errors of two similar models cancel there, as exact LOO's pointwise differences do.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from groupfx.engines.sampling import loo_setting_problem

SUBSAMPLE_FROM = 100_000_000
"""Log-likelihood values (units x draws) from which ``loo="auto"`` subsamples: 25,000 units at 4,000
draws, where exact PSIS-LOO starts to take seconds."""
FIRST_SUBSAMPLE = 2_000
"""Units of the first subsample ``loo="auto"`` draws, from which it estimates how many it needs."""
SUBSAMPLE_SE = 1.0
"""Subsampling standard error of elpd_loo that ``loo="auto"`` sizes its subsample for."""
EXACT_SHARE = 0.5
"""Share of the units above which ``loo="auto"`` computes every unit instead of a subsample."""
ORDER_SEED = 20190
"""Seed of :func:`subsample_order` (with the number of units): the same permutation for every model."""

Exact = Callable[[np.ndarray | None], tuple[np.ndarray, np.ndarray, np.ndarray]]
"""``exact(units)``: ``(elpd_i, lppd_i, pareto_k)`` of the units (data order, ascending; None: all)."""


def check_setting(setting: object) -> None:
    """Refuse (``ValueError``) a ``loo`` setting that ``SamplerSettings`` refuses."""
    problem = loo_setting_problem(setting)
    if problem:
        raise ValueError(problem)


def subsample_order(n_units: int) -> np.ndarray:
    """The permutation of ``range(n_units)`` whose prefixes are every model's subsample."""
    return np.random.default_rng([ORDER_SEED, n_units]).permutation(n_units)


def subsamples(n_units: int, n_samples: int, setting: str | int = "auto") -> bool:
    """Whether :func:`loo` with ``setting`` draws a subsample (else it computes every unit)."""
    if setting == "exact":
        return False
    if setting == "auto":
        return n_units * n_samples >= SUBSAMPLE_FROM and n_units > FIRST_SUBSAMPLE
    return int(setting) < n_units


def difference_estimate(
    approx: np.ndarray, exact: np.ndarray, units: np.ndarray
) -> tuple[float, float, float]:
    """The difference estimator of ``sum(values)`` from ``approx`` of every unit and the exact values of
    a simple random sample of them.

    Parameters
    ----------
    approx : numpy.ndarray
        The approximation of every unit's value, shape (N,).
    exact : numpy.ndarray
        The exact values of ``units``, shape (m,).
    units : numpy.ndarray
        Which units ``exact`` holds (a simple random sample without replacement, m >= 2).

    Returns
    -------
    total, subsampling_var, spread : float
        The estimate of ``sum(values)``; its variance from the subsampling, ``N^2 (1 - m/N) var(e)/m``
        with ``e = exact - approx[units]``; and the estimate of ``N var(values)`` (``sum(values^2) -
        sum(values)^2 / N``), whose root is the standard error exact LOO reports.
    """
    n_units, m = len(approx), len(units)
    error = exact - approx[units]
    approx_total = float(approx.sum())
    total = approx_total + n_units * float(error.mean())
    subsampling_var = n_units**2 * (1 - m / n_units) * float(error.var(ddof=1)) / m if m > 1 else math.inf
    squares = float(np.square(approx).sum()) + n_units * float((exact**2 - approx[units] ** 2).mean())
    spread = squares - (total**2 - subsampling_var) / n_units
    return total, subsampling_var, max(spread, 0.0)


def needed_units(n_units: int, error_var: float, target_se: float | None = None) -> int:
    """Units a simple random sample needs for the subsampling SE ``target_se`` (default
    :data:`SUBSAMPLE_SE`), given ``var(e - a)``."""
    target_se = SUBSAMPLE_SE if target_se is None else target_se
    total_var = n_units**2 * error_var
    return math.ceil(total_var / (target_se**2 + n_units * error_var)) if total_var > 0 else 2


def loo(
    n_units: int,
    n_samples: int,
    exact: Exact,
    approximate: Callable[[], np.ndarray],
    setting: str | int = "auto",
) -> az.ELPDData:
    """PSIS-LOO of every unit, or of a subsample with the difference estimator, as ``setting`` says.

    Parameters
    ----------
    n_units, n_samples : int
        Units and posterior draws.
    exact : callable
        ``exact(units)`` returns ``(elpd_i, lppd_i, pareto_k)`` of ``units`` (data order, ascending; None
        for all) by exact PSIS.
    approximate : callable
        ``approximate()`` returns the approximation of every unit's elpd_loo (its log-likelihood at the
        posterior mean of the linear predictor).
    setting : str or int
        ``"auto"``: every unit below :data:`SUBSAMPLE_FROM` log-likelihood values; above, a first
        subsample of :data:`FIRST_SUBSAMPLE` units, grown once to the size its error variance says gives a
        subsampling SE of :data:`SUBSAMPLE_SE` (or to every unit, past :data:`EXACT_SHARE` of them).
        ``"exact"``: every unit. An int ``m``: a subsample of ``m`` units (every unit where ``m >= N``).

    Returns
    -------
    arviz.ELPDData
        ``arviz.loo``'s object. Subsampled, ``loo_i`` and ``pareto_k`` hold the subsample's units (their
        ``unit`` coordinates say which), ``elpd_loo``, ``se`` and ``p_loo`` are the estimates of the
        whole, and it adds ``subsample_se`` (the subsampling SE of ``elpd_loo``) and ``elpd_approx`` (the
        approximation of every unit).
    """
    check_setting(setting)
    if not subsamples(n_units, n_samples, setting):
        return elpd_data(*exact(None), n_samples)
    order = subsample_order(n_units)
    approx = np.asarray(approximate(), dtype=float)
    size = FIRST_SUBSAMPLE if setting == "auto" else int(setting)
    units = np.sort(order[:size])
    values = exact(units)
    if setting == "auto":
        wanted = needed_units(n_units, float((values[0] - approx[units]).var(ddof=1)))
        if wanted > EXACT_SHARE * n_units:
            wanted = n_units
        if wanted > size:
            more = np.sort(order[size:wanted])
            units, values = _joined(units, values, more, exact(more))
    if len(units) == n_units:
        return elpd_data(*values, n_samples)
    return subsampled_elpd_data(approx, units, *values, n_samples)


def _joined(units, values, more, more_values):
    """The units and exact values of two subsamples as one, in unit order."""
    every = np.concatenate([units, more])
    ranks = np.argsort(every)
    joined = tuple(np.concatenate([a, b])[ranks] for a, b in zip(values, more_values, strict=True))
    return every[ranks], joined


def elpd_data(elpd_i: np.ndarray, lppd_i: np.ndarray, pareto_k: np.ndarray, n_samples: int) -> az.ELPDData:
    """``arviz.loo``'s result object (log scale, pointwise) from every unit's pointwise values."""
    n_obs = len(elpd_i)
    estimates = (
        float(elpd_i.sum()),
        float((n_obs * np.var(elpd_i)) ** 0.5),
        float(lppd_i.sum() - elpd_i.sum()),
    )
    return _elpd_object(estimates, n_samples, n_obs, np.arange(n_obs), elpd_i, pareto_k)


class SubsampledELPDData(az.ELPDData):
    """``arviz.ELPDData`` of a LOO on a subsample of the units, which says so when printed."""

    def __str__(self) -> str:
        return (
            super().__str__().rstrip()
            + f"\n\nSubsampled: PSIS smoothed {n_subsample(self):,} of the {int(self.n_data_points):,} units"
            f" (the Pareto k above are theirs); elpd_loo's subsampling SE is {float(self.subsample_se):.2f}."
        )

    def copy(self, deep: bool = True) -> SubsampledELPDData:
        return SubsampledELPDData(super().copy(deep))


def _elpd_object(estimates, n_samples, n_units, units, elpd_i, pareto_k, extra=None) -> az.ELPDData:
    """``ELPDData`` of ``(elpd_loo, se, p_loo)``, the pointwise values of ``units`` and ``extra`` fields."""
    coords = {"unit": units}
    fields = dict(zip(("elpd_loo", "se", "p_loo"), estimates, strict=True)) | {
        "n_samples": n_samples,
        "n_data_points": n_units,
        "warning": _warning(pareto_k, n_samples),
        "loo_i": xr.DataArray(elpd_i, dims=("unit",), coords=coords, name="loo_i"),
        "pareto_k": xr.DataArray(pareto_k, dims=("unit",), coords=coords, name="pareto_shape"),
        "scale": "log",
        "good_k": good_k(n_samples),
    }
    fields |= extra or {}
    kind = SubsampledELPDData if extra else az.ELPDData
    return kind(data=list(fields.values()), index=list(fields))


def good_k(n_samples: int) -> float:
    """ArviZ's threshold of a trustworthy Pareto k for ``n_samples`` draws."""
    return min(1 - 1 / np.log10(n_samples), 0.7)


def _warning(pareto_k: np.ndarray, n_samples: int) -> bool:
    return bool(np.any(pareto_k > good_k(n_samples)))  # fit() reports k > 0.7 as a diagnostic


def subsampled_elpd_data(
    approx: np.ndarray,
    units: np.ndarray,
    elpd_i: np.ndarray,
    lppd_i: np.ndarray,
    pareto_k: np.ndarray,
    n_samples: int,
) -> az.ELPDData:
    """The ``ELPDData`` of a subsampled LOO: the difference estimates of the whole and the subsample's values.

    ``p_loo`` is the expansion estimate ``N mean(lppd_j - elpd_j)`` over the subsample.
    """
    n_units = len(approx)
    total, subsampling_var, spread = difference_estimate(approx, elpd_i, units)
    estimates = total, spread**0.5, n_units * float((lppd_i - elpd_i).mean())
    extra = {
        "subsample_se": subsampling_var**0.5,
        "elpd_approx": xr.DataArray(approx, dims=("unit",), coords={"unit": np.arange(n_units)}),
    }
    return _elpd_object(estimates, n_samples, n_units, units, elpd_i, pareto_k, extra)


def is_subsampled(elpd: az.ELPDData) -> bool:
    """Whether ``elpd`` is a subsampled LOO's (its pointwise values cover a subsample of the units)."""
    return "elpd_approx" in elpd.index


def n_subsample(elpd: az.ELPDData) -> int:
    """Units whose LOO was computed exactly (every unit unless subsampled)."""
    return int(elpd.loo_i.size)


def _pointwise_parts(elpd: az.ELPDData) -> tuple[np.ndarray, pd.Series]:
    """Every unit's approximation (the exact values themselves where every unit was computed) and the
    exact values by unit."""
    exact = pd.Series(elpd.loo_i.to_numpy(), index=elpd.loo_i["unit"].to_numpy())
    approx = elpd.elpd_approx.to_numpy() if is_subsampled(elpd) else exact.sort_index().to_numpy()
    return approx, exact


def shared_units(elpds: Mapping[str, az.ELPDData]) -> np.ndarray:
    """The units every one of ``elpds`` computed exactly: the first ``min(m)`` of :func:`subsample_order`."""
    n_units = {int(elpd.n_data_points) for elpd in elpds.values()}
    if len(n_units) != 1:
        raise ValueError(f"The fits were scored on different numbers of units ({sorted(n_units)}).")
    (n,) = n_units
    m = min(n_subsample(elpd) for elpd in elpds.values())
    return np.sort(subsample_order(n)[:m]) if m < n else np.arange(n)


COMPARE_COLUMNS = ["rank", "elpd_loo", "p_loo", "elpd_diff", "weight", "se", "dse", "warning", "scale"]
COMPARE_COLUMNS += ["subsample_se", "subsample_dse", "subsample"]


def compare_table(elpds: Mapping[str, az.ELPDData]) -> pd.DataFrame:
    """``arviz.compare``'s table for fits of which one or more were scored on a subsample.

    Each model's ``elpd_loo`` and ``se`` are its own estimates; each ``elpd_diff`` and ``dse`` against the
    best model come from the difference estimator of the pointwise differences on the units both computed
    exactly (:func:`shared_units`), with their subsampling SEs in ``subsample_se`` (of ``elpd_loo``) and
    ``subsample_dse`` (of ``elpd_diff``); ``subsample`` is each model's number of exact units. The weights
    are pseudo-BMA's without the Bayesian bootstrap (``exp(elpd_loo)`` normalised): stacking, ArviZ's
    default, needs every unit's pointwise values.
    """
    units = shared_units(elpds)
    parts = {label: _pointwise_parts(elpd) for label, elpd in elpds.items()}
    ranked = sorted(elpds, key=lambda label: -float(elpds[label].elpd_loo))
    best = ranked[0]
    best_approx, best_exact = parts[best]
    elpd_values = np.array([float(elpds[label].elpd_loo) for label in ranked])
    weights = np.exp(elpd_values - elpd_values.max())
    weights = dict(zip(ranked, weights / weights.sum(), strict=True))
    rows = []
    for rank, label in enumerate(ranked):
        elpd = elpds[label]
        approx, exact = parts[label]
        if label == best:
            diff, diff_subsampling_var, diff_spread = 0.0, 0.0, 0.0
        else:
            diff, diff_subsampling_var, diff_spread = difference_estimate(
                best_approx - approx, (best_exact.loc[units] - exact.loc[units]).to_numpy(), units
            )
        rows.append(
            {
                "rank": rank,
                "elpd_loo": float(elpd.elpd_loo),
                "p_loo": float(elpd.p_loo),
                "elpd_diff": diff,
                "weight": float(weights[label]),
                "se": float(elpd.se),
                "dse": diff_spread**0.5,
                "warning": bool(elpd.warning),
                "scale": str(elpd.scale),
                "subsample_se": float(elpd.get("subsample_se", 0.0)),
                "subsample_dse": diff_subsampling_var**0.5,
                "subsample": n_subsample(elpd),
            }
        )
    return pd.DataFrame(rows, index=pd.Index(ranked, name="model"))[COMPARE_COLUMNS]
