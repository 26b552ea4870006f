"""Two-way models: what each strategy adds for the period, and the two-way within estimate they reproduce.

On a Gaussian panel two-way fixed effects and the two-way Mundlak device (period intercepts, the unit and
period means of x, and on an unbalanced panel each unit's shares of the periods; Wooldridge 2021) give the
two-way fixed-effects OLS slope; Wooldridge's Example 14.4 on the wage panel (married 0.047, se 0.018;
union 0.080, se 0.019) is reproduced by both fits.
"""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
import pytest
from linearmodels import PanelOLS

import groupfx
from groupfx.data.datasets import load_dataset
from groupfx.errors import InputError
from groupfx.models.builders import MODELS, build_model
from groupfx.models.priors import DEFAULT_PRIORS

FORMULA = "lwage ~ married + union + expersq | nr + year"
PERIOD_TERMS = {
    "naive": set(),
    "fixed": {"at"},
    "multilevel": {"tau_t", "f"},
    "mundlak": {"tau_t", "f_z", "bvy"},
    "latent": {"tau_t", "f_z", "bvy", "bvx", "w"},
}
"""The free variables each strategy adds on two-way data (f_z: the non-centred period intercepts)."""


def panel(n_groups: int, n_times: int, seed: int, drop: float = 0.0) -> pd.DataFrame:
    """A Gaussian panel whose x moves with a unit cause and a period shock, both of which move y."""
    rng = np.random.default_rng(seed)
    cells = [(g, t) for g in range(n_groups) for t in range(n_times) if rng.random() >= drop]
    frame = pd.DataFrame(cells, columns=["unit", "year"])
    u, v = rng.normal(size=n_groups), rng.normal(size=n_times)
    frame["x"] = u[frame.unit] + v[frame.year] + rng.normal(size=len(frame))
    frame["y"] = 0.5 * frame.x + u[frame.unit] + 2 * v[frame.year] + rng.normal(size=len(frame))
    return frame


@pytest.fixture(scope="module")
def small_panel() -> groupfx.GroupedData:
    return groupfx.read_data(panel(10, 4, seed=2, drop=0.2), y="y", x="x", group="unit", time="year",
                             family="gaussian")  # fmt: skip


@pytest.mark.parametrize("name", list(PERIOD_TERMS))
def test_each_strategy_adds_its_period_terms(small_panel, name):
    one_way = groupfx.read_data(small_panel.to_frame(), y="y", x="x", group="unit", family="gaussian")
    before = {v.name for v in build_model(name, one_way, family="gaussian").free_RVs}
    model = build_model(name, small_panel, family="gaussian")
    after = {v.name for v in model.free_RVs}
    added = after - before
    expected = PERIOD_TERMS[name] | ({"bpy"} if name == "mundlak" else set())  # the panel is unbalanced
    assert added == expected
    if name == "fixed":  # the first period is the reference: its intercept is 0
        assert model.named_vars_to_dims["at"] == ("period_rest",)
        assert list(model.coords["period_rest"]) == list(small_panel.time_labels[1:])
    if name != "naive" and name != "fixed":  # the pooled period intercepts, centred or not, are f
        assert model.named_vars_to_dims["f"] == ("time",)
    # the strategy names exactly the priors it reads (bzy has no z here; sigma_y is the family's)
    read = set(MODELS[name].priors_read(small_panel)) - {"bzy"} | {"sigma_y"}
    assert read == {v for v in DEFAULT_PRIORS if v in after}
    assert np.isfinite(model.compile_logp()(model.initial_point()))


def test_balanced_mundlak_has_no_period_shares():
    data = groupfx.read_data(panel(8, 3, seed=1), y="y", x="x", group="unit", time="year", family="gaussian")
    assert data.balanced
    names = {v.name for v in build_model("mundlak", data, family="gaussian").free_RVs}
    assert "bvy" in names and "bpy" not in names


def test_the_shared_latent_model_refuses_two_way_data_before_sampling(small_panel):
    with pytest.raises(InputError, match="one-way; on two-way data"):
        groupfx.fit(small_panel, "latent_shared", family="gaussian", draws=10, tune=10)
    with pytest.raises(InputError, match="one-way; on two-way data"):
        groupfx.fit_all(small_panel, ["mundlak", "latent_shared"], family="gaussian", draws=10, tune=10)


def test_a_two_way_fit_runs_every_step(small_panel):
    fits = groupfx.fit_all(small_panel, ["fixed", "mundlak"], family="gaussian", draws=40, tune=40, chains=2,
                           warn=False, workers=1)  # fmt: skip
    for result in fits.values():
        posterior = result.idata.posterior
        assert posterior["bxy"].shape[:2] == (2, 40)
        assert np.isfinite(result.loo.elpd_loo)
        groups, average = groupfx.results.effects.contrast_draws(result)
        assert groups.shape == (80, small_panel.n_groups) and np.isfinite(average).all()
    assert posterior["f"].shape[-1] == small_panel.n_times
    np.testing.assert_allclose(posterior["f"].sum("time"), 0, atol=1e-9)  # zero-sum period intercepts
    table = groupfx.compare(fits)
    assert len(table) == 2


def two_way_ols(frame: pd.DataFrame, y: str, x: list[str], group: str, time: str) -> pd.DataFrame:
    indexed = frame.set_index([group, time])
    result = PanelOLS(indexed[y], indexed[x], entity_effects=True, time_effects=True).fit()
    return pd.DataFrame({"estimate": result.params, "se": result.std_errors})


WIDE = {name: groupfx.Prior("Normal", mu=0, sigma=100) for name in ("bxy", "buy", "bvy", "bpy", "abar")}
WIDE |= {name: groupfx.Prior("Normal", mu=0, sigma=1000) for name in ("a", "at")}
WIDE |= {name: groupfx.Prior("HalfNormal", sigma=100) for name in ("tau", "tau_t")}
"""Priors wide enough that a Gaussian posterior is the likelihood's (the defaults shrink the intercepts,
which move with x)."""


def assert_centred_on(fit, truth: pd.Series) -> None:
    """The posterior mean of each bxy within 4 Monte-Carlo standard errors of the OLS value (a false alarm
    about once in 16,000 comparisons)."""
    posterior = fit.idata.posterior
    mcse = az.mcse(posterior, var_names=["bxy"], method="mean")["bxy"]
    for term, value in truth.items():
        mean = float(posterior["bxy"].sel(x_var=term).mean())
        assert abs(mean - value) <= 4 * float(mcse.sel(x_var=term)), (fit.model, term, mean, value)


@pytest.mark.slow
def test_wage_panel_reproduces_wooldridge_example_14_4():
    frame = load_dataset("wage_panel")
    data = groupfx.read_data(frame, formula=FORMULA, family="gaussian")
    ols = two_way_ols(frame, "lwage", ["married", "union", "expersq"], "nr", "year")
    # Wooldridge, Introductory Econometrics, Example 14.4: married .047 (.018), union .080 (.019)
    assert ols.loc[["married", "union"], "estimate"].round(3).tolist() == [0.047, 0.080]
    assert ols.loc[["married", "union"], "se"].round(3).tolist() == [0.018, 0.019]
    # Mundlak's level abar and the coefficients of the group and period means (expersq's are about 30 and
    # more) form a ridge that wide priors leave open (R-hat 1.57 measured): those three keep the defaults,
    # which move bxy by well under one MCSE here
    mundlak_priors = WIDE | {name: DEFAULT_PRIORS[name] for name in ("abar", "buy", "bvy")}
    fits = {
        name: groupfx.fit(data, name, family="gaussian", priors=priors, draws=1000, tune=1000, chains=2,
                          warn=False)
        for name, priors in (("fixed", WIDE), ("mundlak", mundlak_priors))
    }  # fmt: skip
    for result in fits.values():
        assert_centred_on(result, ols["estimate"])
        # with a Gaussian likelihood and flat-enough priors the posterior sd is the classical se
        sd = result.idata.posterior["bxy"].std(("chain", "draw")).to_series()
        np.testing.assert_allclose(sd[["married", "union"]], ols.loc[["married", "union"], "se"], rtol=0.1)


@pytest.mark.slow
def test_unbalanced_panel_mundlak_needs_the_period_shares():
    frame = panel(150, 6, seed=7, drop=0.3)
    data = groupfx.read_data(frame, y="y", x="x", group="unit", time="year", family="gaussian")
    assert not data.balanced
    ols = two_way_ols(frame, "y", ["x"], "unit", "year")["estimate"]
    # without the shares the two-way Mundlak regression is not two-way fixed effects on this panel
    design = np.column_stack([np.ones(len(frame)), frame.x, frame.groupby("unit").x.transform("mean"),
                              frame.groupby("year").x.transform("mean")])  # fmt: skip
    without = np.linalg.lstsq(design, frame.y, rcond=None)[0][1]
    fits = groupfx.fit_all(data, ["mundlak", "fixed"], family="gaussian", priors=WIDE, draws=1000, tune=1000,
                           chains=2, warn=False)  # fmt: skip
    mundlak = fits["mundlak"].idata.posterior["bxy"]
    mcse = float(az.mcse(fits["mundlak"].idata.posterior, var_names=["bxy"], method="mean")["bxy"].max())
    assert abs(without - ols["x"]) > 10 * mcse  # the gap the shares close is far above Monte-Carlo error
    for result in fits.values():
        assert_centred_on(result, ols)
    assert float(mundlak.std()) > 0


def test_mundlak_leaves_out_period_shares_that_do_not_vary():
    # every unit holds each year twice: not a balanced panel, but every unit's shares are the same
    frame = pd.concat([panel(8, 3, seed=1), panel(8, 3, seed=2)], ignore_index=True)
    data = groupfx.read_data(frame, y="y", x="x", group="unit", time="year", family="gaussian")
    assert not data.balanced and not data.period_shares_vary
    names = {v.name for v in build_model("mundlak", data, family="gaussian").free_RVs}
    assert "bvy" in names and "bpy" not in names
    assert "bpy" not in MODELS["mundlak"].priors_read(data)


def test_group_intercepts_of_a_two_way_fit_average_the_periods(small_panel):
    from groupfx.results.checks import group_intercepts

    result = groupfx.fit(small_panel, "fixed", family="gaussian", draws=30, tune=30, chains=1, warn=False)
    posterior = result.idata.posterior
    a = posterior["a"].values.reshape(30, -1)
    at = np.concatenate([np.zeros((30, 1)), posterior["at"].values.reshape(30, -1)], axis=1)
    np.testing.assert_allclose(group_intercepts(result), a + at.mean(axis=1, keepdims=True), atol=1e-10)
