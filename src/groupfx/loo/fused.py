"""PSIS-LOO of a model fitted through a fused kernel, with its pointwise log-likelihood evaluated in numba.

:func:`groupfx.loo.loglik.loo` evaluates the PyMC model's elementwise log-density with PyTensor; here the same
values come from one numba pass per block of groups, vectorised over the draws, at a fraction of the cost a
value (``benchmarks/design_results.md``): the group-level linear predictor of the block's groups for every
draw (and on two-way data the period part of every period, gathered by each unit's period), then each
unit's log-likelihood across the draws, then :func:`groupfx.loo.psis.psis_loo` (both on numba's threads
when the LOO is large). At a million units and 4,000 draws that is 4e9 values, never held at once. Tests hold
the values equal to the PyMC model's and the result equal to :func:`groupfx.loo.loglik.loo`.
"""

from __future__ import annotations

import math

import arviz as az
import numba
import numpy as np
import xarray as xr
from scipy.special import gammaln

from groupfx.engines import vector_math
from groupfx.engines.kernels import (
    BERNOULLI,
    BINOMIAL,
    GAUSSIAN,
    POISSON,
    FusedModel,
    group_predictor,
    period_predictor,
    predictor_parameters,
)
from groupfx.loo import loglik, psis

FAST = vector_math.FAST
HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


@numba.njit(cache=True, fastmath=FAST, error_model="numpy", inline="always")
def _group_logliks(gb, inputs, out):
    """Fill ``out[i, s]`` for the units ``i`` of the block's group ``gb``: their log-likelihoods under each
    draw ``s``.

    ``inputs`` is ``(family, c, period, times, bxy, log_sigma, xt, y, trials, offset, constant, starts)``:
    ``c`` is (groups of the block, S), ``period`` the period part (T, S) (0 rows without one) and ``times``
    the units' periods, ``bxy`` (K, S), ``log_sigma`` (S,) (Gaussian), ``starts`` the block's group
    boundaries relative to its first unit.
    """
    family, c, period, times, bxy, log_sigma, xt, y, trials, offset, constant, starts = inputs
    n_x, n_samples = bxy.shape
    eta = np.empty(n_samples)
    two_way = period.shape[0] > 0
    for i in range(starts[gb], starts[gb + 1]):
        if two_way:
            di = period[times[i]]
            for s in range(n_samples):
                eta[s] = c[gb, s] + di[s]
        else:
            for s in range(n_samples):
                eta[s] = c[gb, s]
        for k in range(n_x):
            xik = xt[k, i]
            for s in range(n_samples):
                eta[s] += bxy[k, s] * xik
        yi, ni, oi, ki = y[i], trials[i], offset[i], constant[i]
        row = out[i]
        if family == BERNOULLI or family == BINOMIAL:
            for s in range(n_samples):
                e = eta[s]
                softplus = max(e, 0.0) + vector_math.log1p_unit(vector_math.exp(-abs(e)))
                row[s] = yi * e - ni * softplus + ki
        elif family == POISSON:
            for s in range(n_samples):
                e = eta[s] + oi
                row[s] = yi * e - vector_math.exp(e) + ki
        else:
            for s in range(n_samples):
                d = (yi - eta[s]) * vector_math.exp(-log_sigma[s])
                row[s] = -0.5 * d * d - log_sigma[s] + ki


@numba.njit(cache=True, fastmath=FAST, error_model="numpy")
def _unit_logliks(inputs, out):
    """Fill ``out[i, s]``: the log-likelihood of unit ``i`` (block order) under draw ``s`` (see
    :func:`_group_logliks`)."""
    for gb in range(inputs[-1].shape[0] - 1):
        _group_logliks(gb, inputs, out)


@numba.njit(cache=True, fastmath=FAST, error_model="numpy", parallel=True)
def _unit_logliks_threads(inputs, out):
    """:func:`_unit_logliks` on numba's threads, a share of the block's groups each (the same values)."""
    for gb in numba.prange(inputs[-1].shape[0] - 1):
        _group_logliks(gb, inputs, out)


def _group_part(fused: FusedModel, draws: dict[str, np.ndarray], lo: int, hi: int) -> np.ndarray:
    """The group-level linear predictor ``c[g]`` of groups ``lo:hi`` for every draw, as (hi - lo, S)."""
    data = fused.data
    return np.ascontiguousarray(group_predictor(fused.kind, draws, data, slice(lo, hi)).T)


def _constant(fused: FusedModel) -> np.ndarray:
    """Each unit's normalising constant of the family's log-density (block order, i.e. sorted)."""
    y, trials = fused.arrays.y, fused.arrays.trials
    family = fused.family.kernel_code
    if family == BINOMIAL:
        return gammaln(trials + 1) - gammaln(y + 1) - gammaln(trials - y + 1)
    if family == POISSON:
        return -gammaln(y + 1)
    if family == GAUSSIAN:
        return np.full(len(y), -HALF_LOG_2PI)
    return np.zeros(len(y))


def loo(fused: FusedModel, posterior: xr.Dataset) -> az.ELPDData:
    """PSIS-LOO of the outcome under the fused model's posterior, block by block of groups.

    Parameters
    ----------
    fused : FusedModel
        The model and data the posterior was drawn with (its precision is ignored: LOO is float64).
    posterior : xarray.Dataset
        Draws named as :meth:`FusedModel.expand` names them.

    Returns
    -------
    arviz.ELPDData
        As ``arviz.loo(..., pointwise=True)`` returns it, units in the data's order.
    """
    if fused.precision != "float64":
        fused = FusedModel(fused.model, fused.data, fused.family)
    arrays = fused.arrays
    xt, y, starts, trials, offset = arrays.xt, arrays.y, arrays.starts, arrays.trials, arrays.offset
    names = predictor_parameters(fused.kind, fused.data) + list(fused.family.noise_parameters)
    draws = loglik.flatten_draws(posterior, names)
    n_samples = draws["bxy"].shape[0]
    bxy = np.ascontiguousarray(draws["bxy"].T)
    log_sigma = np.log(draws["sigma_y"]) if "sigma_y" in draws else np.zeros(n_samples)
    constant = _constant(fused)
    cutoff_rank = psis.tail_length(n_samples, loglik.relative_efficiency(posterior))
    block_units = loglik.loo_block_units(n_samples)
    period = np.ascontiguousarray(period_predictor(fused.kind, draws, fused.data).T)  # (T, S); 0 rows one-way
    times = arrays.t  # each unit's period, sorted as the units (empty one-way)
    family = fused.family.kernel_code
    n_units = len(y)
    threads = n_units * n_samples >= psis.THREADS_FROM
    sorted_values = [np.empty(n_units) for _ in range(3)]
    lo = 0
    while lo < fused.data.n_groups:  # blocks of whole groups, about block_units units each
        hi = int(np.searchsorted(starts, starts[lo] + block_units, side="right")) - 1
        hi = min(max(hi, lo + 1), fused.data.n_groups)
        first, last = starts[lo], starts[hi]
        values = np.empty((last - first, n_samples))
        inputs = (family, _group_part(fused, draws, lo, hi), period, times[first:last], bxy, log_sigma,
                  xt[:, first:last], y[first:last], trials[first:last], offset[first:last],
                  constant[first:last], starts[lo : hi + 1] - first)  # fmt: skip
        with psis.thread_pool(threads) as pool:
            (_unit_logliks_threads if pool else _unit_logliks)(inputs, values)
            results = psis.psis_loo(values, cutoff_rank, pool)
        for target, result in zip(sorted_values, results, strict=True):
            target[first:last] = result
        lo = hi
    elpd_i, lppd_i, pareto_k = (np.empty(n_units) for _ in range(3))
    for target, values in zip((elpd_i, lppd_i, pareto_k), sorted_values, strict=True):
        target[fused.order] = values
    return loglik.elpd_data(elpd_i, lppd_i, pareto_k, n_samples)
