"""The ways of sampling a model agree within their Monte-Carlo error.

The fused kernel is compared with the PyMC graph of the same model, float32 with float64, and JAX with
numba. Each comparison covers the mean and the 10%, 50% and 90% quantiles (the tails stand in for the
spread) of abar, tau, bxy, bzy and buy. The two samplers run with different seeds, so their draws are
independent. A statistic agrees when ``|a - b| <= K * sqrt(mcse_a**2 + mcse_b**2)``, using ArviZ's
Monte-Carlo standard errors (``az.mcse``). K is chosen so that two correct samplers fail any of the
file's comparisons with probability at most :data:`FALSE_ALARM`: a two-sided normal bound with a
Bonferroni correction over all of them (K is about 3.8). The seeds are fixed, so every run gives the
same result.

A bound is only useful if it is small next to the posterior sd. With 4 chains of 1000 draws each, every
bound is checked to stay below :data:`INFORMATIVE` posterior sds (the bounds on the means are about 0.1
sd), so a sampler whose means or quantiles are off by that much fails. Each run must first converge
(R-hat below 1.01) so that its Monte-Carlo standard errors can be trusted.
"""

from __future__ import annotations

import arviz as az
import numpy as np
import pytest
from scipy import stats

import groupfx
from groupfx.data.simulate import SimulatedData
from groupfx.engines.sampling import SamplerSettings, compile_model, draw_samples
from groupfx.models.builders import build_model, get_spec

PARAMETERS = ("abar", "tau", "bxy", "bzy", "buy")  # every one a scalar here (one x, one z)
QUANTILES = (0.1, 0.5, 0.9)
STATISTICS = ("mean", *QUANTILES)
PAIRS = 3  # kernel vs PyMC graph, float32 vs float64, JAX vs numba
FALSE_ALARM = 0.01
"""The chance that two correct samplers fail any comparison in this file."""
K = float(stats.norm.isf(FALSE_ALARM / 2 / (PAIRS * len(PARAMETERS) * len(STATISTICS))))
INFORMATIVE = 0.4
"""Every bound must be below this many posterior sds, or the draws are too few for the test to mean much.
With 4 chains of 1000 draws the bounds are about 0.1 sd for the means and medians, 0.2 sd for the tail
quantiles of the slopes and up to 0.3 sd for those of tau (its bulk ESS is about 850 of 4000 draws)."""
DRAWS = {"draws": 1000, "tune": 1000, "chains": 4}


@pytest.fixture(scope="module")
def sim() -> SimulatedData:
    # 20 groups: with 8, one chain in a few falls into the funnel at small tau on either path
    return groupfx.simulate(n_groups=20, n_units=600, seed=5)


@pytest.fixture(scope="module")
def kernel_fit(sim) -> groupfx.Fit:
    """The reference: the Mundlak model's fused kernel, float64, on numba."""
    return groupfx.fit(sim, "mundlak", warn=False, seed=1, **DRAWS)


def _estimates(
    idata: az.InferenceData, parameters: tuple[str, ...] = PARAMETERS
) -> dict[tuple[str, str], tuple[float, float]]:
    """Each (parameter, statistic): its estimate from the draws and ArviZ's Monte-Carlo standard error."""
    posterior = idata.posterior[list(parameters)]
    dims = ("chain", "draw")
    found = {}
    for statistic in STATISTICS:
        if statistic == "mean":
            value, error = posterior.mean(dims), az.mcse(posterior, method="mean")
        else:
            value = posterior.quantile(statistic, dim=dims)
            error = az.mcse(posterior, method="quantile", prob=statistic)
        for name in parameters:
            found[(name, str(statistic))] = (float(value[name].item()), float(error[name].item()))
    return found


def assert_same_posterior(
    first: az.InferenceData, second: az.InferenceData, parameters: tuple[str, ...] = PARAMETERS, k: float = K
) -> None:
    """Both runs converged and every statistic of the (scalar) ``parameters`` agrees within ``k`` combined
    Monte-Carlo standard errors (this file's K, or the caller's for its own count of comparisons)."""
    for idata in (first, second):
        r_hat = az.rhat(idata.posterior[list(parameters)])
        assert all(float(r_hat[name].item()) < 1.01 for name in parameters), r_hat
    a, b = _estimates(first, parameters), _estimates(second, parameters)
    sds = {name: float(second.posterior[name].std()) for name in parameters}
    assert a.keys() == b.keys()
    disagreements = []
    for key, (value_a, error_a) in a.items():
        value_b, error_b = b[key]
        bound = k * np.hypot(error_a, error_b)
        sd = sds[key[0]]
        assert bound < INFORMATIVE * sd, f"{key}: bound {bound:.4f} is not small next to the sd {sd:.4f}"
        if abs(value_a - value_b) > bound:
            disagreements.append(f"{key}: {value_a:.4f} vs {value_b:.4f}, bound {bound:.4f}")
    assert not disagreements, disagreements


def test_single_precision_samples_the_same_posterior_as_double(sim, kernel_fit):
    single = groupfx.fit(sim, "mundlak", warn=False, seed=2, precision="float32", **DRAWS)
    assert single.settings.precision == "float32" and kernel_fit.settings.precision == "float64"
    assert_same_posterior(single.idata, kernel_fit.idata)


@pytest.mark.slow
def test_the_fused_kernel_samples_the_same_posterior_as_the_pymc_graph(sim, kernel_fit, monkeypatch):
    # the same model with the same (default) priors, compiled from its PyMC graph and sampled by nutpie
    spec = get_spec("mundlak")
    model = build_model(spec.name, sim.data, groupfx.models.priors.resolve_priors(), "bernoulli")
    settings = SamplerSettings(seed=3, **DRAWS)
    through_pymc = draw_samples(compile_model(model), settings, settings.seed, spec.target_accept)
    assert_same_posterior(kernel_fit.idata, through_pymc)
    # the reference went through the kernel: fitting it again never compiles the PyMC graph
    monkeypatch.setattr(
        "groupfx.inference.engine.compile_model", lambda *a: pytest.fail("the PyMC graph was compiled")
    )
    groupfx.fit(sim, "mundlak", warn=False, draws=60, tune=60, chains=2)
    graph_only = {name for name in through_pymc.posterior.data_vars if not str(name).endswith("__")}
    assert set(kernel_fit.idata.posterior.data_vars) == graph_only
    assert kernel_fit.idata.posterior["e"].dims == through_pymc.posterior["e"].dims


@pytest.mark.slow
def test_the_jax_backend_samples_the_same_posterior_as_the_numba_kernel(sim, kernel_fit):
    pytest.importorskip("jax")
    on_jax = groupfx.fit(sim, "mundlak", warn=False, seed=4, backend="jax", **DRAWS)
    assert on_jax.idata.sample_stats.attrs["backend"] == "jax"
    assert on_jax.idata.sample_stats.attrs["device"]  # cpu here, gpu (...) where JAX has one
    assert kernel_fit.idata.sample_stats.attrs["backend"] == "numba"
    assert set(on_jax.idata.posterior.data_vars) == set(kernel_fit.idata.posterior.data_vars)
    assert_same_posterior(on_jax.idata, kernel_fit.idata)
