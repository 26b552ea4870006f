"""Frequentist within-group estimators (groupfx.results.crosscheck) on data with a group confounder."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from statsmodels.discrete.conditional_models import ConditionalPoisson
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from groupfx.results import crosscheck
from groupfx.results.crosscheck import COLUMNS, CONSTANT_NOTE, within_estimate

BETA = np.array([0.8, -0.5])  # true within effects of x1, x2
U_ON_X = np.array([1.0, -0.7])  # the group confounder U_g pushes x ...
U_ON_Y = 1.5  # ... and y, so the pooled slope is biased


def simulate(family: str, n_groups: int, n_units: int, k: int, seed: int, **extra) -> dict:
    """Units in groups; U_g drives both x and y. Returns y, x, group, u (U_g per unit), beta, ..."""
    rng = np.random.default_rng(seed)
    group = np.repeat(np.arange(n_groups), n_units)
    u = rng.normal(size=n_groups)[group]
    x = U_ON_X[:k] * u[:, None] + rng.normal(size=(group.size, k))
    eta = U_ON_Y * u + x @ BETA[:k]
    out = {"x": x, "group": group, "beta": BETA[:k], "u": u}
    if family == "gaussian":
        out["y"] = eta + rng.normal(size=group.size)
    elif family == "bernoulli":
        out["y"] = rng.binomial(1, 1 / (1 + np.exp(-(eta - 0.3)))).astype(float)
    elif family == "binomial":
        out["trials"] = rng.integers(1, 5, size=group.size)
        out["y"] = rng.binomial(out["trials"], 1 / (1 + np.exp(-(eta - 0.3)))).astype(float)
    elif family == "poisson":
        exposure = extra.get("exposure", np.ones(group.size))
        out["exposure"] = exposure
        out["y"] = rng.poisson(exposure * np.exp(eta - 1.0)).astype(float)
    return out


def within_3_se(table: pd.DataFrame, beta: np.ndarray) -> bool:
    """Every estimate lies within 3 standard errors of the truth."""
    return bool(np.all(np.abs(table["estimate"].to_numpy() - beta) < 3 * table["se"].to_numpy()))


def strict_call(*args, **kwargs) -> pd.DataFrame:
    """within_estimate with every escaping warning turned into an error (none may escape)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return within_estimate(*args, **kwargs)


def demean(a: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Subtract group means (numpy only)."""
    a = a.reshape(len(group), -1)
    sums = np.zeros((group.max() + 1, a.shape[1]))
    np.add.at(sums, group, a)
    return a - (sums / np.bincount(group)[:, None])[group]


def test_gaussian_equals_numpy_within_ols():
    d = simulate("gaussian", n_groups=60, n_units=15, k=2, seed=11)
    table = strict_call(d["y"], d["x"], d["group"], ["x1", "x2"], "gaussian")

    assert list(table.columns) == list(COLUMNS)
    assert table["term"].tolist() == ["x1", "x2"]
    assert (table["method"] == "linearmodels PanelOLS (entity effects)").all()
    assert (table["n_used"] == 900).all() and (table["note"] == "").all()

    xw, yw = demean(d["x"], d["group"]), demean(d["y"], d["group"]).ravel()
    b_hand = np.linalg.lstsq(xw, yw, rcond=None)[0]
    np.testing.assert_allclose(table["estimate"], b_hand, rtol=0, atol=1e-8)
    # unadjusted covariance: s^2 (X'X)^-1 with s^2 = RSS / (N - G - K)
    s2 = np.sum((yw - xw @ b_hand) ** 2) / (900 - 60 - 2)
    np.testing.assert_allclose(table["se"], np.sqrt(np.diag(s2 * np.linalg.inv(xw.T @ xw))), rtol=1e-6)
    np.testing.assert_allclose(table["ci_high"] - table["ci_low"], 2 * 1.959964 * table["se"], rtol=1e-6)
    assert within_3_se(table, d["beta"])

    # the confounding is real: pooled OLS with an intercept misses the truth by far
    pooled = np.linalg.lstsq(np.column_stack([np.ones(900), d["x"]]), d["y"], rcond=None)[0][1:]
    assert np.all(np.abs(pooled - d["beta"]) > 10 * table["se"].to_numpy())


@pytest.mark.parametrize("k", [1, 2])
def test_bernoulli_conditional_logit_recovers_truth(k):
    d = simulate("bernoulli", n_groups=200, n_units=20, k=k, seed=20 + k)
    names = ["x1", "x2"][:k]
    table = strict_call(d["y"], d["x"], d["group"], names, "bernoulli")

    successes = np.bincount(d["group"], weights=d["y"])
    informative = (successes > 0) & (successes < 20)
    n_dropped = 20 * int((~informative).sum())
    assert n_dropped > 0  # the seed gives some all-0 / all-1 groups
    assert (table["n_used"] == 4000 - n_dropped).all()
    assert table["note"].str.contains(f"dropped {n_dropped} units in {(~informative).sum()} groups").all()
    assert table["note"].str.contains("all 0 or all 1").all()
    assert (table["method"] == "statsmodels ConditionalLogit").all()
    assert within_3_se(table, d["beta"])


def test_binomial_recovers_truth_and_equals_expanded_bernoulli():
    d = simulate("binomial", n_groups=150, n_units=8, k=2, seed=5)
    y, trials = d["y"], d["trials"]
    table = strict_call(y, d["x"], d["group"], ["x1", "x2"], "binomial", trials=trials)
    assert table["method"].str.startswith("statsmodels ConditionalLogit").all()
    assert within_3_se(table, d["beta"])

    # expand by hand: one row per trial, successes first
    rows = np.repeat(np.arange(y.size), trials)
    first = np.repeat(np.cumsum(trials) - trials, trials)
    binary = (np.arange(rows.size) - first < y[rows]).astype(float)
    assert binary.sum() == y.sum()
    expanded = strict_call(binary, d["x"][rows], d["group"][rows], ["x1", "x2"], "bernoulli")
    np.testing.assert_allclose(table["estimate"], expanded["estimate"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(table["se"], expanded["se"], rtol=1e-4)


def test_binomial_too_many_rows_gives_nan(monkeypatch):
    d = simulate("binomial", n_groups=30, n_units=5, k=1, seed=6)
    monkeypatch.setattr(crosscheck, "MAX_EXPANDED_ROWS", 50)
    table = strict_call(d["y"], d["x"], d["group"], ["x1"], "binomial", trials=d["trials"])
    assert table["estimate"].isna().all() and table["se"].isna().all()
    assert "more than 50" in table["note"].iloc[0]


def test_poisson_recovers_truth():
    d = simulate("poisson", n_groups=200, n_units=20, k=2, seed=8)
    table = strict_call(d["y"], d["x"], d["group"], ["x1", "x2"], "poisson")
    assert (table["method"] == "statsmodels ConditionalPoisson").all()
    assert within_3_se(table, d["beta"])
    assert (table["n_used"] <= 4000).all()


def test_poisson_exposure_constant_within_group_changes_nothing():
    rng = np.random.default_rng(9)
    exposure = rng.uniform(0.2, 5.0, size=200)[np.repeat(np.arange(200), 20)]
    d = simulate("poisson", n_groups=200, n_units=20, k=2, seed=10, exposure=exposure)
    args = (d["y"], d["x"], d["group"], ["x1", "x2"], "poisson")
    with_exposure = strict_call(*args, exposure=exposure)
    without = strict_call(*args)
    np.testing.assert_allclose(with_exposure["estimate"], without["estimate"], rtol=0, atol=1e-8)
    # (the se come from a numerical Hessian, so they agree only to about 1e-8 relative)
    np.testing.assert_allclose(with_exposure["se"], without["se"], rtol=1e-6)
    assert within_3_se(with_exposure, d["beta"])

    # the offset cancels from the conditional likelihood: passing it to statsmodels gives the same
    keep = np.bincount(d["group"], weights=d["y"])[d["group"]] > 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        direct = ConditionalPoisson(
            d["y"][keep], d["x"][keep], groups=d["group"][keep], offset=np.log(exposure[keep])
        ).fit()
    np.testing.assert_allclose(with_exposure["estimate"], direct.params, atol=1e-5)


def test_poisson_exposure_varying_within_group_is_used_as_offset():
    rng = np.random.default_rng(12)
    n_groups, n_units = 200, 20
    group = np.repeat(np.arange(n_groups), n_units)
    u = rng.normal(size=n_groups)[group]
    x = u[:, None] + rng.normal(size=(group.size, 1))
    exposure = np.exp(0.8 * x[:, 0] + 0.5 * rng.normal(size=group.size))  # tied to x, within groups too
    y = rng.poisson(exposure * np.exp(U_ON_Y * u + 0.3 * x[:, 0] - 1.5)).astype(float)

    table = strict_call(y, x, group, ["x1"], "poisson", exposure=exposure)
    assert within_3_se(table, np.array([0.3]))
    # ignoring the exposure absorbs its 0.8 * x into the slope: the offset is really used
    ignored = strict_call(y, x, group, ["x1"], "poisson")
    assert abs(ignored["estimate"].iloc[0] - 0.3) > 10 * ignored["se"].iloc[0]


@pytest.mark.parametrize("family", ["gaussian", "bernoulli", "binomial", "poisson"])
def test_covariate_constant_within_groups_gives_nan_with_note(family):
    d = simulate(family, n_groups=60, n_units=10, k=1, seed=13)
    x = np.column_stack([d["x"][:, 0], d["u"]])  # the second column is a group-level variable
    table = strict_call(
        d["y"], x, d["group"], ["x1", "u"], family, trials=d.get("trials"), exposure=d.get("exposure")
    )
    assert np.isfinite(table["estimate"].iloc[0]) and np.isfinite(table["se"].iloc[0])
    assert CONSTANT_NOTE not in table["note"].iloc[0]
    assert np.isnan(table["estimate"].iloc[1]) and np.isnan(table["se"].iloc[1])
    assert CONSTANT_NOTE in table["note"].iloc[1]

    only_constant = strict_call(
        d["y"], d["u"], d["group"], ["u"], family, trials=d.get("trials"), exposure=d.get("exposure")
    )
    assert np.isnan(only_constant["estimate"].iloc[0]) and CONSTANT_NOTE in only_constant["note"].iloc[0]


@pytest.mark.parametrize("family", ["bernoulli", "poisson"])
def test_outcome_without_variation_gives_nan_rows(family):
    d = simulate("gaussian", n_groups=20, n_units=10, k=2, seed=14)
    table = strict_call(np.zeros(200), d["x"], d["group"], ["x1", "x2"], family)
    assert list(table.columns) == list(COLUMNS) and len(table) == 2
    assert table[["estimate", "se", "ci_low", "ci_high"]].isna().all().all()
    assert (table["n_used"] == 0).all()
    assert table["note"].str.contains("no group carries within information").all()


def test_collinear_covariates_give_nan_rows():
    d = simulate("bernoulli", n_groups=50, n_units=10, k=1, seed=15)
    x = np.column_stack([d["x"][:, 0], 2 * d["x"][:, 0] + d["u"]])  # collinear within groups
    for family in ["bernoulli", "gaussian"]:
        table = strict_call(d["y"], x, d["group"], ["a", "b"], family)
        assert table["estimate"].isna().all()
        assert table["note"].str.contains("collinear within groups").all()


def test_library_error_gives_nan_rows_with_note():
    d = simulate("bernoulli", n_groups=50, n_units=10, k=1, seed=15)
    y = d["y"] * 2  # not 0/1: statsmodels' ConditionalLogit raises
    table = strict_call(y, d["x"], d["group"], ["x1"], "bernoulli")
    assert np.isnan(table["estimate"].iloc[0])
    assert "bernoulli fit failed: ValueError: endog must be coded as 0, 1" in table["note"].iloc[0]


def test_convergence_warning_gives_nan_rows_with_note(monkeypatch):
    def not_converging(*args):
        warnings.warn("Maximum Likelihood optimization failed to converge.", ConvergenceWarning, stacklevel=2)
        return np.array([0.1]), np.array([0.2])

    monkeypatch.setitem(crosscheck._FITTERS, "conditional_poisson", not_converging)
    d = simulate("poisson", n_groups=20, n_units=10, k=1, seed=18)
    table = strict_call(d["y"], d["x"], d["group"], ["x1"], "poisson")
    assert np.isnan(table["estimate"].iloc[0])
    assert "did not converge" in table["note"].iloc[0]


def test_within_group_separation_gives_nan_rows():
    rng = np.random.default_rng(16)
    group = np.repeat(np.arange(40), 6)
    x = rng.normal(size=240)
    median = np.array([np.median(x[group == g]) for g in range(40)])
    y = (x > median[group]).astype(float)  # within each group, y is 1 exactly for the larger half of x
    table = strict_call(y, x, group, ["x1"], "bernoulli")
    assert np.isnan(table["estimate"].iloc[0])
    assert "separates" in table["note"].iloc[0]


def test_unknown_family_and_bad_inputs():
    d = simulate("gaussian", n_groups=10, n_units=5, k=1, seed=17)
    table = strict_call(d["y"], d["x"], d["group"], ["x1"], "negative_binomial")
    assert np.isnan(table["estimate"].iloc[0]) and "no frequentist" in table["note"].iloc[0]

    y = d["y"].copy()
    y[3] = np.nan
    table = strict_call(y, d["x"], d["group"], ["x1"], "gaussian")
    assert np.isnan(table["estimate"].iloc[0]) and "non-finite" in table["note"].iloc[0]

    with pytest.raises(ValueError, match="names"):
        within_estimate(d["y"], d["x"], d["group"], ["x1", "x2"], "gaussian")
    with pytest.raises(ValueError, match="trials"):
        within_estimate(d["y"], d["x"], d["group"], ["x1"], "binomial")
