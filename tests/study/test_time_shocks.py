"""The study's period confounder: scenarios with periods, one-way and two-way fits of each replicate, their
results, summary, report and record."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from groupfx.data.grouped import two_way_residual
from groupfx.errors import InputError
from groupfx.study import tasks as study
from groupfx.study.report import write_study_report
from groupfx.study.run import run_study
from groupfx.study.scenarios import (
    TIME_SHOCKS,
    Scenario,
    load_scenarios,
    replicate_shocks,
    simulate_replicate,
)
from groupfx.study.store import existing_results, read_results, start_study
from groupfx.study.summary import summarise_study
from groupfx.study.tasks import StudySettings, Task, make_tasks, run_task

from ..user_runs import assert_refused, user_env

# Gaussian: its two-way graph compiles quickest (the fused kernels do not serve two-way data yet)
SHOCKED = Scenario("shocked", n_groups=6, n_units=120, n_periods=4, time_sd=1.0, family="gaussian")
TINY = {"draws": 60, "tune": 60, "chains": 2}
IDENTITY = ["scenario", "replicate", "model", "two_way", "parameter"]
NUMBERS = ["mean", "sd", "hdi_low", "hdi_high", "covers", "r_hat", "ess_bulk", "divergences", "elpd_loo"]


def test_scenarios_take_periods_from_python_and_toml_and_refuse_bad_ones(tmp_path):
    assert not Scenario("a").two_way and TIME_SHOCKS.two_way and TIME_SHOCKS.n_periods == 10
    assert {"n_periods", "time_sd", "bvx", "bvy"} <= set(TIME_SHOCKS.to_dict())
    for fields, message in (
        ({"n_periods": 1}, "n_periods must be 0"),
        ({"n_periods": 2.0}, "n_periods must be an integer"),
        ({"time_sd": 1.0}, "give n_periods >= 2"),
        ({"n_periods": 3, "time_sd": -1.0}, "time_sd must be >= 0"),
        ({"n_periods": 3, "bvy": float("nan")}, "bvy must be a finite number"),
    ):
        with pytest.raises(InputError, match=message):
            Scenario("bad", **fields)
    with pytest.raises(InputError, match="from 2 to n_units"):
        Scenario("bad", n_groups=2, n_units=3, n_periods=4)
    path = tmp_path / "grid.toml"
    path.write_text('[[scenario]]\nname = "p"\nn_periods = 5\ntime_sd = 0.5\nbvx = -1.0\nbvy = 2.0\n')
    (loaded,) = load_scenarios(path)
    assert (loaded.n_periods, loaded.time_sd, loaded.bvx, loaded.bvy) == (5, 0.5, -1.0, 2.0)


def test_a_one_way_replicate_is_unchanged_and_a_period_replicate_is_two_way():
    data, u = simulate_replicate(Scenario("small", n_groups=8, n_units=200), 42, 3)
    assert not data.two_way
    np.testing.assert_allclose(data.x[:3, 0], [-2.895956, -2.044007, -3.410791], atol=1e-6)
    np.testing.assert_allclose(u[:2], [-2.719989, -0.988784], atol=1e-6)
    data, u = simulate_replicate(SHOCKED, 42, 3)
    assert data.two_way and data.n_times == 4 and data.names["time"] == "period"
    assert set(data.time_sizes) == {30}  # round robin over 120 units
    np.testing.assert_array_equal(replicate_shocks(SHOCKED, 42, 3), replicate_shocks(SHOCKED, 42, 3))
    assert not np.array_equal(replicate_shocks(SHOCKED, 42, 3), replicate_shocks(SHOCKED, 42, 4))


def test_the_shock_drives_x_and_y_so_only_the_two_way_within_estimator_recovers_bxy():
    scenario = Scenario("g", n_groups=40, n_units=20_000, n_periods=8, time_sd=1.5, bvx=1.0, bvy=-1.0,
                        family="gaussian", bxy=0.5)  # fmt: skip
    data, u = simulate_replicate(scenario, 5, 0)
    v = replicate_shocks(scenario, 5, 0)[data.time]
    # x = U + bvx V + noise, y = a0 + bxy x + U + bzy z + bvy V + noise: the noise left is N(0, 1)
    x_noise = data.x[:, 0] - u[data.group] - v
    y_noise = data.y - (-2.0 + 0.5 * data.x[:, 0] + u[data.group] + data.z[data.group, 0] - v)
    for noise in (x_noise, y_noise):
        assert abs(noise.mean()) < 4 / np.sqrt(data.n_units) and abs(noise.std() - 1) < 0.03
    x, y = data.x[:, 0], data.y
    one_way = [w - np.bincount(data.group, w)[data.group] / data.group_sizes[data.group] for w in (x, y)]
    two_way = two_way_residual(np.column_stack([x, y]), data.group, data.time)
    slope_one = one_way[0] @ one_way[1] / (one_way[0] @ one_way[0])
    slope_two = two_way[:, 0] @ two_way[:, 1] / (two_way[:, 0] @ two_way[:, 0])
    se = 1 / np.sqrt(two_way[:, 0] @ two_way[:, 0])  # y's noise sd is 1
    assert abs(slope_two - 0.5) < 4 * se
    assert slope_one < 0.5 - 20 * se  # V raises x and lowers y: the one-way estimate is pulled down


def test_tasks_fit_each_model_one_way_and_two_way_where_it_has_period_terms():
    settings = StudySettings(replicates=1, models=("naive", "fixed", "latent_shared"), **TINY)
    keys = [task.key for task in make_tasks([Scenario("flat"), SHOCKED], settings)]
    assert keys == [
        "flat/0000-naive",
        "flat/0000-fixed",
        "flat/0000-latent_shared",
        "shocked/0000-naive",
        "shocked/0000-fixed",
        "shocked/0000-fixed-two-way",
        "shocked/0000-latent_shared",
    ]
    one, two = (Task(SHOCKED, 0, "fixed", settings, two_way) for two_way in (False, True))
    assert one.seed != two.seed
    with pytest.raises(InputError, match="needs a scenario with periods"):
        Task(Scenario("flat"), 0, "fixed", settings, two_way=True)
    with pytest.raises(InputError, match="period terms"):
        Task(SHOCKED, 0, "naive", settings, two_way=True)


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    out = tmp_path_factory.mktemp("time") / "study"
    settings = StudySettings(replicates=2, models=("naive", "fixed"), **TINY)
    before = study.compile_count
    results = run_study([SHOCKED], settings, out, workers=1)
    return out, settings, results, study.compile_count - before


def test_a_tiny_time_shock_study_stores_both_variants_and_summarises_them(tiny_study):
    out, settings, results, compiled = tiny_study
    assert compiled <= 3  # naive, fixed, fixed two-way (fewer if an earlier test compiled one)
    assert (results.status == "ok").all() and results["mean"].notna().all()
    fits = results.drop_duplicates(["replicate", "model", "two_way"])
    assert sorted(zip(fits.model, fits.two_way, strict=True)) == sorted(
        [("naive", False), ("fixed", False), ("fixed", True)] * 2
    )
    stored = sorted(path.name for path in (out / "results" / "shocked").iterdir())
    assert stored == [f"{r:04d}-{m}.parquet" for r in (0, 1) for m in ("fixed-two-way", "fixed", "naive")]
    pd.testing.assert_frame_equal(read_results(out), results)
    summary = summarise_study(results)
    bxy = summary[summary.parameter == "bxy"].set_index("model")
    assert list(bxy.index) == ["Fixed effects", "Fixed effects (two-way)", "Naive"]
    assert list(bxy.two_way) == [False, True, False] and (bxy.fits == 2).all()
    assert bxy.loo_win_rate.sum() == pytest.approx(1.0)
    report = write_study_report(results, [SHOCKED], settings, out)
    page = report.read_text()
    assert "Fixed effects (two-way)" in page and "4 periods, period shock V sd 1" in page
    assert "fitted to every replicate twice" in page


def test_a_study_record_names_changed_period_settings_and_old_records_resume(tmp_path):
    settings = StudySettings(replicates=1, models=("naive",), **TINY)
    out = tmp_path / "s"
    start_study(out, [SHOCKED], settings)
    moved = replace(SHOCKED, time_sd=2.0)
    with pytest.raises(InputError, match=r"scenario shocked time_sd: 1\.0 in the study, 2\.0 now"):
        existing_results(out, [moved], settings, resume=True)
    # a record written before scenarios had periods lacks their fields: they held their defaults then
    old = tmp_path / "old"
    flat = Scenario("flat", n_groups=6, n_units=120)
    start_study(old, [flat], settings)
    record = json.loads((old / "study.json").read_text())
    for item in record["scenarios"]:
        for name in ("n_periods", "time_sd", "bvx", "bvy"):
            del item[name]
    (old / "study.json").write_text(json.dumps(record))
    assert existing_results(old, [flat], settings, resume=True) == set()
    with pytest.raises(InputError, match="n_periods"):
        existing_results(old, [Scenario("flat", n_groups=6, n_units=120, n_periods=3)], settings, resume=True)


def test_results_written_before_two_way_fits_read_as_one_way(tmp_path):
    path = tmp_path / "results" / "s" / "0000-naive.parquet"
    path.parent.mkdir(parents=True)
    columns = [c for c in study.RESULT_COLUMNS if c != "two_way"]
    row = dict.fromkeys(columns) | {"scenario": "s", "replicate": 0, "model": "naive", "parameter": "bxy"}
    row |= {"truth": 0.0, "mean": 0.1, "hdi_low": -0.1, "hdi_high": 0.3, "covers": True, "elpd_loo": -9.0,
            "status": "ok"}  # fmt: skip
    pd.DataFrame([row])[columns].to_parquet(path)
    results = read_results(tmp_path)
    assert list(results.columns) == list(study.RESULT_COLUMNS) and results.two_way.tolist() == [False]
    assert summarise_study(results).model.tolist() == ["Naive"]


def test_the_study_command_refuses_a_second_time_shocks_scenario(tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text('[[scenario]]\nname = "time-shocks"\nn_groups = 6\nn_units = 120\n')
    result = subprocess.run(
        [sys.executable, "-m", "groupfx.cli", "study", "--scenarios", str(grid), "--time-shocks", "--out",
         str(tmp_path / "out")],
        capture_output=True, text=True, env=user_env(), timeout=300,
    )  # fmt: skip
    assert_refused(result, "already hold one named 'time-shocks'", "drop --time-shocks")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow  # a two-way model compiled twice, and a small study through the command line
def test_swapped_two_way_data_give_what_a_fresh_compile_gives_and_the_command_adds_the_scenario(
    tiny_study, tmp_path
):
    _, settings, results, _ = tiny_study
    study._cache.clear()
    fresh = run_task(Task(SHOCKED, 1, "fixed", settings, two_way=True))
    swapped = results[(results.replicate == 1) & results.two_way].reset_index(drop=True)
    pd.testing.assert_frame_equal(fresh[IDENTITY + NUMBERS], swapped[IDENTITY + NUMBERS])
    grid = tmp_path / "grid.toml"
    grid.write_text('[[scenario]]\nname = "flat"\nn_groups = 6\nn_units = 120\n')
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "groupfx.cli", "study", "--scenarios", str(grid), "--time-shocks",
         "--replicates", "1", "--models", "fixed", "--draws", "60", "--tune", "60", "--workers", "1",
         "--out", str(out)],
        capture_output=True, text=True, env=user_env(), timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    summary = pd.read_csv(out / "summary.csv")
    bxy = summary[summary.parameter == "bxy"]
    assert list(zip(bxy.scenario, bxy.model, strict=True)) == [
        ("flat", "Fixed effects"),
        ("time-shocks", "Fixed effects"),
        ("time-shocks", "Fixed effects (two-way)"),
    ]
    assert "Fixed effects (two-way)" in result.stderr
    record = json.loads((out / "study.json").read_text())
    assert [s["name"] for s in record["scenarios"]] == ["flat", "time-shocks"]


@pytest.mark.slow  # 2 x 12 fits of 600 units
def test_two_way_fixed_effects_recover_bxy_where_one_way_fixed_effects_are_biased(tmp_path):
    scenario = Scenario("gauss", n_groups=20, n_units=600, n_periods=5, time_sd=1.5, family="gaussian",
                        bxy=0.5, sizes="equal")  # fmt: skip
    settings = StudySettings(replicates=12, models=("fixed",), draws=300, tune=300, chains=2)
    results = run_study([scenario], settings, tmp_path / "s", workers=2)
    assert (results.status == "ok").all()
    bxy = summarise_study(results).query("parameter == 'bxy'").set_index("two_way")
    one, two = bxy.loc[False], bxy.loc[True]
    assert abs(two.bias) < 3.5 * two.bias_se, two
    assert one.bias > 5 * one.bias_se and one.bias > 0.2, one  # V raises x and y: pulled up
