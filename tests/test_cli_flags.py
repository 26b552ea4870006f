"""The command line as a user meets it: a quiet terminal, and every sampler flag reaching the fit.

Each run is a real ``groupfx fit`` subprocess with tiny draws; each reads back every file it wrote.
"""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import pytest

import groupfx
from groupfx.engines.sampling import model_seed
from groupfx.errors import DiagnosticWarning

TINY = ["--draws", "60", "--tune", "60", "--chains", "2"]
COLUMNS = ["--y", "y", "--x", "x", "--group", "group", "--z", "z", "--family", "gaussian"]
MODELS = {"naive": "Naive", "mundlak": "Mundlak"}
LIBRARY_NOISE = [
    re.compile(pattern)
    for pattern in (
        r"Warning:",  # "FutureWarning: ...", "UserWarning: ..." as Python prints them
        r"Warning\b",  # any warning class named on its own
        r"warnings\.warn",
        r"\.py:\d+",  # the "path.py:12:" head of a raw warning, or a traceback's frame
        r"^\s*File \"",
        r"Traceback",
        r"^(WARNING|INFO|DEBUG)\b",  # PyTensor's and JAX's log format
        r" - (WARNING|INFO) - ",  # ArviZ's log format
    )
]


def run_fit(csv: Path, out: Path, *flags: str, cache: Path | None = None) -> subprocess.CompletedProcess:
    """``groupfx fit`` on ``csv`` into ``out``; ``cache`` replaces the user's cache folder (a first run)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    if cache is not None:
        env["XDG_CACHE_HOME"] = str(cache)  # ArviZ's once-a-day FutureWarning fires with a fresh cache
        env.pop("MPLCONFIGDIR", None)
    result = subprocess.run(
        [sys.executable, "-m", "groupfx.cli", "fit", str(csv), *COLUMNS, *TINY, "--out", str(out), *flags],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def library_lines(stderr: str) -> list[str]:
    """The lines of ``stderr`` that a library printed raw (groupfx's own lines start lower case)."""
    return [line for line in stderr.splitlines() if any(p.search(line) for p in LIBRARY_NOISE)]


def read_outputs(out: Path, models: dict[str, str], source: Path) -> dict[str, object]:
    """Read back every file of a fit's output folder, checking each is what it says it is."""
    read: dict[str, object] = {}
    for name in ("estimates", "loo", "fits", "data", "effects", "crosscheck", "mundlak_effects"):
        path = out / f"{name}.csv"
        if name == "mundlak_effects" and "mundlak" not in models:
            assert not path.exists()
            continue
        read[name] = pd.read_csv(path)
        assert len(read[name]) > 0, name
    assert set(read["estimates"].model) == set(models.values())
    assert set(read["loo"].model) == set(models.values())
    assert list(read["fits"].model) == list(models.values())
    pd.testing.assert_frame_equal(read["data"], pd.read_csv(source)[["group", "x", "y", "z"]])
    read["idata"] = {model: az.from_netcdf(out / "idata" / f"{model}.nc") for model in models}
    assert sorted(p.name for p in (out / "idata").iterdir()) == sorted(f"{m}.nc" for m in models)
    pngs = sorted((out / "figures").glob("*.png"))
    assert {f"posterior_{m}.png" for m in models} <= {p.name for p in pngs}
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    read["report"] = html.unescape((out / "report.html").read_text(encoding="utf-8"))
    assert all(label in read["report"] for label in models.values())
    return read


def draws(idata: az.InferenceData) -> dict[str, np.ndarray]:
    return {name: idata.posterior[name].to_numpy() for name in idata.posterior.data_vars}


def bxy_mean(read: dict[str, object], label: str) -> float:
    table = read["estimates"]
    return float(table[(table.model == label) & (table.parameter == "bxy")]["mean"].iloc[0])


def outlier_frame() -> pd.DataFrame:
    """A small table for the Gaussian family whose last unit has y = 30 (the rest 0 or 1), at the mean of x.

    That unit alone sets the posterior of sigma, so its Pareto k is far above 0.7 whatever the draws
    (2.2 to 5.2 over six seeds of three models at tiny draws): the Pareto-k tests' premise. Units far out
    in x do not do it for a 0/1 outcome, whose likelihood is bounded (their k fell either side of 0.7).
    """
    frame = groupfx.simulate(n_groups=6, n_units=240, seed=8).to_frame()
    frame["y"] = frame["y"].astype(float)  # a Gaussian outcome, as the fit's data.csv writes it
    frame.loc[239, ["x", "y"]] = (frame["x"].mean(), 30.0)
    return frame


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("table") / "small.csv"
    outlier_frame().to_csv(path, index=False)
    return path


SETTINGS = ["--models", "naive,mundlak", "--mass-matrix", "diagonal", "--precision", "float32",
            "--target-accept", "0.85"]  # fmt: skip


def fit_with(table: Path, root: Path, seed: int, cores: int, *, cache: bool = False):
    """``SETTINGS`` with a seed and a number of cores: the result and every file read back."""
    out = root / f"seed{seed}-cores{cores}"
    flags = [*SETTINGS, "--seed", str(seed), "--cores", str(cores)]
    result = run_fit(table, out, *flags, cache=root / "cache" if cache else None)
    return result, read_outputs(out, MODELS, table)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="module")
def first_run(table, root):
    """A first run on a fresh machine (no caches): seed 5 on one core."""
    return fit_with(table, root, 5, 1, cache=True)


@pytest.fixture(scope="module")
def second_run(table, root):
    """The same with two cores."""
    return fit_with(table, root, 5, 2)


def test_the_terminal_shows_no_library_warning_on_a_first_run(first_run, second_run):
    for result, _ in (first_run, second_run):
        assert library_lines(result.stderr) == []
        assert "Report:" in result.stderr and "rank by PSIS-LOO" in result.stderr


def test_pareto_k_is_said_once_per_model_in_groupfx_words(first_run):
    result, read = first_run
    text = " ".join(result.stderr.split())  # the console wraps long lines
    said = re.findall(
        r"warning: (\w+): (\d+) of 240 units ha(?:ve|s) Pareto k > 0\.7: PSIS-LOO is unreliable", text
    )
    counted = re.findall(r"(\w+): (\d+) of 240 observations have Pareto k > 0\.7", read["report"])
    assert counted, "tiny draws leave some units with high Pareto k"
    assert sorted(said) == sorted(counted)  # once per model, the count the report gives
    assert "its elpd and rank are approximate" in text
    fits = read["fits"].set_index("model")
    assert (fits.loc[[label for label, _ in counted], "diagnostic_issues"] > 0).all()


def test_mass_matrix_precision_cores_and_target_acceptance_reach_the_sampler(first_run, second_run):
    for cores, (_, read) in ((1, first_run), (2, second_run)):
        for model, idata in read["idata"].items():
            attrs = idata.sample_stats.attrs
            assert attrs["mass_matrix"] == "diagonal", model
            assert attrs["precision"] == "float32" and int(attrs["cores"]) == cores
            assert attrs["backend"] == "numba" and attrs["device"] == "cpu"
            assert attrs["target_accept"] == 0.85
            assert idata.posterior["bxy"].dtype == np.float64  # float32 work, float64 draws
        assert "diagonal mass matrix, numba backend (cpu), target acceptance 0.85, seed 5" in read["report"]


def test_a_seed_gives_the_same_draws_on_any_number_of_cores(first_run, second_run):
    (_, one), (_, two) = first_run, second_run
    for read in (one, two):
        fits = read["fits"].set_index("model")
        for model, label in MODELS.items():
            assert int(fits.loc[label, "sampler_seed"]) == model_seed(5, model)
            assert int(read["idata"][model].posterior.attrs["sampler_seed"]) == model_seed(5, model)
    for model in MODELS:
        first, second = draws(one["idata"][model]), draws(two["idata"][model])
        assert first.keys() == second.keys()
        for name in first:
            np.testing.assert_array_equal(first[name], second[name], err_msg=f"{model} {name}")
    pd.testing.assert_frame_equal(one["estimates"], two["estimates"])
    pd.testing.assert_frame_equal(one["loo"], two["loo"])


@pytest.mark.slow
def test_another_seed_gives_other_draws(table, root, second_run):
    result, other = fit_with(table, root, 6, 2)
    _, five = second_run
    fits = other["fits"].set_index("model")
    for model, label in MODELS.items():
        assert int(fits.loc[label, "sampler_seed"]) == model_seed(6, model) != model_seed(5, model)
        assert not np.array_equal(draws(other["idata"][model])["bxy"], draws(five["idata"][model])["bxy"])
    assert not five["estimates"]["mean"].equals(other["estimates"]["mean"])
    assert library_lines(result.stderr) == []


@pytest.mark.slow
def test_a_priors_file_moves_the_estimate_on_the_jax_backend(table, tmp_path, first_run):
    """One run for both flags (each model is compiled anew): JAX, low-rank, a very tight prior on bxy."""
    jax = pytest.importorskip("jax")
    priors = tmp_path / "priors.toml"
    priors.write_text('[bxy]\ndistribution = "Normal"\nmu = 3.0\nsigma = 0.01\n', encoding="utf-8")
    flags = ["--models", "naive,mundlak", "--backend", "jax", "--mass-matrix", "low-rank"]
    result = run_fit(table, tmp_path / "out", *flags, "--priors", str(priors))
    read = read_outputs(tmp_path / "out", MODELS, table)
    _, default = first_run
    for label in MODELS.values():
        assert abs(bxy_mean(read, label) - 3.0) < 0.05, label
        assert abs(bxy_mean(default, label)) < 1.0  # the data alone put it near 0
    assert re.search(r"bxy ~ Normal\(mu=3(\.0)?, sigma=0\.01\) \(set by you\)", read["report"])
    platform = jax.devices()[0].platform
    for idata in read["idata"].values():
        attrs = idata.sample_stats.attrs
        assert attrs["backend"] == "jax" and attrs["device"].split(" ")[0] == platform
        assert attrs["mass_matrix"] == "low-rank" and attrs["precision"] == "float64"
    assert f"low-rank-modified mass matrix, jax backend ({platform}" in read["report"]
    assert library_lines(result.stderr) == []  # JAX's fork RuntimeWarning and its logs included


WARN_BOTH = """
import warnings
from groupfx.errors import DiagnosticWarning
from groupfx.util.quiet import quiet_libraries
quiet_libraries()
warnings.warn("library chatter", UserWarning)
warnings.warn("Naive: a diagnostic", DiagnosticWarning)
import logging
logging.getLogger("pymc").warning("library log line")
logging.getLogger("pytensor.tensor.blas").warning("another log line")
logging.getLogger("pymc").error("a library error")
"""

WARN_IN_A_WORKER = """
import multiprocessing as mp
import warnings
from concurrent.futures import ProcessPoolExecutor
from groupfx.util import workers as parallel

def task(text):
    warnings.warn(text, RuntimeWarning)
    return 1

for init, text in ((parallel._init_worker, "chatter in a fit worker"), (print, "chatter in another")):
    context = mp.get_context("fork")
    with ProcessPoolExecutor(1, mp_context=context, initializer=init, initargs=(None,)) as pool:
        assert pool.submit(task, text).result() == 1
"""


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env={**clean, **env}
    )


def test_quiet_drops_library_warnings_and_logs_and_keeps_groupfx_warnings():
    result = run_python(WARN_BOTH)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert "warning: Naive: a diagnostic" in lines  # one line, no Python source
    assert "a library error" in lines  # errors still pass, once
    assert len(lines) == 2, result.stderr
    shown = run_python(WARN_BOTH, PYTHONWARNINGS="default")  # Python's own switch shows everything
    assert "UserWarning: library chatter" in shown.stderr and "DiagnosticWarning" in shown.stderr


def test_fit_workers_keep_library_warnings_off_the_terminal():
    result = run_python(WARN_IN_A_WORKER)
    assert result.returncode == 0, result.stderr
    assert "chatter in a fit worker" not in result.stderr
    assert "RuntimeWarning: chatter in another" in result.stderr  # a worker without it would print them


def test_the_api_warns_of_pareto_k_once_per_model():
    data = groupfx.read_data(outlier_frame(), y="y", x="x", group="group", z="z", family="gaussian")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = groupfx.fit(data, "fixed", family="gaussian", draws=60, tune=60, chains=2, seed=42)
    issues = [issue for issue in fit.issues if issue.kind == "pareto_k"]
    count = int((np.asarray(fit.loo.pareto_k) > 0.7).sum())
    assert np.asarray(fit.loo.pareto_k)[239] > 0.7  # the premise, by the data
    assert count > 0 and len(issues) == 1 and issues[0].value == count and issues[0].out_of == 240
    said = [str(w.message) for w in caught if "Pareto k" in str(w.message)]
    have, them = ("has", "it") if count == 1 else ("have", "them")
    assert said == [
        f"Fixed effects: {count} of 240 units {have} Pareto k > 0.7: PSIS-LOO is unreliable for {them}"
        " (influential units, often in small groups or groups whose y barely varies); its elpd and rank are"
        " approximate."
    ]
    assert all(issubclass(w.category, DiagnosticWarning) for w in caught if "Pareto" in str(w.message))
    assert not [w for w in caught if "Estimated shape parameter" in str(w.message)]  # no raw ArviZ-style line
