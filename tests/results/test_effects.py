"""Contrasts on the outcome scale, group intercepts and predictive checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import groupfx
from groupfx.models.builders import DEFAULT_MODELS
from groupfx.results import effects as effects_module
from groupfx.results.checks import group_intercepts, posterior_predictive_check, prior_predictive_means
from groupfx.results.effects import contrast_draws, contrast_errors, contrasts, true_contrasts

from ..conftest import TINY


def _flat(fit, name):
    values = fit.idata.posterior[name].to_numpy()
    return values.reshape(values.shape[0] * values.shape[1], *values.shape[2:])


def _sigmoid(v):
    return 1 / (1 + np.exp(-v))


def test_contrasts_equal_a_direct_computation_from_the_draws(small_fits, small_sim):
    data = small_sim.data
    fit = small_fits["mundlak"]
    eta = (
        (_flat(fit, "abar")[:, None] + _flat(fit, "tau")[:, None] * _flat(fit, "e"))[:, data.group]
        + _flat(fit, "bzy")[:, :1] * data.z[data.group, 0]
        + _flat(fit, "buy")[:, :1] * data.xbar[data.group, 0]  # the group mean of x is held, not raised
        + _flat(fit, "bxy")[:, :1] * data.x[:, 0]
    )
    difference = _sigmoid(eta + _flat(fit, "bxy")[:, :1]) - _sigmoid(eta)
    per_group, average = contrast_draws(fit)
    np.testing.assert_allclose(average, difference.mean(axis=1), rtol=1e-10)
    for code in range(data.n_groups):
        np.testing.assert_allclose(
            per_group[:, code], difference[:, data.group == code].mean(axis=1), rtol=1e-10
        )


def test_blocks_of_units_give_the_same_contrasts(small_fits, monkeypatch):
    whole = contrast_draws(small_fits["fixed"], delta=0.5)
    monkeypatch.setattr(effects_module, "BLOCK_BYTES", 8 * 120 * 7)  # blocks of 7 units
    blocked = contrast_draws(small_fits["fixed"], delta=0.5)
    np.testing.assert_allclose(whole[0], blocked[0], rtol=1e-12)
    np.testing.assert_allclose(whole[1], blocked[1], rtol=1e-12)


def test_contrast_table_truth_and_errors(small_fits, small_sim):
    table = contrasts(small_fits["naive"], simulated=small_sim)
    assert list(table.columns) == list(effects_module.EFFECT_COLUMNS)
    assert len(table) == small_sim.data.n_groups + 1 and table["group"].iloc[-1] == "average"
    assert (table["truth"] == 0).all()  # bxy = 0: every true contrast is 0
    assert (table["hdi_low"] <= table["mean"]).all() and (table["mean"] <= table["hdi_high"]).all()
    errors = contrast_errors(table).iloc[0]
    assert errors["mse_groups"] == pytest.approx(float((table["mean"].iloc[:-1] ** 2).mean()))
    with pytest.raises(ValueError, match="not a unit-level variable"):
        contrasts(small_fits["naive"], x="hours")


def test_true_contrasts_follow_the_simulated_truth():
    sim = groupfx.simulate(n_groups=5, n_units=300, bxy=1.0, seed=2)
    per_group, average = true_contrasts(sim)
    d, s = sim.data, sim.settings
    eta = s.a0 + d.x[:, 0] + sim.ug[d.group] + s.bzy * d.z[d.group, 0]
    assert average == pytest.approx(float((_sigmoid(eta + 1) - _sigmoid(eta)).mean()))
    assert per_group.shape == (5,) and (per_group > 0).all()


def test_gaussian_contrast_is_bxy_itself():
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"g": np.repeat(np.arange(10), 20), "x": rng.normal(size=200)})
    frame["y"] = 0.7 * frame.x + rng.normal(size=200)
    data = groupfx.read_data(frame, y="y", x="x", group="g", family="gaussian")
    fit = groupfx.fit(data, "fixed", family="gaussian", warn=False, **TINY)
    per_group, average = contrast_draws(fit, delta=2.0)
    np.testing.assert_allclose(average, 2 * _flat(fit, "bxy")[:, 0], rtol=1e-10)
    np.testing.assert_allclose(per_group, np.repeat(average[:, None], 10, axis=1), rtol=1e-10)


def test_group_intercepts_are_the_group_part_of_eta(small_fits, small_sim):
    fit = small_fits["fixed"]
    expected = _flat(fit, "a") + _flat(fit, "bzy")[:, :1] * small_sim.data.z[:, 0]
    np.testing.assert_allclose(group_intercepts(fit), expected, rtol=1e-8, atol=1e-10)


def test_predictive_checks(small_fits, small_sim):
    check = posterior_predictive_check(small_fits["mundlak"], draws=100)
    data = small_sim.data
    observed = np.bincount(data.group, weights=data.y, minlength=data.n_groups) / data.group_sizes
    np.testing.assert_allclose(check.observed, observed)
    assert check.replicated.shape == (100, data.n_groups)
    assert ((check.replicated >= 0) & (check.replicated <= 1)).all()
    assert check.outside <= 0.25  # a model with group intercepts reproduces the groups' shares
    assert check.calibration["units"].sum() == data.n_units
    assert np.corrcoef(check.calibration["predicted"], check.calibration["observed"])[0, 1] > 0.8
    prior = prior_predictive_means(small_fits["naive"], draws=100)
    assert prior.shape == (100,) and ((prior >= 0) & (prior <= 1)).all() and prior.std() > 0.05


@pytest.mark.slow
def test_average_contrast_covers_the_truth_under_within_models_and_naive_misses_it():
    # the lecture's settings: bxy = 1, a0 = -2, bzy = -0.5, U ~ Normal(1.5, 1)
    sim = groupfx.simulate(bxy=1.0, a0=-2.0, bzy=-0.5, u_mean=1.5, u_sd=1.0, seed=1)
    fits = groupfx.fit_all(
        sim, ["naive", "fixed", "mundlak", "latent"], draws=500, tune=500, chains=2, warn=False
    )
    table = pd.concat([contrasts(fit, simulated=sim) for fit in fits.values()])
    errors = contrast_errors(table).set_index("model")
    for label in ("Fixed effects", "Mundlak", "Latent Mundlak"):
        assert errors.loc[label, "covers_average"], label
        assert errors.loc[label, "mse_groups"] < errors.loc["Naive", "mse_groups"] / 5
    assert not errors.loc["Naive", "covers_average"]


@pytest.mark.slow
def test_contrasts_at_a_million_units_are_computed_in_blocks():
    import tracemalloc

    import arviz as az
    import pymc as pm

    from groupfx.engines.sampling import SamplerSettings
    from groupfx.models.priors import resolve_priors

    rng = np.random.default_rng(0)
    n, groups, draws = 1_000_000, 1000, 400
    group = rng.integers(0, groups, n)
    data = groupfx.GroupedData(y=rng.integers(0, 2, n), x=rng.normal(size=n), group=group,
                               z=rng.normal(size=groups), group_labels=np.arange(groups))  # fmt: skip
    model = groupfx.build_model("mundlak", data)
    prior = pm.draw(
        [model[name] for name in ("abar", "tau", "e", "bxy", "bzy", "buy")], draws=draws, random_seed=1
    )
    posterior = {
        name: value[None]
        for name, value in zip(("abar", "tau", "e", "bxy", "bzy", "buy"), prior, strict=True)
    }
    fit = groupfx.Fit(
        "mundlak", az.from_dict(posterior=posterior), data, SamplerSettings(), resolve_priors(), 0, None
    )
    tracemalloc.start()
    per_group, average = contrast_draws(fit)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    full = draws * n * 8  # one draws x N array of doubles: 3.2 GB
    assert peak < full / 4, f"peak {peak / 2**20:.0f} MiB"
    assert per_group.shape == (draws, groups) and average.shape == (draws,)
    # the blocked result equals a direct computation on a slice of draws
    e, bxy = posterior["e"][0], posterior["bxy"][0][:, 0]
    intercepts = posterior["abar"][0][:, None] + posterior["tau"][0][:, None] * e
    group_part = (
        intercepts + posterior["bzy"][0][:, :1] * data.z[:, 0] + posterior["buy"][0][:, :1] * data.xbar[:, 0]
    )
    eta = group_part[:3, group] + bxy[:3, None] * data.x[:, 0]
    np.testing.assert_allclose(
        average[:3], (_sigmoid(eta + bxy[:3, None]) - _sigmoid(eta)).mean(axis=1), rtol=1e-9
    )


def test_prior_predictive_of_a_poisson_model_survives_huge_expected_counts():
    rng = np.random.default_rng(4)
    frame = pd.DataFrame({"g": np.repeat(np.arange(8), 25), "x": rng.normal(0, 30, size=200)})
    frame["y"] = rng.poisson(2.0, size=200)
    data = groupfx.read_data(frame, y="y", x="x", group="g", family="poisson")
    fit = groupfx.fit(data, "naive", family="poisson", warn=False, **TINY)
    means = prior_predictive_means(fit, draws=200)  # x spreads to +-90: exp(bxy x) overflows for some draws
    assert np.isfinite(means).all() and means.max() > 1e6


def _family_data(family: str) -> groupfx.GroupedData:
    """30 groups of 12 with two x, one z and a y of the family (trials, exposure where it takes them)."""
    rng = np.random.default_rng(4)
    group = np.repeat(np.arange(30), 12)
    u = rng.normal(size=30)
    frame = pd.DataFrame({"g": group, "x": u[group] + rng.normal(size=group.size),
                          "x2": rng.normal(size=group.size), "z": rng.normal(size=30)[group]})  # fmt: skip
    eta = -0.5 + 0.4 * frame.x + u[group]
    options = {}
    if family == "binomial":
        frame["n"] = rng.integers(1, 6, group.size)
        frame["y"] = rng.binomial(frame.n, 1 / (1 + np.exp(-eta)))
        options["trials"] = "n"
    elif family == "poisson":
        frame["years"] = rng.uniform(0.5, 3, group.size)
        frame["y"] = rng.poisson(frame.years * np.exp(eta))
        options["exposure"] = "years"
    elif family == "gaussian":
        frame["y"] = eta + rng.normal(size=group.size)
    else:
        frame["y"] = rng.binomial(1, 1 / (1 + np.exp(-eta)))
    return groupfx.read_data(frame, y="y", x=["x", "x2"], group="g", z="z", family=family, **options)


@pytest.mark.parametrize(
    ("model", "family"),
    [(model, "bernoulli") for model in DEFAULT_MODELS]
    + [("latent", "binomial"), ("mundlak", "poisson"), ("multilevel", "gaussian"), ("fixed", "poisson")],
)
def test_closed_form_expected_outcome_equals_the_pymc_graphs(model, family):
    from groupfx.engines.expected import ExpectedOutcome
    from groupfx.results.effects import flat_draws, unit_data

    data = _family_data(family)
    fit = groupfx.fit(data, model, family=family, warn=False, draws=20, tune=30, chains=2)
    closed = fit.expected_outcome
    graph = ExpectedOutcome.of(fit.pymc_model())
    assert closed.function is not graph.function and "u" not in graph.parameters
    units = unit_data(fit)
    rows = slice(40, 200)  # a block of units, not starting at a group's first
    values = {}
    for expected in (closed, graph):
        params = flat_draws(fit, expected.parameters)
        values[expected is closed] = expected.function(
            *(params[n] for n in expected.parameters), *(units[n][rows] for n in expected.data)
        )
    assert values[True].shape == (40, 160)
    np.testing.assert_allclose(values[True], values[False], rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize(
    ("model", "family"), [("latent", "bernoulli"), ("multilevel", "gaussian"), ("fixed", "poisson")]
)
def test_prior_draws_without_pymc_match_pm_draw_in_shape_and_distribution(model, family):
    import pymc as pm

    from groupfx.results.checks import prior_parameter_draws

    fit = groupfx.fit(_family_data(family), model, family=family, warn=False, draws=20, tune=30, chains=2)
    names = list(fit.expected_outcome.parameters) + (["sigma_y"] if family == "gaussian" else [])
    ours = prior_parameter_draws(fit, names, 4000, seed=1)
    pymc_model = fit.pymc_model()
    theirs = dict(zip(names, pm.draw([pymc_model[n] for n in names], draws=4000, random_seed=1), strict=True))
    for name in names:
        assert ours[name].shape == np.shape(theirs[name]), name
        a, b = ours[name].ravel(), np.asarray(theirs[name]).ravel()
        # same distribution: means within 5 standard errors, sds within 8%
        assert abs(a.mean() - b.mean()) < 5 * b.std() * np.sqrt(2 / a.size), name
        assert abs(a.std() / b.std() - 1) < 0.08, name
