"""``groupfx demo --time-shocks``: a period confounder in the simulated data, the models fitted two-way."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from groupfx.demo import DEMO_INTRO, TIME_SHOCKS, demo_intro
from groupfx.models.builders import DEFAULT_MODELS

from .user_runs import assert_refused, user_env

TINY = ["--units", "240", "--groups", "6", "--draws", "60", "--tune", "60", "--chains", "2"]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "groupfx.cli", *args],
        capture_output=True,
        text=True,
        env=user_env(),
        timeout=900,
    )


def test_the_intro_says_when_the_fits_are_two_way_and_is_the_seeds_otherwise():
    assert demo_intro(DEFAULT_MODELS) == DEMO_INTRO
    two_way = demo_intro(DEFAULT_MODELS, TIME_SHOCKS["n_periods"])
    assert "10 periods" in two_way and "period-level cause V" in two_way and "fitted two-way" in two_way
    assert two_way.endswith(DEMO_INTRO[DEMO_INTRO.index(" Five strategies") :])
    assert "fitted two-way" in demo_intro(["fixed"], 10) and "One strategy estimates it" in demo_intro(
        ["fixed"], 10
    )


def test_time_shocks_with_fewer_units_than_periods_are_refused_in_one_line(tmp_path):
    out = tmp_path / "out"
    result = run_cli("demo", "--time-shocks", "--units", "5", "--out", str(out))
    assert_refused(result, "n_periods must be 0 (one-way data) or from 2 to n_units (5)")
    assert not out.exists()
    assert "--time-shocks" in run_cli("demo", "--help").stdout


@pytest.mark.slow  # a two-way model compiled as a user's run does, and its report
def test_demo_with_time_shocks_simulates_a_period_confounder_and_fits_two_way(tmp_path):
    out = tmp_path / "report"
    result = run_cli("demo", "--time-shocks", "--models", "naive,fixed", "--out", str(out), *TINY)
    assert result.returncode == 0, result.stderr[-3000:]
    data = pd.read_csv(out / "data.csv")
    assert list(data.columns) == ["group", "period", "x", "y", "z", "ug", "vt"] and len(data) == 240
    assert sorted(data.period.unique()) == list(range(10))
    assert (data.groupby("period").vt.nunique() == 1).all() and data.vt.std() > 0
    page = (out / "report.html").read_text()
    assert "under group- and period-level confounding" in page
    assert "The units are also spread over 10 periods" in page and "fitted two-way" in page
    assert "Periods: 10, V ~ Normal(0, 1.5)" in page
    assert "vt" in (out / "figures" / "graph_causal.dot").read_text()
    table = pd.read_csv(out / "estimates.csv")
    assert set(table.model) == {"Naive", "Fixed effects"}
    assert "Fixed effects" in result.stderr and "Report:" in result.stderr
