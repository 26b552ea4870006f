"""Priors from a TOML file: loaded into Prior objects, used by the models, each mistake one clear error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pymc as pm
import pytest

import groupfx
from groupfx.errors import InputError
from groupfx.priors import DEFAULT_PRIORS, Prior, load_priors

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
            r"\[bxy\] in .*priors\.toml: 'Gauss' is not a PyMC distribution",
        ),
        (
            "[tau]\ndistribution = 'HalfNormal'\nsigma = 1\n[bxy]\ndistribution = 'Normal'\nmean = 0\n",
            r"\[bxy\] in .*priors\.toml: Normal\(mean=0\) is not a valid prior .*'mean'",
        ),
        (
            "[bxy]\ndistribution = 'Normal'\nmu = 'zero'\n",
            r"\[bxy\] in .*priors\.toml: mu must be a number",
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
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("groupfx: error:")
    assert "bad.toml" in lines[0]
    assert "Traceback" not in result.stderr
    assert not out.exists()
    assert {p.name for p in tmp_path.iterdir()} == ({"bad.toml"} if text is not None else set())
