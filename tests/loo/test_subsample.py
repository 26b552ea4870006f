"""Subsampled PSIS-LOO: the difference estimator is unbiased with the variance it states, its subsample's
values are exact LOO's, both engines serve it, ``auto`` grows or gives up on the subsample as measured,
and ``compare`` estimates differences on the units the models share."""

from __future__ import annotations

import pickle

import arviz as az
import numpy as np
import pytest

import groupfx
from groupfx.engines import kernels
from groupfx.errors import InputError
from groupfx.loo import fused as fused_loo
from groupfx.loo import loglik, subsample

from .test_psis import _expanded_posterior

Z = 4.0
"""Standard errors a Monte-Carlo mean may lie from its expectation (a chance of 6e-5 per check)."""


def test_the_difference_estimator_is_unbiased_with_the_variance_it_states():
    """Over many simple random samples: the estimates average to the true sum, their stated variance to
    their spread, and the SE estimate to the population's; each within Z Monte-Carlo errors."""
    rng = np.random.default_rng(0)
    n_units, m, replicates = 5_000, 150, 4_000
    values = rng.normal(-0.7, 0.4, n_units) + rng.gamma(0.5, 0.3, n_units) * -1
    approx = values + rng.normal(0.02, 0.05, n_units) * (1 + np.abs(values))  # biased, noisy
    results = np.array(
        [
            subsample.difference_estimate(approx, values[units], units)
            for units in (rng.choice(n_units, m, replace=False) for _ in range(replicates))
        ]
    )
    totals, stated_var, spread = results.T
    truth = values.sum()
    assert abs(totals.mean() - truth) < Z * totals.std(ddof=1) / replicates**0.5
    assert abs(stated_var.mean() - totals.var(ddof=1)) < Z * (
        stated_var.std(ddof=1) / replicates**0.5 + totals.var(ddof=1) * (2 / (replicates - 1)) ** 0.5
    )
    population = n_units * values.var()
    assert abs(spread.mean() - population) < Z * spread.std(ddof=1) / replicates**0.5 + 1e-3 * population


def test_an_exact_approximation_leaves_no_subsampling_error():
    values = np.random.default_rng(1).normal(size=300)
    units = np.arange(0, 300, 7)
    total, subsampling_var, spread = subsample.difference_estimate(values, values[units], units)
    assert total == pytest.approx(values.sum()) and subsampling_var == pytest.approx(0, abs=1e-20)
    assert spread == pytest.approx(300 * values.var())


def test_every_model_subsamples_a_prefix_of_one_permutation():
    order = subsample.subsample_order(1_000)
    assert sorted(order) == list(range(1_000))
    assert np.array_equal(order, subsample.subsample_order(1_000))  # whatever model asks
    assert not np.array_equal(order[:50], np.arange(50))


def test_a_bad_setting_is_refused_before_any_compute():
    for bad in ("some", 1, 0, -3, 2.5, True):
        with pytest.raises(InputError, match="loo must be 'auto', 'exact' or a number of units"):
            groupfx.SamplerSettings(loo=bad)
        with pytest.raises(ValueError, match="loo must be"):
            subsample.check_setting(bad)
    assert groupfx.SamplerSettings(loo=500).loo == 500


@pytest.mark.parametrize("table", ["two x, two z", pytest.param("gaussian", marks=pytest.mark.slow)])
def test_the_subsample_holds_exact_loos_values_in_both_engines(table, tables, monkeypatch):
    """Fused and PyMC-graph LOO on a subsample: its units' values are exact LOO's (blocks that skip units
    and groups included), the approximation is each unit's log-likelihood at the posterior mean of the
    linear predictor, and the estimate lies within Z subsampling SEs of exact LOO's."""
    data, family = tables[table]
    rng = np.random.default_rng(5)
    monkeypatch.setattr(loglik, "LOO_BLOCK_BYTES", 8 * 300 * 9)  # blocks of about 9 subsampled units
    for name in kernels.SERVED_MODELS:
        fused = kernels.FusedModel(name, data, family)
        posterior = _expanded_posterior(fused, rng)
        exact = fused_loo.loo(fused, posterior, "exact")
        model = groupfx.build_model(name, data, family=family)
        idata = az.InferenceData(posterior=posterior)
        for ours in (fused_loo.loo(fused, posterior, 60), loglik.loo(model, idata, setting=60)):
            assert subsample.is_subsampled(ours) and subsample.n_subsample(ours) == 60
            units = ours.loo_i["unit"].to_numpy()
            assert np.array_equal(units, np.sort(subsample.subsample_order(data.n_units)[:60]))
            np.testing.assert_allclose(ours.loo_i.values, exact.loo_i.values[units], rtol=1e-11, atol=1e-11)
            np.testing.assert_allclose(
                ours.pareto_k.values, exact.pareto_k.values[units], rtol=1e-8, atol=1e-10
            )
            assert ours.n_data_points == data.n_units
            assert abs(ours.elpd_loo - exact.elpd_loo) < Z * ours.subsample_se
            assert f"Subsampled: PSIS smoothed 60 of the {data.n_units:,} units" in str(ours)
            again = pickle.loads(pickle.dumps(ours))  # as a worker process hands a fit back
            assert type(again) is type(ours) and again.subsample_se == ours.subsample_se
        if family == "bernoulli":
            approx = fused_loo.loo(fused, posterior, 60).elpd_approx.to_numpy()
            np.testing.assert_allclose(approx, _loglik_at_mean_predictor(fused, posterior), rtol=1e-10)


def test_auto_keeps_a_small_subsample_where_the_approximation_is_good(small_sim, monkeypatch):
    """On the naive model (three parameters) the first subsample already gives an SE far below 1; with
    the target SE made tiny, ``auto`` gives up on subsampling and smooths every unit: exact LOO itself."""
    fit = groupfx.fit(small_sim, "naive", draws=200, tune=200, chains=2, warn=False)
    fused = kernels.FusedModel("naive", small_sim.data, kernels_family(fit))
    posterior = fit.idata.posterior
    exact = fused_loo.loo(fused, posterior, "exact")
    monkeypatch.setattr(subsample, "SUBSAMPLE_FROM", 0)
    monkeypatch.setattr(subsample, "FIRST_SUBSAMPLE", 50)
    kept = fused_loo.loo(fused, posterior, "auto")
    assert subsample.n_subsample(kept) == 50 and kept.subsample_se < subsample.SUBSAMPLE_SE
    assert abs(kept.elpd_loo - exact.elpd_loo) < Z * kept.subsample_se
    monkeypatch.setattr(subsample, "SUBSAMPLE_SE", 1e-6)
    every = fused_loo.loo(fused, posterior, "auto")
    assert not subsample.is_subsampled(every)
    np.testing.assert_array_equal(every.loo_i.values, exact.loo_i.values)
    assert every.elpd_loo == pytest.approx(exact.elpd_loo, rel=1e-12)


def _loglik_at_mean_predictor(fused, posterior):
    """Each unit's Bernoulli log-likelihood at the posterior mean of its linear predictor, by numpy."""
    data = fused.data
    names = kernels.predictor_parameters(fused.kind, data)
    draws = loglik.flatten_draws(posterior, names)
    c = kernels.group_predictor(fused.kind, draws, data, slice(None)).mean(axis=0)
    eta = c[data.group] + np.asarray(data.x).reshape(data.n_units, -1) @ draws["bxy"].mean(axis=0)
    return data.y * eta - np.logaddexp(0, eta)


def kernels_family(fit):
    from groupfx.models.families import get_family

    return get_family(fit.family)


def test_auto_grows_the_subsample_to_the_size_its_error_needs(small_sim, monkeypatch):
    """Mundlak's approximation errs more (an intercept per group): ``auto`` grows the first subsample
    once, to the size the first one's error variance says, and lands near the target SE."""
    fit = groupfx.fit(small_sim, "mundlak", draws=200, tune=200, chains=2, warn=False)
    fused = kernels.FusedModel("mundlak", small_sim.data, kernels_family(fit))
    posterior = fit.idata.posterior
    monkeypatch.setattr(subsample, "SUBSAMPLE_FROM", 0)
    monkeypatch.setattr(subsample, "FIRST_SUBSAMPLE", 30)
    first = fused_loo.loo(fused, posterior, 30)
    error_var = (first.subsample_se**2) * 30 / (200**2 * (1 - 30 / 200))
    target = 2 * first.subsample_se / 3
    monkeypatch.setattr(subsample, "SUBSAMPLE_SE", target)
    wanted = subsample.needed_units(200, error_var, target)
    assert 30 < wanted <= 100
    grown = fused_loo.loo(fused, posterior, "auto")
    assert subsample.n_subsample(grown) == wanted
    assert np.isin(first.loo_i["unit"], grown.loo_i["unit"]).all()  # the first subsample is kept


def test_compare_estimates_differences_on_the_shared_units(small_sim):
    """Two subsampled fits and an exact one: each elpd_diff lies within Z of its subsampling SE of exact
    LOO's difference, the dse is near exact LOO's, the weights sum to 1, and the plot draws it."""
    exact_fits = groupfx.fit_all(small_sim, ["naive", "mundlak", "multilevel"], draws=200, tune=200,
                                 chains=2, loo="exact", warn=False, workers=1)  # fmt: skip
    exact = groupfx.compare(exact_fits)
    sampled = {}
    for name, m in (("naive", 80), ("mundlak", 120)):
        fit = exact_fits[name]
        fused = kernels.FusedModel(name, small_sim.data, kernels_family(fit))
        sampled[fit.label] = fused_loo.loo(fused, fit.idata.posterior, m)
    sampled["Multilevel"] = exact_fits["multilevel"].loo
    table = subsample.compare_table(sampled)
    assert list(table.columns) == subsample.COMPARE_COLUMNS
    assert table["subsample"].to_dict() == {"Naive": 80, "Mundlak": 120, "Multilevel": 200}
    assert table["weight"].sum() == pytest.approx(1)
    best = table.index[0]
    for label in table.index[1:]:
        truth = exact_fits_diff(exact, best, label)
        assert abs(table.loc[label, "elpd_diff"] - truth) < Z * table.loc[label, "subsample_dse"] + 1e-9
        assert table.loc[label, "dse"] == pytest.approx(exact_dse(exact_fits, best, label), rel=0.5)
    with pytest.raises(ValueError, match="different numbers of units"):
        subsample.compare_table({"a": sampled["Naive"], "b": loglik_elpd_of(10)})


def exact_fits_diff(exact, best, label):
    return exact.loc[best, "elpd_loo"] - exact.loc[label, "elpd_loo"]


def exact_dse(fits, best, label):
    by_label = {fit.label: fit.loo.loo_i.values for fit in fits.values()}
    diff = by_label[best] - by_label[label]
    return (len(diff) * diff.var()) ** 0.5


def loglik_elpd_of(n):
    values = np.zeros(n)
    return subsample.elpd_data(values, values, values, 400)
