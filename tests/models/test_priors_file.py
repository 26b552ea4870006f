"""Priors from a TOML file: loaded into Prior objects, used by the models, each mistake one clear error."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pymc as pm
import pytest

import groupfx
from groupfx.errors import InputError
from groupfx.models.priors import (
    DEFAULT_PRIORS,
    POSITIVE_ARGUMENTS,
    Prior,
    check_prior,
    fit_problem,
    load_priors,
    resolve_priors,
    sampling_problem,
)

GOOD = """
[bxy]
distribution = "Normal"
mu = 3.0
sigma = 0.25

[tau]
distribution = "HalfNormal"
sigma = 0.5
"""


def write(tmp_path: Path, text: str, name: str = "priors.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_file_loads_to_priors(tmp_path):
    priors = load_priors(write(tmp_path, GOOD))
    assert set(priors) == {"bxy", "tau"}
    assert priors["bxy"] == Prior("Normal", mu=3.0, sigma=0.25)
    assert priors["tau"] == Prior("HalfNormal", sigma=0.5)
    assert priors["bxy"].parameters == {"mu": 3.0, "sigma": 0.25}
    assert priors["tau"].distribution == "HalfNormal"


def test_an_empty_file_sets_no_priors(tmp_path):
    assert load_priors(write(tmp_path, "# nothing here\n")) == {}


def test_the_models_use_the_loaded_priors(tmp_path, small_sim):
    priors = load_priors(write(tmp_path, GOOD))
    model = groupfx.build_model("naive", small_sim.data, priors=priors)
    draws = pm.draw(model["bxy"], draws=4000, random_seed=1)
    assert abs(draws.mean() - 3.0) < 0.05 and abs(draws.std() - 0.25) < 0.03
    default = groupfx.build_model("naive", small_sim.data)  # the default is Normal(0, 1)
    assert DEFAULT_PRIORS["bxy"] == Prior("Normal", mu=0, sigma=1)
    assert abs(pm.draw(default["bxy"], draws=4000, random_seed=1).mean()) < 0.1

    multilevel = groupfx.build_model("multilevel", small_sim.data, priors=priors)
    tau = pm.draw(multilevel["tau"], draws=4000, random_seed=2)
    assert (tau >= 0).all()
    assert abs(tau.mean() - 0.5 * np.sqrt(2 / np.pi)) < 0.03  # half-normal mean, not Exponential(1)'s 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[bxy\ndistribution = 'Normal'\n", r"Priors file .*priors\.toml is not valid TOML"),
        ("[bxy]\nmu = 0\nsigma = 1\n", r"\[bxy\] in .*priors\.toml must be a table with distribution ="),
        ("bxy = 1\n", r"\[bxy\] in .*priors\.toml must be a table with distribution ="),
        (
            "[bxy]\ndistribution = 'Gauss'\nmu = 0\n",
            r"Prior of bxy \(\[bxy\] in .*priors\.toml\): 'Gauss' is not a PyMC distribution",
        ),
        (
            "[tau]\ndistribution = 'HalfNormal'\nsigma = 1\n[bxy]\ndistribution = 'Normal'\nmean = 0\n",
            r"Prior of bxy \(\[bxy\] in .*priors\.toml\): Normal\(mean=0\) is not a valid prior .*'mean'",
        ),
        (
            "[bxy]\ndistribution = 'Normal'\nmu = 'zero'\n",
            r"Prior of bxy \(\[bxy\] in .*priors\.toml\): mu must be a number .*got 'zero'",
        ),
        (
            "[beta]\ndistribution = 'Normal'\nmu = 0\nsigma = 1\n",
            r"Priors file .*priors\.toml: No model has a parameter 'beta'",
        ),
    ],
    ids=["invalid-toml", "no-distribution", "not-a-table", "unknown-distribution", "bad-argument",
         "non-numeric-argument", "unknown-parameter"],
)  # fmt: skip
def test_each_mistake_is_one_clear_error(tmp_path, text, message):
    with pytest.raises(InputError, match=message) as caught:
        load_priors(write(tmp_path, text))
    assert "\n" not in str(caught.value)


def test_a_missing_file_is_named(tmp_path):
    missing = tmp_path / "nowhere.toml"
    with pytest.raises(InputError, match=r"Priors file .*nowhere\.toml does not exist"):
        load_priors(missing)
    with pytest.raises(InputError, match=r"does not exist"):
        load_priors(tmp_path)  # a folder is not a file


def test_a_file_that_is_not_text_is_refused(tmp_path):
    path = tmp_path / "binary.toml"
    path.write_bytes(b"\xff\xfe\x00[bxy]")
    with pytest.raises(InputError, match=r"binary\.toml is not valid TOML"):
        load_priors(path)


@pytest.fixture(scope="module")
def csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "units.csv"
    groupfx.simulate(n_groups=6, n_units=120, seed=1).to_frame().to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    "text",
    [None, "[bxy]\ndistribution = 'Normal'\nmean = 0\n"],
    ids=["missing", "bad-argument"],
)
def test_the_cli_stops_on_a_bad_priors_file_before_fitting(tmp_path, csv, text):
    priors = tmp_path / "bad.toml"
    if text is not None:
        priors.write_text(text, encoding="utf-8")
    out = tmp_path / "report"
    command = [sys.executable, "-m", "groupfx.cli", "fit", str(csv), "--y", "y", "--x", "x", "--group",
               "group", "--z", "z", "--priors", str(priors), "--out", str(out), "--draws", "20",
               "--tune", "20", "--chains", "1"]  # fmt: skip
    source = str(Path(groupfx.__file__).resolve().parents[1])  # run elsewhere, import this same copy
    env = os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("groupfx: error:")
    assert "bad.toml" in lines[0]
    assert "Traceback" not in result.stderr
    assert not out.exists()
    assert {p.name for p in tmp_path.iterdir()} == ({"bad.toml"} if text is not None else set())


def toml_table(name: str, distribution: str, **arguments) -> str:
    lines = [f"[{name}]", f'distribution = "{distribution}"']
    for key, value in arguments.items():
        lines.append(f"{key} = {value}")  # the value as TOML text: -1, 0.5, inf, nan, "zero", true
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("name", "distribution", "arguments", "message"),
    [
        ("sigma_y", "Exponential", {"lam": "-1"}, r"lam must be positive \(got -1\)"),
        ("bxy", "Normal", {"mu": "0", "sigma": "-1"}, r"sigma must be positive \(got -1\)"),
        ("bxy", "Normal", {"mu": "0", "sigma": "0"}, r"sigma must be positive \(got 0\)"),
        ("bxy", "Normal", {"mu": "0", "sigma": "-0.5"}, r"sigma must be positive \(got -0\.5\)"),
        ("bxy", "Normal", {"mu": "inf", "sigma": "1"}, r"mu must be a finite number \(got inf\)"),
        ("bxy", "Normal", {"mu": "-inf", "sigma": "1"}, r"mu must be a finite number \(got -inf\)"),
        ("bxy", "Normal", {"mu": "nan", "sigma": "1"}, r"mu must be a finite number \(got nan\)"),
        ("bxy", "Normal", {"mu": "0", "sigma": "inf"}, r"sigma must be a finite number \(got inf\)"),
        ("bxy", "Normal", {"mu": "true"}, r"mu must be a number .*got True"),
        ("bxy", "Normal", {"mu": "[0, 1]"}, r"mu must be a number .*got \[0, 1\]"),
        ("tau", "HalfNormal", {"sigma": "-2"}, r"sigma must be positive \(got -2\)"),
        ("tau", "HalfCauchy", {"beta": "0"}, r"beta must be positive \(got 0\)"),
        ("bxy", "StudentT", {"nu": "-3", "mu": "0", "sigma": "1"}, r"nu must be positive \(got -3\)"),
        ("tau", "HalfStudentT", {"nu": "3", "sigma": "-1"}, r"sigma must be positive \(got -1\)"),
        ("bxy", "Cauchy", {"alpha": "0", "beta": "-1"}, r"beta must be positive \(got -1\)"),
        ("sigma", "Gamma", {"alpha": "-2", "beta": "1"}, r"alpha must be positive \(got -2\)"),
        ("sigma", "InverseGamma", {"alpha": "2", "beta": "0"}, r"beta must be positive \(got 0\)"),
        ("sigma", "LogNormal", {"mu": "0", "sigma": "-1"}, r"sigma must be positive \(got -1\)"),
        ("bxy", "Uniform", {"lower": "2", "upper": "1"},
         r"lower must be below upper \(got lower = 2, upper = 1\)"),
        ("bxy", "Uniform", {"lower": "1", "upper": "1"}, r"lower must be below upper"),
        ("bxy", "Laplace", {"mu": "0", "b": "-1"}, r"b must be positive \(got -1\)"),
        ("bux", "TruncatedNormal", {"mu": "0", "sigma": "1", "lower": "3", "upper": "0"},
         r"lower must be below upper"),
        ("bxy", "Beta", {"alpha": "0", "beta": "1"}, r"alpha must be positive \(got 0\)"),
        ("bxy", "Beta", {"mu": "1.5", "sigma": "0.1"}, r"mu must lie strictly between 0 and 1 \(got 1\.5\)"),
        ("bxy", "Beta", {"mu": "0.5", "sigma": "0.6"},
         r"sigma must be below sqrt\(mu \* \(1 - mu\)\) = 0\.5"),
        ("sigma", "Weibull", {"alpha": "1", "beta": "-1"}, r"beta must be positive \(got -1\)"),
        ("bxy", "Flat", {}, r"Flat is improper.*such as Normal\(mu=0, sigma=10\)"),
        ("tau", "HalfFlat", {}, r"HalfFlat is improper.*such as HalfNormal\(sigma=10\)"),
        ("bxy", "Poisson", {"mu": "1"}, r"Poisson is discrete, but bxy is a continuous parameter"),
        ("bxy", "Normal", {"mu": "0", "sigma": "1", "tau": "1"},
         r"Normal\(mu=0, sigma=1, tau=1\) is not a valid prior \(Can't pass both"),
    ],
)  # fmt: skip
def test_each_argument_outside_its_domain_is_named_with_its_value(tmp_path, name, distribution, arguments,
                                                                 message):  # fmt: skip
    good = toml_table("a0", "Normal", mu=0.5, sigma=2)  # a good table first: the bad one is still found
    path = write(tmp_path, good + toml_table(name, distribution, **arguments))
    with pytest.raises(InputError) as caught:
        load_priors(path)
    text = str(caught.value)
    assert "\n" not in text and "np." not in text
    assert re.match(rf"Prior of {name} \(\[{name}\] in .*priors\.toml\): {message}", text), text


SCALES = ["tau", "sigma", "sigma_y", "bux"]
"""The parameters the models use as standard deviations (tau * e, Normal(..., sigma), Normal(ax, bux))."""


@pytest.mark.parametrize("name", SCALES)
@pytest.mark.parametrize(
    "prior",
    [Prior("Normal", mu=0, sigma=1), Prior("StudentT", nu=3, mu=0, sigma=1),
     Prior("Cauchy", alpha=0, beta=1), Prior("Laplace", mu=1, b=1), Prior("Uniform", lower=-1, upper=1),
     Prior("TruncatedNormal", mu=1, sigma=1)],
    ids=repr,
)  # fmt: skip
def test_a_scale_parameter_refuses_a_prior_with_negative_values(tmp_path, name, prior):
    with pytest.raises(
        InputError, match=rf"^Prior of {name}: .* allows negative values, but {name} is"
    ) as caught:
        resolve_priors({name: prior})
    assert "HalfNormal(sigma=1)" in str(caught.value) and "\n" not in str(caught.value)
    arguments = {k: str(v) for k, v in prior.parameters.items()}
    with pytest.raises(
        InputError, match=rf"^Prior of {name} \(\[{name}\] in .*\): .* allows negative values"
    ):
        load_priors(write(tmp_path, toml_table(name, prior.distribution, **arguments)))


@pytest.mark.parametrize(
    "prior",
    [Prior("HalfNormal", sigma=2), Prior("Exponential", lam=3), Prior("HalfStudentT", nu=3, sigma=1),
     Prior("HalfCauchy", beta=1), Prior("Gamma", alpha=2, beta=2), Prior("InverseGamma", alpha=3, beta=1),
     Prior("LogNormal", mu=0, sigma=0.5), Prior("Weibull", alpha=2, beta=1), Prior("Beta", alpha=2, beta=2),
     Prior("Uniform", lower=0, upper=3), Prior("TruncatedNormal", mu=1, sigma=1, lower=0)],
    ids=repr,
)  # fmt: skip
def test_a_scale_parameter_takes_any_prior_on_positive_values(small_sim, prior):
    priors = {name: prior for name in SCALES}
    assert resolve_priors(priors) == DEFAULT_PRIORS | priors
    model = groupfx.build_model("latent", small_sim.data, priors=priors)
    draws = pm.draw([model["tau"], model["sigma"], model["bux"]], draws=200, random_seed=4)
    assert all((np.asarray(d) >= 0).all() for d in draws)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Prior("Normal", mu=0, sigma=-1),
         r"^Prior Normal\(mu=0, sigma=-1\): sigma must be positive \(got -1\)\.$"),
        (lambda: Prior("Normal", mu=np.float64(np.nan)), r"mu must be a finite number \(got nan\)"),
        (lambda: Prior("HalfNormal", sigma=np.int64(-3)),
         r"^Prior HalfNormal\(sigma=-3\): sigma must be positive \(got -3\)"),
        (lambda: Prior("Exponential", lam="1"), r"lam must be a number .*got '1'"),
        (lambda: Prior("Normal", mu=None), r"mu must be a number .*got None"),
        (lambda: Prior("Normal", mu=np.zeros(2)), r"mu must be a number"),
        (lambda: Prior("Gamma", alpha=1, beta=float("inf")), r"beta must be a finite number \(got inf\)"),
        (lambda: Prior("Uniform", lower=0, upper=-1), r"lower must be below upper"),
        (lambda: Prior("Triangular", lower=0, c=3, upper=2),
         r"c must lie between lower = 0 and upper = 2 \(got 3\)"),
    ],
)  # fmt: skip
def test_a_prior_with_an_argument_outside_its_domain_cannot_be_made(make, message):
    with pytest.raises(InputError, match=message) as caught:
        make()
    assert "\n" not in str(caught.value) and "np." not in str(caught.value)


def test_the_api_names_the_parameter_of_a_bad_prior(small_sim):
    with pytest.raises(InputError, match=r"^Prior of bxy: Poisson is discrete"):
        resolve_priors({"bxy": Prior("Poisson", mu=1)})
    with pytest.raises(InputError, match=r"^Prior of tau: .*allows negative values"):
        groupfx.build_model("multilevel", small_sim.data, priors={"tau": Prior("Normal", mu=0, sigma=1)})
    with pytest.raises(InputError, match=r"^Prior of sigma_y: .*allows negative values"):
        groupfx.fit(small_sim, "naive", family="gaussian", priors={"sigma_y": Prior("Normal")}, warn=False)


def test_every_default_prior_passes_every_check():
    for name, prior in DEFAULT_PRIORS.items():
        check_prior(name, prior)  # raises if any check refuses it


def test_pymcs_own_checks_catch_what_no_named_check_does(monkeypatch):
    """A distribution whose arguments groupfx does not name is still checked: by drawing from it."""
    monkeypatch.setitem(POSITIVE_ARGUMENTS, "Normal", ())
    monkeypatch.setitem(POSITIVE_ARGUMENTS, "Wald", ())
    prior = Prior("Wald", mu=-1, lam=1)  # no named check refuses a negative mean now
    assert fit_problem("bxy", prior) is None
    problem = sampling_problem(prior)
    assert problem is not None and problem.startswith("Wald(mu=-1, lam=1) is not a valid prior (PyMC:")
    with pytest.raises(InputError, match=r"^Prior of bxy: Wald\(mu=-1, lam=1\) is not a valid prior \(PyMC:"):
        resolve_priors({"bxy": prior})
    assert sampling_problem(Prior("Normal", mu=0, sigma=-1)) is not None
    assert sampling_problem(Prior("Wald", mu=1, lam=1)) is None


def test_every_table_gets_the_cheap_checks_before_any_is_drawn_from(tmp_path, monkeypatch):
    drawn = []
    original = pm.draw
    monkeypatch.setattr(pm, "draw", lambda *a, **k: drawn.append(a) or original(*a, **k))
    text = toml_table("bxy", "StudentT", nu=5, mu=0, sigma=2) + toml_table("tau", "Normal", mu=0, sigma=1)
    with pytest.raises(InputError, match=r"^Prior of tau \(\[tau\] in .*\): .*allows negative values"):
        load_priors(write(tmp_path, text))
    assert drawn == []  # the bad table was found without compiling a draw for the good one
    assert load_priors(write(tmp_path, toml_table("bxy", "StudentT", nu=5, mu=0, sigma=2.5))) == {
        "bxy": Prior("StudentT", nu=5, mu=0, sigma=2.5)
    }
