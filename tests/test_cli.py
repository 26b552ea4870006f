"""The command line: bad arguments fail cleanly; a small demo writes every output."""

from __future__ import annotations

import re
import subprocess
import sys

import arviz as az
import numpy as np
import pandas as pd
import pytest

from groupfx import cli

SMALL = ["--units", "240", "--groups", "6", "--draws", "60", "--tune", "60", "--chains", "2"]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "groupfx.cli", *args], capture_output=True, text=True, timeout=600
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--units", "-5"], "--units: must be an integer >= 2, got -5"),
        (["--groups", "0"], "--groups: must be an integer >= 2, got 0"),
        (["--draws", "0"], "--draws: must be an integer >= 1, got 0"),
        (["--chains", "two"], "--chains: expected an integer, got 'two'"),
        (["--models", "naive,random"], "unknown model 'random'"),
        (["--mass-matrix", "dense"], "--mass-matrix: invalid choice: 'dense'"),
        (["--backend", "cuda"], "--backend: invalid choice: 'cuda'"),
        (["--target-accept", "1"], "--target-accept: must lie strictly between 0 and 1, got 1"),
        (["--target-accept", "high"], "--target-accept: expected a number, got 'high'"),
    ],
)
def test_bad_arguments_exit_with_one_clear_line_and_write_nothing(tmp_path, args, message):
    out = tmp_path / "out"
    result = run_cli("demo", "--out", str(out), *args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
    assert "Traceback" not in result.stderr
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "report"
    result = run_cli("demo", "--out", str(out), *SMALL)
    assert result.returncode == 0, result.stderr[-3000:]
    return out, result


@pytest.mark.slow  # the demo fits all five models
def test_demo_writes_every_output(small_demo):
    out, result = small_demo
    models = ["naive", "fixed", "multilevel", "mundlak", "latent"]
    figures = {p.name for p in (out / "figures").iterdir()}
    expected = {"group_counts.png", "x_by_group.png", "y_by_x.png", "causal_dag.png", "model_grid.png",
                "forest.png", "loo_compare.png", *(f"posterior_{m}.png" for m in models),
                "effects_average.png", "effects_groups.png", "group_intercepts.png", "ppc_groups.png",
                "calibration.png", "prior_predictive.png"}  # fmt: skip
    assert expected <= figures
    graph_suffix = {".png", ".dot"}  # drawn without Graphviz, with the DOT source beside
    for name in ["causal", *models]:
        assert all(f"graph_{name}{suffix}" in figures for suffix in graph_suffix)
    for png in (out / "figures").glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = pd.read_csv(out / "estimates.csv")
    assert {"model", "parameter", "mean", "sd", "hdi_low", "hdi_high", "truth", "covers_truth", "r_hat",
            "ess_bulk", "ess_tail"} <= set(table.columns)  # fmt: skip
    assert set(table.model) == {"Naive", "Fixed effects", "Multilevel", "Mundlak", "Latent Mundlak"}
    effects = pd.read_csv(out / "effects.csv")
    averages = effects[effects.group == "average"]
    assert len(averages) == 5 and (averages.truth == 0).all() and (averages.delta == 1).all()
    loo = pd.read_csv(out / "loo.csv", index_col=0)
    assert sorted(loo["rank"]) == [0, 1, 2, 3, 4]
    data = pd.read_csv(out / "data.csv")
    assert list(data.columns) == ["group", "x", "y", "z", "ug"] and len(data) == 240
    for model in models:
        idata = az.from_netcdf(out / "idata" / f"{model}.nc")
        assert {"posterior", "sample_stats"} <= set(idata.groups())
        assert all(240 not in v.shape for v in idata.posterior.data_vars.values())
    # the terminal summary
    assert "rank by PSIS-LOO" in result.stderr and "Latent Mundlak" in result.stderr
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]


@pytest.mark.slow
def test_report_is_self_contained_and_tells_the_story(small_demo):
    out, _ = small_demo
    page = (out / "report.html").read_text()
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert len(sources) >= 12  # data, causal graph, 5 posteriors, grid, forests, LOO (+ graphs with dot)
    assert all(src.startswith("data:image/png;base64,") for src in sources)
    assert not re.search(r'(src|href)="https?://', page)
    for heading in (
        "The data",
        "The causal graph",
        "The models",
        "Model comparison by PSIS-LOO",
        "Conclusion",
        "Effects on the outcome scale",
        "Group intercepts against the truth",
        "Predictive checks",
        "Frequentist cross-check",
    ):
        assert heading in page
    assert (
        "With bxy = 0 every true contrast is 0; the average contrast&#39;s interval excludes 0 under:" in page
    )
    assert "bzy is not identified by the data under this model" in page
    for label in ("Naive", "Fixed effects", "Multilevel", "Mundlak", "Latent Mundlak"):
        assert f"<h3>{label}</h3>" in page


def test_failure_midway_leaves_no_output_folder(tmp_path, monkeypatch, capsys):
    from groupfx.report import outputs

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(outputs.plots, "plot_forests", broken)
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="disk full"):
        cli.main(["demo", "--out", str(out), "--models", "naive,fixed", *SMALL])
    assert list(tmp_path.iterdir()) == []


def test_existing_report_folder_is_kept_until_the_new_one_is_complete(tmp_path, monkeypatch):
    from groupfx.report import outputs
    from groupfx.util.files import MARKER, write_marker

    out = tmp_path / "out"
    out.mkdir()
    write_marker(out, "report")  # a report folder of an earlier run: only such a folder may be replaced
    (out / "old.txt").write_text("previous run")
    monkeypatch.setattr(outputs.plots, "plot_forests", lambda *a, **k: (_ for _ in ()).throw(OSError("x")))
    with pytest.raises(OSError):
        cli.main(["demo", "--out", str(out), "--models", "naive,fixed", *SMALL])
    assert (out / "old.txt").read_text() == "previous run" and (out / MARKER).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary folder, no lock file


def test_version_and_help():
    result = run_cli("--version")
    assert result.returncode == 0 and re.match(r"\d+\.\d+", result.stdout)
    assert cli.main([]) == 2


@pytest.fixture(scope="module")
def user_csv(tmp_path_factory):
    import groupfx

    frame = groupfx.simulate(n_groups=6, n_units=240, seed=8).to_frame()
    frame = frame.rename(columns={"y": "passed", "x": "hours", "group": "school", "z": "funding"})
    frame["school"] = "school-" + frame["school"].astype(str)
    frame["attendance"] = np.random.default_rng(3).uniform(0.5, 1.0, size=len(frame))
    path = tmp_path_factory.mktemp("user") / "pupils.csv"
    frame.drop(columns="ug").to_csv(path, index=False)
    return path


FIT_COLUMNS = ["--y", "passed", "--x", "hours", "--group", "school", "--z", "funding"]


def test_fit_on_a_csv_writes_the_report_with_group_labels(user_csv, tmp_path):
    out = tmp_path / "fit"
    result = run_cli(
        "fit", str(user_csv), *FIT_COLUMNS, "--models", "naive,mundlak", "--out", str(out), *SMALL[4:]
    )
    assert result.returncode == 0, result.stderr[-3000:]
    table = pd.read_csv(out / "estimates.csv")
    assert set(table.model) == {"Naive", "Mundlak"} and not {"truth", "covers_truth"} & set(table.columns)
    data = pd.read_csv(out / "data.csv")
    assert list(data.columns) == ["school", "hours", "passed", "funding"]
    assert data.school.str.startswith("school-").all()
    page = (out / "report.html").read_text()
    assert "the effect of hours on passed, grouped by school" in page
    assert "Effects on the outcome scale" in page and "Predictive checks" in page
    contrasts = pd.read_csv(out / "effects.csv")
    assert set(contrasts.group) == {*data.school, "average"} and contrasts.truth.isna().all()
    effects = pd.read_csv(out / "mundlak_effects.csv")
    assert list(effects.effect) == ["within", "contextual", "between"] and set(effects.model) == {"Mundlak"}
    assert "Within, contextual and between effects" in page
    assert "<h3>Mundlak</h3>" in page and "rank by PSIS-LOO" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--y", "grade"], "Column 'grade' (outcome) is not in the table"),
        (["--y", "attendance"], "Column 'attendance' (outcome) must be 0 or 1"),
        (["--z", "attendance"], "Column 'attendance' (group-level covariate) varies within group"),
        (["--z", "hours"], "Column 'hours' is given two roles"),
    ],
)
def test_fit_refuses_bad_data_in_one_line_and_writes_nothing(user_csv, tmp_path, args, message):
    columns = dict(zip(FIT_COLUMNS[::2], FIT_COLUMNS[1::2], strict=True))
    columns.update(dict(zip(args[::2], args[1::2], strict=True)))
    out = tmp_path / "fit"
    result = run_cli("fit", str(user_csv), *[v for kv in columns.items() for v in kv], "--out", str(out))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and message in result.stderr, result.stderr
    assert not out.exists()


@pytest.mark.slow
def test_fit_with_the_poisson_family(tmp_path):
    rng = np.random.default_rng(2)
    group = np.repeat(np.arange(8), 20)
    u = rng.normal(0, 0.5, 8)
    x = u[group] + rng.normal(size=group.size)
    frame = pd.DataFrame({"clinic": group, "x": x, "visits": rng.poisson(np.exp(0.3 * x + u[group])),
                          "z": np.repeat(rng.normal(size=8), 20)})  # fmt: skip
    path = tmp_path / "visits.parquet"
    frame.to_parquet(path)
    out = tmp_path / "fit"
    args = ["--y", "visits", "--x", "x", "--group", "clinic", "--z", "z", "--family", "poisson"]
    result = run_cli("fit", str(path), *args, "--models", "naive,fixed", "--out", str(out), *SMALL[4:])
    assert result.returncode == 0, result.stderr[-3000:]
    page = (out / "report.html").read_text()
    assert "Poisson likelihood on y with a log link" in page
    assert set(pd.read_csv(out / "estimates.csv").model) == {"Naive", "Fixed effects"}
    bad = run_cli("fit", str(path), *args[:-1], "bernoulli", "--out", str(tmp_path / "no"))
    assert bad.returncode == 2 and "must be 0 or 1" in bad.stderr and not (tmp_path / "no").exists()


def test_dataset_lists_writes_and_never_replaces_a_file(tmp_path):
    listing = run_cli("dataset")
    assert listing.returncode == 0 and listing.stdout.startswith("wage_panel")
    path = tmp_path / "wages.csv"
    written = run_cli("dataset", "wage_panel", "--out", str(path))
    assert written.returncode == 0 and f"Wrote {path}" in written.stdout
    frame = pd.read_csv(path)
    assert frame.shape == (4360, frame.shape[1]) and {"nr", "year", "lwage", "union"} <= set(frame.columns)
    mine = tmp_path / "mine.csv"
    mine.write_text("my own table\n")
    again = run_cli("dataset", "wage_panel", "--out", str(mine))
    assert again.returncode == 2 and again.stderr.count("\n") == 1 and "already exists" in again.stderr
    assert mine.read_text() == "my own table\n"
    unknown = run_cli("dataset", "wages", "--out", str(tmp_path / "w.csv"))
    assert unknown.returncode == 2 and "Unknown data set 'wages'" in unknown.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.csv", "wages.csv"]
