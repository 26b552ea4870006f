"""The SIMD-friendly exp and log1p agree with NumPy's to near machine precision, and pass NaN on."""

from __future__ import annotations

import numba
import numpy as np

from groupfx.engines import vector_math


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


@numba.njit(fastmath=vector_math.FAST, error_model="numpy")
def _log_all(values):
    out = np.empty_like(values)
    for i in range(values.shape[0]):
        out[i] = vector_math.log(values[i])
    return out


def test_log_has_relative_error_below_1e15_over_the_normal_range():
    w = np.concatenate([np.geomspace(1e-300, 1e300, 200_001), np.linspace(0.5, 2.0, 100_001)])
    got, want = _log_all(w), np.log(w)
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-16 * np.maximum(1, np.abs(want)).max())
    np.testing.assert_allclose(got[np.abs(want) > 1e-3], want[np.abs(want) > 1e-3], rtol=1e-15)


def test_the_exponent_crosses_between_float_and_integer_exactly_over_its_whole_range():
    """Every power of two the two functions build or read (the integer passes through ``ROUNDING``)."""
    e = np.arange(-1021, 1023)
    np.testing.assert_array_equal(_log_all(np.ldexp(1.0, e)), e * np.log(2.0))
    np.testing.assert_allclose(_exp_all(e * np.log(2.0)), np.ldexp(1.0, e), rtol=1e-13, atol=0)


@numba.njit(fastmath=vector_math.FAST, error_model="numpy")
def _single(values):
    e = np.empty_like(values)
    lg = np.empty_like(values)
    for i in range(values.shape[0]):
        e[i] = vector_math.exp32(values[i])
        lg[i] = vector_math.log1p_unit32(min(max(values[i], np.float32(0.0)), np.float32(1.0)))
    return e, lg


def test_single_precision_exp_and_log1p_are_accurate_to_float32():
    x = np.concatenate([np.linspace(-87, 88, 200_001), np.linspace(0, 1, 100_001)]).astype(np.float32)
    e, lg = _single(x)
    assert e.dtype == np.float32 and lg.dtype == np.float32
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(e, np.exp(x64), rtol=4e-7)
    np.testing.assert_allclose(lg, np.log1p(np.clip(x64, 0, 1)), rtol=0, atol=2e-7)
