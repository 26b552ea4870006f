"""The two-way within estimators, the cluster-robust standard errors and the two-way Mundlak regression
(groupfx.results.crosscheck) on panels with unit effects and period shocks."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from linearmodels import PanelOLS
from statsmodels.discrete.conditional_models import ConditionalLogit, ConditionalPoisson

import groupfx
from groupfx.data.datasets import load_dataset
from groupfx.data.grouped import GroupedData, two_way_residual
from groupfx.errors import InputError
from groupfx.results import crosscheck
from groupfx.results.crosscheck import (
    COLUMNS,
    MUNDLAK_COLUMNS,
    TWO_WAY_CONSTANT_NOTE,
    side_by_side,
    two_way_mundlak_ols,
    within_estimate,
    within_for,
)

BETA = np.array([0.5, -0.3])  # true slopes of x1, x2
U_ON_X, F_ON_X = 0.8, 0.7  # the unit effect a_g and the period shock f_t push x ...
U_ON_Y, F_ON_Y = 1.0, 1.0  # ... and y: ignoring either biases the slope


def panel(family: str, n_groups: int, n_times: int, k: int, seed: int, keep: float = 1.0) -> GroupedData:
    """A panel with unit effects and period shocks that drive both x and y; ``keep < 1`` drops cells at
    random (an unbalanced panel)."""
    rng = np.random.default_rng(seed)
    group, time = np.repeat(np.arange(n_groups), n_times), np.tile(np.arange(n_times), n_groups)
    kept = rng.random(group.size) < keep
    group, time = group[kept], time[kept]
    a, f = rng.normal(size=n_groups), np.linspace(-1.0, 1.0, n_times)
    x = U_ON_X * a[group, None] + F_ON_X * f[time, None] + rng.normal(size=(group.size, k))
    eta = U_ON_Y * a[group] + F_ON_Y * f[time] + x @ BETA[:k]
    if family == "gaussian":
        y = eta + rng.normal(size=group.size)
    elif family == "poisson":
        y = rng.poisson(np.exp(eta - 0.5)).astype(float)
    else:
        y = (rng.random(group.size) < 1 / (1 + np.exp(-eta))).astype(float)
    return two_way(y, x, group, time, n_groups, n_times)


def two_way(y, x, group, time, n_groups: int, n_times: int, **extra) -> GroupedData:
    """GroupedData with a period factor, built directly."""
    return GroupedData(
        y=np.asarray(y, dtype=float),
        x=x,
        group=group,
        z=np.zeros((n_groups, 0)),
        group_labels=np.arange(n_groups),
        time=time,
        time_labels=np.arange(n_times),
        names={"y": "y", "group": "group", "time": "time"},
        **extra,
    )


def strict_within(data: GroupedData, family: str) -> pd.DataFrame:
    """within_for with every escaping warning turned into an error (none may escape)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return within_for(data, family)


def two_way_ols(data: GroupedData) -> np.ndarray:
    """Two-way fixed effects by hand: OLS of the two-way residual of y on those of x."""
    x = two_way_residual(data.x, data.group, data.time, tolerance=1e-14, sweeps=5000)
    y = two_way_residual(data.y, data.group, data.time, tolerance=1e-14, sweeps=5000).ravel()
    return np.linalg.lstsq(x, y, rcond=None)[0]


# --- (a) the two-way Mundlak regression equals two-way fixed effects ---------------------------------


def test_mundlak_equals_two_way_fixed_effects_on_a_balanced_panel():
    data = panel("gaussian", n_groups=80, n_times=6, k=2, seed=1)
    assert data.balanced
    within = strict_within(data, "gaussian")
    mundlak = two_way_mundlak_ols(data)

    assert list(mundlak.columns) == list(MUNDLAK_COLUMNS) and list(mundlak.term) == ["x1", "x2"]
    assert (mundlak.method == "pooled OLS of y on 1, x, group means of x, period means of x").all()
    assert (within.method == "linearmodels PanelOLS (unit and period effects)").all()
    np.testing.assert_allclose(mundlak.estimate, within.estimate, rtol=1e-8)
    np.testing.assert_allclose(within.estimate, two_way_ols(data), rtol=1e-8)
    # with the shares on a balanced panel (all 1/T: the constant's) nothing changes
    np.testing.assert_allclose(two_way_mundlak_ols(data, shares=True).estimate, within.estimate, rtol=1e-8)


def test_mundlak_with_the_period_shares_equals_two_way_fixed_effects_on_an_unbalanced_panel():
    data = panel("gaussian", n_groups=80, n_times=6, k=2, seed=2, keep=0.7)
    assert not data.balanced
    within = strict_within(data, "gaussian")
    mundlak = two_way_mundlak_ols(data)  # the shares come in by default on an unbalanced panel

    assert mundlak.method.str.contains("period dummies, group shares of the periods").all()
    np.testing.assert_allclose(mundlak.estimate, within.estimate, rtol=1e-8)
    np.testing.assert_allclose(within.estimate, two_way_ols(data), rtol=1e-8)


def test_mundlak_without_the_period_shares_differs_on_an_unbalanced_panel():
    data = panel("gaussian", n_groups=80, n_times=6, k=2, seed=2, keep=0.7)
    within = strict_within(data, "gaussian")
    without = two_way_mundlak_ols(data, shares=False)
    assert (without.method == "pooled OLS of y on 1, x, group means of x, period means of x").all()
    # far beyond rounding: a sizeable share of a standard error
    assert np.all(np.abs(without.estimate - within.estimate) > 0.1 * within.se)


def test_mundlak_standard_errors_are_classical_and_clustered_ols():
    data = panel("gaussian", n_groups=50, n_times=5, k=1, seed=3, keep=0.8)
    table = two_way_mundlak_ols(data)
    columns = [np.ones(data.n_units), data.x, data.xbar[data.group], np.eye(5)[data.time][:, 1:]]
    design = np.column_stack([*columns, data.period_shares[data.group]])
    n, p = design.shape
    bread = np.linalg.inv(design.T @ design)
    residual = data.y - design @ (bread @ design.T @ data.y)
    classical = residual @ residual / (n - p) * bread
    scores = np.zeros((data.n_groups, p))
    np.add.at(scores, data.group, design * residual[:, None])
    g = data.n_groups
    clustered = g / (g - 1) * (n - 1) / (n - p) * bread @ scores.T @ scores @ bread
    np.testing.assert_allclose(table.se, np.sqrt(classical[1, 1]), rtol=1e-8)
    np.testing.assert_allclose(table.se_cluster, np.sqrt(clustered[1, 1]), rtol=1e-8)


def test_mundlak_refuses_one_way_data_and_other_families():
    data = panel("poisson", n_groups=20, n_times=4, k=1, seed=4)
    with pytest.raises(InputError, match="Gaussian"):
        two_way_mundlak_ols(data, family="poisson")
    one_way = GroupedData(y=data.y, x=data.x, group=data.group, z=data.z, group_labels=data.group_labels)
    with pytest.raises(InputError, match="two-way data"):
        two_way_mundlak_ols(one_way)


# --- (b) the wage panel: Wooldridge's Example 14.4 -----------------------------------------------------


def test_wage_panel_reproduces_wooldridge_example_14_4():
    frame = load_dataset("wage_panel")
    data = groupfx.read_data(
        frame, formula="lwage ~ married + union + expersq | nr + year", family="gaussian"
    )
    table = strict_within(data, "gaussian").set_index("term")
    assert (table.method == "linearmodels PanelOLS (unit and period effects)").all()
    assert (table.n_used == 4360).all() and (table.note == "").all()
    # Wooldridge (Introductory Econometrics, Example 14.4), fixed effects with year dummies
    assert (
        round(table.loc["married", "estimate"], 3) == 0.047 and round(table.loc["married", "se"], 3) == 0.018
    )
    assert round(table.loc["union", "estimate"], 3) == 0.080 and round(table.loc["union", "se"], 3) == 0.019
    assert round(table.loc["expersq", "estimate"], 4) == -0.0052
    assert round(table.loc["expersq", "se"], 4) == 0.0007
    # clustered by worker: larger, as serial correlation within a worker's years makes them
    assert round(table.loc["married", "se_cluster"], 3) == 0.022
    assert round(table.loc["union", "se_cluster"], 3) == 0.024
    # the panel is balanced: the two-way Mundlak regression gives the same slopes
    np.testing.assert_allclose(two_way_mundlak_ols(data).estimate, table.estimate, rtol=1e-8)


# --- (c) Poisson and Bernoulli two-way: period dummies in the conditional likelihood ---------------------


@pytest.mark.parametrize("family", ["poisson", "bernoulli"])
def test_two_way_conditional_likelihood_recovers_the_slope(family):
    data = panel(family, n_groups=300, n_times=6, k=1, seed=5)
    table = strict_within(data, family)
    estimate, se, se_cluster = table.loc[0, ["estimate", "se", "se_cluster"]]
    assert table.method.iloc[0].endswith("period dummies (unit and period effects)")
    assert abs(estimate - BETA[0]) < 4 * se
    assert 0.5 * se < se_cluster < 2 * se  # independent units: the robust se is near the classical one
    # the period shocks confound x: the one-way estimator (group effects only) misses the slope
    one_way = within_estimate(data.y, data.x, data.group, ["x1"], family)
    assert one_way.method.iloc[0].startswith("statsmodels Conditional")
    assert abs(one_way.estimate.iloc[0] - BETA[0]) > 4 * one_way.se.iloc[0]


def test_two_way_poisson_equals_dummy_variable_poisson_with_its_cluster_se():
    data = panel("poisson", n_groups=150, n_times=5, k=1, seed=6)
    table = strict_within(data, "poisson")
    # the unconditional Poisson with unit and period dummies has the same slope (the group totals are
    # sufficient for the unit effects) and the same group-clustered sandwich
    used = np.bincount(data.group, weights=data.y)[data.group] > 0
    groups = np.unique(data.group[used])
    design = np.column_stack(
        [data.x, data.group[:, None] == groups, data.time[:, None] == np.arange(1, 5)]
    ).astype(float)[used]
    glm = sm.GLM(data.y[used], design, family=sm.families.Poisson())
    robust = glm.fit(cov_type="cluster", cov_kwds={"groups": data.group[used], "use_correction": False})
    g = groups.size
    assert table.n_used.iloc[0] == used.sum()
    np.testing.assert_allclose(table.estimate.iloc[0], robust.params[0], rtol=1e-5)
    np.testing.assert_allclose(table.se_cluster.iloc[0], robust.bse[0] * np.sqrt(g / (g - 1)), rtol=1e-4)
    np.testing.assert_allclose(table.se.iloc[0], glm.fit().bse[0], rtol=1e-4)


def test_two_way_conditional_logit_on_pairs_is_a_logit_of_differences():
    # with two periods and one success per informative unit, the conditional likelihood is a logit of
    # "the success came first" on the difference in x and the (negated) period-2 dummy, one row per unit
    rng = np.random.default_rng(7)
    n_groups = 800
    group, time = np.repeat(np.arange(n_groups), 2), np.tile([0, 1], n_groups)
    a = rng.normal(size=n_groups)
    x = a[group] + rng.normal(size=group.size)
    y = (rng.random(group.size) < 1 / (1 + np.exp(-(0.7 * x + a[group] + 0.4 * time)))).astype(float)
    table = strict_within(two_way(y, x, group, time, n_groups, 2), "bernoulli")

    pairs = np.bincount(group, weights=y) == 1
    first, dx = y[0::2][pairs], (x[0::2] - x[1::2])[pairs]
    logit = sm.Logit(first, np.column_stack([dx, -np.ones(pairs.sum())]))
    classical, robust = logit.fit(disp=0), logit.fit(disp=0, cov_type="HC0")
    n = pairs.sum()
    assert table.n_used.iloc[0] == 2 * n
    np.testing.assert_allclose(
        table.estimate.iloc[0], classical.params[0], rtol=1e-4
    )  # optimizers' tolerance
    np.testing.assert_allclose(table.se.iloc[0], classical.bse[0], rtol=1e-4)
    np.testing.assert_allclose(table.se_cluster.iloc[0], robust.bse[0] * np.sqrt(n / (n - 1)), rtol=1e-4)


def test_two_way_binomial_recovers_the_slope():
    rng = np.random.default_rng(8)
    n_groups, n_times = 150, 5
    group, time = np.repeat(np.arange(n_groups), n_times), np.tile(np.arange(n_times), n_groups)
    a, f = rng.normal(size=n_groups), np.linspace(-1.0, 1.0, n_times)
    x = U_ON_X * a[group] + F_ON_X * f[time] + rng.normal(size=group.size)
    trials = rng.integers(1, 4, size=group.size)
    y = rng.binomial(trials, 1 / (1 + np.exp(-(BETA[0] * x + U_ON_Y * a[group] + F_ON_Y * f[time]))))
    data = two_way(y, x, group, time, n_groups, n_times, trials=trials)
    table = strict_within(data, "binomial")
    assert table.method.iloc[0].startswith("statsmodels ConditionalLogit (binary expansion), period dummies")
    assert abs(table.estimate.iloc[0] - BETA[0]) < 4 * table.se.iloc[0]
    assert 0.5 * table.se.iloc[0] < table.se_cluster.iloc[0] < 2 * table.se.iloc[0]


def test_periods_without_outcome_variation_are_dropped():
    data = panel("bernoulli", n_groups=200, n_times=5, k=1, seed=9)
    y = np.where(data.time == 4, 0.0, data.y)  # nobody succeeds in the last period
    table = strict_within(two_way(y, data.x, data.group, data.time, 200, 5), "bernoulli")
    assert "periods whose y is all 0 or all 1" in table.note.iloc[0]
    assert (
        np.isfinite(table.estimate.iloc[0]) and abs(table.estimate.iloc[0] - BETA[0]) < 4 * table.se.iloc[0]
    )
    # the units of the dropped period are gone, and the groups then without variation with them
    assert table.n_used.iloc[0] < (data.time < 4).sum()

    # two periods, every informative unit goes from 0 to 1: the periods separate the outcomes
    rng = np.random.default_rng(10)
    group, time = np.repeat(np.arange(50), 2), np.tile([0, 1], 50)
    y = np.where(rng.random(50) < 0.5, 1.0, 0.0)[group] * time
    table = strict_within(two_way(y, rng.normal(size=100), group, time, 50, 2), "bernoulli")
    assert np.isnan(table.estimate.iloc[0]) and "no group carries within information" in table.note.iloc[0]


@pytest.mark.parametrize("family", ["gaussian", "poisson"])
def test_x_made_of_a_group_part_and_a_period_part_has_no_two_way_effect(family):
    data = panel(family, n_groups=100, n_times=5, k=1, seed=11)
    age = data.group % 7 + data.time  # a birth cohort plus the year
    x = np.column_stack([data.x[:, 0], age])
    table = within_estimate(data.y, x, data.group, ["x1", "age"], family, time=data.time)
    assert (
        np.isfinite(table.estimate.iloc[0]) and abs(table.estimate.iloc[0] - BETA[0]) < 4 * table.se.iloc[0]
    )
    assert np.isnan(table.estimate.iloc[1]) and TWO_WAY_CONSTANT_NOTE in table.note.iloc[1]
    # one-way, age varies within groups and is estimated
    one_way = within_estimate(data.y, x, data.group, ["x1", "age"], family)
    assert np.isfinite(one_way.estimate).all()


def test_several_units_in_a_cell_give_the_two_way_estimate():
    # a crossed factor rather than a panel: PanelOLS takes the periods as other effects
    rng = np.random.default_rng(12)
    group, time = rng.integers(0, 40, size=900), rng.integers(0, 6, size=900)
    a, f = rng.normal(size=40), rng.normal(size=6)
    x = a[group] + f[time] + rng.normal(size=900)
    y = BETA[0] * x + a[group] + f[time] + rng.normal(size=900)
    data = two_way(y, x, group, time, 40, 6)
    table = strict_within(data, "gaussian")
    assert table.method.iloc[0] == "linearmodels PanelOLS (unit and period effects)"
    np.testing.assert_allclose(table.estimate, two_way_ols(data), rtol=1e-8)
    np.testing.assert_allclose(table.estimate, two_way_mundlak_ols(data).estimate, rtol=1e-8)


# --- (d) one-way tables: the same values as before, and the clustered se beside them --------------------


def one_way_data(family: str, seed: int) -> GroupedData:
    data = panel(family, n_groups=150, n_times=6, k=2, seed=seed)
    return GroupedData(y=data.y, x=data.x, group=data.group, z=data.z, group_labels=data.group_labels)


def test_one_way_gaussian_table_keeps_its_values_and_adds_the_clustered_se():
    data = one_way_data("gaussian", seed=13)
    table = strict_within(data, "gaussian")
    assert list(table.columns) == list(COLUMNS)
    assert (table.method == "linearmodels PanelOLS (entity effects)").all()
    index = pd.MultiIndex.from_arrays([data.group, np.tile(np.arange(6), 150)])
    model = PanelOLS(pd.Series(data.y, index=index), pd.DataFrame(data.x, index=index), entity_effects=True)
    plain, clustered = model.fit(), model.fit(cov_type="clustered", cluster_entity=True)
    np.testing.assert_allclose(table.estimate, plain.params, rtol=1e-10)
    np.testing.assert_allclose(table.se, plain.std_errors, rtol=1e-10)
    np.testing.assert_allclose(table.se_cluster, clustered.std_errors, rtol=1e-10)
    np.testing.assert_allclose(table.ci_high - table.ci_low, 2 * 1.959964 * table.se, rtol=1e-6)

    # by hand: the within sandwich clustered by group, times linearmodels' default N / (N - K) (the group
    # effects, nested in the clusters, are not counted)
    xw = data.x - data.xbar[data.group]
    yw = data.y - (np.bincount(data.group, weights=data.y) / 6)[data.group]
    bread = np.linalg.inv(xw.T @ xw)
    residual = yw - xw @ (bread @ xw.T @ yw)
    scores = np.zeros((150, 2))
    np.add.at(scores, data.group, xw * residual[:, None])
    sandwich = 900 / (900 - 2) * bread @ scores.T @ scores @ bread
    np.testing.assert_allclose(table.se_cluster, np.sqrt(np.diag(sandwich)), rtol=1e-8)


@pytest.mark.parametrize("family", ["poisson", "bernoulli"])
def test_one_way_conditional_tables_keep_their_values_and_add_the_clustered_se(family):
    data = one_way_data(family, seed=14)
    table = strict_within(data, family)
    assert list(table.columns) == list(COLUMNS)
    estimator = ConditionalPoisson if family == "poisson" else ConditionalLogit
    used = table.n_used.iloc[0]
    totals, sizes = np.bincount(data.group, weights=data.y), np.bincount(data.group)
    informative = (totals > 0) & (totals < sizes) if family == "bernoulli" else totals > 0
    keep = informative[data.group]
    if family == "poisson":  # statsmodels also drops groups whose counts are all equal
        low = np.array([data.y[data.group == g].min() for g in range(150)])
        high = np.array([data.y[data.group == g].max() for g in range(150)])
        keep &= (low < high)[data.group]
    assert used == keep.sum()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        direct = estimator(data.y[keep], data.x[keep], groups=data.group[keep]).fit(maxiter=200)
    assert table.method.iloc[0] == f"statsmodels {estimator.__name__}"
    np.testing.assert_allclose(table.estimate, direct.params, rtol=1e-4)
    np.testing.assert_allclose(table.se, direct.bse, rtol=1e-3)
    assert np.all((table.se_cluster > 0.5 * table.se) & (table.se_cluster < 2 * table.se))


def test_side_by_side_shows_the_clustered_se():
    data = panel("gaussian", n_groups=30, n_times=4, k=2, seed=15)
    within = strict_within(data, "gaussian")
    table = side_by_side([], within)
    assert list(table.columns) == ["within estimate", "within se", "within se (cluster)", "method", "note"]
    np.testing.assert_allclose(table["within se (cluster)"], within.se_cluster)


def test_two_way_guards_give_nan_rows_with_a_note(monkeypatch):
    # x separates the outcomes within groups: no finite estimate, as one-way
    rng = np.random.default_rng(16)
    group, time = np.repeat(np.arange(40), 6), np.tile(np.arange(6), 40)
    x = rng.normal(size=240)
    median = np.array([np.median(x[group == g]) for g in range(40)])
    y = (x > median[group]).astype(float)
    table = strict_within(two_way(y, x, group, time, 40, 6), "bernoulli")
    assert np.isnan(table.estimate.iloc[0]) and "separates" in table.note.iloc[0]

    # too many periods for the dummies of a conditional likelihood
    monkeypatch.setattr(crosscheck, "MAX_PERIOD_DUMMIES", 3)
    data = panel("poisson", n_groups=50, n_times=6, k=1, seed=17)
    table = strict_within(data, "poisson")
    assert np.isnan(table.estimate.iloc[0]) and "6 periods are too many" in table.note.iloc[0]
    assert np.isfinite(within_estimate(data.y, data.x, data.group, ["x1"], "poisson").estimate.iloc[0])
