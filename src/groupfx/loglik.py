"""Pointwise log-likelihood of the outcome, vectorised over posterior draws.

``pm.compute_log_likelihood`` evaluates the model once per draw in a Python loop. Here the model's
elementwise log-density of ``y_obs`` is vectorised with PyTensor over a leading draw dimension and
compiled once, then evaluated on blocks of draws, so at most one ``(draws, N)`` block of a bounded size
is alive at a time besides the result.
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

from groupfx.families import OUTCOME

BLOCK_BYTES = 256 * 2**20
"""Largest block of pointwise values computed at once."""


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
    stacked = {
        name: posterior[name].to_numpy().reshape(n_chains * n_draws, *posterior[name].shape[2:])
        for name in names
    }
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


def loo(model: pm.Model, idata: az.InferenceData, var_name: str = OUTCOME, function=None) -> az.ELPDData:
    """PSIS-LOO of ``var_name``, computed without keeping the log-likelihood in ``idata``."""
    loglik = pointwise_loglik(model, idata.posterior, var_name, function)
    scratch = az.InferenceData(posterior=idata.posterior, log_likelihood=xr.Dataset({var_name: loglik}))
    return az.loo(scratch, pointwise=True, var_name=var_name)
