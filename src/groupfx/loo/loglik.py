"""Pointwise log-likelihood of the outcome, vectorised over posterior draws, and PSIS-LOO from it.

``pm.compute_log_likelihood`` evaluates the model once per draw in a Python loop. Here the model's
elementwise log-density of ``y_obs`` is vectorised with PyTensor over a leading draw dimension and
compiled once. :func:`loo` evaluates it block by block of units and never holds the whole
``(draws, N)`` array; :func:`pointwise_loglik` returns that array (for small data, and as the reference
the tests hold :func:`loo` to). Models fitted through the fused kernels take :mod:`groupfx.loo.fused`.
"""

from __future__ import annotations

import arviz as az
import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
import xarray as xr
from pymc.model.transform.conditioning import remove_value_transforms
from pytensor.graph.replace import vectorize_graph
from pytensor.graph.traversal import explicit_graph_inputs

from groupfx.loo import psis, subsample
from groupfx.models.families import OUTCOME

BLOCK_BYTES = 256 * 2**20
"""Largest block of pointwise values computed at once."""
LOO_BLOCK_BYTES = 64 * 2**20
"""Largest block of pointwise values :func:`loo` holds (all draws of a block of units)."""
SUBSAMPLE_BLOCK_BYTES = 8 * 2**20
"""The block of a subsample's LOO: its units are scattered, so a block holds few of each group, and a small
block's memory is reused from block to block (fresh pages cost about 10 us each to touch here: at 100,000
units a subsample's LOO took 1.6 s in 64 MiB blocks, most of it first touches)."""


def flatten_draws(posterior: xr.Dataset, names: list[str]) -> dict[str, np.ndarray]:
    """The draws of each of ``names``, chains and draws flattened into one leading dimension."""
    n_samples = posterior.sizes["chain"] * posterior.sizes["draw"]
    return {name: posterior[name].to_numpy().reshape(n_samples, *posterior[name].shape[2:]) for name in names}


def pointwise_loglik_function(model: pm.Model, var_name: str = OUTCOME):
    """Compile ``f(**params) -> (S, N)`` for the elementwise log-density of ``var_name``.

    Each parameter is passed with a leading sample dimension ``S`` in the constrained space, as it is
    stored in a posterior.

    Returns
    -------
    function, list of str, pymc.Model
        The compiled function, the names of the parameters it takes (in order), and the model whose data
        containers it reads: a copy of ``model`` (its data are set with ``pm.set_data(..., model=copy)``).
    """
    umodel = remove_value_transforms(model)
    elementwise = umodel.logp(vars=[umodel[var_name]], sum=False)[0]
    free_values = {v.name: v for v in umodel.value_vars if v.name in {rv.name for rv in umodel.free_RVs}}
    used = [v for v in explicit_graph_inputs([elementwise]) if v.name in free_values]
    batched = {v: pt.tensor(v.name, shape=(None, *v.type.shape), dtype=v.dtype) for v in used}
    out = vectorize_graph(elementwise, replace=batched)
    fn = pytensor.function(list(batched.values()), out, on_unused_input="ignore")
    return fn, [v.name for v in used], umodel


def pointwise_loglik(
    model: pm.Model, posterior: xr.Dataset, var_name: str = OUTCOME, function=None
) -> xr.DataArray:
    """Pointwise log-likelihood of ``var_name`` for every posterior draw.

    Parameters
    ----------
    model : pymc.Model
        The model the posterior was drawn from.
    posterior : xarray.Dataset
        Posterior with dimensions ``chain`` and ``draw`` first.
    var_name : str
        Observed variable.
    function : tuple, optional
        ``pointwise_loglik_function(model, var_name)``, compiled once and reused: it reads the data
        containers of the model copy it returns, so after ``pm.set_data`` on that copy it evaluates the new
        data.

    Returns
    -------
    xarray.DataArray
        Dimensions ``(chain, draw, unit)``.
    """
    fn, names, _ = function or pointwise_loglik_function(model, var_name)
    n_chains, n_draws = posterior.sizes["chain"], posterior.sizes["draw"]
    stacked = flatten_draws(posterior, names)
    n_obs = int(np.prod(model[var_name].shape.eval()))
    block = max(1, BLOCK_BYTES // (8 * n_obs))
    total = n_chains * n_draws
    values = np.empty((total, n_obs))
    for start in range(0, total, block):
        stop = min(total, start + block)
        values[start:stop] = fn(*(stacked[name][start:stop] for name in names)).reshape(stop - start, -1)
    return xr.DataArray(
        values.reshape(n_chains, n_draws, n_obs),
        dims=("chain", "draw", "unit"),
        coords={"chain": posterior["chain"], "draw": posterior["draw"]},
        name=var_name,
    )


def loo_block_units(n_samples: int, subsample: bool = False) -> int:
    """Units whose pointwise log-likelihood :func:`loo` evaluates at once, for ``n_samples`` draws (of a
    subsample: :data:`SUBSAMPLE_BLOCK_BYTES`)."""
    return max(1, (SUBSAMPLE_BLOCK_BYTES if subsample else LOO_BLOCK_BYTES) // (8 * n_samples))


def loo(
    model: pm.Model,
    idata: az.InferenceData,
    var_name: str = OUTCOME,
    function=None,
    setting: str | int = "auto",
) -> az.ELPDData:
    """PSIS-LOO of ``var_name``, computed block by block over the units and kept nowhere.

    The pointwise log-likelihood is evaluated for a block of units at a time (all draws, at most
    ``LOO_BLOCK_BYTES``), smoothed and summed by :func:`groupfx.loo.psis.psis_loo`, and dropped, so the
    ``chains x draws x N`` array never exists: at N = 1e6 and 4000 draws it would be 32 GB. With every
    unit computed the result is ``arviz.loo``'s (tests hold the two equal) and works with
    ``arviz.compare``; on large data :func:`groupfx.loo.subsample.loo` may score a subsample instead.

    Parameters
    ----------
    model : pymc.Model
        The model the posterior was drawn from.
    idata : arviz.InferenceData
        Its posterior.
    var_name : str
        Observed variable.
    function : tuple, optional
        ``pointwise_loglik_function(model, var_name)``, compiled once and reused.
    setting : str or int
        ``"auto"``, ``"exact"`` or a number of units to subsample (:func:`groupfx.loo.subsample.loo`).

    Returns
    -------
    arviz.ELPDData
        As ``arviz.loo(..., pointwise=True)`` returns it (subsampled: see :func:`groupfx.loo.subsample.loo`).
    """
    fn, names, umodel = function or pointwise_loglik_function(model, var_name)
    posterior = idata.posterior
    n_chains, n_draws = posterior.sizes["chain"], posterior.sizes["draw"]
    n_samples = n_chains * n_draws
    flat = flatten_draws(posterior, names)
    stacked = [flat[name] for name in names]
    unit_data = {
        name: umodel[name].get_value()
        for name, dims in umodel.named_vars_to_dims.items()
        if name in {v.name for v in umodel.data_vars} and dims and dims[0] == "unit"
    }
    n_obs = len(next(iter(unit_data.values())))

    def evaluate(units: np.ndarray | slice, draws: list[np.ndarray]) -> np.ndarray:
        """The log-likelihood of ``units`` under each of ``draws``, as (units, draws)."""
        pm.set_data(
            {name: values[units] for name, values in unit_data.items()},
            model=umodel,
            coords={"unit": np.arange(n_obs)[units]},
        )
        return np.ascontiguousarray(np.asarray(fn(*draws)).reshape(draws[0].shape[0], -1).T)

    cutoff_rank = psis.tail_length(n_samples, relative_efficiency(posterior))

    def exact(units: np.ndarray | None):
        chosen = np.arange(n_obs) if units is None else units
        block = loo_block_units(n_samples, subsample=units is not None)
        threads = len(chosen) * n_samples >= psis.THREADS_FROM
        elpd_i, lppd_i, pareto_k = (np.empty(len(chosen)) for _ in range(3))
        for start in range(0, len(chosen), block):
            stop = min(len(chosen), start + block)
            picked = slice(start, stop) if units is None else chosen[start:stop]
            values = evaluate(picked, stacked)
            with psis.thread_pool(threads) as pool:
                elpd_i[start:stop], lppd_i[start:stop], pareto_k[start:stop] = psis.psis_loo(
                    values, cutoff_rank, pool
                )
        return elpd_i, lppd_i, pareto_k

    def approximate() -> np.ndarray:
        means = [draws.mean(axis=0, keepdims=True) for draws in stacked]
        return evaluate(slice(None), means)[:, 0]

    try:
        return subsample.loo(n_obs, n_samples, exact, approximate, setting)
    finally:  # the model copy may be reused (the study's compile cache): give it its data back
        pm.set_data(unit_data, model=umodel, coords={"unit": np.arange(n_obs)})


def relative_efficiency(posterior: xr.Dataset) -> float:
    """Mean ESS of every posterior value over the number of draws (ArviZ's ``reff``; 1 for one chain)."""
    n_chains, n_draws = posterior.sizes["chain"], posterior.sizes["draw"]
    if n_chains == 1:
        return 1.0
    ess_mean = az.ess(posterior, method="mean")
    values = np.hstack([ess_mean[v].values.ravel() for v in ess_mean.data_vars])
    return float(values.mean() / (n_chains * n_draws))
