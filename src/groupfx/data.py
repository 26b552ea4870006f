"""The validated table every model is fitted to.

:class:`GroupedData` holds one outcome ``y``, one unit-level variable ``x``, one group-level covariate ``z``
and the group of each unit, as arrays ready for PyMC: groups are coded ``0 .. G-1`` in order of their
labels and the labels themselves are kept for every output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from groupfx.errors import InputError


@dataclass(frozen=True)
class GroupedData:
    """Unit-level data with a group structure.

    Parameters
    ----------
    y : numpy.ndarray
        Outcome per unit, shape ``(N,)``.
    x : numpy.ndarray
        Unit-level variable whose effect is wanted, shape ``(N,)``.
    group : numpy.ndarray
        Integer group code per unit in ``0 .. G-1``, shape ``(N,)``.
    z : numpy.ndarray
        Group-level covariate per group, shape ``(G,)``.
    group_labels : numpy.ndarray
        The label of each group code, shape ``(G,)``.
    names : dict of str to str
        Column names of ``y``, ``x``, ``group`` and ``z`` (and ``trials``) in the source table.
    trials : numpy.ndarray, optional
        Number of trials per unit for the Binomial family, shape ``(N,)``.
    exposure : numpy.ndarray, optional
        Exposure per unit for the Poisson family (time at risk, population...), shape ``(N,)``: the
        expected count is ``exposure * exp(eta)``.
    """

    y: np.ndarray
    x: np.ndarray
    group: np.ndarray
    z: np.ndarray
    group_labels: np.ndarray
    names: dict[str, str] = field(default_factory=lambda: {"y": "y", "x": "x", "group": "group", "z": "z"})
    trials: np.ndarray | None = None
    exposure: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = self.y.shape[0]
        if self.x.shape != (n,) or self.group.shape != (n,):
            raise InputError("y, x and group must be one-dimensional arrays of the same length.")
        if self.z.shape != self.group_labels.shape:
            raise InputError("z must hold one value per group label.")
        if n == 0:
            raise InputError("The table has no rows; give at least one unit in each of two groups.")
        if self.group.min() < 0 or self.group.max() >= self.n_groups:
            raise InputError("Group codes must lie in 0 .. n_groups - 1.")

    @property
    def n_units(self) -> int:
        """Number of units (rows)."""
        return int(self.y.shape[0])

    @property
    def n_groups(self) -> int:
        """Number of groups."""
        return int(self.group_labels.shape[0])

    @property
    def group_sizes(self) -> np.ndarray:
        """Units per group, shape ``(G,)``."""
        return np.bincount(self.group, minlength=self.n_groups)

    @property
    def xbar(self) -> np.ndarray:
        """Observed group mean of ``x``, shape ``(G,)``: the Mundlak device's proxy for U."""
        return np.bincount(self.group, weights=self.x, minlength=self.n_groups) / self.group_sizes

    @property
    def x_within_ss(self) -> np.ndarray:
        """Within-group sum of squares of ``x`` about the group mean, shape ``(G,)``."""
        deviations = self.x - self.xbar[self.group]
        return np.bincount(self.group, weights=deviations**2, minlength=self.n_groups)

    def to_frame(self, **extra: Any) -> pd.DataFrame:
        """Return the table as a DataFrame with the source column names (extra columns appended)."""
        columns = {
            self.names["group"]: self.group_labels[self.group],
            self.names["x"]: self.x,
            self.names["y"]: self.y,
            self.names["z"]: self.z[self.group],
        }
        if self.trials is not None:
            columns[self.names.get("trials", "trials")] = self.trials
        if self.exposure is not None:
            columns[self.names.get("exposure", "exposure")] = self.exposure
        columns.update(extra)
        return pd.DataFrame(columns)

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        *,
        y: str = "y",
        x: str = "x",
        group: str = "group",
        z: str = "z",
        trials: str | None = None,
        exposure: str | None = None,
    ) -> GroupedData:
        """Build from a DataFrame with one row per unit.

        Groups are the distinct values of ``group`` (sorted); ``z`` is taken per group and must not vary
        within a group.

        Raises
        ------
        InputError
            If a column is missing or ``z`` varies within a group.
        """
        missing = [c for c in (y, x, group, z) if c not in frame.columns]
        if missing:
            raise InputError(
                f"Column {missing[0]!r} is not in the table (columns: {', '.join(map(str, frame.columns))});"
                " name an existing column."
            )
        codes, labels = pd.factorize(frame[group], sort=True)
        codes = np.asarray(codes, dtype=np.int64)
        z_values = frame[z].to_numpy(dtype=float)
        z_per_group = np.full(len(labels), np.nan)
        z_per_group[codes] = z_values
        varying = np.flatnonzero(z_values != z_per_group[codes])
        if varying.size:
            rows = ", ".join(map(str, varying[:5]))
            raise InputError(
                f"Column {z!r} varies within a group (rows {rows}); a group-level covariate must be"
                " constant within each group: use one value per group."
            )
        return cls(
            y=frame[y].to_numpy(),
            x=frame[x].to_numpy(dtype=float),
            group=codes,
            z=z_per_group,
            group_labels=np.asarray(labels),
            names={"y": y, "x": x, "group": group, "z": z}
            | ({"trials": trials} if trials else {})
            | ({"exposure": exposure} if exposure else {}),
            trials=frame[trials].to_numpy() if trials else None,
            exposure=frame[exposure].to_numpy(dtype=float) if exposure else None,
        )
