"""The per-unit pass of the fused kernels: log-likelihood, residuals and slope gradient, as SIMD loops.

The units are sorted by group (``starts[g]:starts[g + 1]`` holds group ``g``), so each group is a
contiguous run: its linear predictor ``c[g] + x @ bxy`` needs no gather, its residual sum no scatter,
and every loop is a straight loop over at most ``CHUNK`` units that LLVM turns into vector code
(``exp`` and ``log1p`` from :mod:`groupfx.engines.vector_math`). :func:`unit_pass` takes float64 or float32
data; the single-precision pass keeps twice the lanes busy and sums in float64.

On two-way data (a period ``times[i]`` per unit, a period part ``period`` of length T) each unit's period
part is gathered into its linear predictor and its residual scattered into its period's sum beside the
group's; one-way data pass ``period`` and ``times`` empty, and the pass then takes the one-way loops (the
choice is made once per block of units, never per unit).
"""

from __future__ import annotations

import numba
import numpy as np
from numba.core import types
from numba.extending import overload

from groupfx.engines import vector_math
from groupfx.models import families

BERNOULLI, BINOMIAL, POISSON, GAUSSIAN = (
    family.kernel_code
    for family in (families.BERNOULLI, families.BINOMIAL, families.POISSON, families.GAUSSIAN)
)
"""The families' codes in the kernels (each :class:`groupfx.models.families.Family` carries its own)."""
FAST = vector_math.FAST
CHUNK = 256
"""Units handled per vectorised block (blocks never straddle two groups)."""


@numba.njit(nogil=True, cache=True, fastmath=FAST, error_model="numpy")
def _unit_pass(family, bxy, c, period, xt, y, starts, times, trials, offset, inv_var_y):
    """Log-likelihood of the units and its derivative by each group's and each period's linear predictor
    and by ``bxy``.

    Returns ``(log-likelihood, sum of squared residuals (Gaussian), residual sum per group, residual sum
    per period (empty one-way), x' residual)``.
    """
    n_x = xt.shape[0]
    n_groups = starts.shape[0] - 1
    eta = np.empty(CHUNK)
    r = np.empty(CHUNK)
    resid = np.zeros(n_groups)
    resid_t = np.zeros(period.shape[0])
    two_way = period.shape[0] > 0
    gx = np.zeros(n_x)
    lp = 0.0
    squares = 0.0
    for gi in range(n_groups):
        for lo in range(starts[gi], starts[gi + 1], CHUNK):
            m = min(CHUNK, starts[gi + 1] - lo)
            if two_way:
                for j in range(m):
                    eta[j] = c[gi] + period[times[lo + j]]
            else:
                for j in range(m):
                    eta[j] = c[gi]
            for k in range(n_x):
                b = bxy[k]
                for j in range(m):
                    eta[j] += b * xt[k, lo + j]
            block_lp = 0.0
            block_r = 0.0
            if family == BERNOULLI:  # logit link: softplus and sigmoid from one exp
                for j in range(m):
                    e = eta[j]
                    t = vector_math.exp(-abs(e))
                    inv = 1.0 / (1.0 + t)
                    block_lp += y[lo + j] * e - max(e, 0.0) - vector_math.log1p_unit(t)
                    r[j] = y[lo + j] - inv * (t + np.float64(e > 0.0) * (1.0 - t))
                    block_r += r[j]
            elif family == BINOMIAL:  # the same with trials[i] draws
                for j in range(m):
                    e = eta[j]
                    t = vector_math.exp(-abs(e))
                    softplus = max(e, 0.0) + vector_math.log1p_unit(t)
                    inv = 1.0 / (1.0 + t)
                    block_lp += y[lo + j] * e - trials[lo + j] * softplus
                    r[j] = y[lo + j] - trials[lo + j] * inv * (t + np.float64(e > 0.0) * (1.0 - t))
                    block_r += r[j]
            elif family == POISSON:  # Poisson(exp(eta + log exposure))
                for j in range(m):
                    e = eta[j] + offset[lo + j]
                    mu = vector_math.exp(e)
                    block_lp += y[lo + j] * e - mu
                    r[j] = y[lo + j] - mu
                    block_r += r[j]
            else:  # Normal(eta, sigma_y)
                for j in range(m):
                    d = y[lo + j] - eta[j]
                    squares += d * d
                    r[j] = d * inv_var_y
                    block_r += r[j]
            lp += block_lp
            resid[gi] += block_r
            if two_way:
                for j in range(m):
                    resid_t[times[lo + j]] += r[j]
            for k in range(n_x):
                total = 0.0
                for j in range(m):
                    total += r[j] * xt[k, lo + j]
                gx[k] += total
    return lp, squares, resid, resid_t, gx


@numba.njit(nogil=True, cache=True, fastmath=FAST, error_model="numpy")
def _unit_pass32(family, bxy, c, period, xt, y, starts, times, trials, offset, inv_var_y):
    """:func:`_unit_pass` in single precision: float32 data, lanes and exp/log1p; float64 sums."""
    n_x = xt.shape[0]
    n_groups = starts.shape[0] - 1
    eta = np.empty(CHUNK, dtype=np.float32)
    r = np.empty(CHUNK, dtype=np.float32)
    zero, one = np.float32(0.0), np.float32(1.0)
    inv_var = np.float32(inv_var_y)
    resid = np.zeros(n_groups)
    resid_t = np.zeros(period.shape[0])
    two_way = period.shape[0] > 0
    gx = np.zeros(n_x)
    lp = 0.0
    squares = 0.0
    for gi in range(n_groups):
        for lo in range(starts[gi], starts[gi + 1], CHUNK):
            m = min(CHUNK, starts[gi + 1] - lo)
            if two_way:
                for j in range(m):
                    eta[j] = np.float32(c[gi] + period[times[lo + j]])
            else:
                for j in range(m):
                    eta[j] = np.float32(c[gi])
            for k in range(n_x):
                b = np.float32(bxy[k])
                for j in range(m):
                    eta[j] += b * xt[k, lo + j]
            block_lp = 0.0
            block_r = 0.0
            if family == BERNOULLI:  # logit link: softplus and sigmoid from one exp
                for j in range(m):
                    e = eta[j]
                    t = vector_math.exp32(-abs(e))
                    inv = one / (one + t)
                    block_lp += np.float64(y[lo + j] * e - max(e, zero) - vector_math.log1p_unit32(t))
                    r[j] = y[lo + j] - inv * (t + np.float32(e > zero) * (one - t))
                    block_r += np.float64(r[j])
            elif family == BINOMIAL:  # the same with trials[i] draws
                for j in range(m):
                    e = eta[j]
                    t = vector_math.exp32(-abs(e))
                    softplus = max(e, zero) + vector_math.log1p_unit32(t)
                    inv = one / (one + t)
                    block_lp += np.float64(y[lo + j] * e - trials[lo + j] * softplus)
                    r[j] = y[lo + j] - trials[lo + j] * inv * (t + np.float32(e > zero) * (one - t))
                    block_r += np.float64(r[j])
            elif family == POISSON:  # Poisson(exp(eta + log exposure))
                for j in range(m):
                    e = eta[j] + offset[lo + j]
                    mu = vector_math.exp32(e)
                    block_lp += np.float64(y[lo + j] * e - mu)
                    r[j] = y[lo + j] - mu
                    block_r += np.float64(r[j])
            else:  # Normal(eta, sigma_y)
                for j in range(m):
                    d = y[lo + j] - eta[j]
                    squares += np.float64(d * d)
                    r[j] = d * inv_var
                    block_r += np.float64(r[j])
            lp += block_lp
            resid[gi] += block_r
            if two_way:
                for j in range(m):
                    resid_t[times[lo + j]] += np.float64(r[j])
            for k in range(n_x):
                total = 0.0
                for j in range(m):
                    total += np.float64(r[j] * xt[k, lo + j])
                gx[k] += total
    return lp, squares, resid, resid_t, gx


def unit_pass(family, bxy, c, period, xt, y, starts, times, trials, offset, inv_var_y):
    """``(log-likelihood, sum of squared residuals, residual sum per group, residual sum per period, x'
    residual)`` of the units.

    Called from numba code; the data's dtype (float64 or float32) picks the pass.
    """
    raise NotImplementedError("unit_pass is called from numba-compiled code")


@overload(unit_pass, inline="always")
def _unit_pass_for_dtype(family, bxy, c, period, xt, y, starts, times, trials, offset, inv_var_y):
    if xt.dtype == types.float32:
        return lambda family, bxy, c, period, xt, y, starts, times, trials, offset, inv_var_y: _unit_pass32(
            family, bxy, c, period, xt, y, starts, times, trials, offset, inv_var_y
        )
    return lambda family, bxy, c, period, xt, y, starts, times, trials, offset, inv_var_y: _unit_pass(
        family, bxy, c, period, xt, y, starts, times, trials, offset, inv_var_y
    )
