"""The fused kernel on two-way data (a period beside the group) equals the PyMC model.

Hypothesis draws the panels (G groups, T periods, K x columns, J z columns, balanced or not, N units, the
outcome of every family with its trials or exposure, the rows in any order) and the points. On each, the
kernel's log-density (up to a constant: the differences between points) and its gradient equal those the
PyMC model compiles; float32 tracks float64; the C callbacks equal the kernel's methods bit for bit; the
expanded draws are the PyMC model's variables (same values from the same unconstrained vector, same names,
shapes and dims); the closed-form expected outcome, the fused LOO and the NumPy prior draws equal the
graph's; and a fit through the fused engine samples the same posterior as one through the PyMC graph.
"""

from __future__ import annotations

import arviz as az
import numpy as np
import pytest
import xarray as xr
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy import stats

import groupfx
from groupfx.data.grouped import GroupedData
from groupfx.engines import kernels, native
from groupfx.engines.expected import ExpectedOutcome
from groupfx.engines.kernels import FusedModel
from groupfx.models.builders import build_model, get_spec
from groupfx.models.families import get_family
from groupfx.models.priors import DEFAULT_PRIORS, resolve_priors
from tests.engines.callbacks import assert_callbacks_equal_the_kernel

FAMILIES = ("bernoulli", "binomial", "poisson", "gaussian")
RENAMED = {
    "log_tau": "tau_log__",
    "log_bux": "bux_log__",
    "log_sigma": "sigma_log__",
    "log_sigma_y": "sigma_y_log__",
    "log_tau_t": "tau_t_log__",
    "log_bvx": "bvx_log__",
    "f": "f_zerosum__",
    "f_z": "f_z_zerosum__",
    "w": "w_zerosum__",
}
"""The PyMC model's name of each block's unconstrained values, where it is not the block's own."""


def panel(
    family: str,
    n_groups: int,
    n_times: int,
    n_x: int,
    n_z: int,
    balanced: bool,
    n_units: int,
    seed: int,
) -> GroupedData:
    """A two-way table: every group and every period holds a unit; balanced, each cell once; rows shuffled."""
    rng = np.random.default_rng(seed)
    if balanced:
        group, time = np.repeat(np.arange(n_groups), n_times), np.tile(np.arange(n_times), n_groups)
    else:
        group = np.concatenate([np.arange(n_groups), rng.integers(0, n_groups, n_units - n_groups)])
        time = rng.permutation(
            np.concatenate([np.arange(n_times), rng.integers(0, n_times, n_units - n_times)])
        )
    order = rng.permutation(group.size)
    group, time = group[order], time[order]
    n = group.size
    x = (
        rng.normal(size=(n, n_x))
        + rng.normal(size=(n_groups, 1))[group]
        + rng.normal(size=(n_times, 1))[time]
    )
    trials = exposure = None
    if family == "bernoulli":
        y = rng.integers(0, 2, n)
    elif family == "binomial":
        trials = rng.integers(1, 6, n)
        y = rng.binomial(trials, 0.4)
    elif family == "poisson":
        y, exposure = rng.poisson(2.0, n), rng.uniform(0.5, 2.0, n)
    else:
        y = rng.normal(size=n)
    return GroupedData(
        y=y,
        x=x,
        group=group,
        z=rng.normal(size=(n_groups, n_z)),
        group_labels=np.arange(n_groups) + 10,
        trials=trials,
        exposure=exposure,
        time=time,
        time_labels=np.arange(n_times) + 2000,
    )


@st.composite
def panels(draw, family: str) -> GroupedData:
    n_groups, n_times = draw(st.integers(2, 5)), draw(st.integers(2, 4))
    balanced = draw(st.booleans())
    n_units = (
        n_groups * n_times
        if balanced
        else draw(st.integers(max(n_groups, n_times) + 1, 3 * n_groups * n_times))
    )
    n_x, n_z, seed = draw(st.integers(1, 2)), draw(st.integers(0, 2)), draw(st.integers(0, 2**32 - 1))
    return panel(family, n_groups, n_times, n_x, n_z, balanced, n_units, seed)


POINTS = st.tuples(st.integers(0, 2**32 - 1), st.floats(0.1, 1.0))
"""A seed and a scale: the points are Normal(0, scale) in every coordinate of the unconstrained vector."""


def _points(fused: FusedModel, point: tuple[int, float], count: int = 3) -> list[np.ndarray]:
    rng = np.random.default_rng(point[0])
    return [rng.normal(0, point[1], fused.n_dim) for _ in range(count)]


def _pymc_point(fused: FusedModel, theta: np.ndarray, initial: dict) -> dict:
    """The PyMC model's value variables at the kernel's point ``theta``, block by block (the between slopes
    turned back into the PyMC model's coefficients)."""
    theta = fused.model_values(theta)
    point = {}
    for block in fused.layout.blocks:
        name = RENAMED.get(block.name, block.name)
        if name in initial:
            point[name] = theta[block.slice].reshape(np.shape(initial[name]))
    return point


MOST_ETA = 20.0
"""The largest |eta| of a unit at which the log-densities are compared (PyMC's logit likelihoods round
beyond it)."""


def _largest_eta(fused: FusedModel, theta: np.ndarray) -> float:
    """The largest |eta| of any unit at the unconstrained point ``theta``."""
    draws = {name: value[None] for name, value in fused.expand(theta).items()}
    data = fused.data
    c = kernels.group_predictor(fused.kind, draws, data, slice(None))[0]
    eta = c[data.group] + data.x @ draws["bxy"][0]
    d = kernels.period_predictor(fused.kind, draws, data)[0]
    if d.size:
        eta = eta + d[data.time]
    return float(np.abs(eta).max())


def assert_kernel_equals_the_pymc_model(
    name: str, data: GroupedData, family: str, thetas, priors: dict | None = None
) -> None:
    """The kernel's log-density differences and gradient at ``thetas`` equal the PyMC model's, both under
    ``priors`` (the defaults where left out; drawn priors are valid by their drawing, so not re-checked)."""
    model = get_spec(name).build(data, {**DEFAULT_PRIORS, **(priors or {})}, get_family(family))
    fused = FusedModel(name, data, family, priors=priors)
    assert fused.layout.two_way == (name != "naive" and data.two_way)
    initial = model.initial_point()
    logp, dlogp = model.compile_logp(jacobian=True), model.compile_dlogp(jacobian=True)
    value_names = [v.name for v in model.value_vars]
    sizes = [int(np.prod(np.shape(initial[v]))) for v in value_names]
    differences, scale = [], 1.0
    for theta in thetas:
        value, gradient = fused.logp_grad(theta)
        point = _pymc_point(fused, theta, initial)
        assert set(point) == set(initial)
        differences.append(value - logp(point))
        scale = max(scale, abs(value))
        parts = dict(zip(value_names, np.split(dlogp(point), np.cumsum(sizes)[:-1]), strict=True))
        expected = np.zeros(fused.n_dim)
        for block in fused.layout.blocks:
            if block.size:
                expected[block.slice] = np.ravel(parts[RENAMED.get(block.name, block.name)])
        expected = fused.gradient_from_model(theta, expected)
        np.testing.assert_allclose(gradient, expected, rtol=1e-9, atol=1e-9 * (1 + np.abs(expected).max()))
    assert np.ptp(differences) < 1e-10 * scale  # equal up to the normalising constants


FAST_CASES = {("naive", "bernoulli"), ("fixed", "binomial"), ("multilevel", "poisson"),
              ("mundlak", "gaussian"), ("mundlak", "bernoulli"), ("latent", "bernoulli")}  # fmt: skip
"""Every model and every family once among the fast cases (each example compiles the PyMC model's logp and
gradient, a few seconds for the latent model); the other pairs, and more examples, run with the slow tests."""


@pytest.mark.parametrize(
    ("name", "family"),
    [
        pytest.param(
            name,
            family,
            id=f"{name}-{family}",
            marks=[] if (name, family) in FAST_CASES else [pytest.mark.slow],
        )
        for name in kernels.SERVED_MODELS
        for family in FAMILIES
    ],
)
def test_kernel_equals_the_pymc_model_on_two_way_data(name, family):
    examples = 2 if (name, family) in FAST_CASES else 6

    @settings(max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(data=panels(family), point=POINTS)
    def check(data, point):
        fused = FusedModel(name, data, family)
        thetas = _points(fused, point)
        # where a unit's eta is extreme, PyMC's logit likelihoods lose their precision (log(1 - p) of a p
        # rounded to 1 is -inf) while the kernel's softplus keeps it: compare where both can be exact
        assume(max(_largest_eta(fused, theta) for theta in thetas) < MOST_ETA)
        assert_kernel_equals_the_pymc_model(name, data, family, thetas)

    check()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(kernels.SERVED_MODELS),
    family_and_data=st.sampled_from(FAMILIES).flatmap(
        lambda family: st.tuples(st.just(family), panels(family))
    ),
    point=POINTS,
)
def test_single_precision_tracks_double_precision_on_two_way_data(name, family_and_data, point):
    family, data = family_and_data
    double = FusedModel(name, data, family)
    single = FusedModel(name, data, family, precision="float32")
    assert single.arrays.xt.dtype == np.float32 and single.arrays.t.dtype == np.int32
    for theta in _points(double, point):
        (lp64, g64), (lp32, g32) = double.logp_grad(theta), single.logp_grad(theta)
        assert g32.dtype == np.float64
        # float32 units: each unit's term off by about 1e-7 of its size, summed over at most 60 units
        assert abs(lp32 - lp64) < 2e-6 * (data.n_units + abs(lp64)), name
        np.testing.assert_allclose(g32, g64, rtol=0, atol=2e-6 * (data.n_units + np.abs(g64).max()))


@pytest.fixture(scope="module")
def unbalanced() -> GroupedData:
    """Two x, one z, 6 groups, 4 periods, 50 units: an unbalanced panel (Bernoulli outcome)."""
    data = panel("bernoulli", 6, 4, 2, 1, False, 50, seed=3)
    assert not data.balanced
    return data


@pytest.fixture(scope="module")
def balanced() -> GroupedData:
    """One x, no z, 5 groups, 3 periods, each cell once (Gaussian outcome)."""
    data = panel("gaussian", 5, 3, 1, 0, True, 15, seed=4)
    assert data.balanced
    return data


def _tables(unbalanced, balanced):
    return {"unbalanced": (unbalanced, "bernoulli"), "balanced": (balanced, "gaussian")}


@pytest.mark.parametrize("table", ["unbalanced", "balanced"])
def test_the_c_callbacks_equal_the_kernel_on_two_way_data_bit_for_bit(table, unbalanced, balanced):
    assert_callbacks_equal_the_kernel(*_tables(unbalanced, balanced)[table])


@pytest.mark.parametrize("table", ["unbalanced", "balanced"])
def test_the_two_way_layout_tiles_the_vector_and_its_table_says_the_same(table, unbalanced, balanced):
    data, family = _tables(unbalanced, balanced)[table]
    for name in kernels.SERVED_MODELS:
        layout = FusedModel(name, data, family).layout
        at = 0
        for block in layout.blocks:
            assert block.start == at and block.size == int(np.prod(block.value_shape)), (name, block)
            assert block.zero_sum == (block.name in ("f", "f_z", "w"))
            at = block.stop
        assert at == layout.n_params and len({b.name for b in layout.blocks}) == len(layout.blocks)
        slices = layout.expanded_slices()
        for slot, row in zip(kernels.SLOTS, layout.table, strict=True):
            if slot in layout:
                block = layout[slot]
                assert tuple(row[: kernels.OUT]) == (block.start, block.stop)
                if block.variable_size:
                    assert row[kernels.OUT] == slices[block.variable].start
                assert (row[kernels.LOG], row[kernels.ZERO_SUM]) == (block.log, block.zero_sum)
            elif slot in ("u", "v", "f") and {"u": "m", "v": "w", "f": "f_z"}[slot] in layout:
                assert row[kernels.START] == -1 and row[kernels.OUT] == slices[slot].start
            else:
                assert (row == -1).all(), (name, slot)
        periods = {"naive": set(), "fixed": {"at"}, "multilevel": {"log_tau_t", "f"},
                   "mundlak": {"log_tau_t", "f_z", "bvy"} | ({"bpy"} if table == "unbalanced" else set()),
                   "latent": {"log_tau_t", "f_z", "log_bvx", "w", "bvy"}}[name]  # fmt: skip
        one_way = kernels.KernelLayout.of(get_spec(name), data.n_groups, data.n_x, data.n_z,
                                          get_family(family).noise_parameters)  # fmt: skip
        assert {b.name for b in layout.blocks} - {b.name for b in one_way.blocks} == periods, name
        if name == "naive":  # it ignores the periods as it does the groups: the one-way layout
            assert layout.blocks == one_way.blocks and not layout.two_way


@pytest.mark.parametrize("table", ["unbalanced", "balanced"])
def test_the_expanded_draws_are_the_pymc_models_variables_on_two_way_data(table, unbalanced, balanced):
    """Same names, shapes, dims and coordinates, and the same values from the same unconstrained vector
    (PyMC's zero-sum transform of f and w included); a short nutpie run gives them too."""
    import nutpie

    data, family = _tables(unbalanced, balanced)[table]
    for name in kernels.SERVED_MODELS:
        fused = FusedModel(name, data, family)
        model = build_model(name, data, family=family)
        variables = {variable: (shape, dims) for variable, shape, dims in fused.layout.variables()}
        pymc_names = {rv.name for rv in model.free_RVs} | {d.name for d in model.deterministics}
        assert set(variables) == pymc_names, name
        for variable, (shape, dims) in variables.items():
            assert dims == model.named_vars_to_dims.get(variable, ()), (name, variable)
            assert shape == tuple(len(model.coords[dim]) for dim in dims), (name, variable)
        transformed = [rv for rv in model.free_RVs if model.rvs_to_transforms[rv] is not None]
        names = [v.name for v in model.value_vars] + [rv.name for rv in transformed]
        names += [d.name for d in model.deterministics]
        constrained = model.compile_fn(model.unobserved_value_vars)
        theta = np.random.default_rng(7).normal(0, 0.6, fused.n_dim)
        theirs = dict(zip(names, constrained(_pymc_point(fused, theta, model.initial_point())), strict=True))
        ours = fused.expand(theta)
        for variable in variables:
            np.testing.assert_allclose(ours[variable], theirs[variable], rtol=1e-12, atol=1e-14)
        for variable in ("f", "w"):
            if variable in ours:
                np.testing.assert_allclose(ours[variable].sum(axis=-1), 0.0, atol=1e-12)
        trace = nutpie.sample(native.compile_native(fused), draws=5, tune=5, chains=1, seed=1,
                              progress_bar=False)  # fmt: skip
        assert set(trace.posterior.data_vars) == set(variables), name
        for variable, (shape, dims) in variables.items():
            assert trace.posterior[variable].shape[2:] == shape, (name, variable)
            assert trace.posterior[variable].dims[2:] == dims, (name, variable)
        for dim in ("time", "period_rest"):
            if dim in trace.posterior.dims:
                assert list(trace.posterior[dim].values) == list(model.coords[dim])


def _draws(fused: FusedModel, count: int = 40, seed: int = 8) -> dict[str, np.ndarray]:
    """``count`` draws of the expanded variables at random points, stacked on a first axis."""
    thetas = np.random.default_rng(seed).normal(0, 0.4, (count, fused.n_dim))
    values = [fused.expand(theta) for theta in thetas]
    return {name: np.array([v[name] for v in values]) for name in values[0]}


@pytest.mark.parametrize("family", FAMILIES)
def test_closed_form_expected_outcome_equals_the_graphs_on_two_way_data(family):
    data = panel(family, 6, 4, 2, 1, False, 60, seed=12)
    units = {"x": data.x, "g": data.group, "t": data.time}
    if data.trials is not None:
        units["trials"] = data.trials
    if data.exposure is not None:
        units["log_exposure"] = np.log(data.exposure)
    rows = slice(7, 45)  # a block of units, in the data's order
    for name in kernels.SERVED_MODELS:
        draws = _draws(FusedModel(name, data, family))
        closed = ExpectedOutcome.closed_form(name, data, family)
        graph = ExpectedOutcome.of(build_model(name, data, family=family))
        assert ("t" in closed.data) == (name != "naive")
        values = [
            expected.function(
                *(draws[n] for n in expected.parameters), *(units[n][rows] for n in expected.data)
            )
            for expected in (closed, graph)
        ]
        assert values[0].shape == (40, 38)
        np.testing.assert_allclose(values[0], values[1], rtol=1e-12, atol=1e-300)


def _posterior(fused: FusedModel, chains: int = 2, draws: int = 150, seed: int = 8) -> xr.Dataset:
    names, _, dims = fused.expanded()
    flat = _draws(fused, chains * draws, seed)
    return xr.Dataset(
        {
            n: (("chain", "draw", *dims.get(n, ())), flat[n].reshape(chains, draws, *flat[n].shape[1:]))
            for n in names
        }
    )


@pytest.mark.parametrize(
    "family",
    [pytest.param(family, marks=[] if family == "bernoulli" else [pytest.mark.slow]) for family in FAMILIES],
)
def test_fused_loo_equals_the_graphs_on_two_way_data(family, monkeypatch):
    """Every family's normalising constants included; blocks of whole groups, in the data's unit order."""
    from groupfx.loo import fused as fused_loo
    from groupfx.loo import loglik

    data = panel(family, 8, 4, 2, 1, False, 70, seed=21)
    monkeypatch.setattr(loglik, "LOO_BLOCK_BYTES", 8 * 300 * 15)  # blocks of about 15 units: many groups
    for name in kernels.SERVED_MODELS:
        fused = FusedModel(name, data, family)
        posterior = _posterior(fused)
        ours = fused_loo.loo(fused, posterior)
        reference = loglik.loo(build_model(name, data, family=family), az.InferenceData(posterior=posterior))
        np.testing.assert_allclose(ours.loo_i.values, reference.loo_i.values, rtol=1e-11, atol=1e-11)
        np.testing.assert_allclose(ours.pareto_k.values, reference.pareto_k.values, rtol=1e-8, atol=1e-10)
        assert ours.p_loo == pytest.approx(reference.p_loo, rel=1e-9)


def test_the_kernel_serves_two_way_data_with_the_default_priors(unbalanced):
    from dataclasses import replace

    from groupfx.inference.engine import FusedEngine, GraphEngine, choose_engine

    priors = resolve_priors()
    for name in kernels.SERVED_MODELS:
        assert kernels.supported(name, "bernoulli", priors, unbalanced), name
        assert isinstance(choose_engine(name, unbalanced), FusedEngine), name
    assert not kernels.supported("latent_shared", "bernoulli", priors, unbalanced)
    wider = priors | {"tau_t": groupfx.Prior("LogNormal", mu=0, sigma=1)}  # a period prior it cannot express
    assert not kernels.supported("multilevel", "bernoulli", wider, unbalanced)
    assert isinstance(choose_engine("multilevel", unbalanced, priors=wider), GraphEngine)
    assert kernels.supported("multilevel", "bernoulli", wider)  # one-way data read no tau_t
    assert kernels.supported("naive", "bernoulli", wider, unbalanced)  # nor the naive model
    shares = priors | {"bpy": groupfx.Prior("StudentT", nu=3, mu=0, sigma=1)}
    assert not kernels.supported("mundlak", "bernoulli", shares, unbalanced)
    balanced_bernoulli = panel("bernoulli", 5, 3, 1, 1, True, 15, seed=4)
    assert kernels.supported("mundlak", "bernoulli", shares, balanced_bernoulli)  # no bpy on a balanced panel
    one_period = replace(
        unbalanced, time=np.zeros(unbalanced.n_units, dtype=np.int64), time_labels=np.array([1])
    )
    assert not kernels.supported("fixed", "bernoulli", priors, one_period)
    assert kernels.supported("naive", "bernoulli", priors, one_period)


@pytest.mark.parametrize("model", ["fixed", "mundlak", "latent"])
def test_prior_draws_without_pymc_match_pm_draw_on_two_way_data(model, unbalanced):
    import pymc as pm

    from groupfx.results.checks import prior_parameter_draws

    fit = groupfx.fit(unbalanced, model, warn=False, draws=20, tune=30, chains=2)
    assert fit.idata.sample_stats.attrs["engine"] == "fused" and fit.engine().closed_form
    names = list(fit.expected_outcome.parameters)
    assert {"fixed": "at", "mundlak": "bpy", "latent": "v"}[model] in names
    ours = prior_parameter_draws(fit, names, 4000, seed=1)
    pymc_model = fit.pymc_model()
    theirs = dict(zip(names, pm.draw([pymc_model[n] for n in names], draws=4000, random_seed=1), strict=True))
    for name in names:
        assert ours[name].shape == np.shape(theirs[name]), name
        a, b = ours[name].ravel(), np.asarray(theirs[name]).ravel()
        # same distribution: means within 5 standard errors, sds within 8%
        assert abs(a.mean() - b.mean()) < 5 * b.std() * np.sqrt(2 / a.size), name
        assert abs(a.std() / b.std() - 1) < 0.08, name
    if "f" in names:  # a zero-sum normal: each draw sums to zero over the periods
        np.testing.assert_allclose(ours["f"].sum(axis=1), 0.0, atol=1e-9)


def sampler_panel(seed: int = 5) -> GroupedData:
    """60 groups over 8 periods, a fifth of the cells missing; U confounds x and y, each period shifts x, and
    apart from those each group and each period shift y (so that neither the group intercepts nor the
    period ones sit near zero, where tau and tau_t mix slowly)."""
    rng = np.random.default_rng(seed)
    n_groups, n_times = 60, 8
    group, time = np.repeat(np.arange(n_groups), n_times), np.tile(np.arange(n_times), n_groups)
    keep = rng.random(group.size) > 0.2
    group, time = group[keep], time[keep]
    u, shift, shock = rng.normal(0, 1, n_groups), rng.normal(0, 0.5, n_times), rng.normal(0, 1.0, n_times)
    x = u[group] + shift[time] + rng.normal(size=group.size)
    z = rng.normal(size=n_groups)
    eta = -0.3 + 0.7 * x + 0.5 * z[group] + u[group] + rng.normal(0, 0.7, n_groups)[group] + shock[time]
    y = (rng.random(group.size) < 1 / (1 + np.exp(-eta))).astype(np.int64)
    return GroupedData(y=y, x=x, group=group, z=z, group_labels=np.arange(n_groups), time=time,
                       time_labels=np.arange(n_times) + 2000)  # fmt: skip


SAMPLED = {
    "mundlak": ("abar", "tau", "bxy", "bzy", "buy", "tau_t", "bvy"),
    "latent": ("abar", "tau", "bxy", "bzy", "buy", "tau_t", "bvy", "bux", "ax", "sigma", "bvx"),
}
"""The scalars (one x, one z) compared between the engines, per model."""


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SAMPLED))
def test_the_fused_engine_samples_the_graphs_posterior_on_two_way_data(name):
    """The Mundlak device (with the period shares of an unbalanced panel) and the latent model (with its
    period shift), each through the fused engine and through the PyMC graph, with the bound of
    ``test_sampler_agreement.py`` for this test's count of comparisons."""
    from groupfx.engines.sampling import SamplerSettings, compile_model, draw_samples

    from .test_sampler_agreement import DRAWS, FALSE_ALARM, STATISTICS, assert_same_posterior

    data = sampler_panel()
    assert not data.balanced
    spec = get_spec(name)
    fused = groupfx.fit(data, spec.name, warn=False, seed=1, **DRAWS)
    assert fused.idata.sample_stats.attrs["engine"] == "fused"
    model = build_model(spec.name, data, resolve_priors(), "bernoulli")
    settings_ = SamplerSettings(seed=3, **DRAWS)
    through_pymc = draw_samples(compile_model(model), settings_, settings_.seed, spec.target_accept)
    comparisons = sum(len(parameters) for parameters in SAMPLED.values()) * len(STATISTICS)
    bound = float(stats.norm.isf(FALSE_ALARM / 2 / comparisons))
    assert_same_posterior(fused.idata, through_pymc, SAMPLED[name], bound)
    graph_only = {
        variable for variable in through_pymc.posterior.data_vars if not str(variable).endswith("__")
    }
    assert set(fused.idata.posterior.data_vars) == graph_only
    for variable in graph_only:
        assert fused.idata.posterior[variable].dims == through_pymc.posterior[variable].dims, variable


def test_the_latent_models_start_puts_its_period_shift_at_the_observed_one(unbalanced):
    fused = FusedModel("latent", unbalanced)
    jitter = np.random.default_rng(3).uniform(-1, 1, fused.n_dim)
    start = fused.expand(fused.initial_point(3) - jitter)  # the start before its jitter
    observed = unbalanced.xbar_time - unbalanced.xbar_time.mean(axis=0)
    np.testing.assert_allclose(start["w"], observed.T, atol=1e-12)
    np.testing.assert_allclose(start["m"], unbalanced.xbar, atol=1e-12)
    theta = np.random.default_rng(4).normal(size=fused.n_dim)  # zero_sum_values inverts the expansion
    values = theta[fused.layout.slice("w")].reshape(fused.layout["w"].value_shape)
    np.testing.assert_allclose(kernels.zero_sum_values(fused.expand(theta)["w"]), values, atol=1e-12)
