"""The one worker pool: results handed over as they finish, the same with any number of workers, failures
cancel the rest, work in the parent meanwhile, quiet workers, inherited state, and no fork once JAX is in."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest

from groupfx.util import workers
from groupfx.util.workers import forks, run_pool, send

PARENT = os.getpid()


@pytest.fixture(autouse=True)
def _as_if_jax_were_not_imported(monkeypatch):
    """Other tests of the session import JAX, and the pool then never forks; these tests exercise the
    forked path with functions that never touch JAX, so each starts with JAX out of ``sys.modules``
    (put back after)."""
    monkeypatch.delitem(sys.modules, "jax", raising=False)


def _wait_for(path: Path) -> None:
    """Block until ``path`` exists; fail (rather than hang) if it never comes."""
    deadline = time.monotonic() + 120
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path.name} never appeared")
        time.sleep(0.01)


def test_each_result_is_handed_over_as_it_finishes_while_others_still_run(tmp_path):
    def work(item: str) -> tuple[str, int]:
        if item == "slow":  # finishes only once the parent has been handed the fast one's result
            _wait_for(tmp_path / "fast was handed over")
        return item, os.getpid()

    handed = []

    def on_result(item: str, result: tuple[str, int]) -> None:
        handed.append(item)
        (tmp_path / f"{item} was handed over").touch()

    results = run_pool(work, ["slow", "fast"], 2, on_result=on_result)
    assert handed == ["fast", "slow"]  # the order they finished
    assert [item for item, _ in results] == ["slow", "fast"]  # the order of the items
    assert all(pid != PARENT for _, pid in results) and results[0][1] != results[1][1]


def _draws(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=5)


@pytest.mark.parametrize("n_workers", [2, 3])
def test_any_number_of_workers_gives_the_results_of_one(n_workers):
    one = run_pool(_draws, list(range(7)), 1)
    many = run_pool(_draws, list(range(7)), n_workers)
    assert len(one) == len(many) == 7
    for a, b in zip(one, many, strict=True):
        np.testing.assert_array_equal(a, b)


def test_workers_inherit_what_does_not_pickle_and_send_messages_back():
    offsets = {"a": 1.0, "b": 2.0}
    items = [lambda key=key: offsets[key] * 10 for key in offsets]  # lambdas do not pickle

    def work(item) -> tuple[float, int]:
        send("drawn", item())
        return item(), os.getpid()

    for n_workers in (1, 2):
        messages: list[tuple] = []
        results = run_pool(
            work, items, n_workers, on_event=lambda *message, into=messages: into.append(message)
        )
        assert [value for value, _ in results] == [10.0, 20.0]
        assert sorted(messages) == [("drawn", 10.0), ("drawn", 20.0)]
        assert all((pid == PARENT) == (n_workers == 1) for _, pid in results)
    send("outside a pool: nothing happens")


def _fail_first(tmp_path: Path):
    def work(item: int) -> int:
        if item == 0:
            raise ValueError("item 0 cannot be fitted")
        time.sleep(0.3)
        (tmp_path / f"{item}.done").touch()
        return item

    return work


@pytest.mark.parametrize("n_workers", [1, 2])
def test_a_failing_item_cancels_the_rest_and_its_error_is_raised_here(tmp_path, n_workers):
    handed = []
    with pytest.raises(ValueError, match=r"^item 0 cannot be fitted$"):
        run_pool(_fail_first(tmp_path), list(range(20)), n_workers, on_result=lambda i, r: handed.append(i))
    finished = len(list(tmp_path.glob("*.done")))
    assert finished < 19 and len(handed) <= finished  # the items not started were never run
    if n_workers == 1:
        assert finished == 0


def test_an_interrupt_in_the_parent_cancels_the_work_and_is_raised(tmp_path):
    def on_result(item: int, result: int) -> None:
        raise KeyboardInterrupt

    work = _fail_first(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        run_pool(work, list(range(1, 21)), 2, on_result=on_result)
    assert len(list(tmp_path.glob("*.done"))) < 20


@pytest.mark.parametrize("n_workers", [1, 2])
def test_meanwhile_runs_once_in_this_process_while_the_workers_work(tmp_path, n_workers):
    calls = []

    def meanwhile() -> None:
        calls.append(os.getpid())
        (tmp_path / "meanwhile ran").touch()

    def work(item: int) -> int:  # the workers wait for it: it runs before the results are awaited
        _wait_for(tmp_path / "meanwhile ran")
        return item

    assert run_pool(work, [1, 2, 3], n_workers, meanwhile=meanwhile) == [1, 2, 3]
    assert calls == [PARENT]


def test_once_jax_is_imported_the_items_run_in_this_process(monkeypatch):
    assert forks(2, 3)
    monkeypatch.setitem(sys.modules, "jax", types.ModuleType("jax"))
    assert not forks(2, 3)

    def no_fork(*args, **kwargs):
        raise AssertionError("forked after JAX was imported")

    monkeypatch.setattr(workers, "_run_forked", no_fork)
    assert run_pool(lambda item: (item, os.getpid()), [1, 2, 3], 3) == [(1, PARENT), (2, PARENT), (3, PARENT)]


def test_one_item_or_one_worker_runs_here():
    assert not forks(1, 5) and not forks(4, 1) and not forks(4, 0)
    assert run_pool(lambda item: os.getpid(), [0], 4) == [PARENT]
    assert run_pool(lambda item: os.getpid(), [], 4) == []


WARN_IN_WORKERS = """
import logging
import warnings
from groupfx.data.reader import DataWarning
from groupfx.util.workers import run_pool

def work(item):
    warnings.warn("library chatter", UserWarning)
    warnings.warn("a numerical notice", RuntimeWarning)
    logging.getLogger("pymc").warning("library log line")
    warnings.warn(f"column z{item} is constant", DataWarning)
    return item

assert run_pool(work, [1, 2], 2) == [1, 2]
"""


def test_workers_quiet_the_libraries_and_keep_groupfx_warnings():
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    result = subprocess.run(
        [sys.executable, "-c", WARN_IN_WORKERS], capture_output=True, text=True, timeout=300, env=env
    )
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert sorted(lines) == ["warning: column z1 is constant", "warning: column z2 is constant"]
