"""What the outcome y may hold under each family: the part of a family that the data must satisfy.

The reader checks a table's y against these rules before any model is built; each family of
:mod:`groupfx.models.families` (link, likelihood) takes its rule from here, so the data layer never needs the
model layer to know whether a y is valid.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from groupfx.errors import InputError, shown


@dataclass(frozen=True)
class OutcomeRule:
    """What y may hold under one family.

    Attributes
    ----------
    name : str
        The family's name: ``bernoulli``, ``binomial``, ``poisson`` or ``gaussian``.
    invalid : callable
        ``invalid(y) -> mask`` of the values this family cannot take.
    requirement : str
        What y must hold, as the end of an error message.
    variation : str
        What a y that is worth modelling holds, as the end of "the family needs ..." (a y that never varies
        is refused).
    integer : bool
        Whether y holds whole numbers (the reader stores them as integers).
    binary : bool
        Whether y is 0 or 1 (the reader's warnings about groups whose y never varies).
    needs_trials : bool
        Whether each unit needs its number of trials (``--trials``), which no other family takes.
    takes_exposure : bool
        Whether the family takes an exposure per unit (``--exposure``), which no other family takes.
    constant_positive_fits : bool
        Whether a y that is the same positive value in every row still has something to fit (a Poisson
        rate); for the other families a constant y has nothing to explain.
    """

    name: str
    invalid: Callable[[np.ndarray], np.ndarray]
    requirement: str
    variation: str
    integer: bool = True
    binary: bool = False
    needs_trials: bool = False
    takes_exposure: bool = False
    constant_positive_fits: bool = False


OUTCOME_RULES: dict[str, OutcomeRule] = {
    rule.name: rule
    for rule in (
        OutcomeRule(
            "bernoulli", lambda y: ~np.isin(y, (0, 1)),
            "must be 0 or 1 for the Bernoulli family; recode it to 0/1",
            "both 0s and 1s", binary=True,
        ),
        OutcomeRule(
            "binomial", lambda y: (y < 0) | (y != np.round(y)),
            "must be a non-negative integer count of successes for the Binomial family",
            "successes and failures", needs_trials=True,
        ),
        OutcomeRule(
            "poisson", lambda y: (y < 0) | (y != np.round(y)),
            "must be a non-negative integer count for the Poisson family",
            "at least one positive count", takes_exposure=True, constant_positive_fits=True,
        ),
        OutcomeRule(
            "gaussian", lambda y: ~np.isfinite(y), "must be a finite number for the Gaussian family",
            "an outcome that varies", integer=False,
        ),
    )
}  # fmt: skip
"""The rules by family name, in the order the families are offered."""


def outcome_rule(family: object) -> OutcomeRule:
    """The rule of ``family`` (a name, or anything holding its rule as ``rule`` such as a
    :class:`groupfx.models.families.Family`), with a clear error for unknown names."""
    if isinstance(getattr(family, "rule", None), OutcomeRule):
        return family.rule
    try:
        return OUTCOME_RULES[family]
    except KeyError:
        raise InputError(
            f"Unknown family {shown(family)}; choose from: {', '.join(OUTCOME_RULES)}."
        ) from None
