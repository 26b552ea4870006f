"""Model checks: group intercepts, posterior predictive checks by group, calibration, prior predictive.

All of them evaluate the fitted model's expected outcome (see
:class:`groupfx.engines.expected.ExpectedOutcome`) on blocks of units for a subset of draws, so they hold at
most ``draws x block`` values at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pymc as pm

from groupfx.engines import kernels
from groupfx.models.families import get_family
from groupfx.models.priors import DEFAULT_PRIORS
from groupfx.results.effects import flat_draws, unit_data
from groupfx.results.fits import Fit

CHECK_DRAWS = 200
"""Posterior (or prior) draws used by the predictive checks."""
BLOCK_UNITS = 50_000
"""Units per block."""


def _subset(fit: Fit, names: list[str], draws: int, seed: int) -> dict[str, np.ndarray]:
    everything = flat_draws(fit, names)
    total = next(iter(everything.values())).shape[0]
    chosen = np.sort(np.random.default_rng(seed).choice(total, size=min(draws, total), replace=False))
    return {name: values[chosen] for name, values in everything.items()}


def _blocks(expected, params: dict[str, np.ndarray], units: dict[str, np.ndarray]):
    """Yield ``(start, stop, expected outcome (draws, stop - start))`` over blocks of units."""
    n = units["g"].shape[0]
    args = [params[name] for name in expected.parameters]
    for start in range(0, n, BLOCK_UNITS):
        stop = min(n, start + BLOCK_UNITS)
        yield start, stop, expected.function(*args, *(units[name][start:stop] for name in expected.data))


def _replicate(family: str, mean: np.ndarray, rng: np.random.Generator, units, start, stop, sigma_y):
    """Replicated y of units ``start:stop`` for each draw (row of ``mean``), by the family's own draws."""
    trials = units["trials"][start:stop] if "trials" in units else None
    return get_family(family).replicate(mean, rng, trials, None if sigma_y is None else sigma_y[:, None])


def _noise_and(fit: Fit, names: list[str]) -> list[str]:
    """``names`` and the family's noise parameters (``sigma_y``), each once."""
    return list(dict.fromkeys([*names, *get_family(fit.family).noise_parameters]))


def group_intercepts(fit: Fit) -> np.ndarray:
    """Draws of each group's intercept on the link scale, ``(draws, G)``: eta of a unit with x = 0 (and
    exposure 1, one trial), so it holds the group's intercept, z and the group-level proxy of U; on two-way
    data averaged over the periods (so it also holds the mean period part)."""
    expected = fit.expected_outcome
    data = fit.data
    family = get_family(fit.family)
    units = {
        "x": np.zeros((data.n_groups, data.n_x)),
        "g": np.arange(data.n_groups),
        "trials": np.ones(data.n_groups, dtype=np.int64),
        "log_exposure": np.zeros(data.n_groups),
    }
    params = [flat_draws(fit, expected.parameters)[n] for n in expected.parameters]
    periods = range(data.n_times) if data.two_way else [None]
    total = 0.0
    for period in periods:  # one (draws, G) block per period, never (draws, G T)
        if period is not None:
            units["t"] = np.full(data.n_groups, period, dtype=np.int64)
        total = total + family.linked(expected.function(*params, *(units[n] for n in expected.data)))
    return total / len(periods)


@dataclass(frozen=True)
class PredictiveCheck:
    """Observed against replicated data for one fit.

    Attributes
    ----------
    observed : numpy.ndarray
        Mean of y per group, ``(G,)`` (the share of y = 1 for a binary y).
    replicated : numpy.ndarray
        The same statistic in each replicated data set, ``(draws, G)``.
    calibration : pandas.DataFrame
        Ten bins of units by their posterior mean expected outcome: ``predicted`` (mean within the bin)
        and ``observed`` (mean y within the bin), with the bin's ``units``.
    """

    observed: np.ndarray
    replicated: np.ndarray
    calibration: pd.DataFrame

    @property
    def outside(self) -> float:
        """Share of groups whose observed statistic falls outside the central 94% of the replicated ones."""
        low, high = np.quantile(self.replicated, [0.03, 0.97], axis=0)
        return float(np.mean((self.observed < low) | (self.observed > high)))


def posterior_predictive_check(
    fit: Fit, draws: int = CHECK_DRAWS, seed: int = 0, bins: int = 10
) -> PredictiveCheck:
    """Replicate y from the posterior and compare its mean per group, and the calibration, with the data."""
    data = fit.data
    expected = fit.expected_outcome
    names = _noise_and(fit, expected.parameters)
    params = _subset(fit, names, draws, seed)
    sigma_y = params.get("sigma_y")
    units = unit_data(fit)
    rng = np.random.default_rng(seed)
    sums = np.zeros((len(next(iter(params.values()))), data.n_groups))
    mean_prediction = np.empty(data.n_units)
    for start, stop, mean in _blocks(expected, params, units):
        replicated = _replicate(fit.family, mean, rng, units, start, stop, sigma_y)
        codes = units["g"][start:stop]
        for row in range(sums.shape[0]):
            sums[row] += np.bincount(codes, weights=replicated[row], minlength=data.n_groups)
        mean_prediction[start:stop] = mean.mean(axis=0)
    y = np.asarray(data.y, dtype=float)
    sizes = data.group_sizes
    observed = np.bincount(data.group, weights=y, minlength=data.n_groups) / sizes
    edges = np.unique(np.quantile(mean_prediction, np.linspace(0, 1, bins + 1)))
    which = np.clip(np.searchsorted(edges, mean_prediction, side="right") - 1, 0, max(len(edges) - 2, 0))
    frame = pd.DataFrame({"bin": which, "predicted": mean_prediction, "observed": y})
    calibration = frame.groupby("bin").agg(predicted=("predicted", "mean"), observed=("observed", "mean"),
                                           units=("observed", "size")).reset_index(drop=True)  # fmt: skip
    return PredictiveCheck(observed, sums / sizes, calibration)


def _numpy_draws(row: np.ndarray, rng: np.random.Generator, size: tuple[int, ...]) -> np.ndarray:
    """Draws from one row of the fused kernel's prior table (:func:`groupfx.engines.kernels.prior_row`)."""
    code, first, second = int(row[0]), float(row[1]), float(row[2])
    if code == kernels.NORMAL:
        return rng.normal(first, second, size)
    if code == kernels.EXPONENTIAL:
        return rng.exponential(1 / first, size)
    if code == kernels.HALF_NORMAL:
        return np.abs(rng.normal(0, first, size))
    if code == kernels.GAMMA:
        return rng.gamma(first, 1 / second, size)
    if code == kernels.HALF_STUDENT_T:
        return np.abs(second * rng.standard_t(first, size))
    raise ValueError(f"no NumPy draw for the prior code {code}")


def _kernel_prior_draws(fit: Fit, names: list[str], draws: int, seed: int) -> dict[str, np.ndarray]:
    """Draws of ``names`` from the fit's priors with NumPy, shaped as ``pm.draw`` gives them.

    For the models the fused kernels serve: each named parameter's prior is the fit's, one the kernel's
    prior table expresses (Normal, Exponential, HalfNormal, Gamma or HalfStudentT), ``e`` is standard
    normal, and so is the latent ``u`` (``m ~ Normal(ax, bux)`` makes ``(m - ax) / bux`` standard normal
    whatever ``ax`` and ``bux``). On two-way data the pooled period intercepts ``f`` are
    ``ZeroSumNormal(tau_t)`` (a normal less its mean over the periods, with ``tau_t`` drawn from its prior,
    the same draws where ``tau_t`` is asked for too), and the latent period shift ``v = (w / bvx)'`` is
    ``ZeroSumNormal(1)`` over the periods of each x, whatever ``bvx``.
    """
    data, rng = fit.data, np.random.default_rng(seed)
    priors = fit.priors
    rest = max(data.n_times - 1, 0)
    shapes = {"a": (data.n_groups,), "e": (data.n_groups,), "u": (data.n_groups, data.n_x),
              "bxy": (data.n_x,), "buy": (data.n_x,), "bzy": (data.n_z,), "at": (rest,), "bpy": (rest,),
              "bvy": (data.n_x,), "bvx": (data.n_x,), "bux": (data.n_x,), "ax": (data.n_x,),
              "sigma": (data.n_x,), "f": (data.n_times,), "v": (data.n_times, data.n_x)}  # fmt: skip
    order = ["tau_t", *(name for name in names if name != "tau_t")] if "f" in names else names
    values = {}
    for name in order:
        size = (draws, *shapes.get(name, ()))
        if name in ("f", "v"):  # zero-sum normals: over the periods (axis 1 of both)
            normal = rng.standard_normal(size)
            normal -= normal.mean(axis=1, keepdims=True)
            values[name] = normal * values["tau_t"][:, None] if name == "f" else normal
        elif name not in DEFAULT_PRIORS:  # e and u
            values[name] = rng.standard_normal(size)
        else:
            row = kernels.prior_row(name, priors.get(name, DEFAULT_PRIORS[name]))
            if row is None:
                raise ValueError(f"the fused kernel expresses no prior {priors[name].describe()} of {name}")
            values[name] = _numpy_draws(np.asarray(row), rng, size)
    return {name: values[name] for name in names}


def prior_parameter_draws(fit: Fit, names: list[str], draws: int, seed: int) -> dict[str, np.ndarray]:
    """``draws`` draws of the parameters ``names`` from the fit's priors, ``(draws, ...)`` each.

    With NumPy where the fused kernels serve the model (priors its prior table expresses), else with
    ``pm.draw`` from the PyMC model (which compiles its forward sampler).
    """
    if fit.engine().closed_form:  # the fused kernel's model: priors it expresses, drawn with NumPy
        return _kernel_prior_draws(fit, names, draws, seed)
    model = fit.pymc_model()
    values = pm.draw([model[name] for name in names], draws=draws, random_seed=seed)
    return {name: np.asarray(value) for name, value in zip(names, values, strict=True)}


def prior_predictive_means(fit: Fit, draws: int = CHECK_DRAWS, seed: int = 0) -> np.ndarray:
    """Mean of y in each of ``draws`` data sets replicated from the prior, ``(draws,)``.

    The parameters are drawn from the model's priors alone (no per-unit draws), then y block by block.
    """
    expected = fit.expected_outcome
    names = _noise_and(fit, expected.parameters)
    params = prior_parameter_draws(fit, names, draws, seed)
    units = unit_data(fit)
    rng = np.random.default_rng(seed)
    total = np.zeros(draws)
    for start, stop, mean in _blocks(expected, params, units):
        total += _replicate(fit.family, mean, rng, units, start, stop, params.get("sigma_y")).sum(axis=1)
    return total / fit.data.n_units
