"""The fused kernel reads its priors from a table: any prior it can express reaches the fast path.

Location parameters take Normal(mu, sigma); scales (on the log scale, with the Jacobian) Exponential(lam),
HalfNormal(sigma), Gamma(alpha, beta) or HalfStudentT(nu, sigma). With priors drawn by hypothesis the
kernel's log-density (up to a constant) and gradient equal the PyMC model's built with the same priors, on
one-way and two-way data; the default priors give the kernel's values from before the table (recorded
below); the C callbacks read the same table; :func:`choose_engine` takes the fused engine for a prior the
table expresses and the graph for one it cannot; and the NumPy prior draws follow each parameter's own
prior as ``pm.draw`` does.
"""

from __future__ import annotations

import ctypes
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

import groupfx
from groupfx.data.grouped import GroupedData
from groupfx.engines import kernels, native
from groupfx.engines.kernels import FusedModel
from groupfx.models.priors import DEFAULT_PRIORS, SCALE_PARAMETERS, Prior

from . import test_kernel_two_way as two_way
from .test_kernel_two_way import POINTS, _points, panel, panels

GOLDEN = {
    ("one-way", "naive"): (
        -186.21622106708,
        "-82.12310653052876 183.69898701696494 -7.187848612192647 360.3299215365074 ",
    ),
    ("one-way", "fixed"): (
        -123.30970466482566,
        "-69.79129865755974 43.189137826517104 -6.980610090166623 65.84689430902183 "
        "-89.75262273496163 57.5275774688144 272.6514885376799 ",
    ),
    ("one-way", "multilevel"): (
        -182.5013825920454,
        "-103.62209978225351 5.749238331123644 -2.1542573141733325 -9.293531146765512 "
        "-5.314477218853904 -4.844467888705455 210.8294416060519 -0.4329004497631166 "
        "357.188814828195 ",
    ),
    ("one-way", "mundlak"): (
        -50.52237804516293,
        "-2.021776035179436 0.8287172289942727 -0.2561242977859036 0.2577071225198876 "
        "0.224227677832677 0.09289804179813793 2.90153126849261 0.13977696298049463 "
        "1.7298643789854167 -22.774967879253264 ",
    ),
    ("one-way", "latent"): (
        -109.99631879666305,
        "-21.930634543769667 1.784189746144853 -0.6392382054090648 -1.5907987957463916 "
        "-0.8639645673200284 -0.883639629606732 43.17985559256758 0.09286707554974138 "
        "2.034554019807451 -56.118039944484764 -1.6359528524641975 43.614388254131015 "
        "6.479001631195682 -11.38501590030298 -3.599255185729134 0.4083372516548382 "
        "56.04385502996858 ",
    ),
    ("two-way", "naive"): (
        -186.21622106708,
        "-82.12310653052876 183.69898701696494 -7.187848612192647 360.3299215365074 ",
    ),
    ("two-way", "fixed"): (
        -62.4517787767881,
        "-13.650859971615354 18.053952320364864 5.491026148086596 30.951707550143517 "
        "-38.14577823581785 14.364004041374823 43.55421537175001 8.380700256155626 "
        "123.69962227411911 ",
    ),
    ("two-way", "multilevel"): (
        -155.68607688608603,
        "-57.01581199733522 3.250385496984059 -1.7884729216900033 -4.7638427337013916 "
        "-2.6445484805523174 -2.352190212284407 133.66818204682357 -0.16415650165303308 "
        "9.684002016019413 -38.02956917905756 -5.769599338175375 279.7976637627317 ",
    ),
    ("two-way", "mundlak"): (
        -142.6989011923238,
        "-56.50679464470821 3.608746371952527 -1.2286437447490024 -5.384243374331253 "
        "-2.8457749954134894 -1.9805458268740057 138.86138527405123 -0.054564633547220076 "
        "-33.058606940221814 -18.53246098091121 -3.743521768671406 79.95782389599182 "
        "66.10427014029463 -26.492349452754176 -13.795237179740353 259.861796816584 ",
    ),
    ("two-way", "latent"): (
        -272.14575068732427,
        "-64.22955112385529 3.746803098160734 -1.7572139752230076 -5.672744862981732 "
        "-3.2850693282106955 -2.390757635046517 148.19852955976376 1.14754896766902 "
        "-36.23437508764461 -19.940780329458086 -6.458928094596971 -42.4390399953798 "
        "-10.604752113773497 -12.452027561931828 250.4197307542561 17.846650237108793 "
        "-34.30654254820688 -15.028787783407218 -26.409907671610476 3.102901550182537 "
        "-28.863344204953332 -41.147313189484215 -11.933758562923247 270.8758160979169 ",
    ),
}
"""The kernel's log-density and gradient under the default priors before they were read from a table (the
hard-coded Normal(0, 1), Normal(0, 10), Normal(0, 5), Exponential(1) and HalfNormal(1)), at
``default_rng(3).normal(0, 0.6, n_dim)`` on :func:`_golden_data` with the Gaussian family."""


def _golden_data() -> dict[str, GroupedData]:
    two = panel("gaussian", 4, 3, 1, 1, False, 20, seed=7)
    return {"one-way": replace(two, time=None, time_labels=None), "two-way": two}


def test_the_default_priors_give_the_kernel_as_it_was_before_the_table():
    data = _golden_data()
    assert data["two-way"].two_way and data["two-way"].period_shares_vary and not data["one-way"].two_way
    for (label, name), (logp, text) in GOLDEN.items():
        gradient = np.array(text.split(), dtype=float)
        fused = FusedModel(name, data[label], "gaussian")
        np.testing.assert_array_equal(fused.priors, kernels.prior_table(DEFAULT_PRIORS))
        # the golden vector holds the PyMC model's values (buy itself, not the between slope the kernel holds)
        theta = fused.from_model_values(np.random.default_rng(3).normal(0, 0.6, fused.n_dim))
        value, grad = fused.logp_grad(theta)
        assert value == pytest.approx(logp, rel=1e-14, abs=0), (label, name)
        gradient = fused.gradient_from_model(theta, gradient)
        np.testing.assert_allclose(grad, gradient, rtol=1e-12, atol=1e-13 * np.abs(gradient).max())


def _finite(low: float, high: float) -> st.SearchStrategy[float]:
    """A number in [low, high] as a NumPy float64: PyMC makes a Python float that float32 holds exactly (1.5)
    a float32 constant, so its Gamma's ``1 / beta`` (and Exponential's ``1 / lam``) would round in float32,
    about 1e-8 off the number given, which the kernel holds in float64."""
    return st.floats(low, high, allow_nan=False, allow_infinity=False).map(np.float64)


LOCATION = st.builds(lambda mu, sigma: Prior("Normal", mu=mu, sigma=sigma), _finite(-2, 2), _finite(0.3, 5))
SCALE = st.one_of(
    st.builds(lambda lam: Prior("Exponential", lam=lam), _finite(0.2, 5)),
    st.builds(lambda sigma: Prior("HalfNormal", sigma=sigma), _finite(0.2, 5)),
    st.builds(lambda alpha, beta: Prior("Gamma", alpha=alpha, beta=beta), _finite(0.5, 5), _finite(0.5, 5)),
    st.builds(lambda nu, sigma: Prior("HalfStudentT", nu=nu, sigma=sigma), _finite(1, 10), _finite(0.2, 5)),
)
PRIORS = st.fixed_dictionaries(
    {name: SCALE if name in SCALE_PARAMETERS else LOCATION for name in kernels.PRIOR_PARAMETERS}
)
"""Every named prior drawn: a Normal with random mu and sigma on each location parameter, an Exponential,
HalfNormal, Gamma or HalfStudentT with random parameters on each scale."""


def assert_kernel_equals_the_pymc_model(name: str, data: GroupedData, family: str, priors, thetas) -> None:
    two_way.assert_kernel_equals_the_pymc_model(name, data, family, thetas, priors=priors)


FAST_EXAMPLES = {"naive": 2, "fixed": 2, "multilevel": 2, "mundlak": 2, "latent": 1}
"""Examples per model in the fast set (each compiles the PyMC model's logp and gradient, the latent model's
slowest); the slow set runs six of each."""


@pytest.mark.parametrize(
    ("name", "two_way", "examples"),
    [
        pytest.param(
            name,
            two_way,
            examples,
            id=f"{name}-{'two' if two_way else 'one'}-way-{examples}",
            marks=[] if examples == FAST_EXAMPLES[name] else [pytest.mark.slow],
        )
        for name in kernels.SERVED_MODELS
        for two_way in (False, True)
        for examples in (FAST_EXAMPLES[name], 6)
    ],
)
def test_the_kernel_equals_the_pymc_model_under_drawn_priors(name, two_way, examples):
    family = "gaussian"  # sigma_y's prior too

    @settings(max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(data=panels(family), priors=PRIORS, point=POINTS)
    def check(data, priors, point):
        if not two_way:
            data = replace(data, time=None, time_labels=None)
        assert kernels.supported(name, family, priors, data)
        fused = FusedModel(name, data, family, priors=priors)
        assert_kernel_equals_the_pymc_model(name, data, family, priors, _points(fused, point))

    check()


def test_the_kernel_equals_the_pymc_model_under_drawn_priors_in_the_bernoulli_family():
    @settings(max_examples=2, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        data=panels("bernoulli"),
        priors=PRIORS,
        point=POINTS,
        name=st.sampled_from([name for name in kernels.SERVED_MODELS if name != "latent"]),
    )
    def check(data, priors, point, name):
        fused = FusedModel(name, data, "bernoulli", priors=priors)
        assert_kernel_equals_the_pymc_model(name, data, "bernoulli", priors, _points(fused, point))

    check()


OFF_DEFAULTS = {
    "a0": Prior("Normal", mu=0.5, sigma=2), "a": Prior("Normal", mu=-1, sigma=3),
    "abar": Prior("Normal", mu=0.5, sigma=2), "tau": Prior("Gamma", alpha=2, beta=3),
    "bxy": Prior("Normal", mu=0.3, sigma=0.5), "bzy": Prior("Normal", mu=-1, sigma=2),
    "buy": Prior("Normal", mu=0.2, sigma=1.5), "bux": Prior("Exponential", lam=2),
    "ax": Prior("Normal", mu=1, sigma=0.7), "sigma": Prior("HalfStudentT", nu=3, sigma=2),
    "sigma_y": Prior("HalfNormal", sigma=2), "at": Prior("Normal", mu=-1, sigma=2),
    "tau_t": Prior("HalfStudentT", nu=3, sigma=0.5), "bvy": Prior("Normal", mu=1, sigma=0.4),
    "bpy": Prior("Normal", mu=0, sigma=3), "bvx": Prior("Gamma", alpha=3, beta=2),
}  # fmt: skip
"""A prior off the defaults for every named parameter, one of each kind the table expresses."""


@pytest.mark.parametrize("two_way", [False, True], ids=["one-way", "two-way"])
def test_the_c_callbacks_read_the_prior_table_bit_for_bit(two_way):
    data = panel("gaussian", 5, 3, 2, 1, False, 40, seed=2)
    data = data if two_way else replace(data, time=None, time_labels=None)
    double_p = ctypes.POINTER(ctypes.c_double)
    for name in kernels.SERVED_MODELS:
        for precision in kernels.PRECISIONS:
            fused = FusedModel(name, data, "gaussian", precision, priors=OFF_DEFAULTS)
            default = FusedModel(name, data, "gaussian", precision)
            compiled = native.compile_native(fused)
            assert compiled.user_data[native.PRIORS] == fused.priors.ctypes.data
            theta = np.random.default_rng(4).normal(0, 0.5, fused.n_dim)
            grad, logp = np.zeros(fused.n_dim), np.zeros(1)
            code = compiled.compiled_logp_func.ctypes(
                fused.n_dim, theta.ctypes.data_as(double_p), grad.ctypes.data_as(double_p),
                logp.ctypes.data_as(double_p), ctypes.c_void_p(compiled.user_data.ctypes.data),
            )  # fmt: skip
            expected_logp, expected_grad = fused.logp_grad(theta)
            assert code == 0 and logp[0] == expected_logp and np.array_equal(grad, expected_grad), name
            assert expected_logp != default.logp_grad(theta)[0], name  # the table is read, not the defaults


def test_prior_rows_read_each_parametrisation_and_refuse_what_the_kernel_cannot_express():
    row = kernels.prior_row
    assert row("bxy", Prior("Normal", mu=1, sigma=2)) == (kernels.NORMAL, 1.0, 2.0)
    assert row("bxy", Prior("Normal", tau=4)) == (kernels.NORMAL, 0.0, 0.5)
    assert row("tau", Prior("Exponential", scale=2)) == (kernels.EXPONENTIAL, 0.5, 0.0)
    assert row("tau", Prior("HalfNormal", tau=0.25)) == (kernels.HALF_NORMAL, 2.0, 0.0)
    assert row("tau", Prior("Gamma", mu=2, sigma=1)) == (kernels.GAMMA, 4.0, 2.0)
    assert row("tau", Prior("HalfStudentT", nu=3, lam=4)) == (kernels.HALF_STUDENT_T, 3.0, 0.5)
    refused = [("bxy", Prior("StudentT", nu=3, mu=0, sigma=1)), ("bxy", Prior("Laplace", mu=0, b=1)),
               ("tau", Prior("LogNormal", mu=0, sigma=1)), ("tau", Prior("HalfCauchy", beta=1)),
               ("tau", Prior("Normal", mu=0, sigma=1)), ("bxy", Prior("HalfNormal", sigma=1))]  # fmt: skip
    for name, prior in refused:
        assert row(name, prior) is None, (name, prior)
    data = panel("bernoulli", 4, 3, 1, 1, False, 20, seed=1)
    with pytest.raises(ValueError, match="cannot express the prior StudentT"):
        FusedModel("mundlak", data, priors={"bxy": Prior("StudentT", nu=3, mu=0, sigma=1)})
    # a prior the model does not read keeps its default's row
    naive = FusedModel("naive", data, priors={"tau": Prior("LogNormal", mu=0, sigma=1)})
    np.testing.assert_array_equal(naive.priors, kernels.prior_table())


def test_choose_engine_takes_the_fused_engine_for_a_prior_the_table_expresses():
    from groupfx.inference.engine import FusedEngine, GraphEngine, choose_engine

    data = panel("gaussian", 5, 3, 1, 1, False, 40, seed=3)
    for name in kernels.SERVED_MODELS:
        engine = choose_engine(name, data, "gaussian", priors=OFF_DEFAULTS)
        assert isinstance(engine, FusedEngine) and engine.closed_form, name
    student = {"bxy": Prior("StudentT", nu=3, mu=0, sigma=1)}
    assert isinstance(choose_engine("mundlak", data, "gaussian", priors=student), GraphEngine)
    assert isinstance(choose_engine("mundlak", data, "gaussian", priors={"tau_t": Prior("LogNormal")}),
                      GraphEngine)  # fmt: skip
    fit = groupfx.fit(data, "multilevel", family="gaussian", priors=OFF_DEFAULTS, warn=False, draws=20,
                      tune=30, chains=2)  # fmt: skip
    assert fit.idata.sample_stats.attrs["engine"] == "fused"
    assert np.isfinite(fit.idata.posterior["tau"]).all()


@pytest.mark.parametrize("model", ["fixed", "mundlak", "latent"])
def test_prior_draws_without_pymc_follow_each_parameters_own_prior(model):
    import pymc as pm

    from groupfx.results.checks import prior_parameter_draws

    data = panel("gaussian", 5, 3, 1, 1, False, 40, seed=5)
    fit = groupfx.fit(data, model, family="gaussian", priors=OFF_DEFAULTS, warn=False, draws=20, tune=30,
                      chains=2)  # fmt: skip
    assert fit.idata.sample_stats.attrs["engine"] == "fused" and fit.engine().closed_form
    names = list(dict.fromkeys([*fit.expected_outcome.parameters, "sigma_y"]))
    names += {
        "fixed": [],
        "mundlak": ["tau", "tau_t"],
        "latent": ["tau", "tau_t", "bux", "ax", "sigma", "bvx"],
    }[model]
    ours = prior_parameter_draws(fit, names, 4000, seed=1)
    pymc_model = fit.pymc_model()
    theirs = dict(zip(names, pm.draw([pymc_model[n] for n in names], draws=4000, random_seed=1), strict=True))
    for name in names:
        assert ours[name].shape == np.shape(theirs[name]), name
        a, b = ours[name].reshape(4000, -1), np.asarray(theirs[name]).reshape(4000, -1)
        for column in {0, a.shape[1] - 1}:  # the same marginal distribution: a two-sample KS test
            assert stats.ks_2samp(a[:, column], b[:, column]).pvalue > 1e-4, (name, column)
        if name in DEFAULT_PRIORS and name not in ("f",):  # and the prior's own mean (all have one here)
            mean = pm.draw(getattr(pm, OFF_DEFAULTS[name].distribution).dist(**OFF_DEFAULTS[name].parameters),
                           draws=20000, random_seed=2).mean()  # fmt: skip
            sd = b[:, 0].std()
            assert abs(a[:, 0].mean() - mean) < 5 * sd * np.sqrt(1 / 4000 + 1 / 20000), name
