"""The fused kernels handed to nutpie as C callbacks: no Python and no GIL in any gradient evaluation.

``nutpie.compiled_pyfunc.from_pyfunc`` calls a Python function for every log-density and gradient; each call
takes the GIL, boxes the point into an array and dispatches the numba kernel, an overhead that on small data
is a large share of the sampler's time, and that serialises the chains on the GIL. nutpie's own PyMC path
instead calls a numba ``cfunc`` through a pointer. This module builds such cfuncs around
:func:`groupfx.engines.kernels._logp_grad` and :func:`groupfx.engines.kernels.expand_into`, reading the
model's arrays, its layout table (:class:`groupfx.engines.kernels.KernelLayout`) and its prior table
(:func:`groupfx.engines.kernels.prior_table`) through a small table of addresses (``user_data``), so the
compiled code holds no data and numba caches it on disk. The model object is nutpie's ``CompiledPyMCModel``
filled with these callbacks.

Tests hold the callbacks equal, bit for bit, to :class:`groupfx.engines.kernels.FusedModel`'s methods, and a
fit through them equal in distribution to one through the PyMC model. What this saves against Python
callbacks is measured in ``benchmarks/design_results.md``.
"""

from __future__ import annotations

import functools

import numba
import numpy as np
import pandas as pd
from numba.core import types
from numba.extending import intrinsic

from groupfx.engines import kernels
from groupfx.engines.kernels import N_COLUMNS, PRIOR_COLUMNS, PRIOR_PARAMETERS, SLOTS, FusedModel

# user_data: the addresses and sizes of the kernel's arrays, of its layout table and of its prior table,
# one uint64 each
(XT, N_X, N_UNITS, Y, STARTS, N_GROUPS, Z, N_Z, XBAR, SS, SIZES, TRIALS, OFFSET, KIND, FAMILY, TABLE, T,
 N_TIMES, XBAR_T, SHARES, TIME_SIZES, X_SUM_T, CELLS, PRIORS) = range(24)  # fmt: skip
USER_DATA_LENGTH = 24
N_SLOTS = len(SLOTS)
N_PRIORS = len(PRIOR_PARAMETERS)

LOGP_SIGNATURE = types.int64(
    types.uint64, types.CPointer(types.double), types.CPointer(types.double), types.CPointer(types.double),
    types.voidptr,
)  # fmt: skip
EXPAND_SIGNATURE = types.int64(
    types.uint64, types.uint64, types.CPointer(types.double), types.CPointer(types.double), types.voidptr
)


def _pointer_intrinsic(element):
    @intrinsic
    def as_pointer(typingctx, address):
        signature = types.CPointer(element)(address)

        def codegen(context, builder, sig, args):
            if isinstance(sig.args[0], types.RawPointer):
                return builder.bitcast(args[0], context.get_value_type(sig.return_type))
            return builder.inttoptr(args[0], context.get_value_type(sig.return_type))

        return signature, codegen

    return as_pointer


_u64_pointer = _pointer_intrinsic(types.uint64)
_f64_pointer = _pointer_intrinsic(types.float64)
_f32_pointer = _pointer_intrinsic(types.float32)
_i64_pointer = _pointer_intrinsic(types.int64)
_i32_pointer = _pointer_intrinsic(types.int32)


@numba.njit(cache=True)
def _logp_into(dim, x_, out_, logp_, ud, xt, y, trials, offset, periods):
    """Evaluate the kernel at the point ``x_`` and write the gradient and log-density; nutpie's codes:
    0 done, 3 a non-finite gradient, 4 a non-finite log-density. ``periods`` is :func:`_periods` or
    ``None`` (no period part: the kernel's period code is then not compiled)."""
    n_groups, n_z = np.int64(ud[N_GROUPS]), np.int64(ud[N_Z])
    n_x = xt.shape[0]
    lp, grad = kernels._logp_grad(
        numba.carray(x_, (dim,)),
        np.int64(ud[KIND]),
        np.int64(ud[FAMILY]),
        numba.carray(_i64_pointer(ud[TABLE]), (N_SLOTS, N_COLUMNS)),
        numba.carray(_f64_pointer(ud[PRIORS]), (N_PRIORS, PRIOR_COLUMNS)),
        xt,
        y,
        numba.carray(_i64_pointer(ud[STARTS]), (n_groups + 1,)),
        numba.carray(_f64_pointer(ud[Z]), (n_groups, n_z)),
        numba.carray(_f64_pointer(ud[XBAR]), (n_groups, n_x)),
        numba.carray(_f64_pointer(ud[SS]), (n_groups, n_x)),
        numba.carray(_f64_pointer(ud[SIZES]), (n_groups,)),
        n_groups,
        trials,
        offset,
        periods,
    )
    out = numba.carray(out_, (dim,))
    finite = True
    for i in range(dim):
        out[i] = grad[i]
        finite = finite and np.isfinite(grad[i])
    logp_[0] = lp
    if not finite:
        return 3
    if not np.isfinite(lp):
        return 4
    return 0


@numba.njit(cache=True)
def _periods(ud):
    """The period arrays the kernel reads where the predictor has a period part."""
    n_x, n_groups, n_units = np.int64(ud[N_X]), np.int64(ud[N_GROUPS]), np.int64(ud[N_UNITS])
    n_times = np.int64(ud[N_TIMES])
    return (
        numba.carray(_i32_pointer(ud[T]), (n_units,)),
        numba.carray(_f64_pointer(ud[XBAR_T]), (n_times, n_x)),
        numba.carray(_f64_pointer(ud[SHARES]), (n_groups, n_times - 1)),
        numba.carray(_f64_pointer(ud[TIME_SIZES]), (n_times,)),
        numba.carray(_f64_pointer(ud[X_SUM_T]), (n_times, n_x)),
        numba.carray(_f64_pointer(ud[CELLS]), (n_groups, n_times)),
    )


@numba.njit(cache=True)
def _units64(ud):
    """``(xt, y, trials, offset)`` of float64 data."""
    n_x, n = np.int64(ud[N_X]), np.int64(ud[N_UNITS])
    return (
        numba.carray(_f64_pointer(ud[XT]), (n_x, n)),
        numba.carray(_f64_pointer(ud[Y]), (n,)),
        numba.carray(_f64_pointer(ud[TRIALS]), (n,)),
        numba.carray(_f64_pointer(ud[OFFSET]), (n,)),
    )


@numba.njit(cache=True)
def _units32(ud):
    """``(xt, y, trials, offset)`` of float32 data."""
    n_x, n = np.int64(ud[N_X]), np.int64(ud[N_UNITS])
    return (
        numba.carray(_f32_pointer(ud[XT]), (n_x, n)),
        numba.carray(_f32_pointer(ud[Y]), (n,)),
        numba.carray(_f32_pointer(ud[TRIALS]), (n,)),
        numba.carray(_f32_pointer(ud[OFFSET]), (n,)),
    )


# The four log-density callbacks: precision x (one-way, two-way); each compiles only the code it runs.
def _logp_float64(dim, x_, out_, logp_, user_data_):
    ud = numba.carray(_u64_pointer(user_data_), (USER_DATA_LENGTH,))
    return _logp_into(dim, x_, out_, logp_, ud, *_units64(ud), None)


def _logp_float64_periods(dim, x_, out_, logp_, user_data_):
    ud = numba.carray(_u64_pointer(user_data_), (USER_DATA_LENGTH,))
    return _logp_into(dim, x_, out_, logp_, ud, *_units64(ud), _periods(ud))


def _logp_float32(dim, x_, out_, logp_, user_data_):
    ud = numba.carray(_u64_pointer(user_data_), (USER_DATA_LENGTH,))
    return _logp_into(dim, x_, out_, logp_, ud, *_units32(ud), None)


def _logp_float32_periods(dim, x_, out_, logp_, user_data_):
    ud = numba.carray(_u64_pointer(user_data_), (USER_DATA_LENGTH,))
    return _logp_into(dim, x_, out_, logp_, ud, *_units32(ud), _periods(ud))


def _expand(dim, n_expanded, x_, out_, user_data_):
    ud = numba.carray(_u64_pointer(user_data_), (USER_DATA_LENGTH,))
    theta, out = numba.carray(x_, (dim,)), numba.carray(out_, (n_expanded,))
    kernels.expand_into(theta, out, numba.carray(_i64_pointer(ud[TABLE]), (N_SLOTS, N_COLUMNS)),
                        np.int64(ud[N_X]), np.int64(ud[N_TIMES]))  # fmt: skip
    return 0


@functools.cache
def callbacks(precision: str, periods: bool = False) -> tuple:
    """The log-density callback of ``precision`` (with the period part where ``periods``) and the
    expansion callback, as numba cfuncs.

    Compiled (or loaded from numba's cache) on first use, so a run compiles only the precision it samples
    in, and a one-way fit not the period code: the first run on a fresh install spends about 11 s less
    compiling than with both precisions, and about 2 s less than with the period code.
    """
    logp = {
        ("float64", False): _logp_float64,
        ("float64", True): _logp_float64_periods,
        ("float32", False): _logp_float32,
        ("float32", True): _logp_float32_periods,
    }[precision, periods]
    return numba.cfunc(LOGP_SIGNATURE, cache=True)(logp), _expand_callback()


@functools.cache
def _expand_callback():
    """The expansion callback, one for every precision (it reads float64 draws)."""
    return numba.cfunc(EXPAND_SIGNATURE, cache=True)(_expand)


def user_data(fused: FusedModel) -> np.ndarray:
    """The table of addresses the callbacks read; valid while ``fused.arrays``, ``fused.layout`` and
    ``fused.priors`` live."""
    a = fused.arrays
    table = np.zeros(USER_DATA_LENGTH, dtype=np.uint64)
    for slot, array in ((XT, a.xt), (Y, a.y), (STARTS, a.starts), (Z, a.z), (XBAR, a.xbar), (SS, a.ss),
                        (SIZES, a.sizes), (TRIALS, a.trials), (OFFSET, a.offset), (TABLE, fused.layout.table),
                        (T, a.t), (XBAR_T, a.xbar_t), (SHARES, a.shares), (TIME_SIZES, a.time_sizes),
                        (X_SUM_T, a.x_sum_t), (CELLS, a.cells), (PRIORS, fused.priors)):  # fmt: skip
        if not array.flags.c_contiguous:  # FusedModel makes them so
            raise ValueError("the kernel's arrays must be C-contiguous")
        table[slot] = array.ctypes.data
    if a.t.dtype != np.int32 or fused.layout.table.shape[1] != N_COLUMNS:
        raise ValueError("the period codes must be int32 and the layout table N_COLUMNS wide")
    if fused.priors.dtype != np.float64 or fused.priors.shape != (N_PRIORS, PRIOR_COLUMNS):
        raise ValueError("the prior table must be float64, one row per named prior")
    table[N_X], table[N_UNITS] = a.xt.shape
    table[N_GROUPS], table[N_Z] = a.n_groups, a.z.shape[1]
    table[KIND], table[FAMILY] = fused.kind, fused.family.kernel_code
    table[N_TIMES] = a.n_times
    return table


def compile_native(fused: FusedModel):
    """A nutpie model sampling ``fused`` through C callbacks (nutpie's ``CompiledPyMCModel``)."""
    from nutpie.compile_pymc import CompiledPyMCModel

    logp, expand = callbacks(fused.precision, fused.arrays.n_times > 0)
    names, shapes, dims = fused.expanded()
    where = fused.layout.expanded_slices()
    slices = [where[name] for name in names]
    data = fused.data
    coords = {"group": pd.Index(data.group_labels), "x_var": pd.Index(data.x_names)}
    if data.n_z:
        coords["z_var"] = pd.Index(data.z_names)
    if fused.layout.two_way:
        coords["time"] = pd.Index(data.time_labels)
        coords["period_rest"] = pd.Index(data.time_labels[1:])
    table = user_data(fused)
    return CompiledPyMCModel(
        _n_dim=fused.n_dim,
        dims=dims,
        _coords=coords,
        _shapes=dict(zip(names, shapes, strict=True)),
        compiled_logp_func=logp,
        compiled_expand_func=expand,
        initial_point_func=fused.initial_point,
        # keeps the addresses valid
        shared_data={"arrays": fused.arrays, "layout": fused.layout.table, "priors": fused.priors},
        user_data=table,
        n_expanded=slices[-1].stop,
        shape_info=(names, slices, shapes),
        logp_func=None,
        expand_func=None,
    )
