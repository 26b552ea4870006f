"""Draw and save a report's figures, side by side in forked processes.

A report has two dozen figures and matplotlib draws each on one core; drawing them in a pool of forked
processes (which inherit the data and fits, nothing is pickled but the figure's key and path) divides that
time by the number of cores. Each process saves its figure atomically and closes it.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from groupfx.report.plots import save_figure

_pending: Mapping[str, Callable] = {}


def _draw(key: str, path: Path) -> Path:
    return save_figure(_pending[key](), path)


def draw_figures(
    drawings: Mapping[str, Callable],
    folder: Path,
    workers: int | None = None,
    meanwhile: Callable[[], None] | None = None,
) -> dict[str, Path]:
    """Call each drawing function and save its figure as ``folder / f"{key}.png"``.

    Parameters
    ----------
    drawings : mapping of str to callable
        Figure key to a function returning a matplotlib Figure.
    folder : pathlib.Path
        Where the PNG files go.
    workers : int, optional
        Processes drawing at once (default: one per core; one once JAX is imported, since forking a process
        that runs JAX's threads may deadlock); 1 draws them here, one after another.
    meanwhile : callable, optional
        Other work for this process while the figures are drawn (called once, before waiting for them).

    Returns
    -------
    dict of str to pathlib.Path
        The saved files, by key, in the order of ``drawings``.
    """
    global _pending
    workers = workers or os.cpu_count() or 1
    if "jax" in sys.modules:  # JAX runs threads of its own: a fork after it starts may deadlock
        workers = 1
    paths = {key: folder / f"{key}.png" for key in drawings}
    if workers == 1 or len(drawings) < 2:
        if meanwhile is not None:
            meanwhile()
        return {key: save_figure(draw(), paths[key]) for key, draw in drawings.items()}
    _pending = drawings
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("fork")) as pool:
            futures = {key: pool.submit(_draw, key, paths[key]) for key in drawings}
            if meanwhile is not None:
                meanwhile()
            return {key: future.result() for key, future in futures.items()}
    finally:
        _pending = {}
