import ast
import dataclasses

import numpy as np
import nutpie
import pymc as pm
import pytensor.tensor as pt
import pytest

import groupfx
from groupfx.errors import InputError, UnknownModelError
from groupfx.loo.loglik import pointwise_loglik
from groupfx.models.builders import MODELS
from groupfx.models.families import OUTCOME

from .. import name_scan

EXPECTED_FREE = {
    "naive": {"a0", "bxy", "bzy"},
    "fixed": {"a", "bxy", "bzy"},
    "multilevel": {"abar", "tau", "e", "bxy", "bzy"},
    "mundlak": {"abar", "tau", "e", "bxy", "bzy", "buy"},
    "latent": {"abar", "tau", "e", "bxy", "bzy", "buy", "bux", "ax", "sigma", "m"},
    "latent_shared": {"abar", "tau", "e", "bxy", "bzy", "buy", "bux", "ax", "sigma", "m"},
}


@pytest.mark.parametrize("name", list(MODELS))
def test_models_have_the_designed_parameters_and_no_per_unit_draws(name, small_sim):
    model = groupfx.build_model(name, small_sim.data)
    assert {rv.name for rv in model.free_RVs} == EXPECTED_FREE[name]
    n = small_sim.data.n_units
    for deterministic in model.deterministics:  # only group-sized ones (the latent model's u)
        assert model.named_vars_to_dims[deterministic.name] in {("group",), ("group", "x_var")}
    for rv in model.free_RVs:
        assert n not in tuple(model.initial_point()[model.rvs_to_values[rv].name].shape)
    assert OUTCOME in model.named_vars
    assert isinstance(model[OUTCOME].owner.op, type(pm.Bernoulli.dist(0.5).owner.op))


def test_multilevel_offsets_are_standard_normal(small_sim):
    # The seed wrote e ~ Normal(abar, 1) and then abar + tau * e, counting abar twice.
    model = groupfx.build_model("multilevel", small_sim.data)
    mu, sigma = model["e"].owner.inputs[-2:]
    assert np.all(mu.eval() == 0) and np.all(sigma.eval() == 1)


def test_latent_sign_is_constrained(small_sim):
    model = groupfx.build_model("latent", small_sim.data)
    draws = pm.draw(model["bux"], draws=500, random_seed=1)
    assert draws.min() >= 0


def test_priors_are_overridable_by_name(small_sim):
    model = groupfx.build_model(
        "naive", small_sim.data, priors={"bxy": groupfx.Prior("Normal", mu=3, sigma=0.1)}
    )
    draws = pm.draw(model["bxy"], draws=500, random_seed=1)
    assert abs(draws.mean() - 3) < 0.05


def test_unknown_names_are_refused(small_sim):
    with pytest.raises(UnknownModelError, match="choose from: naive, fixed"):
        groupfx.build_model("random", small_sim.data)
    with pytest.raises(InputError, match="No model has a parameter 'beta'"):
        groupfx.build_model("naive", small_sim.data, priors={"beta": groupfx.Prior("Normal")})
    with pytest.raises(InputError, match="not a PyMC distribution"):
        groupfx.Prior("Gaussian", mu=0)


@pytest.mark.parametrize(  # each compiles and samples the PyMC model: one in the fast set
    "name", [pytest.param(name, marks=[] if name == "mundlak" else [pytest.mark.slow]) for name in MODELS]
)
def test_vectorised_loglik_equals_pymc_reference(name, small_sim):
    model = groupfx.build_model(name, small_sim.data)
    idata = nutpie.sample(
        nutpie.compile_pymc_model(model), draws=15, tune=30, chains=2, seed=2, progress_bar=False
    )
    ours = pointwise_loglik(model, idata.posterior)
    with model:
        reference = pm.compute_log_likelihood(
            idata, var_names=[OUTCOME], extend_inferencedata=False, progressbar=False
        )[OUTCOME]
    assert ours.shape == reference.shape
    np.testing.assert_allclose(ours.to_numpy(), reference.to_numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["latent", "latent_shared"])
def test_latent_sufficient_statistics_give_the_unit_level_likelihood(name, two_x_data):
    """The latent models' x-likelihood by group statistics differs from the per-unit one by a constant."""
    from groupfx.models.builders import _coords, _data_containers, _group_intercepts
    from groupfx.models.families import get_family
    from groupfx.models.priors import resolve_priors

    data, priors = two_x_data, resolve_priors()
    coords = _coords(data) | {"x_other": list(data.x_names[1:])}
    with pm.Model(coords=coords) as per_unit:
        d = _data_containers(data)
        a = _group_intercepts(priors)
        bxy = pm.Normal("bxy", dims="x_var")
        bzy = pm.Normal("bzy", dims="z_var")
        ax = pm.Normal("ax", dims="x_var")
        sigma = pm.Exponential("sigma", 1, dims="x_var")
        if name == "latent":
            buy = pm.Normal("buy", dims="x_var")
            bux = pm.HalfNormal("bux", dims="x_var")
            means = pm.Normal("m", mu=ax, sigma=bux, dims=("group", "x_var"))
            confounder = pt.sum((means - ax) / bux * buy, axis=1)
        else:
            buy = pm.Normal("buy")
            bux = pm.HalfNormal("bux")
            bux_other = pm.Normal("bux_other", dims="x_other")
            m = pm.Normal("m", mu=ax[0], sigma=bux, dims="group")
            u = (m - ax[0]) / bux
            means = ax + u[:, None] * pt.concatenate([bux[None], bux_other])
            confounder = buy * u
        g = d["g"]
        pm.Normal("x_obs", mu=means[g], sigma=sigma, observed=d["x"], dims=("unit", "x_var"))
        eta = (a + pt.dot(d["z"], bzy) + confounder)[g] + pt.dot(d["x"], bxy)
        get_family("bernoulli").outcome(eta, d, priors)
    by_group = groupfx.build_model(name, data)
    logp_unit, logp_group = per_unit.compile_logp(), by_group.compile_logp()
    assert set(per_unit.initial_point()) == set(by_group.initial_point())
    rng = np.random.default_rng(0)
    differences = []
    for _ in range(6):
        point = {k: rng.normal(size=np.shape(v)) for k, v in per_unit.initial_point().items()}
        differences.append(logp_unit(point) - logp_group(point))
    assert np.ptp(differences) < 1e-8
    # and the logp itself moves between points, so the check is not vacuous
    assert np.ptp([logp_unit({k: v + s for k, v in per_unit.initial_point().items()}) for s in (0, 1)]) > 1


def test_several_x_and_z_get_one_coefficient_each(two_x_data):
    for name in ("naive", "fixed", "mundlak", "latent"):
        model = groupfx.build_model(name, two_x_data)
        point = model.initial_point()
        assert point["bxy"].shape == (2,) and point["bzy"].shape == (2,)
        assert list(model.coords["x_var"]) == ["x", "x2"] and list(model.coords["z_var"]) == ["z", "z2"]
    shared = groupfx.build_model("latent_shared", two_x_data)
    assert shared.initial_point()["m"].shape == (two_x_data.n_groups,)
    assert shared.initial_point()["bux_other"].shape == (1,)  # the second x's loading is free in sign


def test_without_z_there_is_no_bzy(small_sim):
    frame = small_sim.data.to_frame()
    data = groupfx.GroupedData.from_frame(frame, x="x", z=None)
    for name in MODELS:
        model = groupfx.build_model(name, data)
        assert "bzy" not in model.named_vars and "z_var" not in model.coords


def test_latent_u_is_standard_normal_a_priori(small_sim):
    # u is sampled through m = ax + bux * u; the model must still say u ~ Normal(0, 1)
    model = groupfx.build_model("latent", small_sim.data)
    draws = pm.draw(model["u"], draws=4000, random_seed=3).ravel()
    assert abs(draws.mean()) < 0.03 and abs(draws.std() - 1) < 0.03


TRAITS = {  # intercepts, group mean of x, latent u, within, group intercepts, contextual effect
    "naive": ("single", False, None, False, False, None),
    "fixed": ("free", False, None, True, True, None),
    "multilevel": ("pooled", False, None, False, True, None),
    "mundlak": ("pooled", True, None, True, False, "buy"),
    "latent": ("pooled", False, "per_x", True, False, "buy/bux"),
    "latent_shared": ("pooled", False, "shared", True, False, None),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_each_models_traits_say_what_its_predictor_holds(name, small_sim):
    spec = MODELS[name]
    traits = (spec.intercepts, spec.group_mean_of_x, spec.latent_group_variable, spec.identifies_within,
              spec.has_group_intercepts, spec.contextual_effect)  # fmt: skip
    assert traits == TRAITS[name]
    assert spec.phrase
    model = groupfx.build_model(name, small_sim.data)
    free = {rv.name for rv in model.free_RVs}
    # the traits agree with the variables the builder makes
    assert {"single": "a0", "free": "a", "pooled": "abar"}[spec.intercepts] in free
    assert ("xbar" in {v.name for v in model.data_vars} and "m" not in free) == spec.group_mean_of_x
    assert ("u" in {d.name for d in model.deterministics}) == (spec.latent_group_variable is not None)
    assert ("buy" in free) == (spec.group_proxy is not None)
    if spec.latent_group_variable is not None:
        per_x = model.named_vars_to_dims["u"] == ("group", "x_var")
        assert per_x == (spec.latent_group_variable == "per_x")
    # the named priors the builder reads are those the spec says
    assert {name for name in groupfx.models.priors.DEFAULT_PRIORS if name in free} == set(spec.priors_used)


def test_a_spec_refuses_an_unknown_trait():
    spec = MODELS["naive"]
    with pytest.raises(ValueError, match="intercepts must be"):
        dataclasses.replace(spec, intercepts="crossed")
    with pytest.raises(ValueError, match="latent_group_variable"):
        dataclasses.replace(spec, latent_group_variable="per_z")


MODEL_NAMES = set(MODELS)


def test_no_module_outside_models_compares_a_model_name():
    offenders = list(
        name_scan.offenders(
            MODEL_NAMES, lambda path: name_scan.SRC / "models" in path.parents, literal_lists=True
        )
    )
    assert not offenders, "model names compared outside models/ (ask the ModelSpec's traits): " + ", ".join(
        offenders
    )


def test_the_model_name_scan_finds_each_kind_of_use():
    source = (
        "if fit.model == 'mundlak': pass\n"
        "x = {'fixed': 1}\n"
        "match m:\n    case 'latent': pass\n"
        "WITHIN = ('naive', 'multilevel')\n"
        "y = fit(model='latent_shared')\n"
        "z = ['naive']\n"
    )
    assert name_scan.name_uses(ast.parse(source), MODEL_NAMES, literal_lists=True) == [
        (1, "mundlak"), (2, "fixed"), (4, "latent"), (5, "multilevel"), (5, "naive"),
    ]  # fmt: skip
