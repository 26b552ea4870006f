"""Real panel data sets that ship with installed packages (no network needed), for examples and tests.

=========== ======================================================================================
name        what it is
=========== ======================================================================================
wage_panel  Vella and Verbeek (1998): 545 young men observed every year 1980-1987 (4,360 rows), from
            ``linearmodels.datasets.wage_panel``. Person ``nr``; log wage ``lwage``, union membership
            ``union``, ``married``, experience ``exper`` vary over time; schooling ``educ`` and the
            indicators ``black`` and ``hisp`` do not (group-level covariates).
=========== ======================================================================================

Unobserved, time-invariant traits of each man (ability, motivation) plausibly drive both whether he
marries or joins a union and what he earns: the group-level confounding the within estimators remove.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from groupfx.errors import InputError
from groupfx.util.files import atomic_path


def _wage_panel() -> pd.DataFrame:
    from linearmodels.datasets import wage_panel

    return wage_panel.load()


DATASETS: dict[str, tuple[Callable[[], pd.DataFrame], str]] = {
    "wage_panel": (_wage_panel, "Vella-Verbeek union and wage panel: 545 men x 8 years (linearmodels)"),
}
"""Loader and one-line description of each data set, by name."""


def load_dataset(name: str) -> pd.DataFrame:
    """Load a packaged data set by name as a DataFrame, one row per unit.

    Parameters
    ----------
    name : str
        One of :data:`DATASETS` (``wage_panel``).

    Raises
    ------
    InputError
        For an unknown name.
    """
    try:
        loader, _ = DATASETS[name]
    except KeyError:
        raise InputError(f"Unknown data set {name!r}; choose from: {', '.join(DATASETS)}.") from None
    return loader().reset_index(drop=True)


def write_dataset(name: str, path: str | Path) -> Path:
    """Write a packaged data set to a new CSV file (atomically) and return its path.

    Raises
    ------
    InputError
        For an unknown name, or a ``path`` that already exists (groupfx replaces no file it did not make).
    """
    path = Path(path)
    if path.exists() or path.is_symlink():
        raise InputError(
            f"{path} already exists and groupfx does not replace files; remove it or pass another --out."
        )
    frame = load_dataset(name)
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
    return path
