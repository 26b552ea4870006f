"""Run independent fits in worker processes: one pool that takes the function to run.

PyTensor and numba compilation are not thread-safe and each model's compilation is single-threaded, so
fits go to separate processes: while one model compiles another samples. Workers are forked (they start at
once with groupfx already imported, and need no ``if __name__ == "__main__"`` guard in the user's
script); the caller should not run threads of its own while they start. Each fit is seeded from the fit's
seed and the model's name, so results do not depend on which worker ran what, or on how many there were.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from groupfx.util.quiet import quiet_libraries

_events: Any = None


def _init_worker(events: Any) -> None:
    global _events
    _events = events
    quiet_libraries()  # a worker's stderr is the terminal's: its library warnings would reach it raw


def _report(label: str, step: str) -> None:
    if _events is not None:
        _events.put((label, step))


def _run_fit(fit: Callable[..., Any], name: str, args: tuple, kwargs: dict[str, Any]):
    return fit(*args, model=name, progress=_report, **kwargs)


def default_workers(n_tasks: int) -> int:
    """Worker processes for ``n_tasks`` fits: one per core, at most one per fit."""
    return max(1, min(n_tasks, os.cpu_count() or 1))


def run_fits(
    fit: Callable[..., Any],
    names: Sequence[str],
    args: tuple,
    kwargs: dict[str, Any],
    workers: int,
    progress: Callable[[str, str], None] | None = None,
) -> dict[str, Any]:
    """Fit each model of ``names`` with ``fit(*args, model=name, **kwargs)`` in ``workers`` processes.

    ``fit`` is handed in (a module-level function, sent to the workers by reference), so this pool knows
    nothing of what a fit is; it is called with ``progress`` reporting each step back to this process.
    Returns the fits keyed by name in the order of ``names``; the first exception raised by a fit is
    raised here after the other workers are stopped.
    """
    context = mp.get_context("fork")
    events = context.Queue()
    results: dict[str, Any] = {}
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_init_worker, initargs=(events,)
    ) as pool:
        futures: dict[Future, str] = {pool.submit(_run_fit, fit, name, args, kwargs): name for name in names}
        pending = set(futures)
        try:
            while pending:
                done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                _drain(events, progress)
                for future in done:
                    results[futures[future]] = future.result()
        except BaseException:
            for future in pending:
                future.cancel()
            raise
        finally:
            _drain(events, progress)
    return {name: results[name] for name in names}


def _drain(events: Any, progress: Callable[[str, str], None] | None) -> None:
    while True:
        try:
            label, step = events.get_nowait()
        except queue.Empty:
            return
        if progress is not None:
            progress(label, step)
