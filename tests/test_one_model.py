"""One model is a normal case: the command line, compare and write_report with a single fit.

With one model there is nothing to compare: no LOO comparison table, figure or ranking, one sentence saying
so with the model's elpd_loo, a one-row ``loo.csv``, and every other part of the report as usual.
"""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from dataclasses import replace

import arviz as az
import numpy as np
import pandas as pd
import pytest

import groupfx
from groupfx.report.html import conclusions, loo_notes
from groupfx.report.summary import summary_table
from groupfx.results.fits import SINGLE_COMPARE_COLUMNS, mundlak_effects

TINY_CLI = ["--draws", "60", "--tune", "60", "--chains", "2"]
SECTIONS = (
    "Conclusion",
    "The data",
    "The models",
    "The effects at a glance",
    "Effects on the outcome scale",
    "Predictive checks",
    "Within, contextual and between effects",
    "Frequentist cross-check",
    "Predictive accuracy by PSIS-LOO",
    "Diagnostics and settings",
)
ONLY_ONE = "PSIS-LOO ranks models against each other and only Mundlak was fitted, so there is nothing to rank"


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "groupfx.cli", *args], capture_output=True, text=True, timeout=600
    )


def headings(page: str) -> list[str]:
    return re.findall(r"<h2>([^<]+)</h2>", page)


def check_one_model_folder(out, n_units: int, stderr: str, simulated: bool) -> str:
    """Read back every file of a one-model (Mundlak) output folder; return the report's HTML."""
    page = re.sub(r"data:image/png;base64,[^\"]*", "data:", (out / "report.html").read_text())
    found = headings(page)
    for section in SECTIONS:
        assert section in found, (section, found)
    assert ("The causal graph" in found) == simulated
    # nothing to compare: no comparison heading, table, figure or ranking
    assert "Model comparison by PSIS-LOO" not in page and "The models side by side" not in page
    assert "dse" not in page and 'alt="LOO comparison"' not in page
    assert "ranks the models (best first)" not in page
    assert ONLY_ONE in page
    loo = pd.read_csv(out / "loo.csv", index_col="model")
    assert list(loo.index) == ["Mundlak"] and list(loo.columns) == list(SINGLE_COMPARE_COLUMNS)
    assert loo.loc["Mundlak", "rank"] == 0 and loo.loc["Mundlak", "weight"] == 1
    assert np.isfinite(loo.loc["Mundlak", "elpd_loo"]) and loo.loc["Mundlak", "se"] > 0
    assert f"its elpd_loo is {loo.loc['Mundlak', 'elpd_loo']:.1f}" in page
    figures = {p.name for p in (out / "figures").iterdir()}
    assert {"model_grid.png", "forest.png", "posterior_mundlak.png", "ppc_groups.png", "calibration.png",
            "prior_predictive.png", "effects_average.png", "effects_groups.png"} <= figures  # fmt: skip
    assert "loo_compare.png" not in figures
    for png in (out / "figures").glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    estimates = pd.read_csv(out / "estimates.csv")
    assert set(estimates.model) == {"Mundlak"} and {"bxy", "buy", "bzy"} <= set(estimates.parameter)
    assert ("truth" in estimates.columns) == simulated
    fits = pd.read_csv(out / "fits.csv")
    assert list(fits.model) == ["Mundlak"]
    assert fits.elpd_loo.item() == pytest.approx(loo.loc["Mundlak", "elpd_loo"])
    effects = pd.read_csv(out / "effects.csv")
    assert set(effects.model) == {"Mundlak"} and (effects.group == "average").sum() == 1
    crosscheck = pd.read_csv(out / "crosscheck.csv")
    assert list(crosscheck.term) == ["x"] and np.isfinite(crosscheck.estimate).all()
    decomposition = pd.read_csv(out / "mundlak_effects.csv")
    assert list(decomposition.effect) == ["within", "contextual", "between"]
    assert len(pd.read_csv(out / "data.csv")) == n_units
    idata = az.from_netcdf(out / "idata" / "mundlak.nc")
    assert {"posterior", "sample_stats"} <= set(idata.groups())
    assert idata.posterior.sizes["chain"] == 2 and idata.posterior.sizes["draw"] == 60
    assert sorted(p.name for p in (out / "idata").iterdir()) == ["mundlak.nc"]
    # the terminal summary: no LOO-rank column, the elpd_loo in one line
    assert "rank by PSIS-LOO" not in stderr and "Traceback" not in stderr
    assert "PSIS-LOO of Mundlak: elpd_loo" in stderr and "one model, so nothing to rank" in stderr
    return page


@pytest.fixture(scope="module")
def user_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("one-model") / "table.csv"
    groupfx.simulate(n_groups=6, n_units=240, seed=8).to_frame().drop(columns="ug").to_csv(path, index=False)
    return path


@pytest.mark.slow
def test_fit_with_one_model_writes_the_whole_report(user_csv, tmp_path):
    out = tmp_path / "fit"
    columns = ["--y", "y", "--x", "x", "--group", "group", "--z", "z"]
    result = run_cli("fit", str(user_csv), *columns, "--models", "mundlak", "--out", str(out), *TINY_CLI)
    assert result.returncode == 0, result.stderr[-3000:]
    check_one_model_folder(out, 240, result.stderr, simulated=False)


@pytest.mark.slow
def test_demo_with_one_model_writes_the_whole_report(tmp_path):
    out = tmp_path / "demo"
    args = ["--units", "240", "--groups", "6", *TINY_CLI]
    result = run_cli("demo", "--models", "mundlak", "--out", str(out), *args)
    assert result.returncode == 0, result.stderr[-3000:]
    page = check_one_model_folder(out, 240, result.stderr, simulated=True)
    assert "One strategy estimates it, the Mundlak device" in page and "Five strategies" not in page
    assert "Group intercepts against the truth" not in headings(page)  # drawn for fixed and multilevel only
    assert "truth: bxy = 0" in result.stderr


@pytest.fixture(scope="module")
def one_fit(small_fits):
    return small_fits["mundlak"]


def test_compare_of_one_fit_is_one_row(one_fit):
    for given in (one_fit, [one_fit], {"mundlak": one_fit}):
        table = groupfx.compare(given)
        assert list(table.index) == ["Mundlak"] and table.index.name == "model"
        assert list(table.columns) == list(SINGLE_COMPARE_COLUMNS)
        row = table.loc["Mundlak"]
        assert row["rank"] == 0 and row["weight"] == 1.0
        assert row["elpd_loo"] == pytest.approx(one_fit.loo.elpd_loo)
        assert row["p_loo"] == pytest.approx(one_fit.loo.p_loo)
        assert row["se"] == pytest.approx(one_fit.loo.se)
    # the one-row table agrees with ArviZ's on what it keeps
    reference = az.compare({"Mundlak": one_fit.loo}, ic="loo")
    for column in ("elpd_loo", "p_loo", "se"):
        assert table.loc["Mundlak", column] == pytest.approx(reference.loc["Mundlak", column])


@pytest.mark.parametrize("empty", [[], {}, groupfx.Fits(), ()])
def test_no_fit_is_a_clear_input_error_everywhere(empty, tmp_path):
    from groupfx.report import plots

    calls = {
        "compare": lambda: groupfx.compare(empty),
        "estimates": lambda: groupfx.estimates(empty),
        "mundlak_effects": lambda: mundlak_effects(empty),
        "write_report": lambda: groupfx.write_report(empty, tmp_path / "out"),
        "plot_model_grid": lambda: plots.plot_model_grid(empty),
        "plot_forests": lambda: plots.plot_forests(empty),
        "plot_loo_compare": lambda: plots.plot_loo_compare(empty),
    }
    for name, call in calls.items():
        with pytest.raises(groupfx.InputError, match=rf"^{name} needs at least one fit \(got none\)"):
            call()
    assert list(tmp_path.iterdir()) == []


def test_fit_all_with_no_model_is_refused(small_sim):
    with pytest.raises(groupfx.InputError, match="models is empty; name at least one of naive"):
        groupfx.fit_all(small_sim, [])


def test_conclusions_and_summary_with_one_model(one_fit, small_sim):
    from rich.console import Console

    table = groupfx.estimates([one_fit], small_sim.truth)
    comparison = groupfx.compare(one_fit)
    lines = conclusions([one_fit], table, comparison, small_sim.truth)
    assert not any("ranks the models" in line for line in lines)
    assert (
        f"{ONLY_ONE}: its elpd_loo is {one_fit.loo.elpd_loo:.1f} (se {one_fit.loo.se:.1f},"
        f" p_loo {one_fit.loo.p_loo:.1f})." in lines
    )
    verdict = lines[-1]
    if one_fit.issues:
        assert verdict == "The sampler diagnostics of Mundlak need attention (see the model's section)."
    else:
        assert verdict.startswith("Mundlak passed the sampler diagnostics")
    console = Console(width=160, record=True)
    console.print(summary_table({"mundlak": one_fit}, table, comparison, small_sim.truth))
    text = console.export_text()
    assert "Mundlak" in text and "diagnostics" in text
    assert "LOO" not in text


def test_summary_keeps_the_rank_column_with_several_models(small_fits):
    from rich.console import Console

    console = Console(width=160, record=True)
    console.print(summary_table(small_fits, groupfx.estimates(small_fits), groupfx.compare(small_fits)))
    text = console.export_text()
    assert "LOO" in text and "rank by PSIS-LOO (1 = best)" in text


def test_write_report_with_one_fit_shows_its_loo_and_pareto_note(one_fit, small_sim, tmp_path):
    loo = copy.deepcopy(one_fit.loo)
    k = loo.pareto_k.copy()
    k[:] = np.minimum(k, 0.5)  # whatever the tiny draws gave,
    k[:3] = 0.9  # three observations whose PSIS-LOO is unreliable
    loo["pareto_k"] = k
    fit = replace(one_fit, loo=loo)
    (note,) = loo_notes([fit])
    assert note.startswith("Mundlak: 3 of 200 observations have Pareto k > 0.7") and "read it with" in note
    report = groupfx.write_report(fit, tmp_path / "out", simulated=small_sim)
    out = report.parent
    page = report.read_text()
    assert "Model comparison by PSIS-LOO" not in headings(page) and "Predictive accuracy by PSIS-LOO" in page
    assert "Mundlak: 3 of 200 observations have Pareto k &gt; 0.7" in page
    assert ONLY_ONE in page and "<h3>Mundlak</h3>" in page
    loo_csv = pd.read_csv(out / "loo.csv", index_col="model")
    assert list(loo_csv.index) == ["Mundlak"] and loo_csv.loc["Mundlak", "rank"] == 0
    assert not (out / "figures" / "loo_compare.png").exists()
    assert (out / "figures" / "model_grid.png").exists() and (out / "idata" / "mundlak.nc").exists()
