import numpy as np
import pytest

import groupfx
from groupfx.errors import InputError

SEED_HEAD = [
    (2, -1.636772, 0, -0.784611, -0.262631),
    (23, -0.630586, 0, 0.432475, -0.856320),
    (19, 0.632257, 1, -0.802185, -0.376058),
    (13, -4.794478, 0, 0.472600, -3.984009),
    (12, 1.006184, 0, 0.196072, 0.005123),
]


@pytest.fixture(scope="module")
def seed_sim():
    return groupfx.simulate()


def test_default_reproduces_the_seed_table_exactly(seed_sim):
    head = seed_sim.to_frame().head(5)
    assert list(head.columns) == ["group", "x", "y", "z", "ug"]
    for row, expected in zip(head.itertuples(index=False), SEED_HEAD, strict=True):
        assert row.group == expected[0]
        assert round(row.x, 6) == expected[1]
        assert row.y == expected[2]
        assert round(row.z, 6) == expected[3]
        assert round(row.ug, 6) == expected[4]


def test_default_sizes_and_truth(seed_sim):
    assert seed_sim.data.n_units == 2000
    assert seed_sim.data.n_groups == 30
    assert seed_sim.truth == {"a0": -2.0, "bxy": 0.0, "bzy": 1.0}


def test_x_is_confounded_by_u(seed_sim):
    # X ~ Normal(U, 1) with about 67 units a group: the group mean of x tracks U closely.
    corr = np.corrcoef(seed_sim.data.xbar[:, 0], seed_sim.ug)[0, 1]
    assert corr > 0.95


def test_every_setting_is_a_parameter():
    sim = groupfx.simulate(n_groups=12, n_units=3000, bxy=1.5, u_sd=0.0, seed=5)
    assert sim.data.n_groups == 12 and sim.data.n_units == 3000
    assert np.all(sim.ug == 0)
    # Without confounding, x is Normal(0, 1) around zero in every group.
    assert abs(sim.data.x.mean()) < 0.1
    # A strong effect of x shows in the outcome: y = 1 is more common where x is high.
    y, x = sim.data.y, sim.data.x[:, 0]
    assert y[x > 1].mean() - y[x < -1].mean() > 0.3


def test_seed_changes_the_data():
    a = groupfx.simulate(n_units=100, n_groups=5, seed=1).data.x
    b = groupfx.simulate(n_units=100, n_groups=5, seed=2).data.x
    c = groupfx.simulate(n_units=100, n_groups=5, seed=1).data.x
    assert not np.allclose(a, b)
    np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize(
    ("field", "value"),
    [("n_groups", 0), ("n_groups", 1), ("n_units", -5), ("seed", -1), ("u_sd", -1.0), ("bxy", float("nan"))],
)
def test_bad_settings_are_refused(field, value):
    with pytest.raises(InputError, match=field):
        groupfx.SimulationSettings(**{field: value})


def simulate_with_pymc(settings: groupfx.SimulationSettings) -> dict[str, np.ndarray]:
    """The seed notebook's way: pm.do on the causal graph, then one prior-predictive draw."""
    import pymc as pm

    from groupfx.data.simulate import generative_model

    rng = np.random.default_rng(settings.seed)
    group = rng.choice(settings.n_groups, size=(settings.n_units,), replace=True)
    model = pm.do(generative_model(group, settings.n_groups, settings.u_sd, settings.u_mean), settings.truth)
    with model:
        prior = pm.sample_prior_predictive(draws=1, random_seed=rng).prior
    return {"group": group} | {name: prior[name].to_numpy()[0, 0] for name in ("ug", "x", "y", "z")}


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"n_groups": 12, "n_units": 3000, "bxy": 1.5, "u_sd": 0.0, "seed": 5},
        {"n_groups": 200, "n_units": 5000, "a0": 0.5, "bzy": -1.0, "u_mean": 1.0, "u_sd": 0.7, "seed": 9},
    ],
)
def test_numpy_draw_equals_pymcs_prior_predictive_value_for_value(overrides):
    settings = groupfx.SimulationSettings(**overrides)
    expected = simulate_with_pymc(settings)
    frame = groupfx.simulate(settings).to_frame()
    group = expected["group"]
    np.testing.assert_array_equal(frame["group"], group)
    np.testing.assert_array_equal(frame["x"], expected["x"])
    np.testing.assert_array_equal(frame["y"], expected["y"])
    np.testing.assert_array_equal(frame["z"], expected["z"][group])
    np.testing.assert_array_equal(frame["ug"], expected["ug"][group])
