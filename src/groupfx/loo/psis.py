"""Pareto-smoothed importance sampling leave-one-out (PSIS-LOO), one observation at a time, in numba.

The same estimator as ``arviz.loo`` (Vehtari, Gelman and Gabry 2017; Zhang and Stephens' generalized
Pareto fit with ArviZ's weakly informative prior on k), written so that it runs over a block of
observations without Python loops, never sorts a whole column (a sorted sample of its draws bounds the
tail, one pass gathers it, and only it is sorted), reads each column twice and never needs more than the
block it is given. Tests hold it equal to ``arviz.loo``.
"""

from __future__ import annotations

import contextlib
import math
import threading

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
    top = values[0]
    for i in range(1, values.shape[0]):
        if np.isnan(values[i]):
            return values[i]  # as np.max would
        top = max(top, values[i])
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
    norm = _logsumexp(profile)
    kept = 0.0
    b_post = 0.0
    for j in range(m):
        weight = math.exp(profile[j] - norm)  # = 1 / sum_i exp(profile_i - profile_j)
        if weight >= 10 * EPS:
            kept += weight
            b_post += b[j] * weight
    b_post /= kept
    k_post = _mean_log1m(b_post, sorted_tail)
    sigma = -k_post / b_post
    return (n * k_post + 10 * 0.5) / (n + 10), sigma


SMALL_SORT = 16
"""Runs shorter than this are finished by insertion sort in :func:`_sort_smallest`."""


@numba.njit(cache=True)
def _sort_smallest(values, count, needed):
    """Reorder ``values[:count]`` in place so that ``values[:needed]`` are its ``needed`` smallest,
    ascending: a partial quicksort (median of three, the shorter side first, an explicit stack; parts
    wholly past ``needed`` are left as they are) with insertion sort for short runs.

    Written out rather than ``np.sort``, whose generic quicksort costs numba about 2 s to compile on a
    fresh install, and sorting only what the tail needs (about half of the candidates)."""
    stack = np.empty(128, dtype=np.int64)  # (lo, hi) pairs: depth <= log2(count) with the shorter side first
    top = 0
    lo, hi = 0, count - 1
    while True:
        while hi - lo >= SMALL_SORT:
            mid = (lo + hi) >> 1
            if values[mid] < values[lo]:
                values[mid], values[lo] = values[lo], values[mid]
            if values[hi] < values[mid]:
                values[hi], values[mid] = values[mid], values[hi]
                if values[mid] < values[lo]:
                    values[mid], values[lo] = values[lo], values[mid]
            pivot = values[mid]
            i, j = lo, hi
            while i <= j:
                while values[i] < pivot:
                    i += 1
                while pivot < values[j]:
                    j -= 1
                if i <= j:
                    values[i], values[j] = values[j], values[i]
                    i += 1
                    j -= 1
            if i >= needed:  # the right part lies wholly past what is needed
                hi = j
                continue
            if j - lo < hi - i:  # push the longer side, go on with the shorter
                stack[top], stack[top + 1] = i, hi
                hi = j
            else:
                stack[top], stack[top + 1] = lo, j
                lo = i
            top += 2
        for i in range(lo + 1, hi + 1):
            v = values[i]
            j = i
            while j > lo and values[j - 1] > v:
                values[j] = values[j - 1]
                j -= 1
            values[j] = v
        if top == 0:
            return
        top -= 2
        lo, hi = stack[top], stack[top + 1]


SAMPLE_SIZE = 256
"""Draws of a column :func:`_smallest` sorts to guess a bound on its smallest ones."""


@numba.njit(cache=True)
def _kth_smallest(values, stride, rank, scratch):
    """The ``rank``-th smallest (from 0) of every ``stride``-th value, by insertion into the sorted
    ``scratch[:rank + 1]`` (few values reach it, and each moves at most ``rank`` others)."""
    kept = 0
    for s in range(0, values.shape[0], stride):
        v = values[s]
        if kept <= rank:
            kept += 1
        elif v >= scratch[rank]:
            continue
        i = kept - 1
        while i > 0 and scratch[i - 1] > v:
            scratch[i] = scratch[i - 1]
            i -= 1
        scratch[i] = v
    return scratch[rank]


@numba.njit(cache=True)
def _smallest(loglik, size, value, candidates):
    """Fill ``value`` with the ``size`` smallest draws of ``loglik``, sorted ascending; return the largest.

    A sorted sample of every ``S / 256``-th draw gives a bound that about twice ``size`` draws fall below
    (its rank is the tail's share of the sample and three of its standard deviations more); one pass
    copies those draws into the scratch ``candidates`` and only they are sorted. Where fewer than ``size``
    fall below (a column the sample misjudged), every draw is sorted: the same result, later.
    """
    n_samples = loglik.shape[0]
    stride = max(1, n_samples // SAMPLE_SIZE)
    n_sampled = (n_samples + stride - 1) // stride
    expected = size / stride
    rank = min(n_sampled - 1, int(expected + 3.0 * math.sqrt(expected) + 2.0))
    bound = _kth_smallest(loglik, stride, rank, candidates)
    top = loglik[0]
    count = 0
    for s in range(n_samples):
        v = loglik[s]
        top = max(top, v)
        if v <= bound:
            candidates[count] = v
            count += 1
    if count < size:
        for s in range(n_samples):
            candidates[s] = loglik[s]
        count = n_samples
    _sort_smallest(candidates, count, size)
    for j in range(size):
        value[j] = candidates[j]
    return top


@numba.njit(cache=True, fastmath=FAST, error_model="numpy")
def _body_sums(loglik, low, cutoff, high):
    """``sum(exp(x - cutoff))`` over the draws outside the tail (``x = low - loglik <= cutoff``) and
    ``sum(exp(loglik - high))`` over all: the two passes over every draw, as SIMD code."""
    body = 0.0
    total = 0.0
    for s in range(loglik.shape[0]):
        x = low - loglik[s]
        body += vector_math.exp(x - cutoff) if x <= cutoff else 0.0
        total += vector_math.exp(loglik[s] - high)
    return body, total


@numba.njit(cache=True)
def _psis_loo_one(loglik, cutoff_rank, value, candidates):
    """``(elpd_loo_i, lppd_i, k_i)`` of one observation from its ``S`` log-likelihood draws.

    The log importance ratios are ``x = min(loglik) - loglik`` (at most 0). Only the ``cutoff_rank``
    largest are smoothed: the smallest log-likelihoods, which :func:`_smallest` finds into the scratch
    ``value`` (``cutoff_rank + 1`` slots) with ``candidates`` (``S``). Every other draw's ratio times its
    likelihood is the same ``exp(min(loglik))``, so the weighted sum needs the tail alone and the
    normalising sum one pass over the draws.
    """
    n_samples = loglik.shape[0]
    size = cutoff_rank + 1
    high = _smallest(loglik, size, value, candidates)
    low = value[0]
    cutoff = max(low - value[size - 1], TINY_LOG)  # the (cutoff_rank + 1)-th largest ratio
    n_tail = 0
    while n_tail < size and low - value[n_tail] > cutoff:
        n_tail += 1  # the tail: ratios above the cutoff, largest first
    smoothed = np.empty(n_tail)
    for j in range(n_tail):
        smoothed[j] = low - value[j]
    k = np.inf
    if n_tail > 4:
        exp_cutoff = math.exp(cutoff)
        exceed = np.empty(n_tail)
        for i in range(n_tail):  # ascending
            exceed[i] = math.exp(smoothed[n_tail - 1 - i]) - exp_cutoff
        k, sigma = _gpdfit(exceed)
        if np.isfinite(k):
            for i in range(n_tail):
                p = (i + 0.5) / n_tail
                if sigma <= 0:
                    q = np.nan
                elif abs(k) < EPS:
                    q = -math.log1p(-p) * sigma
                else:
                    q = math.expm1(-k * math.log1p(-p)) / k * sigma
                smoothed[n_tail - 1 - i] = min(math.log(q + exp_cutoff), 0.0)
    body, total = _body_sums(loglik, low, cutoff, high)
    n_body = n_samples - n_tail
    top = cutoff  # log of sum(exp(ratios)): the body's terms, relative to the cutoff, and the tail's
    top_weighted = low  # log of sum(exp(ratio + loglik)): every body term is exp(low)
    for j in range(n_tail):
        top = max(top, smoothed[j])
        top_weighted = max(top_weighted, smoothed[j] + value[j])
    ratios = body * math.exp(cutoff - top)
    weighted = n_body * math.exp(low - top_weighted)
    for j in range(n_tail):
        ratios += math.exp(smoothed[j] - top)
        weighted += math.exp(smoothed[j] + value[j] - top_weighted)
    elpd = top_weighted + math.log(weighted) - (top + math.log(ratios))
    return elpd, high + math.log(total) - math.log(n_samples), k


@numba.njit(cache=True)
def psis_loo_block(loglik, cutoff_rank):
    """PSIS-LOO of each observation of ``loglik`` (observations x draws, C order).

    Returns
    -------
    elpd_i, lppd_i, k : numpy.ndarray
        Pointwise LOO log predictive density, in-sample log pointwise predictive density, Pareto k.
    """
    n_obs = loglik.shape[0]
    elpd, lppd, k = np.empty(n_obs), np.empty(n_obs), np.empty(n_obs)
    _psis_loo_rows(loglik, cutoff_rank, 0, n_obs, elpd, lppd, k)
    return elpd, lppd, k


@numba.njit(cache=True, inline="always")
def _psis_loo_rows(loglik, cutoff_rank, lo, hi, elpd, lppd, k):
    """Fill ``elpd``, ``lppd`` and ``k`` of the observations ``lo:hi``, with scratch of their own."""
    n_samples = loglik.shape[1]
    size = min(cutoff_rank + 1, n_samples)
    value = np.empty(size)
    candidates = np.empty(n_samples)
    for i in range(lo, hi):
        elpd[i], lppd[i], k[i] = _psis_loo_one(loglik[i], size - 1, value, candidates)


THREADS_FROM = 20_000_000
"""Log-likelihood values (units x draws) from which a LOO runs on numba's threads: below, the serial code
is fast enough, and the threaded code is not compiled (about 15 s the first time, on the 2 cores here)."""

_pool = threading.Lock()
"""Held while this process runs numba's thread pool: numba's default pool (workqueue, the one pip's numba
has) aborts the process when a second thread launches work on it meanwhile."""


@contextlib.contextmanager
def thread_pool(wanted: bool):
    """Yield whether this thread may run numba's thread pool now: ``wanted``, more than one thread, and no
    other thread of this process running it (held until the block ends)."""
    if not (wanted and numba.get_num_threads() > 1 and _pool.acquire(blocking=False)):
        yield False
        return
    try:
        yield True
    finally:
        _pool.release()


def psis_loo(loglik: np.ndarray, cutoff_rank: int, pool: bool = False):
    """:func:`psis_loo_block`, on numba's threads where ``pool`` says this thread holds them (see
    :func:`thread_pool`); the same values either way."""
    if pool and loglik.shape[0] > 1:
        n_chunks = min(loglik.shape[0], 8 * numba.get_num_threads())
        return psis_loo_block_threads(loglik, cutoff_rank, n_chunks)
    return psis_loo_block(loglik, cutoff_rank)


@numba.njit(cache=True, parallel=True)
def psis_loo_block_threads(loglik, cutoff_rank, n_chunks):
    """:func:`psis_loo_block` over ``n_chunks`` shares of the observations on numba's threads."""
    n_obs = loglik.shape[0]
    elpd, lppd, k = np.empty(n_obs), np.empty(n_obs), np.empty(n_obs)
    for chunk in numba.prange(n_chunks):
        lo, hi = chunk * n_obs // n_chunks, (chunk + 1) * n_obs // n_chunks
        _psis_loo_rows(loglik, cutoff_rank, lo, hi, elpd, lppd, k)
    return elpd, lppd, k
