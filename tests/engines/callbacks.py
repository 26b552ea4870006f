"""What the kernel tests share: the C callbacks nutpie calls, held equal to the kernel they wrap."""

from __future__ import annotations

import ctypes

import numpy as np

from groupfx.data.grouped import GroupedData
from groupfx.engines import kernels, native
from groupfx.engines.kernels import FusedModel

DOUBLE_P = ctypes.POINTER(ctypes.c_double)


def call_logp(compiled, theta: np.ndarray) -> tuple[int, float, np.ndarray]:
    """nutpie's call of the log-density callback: ``(code, log-density, gradient)``."""
    grad, logp = np.zeros(theta.shape[0]), np.zeros(1)
    code = compiled.compiled_logp_func.ctypes(
        theta.shape[0], theta.ctypes.data_as(DOUBLE_P), grad.ctypes.data_as(DOUBLE_P),
        logp.ctypes.data_as(DOUBLE_P), ctypes.c_void_p(compiled.user_data.ctypes.data),
    )  # fmt: skip
    return code, float(logp[0]), grad


def assert_callbacks_equal_the_kernel(data: GroupedData, family: str):
    """For every served model and precision, the log-density, gradient and expanded draws the C callbacks
    give equal :class:`FusedModel`'s bit for bit at one point; returns the last compiled model."""
    for name in kernels.SERVED_MODELS:
        for precision in kernels.PRECISIONS:
            fused = FusedModel(name, data, family, precision)
            compiled = native.compile_native(fused)
            theta = np.random.default_rng(2).normal(0, 0.5, fused.n_dim)
            code, logp, grad = call_logp(compiled, theta)
            expected_logp, expected_grad = fused.logp_grad(theta)
            assert code == 0 and logp == expected_logp and np.array_equal(grad, expected_grad), name
            expanded = np.full(compiled.n_expanded, np.nan)
            code = compiled.compiled_expand_func.ctypes(
                fused.n_dim, compiled.n_expanded, theta.ctypes.data_as(DOUBLE_P),
                expanded.ctypes.data_as(DOUBLE_P), ctypes.c_void_p(compiled.user_data.ctypes.data),
            )  # fmt: skip
            expected = np.concatenate([np.ravel(v) for v in fused.expand(theta).values()])
            assert code == 0 and np.array_equal(expanded, expected), (name, precision)
    return compiled
