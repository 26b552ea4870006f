"""The folder of ``groupfx study``: resume only a study, say what differs, leave nothing after a failed start.

Every run here is a real ``groupfx study`` subprocess with one tiny scenario.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import groupfx
from groupfx.errors import InputError
from groupfx.study.run import run_study
from groupfx.study.scenarios import Scenario
from groupfx.study.tasks import StudySettings
from groupfx.util.files import MARKER, claim_output_folder, write_marker

from ..user_runs import assert_refused, snapshot, user_env

GRID = '[[scenario]]\nname = "tiny"\nn_groups = 6\nn_units = 120\n'
TINY = [
    "--replicates",
    "1",
    "--draws",
    "30",
    "--tune",
    "30",
    "--chains",
    "1",
    "--models",
    "naive",
    "--workers",
    "1",
]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full = user_env(env)
    return subprocess.run(
        [sys.executable, "-m", "groupfx.cli", "study", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=full,
    )


def study(
    out: Path, grid: Path, *extra: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """``groupfx study`` with the tiny settings; ``extra`` comes last, so its options win."""
    return run("--scenarios", str(grid), "--out", str(out), *TINY, *extra, env=env)


@pytest.fixture()
def grid(tmp_path) -> Path:
    path = tmp_path / "grid.toml"
    path.write_text(GRID)
    return path


@pytest.fixture(scope="module")
def finished_study(tmp_path_factory) -> Path:
    """A study folder written by a real ``groupfx study`` run: one replicate of one tiny scenario."""
    root = tmp_path_factory.mktemp("finished")
    (root / "grid.toml").write_text(GRID)
    out = root / "study"
    result = study(out, root / "grid.toml")
    assert result.returncode == 0, result.stderr[-3000:]
    marker = json.loads((out / MARKER).read_text())
    assert marker["kind"] == "study" and marker["groupfx"] == groupfx.__version__
    record = json.loads((out / "study.json").read_text())
    assert record["settings"]["draws"] == 30 and [s["name"] for s in record["scenarios"]] == ["tiny"]
    assert len(pd.read_csv(out / "results.csv")) == 2  # bxy and bzy of one naive fit
    assert sorted(path.name for path in root.iterdir()) == ["grid.toml", "study"]  # no lock file left
    return out


def test_resume_of_a_missing_folder_is_refused_and_makes_nothing(grid, tmp_path):
    before = snapshot(tmp_path)
    assert_refused(study(tmp_path / "nope", grid, "--resume"), f"There is no study in {tmp_path / 'nope'}")
    assert_refused(study(tmp_path / "a" / "b" / "nope", grid, "--resume"), "There is no study in")
    assert snapshot(tmp_path) == before  # neither the folder, nor its parents, nor a lock file


def test_resume_of_a_folder_that_is_not_a_study_is_refused_and_untouched(grid, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "data.csv").write_text("a,b\n1,2\n")
    empty = tmp_path / "empty"
    empty.mkdir()
    report = tmp_path / "report"
    report.mkdir()
    write_marker(report, "report")
    unmarked = tmp_path / "unmarked"  # a study.json alone does not make a groupfx study folder
    unmarked.mkdir()
    (unmarked / "study.json").write_text("{}")
    before = snapshot(tmp_path)
    assert_refused(
        study(mine, grid, "--resume"), f"The folder {mine} exists and is not a groupfx study folder"
    )
    assert_refused(study(empty, grid, "--resume"), f"{empty} is not a groupfx study", "drop --resume")
    assert_refused(
        study(report, grid, "--resume"), f"The folder {report} holds a groupfx report, not a study"
    )
    assert_refused(study(unmarked, grid, "--resume"), "is not a groupfx study folder")
    assert snapshot(tmp_path) == before


def test_a_new_study_is_refused_in_a_folder_that_holds_something_else(grid, finished_study, tmp_path):
    mine = tmp_path / "mine"
    (mine / "notes").mkdir(parents=True)
    (mine / "notes" / "todo.txt").write_text("write the paper")
    done = tmp_path / "done"
    shutil.copytree(finished_study, done)
    before = snapshot(tmp_path)
    assert_refused(study(mine, grid), f"The folder {mine} exists and is not a groupfx study folder")
    assert_refused(study(done, grid), f"{done} already holds a study; pass --resume")
    assert snapshot(tmp_path) == before


def test_resume_with_other_settings_names_each_difference_with_both_values(finished_study, tmp_path):
    done = tmp_path / "done"
    shutil.copytree(finished_study, done)
    other = tmp_path / "other.toml"
    other.write_text(GRID.replace("n_groups = 6", "n_groups = 7"))
    before = snapshot(tmp_path)
    line = assert_refused(
        study(done, other, "--resume", "--draws", "20", "--chains", "2", "--models", "naive,fixed"),
        f"{done} holds a study with other settings",
        "models: naive in the study, naive,fixed now",
        "draws: 30 in the study, 20 now",
        "chains: 1 in the study, 2 now",
        "scenario tiny n_groups: 6 in the study, 7 now",
    )
    assert "tune" not in line and "seed" not in line  # only what differs is named
    assert snapshot(tmp_path) == before


def test_resume_with_the_same_settings_adds_replicates(grid, finished_study, tmp_path):
    done = tmp_path / "done"
    shutil.copytree(finished_study, done)
    result = study(done, grid, "--resume", "--replicates", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "1 done, 0 remaining, 0 failed, 1 from before" in result.stderr
    results = pd.read_csv(done / "results.csv")
    assert sorted(set(results.replicate)) == [0, 1] and (results.status == "ok").all()
    first = pd.read_csv(finished_study / "results.csv")
    kept = results[results.replicate == 0].reset_index(drop=True)
    pd.testing.assert_series_equal(kept["mean"], first["mean"])  # the earlier fit is read, not redone
    assert json.loads((done / MARKER).read_text())["kind"] == "study"
    assert not (tmp_path / ".done.groupfx-lock").exists()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_scheduler_leaves_nothing_behind(grid, tmp_path):
    address = f"tcp://127.0.0.1:{_free_port()}"
    before = snapshot(tmp_path)
    quick = {"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "1s"}  # Dask's own connect timeout setting
    result = study(tmp_path / "new", grid, "--scheduler", address, env=quick)
    assert_refused(result, f"Cannot reach a Dask scheduler at {address}", "drop --scheduler")
    assert snapshot(tmp_path) == before  # no study folder, no study.json, no lock file
    with pytest.raises(InputError, match="Cannot reach a Dask scheduler"):
        run_study([Scenario("tiny", n_groups=6, n_units=120)], StudySettings(replicates=1, models=("naive",)),
                  tmp_path / "api", scheduler=address, connect_timeout=0.5)  # fmt: skip
    assert snapshot(tmp_path) == before


def test_a_study_folder_in_use_is_refused(grid, tmp_path):
    out = tmp_path / "busy"
    with claim_output_folder(out, "study"):
        before = snapshot(tmp_path)
        result = study(out, grid)
        assert_refused(
            result, f"The output folder {out} is in use by another groupfx run (process {os.getpid()})"
        )
        assert snapshot(tmp_path) == before
    assert list(tmp_path.iterdir()) == [grid]


def test_a_killed_reports_figures_are_removed_only_inside_a_study_folder(tmp_path):
    from groupfx.study.report import remove_stale_figures

    study_dir, other = tmp_path / "study", tmp_path / "other"
    for folder in (study_dir, other):
        (folder / ".figures.abc.tmp").mkdir(parents=True)
        (folder / ".figures.abc.tmp" / "bias_bxy.png").write_bytes(b"half")
    write_marker(study_dir, "study")
    assert remove_stale_figures(study_dir) == [study_dir / ".figures.abc.tmp"]
    assert not (study_dir / ".figures.abc.tmp").exists()
    assert remove_stale_figures(other) == [] and (other / ".figures.abc.tmp" / "bias_bxy.png").exists()
