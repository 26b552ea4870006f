"""The recovery study: scenarios, compile-once workers, reproducibility, failures, resume, Dask, summary."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from groupfx.errors import InputError
from groupfx.study import tasks as study
from groupfx.study.run import run_study
from groupfx.study.scenarios import DEFAULT_SCENARIOS, Scenario, load_scenarios, simulate_replicate
from groupfx.study.store import read_results
from groupfx.study.summary import summarise_study
from groupfx.study.tasks import StudySettings, Task, run_task

SMALL = Scenario("small", n_groups=8, n_units=200)
TINY = {"draws": 60, "tune": 60, "chains": 2}
IDENTITY = ["scenario", "replicate", "model", "parameter"]
NUMBERS = ["mean", "sd", "hdi_low", "hdi_high", "covers", "r_hat", "ess_bulk", "divergences", "elpd_loo"]


def test_scenarios_validate_and_load(tmp_path):
    with pytest.raises(InputError, match=r"n_units \(5\) must be at least n_groups"):
        Scenario("x", n_groups=10, n_units=5)
    with pytest.raises(InputError, match="sizes must be one of"):
        Scenario("x", sizes="lumpy")
    with pytest.raises(InputError, match="family must be"):
        Scenario("x", family="binomial")
    path = tmp_path / "grid.toml"
    path.write_text(
        '[[scenario]]\nname = "a"\nn_groups = 5\nn_units = 50\n\n[[scenario]]\nname = "b"\nux = 0.0\n'
    )
    a, b = load_scenarios(path)
    assert (a.n_groups, a.n_units, a.bxy) == (5, 50, 0.0) and b.ux == 0.0 and b.n_groups == 30
    path.write_text('[[scenario]]\nname = "a"\ngroupz = 5\n')
    with pytest.raises(InputError, match="unknown field 'groupz'"):
        load_scenarios(path)
    path.write_text('[[scenario]]\nname = "a"\n[[scenario]]\nname = "a"\n')
    with pytest.raises(InputError, match="used twice"):
        load_scenarios(path)
    assert [s.name for s in DEFAULT_SCENARIOS] == ["seed", "few-units", "few-groups", "no-confounding"]


def test_replicates_are_reproducible_independent_and_follow_the_graph():
    first, u = simulate_replicate(SMALL, 42, 3)
    again, u_again = simulate_replicate(SMALL, 42, 3)
    np.testing.assert_array_equal(first.x, again.x)
    np.testing.assert_array_equal(first.y, again.y)
    np.testing.assert_array_equal(u, u_again)
    other, _ = simulate_replicate(SMALL, 42, 4)
    assert not np.array_equal(first.x, other.x)
    equal, _ = simulate_replicate(Scenario("e", n_groups=7, n_units=50, sizes="equal"), 1, 0)
    assert set(equal.group_sizes) == {7, 8}
    big = Scenario("big", n_groups=400, n_units=40_000)
    data, u = simulate_replicate(big, 1, 0)
    assert data.group_sizes.min() >= 1 and data.n_groups == 400
    assert np.corrcoef(data.xbar[:, 0], u)[0, 1] > 0.9  # U drives x
    unconfounded, u = simulate_replicate(Scenario("nc", n_groups=400, n_units=40_000, ux=0.0), 1, 0)
    assert abs(np.corrcoef(unconfounded.xbar[:, 0], u)[0, 1]) < 0.15
    gaussian, u = simulate_replicate(Scenario("g", n_groups=50, n_units=20_000, family="gaussian", bxy=0.5,
                                              ux=0.0), 2, 0)  # fmt: skip
    slope = np.polyfit(gaussian.x[:, 0], gaussian.y - u[gaussian.group] - gaussian.z[gaussian.group, 0], 1)[0]
    assert abs(slope - 0.5) < 0.03


def test_summary_measures_bias_rmse_coverage_and_loo_wins():
    rows = []
    for replicate, (naive, mundlak) in enumerate([(0.6, 0.1), (0.7, -0.1), (0.5, 0.0), (0.8, 0.2)]):
        for model, mean, elpd in (
            ("naive", naive, -10.0),
            ("mundlak", mundlak, -9.0 + (replicate == 3) * -2),
        ):
            rows.append({"scenario": "s", "replicate": replicate, "model": model, "parameter": "bxy",
                         "truth": 0.0, "mean": mean, "sd": 0.1, "hdi_low": mean - 0.2, "hdi_high": mean + 0.2,
                         "covers": abs(mean) <= 0.2, "r_hat": 1.0, "ess_bulk": 500.0, "divergences": 0,
                         "elpd_loo": elpd, "sample_s": 1.0, "compile_s": 0.0, "task_s": 1.0, "status": "ok",
                         "reason": ""})  # fmt: skip
    rows.append(rows[-1] | {"replicate": 4, "status": "failed", "reason": "boom"})
    summary = summarise_study(pd.DataFrame(rows)).set_index("model")
    naive, mundlak = summary.loc["Naive"], summary.loc["Mundlak"]
    assert naive.bias == pytest.approx(0.65) and naive.rmse == pytest.approx(
        np.sqrt(np.mean([0.36, 0.49, 0.25, 0.64]))
    )
    assert naive.bias_se == pytest.approx(np.std([0.6, 0.7, 0.5, 0.8], ddof=1) / 2)
    assert naive.coverage == 0 and mundlak.coverage == 1 and mundlak.fits == 4 and mundlak.failed == 1
    assert mundlak.width == pytest.approx(0.4)
    assert mundlak.loo_win_rate == pytest.approx(0.75) and naive.loo_win_rate == pytest.approx(0.25)


def test_a_failing_fit_is_recorded_with_its_reason_and_the_study_goes_on(tmp_path, monkeypatch):
    real = study.simulate_replicate

    def flaky(scenario, seed, replicate):
        if replicate == 1:
            raise FloatingPointError("simulated failure")
        return real(scenario, seed, replicate)

    monkeypatch.setattr(study, "simulate_replicate", flaky)
    settings = StudySettings(replicates=2, models=("naive",), **TINY)
    results = run_study([SMALL], settings, tmp_path / "s", workers=1)
    assert list(results.status) == ["ok", "ok", "failed", "failed"]
    assert results.reason.iloc[2].startswith("FloatingPointError: simulated failure")
    assert summarise_study(results).failed.tolist() == [1, 1]


def test_each_model_is_compiled_once_per_process_and_swapping_data_changes_nothing(tmp_path):
    study._cache.clear()
    before = study.compile_count
    settings = StudySettings(replicates=3, models=("naive", "mundlak"), **TINY)
    results = run_study([SMALL], settings, tmp_path / "a", workers=1)
    assert study.compile_count - before == 2  # 6 fits, 2 compilations
    assert (results.status == "ok").all() and results["mean"].notna().all()
    study._cache.clear()  # compiled first on replicate 2's own data, not swapped in
    fresh = run_task(Task(SMALL, 2, "mundlak", settings))
    swapped = results[(results.replicate == 2) & (results.model == "mundlak")].reset_index(drop=True)
    pd.testing.assert_frame_equal(fresh[IDENTITY + NUMBERS], swapped[IDENTITY + NUMBERS])


@pytest.mark.slow
def test_results_are_bitwise_the_same_with_any_number_of_workers_and_on_dask(tmp_path):
    from distributed import LocalCluster

    settings = StudySettings(replicates=3, models=("naive", "mundlak"), **TINY)
    one = run_study([SMALL], settings, tmp_path / "one", workers=1)
    two = run_study([SMALL], settings, tmp_path / "two", workers=2)
    pd.testing.assert_frame_equal(one[IDENTITY + NUMBERS], two[IDENTITY + NUMBERS])
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        on_dask = run_study([SMALL], settings, tmp_path / "dask", scheduler=cluster.scheduler_address)
    pd.testing.assert_frame_equal(one[IDENTITY + NUMBERS], on_dask[IDENTITY + NUMBERS])


def _study_command(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "groupfx.cli", "study", "--replicates", "4", "--scenarios", str(out.parent /
            "grid.toml"), "--models", "naive,mundlak", "--draws", "60", "--tune", "60", "--workers", "1",
            "--out", str(out), *extra]  # fmt: skip


@pytest.mark.slow
def test_a_killed_study_resumes_to_the_same_summary(tmp_path):
    (tmp_path / "grid.toml").write_text('[[scenario]]\nname = "small"\nn_groups = 8\nn_units = 200\n')
    whole = subprocess.run(_study_command(tmp_path / "whole"), capture_output=True, text=True)
    assert whole.returncode == 0, whole.stderr[-2000:]
    killed = tmp_path / "killed"
    process = subprocess.Popen(_study_command(killed), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 300
    while len(list((killed / "results").glob("*/*.parquet"))) < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    finished = len(list((killed / "results").glob("*/*.parquet")))
    assert 3 <= finished < 8 and not (killed / "summary.csv").exists()
    refused = subprocess.run(_study_command(killed), capture_output=True, text=True)
    assert refused.returncode == 2 and "pass --resume" in refused.stderr
    resumed = subprocess.run(_study_command(killed, "--resume"), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"{finished} from before" in resumed.stderr
    summary = pd.read_csv(killed / "summary.csv").drop(columns=["sample_s"])  # timings differ run to run
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "whole" / "summary.csv").drop(columns=["sample_s"]), summary
    )
    assert len(read_results(killed)) == 16 and (tmp_path / "killed" / "report.html").exists()


@pytest.mark.slow
def test_on_the_seed_scenario_naive_misses_and_mundlak_recovers_bxy(tmp_path):
    settings = StudySettings(replicates=6, models=("naive", "mundlak"), draws=200, tune=200, chains=2)
    results = run_study([DEFAULT_SCENARIOS[0]], settings, tmp_path / "seed", workers=2)
    summary = summarise_study(results).set_index(["model", "parameter"])
    naive, mundlak = summary.loc[("Naive", "bxy")], summary.loc[("Mundlak", "bxy")]
    assert naive.coverage == 0 and naive.bias > 0.4  # x carries U: every interval misses bxy = 0
    assert abs(mundlak.bias) < 3 * mundlak.bias_se + 0.05 and mundlak.coverage >= 4 / 6
