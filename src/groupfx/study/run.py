"""Run a study's tasks: in a local pool of worker processes, or on an existing Dask cluster.

Either way the parent writes each task's rows to disk (atomically) the moment they arrive, so a study
killed at any point keeps every finished fit, and the workers need no shared file system.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from groupfx.errors import InputError
from groupfx.study.scenarios import Scenario
from groupfx.study.store import existing_results, read_results, start_study, write_result
from groupfx.study.tasks import StudySettings, Task, make_tasks, run_task
from groupfx.util.files import claim_output_folder
from groupfx.util.workers import default_workers, run_pool


@dataclass
class StudyProgress:
    """Counts reported after each finished task."""

    total: int
    done: int = 0
    failed: int = 0
    skipped: int = 0

    @property
    def remaining(self) -> int:
        """Tasks not finished yet."""
        return self.total - self.done - self.skipped


Progress = Callable[[StudyProgress], None]


def run_local(tasks: Sequence[Task], workers: int, on_result: Callable[[Task, pd.DataFrame], None]) -> None:
    """Run ``tasks`` in ``workers`` forked processes (or in this one when ``workers`` is 1), handing each
    task's rows to ``on_result`` the moment it finishes (see :func:`groupfx.util.workers.run_pool`)."""
    run_pool(run_task, tasks, workers, on_result=on_result)


def connect(address: str, timeout: float | str | None = None):
    """A Dask ``distributed.Client`` of the scheduler at ``address``, or one line saying it cannot be reached.

    Parameters
    ----------
    address : str
        ``tcp://host:port``.
    timeout : float or str, optional
        How long to try: seconds or a Dask duration such as ``"5s"`` (default: Dask's
        ``distributed.comm.timeouts.connect`` setting, which ``DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT``
        sets from the environment).

    Raises
    ------
    InputError
        If no scheduler answers at ``address`` within ``timeout``.
    """
    import dask
    from distributed import Client

    if timeout is None:
        timeout = dask.config.get("distributed.comm.timeouts.connect")
    try:
        return Client(address, timeout=timeout)
    except (OSError, TimeoutError, ValueError) as error:
        reason = " ".join(str(error).split()) or type(error).__name__
        raise InputError(
            f"Cannot reach a Dask scheduler at {address} ({reason}); start one (dask scheduler) or drop"
            " --scheduler to run locally."
        ) from None


def run_dask(tasks: Sequence[Task], scheduler, on_result: Callable[[Task, pd.DataFrame], None]) -> None:
    """Run ``tasks`` on a Dask distributed cluster.

    ``scheduler`` is the scheduler's address (``tcp://host:port``; the client made for it is closed at the
    end) or a connected ``distributed.Client`` (left open for its owner).
    """
    from distributed import as_completed

    client = connect(scheduler) if isinstance(scheduler, str) else scheduler
    try:
        futures = {
            client.submit(run_task, task, key=f"groupfx-{task.settings.seed}-{task.key}", pure=False): task
            for task in tasks
        }
        for future in as_completed(futures):
            on_result(futures[future], future.result())
    finally:
        if isinstance(scheduler, str):
            client.close()


def run_study(
    scenarios: Sequence[Scenario],
    settings: StudySettings,
    out_dir: str | Path,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    resume: bool = False,
    progress: Progress | None = None,
    connect_timeout: float | str | None = None,
) -> pd.DataFrame:
    """Fit every model to every replicate of every scenario and keep each result as it finishes.

    The study folder is checked first, then the scheduler is reached; only then is the folder made, so a
    refused or failed start leaves nothing behind. The folder is locked for the run: a second run into it
    is refused.

    Parameters
    ----------
    scenarios : sequence of Scenario
        The grid.
    settings : StudySettings
        Replicates, models, sampling and seed.
    out_dir : str or pathlib.Path
        The study folder (see :mod:`groupfx.study.store`): new, empty, or (with ``resume``) a study.
    workers : int, optional
        Local worker processes (default: one per core). Ignored with ``scheduler``.
    scheduler : str or distributed.Client, optional
        Address of a running Dask scheduler, e.g. ``tcp://10.0.0.5:8786``, or a client connected to one
        (left open); the tasks run on its workers.
    resume : bool
        Finish a study started in ``out_dir``: fit only the tasks whose results are missing.
    progress : callable, optional
        Called with a :class:`StudyProgress` at the start and after each finished task.
    connect_timeout : float or str, optional
        How long to try to reach ``scheduler`` (see :func:`connect`).

    Returns
    -------
    pandas.DataFrame
        Every task's rows (those of earlier runs included).

    Raises
    ------
    InputError
        If the folder may not be used (see :func:`groupfx.study.store.existing_results` and
        :func:`groupfx.util.files.check_output_folder`), or the scheduler cannot be reached.
    """
    if not scenarios:
        raise InputError("Give at least one scenario.")
    names = [scenario.name for scenario in scenarios]
    if len(set(names)) != len(names):
        raise InputError("Each scenario needs its own name.")
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise InputError(f"workers must be a positive integer (got {workers}).")
    out_dir = Path(out_dir)
    with claim_output_folder(out_dir, "study"):
        done = existing_results(out_dir, scenarios, settings, resume)
        client = connect(scheduler, connect_timeout) if isinstance(scheduler, str) else scheduler
        try:
            start_study(out_dir, scenarios, settings)
            tasks = make_tasks(scenarios, settings)
            todo = [task for task in tasks if task.key not in done]
            state = StudyProgress(total=len(tasks), skipped=len(tasks) - len(todo))
            report = progress or (lambda state: None)
            report(state)

            def on_result(task: Task, rows: pd.DataFrame) -> None:
                write_result(out_dir, task, rows)
                state.done += 1
                state.failed += int((rows["status"] != "ok").any())
                report(state)

            if client is not None:
                run_dask(todo, client, on_result)
            else:
                run_local(todo, workers, on_result)
        finally:
            if isinstance(scheduler, str):
                client.close()
        return read_results(out_dir)
