"""Read a user's table (CSV, Parquet or DataFrame) into validated :class:`~groupfx.data.grouped.GroupedData`.

Every check runs before any model is built, and each failure is one :class:`~groupfx.errors.InputError`
line that names the column, the first offending rows (data rows counted from 1, header excluded) and the
fix. Problems that do not stop a fit (groups of one unit, groups whose outcome never varies, very small
groups) are :class:`DataWarning` warnings with counts.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from groupfx.data.formula import parse_formula
from groupfx.data.grouped import GroupedData, two_way_residual
from groupfx.data.outcomes import OutcomeRule, outcome_rule
from groupfx.errors import InputError, shown

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
    y, group : str
        Column names of the outcome and the group.
    x, z : tuple of str
        Column names of the unit-level variables (at least one) and the group-level covariates (any).
    trials : str, optional
        Column of the number of trials (Binomial family).
    exposure : str, optional
        Column of the exposure (Poisson family).
    time : str, optional
        Column of the period (a second grouping factor, crossed with the group).
    """

    y: str
    x: tuple[str, ...]
    group: str
    z: tuple[str, ...] = ()
    trials: str | None = None
    exposure: str | None = None
    time: str | None = None

    def roles(self) -> list[tuple[str, str]]:
        """``(role, column)`` pairs in checking order: y, each x, group, time, each z, trials, exposure."""
        pairs = [
            ("y", self.y),
            *(("x", c) for c in self.x),
            ("group", self.group),
            *((("time", self.time),) if self.time else ()),
            *(("z", c) for c in self.z),
        ]
        return pairs + [(role, c) for role, c in (("trials", self.trials), ("exposure", self.exposure)) if c]


def _rows(mask: np.ndarray | pd.Series) -> str:
    positions = np.flatnonzero(np.asarray(mask)) + 1
    listed = ", ".join(map(str, positions[:SHOW_ROWS]))
    more = f" and {positions.size - SHOW_ROWS} more" if positions.size > SHOW_ROWS else ""
    return f"row{'s' if positions.size > 1 else ''} {listed}{more}"


def _refuse_repeated(names: list, where: str) -> None:
    """Refuse a column name that appears more than once (unnamed, empty columns aside)."""
    positions: dict[object, list[int]] = {}
    for position, name in enumerate(names, start=1):
        positions.setdefault(name, []).append(position)
    for name, found in positions.items():
        if len(found) > 1 and name != "":
            raise InputError(
                f"Column {shown(name)} appears {len(found)} times in {where} (columns"
                f" {', '.join(map(str, found))}); give each column a unique name."
            )


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
            if suffix == ".csv":  # pandas renames a repeated name to x.1, so the header is read as it is
                header = pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False)
                _refuse_repeated(list(header.iloc[0]), f"the header of {path}")
                frame = pd.read_csv(path)
            else:  # a repeated name makes pandas fail with Arrow's words, so the schema is read first
                import pyarrow.parquet as pq

                _refuse_repeated(pq.read_schema(path).names, f"the columns of {path}")
                frame = pd.read_parquet(path)
        except InputError:
            raise
        except Exception as error:  # the readers raise many types; the message is what matters
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise InputError(f"{path} could not be read as {suffix[1:].upper()}: {reason}") from None
    _refuse_repeated(list(frame.columns), f"the columns of {name}")
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
        examples = ", ".join(shown(v) for v in values[bad].unique()[:3])
        raise InputError(
            f"Column {shown(column)} ({role}) is not numeric: {_rows(bad)} hold {examples}; convert or drop"
            " them."
        )
    return converted.astype(float)


def read_data(
    source: str | Path | pd.DataFrame,
    *,
    y: str | None = None,
    x: str | Sequence[str] | None = None,
    group: str | None = None,
    z: str | Sequence[str] | None = None,
    formula: str | None = None,
    family: str = "bernoulli",
    trials: str | None = None,
    exposure: str | None = None,
    time: str | None = None,
    dropna: bool = False,
) -> GroupedData:
    """Read and validate a table with one row per unit.

    Parameters
    ----------
    source : str, pathlib.Path or pandas.DataFrame
        A ``.csv`` or ``.parquet`` file, or a DataFrame.
    y : str
        Outcome column: 0 or 1 (Bernoulli), successes (Binomial), a count (Poisson) or a number (Gaussian).
    x : str or sequence of str
        Unit-level variables whose effects are wanted (one or more columns).
    group : str
        Group column; labels may be strings or numbers and are kept in every output.
    z : str or sequence of str, optional
        Group-level covariates, each constant within each group (none by default).
    formula : str, optional
        Instead of ``y``, ``x``, ``group`` and ``z``: a formula such as ``"y ~ x1 + x2 + z | group"``
        (formulaic's grammar, so transforms such as ``np.log(income)`` and ``C(region)`` work); covariates
        constant within every group become z, the others x (see :mod:`groupfx.data.formula`).
    family : str
        ``bernoulli`` (default), ``binomial``, ``poisson`` or ``gaussian``: decides what ``y`` may hold.
    trials : str, optional
        Column of the number of trials per unit; required by (and only by) the binomial family.
    exposure : str, optional
        Column of the exposure per unit for the poisson family (an offset: the expected count is
        exposure times exp(eta)).
    time : str, optional
        Column of the period, for panels (people or firms over years): a second grouping factor, crossed
        with ``group``, whose shocks the models absorb as they absorb the groups' (two-way fixed effects,
        crossed pooled intercepts, the two-way Mundlak device). Any crossed factor works. A formula gives it
        as ``"y ~ x | group + year"``.
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
    outcome = outcome_rule(family)
    if outcome.needs_trials != (trials is not None):
        raise InputError(
            "The binomial family needs the number of trials per unit: pass --trials COLUMN."
            if trials is None
            else "--trials is used by the binomial family only; drop it or pass --family binomial."
        )
    if exposure is not None and not outcome.takes_exposure:
        raise InputError("--exposure is used by the poisson family only; drop it or pass --family poisson.")
    frame = load_table(source)
    if formula is not None:
        if any(value is not None for value in (y, x, group, z)):
            raise InputError("Give either a formula or the columns (y, x, group, z), not both.")
        terms = parse_formula(formula, frame, keep=tuple(c for c in (trials, exposure, time) if c))
        if terms.time is not None and time is not None and terms.time != time:
            raise InputError(
                f"The formula names {shown(terms.time)} as the period and --time names {shown(time)}; give"
                " the period once."
            )
        frame, y, x, group, z = terms.table, terms.y, terms.x, terms.group, terms.z
        time = time or terms.time
        if not x:
            raise InputError(
                f"Every covariate in {shown(formula)} is constant within each group, so no within-group"
                " effect can be estimated; add a unit-level variable that varies within groups."
            )
    if y is None or group is None or not x:
        raise InputError(
            "Name the outcome, at least one unit-level variable and the group: --y, --x, --group."
        )
    x_columns = (x,) if isinstance(x, str) else tuple(x)
    z_columns = () if z is None else (z,) if isinstance(z, str) else tuple(z)
    columns = Columns(y=y, x=x_columns, group=group, z=z_columns, trials=trials, exposure=exposure, time=time)
    named = [column for _, column in columns.roles()]
    repeated = sorted({column for column in named if named.count(column) > 1})
    if repeated:
        raise InputError(f"Column {shown(repeated[0])} is given two roles; give each column one role.")
    roles = {"y": "outcome", "x": "unit-level variable", "group": "group", "z": "group-level covariate",
             "trials": "number of trials", "exposure": "exposure", "time": "period"}  # fmt: skip
    for role, column in columns.roles():
        if column not in frame.columns:
            available = ", ".join(map(str, frame.columns[:20]))
            raise InputError(
                f"Column {shown(column)} ({roles[role]}) is not in the table; its columns are: {available}."
                f" Pass an existing column as --{role}."
            )
    factors = ("group", "time")
    numeric = {
        column: _numeric(frame, column, roles[role])
        for role, column in columns.roles()
        if role not in factors
    }
    missing = frame[group].isna().to_numpy().copy()
    if time is not None:
        missing |= frame[time].isna().to_numpy()
    for values in numeric.values():
        missing |= ~np.isfinite(values.to_numpy())
    if missing.any():
        if not dropna:
            column = next(
                c
                for r, c in columns.roles()
                if (frame[c].isna() if r in factors else ~np.isfinite(numeric[c])).any()
            )
            bad = frame[column].isna() if column in (group, time) else ~np.isfinite(numeric[column])
            raise InputError(
                f"Column {shown(column)} has missing or infinite values in {_rows(bad)}; fill them, or pass"
                f" --dropna (dropna=True) to drop the {int(missing.sum())} incomplete rows."
            )
        warnings.warn(
            f"Dropped {int(missing.sum())} of {len(frame)} rows with missing or infinite values.",
            DataWarning,
            stacklevel=2,
        )
        keep = ~missing
        frame = frame[keep].reset_index(drop=True)
        numeric = {column: values[keep].reset_index(drop=True) for column, values in numeric.items()}
        if frame.empty:
            raise InputError("No rows are left after dropping the incomplete ones; fill the missing values.")
    invalid = outcome.invalid(numeric[y].to_numpy())
    if invalid.any():
        examples = ", ".join(str(_plain(v)) for v in pd.unique(frame[y].to_numpy()[invalid])[:3])
        raise InputError(
            f"Column {shown(y)} (outcome) {outcome.requirement}: {_rows(invalid)} hold {examples}."
        )
    if trials is not None:
        count = numeric[trials]
        bad = (count < 1) | (count != np.round(count))
        if bad.any():
            raise InputError(
                f"Column {shown(trials)} (number of trials) must hold positive integers: {_rows(bad)} do not."
            )
        above = numeric[y] > count
        if above.any():
            raise InputError(
                f"Column {shown(y)} (outcome) exceeds {shown(trials)} in {_rows(above)}; successes cannot"
                " outnumber trials."
            )
    if exposure is not None:
        not_positive = numeric[exposure] <= 0
        if not_positive.any():
            raise InputError(
                f"Column {shown(exposure)} (exposure) must be positive: {_rows(not_positive)} are not; drop"
                " those units or correct their exposure."
            )
    _refuse_no_variation(outcome, y, numeric[y].to_numpy(), frame[y].iloc[0],
                         trials, None if trials is None else numeric[trials].to_numpy())  # fmt: skip
    if outcome.integer:
        numeric[y] = numeric[y].astype(np.int64)
    if trials is not None:
        numeric[trials] = numeric[trials].astype(np.int64)
    clean = pd.DataFrame({group: frame[group], **({time: frame[time]} if time else {}), **numeric})
    codes, labels = pd.factorize(clean[group], sort=True)
    if len(labels) < 2:
        raise InputError(
            f"Column {shown(group)} holds {len(labels)} group; group-level confounding needs at least 2"
            " groups."
        )
    if time is not None and clean[time].nunique() < 2:
        raise InputError(
            f"Column {shown(time)} (period) holds one value; a second grouping factor needs at least 2"
            " periods (drop --time for one-way data)."
        )
    for column in z_columns:
        varying = clean[column] != clean.groupby(codes)[column].transform("first")
        if varying.any():
            first_group = labels[codes[np.flatnonzero(varying)[0]]]
            raise InputError(
                f"Column {shown(column)} (group-level covariate) varies within group {shown(first_group)}"
                f" ({_rows(varying)}); it must be constant within each group: use one value per group, or"
                " pass it as --x."
            )
    for column in x_columns:
        spread = clean.groupby(codes)[column].agg(lambda v: v.max() - v.min()).to_numpy()
        if not (spread > 0).any():
            raise InputError(
                f"Column {shown(column)} (unit-level variable) never varies within any group, so its"
                " within-group effect is not identified; pass it as --z (a group-level covariate) or use a"
                " variable that changes between units of the same group."
            )
    data = GroupedData.from_frame(
        clean, y=y, x=x_columns, group=group, z=z_columns, trials=trials, exposure=exposure, time=time
    )
    if data.two_way:
        _refuse_two_way_collinear(data)
    _warn_weak_groups(data, binary=outcome.binary)
    return data


def _refuse_two_way_collinear(data: GroupedData) -> None:
    """Refuse an x that is a group part plus a period part (age in a panel of years): two-way effects
    absorb it whole, so its within effect is not identified."""
    residual = two_way_residual(data.x, data.group, data.time)
    scale = np.maximum(np.abs(data.x - data.x.mean(axis=0)).max(axis=0), 1e-300)
    for k, name in enumerate(data.x_names):
        if np.abs(residual[:, k]).max() <= 1e-9 * scale[k]:
            raise InputError(
                f"Column {shown(name)} (unit-level variable) is the sum of a {data.names['group']} part and a"
                f" {data.names['time']} part (as age is in a yearly panel), so two-way effects absorb it and"
                " its effect is not identified; drop it, or drop --time for one-way effects."
            )


def _plain(value: object) -> object:
    return value.item() if isinstance(value, np.generic) else value


def _refuse_no_variation(
    outcome: OutcomeRule,
    y: str,
    values: np.ndarray,
    first: object,
    trials: str | None,
    counts: np.ndarray | None,
) -> None:
    """Refuse an outcome that never varies in the way its family needs: there is nothing to explain."""
    written = str(_plain(first))
    if outcome.needs_trials and counts is not None and (values == counts).all():
        what = f"equals {shown(trials)} in every row (every trial a success)"
    elif np.all(values == values[0]) and (not outcome.constant_positive_fits or values[0] == 0):
        what = f"is {written} in every row"
    else:
        return
    raise InputError(
        f"Column {shown(y)} (outcome) {what}, so there is nothing for the models to explain: the"
        f" {outcome.name} family needs {outcome.variation}; check that --y names the outcome."
    )


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
