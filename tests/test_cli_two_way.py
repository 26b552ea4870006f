"""`groupfx fit --time` and '| unit + year', run as a user runs them: a two-way report, and the refusals."""

from __future__ import annotations

import re
import subprocess
import sys

import pandas as pd
import pytest

from groupfx.data.datasets import load_dataset
from tests.user_runs import assert_refused, snapshot, user_env

TINY = ["--draws", "40", "--tune", "40", "--chains", "2"]


def run_cli(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "groupfx.cli", "fit", *args],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=cwd,
        env=user_env(),
    )


@pytest.fixture(scope="module")
def wages_csv(tmp_path_factory):
    """The first 60 men of the wage panel (8 years each), as a user's CSV."""
    frame = load_dataset("wage_panel")
    path = tmp_path_factory.mktemp("wages") / "wages.csv"
    frame[frame.nr.isin(sorted(frame.nr.unique())[:60])].to_csv(path, index=False)
    return path


def test_fit_with_a_period_writes_a_two_way_report(wages_csv, tmp_path):
    out = tmp_path / "two-way"
    result = run_cli(
        str(wages_csv),
        "--formula",
        "lwage ~ married + union + expersq | nr + year",
        "--family",
        "gaussian",
        "--models",
        "fixed,mundlak",
        "--out",
        str(out),
        *TINY,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    page = re.sub(r"data:image/png;base64,[^\"]*", "data:", (out / "report.html").read_text())
    assert "grouped by nr and year" in page
    assert "480 units in 60 groups and 8 periods (year, a balanced panel)" in page
    estimates = pd.read_csv(out / "estimates.csv")
    bxy = estimates[estimates.parameter == "bxy"]
    assert set(bxy.term) == {"married", "union", "expersq"} and set(bxy.model) == {"Fixed effects", "Mundlak"}
    data = pd.read_csv(out / "data.csv")
    assert sorted(data["year"].unique()) == list(range(1980, 1988))  # the period column kept, as labels


def test_time_flag_equals_the_formula_form(wages_csv, tmp_path):
    by_flag = tmp_path / "flag"
    result = run_cli(
        str(wages_csv),
        "--y",
        "lwage",
        "--x",
        "married",
        "--x",
        "union",
        "--group",
        "nr",
        "--time",
        "year",
        "--family",
        "gaussian",
        "--models",
        "multilevel",
        "--out",
        str(by_flag),
        *TINY,
        "--seed",
        "3",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    by_formula = tmp_path / "formula"
    result = run_cli(
        str(wages_csv),
        "--formula",
        "lwage ~ married + union | nr + year",
        "--family",
        "gaussian",
        "--models",
        "multilevel",
        "--out",
        str(by_formula),
        *TINY,
        "--seed",
        "3",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    first, second = (pd.read_csv(folder / "estimates.csv") for folder in (by_flag, by_formula))
    pd.testing.assert_frame_equal(first, second)  # same data, same seed: the same draws


@pytest.mark.parametrize(
    ("arguments", "fragments"),
    [
        (["--time", "decade"], ["Column 'decade' (period) is not in the table"]),
        (["--time", "year", "--models", "latent_shared"], ["one-way; on two-way data"]),
        (["--time", "year", "--x", "exper"], ["'exper' (unit-level variable) is the sum of a nr part"]),
        (["--time", "nr"], ["Column 'nr' is given two roles"]),
    ],
)
def test_period_problems_are_refused_before_anything_is_fitted(wages_csv, tmp_path, arguments, fragments):
    before = snapshot(tmp_path)
    result = run_cli(
        str(wages_csv),
        "--y",
        "lwage",
        "--x",
        "married",
        "--group",
        "nr",
        "--family",
        "gaussian",
        *arguments,
        "--out",
        str(tmp_path / "out"),
        *TINY,
        cwd=tmp_path,
    )
    assert_refused(result, *fragments)
    assert snapshot(tmp_path) == before  # nothing written
