"""Run one function over many items in forked worker processes: the one process pool of groupfx.

``fit_all`` fits its models, the study its tasks and the report its figures through :func:`run_pool`.
PyTensor and numba compilation are not thread-safe and each model's compilation, like each figure's
drawing, is single-threaded, so the work goes to separate processes: while one model compiles another
samples. Workers are forked: they start at once with groupfx imported and need no
``if __name__ == "__main__"`` guard in the user's script, and they inherit the function and the items, so
neither is pickled (a closure over fitted models or drawing functions is fine); only each item's index
goes to a worker and only its result comes back. With one worker, or once JAX is imported (JAX runs
threads of its own, and a fork after it starts may deadlock), the items run in this process instead.

Workers quiet the libraries' warnings and logs (:func:`groupfx.util.quiet.quiet_libraries`: their stderr
is the terminal's) while groupfx's own warnings still show. Results do not depend on which worker ran
what, or on how many there were, as long as the function does not (fits are seeded from the fit's seed
and the model's name).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from groupfx.util.quiet import quiet_libraries

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass(frozen=True)
class _Work(Generic[Item, Result]):
    function: Callable[[Item], Result]
    items: Sequence[Item]


_work: _Work | None = None
"""The running pool's function and items, set before the workers fork so that they inherit them."""

_events: Any = None
"""Where :func:`send` puts a message: the pool's queue in a worker, the caller's callable in this process."""


def _init_worker(events: Any) -> None:
    global _events
    _events = events
    quiet_libraries()  # a worker's stderr is the terminal's: its library warnings would reach it raw


def _call(index: int) -> Any:
    return _work.function(_work.items[index])


def send(*message: Any) -> None:
    """Hand ``message`` to the running pool's ``on_event`` in the parent process (as it happens).

    The function :func:`run_pool` runs may call it (``fit_all`` hands it to each fit as its progress
    callback); outside a pool, or when the pool has no ``on_event``, it does nothing. The message is
    pickled on its way from a worker.
    """
    if _events is None:
        return
    if callable(_events):
        _events(*message)
    else:
        _events.put(message)


def default_workers(n_items: int | None = None) -> int:
    """Worker processes for ``n_items`` items: one per core, at most one per item."""
    cores = os.cpu_count() or 1
    return max(1, cores if n_items is None else min(n_items, cores))


def forks(workers: int, n_items: int) -> bool:
    """Whether :func:`run_pool` would run ``n_items`` items in ``workers`` forked processes."""
    return min(workers, n_items) > 1 and "jax" not in sys.modules


def run_pool(
    function: Callable[[Item], Result],
    items: Sequence[Item],
    workers: int,
    *,
    on_result: Callable[[Item, Result], None] | None = None,
    meanwhile: Callable[[], None] | None = None,
    on_event: Callable[..., None] | None = None,
) -> list[Result]:
    """Call ``function(item)`` for each of ``items`` in ``workers`` forked processes.

    Parameters
    ----------
    function : callable
        Called with one item, in a worker; any callable (a closure, a lambda): the workers inherit it.
        Its result must pickle.
    items : sequence
        The work; inherited by the workers too, so they need not pickle.
    workers : int
        Processes working at once (at most one per item). With 1, with a single item, or once JAX is
        imported, the items run here, one after another, in their order.
    on_result : callable, optional
        Called here as ``on_result(item, result)`` the moment each item finishes, in the order they
        finish (a study writes each result to disk then).
    meanwhile : callable, optional
        Other work for this process, called once while the workers work (in this process, before the
        first item when the items run here).
    on_event : callable, optional
        Called here with each message the function passes to :func:`send`, soon after it is sent.

    Returns
    -------
    list
        The results, in the order of ``items``.

    Raises
    ------
    BaseException
        The first exception an item raised (its own type and message), or one raised by ``on_result``,
        ``meanwhile`` or ``on_event``, or a KeyboardInterrupt: the items not started yet are cancelled,
        those running are let finish, then it is raised here.
    """
    if not forks(workers, len(items)):
        return _run_here(function, items, on_result, meanwhile, on_event)
    return _run_forked(function, items, min(workers, len(items)), on_result, meanwhile, on_event)


def _run_here(function, items, on_result, meanwhile, on_event) -> list:
    global _events
    outer, _events = _events, on_event
    try:
        if meanwhile is not None:
            meanwhile()
        results = []
        for item in items:
            results.append(function(item))
            if on_result is not None:
                on_result(item, results[-1])
        return results
    finally:
        _events = outer


def _run_forked(function, items, workers, on_result, meanwhile, on_event) -> list:
    global _work
    context = mp.get_context("fork")
    events = context.Queue() if on_event is not None else None
    outer, _work = _work, _Work(function, items)
    results: dict[int, Any] = {}
    try:
        with ProcessPoolExecutor(
            max_workers=workers, mp_context=context, initializer=_init_worker, initargs=(events,)
        ) as pool:
            futures: dict[Future, int] = {pool.submit(_call, index): index for index in range(len(items))}
            pending = set(futures)
            try:
                if meanwhile is not None:
                    meanwhile()
                while pending:
                    done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                    _drain(events, on_event)
                    for future in done:
                        index = futures[future]
                        results[index] = future.result()
                        if on_result is not None:
                            on_result(items[index], results[index])
            except BaseException:
                for future in pending:
                    future.cancel()
                raise
        _drain(events, on_event)  # the workers have exited: every message they sent is here
    finally:
        _work = outer
        if events is not None:
            events.close()
    return [results[index] for index in range(len(items))]


def _drain(events: Any, on_event: Callable[..., None] | None) -> None:
    if events is None:
        return
    while True:
        try:
            message = events.get_nowait()
        except queue.Empty:
            return
        on_event(*message)
