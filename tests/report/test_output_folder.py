"""The output folder of ``groupfx fit`` and ``groupfx demo``: nothing of the user's is ever touched.

Every run here is a real ``groupfx`` subprocess. A refused run must exit 2 with one line, before any data
are read or fitted, and leave every file where it was, byte for byte.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest

import groupfx
from groupfx.demo import run_demo
from groupfx.errors import InputError
from groupfx.util.files import MARKER, claim_output_folder, write_marker

from ..user_runs import assert_refused, snapshot, user_env

DEMO = ["--units", "240", "--groups", "6", "--draws", "60", "--tune", "60", "--chains", "2"]
ONE_MODEL = ["--models", "naive"]  # the cheapest whole report
COLUMNS = ["--y", "y", "--x", "x", "--group", "group", "--z", "z"]


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "groupfx.cli", *args]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(command(*args), capture_output=True, text=True, timeout=600, env=user_env())


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> Path:
    """A user's CSV (the small simulated table)."""
    path = tmp_path_factory.mktemp("table") / "pupils.csv"
    groupfx.simulate(n_groups=6, n_units=240, seed=8).to_frame().drop(columns="ug").to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def finished_report(tmp_path_factory) -> Path:
    """A report folder written by a real ``groupfx demo`` run."""
    out = tmp_path_factory.mktemp("finished") / "report"
    result = run("demo", "--out", str(out), *DEMO, *ONE_MODEL)
    assert result.returncode == 0, result.stderr[-3000:]
    marker = json.loads((out / MARKER).read_text())
    assert (
        marker["kind"] == "report"
        and marker["target"] == "report"
        and marker["groupfx"] == groupfx.__version__
    )
    assert sorted(path.name for path in out.parent.iterdir()) == ["report"]  # no lock or temporary left
    return out


def test_the_inputs_own_folder_is_refused_and_the_input_untouched(table, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    shutil.copy(table, mine / "pupils.csv")
    (mine / "notes.txt").write_text("my notes")
    before = snapshot(tmp_path)
    result = run(
        "fit", str(mine / "pupils.csv"), *COLUMNS, "--models", "naive", "--out", str(mine), *DEMO[4:]
    )
    assert_refused(result, f"The output folder {mine} holds the input {mine / 'pupils.csv'}")
    assert snapshot(tmp_path) == before


def test_a_groupfx_report_holding_the_input_is_refused_too(table, tmp_path):
    """Fitting a report's own data.csv into that report would replace the file being read."""
    report = tmp_path / "report"
    (report / "figures").mkdir(parents=True)
    write_marker(report, "report")  # what makes a folder a groupfx report folder
    data = shutil.copy(table, report / "data.csv")
    priors = report / "figures" / "priors.toml"
    priors.write_text("not even TOML")  # never read: the output folder is refused first
    before = snapshot(tmp_path)
    assert_refused(run("fit", str(data), *COLUMNS, "--out", str(report)), f"holds the input {data}")
    assert snapshot(tmp_path) == before
    outside = shutil.copy(table, tmp_path / "data.csv")
    before = snapshot(tmp_path)
    result = run("fit", str(outside), *COLUMNS, "--priors", str(priors), "--out", str(report))
    assert_refused(result, f"holds the input {priors}")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("subcommand", ["fit", "demo"])
def test_a_regular_file_at_out_is_refused_and_untouched(table, tmp_path, subcommand):
    target = tmp_path / "results"
    target.write_text("a file of mine")
    before = snapshot(tmp_path)
    args = ["fit", str(table), *COLUMNS] if subcommand == "fit" else ["demo"]
    result = run(*args, "--out", str(target), "--models", "naive", *DEMO[4:])
    assert_refused(result, f"The output {target} exists and is not a folder")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("subcommand", ["fit", "demo"])
def test_a_folder_groupfx_did_not_make_is_refused_and_its_files_untouched(table, tmp_path, subcommand):
    target = tmp_path / "thesis"
    (target / "chapter1").mkdir(parents=True)
    (target / "chapter1" / "draft.md").write_text("# Chapter 1")
    (target / "report.html").write_text("<p>my own report</p>")
    before = snapshot(tmp_path)
    args = ["fit", str(table), *COLUMNS] if subcommand == "fit" else ["demo"]
    result = run(*args, "--out", str(target), "--models", "naive", *DEMO[4:])
    assert_refused(result, f"The folder {target} exists and is not a groupfx report folder", MARKER)
    assert snapshot(tmp_path) == before


def test_a_study_folder_is_not_a_report_folder(table, tmp_path):
    study = tmp_path / "study"
    study.mkdir()
    write_marker(study, "study")
    (study / "study.json").write_text("{}")
    before = snapshot(tmp_path)
    assert_refused(
        run("fit", str(table), *COLUMNS, "--out", str(study)), "holds a groupfx study, not a report"
    )
    assert snapshot(tmp_path) == before


def test_an_out_that_cannot_be_made_is_refused_before_the_data_are_read(tmp_path):
    """A regular file on the way to --out: no folder can be made there, not even by root.

    The table lacks the outcome column, so had the data been read first the error would name that column.
    """
    path = tmp_path / "bad.csv"
    pd.DataFrame({"x": [0.1, 0.2], "group": [1, 2]}).to_csv(path, index=False)
    blocker = tmp_path / "file.txt"
    blocker.write_text("in the way")
    before = snapshot(tmp_path)
    result = run("fit", str(path), *COLUMNS, "--out", str(blocker / "out"))
    assert_refused(result, f"The output folder {blocker / 'out'} cannot be made: {blocker} is a file")
    assert snapshot(tmp_path) == before
    result = run("demo", "--out", str(blocker / "deeper" / "out"), *DEMO)
    assert_refused(result, "cannot be made", f"{blocker} is a file")
    assert snapshot(tmp_path) == before


def _creating_a_file_fails(folder: Path) -> bool:
    try:
        fd, probe = tempfile.mkstemp(dir=folder)
    except OSError:
        return True
    os.close(fd)
    os.unlink(probe)
    return False


def test_a_parent_that_refuses_new_files_is_found_before_fitting(table, tmp_path):
    """A parent in which creating a file really fails: a read-only folder, or (for root) sysfs."""
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        parent = locked if _creating_a_file_fails(locked) else Path("/sys")  # root ignores the mode bits
        if not parent.is_dir() or not _creating_a_file_fails(parent):
            pytest.skip("no folder here refuses new files to this user")
        out = parent / f"groupfx-test-{os.getpid()}"
        assert not out.exists()
        result = run("fit", str(table), *COLUMNS, "--out", str(out), *DEMO[4:])
        assert_refused(
            result, f"The output folder {out} cannot be written: creating a file in {parent} failed"
        )
        assert not out.exists()
    finally:
        locked.chmod(0o755)
    assert list(locked.iterdir()) == []


def test_a_second_run_into_a_folder_in_use_is_refused(table, tmp_path):
    out = tmp_path / "busy"
    with claim_output_folder(out, "report"):
        lock = tmp_path / ".busy.groupfx-lock"
        assert lock.read_text().strip() == str(os.getpid())
        message = f"The output folder {out} is in use by another groupfx run (process {os.getpid()})"
        assert_refused(run("demo", "--out", str(out), *DEMO), message)
        assert_refused(run("fit", str(table), *COLUMNS, "--out", str(out)), message)
        assert not out.exists()
        with pytest.raises(InputError, match="is in use by another groupfx run"):  # another thread: refused
            _claim_in_a_thread(out)
    assert list(tmp_path.iterdir()) == []  # the lock file goes with the lock


def _claim_in_a_thread(out: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def claim() -> None:
        with claim_output_folder(out, "report"):
            pass

    with ThreadPoolExecutor(1) as pool:
        pool.submit(claim).result()


def test_the_api_refuses_the_same_folders_before_any_work(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("keep")
    with pytest.raises(InputError, match="is not a groupfx report folder"):
        run_demo(mine)  # refused before the seed study (2000 units, five models) is simulated
    assert (mine / "keep.txt").read_text() == "keep" and sorted(p.name for p in tmp_path.iterdir()) == [
        "mine"
    ]


def _stale_temporaries(parent: Path, name: str) -> list[Path]:
    return [
        path
        for path in parent.iterdir()
        if path.name.startswith(f".{name}.") and path.name.endswith(".tmp") and (path / MARKER).is_file()
    ]


@pytest.mark.slow  # two tiny demos and a killed one
def test_a_rerun_replaces_a_report_and_removes_what_a_killed_run_left(finished_report, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(finished_report, out)
    (out / "old.txt").write_text("from the first run")
    killed = subprocess.Popen(command("demo", "--out", str(out), *DEMO, *ONE_MODEL, "--seed", "7"),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=user_env(),
                              start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 300
    while not _stale_temporaries(tmp_path, "out") and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(killed.pid, signal.SIGKILL)  # while it writes its report beside --out
    killed.wait()
    stale = _stale_temporaries(tmp_path, "out")
    assert len(stale) == 1, sorted(p.name for p in tmp_path.iterdir())
    assert json.loads((stale[0] / MARKER).read_text())["target"] == "out"
    assert (out / "old.txt").exists() and (out / MARKER).exists()  # the killed run never touched --out
    assert (tmp_path / ".out.groupfx-lock").exists()  # a killed run cannot remove its lock file ...
    unmarked = tmp_path / ".out.mine.tmp"  # ... and this folder, named like groupfx's, is not groupfx's
    unmarked.mkdir()
    (unmarked / "notes.txt").write_text("mine")

    result = run("demo", "--out", str(out), *DEMO, *ONE_MODEL, "--seed", "7")  # ... nor keeps it locked
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.mine.tmp", "out"]
    assert (unmarked / "notes.txt").read_text() == "mine"
    assert not (out / "old.txt").exists()  # the previous report was replaced as a whole
    assert json.loads((out / MARKER).read_text())["kind"] == "report"
    first, second = pd.read_csv(finished_report / "data.csv"), pd.read_csv(out / "data.csv")
    assert len(second) == 240 and not first.equals(second)  # the new run's data (seed 7)
    assert set(pd.read_csv(out / "estimates.csv").model) == {"Naive"}
    assert (out / "report.html").read_text().startswith("<!DOCTYPE html>")
