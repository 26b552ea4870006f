"""Model formulas such as ``"y ~ x1 + x2 + z | group"``, parsed by formulaic.

The left side names the outcome, the right side's first part the covariates and its second part, after
``|``, the group column, or the group and a crossed factor (``y ~ x | person + year``: a panel's unit and
period, whose effects the models absorb both). Covariates may use formulaic's transforms
(``np.log(income)``, ``C(region)``, interactions); each resulting column is sorted into a role by the
data: a column constant within every group is a group-level covariate z, any other is a unit-level variable
x, whose within-group effect the models estimate. (A column constant within every group has no
within-group effect to estimate, so this is the only role it can take.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from formulaic import Formula, model_matrix
from formulaic.errors import FormulaicError

from groupfx.errors import InputError


@dataclass(frozen=True)
class FormulaTerms:
    """What a formula asks for, evaluated on a table.

    Attributes
    ----------
    table : pandas.DataFrame
        One column per role: the outcome, each covariate column of the model matrix, the group (and the
        extra columns passed through), in the order of the source rows.
    y, group : str
        Names of the outcome and group columns in ``table``.
    time : str or None
        The second, crossed grouping factor after ``|`` (``| unit + year``), or None.
    x, z : tuple of str
        Unit-level variables and group-level covariates, named as formulaic names the columns.
    """

    table: pd.DataFrame
    y: str
    group: str
    x: tuple[str, ...]
    z: tuple[str, ...]
    time: str | None = None


def _bad_formula(formula: str, reason: str) -> InputError:
    return InputError(
        f"Cannot read the formula {formula!r}: {reason}. Write it as 'y ~ x1 + x2 + z | group' (or"
        " '| group + year' for a panel)."
    )


def parse_formula(formula: str, frame: pd.DataFrame, keep: tuple[str, ...] = ()) -> FormulaTerms:
    """Evaluate ``formula`` on ``frame`` and sort the covariates into unit-level x and group-level z.

    Parameters
    ----------
    formula : str
        ``"outcome ~ covariates | group"`` (or ``| group + period``); covariates in formulaic's grammar (no
        intercept needed: every model has its own).
    frame : pandas.DataFrame
        The table, one row per unit.
    keep : tuple of str
        Further columns to carry into the result unchanged (trials, exposure).

    Returns
    -------
    FormulaTerms

    Raises
    ------
    InputError
        If the formula cannot be parsed, lacks the ``| group`` part, names a column the table lacks, or
        has a left side that is not one column.
    """
    try:
        parsed = Formula(formula)
    except FormulaicError as error:
        raise _bad_formula(formula, str(error).splitlines()[0].rstrip(".")) from None
    if not hasattr(parsed, "lhs") or not isinstance(parsed.rhs, tuple) or len(parsed.rhs) != 2:
        raise _bad_formula(formula, "it needs an outcome, '~', the covariates, '|' and the group column")
    group_terms = [str(term) for term in parsed.rhs[1] if str(term) != "1"]
    if not 1 <= len(group_terms) <= 2 or any(term not in frame.columns for term in group_terms):
        raise _bad_formula(
            formula,
            "after '|' give one column of the table as the group, or two (group + period) for a panel"
            f" (got {' + '.join(group_terms)!r})",
        )
    group = group_terms[0]
    time = group_terms[1] if len(group_terms) == 2 else None
    try:
        outcome = model_matrix(str(parsed.lhs).strip() + " - 1", frame, na_action="ignore")
        covariates = model_matrix(str(parsed.rhs[0]), frame, na_action="ignore")
    except FormulaicError as error:
        reason = str(error).splitlines()[0].replace("Unable to evaluate factor", "no column or function")
        raise _bad_formula(formula, reason.rstrip(".")) from None
    if outcome.shape[1] != 1:
        raise _bad_formula(formula, "its left side must be one numeric column")
    covariates = covariates.drop(columns=["Intercept"], errors="ignore")
    if covariates.shape[1] == 0:
        raise _bad_formula(formula, "give at least one covariate before '|'")
    y = str(outcome.columns[0])
    table = pd.DataFrame({y: np.asarray(outcome.iloc[:, 0])})
    for name in covariates.columns:
        table[str(name)] = np.asarray(covariates[name], dtype=float)
    table[group] = frame[group].to_numpy()
    if time is not None:
        table[time] = frame[time].to_numpy()
    for column in keep:
        if column not in table.columns and column in frame.columns:
            table[column] = frame[column].to_numpy()
    codes = pd.factorize(table[group])[0]
    names = [str(name) for name in covariates.columns]
    varies = {
        name: bool((table.groupby(codes)[name].agg(lambda v: v.max() - v.min()) > 0).any()) for name in names
    }
    return FormulaTerms(
        table=table,
        y=y,
        group=group,
        x=tuple(name for name in names if varies[name]),
        z=tuple(name for name in names if not varies[name]),
        time=time,
    )
