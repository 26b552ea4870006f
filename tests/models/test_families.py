"""Outcome families: Gaussian fixed effects and Mundlak equal the within estimator; Poisson recovers bxy."""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
import pytest

import groupfx
from groupfx.errors import InputError
from groupfx.results.crosscheck import within_for
from groupfx.results.fits import mundlak_effects


def grouped_frame(n_groups: int, per_group: int, seed: int, outcome) -> pd.DataFrame:
    """x confounded by a group cause U; ``outcome(eta_without_noise, rng)`` draws y."""
    rng = np.random.default_rng(seed)
    group = np.repeat(np.arange(n_groups), per_group)
    u = rng.normal(0, 1, n_groups)
    z = rng.normal(0, 1, n_groups)
    x = u[group] + rng.normal(0, 1, group.size)
    return pd.DataFrame({"g": group, "x": x, "z": z[group], "y": outcome(x, u[group], z[group], rng)})


def within_estimate(frame: pd.DataFrame) -> float:
    """The within (fixed-effects) OLS slope: regress group-demeaned y on group-demeaned x."""
    dx = frame.x - frame.groupby("g").x.transform("mean")
    dy = frame.y - frame.groupby("g").y.transform("mean")
    return float((dx * dy).sum() / (dx**2).sum())


@pytest.mark.slow
def test_gaussian_fixed_effects_and_mundlak_equal_the_within_estimator():
    frame = grouped_frame(
        200, 10, seed=4, outcome=lambda x, u, z, rng: 1 + 0.5 * x + 2 * u + 0.5 * z + rng.normal(0, 1, x.size)
    )
    data = groupfx.read_data(frame, y="y", x="x", group="g", z="z", family="gaussian")
    # Priors wide enough that the posterior is the likelihood's: the defaults (a ~ Normal(0, 10), tau ~
    # Exponential(1)) shrink the intercepts, and since x moves with them that moved bxy by 0.1 sd (measured:
    # 8-10 MCSE at 4 x 2000 draws, 1-2 MCSE with these priors).
    wide = {name: groupfx.Prior("Normal", mu=0, sigma=100) for name in ("bxy", "bzy", "buy", "abar", "a0")}
    wide |= {"a": groupfx.Prior("Normal", mu=0, sigma=1000), "tau": groupfx.Prior("HalfNormal", sigma=100)}
    fits = groupfx.fit_all(
        data, ["fixed", "mundlak", "naive"], family="gaussian", priors=wide, draws=1000, tune=1000, chains=2,
        warn=False,
    )  # fmt: skip
    within = within_estimate(frame)
    panel_ols = within_for(data, "gaussian").set_index("term").loc["x"]
    assert panel_ols["method"].startswith("linearmodels PanelOLS")
    assert abs(panel_ols["estimate"] - within) < 1e-8  # the library's within estimator is the textbook one
    for name in ("fixed", "mundlak"):
        # With a Gaussian likelihood and these priors the posterior of bxy centres on the within estimate up
        # to Monte-Carlo error: 4 MCSE (a false alarm about once in 16,000 runs per model) bounds the gap.
        posterior = fits[name].idata.posterior
        mcse = az.mcse(posterior, var_names=["bxy"], method="mean")["bxy"].item()
        assert abs(float(posterior["bxy"].mean()) - within) <= 4 * mcse, name
    # the posterior sd is the frequentist standard error (flat-enough priors, Gaussian likelihood)
    assert abs(float(fits["fixed"].idata.posterior["bxy"].std()) / panel_ols["se"] - 1) < 0.1
    # the naive slope absorbs U: far from the within estimate and the truth 0.5
    assert float(fits["naive"].idata.posterior["bxy"].mean()) > 1.2


@pytest.mark.slow
def test_bernoulli_fixed_effects_agree_with_conditional_logit_in_large_groups():
    def outcome(x, u, z, rng):
        return rng.binomial(1, 1 / (1 + np.exp(-(-0.5 + 0.5 * x + 1.0 * u + 0.3 * z))))

    frame = grouped_frame(40, 60, seed=6, outcome=outcome)
    data = groupfx.read_data(frame, y="y", x="x", group="g", z="z")
    fits = groupfx.fit_all(data, ["fixed", "naive"], draws=1000, tune=1000, chains=2, warn=False)
    clogit = within_for(data, "bernoulli").set_index("term").loc["x"]
    assert clogit["method"] == "statsmodels ConditionalLogit"
    bxy = fits["fixed"].idata.posterior["bxy"]
    assert abs(float(bxy.mean()) - clogit["estimate"]) < float(bxy.std())
    assert abs(clogit["estimate"] - 0.5) < 3 * clogit["se"]
    naive = fits["naive"].idata.posterior["bxy"]  # confounded: far from the conditional logit
    assert float(naive.mean()) - clogit["estimate"] > 3 * float(naive.std())


def test_poisson_mundlak_recovers_bxy_where_naive_is_confounded():
    frame = grouped_frame(
        40, 25, seed=5, outcome=lambda x, u, z, rng: rng.poisson(np.exp(0.2 + 0.3 * x + 0.6 * u + 0.2 * z))
    )
    data = groupfx.read_data(frame, y="y", x="x", group="g", z="z", family="poisson")
    fits = groupfx.fit_all(
        data, ["naive", "mundlak"], family="poisson", draws=500, tune=500, chains=2, warn=False
    )
    mundlak = fits["mundlak"].idata.posterior["bxy"]
    naive = fits["naive"].idata.posterior["bxy"]
    assert abs(float(mundlak.mean()) - 0.3) < 3 * float(mundlak.std())
    assert float(naive.mean()) - 0.3 > 5 * float(naive.std())
    assert fits["mundlak"].family == "poisson"
    assert fits["mundlak"].pymc_model()["y_obs"].owner.op.name == "poisson"


def test_family_decides_what_y_may_hold():
    frame = pd.DataFrame({"g": [1, 1, 2, 2], "x": [0.1, 0.5, 0.3, 0.9], "z": [1.0, 1.0, 2.0, 2.0]})
    with pytest.raises(
        InputError, match=r"Column 'y' \(outcome\) must be a non-negative integer count.*row 2"
    ):
        groupfx.read_data(frame.assign(y=[1, -2, 0, 3]), y="y", x="x", group="g", z="z", family="poisson")
    with pytest.raises(InputError, match=r"non-negative integer count .*rows 1, 4 hold 0.5, 2.5"):
        groupfx.read_data(frame.assign(y=[0.5, 2, 0, 2.5]), y="y", x="x", group="g", z="z", family="poisson")
    data = groupfx.read_data(
        frame.assign(y=[0.5, -2, 0, 2.5]), y="y", x="x", group="g", z="z", family="gaussian"
    )
    np.testing.assert_allclose(data.y, [0.5, -2, 0, 2.5])
    with pytest.raises(
        InputError, match="Unknown family 'binary'; choose from: bernoulli, binomial, poisson, gaussian"
    ):
        groupfx.read_data(frame.assign(y=[0, 1, 0, 1]), y="y", x="x", group="g", z="z", family="binary")


def test_binomial_needs_trials_and_recovers_bxy():
    rng = np.random.default_rng(6)
    frame = grouped_frame(30, 20, seed=6, outcome=lambda x, u, z, rng: np.zeros(x.size))
    frame["n"] = rng.integers(1, 9, len(frame))
    u = frame.groupby("g").x.transform("mean")  # stands in for the group cause in the simulation
    p = 1 / (1 + np.exp(-(-0.5 + 0.4 * frame.x + 0.8 * u)))
    frame["y"] = rng.binomial(frame.n, p)
    columns = {"y": "y", "x": "x", "group": "g", "z": "z"}
    with pytest.raises(InputError, match="binomial family needs the number of trials"):
        groupfx.read_data(frame, **columns, family="binomial")
    with pytest.raises(InputError, match="--trials is used by the binomial family only"):
        groupfx.read_data(frame, **columns, trials="n")
    with pytest.raises(InputError, match=r"Column 'y' \(outcome\) exceeds 'n' in row 3"):
        groupfx.read_data(
            frame.assign(y=frame.y.where(frame.index != 2, 99)), **columns, family="binomial", trials="n"
        )
    with pytest.raises(
        InputError, match=r"Column 'n' \(number of trials\) must hold positive integers: row 1"
    ):
        groupfx.read_data(
            frame.assign(n=frame.n.where(frame.index != 0, 0)), **columns, family="binomial", trials="n"
        )
    data = groupfx.read_data(frame, **columns, family="binomial", trials="n")
    np.testing.assert_array_equal(data.trials, frame.n)
    assert "n" in data.to_frame().columns
    fit = groupfx.fit(data, "mundlak", family="binomial", draws=500, tune=500, chains=2, warn=False)
    bxy = fit.idata.posterior["bxy"]
    assert abs(float(bxy.mean()) - 0.4) < 3 * float(bxy.std())


def test_poisson_exposure_is_an_offset():
    rng = np.random.default_rng(9)
    frame = grouped_frame(30, 20, seed=9, outcome=lambda x, u, z, rng: np.zeros(x.size))
    frame["years"] = rng.uniform(0.2, 5.0, len(frame))
    frame["y"] = rng.poisson(frame.years * np.exp(-0.3 + 0.5 * frame.x))
    columns = {"y": "y", "x": "x", "group": "g", "z": "z"}
    with pytest.raises(InputError, match="--exposure is used by the poisson family only"):
        groupfx.read_data(frame, **columns, exposure="years")
    with pytest.raises(InputError, match=r"Column 'years' \(exposure\) must be positive: row 2"):
        groupfx.read_data(
            frame.assign(years=frame.years.where(frame.index != 1, 0.0)),
            **columns,
            family="poisson",
            exposure="years",
        )
    data = groupfx.read_data(frame, **columns, family="poisson", exposure="years")
    with_offset = groupfx.fit(data, "naive", family="poisson", draws=400, tune=400, chains=2, warn=False)
    without = groupfx.fit(
        groupfx.read_data(frame, **columns, family="poisson"), "naive", family="poisson", draws=400, tune=400,
        chains=2, warn=False,
    )  # fmt: skip
    a0 = with_offset.idata.posterior["a0"]
    bxy = with_offset.idata.posterior["bxy"]
    # with the offset the intercept is the rate per year (-0.3); without it, it absorbs the mean log exposure
    assert abs(float(a0.mean()) + 0.3) < 4 * float(a0.std())
    assert abs(float(bxy.mean()) - 0.5) < 4 * float(bxy.std())
    assert float(without.idata.posterior["a0"].mean()) - float(a0.mean()) > 0.5


def test_mundlak_between_effect_is_the_between_regression():
    frame = grouped_frame(
        60, 15, seed=11, outcome=lambda x, u, z, rng: 0.5 * x + 2 * u + rng.normal(0, 1, x.size)
    )
    data = groupfx.read_data(frame, y="y", x="x", group="g", z="z", family="gaussian")
    fits = groupfx.fit_all(
        data, ["mundlak", "latent"], family="gaussian", draws=500, tune=500, chains=2, warn=False
    )
    table = mundlak_effects(fits).set_index(["model", "effect"])
    means = frame.groupby("g")[["x", "y", "z"]].mean()
    design = np.column_stack([np.ones(len(means)), means.x, means.z])
    between_ols = np.linalg.lstsq(design, means.y, rcond=None)[0][1]
    within = table.loc[("Mundlak", "within")]
    between = table.loc[("Mundlak", "between")]
    assert abs(within["mean"] - within_estimate(frame)) < 0.2 * within["sd"]
    assert abs(between["mean"] - between_ols) < 2 * between["sd"]
    assert between["mean"] > within["mean"] + 5 * within["sd"]  # U confounds the comparison of groups
    latent = table.loc[("Latent Mundlak", "between")]
    assert abs(latent["mean"] - between["mean"]) < 2 * between["sd"]
    assert mundlak_effects([fits["mundlak"]]).shape == (3, 7)
