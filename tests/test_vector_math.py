"""The SIMD-friendly exp and log1p agree with NumPy's to near machine precision, and pass NaN on."""

from __future__ import annotations

import numba
import numpy as np

from groupfx import vector_math


@numba.njit(fastmath=vector_math.FAST, error_model="numpy")
def _exp_all(values):
    out = np.empty_like(values)
    for i in range(values.shape[0]):
        out[i] = vector_math.exp(values[i])
    return out


@numba.njit(fastmath=vector_math.FAST, error_model="numpy")
def _log1p_all(values):
    out = np.empty_like(values)
    for i in range(values.shape[0]):
        out[i] = vector_math.log1p_unit(values[i])
    return out


def test_exp_has_relative_error_below_1e13_over_its_range():
    x = np.concatenate([np.linspace(-708, 709, 200_001), np.random.default_rng(0).normal(0, 5, 100_000)])
    np.testing.assert_allclose(_exp_all(x), np.exp(x), rtol=1e-13, atol=0)


def test_exp_clamps_rather_than_wrapping_around():
    assert _exp_all(np.array([-1e4]))[0] < 1e-307
    assert _exp_all(np.array([1e4]))[0] > 1e307


def test_log1p_has_absolute_error_below_2e16_on_zero_one():
    t = np.concatenate([np.linspace(0, 1, 200_001), np.exp(-np.linspace(0, 700, 10_000)), [1e-300, 0.0]])
    np.testing.assert_allclose(_log1p_all(t), np.log1p(t), rtol=0, atol=2.3e-16)
    np.testing.assert_allclose(_log1p_all(t[t > 1e-12]), np.log1p(t[t > 1e-12]), rtol=1e-15)
