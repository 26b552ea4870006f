"""Family objects: each family's link and inverse, replicate draws and y rules; no module outside the families
(and the data layer's outcome rules) compares a family's name."""

from __future__ import annotations

import ast
import pickle

import numpy as np
import pymc as pm
import pytest
from pytensor.graph.traversal import ancestors
from scipy.special import expit

from groupfx.data.outcomes import OUTCOME_RULES, outcome_rule
from groupfx.engines import unit_pass
from groupfx.errors import InputError
from groupfx.models.families import FAMILIES, OUTCOME, family_of_outcome, get_family
from groupfx.models.priors import resolve_priors

from .. import name_scan

SRC = name_scan.SRC
NAMES = {"bernoulli", "binomial", "poisson", "gaussian"}
ALLOWED = {SRC / "models" / "families.py", SRC / "data" / "outcomes.py"}


def test_no_module_compares_a_family_name():
    offenders = list(name_scan.offenders(NAMES, lambda path: path in ALLOWED))
    assert not offenders, "family names compared outside models/families.py: " + ", ".join(offenders)


def test_the_scan_finds_each_kind_of_comparison():
    source = (
        "if family == 'poisson': pass\n"
        "x = {'gaussian': 1}\n"
        "match f:\n    case 'binomial': pass\n"
        "y = family in ('bernoulli', 'other')\n"
        "z = f(family='bernoulli')\n"
    )
    assert name_scan.name_uses(ast.parse(source), NAMES) == [
        (1, "poisson"), (2, "gaussian"), (4, "binomial"), (5, "bernoulli"),
    ]  # fmt: skip


def test_registry_holds_every_rule_in_order_and_lookups():
    assert list(FAMILIES) == list(OUTCOME_RULES) == ["bernoulli", "binomial", "poisson", "gaussian"]
    for name, family in FAMILIES.items():
        assert get_family(name) is family and get_family(family) is family
        assert family.rule is OUTCOME_RULES[name] and outcome_rule(family) is OUTCOME_RULES[name]
        assert pickle.loads(pickle.dumps(family)) is family
    with pytest.raises(InputError, match="Unknown family 'probit'; choose from: bernoulli, binomial"):
        get_family("probit")


def test_kernel_codes_are_distinct_and_the_kernels_own():
    codes = [family.kernel_code for family in FAMILIES.values()]
    assert sorted(codes) == list(range(len(FAMILIES)))
    assert [unit_pass.BERNOULLI, unit_pass.BINOMIAL, unit_pass.POISSON, unit_pass.GAUSSIAN] == codes


@pytest.mark.parametrize(
    ("name", "inverse"),
    [("bernoulli", expit), ("binomial", expit), ("poisson", np.exp), ("gaussian", lambda eta: eta)],
)
def test_link_and_inverse(name, inverse):
    family = get_family(name)
    eta = np.linspace(-5, 5, 41)
    np.testing.assert_allclose(family.inverse(eta), inverse(eta), rtol=1e-12)
    np.testing.assert_allclose(family.linked(family.inverse(eta)), eta, rtol=1e-9, atol=1e-9)
    assert family.link == {"bernoulli": "logit", "binomial": "logit", "poisson": "log"}.get(name, "identity")


def test_traits():
    assert [f.name for f in FAMILIES.values() if f.binary] == ["bernoulli"]
    assert [f.name for f in FAMILIES.values() if f.needs_trials] == ["binomial"]
    assert [f.name for f in FAMILIES.values() if f.takes_exposure] == ["poisson"]
    assert {f.name: f.noise_parameters for f in FAMILIES.values() if f.has_noise_scale} == {
        "gaussian": ("sigma_y",)
    }
    scales = {"bernoulli": "probability", "binomial": "probability", "poisson": "expected count"}
    assert {f.name: f.outcome_scale for f in FAMILIES.values()} == scales | {"gaussian": "mean"}
    assert len({f.within_estimator for f in FAMILIES.values()}) == len(FAMILIES)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_y_checks(name):
    family = get_family(name)
    good = {"bernoulli": [0, 1, 1], "binomial": [0, 3, 7], "poisson": [0, 2, 50], "gaussian": [-1.5, 0, 2e3]}
    bad = {"bernoulli": [2, -1, 0.5], "binomial": [-1, 1.5, -2], "poisson": [-1, 0.5, 2.2],
           "gaussian": [np.nan, np.inf, -np.inf]}  # fmt: skip
    assert not family.invalid(np.array(good[name], dtype=float)).any()
    assert family.invalid(np.array(bad[name], dtype=float)).all()
    assert family.requirement.startswith("must be")


@pytest.mark.parametrize("name", list(FAMILIES))
def test_replicate_draws_have_the_shape_and_mean_of_the_expected_outcome(name):
    family = get_family(name)
    rng = np.random.default_rng(3)
    eta = np.linspace(-1.0, 1.0, 5)
    mean = np.broadcast_to(family.inverse(eta), (20_000, 5))
    trials = np.array([1, 2, 5, 10, 3])
    sigma_y = np.full((20_000, 1), 2.0)
    draws = family.replicate(mean, rng, trials=trials, sigma_y=sigma_y)
    assert draws.shape == mean.shape and draws.dtype == float
    expected = family.inverse(eta) * (trials if family.needs_trials else 1)
    sd = np.sqrt({"bernoulli": expected * (1 - expected), "binomial": expected * (1 - family.inverse(eta)),
                  "poisson": expected, "gaussian": np.full(5, 4.0)}[name])  # fmt: skip
    # 5 standard errors of the mean of 20,000 draws
    np.testing.assert_array_less(np.abs(draws.mean(axis=0) - expected), 5 * sd / np.sqrt(20_000))
    assert not family.invalid(draws.ravel()).any()


def test_poisson_replicates_cap_an_infinite_mean():
    draws = get_family("poisson").replicate(np.array([[np.inf, 1.0]]), np.random.default_rng(0))
    assert np.isfinite(draws).all() and draws[0, 0] > 1e14


@pytest.mark.parametrize("name", list(FAMILIES))
def test_likelihood_is_the_distribution_the_family_names(name):
    family = get_family(name)
    with pm.Model(coords={"unit": range(4)}) as model:
        data = {
            "y": pm.Data("y", np.array([0, 1, 1, 0])),
            "trials": pm.Data("trials", np.array([1, 2, 2, 1])),
        }
        eta = pm.Normal("eta", 0, 1, dims="unit")
        family.outcome(eta, data, resolve_priors())
    rv = model[OUTCOME]
    assert family_of_outcome(rv.owner.op.name) is family
    mean = rv.owner.inputs[family.mean_input]
    assert eta in set(
        ancestors([mean])
    )  # the mean parameter, a function of eta (not the trials, rng or size)
    assert set(v.name for v in model.free_RVs) == {"eta", *family.noise_parameters}
