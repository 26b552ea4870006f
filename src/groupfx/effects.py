"""Effects people can read: counterfactual contrasts on the outcome scale, per group and on average.

The contrast of raising x by ``delta`` for unit i is ``E[y_i | x_i + delta] - E[y_i | x_i]`` on the
outcome scale (a probability for Bernoulli and Binomial, an expected count for Poisson, a mean for
Gaussian), with everything else about the unit and its group held as it is: the group intercept, z, and
the group-level proxy of U (the observed group mean of x in the Mundlak model, u in the latent one), since
raising x does not change the group's unobserved causes. Per group it is averaged over the group's
units, and over all units it is the average marginal effect (AME); each is computed draw by draw and
summarised by its mean and 94% HDI.

The expected outcome is taken from the fitted PyMC model itself: the graph of the outcome's mean parameter
is vectorised over posterior draws (as the log-likelihood is) with the unit-level data as inputs, and
evaluated on blocks of units, so no ``draws x N`` array is held (memory is ``draws x block + draws x G``).
The models the fused kernels serve (the five strategies with the default priors) have the same expected
outcome in closed form, evaluated in one numba pass (:meth:`ExpectedOutcome.closed_form`, tested equal to
the PyMC graph's), which saves compiling a PyTensor function per model (about 0.3 s each).
"""

from __future__ import annotations

from dataclasses import dataclass

import arviz as az
import numba
import numpy as np
import pandas as pd
import pymc as pm
import pytensor
import pytensor.tensor as pt
from pymc.model.transform.conditioning import remove_value_transforms
from pytensor.graph.replace import graph_replace, vectorize_graph
from pytensor.graph.traversal import explicit_graph_inputs

from groupfx import kernels, vector_math
from groupfx.data import GroupedData
from groupfx.families import OUTCOME
from groupfx.loglik import flatten_draws
from groupfx.results import HDI_PROB, Fit

BLOCK_BYTES = 64 * 2**20
"""Largest ``draws x units`` block of expected outcomes computed at once."""
UNIT_DATA = ("x", "g", "trials", "log_exposure")
"""The unit-level data containers, fed block by block."""
EFFECT_COLUMNS = ("model", "x", "delta", "group", "mean", "sd", "hdi_low", "hdi_high", "truth")
"""Columns of the effects table (``effects.csv``)."""


@numba.njit(cache=True, fastmath=vector_math.FAST, error_model="numpy")
def _expected_block(family, c, position, xt, bxy, offset, out):
    """Fill ``out[s, i]``, the expected outcome of unit ``i`` under draw ``s``: the inverse link of
    ``c[s, position[i]] + offset[i] + sum_k bxy[s, k] xt[k, i]``."""
    n_samples, n_units = out.shape
    for s in range(n_samples):
        row, cs = out[s], c[s]
        for i in range(n_units):
            row[i] = cs[position[i]] + offset[i]
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
        mean = rv.owner.inputs[-1] if rv.owner.op.name == "binomial" else rv.owner.inputs[2]
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
    def closed_form(cls, model: str, data: GroupedData, family: str) -> ExpectedOutcome:
        """The expected outcome of a model the fused kernels serve, without PyTensor.

        One numba pass: the group-level part of the linear predictor of the block's groups
        (:func:`groupfx.kernels.group_predictor`) plus ``x @ bxy``, through the family's inverse link (the
        probability of a success for the Binomial, with the log exposure for the Poisson). Same inputs and
        result as :meth:`of`.
        """
        kind = kernels.KINDS[model]
        parameters = kernels.predictor_parameters(kind, data.n_z)
        names = ["x", "g"] + (["log_exposure"] if family == "poisson" and data.exposure is not None else [])

        code = kernels.FAMILY_CODES[family]

        def function(*args: np.ndarray) -> np.ndarray:
            draws = dict(zip(parameters, args[: len(parameters)], strict=True))
            units = dict(zip(names, args[len(parameters) :], strict=True))
            groups, position = np.unique(units["g"], return_inverse=True)
            c = np.ascontiguousarray(kernels.group_predictor(kind, draws, data.z, data.xbar, groups))
            xt = np.ascontiguousarray(np.asarray(units["x"], dtype=float).T)
            offset = np.asarray(units.get("log_exposure", np.zeros(xt.shape[1])), dtype=float)
            out = np.empty((c.shape[0], xt.shape[1]))
            _expected_block(code, c, position, xt, np.ascontiguousarray(draws["bxy"]), offset, out)
            return out

        return cls(function, parameters, names)


def flat_draws(fit: Fit, names: list[str]) -> dict[str, np.ndarray]:
    """The posterior draws of ``names`` with chains and draws flattened into one leading dimension."""
    return flatten_draws(fit.idata.posterior, names)


def unit_data(fit: Fit) -> dict[str, np.ndarray]:
    """The unit-level inputs of the expected outcome (:data:`UNIT_DATA`) of a fit's data."""
    data = fit.data
    values = {"x": data.x, "g": data.group}
    if data.trials is not None:
        values["trials"] = data.trials
    if data.exposure is not None:
        values["log_exposure"] = np.log(data.exposure)
    return values


def contrast_draws(fit: Fit, x: str | None = None, delta: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Draws of the contrast of raising ``x`` by ``delta``: per group ``(draws, G)`` and average ``(draws,)``.

    Parameters
    ----------
    fit : Fit
        A fitted model.
    x : str, optional
        Which unit-level variable to raise (default: the first).
    delta : float
        By how much (default 1).
    """
    data = fit.data
    x = data.x_names[0] if x is None else x
    if x not in data.x_names:
        raise ValueError(
            f"{x!r} is not a unit-level variable of this fit; choose from {', '.join(data.x_names)}."
        )
    column = data.x_names.index(x)
    expected = fit.expected_outcome
    params = flat_draws(fit, expected.parameters)
    n_draws = next(iter(params.values())).shape[0]
    units = unit_data(fit)
    block = max(1, BLOCK_BYTES // (8 * n_draws))
    sums = np.zeros((n_draws, data.n_groups))
    for start in range(0, data.n_units, block):
        stop = min(data.n_units, start + block)
        chunk = {name: values[start:stop] for name, values in units.items()}
        raised = dict(chunk, x=chunk["x"].copy())
        raised["x"][:, column] += delta
        args = [params[name] for name in expected.parameters]
        difference = expected.function(*args, *(raised[n] for n in expected.data)) - expected.function(
            *args, *(chunk[n] for n in expected.data)
        )
        codes = chunk["g"]
        order = np.argsort(codes, kind="stable")
        starts = np.flatnonzero(np.r_[True, np.diff(codes[order]) != 0])
        sums[:, codes[order][starts]] += np.add.reduceat(difference[:, order], starts, axis=1)
    sizes = data.group_sizes
    return sums / sizes, sums.sum(axis=1) / data.n_units


def true_contrasts(simulated, x: str | None = None, delta: float = 1.0) -> tuple[np.ndarray, float]:
    """The true contrasts of simulated data (from the truth and the simulated U): per group and the AME."""
    data, s = simulated.data, simulated.settings
    eta = s.a0 + s.bxy * data.x[:, 0] + simulated.ug[data.group] + s.bzy * data.z[data.group, 0]
    difference = 1 / (1 + np.exp(-(eta + s.bxy * delta))) - 1 / (1 + np.exp(-eta))
    per_group = np.bincount(data.group, weights=difference, minlength=data.n_groups) / data.group_sizes
    return per_group, float(difference.mean())


def _summary(values: np.ndarray) -> dict[str, float]:
    low, high = az.hdi(values, hdi_prob=HDI_PROB)
    return {"mean": float(values.mean()), "sd": float(values.std(ddof=1)), "hdi_low": float(low),
            "hdi_high": float(high)}  # fmt: skip


def contrasts(fit: Fit, x: str | None = None, delta: float = 1.0, simulated=None) -> pd.DataFrame:
    """The contrast of raising ``x`` by ``delta`` on the outcome scale, per group and on average.

    Parameters
    ----------
    fit : Fit
        A fitted model.
    x : str, optional
        Which unit-level variable (default: the first).
    delta : float
        By how much to raise it (default 1).
    simulated : SimulatedData, optional
        The simulation ``fit`` came from: adds the true contrasts (``truth``).

    Returns
    -------
    pandas.DataFrame
        Columns ``model, x, delta, group, mean, sd, hdi_low, hdi_high, truth``: one row per group (its
        label) and a last row with group ``"average"`` (the average marginal effect over the units).
    """
    x = fit.data.x_names[0] if x is None else x
    per_group, average = contrast_draws(fit, x, delta)
    truth_groups, truth_average = (None, None) if simulated is None else true_contrasts(simulated, x, delta)
    base = {"model": fit.label, "x": x, "delta": delta}
    rows = []
    for code, label in enumerate(fit.data.group_labels):
        truth = np.nan if truth_groups is None else float(truth_groups[code])
        rows.append(base | {"group": label} | _summary(per_group[:, code]) | {"truth": truth})
    truth = np.nan if truth_average is None else truth_average
    rows.append(base | {"group": "average"} | _summary(average) | {"truth": truth})
    return pd.DataFrame(rows, columns=list(EFFECT_COLUMNS))


def contrast_errors(effects: pd.DataFrame) -> pd.DataFrame:
    """Per model: mean squared error across groups of the posterior-mean contrast against the truth, and
    whether the average contrast's HDI covers the true one."""
    rows = []
    for model, table in effects.groupby("model", sort=False):
        groups = table[table["group"] != "average"]
        average = table[table["group"] == "average"].iloc[0]
        rows.append(
            {
                "model": model,
                "mse_groups": float(((groups["mean"] - groups["truth"]) ** 2).mean()),
                "average": float(average["mean"]),
                "true_average": float(average["truth"]),
                "covers_average": bool(average["hdi_low"] <= average["truth"] <= average["hdi_high"]),
            }
        )
    return pd.DataFrame(rows)
