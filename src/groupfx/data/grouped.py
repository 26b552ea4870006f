"""The validated table every model is fitted to.

:class:`GroupedData` holds one outcome ``y``, one or more unit-level variables ``x`` (the effects wanted),
zero or more group-level covariates ``z`` and the group of each unit, as arrays ready for PyMC: groups are
coded ``0 .. G-1`` in order of their labels and the labels themselves are kept for every output.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from groupfx.errors import InputError, shown


def _as_names(columns: str | Sequence[str] | None) -> tuple[str, ...]:
    if columns is None:
        return ()
    if isinstance(columns, str):
        return (columns,)
    return tuple(columns)


@dataclass(frozen=True)
class GroupedData:
    """Unit-level data with a group structure.

    Parameters
    ----------
    y : numpy.ndarray
        Outcome per unit, shape ``(N,)``.
    x : numpy.ndarray
        Unit-level variables whose effects are wanted, shape ``(N, K)`` (a vector is one variable).
    group : numpy.ndarray
        Integer group code per unit in ``0 .. G-1``, shape ``(N,)``.
    z : numpy.ndarray
        Group-level covariates, shape ``(G, J)``; ``J`` may be 0 (a vector is one covariate).
    group_labels : numpy.ndarray
        The label of each group code, shape ``(G,)``.
    names : dict of str to str
        Source column names of ``y`` and ``group`` (and ``trials``, ``exposure``).
    x_names, z_names : tuple of str
        Source column names of the columns of ``x`` and ``z`` (default ``x``, ``z`` or ``x1, x2, ...``).
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
    names: dict[str, str] = field(default_factory=lambda: {"y": "y", "group": "group"})
    x_names: tuple[str, ...] = ()
    z_names: tuple[str, ...] = ()
    trials: np.ndarray | None = None
    exposure: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = self.y.shape[0]
        x = np.asarray(self.x, dtype=float)
        x = x.reshape(n, 1) if x.ndim == 1 and x.shape[0] == n else x
        z = np.asarray(self.z, dtype=float)
        z = z.reshape(-1, 1) if z.ndim == 1 else z
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "z", z)
        object.__setattr__(self, "x_names", self._default_names(self.x_names, x.shape[-1], "x"))
        object.__setattr__(self, "z_names", self._default_names(self.z_names, z.shape[-1], "z"))
        if x.ndim != 2 or x.shape[0] != n or self.group.shape != (n,):
            raise InputError("y, x and group must hold one row per unit (x: one column per variable).")
        if x.shape[1] == 0:
            raise InputError("Give at least one unit-level variable x.")
        if z.ndim != 2 or z.shape[0] != self.group_labels.shape[0]:
            raise InputError("z must hold one row per group label.")
        if len(set(self.x_names + self.z_names)) != self.n_x + self.n_z:
            raise InputError("Each x and z column may be named once; drop the repeated name.")
        if n == 0:
            raise InputError("The table has no rows; give at least one unit in each of two groups.")
        if self.group.min() < 0 or self.group.max() >= self.n_groups:
            raise InputError("Group codes must lie in 0 .. n_groups - 1.")

    @staticmethod
    def _default_names(names: Sequence[str], count: int, stem: str) -> tuple[str, ...]:
        names = tuple(names)
        if names:
            if len(names) != count:
                raise InputError(f"Give one name per {stem} column ({count}), not {len(names)}.")
            return names
        return (stem,) if count == 1 else tuple(f"{stem}{k + 1}" for k in range(count))

    @property
    def n_units(self) -> int:
        """Number of units (rows)."""
        return int(self.y.shape[0])

    @property
    def n_groups(self) -> int:
        """Number of groups."""
        return int(self.group_labels.shape[0])

    @property
    def n_x(self) -> int:
        """Number of unit-level variables."""
        return int(self.x.shape[1])

    @property
    def n_z(self) -> int:
        """Number of group-level covariates (may be 0)."""
        return int(self.z.shape[1])

    @property
    def group_sizes(self) -> np.ndarray:
        """Units per group, shape ``(G,)``."""
        return np.bincount(self.group, minlength=self.n_groups)

    def _group_sums(self, values: np.ndarray) -> np.ndarray:
        """Sum of each column of ``values`` (shape ``(N, K)``) per group, shape ``(G, K)``."""
        columns = [np.bincount(self.group, weights=column, minlength=self.n_groups) for column in values.T]
        return np.stack(columns, axis=1) if columns else np.zeros((self.n_groups, 0))

    @property
    def xbar(self) -> np.ndarray:
        """Observed group mean of each x, shape ``(G, K)``: the Mundlak device's proxy for U."""
        return self._group_sums(self.x) / self.group_sizes[:, None]

    @property
    def x_within_ss(self) -> np.ndarray:
        """Within-group sum of squares of each x about its group mean, shape ``(G, K)``."""
        return self._group_sums((self.x - self.xbar[self.group]) ** 2)

    def to_frame(self, **extra: Any) -> pd.DataFrame:
        """Return the table as a DataFrame with the source column names (extra columns appended)."""
        columns = {self.names["group"]: self.group_labels[self.group]}
        columns |= {name: self.x[:, k] for k, name in enumerate(self.x_names)}
        columns[self.names["y"]] = self.y
        columns |= {name: self.z[self.group, j] for j, name in enumerate(self.z_names)}
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
        x: str | Sequence[str] = "x",
        group: str = "group",
        z: str | Sequence[str] | None = "z",
        trials: str | None = None,
        exposure: str | None = None,
    ) -> GroupedData:
        """Build from a DataFrame with one row per unit.

        Groups are the distinct values of ``group`` (sorted); each ``z`` is taken per group and must not
        vary within a group. Use :func:`groupfx.read_data` for the full validation of a user's table.

        Raises
        ------
        InputError
            If a column is missing or a ``z`` varies within a group.
        """
        x_names, z_names = _as_names(x), _as_names(z)
        missing = [c for c in (y, *x_names, group, *z_names) if c not in frame.columns]
        if missing:
            raise InputError(
                f"Column {shown(missing[0])} is not in the table (columns:"
                f" {', '.join(map(str, frame.columns))}); name an existing column."
            )
        codes, labels = pd.factorize(frame[group], sort=True)
        codes = np.asarray(codes, dtype=np.int64)
        z_values = frame[list(z_names)].to_numpy(dtype=float).reshape(len(frame), len(z_names))
        z_per_group = np.full((len(labels), len(z_names)), np.nan)
        z_per_group[codes] = z_values
        for j, name in enumerate(z_names):
            varying = np.flatnonzero(z_values[:, j] != z_per_group[codes, j])
            if varying.size:
                rows = ", ".join(map(str, varying[:5] + 1))  # data rows counted from 1
                raise InputError(
                    f"Column {shown(name)} varies within a group (rows {rows}); a group-level covariate must"
                    " be constant within each group: use one value per group."
                )
        return cls(
            y=frame[y].to_numpy(),
            x=frame[list(x_names)].to_numpy(dtype=float).reshape(len(frame), len(x_names)),
            group=codes,
            z=z_per_group,
            group_labels=np.asarray(labels),
            names={"y": y, "group": group}
            | ({"trials": trials} if trials else {})
            | ({"exposure": exposure} if exposure else {}),
            x_names=x_names,
            z_names=z_names,
            trials=frame[trials].to_numpy() if trials else None,
            exposure=frame[exposure].to_numpy(dtype=float) if exposure else None,
        )
