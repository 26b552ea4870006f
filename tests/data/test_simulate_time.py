"""The simulation's period confounder: shapes, how the shock enters, the one-way default untouched, checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

import groupfx
from groupfx.data.grouped import two_way_residual
from groupfx.data.simulate import generative_model, period_assignment
from groupfx.errors import InputError

SHOCKS = {"n_periods": 10, "time_sd": 1.5}


@pytest.fixture(scope="module")
def shocked():
    return groupfx.simulate(**SHOCKS)


def test_periods_make_two_way_data_with_the_period_and_its_shock_in_the_frame(shocked):
    data = shocked.data
    assert data.two_way and data.n_times == 10 and data.names["time"] == "period"
    np.testing.assert_array_equal(data.time_labels, np.arange(10))
    assert shocked.vt.shape == (10,) and shocked.ug.shape == (data.n_groups,)
    frame = shocked.to_frame()
    assert list(frame.columns) == ["group", "period", "x", "y", "z", "ug", "vt"]
    np.testing.assert_array_equal(frame["vt"], shocked.vt[data.time])
    np.testing.assert_array_equal(frame["period"], data.time)
    # round robin: the periods' sizes differ by one at most, each group spans min(size, T) periods
    assert data.time_sizes.max() - data.time_sizes.min() <= 1
    spans = frame.groupby("group")["period"].nunique()
    np.testing.assert_array_equal(spans, np.minimum(data.group_sizes, 10))
    # the table reads back as two-way data, as a user's panel would
    again = groupfx.GroupedData.from_frame(frame, time="period")
    np.testing.assert_array_equal(again.time, data.time)


def test_round_robin_deals_periods_in_group_order_and_balances_a_full_panel():
    group = np.array([2, 0, 2, 1, 0, 2])
    np.testing.assert_array_equal(period_assignment(group, 2), [1, 0, 0, 0, 1, 1])
    panel = np.repeat(np.arange(5), 4)  # four units in each of five groups, four periods: a full panel
    time = period_assignment(panel, 4)
    np.testing.assert_array_equal(time, np.tile(np.arange(4), 5))
    data = groupfx.GroupedData(y=np.zeros(20), x=np.ones(20), group=panel, z=np.zeros(5),
                               group_labels=np.arange(5), time=time, time_labels=np.arange(4))  # fmt: skip
    assert data.balanced


def test_the_default_and_zero_periods_are_the_one_way_seed_data_value_for_value():
    seed = groupfx.simulate().to_frame()
    pd.testing.assert_frame_equal(groupfx.simulate(n_periods=0, time_sd=0.0).to_frame(), seed)
    assert not groupfx.simulate().data.two_way and groupfx.simulate().vt is None
    # periods without a shock: the same groups, U, z, x and y, with a period column beside them
    still = groupfx.simulate(n_periods=10).to_frame()
    pd.testing.assert_frame_equal(still[list(seed.columns)], seed)
    assert (still["vt"] == 0).all()


def test_the_shock_shifts_x_by_bvx_v_from_the_same_noise(shocked):
    one_way = groupfx.simulate()
    for bvx in (1.0, -0.4):
        sim = groupfx.simulate(**SHOCKS, bvx=bvx)
        np.testing.assert_allclose(sim.data.x[:, 0] - one_way.data.x[:, 0], bvx * sim.vt[sim.data.time],
                                   rtol=0, atol=1e-12)  # fmt: skip
        np.testing.assert_array_equal(sim.vt, shocked.vt)  # the shock's own stream: bvx does not move it
    assert shocked.vt.std() > 0.5


def test_the_shock_enters_the_logit_of_y_with_bvy():
    # y ~ Bernoulli(invlogit(a0 + bxy x + U + bzy z + bvy V)): a logit of y on them recovers each coefficient
    settings = {"n_groups": 40, "n_units": 40_000, "n_periods": 40, "time_sd": 1.0, "bxy": 0.3, "bvy": -0.8,
                "bvx": 0.5, "seed": 7}  # fmt: skip
    sim = groupfx.simulate(**settings)
    frame = sim.to_frame()
    design = sm.add_constant(frame[["x", "ug", "z", "vt"]])
    fit = sm.Logit(frame["y"], design).fit(disp=0)
    truth = pd.Series({"const": -2.0, "x": 0.3, "ug": 1.0, "z": 1.0, "vt": -0.8})
    assert (abs(fit.params - truth) < 4 * fit.bse).all(), (fit.params, fit.bse)
    eta = -2.0 + 0.3 * frame["x"] + frame["ug"] + frame["z"] + -0.8 * frame["vt"]
    np.testing.assert_allclose(sim.linear_predictor(), eta, rtol=0, atol=1e-12)


def _slope(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares slope of residualised y on residualised x, and its heteroskedasticity-robust se."""
    slope = float(x @ y / (x @ x))
    return slope, float(np.sqrt(np.sum(x**2 * (y - slope * x) ** 2)) / (x @ x))


def test_the_within_estimator_is_biased_one_way_and_unbiased_two_way():
    # bxy = 0, so y depends on the unit only through U, V and z: once both are swept out (two-way within),
    # x's slope is 0 in expectation; swept of U alone (one-way within), x keeps V - its group mean of V,
    # which drives y too
    sim = groupfx.simulate(n_groups=50, n_units=30_000, **SHOCKS, seed=11)
    data = sim.data
    x, y = data.x[:, 0], data.y.astype(float)
    one_way = [v - np.bincount(data.group, v)[data.group] / data.group_sizes[data.group] for v in (x, y)]
    slope, se = _slope(*one_way)
    assert slope > 10 * se and slope > 0.03
    two_way = two_way_residual(np.column_stack([x, y]), data.group, data.time)
    slope, se = _slope(two_way[:, 0], two_way[:, 1])
    assert abs(slope) < 4 * se, (slope, se)
    # without the shock, the one-way within estimator is unbiased as well
    calm = groupfx.simulate(n_groups=50, n_units=30_000, n_periods=10, seed=11).data
    x, y = calm.x[:, 0], calm.y.astype(float)
    slope, se = _slope(
        *[v - np.bincount(calm.group, v)[calm.group] / calm.group_sizes[calm.group] for v in (x, y)]
    )
    assert abs(slope) < 4 * se


def test_the_causal_graph_gains_the_period_shock():
    sim = groupfx.simulate(n_groups=6, n_units=60, n_periods=3, time_sd=1.0)
    model = generative_model(sim.data.group, sim.data.n_groups, time=sim.data.time, n_times=3, time_sd=1.0)
    assert "vt" in model.named_vars and model.named_vars_to_dims["vt"] == ("period",)
    assert "vt" not in generative_model(sim.data.group, sim.data.n_groups).named_vars


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"n_periods": 1}, "n_periods"),
        ({"n_periods": -2}, "n_periods"),
        ({"n_periods": 2.5}, "n_periods"),
        ({"n_periods": 11, "n_units": 10}, "n_periods"),
        ({"n_periods": 5, "time_sd": -1.0}, "time_sd"),
        ({"n_periods": 5, "time_sd": float("nan")}, "time_sd"),
        ({"time_sd": 1.0}, "time_sd"),  # a shock without periods
        ({"n_periods": 5, "bvx": float("inf")}, "bvx"),
        ({"n_periods": 5, "bvy": "one"}, "bvy"),
    ],
)
def test_bad_period_settings_are_refused_naming_the_field(overrides, field):
    with pytest.raises(InputError, match=field):
        groupfx.SimulationSettings(**overrides)
