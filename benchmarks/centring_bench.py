"""Design measurement: centred against non-centred group intercepts in the Mundlak model.

Data-rich groups are said to sample better centred (``a[g] ~ Normal(mu[g], tau)``) than non-centred
(``a[g] = mu[g] + tau e[g]``, ``e[g] ~ Normal(0, 1)``, groupfx's parametrisation). This script fits the
Mundlak model both ways as plain PyMC models sampled by nutpie (the same priors each way, 4 chains x
(1000 + 1000), target acceptance 0.8) on the seed's causal graph and prints one JSON line per fit: steps
per draw, divergences, sampling time, bulk ESS and the largest R-hat of bxy, bzy, buy and tau.

Usage: ``python benchmarks/centring_bench.py GROUPS UNITS``. Not part of ``make bench``; the result is in
``design_results.md``.
"""

from __future__ import annotations

import json
import sys
import time

import arviz as az
import numpy as np
import nutpie
import pymc as pm

import groupfx

PARAMETERS = ["bxy", "bzy", "buy", "tau"]


def mundlak(data: groupfx.GroupedData, centred: bool) -> pm.Model:
    """The one-x, one-z Mundlak model with its group intercepts centred or not."""
    x, z, group = data.x[:, 0], data.z[:, 0], data.group
    xbar = np.bincount(group, weights=x) / np.bincount(group)
    with pm.Model() as model:
        abar, tau = pm.Normal("abar", 0, 1.5), pm.HalfNormal("tau", 1)
        bxy, bzy, buy = pm.Normal("bxy", 0, 1), pm.Normal("bzy", 0, 1), pm.Normal("buy", 0, 1)
        mu = abar + bzy * z + buy * xbar
        if centred:
            a = pm.Normal("a", mu, tau, shape=data.n_groups)
        else:
            a = mu + tau * pm.Normal("e", 0, 1, shape=data.n_groups)
        pm.Bernoulli("y", logit_p=a[group] + bxy * x, observed=data.y)
    return model


def main(groups: int, units: int) -> None:
    data = groupfx.simulate(n_groups=groups, n_units=units, seed=42).data
    for centred in (False, True):
        compiled = nutpie.compile_pymc_model(mundlak(data, centred))
        start = time.perf_counter()
        trace = nutpie.sample(compiled, draws=1000, tune=1000, chains=4, target_accept=0.8, seed=1,
                              progress_bar=False)  # fmt: skip
        seconds = time.perf_counter() - start
        ess = az.ess(trace, var_names=PARAMETERS)
        row = {
            "groups": data.n_groups,
            "units": data.n_units,
            "centred": centred,
            "steps_per_draw": float(trace.sample_stats["n_steps"].mean()),
            "divergences": int(trace.sample_stats["diverging"].sum()),
            "sampling_s": seconds,
            "ess_bulk": {name: float(ess[name]) for name in PARAMETERS},
            "rhat_max": float(az.rhat(trace, var_names=PARAMETERS).to_array().max()),
        }
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
