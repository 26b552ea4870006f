"""``exp`` and ``log1p`` written as plain arithmetic, so that numba's loops over units become SIMD code.

The libm calls behind ``np.exp`` and ``np.log1p`` are opaque to LLVM's loop vectoriser (numba's LLVM has no
vector math library), so a loop calling them runs one double at a time. These versions use only
multiplications, additions, one division, a floor and a bit cast, which LLVM vectorises (8 doubles a
lane on AVX-512). Accuracy, tested against NumPy: relative error below 1e-13 for ``exp`` on [-708, 709]
and absolute error below 1e-15 for ``log1p`` on [0, 1].

Callers must compile with ``error_model="numpy"`` (numba otherwise guards every division with a branch
that stops vectorisation) and ``fastmath=FAST`` (which lets LLVM reorder the sums of a reduction).
"""

from __future__ import annotations

import numba
import numpy as np
from numba.core import types
from numba.extending import intrinsic

LOG2E = 1.4426950408889634
LN2 = 0.6931471805599453
SQRT2_MINUS_1 = 0.41421356237309503
FAST = {"reassoc", "contract", "arcp", "nsz"}
"""LLVM's fast-math flags that allow SIMD reductions; not ``nnan``/``ninf``, so NaN and inf propagate."""


@intrinsic
def _float_from_bits(typingctx, bits):
    """Reinterpret an int64 as the float64 with the same bits (a no-op instruction)."""
    signature = types.float64(types.int64)

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], context.get_value_type(types.float64))

    return signature, codegen


@numba.njit(inline="always", fastmath=FAST, error_model="numpy", cache=True)
def exp(x: float) -> float:
    """``e ** x`` for ``x`` clamped to [-708, 709] (below, the result is below 1e-307; above, it overflows).

    ``x = n ln 2 + r`` with ``|r| <= ln 2 / 2``; ``e ** r`` by its Taylor polynomial to degree 12
    (truncation error below 2e-16) and ``2 ** n`` built from its exponent bits.
    """
    x = min(max(x, -708.0), 709.0)
    n = np.floor(x * LOG2E + 0.5)
    r = x - n * LN2
    p = r * (1 / 479001600)
    p = r * (1 / 39916800 + p)
    p = r * (1 / 3628800 + p)
    p = r * (1 / 362880 + p)
    p = r * (1 / 40320 + p)
    p = r * (1 / 5040 + p)
    p = r * (1 / 720 + p)
    p = r * (1 / 120 + p)
    p = r * (1 / 24 + p)
    p = r * (1 / 6 + p)
    p = r * (0.5 + p)
    p = 1.0 + r * (1.0 + p)
    return p * _float_from_bits((np.int64(n) + 1023) << 52)


@numba.njit(inline="always", fastmath=FAST, error_model="numpy", cache=True)
def log1p_unit(t: float) -> float:
    """``log(1 + t)`` for ``t`` in [0, 1].

    Above sqrt(2) - 1 the argument is halved (``1 + t = 2 (1 + f)``, ``f = (t - 1) / 2``) so that
    ``|f| <= 0.42``; then ``log(1 + f) = 2 atanh(s)``, ``s = f / (2 + f)``, ``|s| <= 0.172``, by its
    odd series to ``s ** 21`` (truncation error below 1e-17). The halving is a blend, not a branch.
    """
    upper = np.float64(t > SQRT2_MINUS_1)
    f = t + upper * ((t - 1.0) * 0.5 - t)
    s = f / (2.0 + f)
    s2 = s * s
    q = s2 * (1 / 21)
    q = s2 * (1 / 19 + q)
    q = s2 * (1 / 17 + q)
    q = s2 * (1 / 15 + q)
    q = s2 * (1 / 13 + q)
    q = s2 * (1 / 11 + q)
    q = s2 * (1 / 9 + q)
    q = s2 * (1 / 7 + q)
    q = s2 * (1 / 5 + q)
    q = s2 * (1 / 3 + q)
    return upper * LN2 + 2.0 * s * (1.0 + q)
