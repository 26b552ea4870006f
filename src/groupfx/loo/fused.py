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
from groupfx.loo import loglik, psis, subsample

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


def _group_part(fused: FusedModel, draws: dict[str, np.ndarray], groups: slice | np.ndarray) -> np.ndarray:
    """The group-level linear predictor ``c[g]`` of ``groups`` for every draw, as (groups, S)."""
    return np.ascontiguousarray(group_predictor(fused.kind, draws, fused.data, groups).T)


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


def loo(fused: FusedModel, posterior: xr.Dataset, setting: str | int = "auto") -> az.ELPDData:
    """PSIS-LOO of the outcome under the fused model's posterior, block by block of groups.

    Parameters
    ----------
    fused : FusedModel
        The model and data the posterior was drawn with (its precision is ignored: LOO is float64).
    posterior : xarray.Dataset
        Draws named as :meth:`FusedModel.expand` names them.
    setting : str or int
        ``"auto"``, ``"exact"`` or a number of units to subsample (:func:`groupfx.loo.subsample.loo`).

    Returns
    -------
    arviz.ELPDData
        As ``arviz.loo(..., pointwise=True)`` returns it, units in the data's order (subsampled: see
        :func:`groupfx.loo.subsample.loo`).
    """
    if fused.precision != "float64":
        fused = FusedModel(fused.model, fused.data, fused.family)
    names = predictor_parameters(fused.kind, fused.data) + list(fused.family.noise_parameters)
    draws = loglik.flatten_draws(posterior, names)
    n_samples = draws["bxy"].shape[0]
    n_units = len(fused.arrays.y)
    cutoff_rank = psis.tail_length(n_samples, loglik.relative_efficiency(posterior))
    position = np.empty(n_units, dtype=np.int64)  # each unit's place in the kernel's (sorted) order
    position[fused.order] = np.arange(n_units)
    common = _common(fused, draws)

    def in_data_order(sorted_values: np.ndarray) -> np.ndarray:
        values = np.empty(n_units)
        values[fused.order] = sorted_values
        return values

    def exact(units: np.ndarray | None):
        if units is None:
            return tuple(map(in_data_order, _sorted_loo(fused, draws, common, None, cutoff_rank)))
        places = np.sort(position[units])
        back = np.argsort(fused.order[places])  # the sorted places' results in the units' order
        return tuple(result[back] for result in _sorted_loo(fused, draws, common, places, cutoff_rank))

    def approximate() -> np.ndarray:
        return in_data_order(_sorted_logliks_at_mean(fused, draws, common))

    return subsample.loo(n_units, n_samples, exact, approximate, setting)


def _common(fused: FusedModel, draws) -> tuple:
    """What every block of :func:`_unit_logliks` reads whole: ``(family, period, bxy, log_sigma, c)``
    (``c``: each unit's normalising constant)."""
    n_samples = draws["bxy"].shape[0]
    return (
        fused.family.kernel_code,
        np.ascontiguousarray(period_predictor(fused.kind, draws, fused.data).T),  # (T, S); 0 rows one-way
        np.ascontiguousarray(draws["bxy"].T),
        np.log(draws["sigma_y"]) if "sigma_y" in draws else np.zeros(n_samples),
        _constant(fused),
    )


def _inputs(fused: FusedModel, common: tuple, c: np.ndarray, units: slice | np.ndarray, starts: np.ndarray):
    """What :func:`_unit_logliks` reads for the groups of ``c`` (groups, S) and their ``units`` (kernel
    order), ``starts`` their boundaries among those units."""
    arrays = fused.arrays
    family, period, bxy, log_sigma, constant = common
    times = arrays.t[units] if arrays.t.size else arrays.t  # each unit's period (empty one-way)
    return (family, c, period, times, bxy, log_sigma, np.ascontiguousarray(arrays.xt[:, units]),
            arrays.y[units], arrays.trials[units], arrays.offset[units], constant[units], starts)  # fmt: skip


def _sorted_loo(fused: FusedModel, draws, common: tuple, places: np.ndarray | None, cutoff_rank: int):
    """``(elpd_i, lppd_i, k_i)`` of the units at kernel-order ``places`` (ascending; None: every unit),
    in blocks of whole groups holding at most :func:`~groupfx.loo.loglik.loo_block_units` of them (or
    one larger group); on a subsample only the groups that hold a place are evaluated. ``common`` is
    what :func:`_common` made of the draws, once for every call."""
    starts = fused.arrays.starts
    n_samples = draws["bxy"].shape[0]
    every = places is None
    places = np.arange(len(fused.arrays.y)) if every else places
    group_of = np.searchsorted(starts, places, side="right") - 1  # each place's group
    below = np.searchsorted(places, starts)  # how many of the places lie before each group boundary
    block_units = loglik.loo_block_units(n_samples, subsample=not every)
    threads = len(places) * n_samples >= psis.THREADS_FROM
    results = tuple(np.empty(len(places)) for _ in range(3))
    buffer = np.empty((min(block_units, len(places)), n_samples))
    done = 0
    while done < len(places):
        end = done + block_units
        if end >= len(places):
            end = len(places)
        else:  # stop before the group that would overflow the block, unless it alone is the block
            cut = int(np.searchsorted(group_of, group_of[end], side="left"))
            end = cut if cut > done else int(np.searchsorted(group_of, group_of[done], side="right"))
        if every:
            lo, hi = int(group_of[done]), int(group_of[end - 1]) + 1
            groups, units, block_starts = slice(lo, hi), slice(done, end), below[lo : hi + 1] - done
        else:
            groups, first = np.unique(group_of[done:end], return_index=True)
            units, block_starts = places[done:end], np.append(first, end - done)
        inputs = _inputs(fused, common, _group_part(fused, draws, groups), units, block_starts)
        if buffer.shape[0] < end - done:  # a group larger than a block
            buffer = np.empty((end - done, n_samples))
        values = buffer[: end - done]  # one buffer for every block: its pages are touched once
        with psis.thread_pool(threads) as pool:
            (_unit_logliks_threads if pool else _unit_logliks)(inputs, values)
            for target, result in zip(results, psis.psis_loo(values, cutoff_rank, pool), strict=True):
                target[done:end] = result
        done = end
    return results


GROUP_BLOCK = 128
"""Groups whose linear predictor :func:`_sorted_logliks_at_mean` averages over the draws at once (4 MiB at
4,000 draws: small blocks reuse their memory)."""


def _sorted_logliks_at_mean(fused: FusedModel, draws, common: tuple) -> np.ndarray:
    """Each unit's log-likelihood (kernel order) at the posterior mean of its linear predictor (and of
    log sigma): the approximation of its elpd_loo a subsampled LOO corrects (``plpd``)."""
    n_groups = fused.data.n_groups
    group_mean = np.concatenate(
        [
            group_predictor(fused.kind, draws, fused.data, slice(lo, min(lo + GROUP_BLOCK, n_groups))).mean(0)
            for lo in range(0, n_groups, GROUP_BLOCK)
        ]
    )
    family, period, bxy, log_sigma, constant = common
    at_mean = (family, period.mean(axis=1, keepdims=True), bxy.mean(axis=1, keepdims=True),
               log_sigma.mean(keepdims=True), constant)  # fmt: skip
    c = np.ascontiguousarray(group_mean[:, None])
    values = np.empty((len(fused.arrays.y), 1))
    _unit_logliks(_inputs(fused, at_mean, c, slice(None), fused.arrays.starts), values)
    return values[:, 0]
