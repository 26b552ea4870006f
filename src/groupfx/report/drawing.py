"""Draw and save a report's figures, side by side in forked processes.

A report has two dozen figures and matplotlib draws each on one core; drawing them in the worker pool
(:func:`groupfx.util.workers.run_pool`, whose forked processes inherit the drawing functions with the data
and fits they hold: nothing is pickled but a figure's key and its saved path) divides that time by the
number of cores. Each process saves its figure atomically and closes it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from groupfx.report.plots import save_figure
from groupfx.util.workers import default_workers, run_pool


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
        Processes drawing at once (default: one per core; the figures are drawn here once JAX is imported,
        since forking a process that runs JAX's threads may deadlock); 1 draws them here, one after another.
    meanwhile : callable, optional
        Other work for this process while the figures are drawn (called once, before waiting for them).

    Returns
    -------
    dict of str to pathlib.Path
        The saved files, by key, in the order of ``drawings``.
    """
    keys = list(drawings)

    def draw(key: str) -> Path:
        return save_figure(drawings[key](), folder / f"{key}.png")

    paths = run_pool(draw, keys, workers or default_workers(), meanwhile=meanwhile)
    return dict(zip(keys, paths, strict=True))
