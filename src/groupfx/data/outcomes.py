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
    """

    name: str
    invalid: Callable[[np.ndarray], np.ndarray]
    requirement: str


OUTCOME_RULES: dict[str, OutcomeRule] = {
    rule.name: rule
    for rule in (
        OutcomeRule(
            "bernoulli", lambda y: ~np.isin(y, (0, 1)),
            "must be 0 or 1 for the Bernoulli family; recode it to 0/1",
        ),
        OutcomeRule(
            "binomial", lambda y: (y < 0) | (y != np.round(y)),
            "must be a non-negative integer count of successes for the Binomial family",
        ),
        OutcomeRule(
            "poisson", lambda y: (y < 0) | (y != np.round(y)),
            "must be a non-negative integer count for the Poisson family",
        ),
        OutcomeRule("gaussian", lambda y: ~np.isfinite(y), "must be a finite number for the Gaussian family"),
    )
}  # fmt: skip
"""The rules by family name, in the order the families are offered."""


def outcome_rule(family: object) -> OutcomeRule:
    """The rule of ``family`` (a name, or anything with ``name``, ``invalid`` and ``requirement`` such as a
    :class:`groupfx.models.families.Family`), with a clear error for unknown names."""
    if not isinstance(family, str) and all(hasattr(family, a) for a in ("name", "invalid", "requirement")):
        return OutcomeRule(family.name, family.invalid, family.requirement)
    try:
        return OUTCOME_RULES[family]
    except KeyError:
        raise InputError(
            f"Unknown family {shown(family)}; choose from: {', '.join(OUTCOME_RULES)}."
        ) from None
