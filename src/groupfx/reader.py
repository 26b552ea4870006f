"""Read a user's table (CSV, Parquet or DataFrame) into validated :class:`~groupfx.data.GroupedData`.

Every check runs before any model is built, and each failure is one :class:`~groupfx.errors.InputError`
line that names the column, the first offending rows (data rows counted from 1, header excluded) and the
fix. Problems that do not stop a fit (groups of one unit, groups whose outcome never varies, very small
groups) are :class:`DataWarning` warnings with counts.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from groupfx.data import GroupedData
from groupfx.errors import InputError
from groupfx.families import get_family

SHOW_ROWS = 5
SMALL_GROUP = 5
"""Median group size below which the observed group mean is a noisy proxy for U (Mundlak)."""


class DataWarning(UserWarning):
    """A property of the data that weakens some strategies without stopping the fit."""


@dataclass(frozen=True)
class Columns:
    """Which column plays which role.

    Parameters
    ----------
    y, x, group, z : str
        Column names of the outcome, the unit-level variable, the group and the group-level covariate.
    trials : str, optional
        Column of the number of trials (Binomial family).
    exposure : str, optional
        Column of the exposure (Poisson family).
    """

    y: str
    x: str
    group: str
    z: str
    trials: str | None = None
    exposure: str | None = None

    def roles(self) -> dict[str, str]:
        """Column by role, ``{"y": ..., "x": ..., ...}``, in the order they are checked."""
        roles = {"y": self.y, "x": self.x, "group": self.group, "z": self.z}
        extra = {
            role: column for role, column in (("trials", self.trials), ("exposure", self.exposure)) if column
        }
        return roles | extra


def _rows(mask: np.ndarray | pd.Series) -> str:
    positions = np.flatnonzero(np.asarray(mask)) + 1
    shown = ", ".join(map(str, positions[:SHOW_ROWS]))
    more = f" and {positions.size - SHOW_ROWS} more" if positions.size > SHOW_ROWS else ""
    return f"row{'s' if positions.size > 1 else ''} {shown}{more}"


def load_table(source: str | Path | pd.DataFrame) -> pd.DataFrame:
    """Read a CSV or Parquet file (by its suffix), or take a DataFrame as it is.

    Raises
    ------
    InputError
        If the file is missing, of another type, unreadable or empty.
    """
    if isinstance(source, pd.DataFrame):
        frame = source
        name = "the DataFrame"
    else:
        path = Path(source)
        name = str(path)
        if not path.is_file():
            raise InputError(
                f"{path} does not exist or is not a file; give the path of a CSV or Parquet file."
            )
        suffix = path.suffix.lower()
        if suffix not in {".csv", ".parquet", ".pq"}:
            raise InputError(f"{path} is neither .csv nor .parquet; save the table in one of those formats.")
        if path.stat().st_size == 0:
            raise InputError(f"{path} is empty; give a table with a header and at least one row per unit.")
        try:
            frame = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
        except Exception as error:  # the readers raise many types; the message is what matters
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise InputError(f"{path} could not be read as {suffix[1:].upper()}: {reason}") from None
    if frame.shape[0] == 0:
        raise InputError(f"{name} has no rows; give at least one row per unit.")
    return frame.reset_index(drop=True)


def _numeric(frame: pd.DataFrame, column: str, role: str) -> pd.Series:
    values = frame[column]
    if pd.api.types.is_bool_dtype(values):
        return values.astype(float)
    converted = pd.to_numeric(values, errors="coerce")
    bad = converted.isna() & values.notna()
    if bad.any():
        examples = ", ".join(repr(v) for v in values[bad].unique()[:3])
        raise InputError(
            f"Column {column!r} ({role}) is not numeric: {_rows(bad)} hold {examples}; convert or drop them."
        )
    return converted.astype(float)


def read_data(
    source: str | Path | pd.DataFrame,
    *,
    y: str,
    x: str,
    group: str,
    z: str,
    family: str = "bernoulli",
    trials: str | None = None,
    exposure: str | None = None,
    dropna: bool = False,
) -> GroupedData:
    """Read and validate a table with one row per unit.

    Parameters
    ----------
    source : str, pathlib.Path or pandas.DataFrame
        A ``.csv`` or ``.parquet`` file, or a DataFrame.
    y : str
        Outcome column: 0 or 1 (Bernoulli), a count (Poisson) or a number (Gaussian).
    x : str
        Unit-level variable whose effect is wanted.
    group : str
        Group column; labels may be strings or numbers and are kept in every output.
    z : str
        Group-level covariate: constant within each group.
    family : str
        ``bernoulli`` (default), ``binomial``, ``poisson`` or ``gaussian``: decides what ``y`` may hold.
    trials : str, optional
        Column of the number of trials per unit; required by (and only by) the binomial family.
    exposure : str, optional
        Column of the exposure per unit for the poisson family (an offset: the expected count is
        exposure times exp(eta)).
    dropna : bool
        Drop rows with a missing or infinite value in these columns (and warn how many) instead of
        refusing them.

    Returns
    -------
    GroupedData

    Raises
    ------
    InputError
        For any problem that stops a fit, with the column, rows and fix in the message.

    Warns
    -----
    DataWarning
        For groups of one unit, groups whose y never varies, and very small groups.
    """
    outcome = get_family(family)
    if (outcome.name == "binomial") != (trials is not None):
        raise InputError(
            "The binomial family needs the number of trials per unit: pass --trials COLUMN."
            if trials is None
            else "--trials is used by the binomial family only; drop it or pass --family binomial."
        )
    if exposure is not None and outcome.name != "poisson":
        raise InputError("--exposure is used by the poisson family only; drop it or pass --family poisson.")
    frame = load_table(source)
    columns = Columns(y=y, x=x, group=group, z=z, trials=trials, exposure=exposure)
    roles = {"y": "outcome", "x": "unit-level variable", "group": "group", "z": "group-level covariate",
             "trials": "number of trials", "exposure": "exposure"}  # fmt: skip
    for role, column in columns.roles().items():
        if column not in frame.columns:
            available = ", ".join(map(str, frame.columns[:20]))
            raise InputError(
                f"Column {column!r} ({roles[role]}) is not in the table; its columns are: {available}."
                f" Pass an existing column as --{role}."
            )
    numeric = {
        role: _numeric(frame, column, roles[role])
        for role, column in columns.roles().items()
        if role != "group"
    }
    missing = frame[group].isna().to_numpy().copy()
    for values in numeric.values():
        missing |= ~np.isfinite(values.to_numpy())
    if missing.any():
        if not dropna:
            role, column = next(
                (r, c)
                for r, c in columns.roles().items()
                if (frame[c].isna() if r == "group" else ~np.isfinite(numeric[r])).any()
            )
            bad = frame[column].isna() if role == "group" else ~np.isfinite(numeric[role])
            raise InputError(
                f"Column {column!r} has missing or infinite values in {_rows(bad)}; fill them, or pass"
                f" --dropna (dropna=True) to drop the {int(missing.sum())} incomplete rows."
            )
        warnings.warn(
            f"Dropped {int(missing.sum())} of {len(frame)} rows with missing or infinite values.",
            DataWarning,
            stacklevel=2,
        )
        keep = ~missing
        frame = frame[keep].reset_index(drop=True)
        numeric = {role: values[keep].reset_index(drop=True) for role, values in numeric.items()}
        if frame.empty:
            raise InputError("No rows are left after dropping the incomplete ones; fill the missing values.")
    invalid = outcome.invalid(numeric["y"].to_numpy())
    if invalid.any():
        examples = ", ".join(map(str, numeric["y"][invalid].unique()[:3]))
        raise InputError(f"Column {y!r} (outcome) {outcome.requirement}: {_rows(invalid)} hold {examples}.")
    if trials is not None:
        count = numeric["trials"]
        bad = (count < 1) | (count != np.round(count))
        if bad.any():
            raise InputError(
                f"Column {trials!r} (number of trials) must hold positive integers: {_rows(bad)} do not."
            )
        above = numeric["y"] > count
        if above.any():
            raise InputError(
                f"Column {y!r} (outcome) exceeds {trials!r} in {_rows(above)}; successes cannot"
                " outnumber trials."
            )
    if exposure is not None:
        not_positive = numeric["exposure"] <= 0
        if not_positive.any():
            raise InputError(
                f"Column {exposure!r} (exposure) must be positive: {_rows(not_positive)} are not; drop those"
                " units or correct their exposure."
            )
    if outcome.name != "gaussian":
        numeric["y"] = numeric["y"].astype(np.int64)
    clean = pd.DataFrame({y: numeric["y"], x: numeric["x"], group: frame[group], z: numeric["z"]})
    codes, labels = pd.factorize(clean[group], sort=True)
    if len(labels) < 2:
        raise InputError(
            f"Column {group!r} holds {len(labels)} group; group-level confounding needs at least 2 groups."
        )
    z_first = clean.groupby(codes)[z].transform("first")
    varying = clean[z] != z_first
    if varying.any():
        first_group = labels[codes[np.flatnonzero(varying)[0]]]
        raise InputError(
            f"Column {z!r} (group-level covariate) varies within group {first_group!r} ({_rows(varying)});"
            " it must be constant within each group: use one value per group, or model it as x."
        )
    x_spread = clean.groupby(codes)[x].agg(lambda v: v.max() - v.min()).to_numpy()
    if not (x_spread > 0).any():
        raise InputError(
            f"Column {x!r} (unit-level variable) never varies within any group, so its within-group effect"
            " is not identified; use a variable that changes between units of the same group."
        )
    if trials is not None:
        clean[trials] = numeric["trials"].astype(np.int64)
    if exposure is not None:
        clean[exposure] = numeric["exposure"]
    data = GroupedData.from_frame(clean, y=y, x=x, group=group, z=z, trials=trials, exposure=exposure)
    _warn_weak_groups(data, binary=outcome.name == "bernoulli")
    return data


def _warn_weak_groups(data: GroupedData, binary: bool) -> None:
    sizes = data.group_sizes
    singletons = int((sizes == 1).sum())
    if singletons:
        warnings.warn(
            f"{singletons} of {data.n_groups} groups have one unit: they carry no within-group information.",
            DataWarning,
            stacklevel=3,
        )
    ones = np.bincount(data.group, weights=data.y, minlength=data.n_groups)
    constant = int(((ones == 0) | (ones == sizes)).sum()) if binary else 0
    if constant:
        warnings.warn(
            f"{constant} of {data.n_groups} groups have y all 0 or all 1: under fixed effects they carry no"
            " within-group information and their intercepts are set by the prior.",
            DataWarning,
            stacklevel=3,
        )
    if np.median(sizes) < SMALL_GROUP:
        warnings.warn(
            f"The median group has {np.median(sizes):g} units: the observed group mean of x is a noisy proxy"
            " for the group confounder; prefer the latent Mundlak model to the observed-mean one.",
            DataWarning,
            stacklevel=3,
        )
