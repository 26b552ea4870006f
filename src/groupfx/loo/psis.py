"""Pareto-smoothed importance sampling leave-one-out (PSIS-LOO), one observation at a time, in numba.

The same estimator as ``arviz.loo`` (Vehtari, Gelman and Gabry 2017; Zhang and Stephens' generalized
Pareto fit with ArviZ's weakly informative prior on k), written so that it runs over a block of
observations without Python loops, never sorts a whole column (the tail is found by a partition) and
never needs more than the block it is given. Tests hold it equal to ``arviz.loo``.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from groupfx.engines import vector_math

FAST = vector_math.FAST
TINY_LOG = math.log(np.finfo(float).tiny)
EPS = float(np.finfo(float).eps)


def tail_length(n_samples: int, reff: float) -> int:
    """Draws in the right tail the Pareto fit uses (ArviZ's rule)."""
    return math.ceil(min(n_samples / 5.0, 3 * (n_samples / reff) ** 0.5))


@numba.njit(cache=True, fastmath=FAST, error_model="numpy")
def _logsumexp(values):
    top = values.max()
    if not np.isfinite(top):
        return top
    total = 0.0
    for i in range(values.shape[0]):
        total += vector_math.exp(values[i] - top)
    return top + math.log(total)


@numba.njit(cache=True, fastmath=FAST, error_model="numpy")
def _mean_log1m(b, sorted_tail):
    """``mean(log(1 - b * sorted_tail))`` (every ``b * sorted_tail < 1``: ``b`` is below ``1 / max``)."""
    total = 0.0
    for i in range(sorted_tail.shape[0]):
        total += vector_math.log(1.0 - b * sorted_tail[i])
    return total / sorted_tail.shape[0]


@numba.njit(cache=True)
def _gpdfit(sorted_tail):
    """Shape k and scale sigma of a generalized Pareto fitted to the sorted exceedances (ArviZ's fit)."""
    n = sorted_tail.shape[0]
    m = 30 + int(n**0.5)
    b = np.empty(m)
    quartile = sorted_tail[int(n / 4 + 0.5) - 1]
    for j in range(m):
        b[j] = (1 - math.sqrt(m / (j + 0.5))) / (3 * quartile) + 1 / sorted_tail[n - 1]
    profile = np.empty(m)
    for j in range(m):
        k = _mean_log1m(b[j], sorted_tail)
        profile[j] = n * (math.log(-(b[j] / k)) - k - 1)
    weights = np.exp(profile - _logsumexp(profile))  # = 1 / sum_i exp(profile_i - profile_j)
    kept = 0.0
    b_post = 0.0
    for j in range(m):
        if weights[j] >= 10 * EPS:
            kept += weights[j]
            b_post += b[j] * weights[j]
    b_post /= kept
    k_post = _mean_log1m(b_post, sorted_tail)
    sigma = -k_post / b_post
    return (n * k_post + 10 * 0.5) / (n + 10), sigma


@numba.njit(cache=True)
def _psis_loo_one(loglik, cutoff_rank):
    """``(elpd_loo_i, lppd_i, k_i)`` of one observation from its ``S`` log-likelihood draws."""
    n_samples = loglik.shape[0]
    x = -loglik
    top = x.max()
    x = x - top
    cutoff = max(np.partition(x, n_samples - cutoff_rank - 1)[n_samples - cutoff_rank - 1], TINY_LOG)
    tail_at = np.nonzero(x > cutoff)[0]
    k = np.inf
    if tail_at.shape[0] > 4:
        order = np.argsort(x[tail_at])
        tail_at = tail_at[order]
        exp_cutoff = math.exp(cutoff)
        exceed = np.exp(x[tail_at]) - exp_cutoff
        k, sigma = _gpdfit(exceed)
        if np.isfinite(k):
            n_tail = tail_at.shape[0]
            for i in range(n_tail):
                p = (i + 0.5) / n_tail
                if sigma <= 0:
                    q = np.nan
                elif abs(k) < EPS:
                    q = -math.log1p(-p) * sigma
                else:
                    q = math.expm1(-k * math.log1p(-p)) / k * sigma
                x[tail_at[i]] = math.log(q + exp_cutoff)
            for i in range(n_samples):
                if x[i] > 0:
                    x[i] = 0.0
    x -= _logsumexp(x)
    x += loglik
    return _logsumexp(x), _logsumexp(loglik) - math.log(n_samples), k


@numba.njit(cache=True)
def psis_loo_block(loglik, cutoff_rank):
    """PSIS-LOO of each observation of ``loglik`` (observations x draws, C order).

    Returns
    -------
    elpd_i, lppd_i, k : numpy.ndarray
        Pointwise LOO log predictive density, in-sample log pointwise predictive density, Pareto k.
    """
    n_obs = loglik.shape[0]
    elpd = np.empty(n_obs)
    lppd = np.empty(n_obs)
    k = np.empty(n_obs)
    for i in range(n_obs):
        elpd[i], lppd[i], k[i] = _psis_loo_one(loglik[i], cutoff_rank)
    return elpd, lppd, k
