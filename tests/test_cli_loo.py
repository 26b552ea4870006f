"""``--loo`` as a user meets it: a subsample from the command line reaches every LOO output, one model or
two, and a bad value is refused before any compute."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import groupfx
from groupfx.loo.subsample import COMPARE_COLUMNS
from groupfx.results.fits import SINGLE_COMPARE_COLUMNS

TINY = ["--draws", "80", "--tune", "80", "--chains", "2"]
COLUMNS = ["--y", "y", "--x", "x", "--group", "group", "--z", "z"]
SUBSAMPLE = 150


def run_fit(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "groupfx.cli", "fit", *args], capture_output=True, text=True, timeout=900
    )


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("table") / "pupils.csv"
    groupfx.simulate(n_groups=12, n_units=600, seed=4).to_frame().to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("some", "--loo: expected auto, exact or a number of units to subsample, got 'some'"),
        ("1", "--loo: a subsample needs at least 2 units, got 1"),
    ],
)
def test_a_bad_loo_is_refused_in_one_line(table, tmp_path, value, message):
    out = tmp_path / "out"
    result = run_fit(str(table), *COLUMNS, "--out", str(out), "--loo", value)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].endswith(message)
    assert "Traceback" not in result.stderr and not out.exists()


def fit_on_a_subsample(table: Path, out: Path, models: str) -> pd.DataFrame:
    """``groupfx fit --loo SUBSAMPLE`` of ``models`` into ``out``; its ``loo.csv``."""
    result = run_fit(
        str(table), *COLUMNS, *TINY, "--out", str(out), "--models", models, "--loo", str(SUBSAMPLE)
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return pd.read_csv(out / "loo.csv", index_col="model")


@pytest.mark.slow  # two real fits and a report
def test_a_subsample_reaches_the_comparison_and_the_report(table, tmp_path):
    out = tmp_path / "two"
    loo = fit_on_a_subsample(table, out, "naive,mundlak")
    assert list(loo.columns) == COMPARE_COLUMNS
    assert set(loo["subsample"]) == {SUBSAMPLE}
    assert (loo["subsample_se"] > 0).all() and loo["subsample_dse"].iloc[1] > 0
    assert loo["weight"].sum() == pytest.approx(1)
    page = (out / "report.html").read_text()
    assert "PSIS smoothed a random subsample exactly" in page
    said = re.findall(r"(Naive|Mundlak) 150 \(subsampling SE ([0-9.]+)\)", page)
    assert {label for label, _ in said} == {"Naive", "Mundlak"}
    assert (out / "figures" / "loo_compare.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow  # a real fit and a report
def test_one_model_on_a_subsample_writes_its_row(table, tmp_path):
    out = tmp_path / "one"
    loo = fit_on_a_subsample(table, out, "naive")
    assert list(loo.columns) == [*SINGLE_COMPARE_COLUMNS, "subsample_se", "subsample"]
    assert loo.loc["Naive", "subsample"] == SUBSAMPLE and loo.loc["Naive", "subsample_se"] > 0
    assert "PSIS smoothed a random subsample exactly" in (out / "report.html").read_text()
