"""The expected outcome of a fitted model over its draws: ``f(params..., x, g, ...) -> (draws, units)``.

Effects and model checks evaluate it on blocks of units. It is taken from the fitted PyMC model itself
(:meth:`ExpectedOutcome.of`): the graph of the outcome's mean parameter is vectorised over posterior draws
(as the log-likelihood is) with the unit-level data as inputs. The models the fused kernels serve have the
same expected outcome in closed form, evaluated in one numba pass (:meth:`ExpectedOutcome.closed_form`,
tested equal to the PyMC graph's), which saves compiling a PyTensor function per model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
from pymc.model.transform.conditioning import remove_value_transforms
from pytensor.graph.replace import graph_replace, vectorize_graph
from pytensor.graph.traversal import explicit_graph_inputs

from groupfx.data.grouped import GroupedData
from groupfx.engines import kernels, vector_math
from groupfx.models.builders import get_spec
from groupfx.models.families import OUTCOME, Family, family_of_outcome, get_family

UNIT_DATA = ("x", "g", "t", "trials", "log_exposure")
"""The unit-level data containers, fed block by block."""


@numba.njit(cache=True, fastmath=vector_math.FAST, error_model="numpy")
def _expected_block(family, c, position, d, times, xt, bxy, offset, out):
    """Fill ``out[s, i]``, the expected outcome of unit ``i`` under draw ``s``: the inverse link of
    ``c[s, position[i]] (+ d[s, times[i]]) + offset[i] + sum_k bxy[s, k] xt[k, i]`` (the period part ``d``
    where it has any periods)."""
    n_samples, n_units = out.shape
    two_way = d.shape[1] > 0
    for s in range(n_samples):
        row, cs = out[s], c[s]
        for i in range(n_units):
            row[i] = cs[position[i]] + offset[i]
        if two_way:
            ds = d[s]
            for i in range(n_units):
                row[i] += ds[times[i]]
        for k in range(xt.shape[0]):
            slope, xk = bxy[s, k], xt[k]
            for i in range(n_units):
                row[i] += slope * xk[i]
        if family == kernels.BERNOULLI or family == kernels.BINOMIAL:
            for i in range(n_units):
                row[i] = 1.0 / (1.0 + vector_math.exp(-row[i]))
        elif family == kernels.POISSON:
            for i in range(n_units):
                row[i] = vector_math.exp(row[i])


@dataclass
class ExpectedOutcome:
    """A compiled ``f(params..., x, g, ...) -> (draws, units)`` of the expected outcome of a fitted model."""

    function: object
    parameters: list[str]
    data: list[str]

    @classmethod
    def of(cls, model: pm.Model) -> ExpectedOutcome:
        """Compile the expected outcome of ``model``'s ``y_obs`` (its mean parameter) over draws."""
        umodel = remove_value_transforms(model)
        rv = umodel[OUTCOME]
        mean = rv.owner.inputs[family_of_outcome(rv.owner.op.name).mean_input]
        (mean,) = umodel.replace_rvs_by_values([mean])
        free = {v.name: v for v in umodel.value_vars if v.name in {r.name for r in umodel.free_RVs}}
        inputs = list(explicit_graph_inputs([mean]))
        used = [v for v in inputs if getattr(v, "name", None) in free]
        shared = {v.name: v for v in umodel.data_vars if v.name in UNIT_DATA}
        symbolic = {
            var: pt.tensor(name, shape=(None,) * var.ndim, dtype=var.dtype) for name, var in shared.items()
        }
        mean = graph_replace(mean, replace=dict(symbolic.items()), strict=False)
        batched = {v: pt.tensor(v.name, shape=(None, *v.type.shape), dtype=v.dtype) for v in used}
        out = vectorize_graph(mean, replace=batched)
        out = pt.broadcast_to(out, (out.shape[0], symbolic[shared["g"]].shape[0]))
        function = pytensor.function(
            [*batched.values(), *symbolic.values()], out, on_unused_input="ignore", allow_input_downcast=True
        )
        return cls(function, [v.name for v in used], list(shared))

    @classmethod
    def closed_form(cls, model: str, data: GroupedData, family: str | Family) -> ExpectedOutcome:
        """The expected outcome of a model the fused kernels serve, without PyTensor.

        One numba pass: the group-level part of the linear predictor of the block's groups
        (:func:`groupfx.engines.kernels.group_predictor`), on two-way data the period part of each unit's
        period (:func:`groupfx.engines.kernels.period_predictor`), plus ``x @ bxy``, through the family's
        inverse link (the probability of a success for the Binomial, with the log exposure for the Poisson).
        Same inputs and result as :meth:`of`.
        """
        kind = kernels.kernel_kind(get_spec(model))
        parameters = kernels.predictor_parameters(kind, data)
        family = get_family(family)
        two_way = kernels.has_period_part(kind, data)
        names = ["x", "g"] + (["t"] if two_way else [])
        names += ["log_exposure"] if family.takes_exposure and data.exposure is not None else []
        code = family.kernel_code

        def function(*args: np.ndarray) -> np.ndarray:
            draws = dict(zip(parameters, args[: len(parameters)], strict=True))
            units = dict(zip(names, args[len(parameters) :], strict=True))
            groups, position = np.unique(units["g"], return_inverse=True)
            c = np.ascontiguousarray(kernels.group_predictor(kind, draws, data, groups))
            d = np.ascontiguousarray(kernels.period_predictor(kind, draws, data))
            times = np.asarray(units["t"], dtype=np.int64) if two_way else np.zeros(0, dtype=np.int64)
            xt = np.ascontiguousarray(np.asarray(units["x"], dtype=float).T)
            offset = np.asarray(units.get("log_exposure", np.zeros(xt.shape[1])), dtype=float)
            out = np.empty((c.shape[0], xt.shape[1]))
            _expected_block(code, c, position, d, times, xt, np.ascontiguousarray(draws["bxy"]), offset, out)
            return out

        return cls(function, parameters, names)
