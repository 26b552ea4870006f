"""The validated table every model is fitted to.

:class:`GroupedData` holds one outcome ``y``, one or more unit-level variables ``x`` (the effects wanted),
zero or more group-level covariates ``z`` and the group of each unit, as arrays ready for PyMC: groups are
coded ``0 .. G-1`` in order of their labels and the labels themselves are kept for every output.

A second, crossed grouping factor (``time``: the period of each unit in a panel, or any factor crossed with
the groups) makes the data two-way: each unit then belongs to one group and one period, and the models add
the period's intercept (and, for the Mundlak device, the period means of x) to the group's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from groupfx.errors import InputError, shown


def two_way_residual(
    values: np.ndarray, group: np.ndarray, time: np.ndarray, tolerance: float = 1e-11, sweeps: int = 200
) -> np.ndarray:
    """``values`` (N, K) less their least-squares fit by a group part plus a period part: the variation that
    two-way effects leave (alternating projections, as fixest and linearmodels demean; exact after one
    sweep on a balanced panel, geometric convergence otherwise).

    Stops when a sweep moves no value by more than ``tolerance`` times the values' spread.
    """
    residual = np.array(values, dtype=float).reshape(len(group), -1)
    n_groups, n_times = int(group.max()) + 1, int(time.max()) + 1
    group_sizes = np.maximum(np.bincount(group, minlength=n_groups), 1)
    time_sizes = np.maximum(np.bincount(time, minlength=n_times), 1)
    scale = max(float(np.ptp(residual)) if residual.size else 0.0, 1e-300)
    for _ in range(sweeps):
        moved = 0.0
        for codes, sizes, count in ((group, group_sizes, n_groups), (time, time_sizes, n_times)):
            for k in range(residual.shape[1]):
                means = np.bincount(codes, weights=residual[:, k], minlength=count) / sizes
                residual[:, k] -= means[codes]
                moved = max(moved, float(np.abs(means).max()))
        if moved <= tolerance * scale:
            break
    return residual


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
    time : numpy.ndarray, optional
        Integer period code per unit in ``0 .. T-1``, shape ``(N,)``: a second grouping factor, crossed with
        the groups (two-way data). ``names["time"]`` holds its column name.
    time_labels : numpy.ndarray, optional
        The label of each period code, shape ``(T,)``; required with ``time``.
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
    time: np.ndarray | None = None
    time_labels: np.ndarray | None = None

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
        if (self.time is None) != (self.time_labels is None):
            raise InputError("Give the period codes and their labels together (time and time_labels).")
        if self.time is not None:
            time = np.asarray(self.time, dtype=np.int64)
            object.__setattr__(self, "time", time)
            object.__setattr__(self, "time_labels", np.asarray(self.time_labels))
            if time.shape != (n,):
                raise InputError("time must hold one period code per unit.")
            if time.min() < 0 or time.max() >= self.n_times:
                raise InputError("Period codes must lie in 0 .. n_times - 1.")

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
    def size_text(self) -> str:
        """``"2000 units in 30 groups"``, with ``" and 8 periods"`` on two-way data."""
        text = f"{self.n_units} units in {self.n_groups} groups"
        return text + (f" and {self.n_times} periods" if self.two_way else "")

    @property
    def two_way(self) -> bool:
        """Whether the data carry a second, crossed grouping factor (``time``)."""
        return self.time is not None

    @property
    def n_times(self) -> int:
        """Number of periods (0 for one-way data)."""
        return 0 if self.time_labels is None else int(self.time_labels.shape[0])

    @property
    def time_sizes(self) -> np.ndarray:
        """Units per period, shape ``(T,)`` (empty for one-way data)."""
        if self.time is None:
            return np.zeros(0, dtype=np.int64)
        return np.bincount(self.time, minlength=self.n_times)

    @property
    def xbar_time(self) -> np.ndarray:
        """Observed period mean of each x, shape ``(T, K)``: the two-way Mundlak device's proxy for the
        period's shock (``(0, K)`` for one-way data)."""
        if self.time is None:
            return np.zeros((0, self.n_x))
        sums = [np.bincount(self.time, weights=column, minlength=self.n_times) for column in self.x.T]
        return np.stack(sums, axis=1) / self.time_sizes[:, None]

    @property
    def balanced(self) -> bool:
        """Whether every group holds every period exactly once (always true of one-way data)."""
        if self.time is None:
            return True
        cells = np.bincount(self.group * self.n_times + self.time, minlength=self.n_groups * self.n_times)
        return bool((cells == 1).all())

    @property
    def period_shares(self) -> np.ndarray:
        """Each group's share of its units in each period after the first, shape ``(G, T - 1)``: the group
        means of the period indicators, which the two-way Mundlak device adds on an unbalanced panel (with
        them it reproduces two-way fixed effects exactly; Wooldridge 2021). ``(G, 0)`` for one-way data."""
        if self.time is None or self.n_times < 2:
            return np.zeros((self.n_groups, 0))
        cells = np.zeros((self.n_groups, self.n_times))
        np.add.at(cells, (self.group, self.time), 1.0)
        return cells[:, 1:] / self.group_sizes[:, None]

    @property
    def period_shares_vary(self) -> bool:
        """Whether the groups' shares of the periods differ between groups (so that they can enter a model
        beside its intercept; on a balanced panel, or one where every group holds each period equally
        often, they are one constant)."""
        shares = self.period_shares
        return bool(shares.size) and bool((np.ptp(shares, axis=0) > 1e-12).any())

    @property
    def cell_counts(self) -> np.ndarray:
        """Units in each group and period, shape ``(G, T)`` (``(G, 0)`` for one-way data)."""
        cells = np.zeros((self.n_groups, self.n_times))
        if self.time is not None:
            np.add.at(cells, (self.group, self.time), 1.0)
        return cells

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
        if self.time is not None:
            columns[self.names.get("time", "time")] = self.time_labels[self.time]
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
        time: str | None = None,
    ) -> GroupedData:
        """Build from a DataFrame with one row per unit.

        Groups are the distinct values of ``group`` (sorted); each ``z`` is taken per group and must not
        vary within a group. ``time`` names a second, crossed grouping factor (the period of a panel),
        coded the same way. Use :func:`groupfx.read_data` for the full validation of a user's table.

        Raises
        ------
        InputError
            If a column is missing or a ``z`` varies within a group.
        """
        x_names, z_names = _as_names(x), _as_names(z)
        needed = (y, *x_names, group, *z_names, *([time] if time else []))
        missing = [c for c in needed if c not in frame.columns]
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
        time_codes, time_labels = (None, None)
        if time:
            time_codes, time_labels = pd.factorize(frame[time], sort=True)
            time_codes, time_labels = np.asarray(time_codes, dtype=np.int64), np.asarray(time_labels)
        return cls(
            y=frame[y].to_numpy(),
            x=frame[list(x_names)].to_numpy(dtype=float).reshape(len(frame), len(x_names)),
            group=codes,
            z=z_per_group,
            group_labels=np.asarray(labels),
            names={"y": y, "group": group}
            | ({"trials": trials} if trials else {})
            | ({"exposure": exposure} if exposure else {})
            | ({"time": time} if time else {}),
            x_names=x_names,
            z_names=z_names,
            trials=frame[trials].to_numpy() if trials else None,
            exposure=frame[exposure].to_numpy(dtype=float) if exposure else None,
            time=time_codes,
            time_labels=time_labels,
        )
