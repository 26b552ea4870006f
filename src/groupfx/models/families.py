"""Outcome families: the likelihood of y given the linear predictor eta (what y may hold: data/outcomes.py).

=========== ============== ===================================== ==========================
family      link           likelihood                            y
=========== ============== ===================================== ==========================
bernoulli   logit          Bernoulli(invlogit(eta))              0 or 1
binomial    logit          Binomial(trials, invlogit(eta))       successes 0 .. trials
poisson     log            Poisson(exposure * exp(eta))          counts 0, 1, 2, ...
gaussian    identity       Normal(eta, sigma_y)                  any finite number
=========== ============== ===================================== ==========================
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pymc as pm

from groupfx.data.outcomes import OUTCOME_RULES
from groupfx.errors import InputError, shown
from groupfx.models.priors import Prior

OUTCOME = "y_obs"
"""Name of the outcome variable in every model; its pointwise log-likelihood is what LOO compares."""


@dataclass(frozen=True)
class Family:
    """An outcome family.

    Attributes
    ----------
    name : str
        ``bernoulli``, ``poisson`` or ``gaussian``.
    link : str
        The link of eta to the mean of y, in words.
    scale : str
        What the coefficients measure, for tables and reports.
    outcome : callable
        ``outcome(eta, data, priors)`` creates the observed variable ``y_obs`` in the current model from the
        model's data containers (``data["y"]``, and ``data["trials"]`` for the Binomial family).
    invalid : callable
        ``invalid(y) -> mask`` of the values this family cannot take, and ``requirement`` says what it needs
        (both from :data:`groupfx.data.outcomes.OUTCOME_RULES`).
    requirement : str
        What y must hold, as the end of an error message.
    """

    name: str
    link: str
    scale: str
    outcome: Callable[[object, object, Mapping[str, Prior]], None]
    invalid: Callable[[np.ndarray], np.ndarray]
    requirement: str


def _rule(name: str) -> tuple:
    """``invalid, requirement`` of a family: what the data layer says y may hold under it."""
    rule = OUTCOME_RULES[name]
    return rule.invalid, rule.requirement


def _bernoulli(eta, data, priors) -> None:
    pm.Bernoulli(OUTCOME, logit_p=eta, observed=data["y"], dims="unit")


def _binomial(eta, data, priors) -> None:
    pm.Binomial(OUTCOME, n=data["trials"], logit_p=eta, observed=data["y"], dims="unit")


def _poisson(eta, data, priors) -> None:
    offset = data.get("log_exposure")  # log(exposure) enters eta with coefficient 1
    mu = pm.math.exp(eta if offset is None else eta + offset)
    pm.Poisson(OUTCOME, mu=mu, observed=data["y"], dims="unit")


def _gaussian(eta, data, priors) -> None:
    sigma_y = priors["sigma_y"].create("sigma_y")
    pm.Normal(OUTCOME, mu=eta, sigma=sigma_y, observed=data["y"], dims="unit")


FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        Family("bernoulli", "logit", "log-odds of y = 1", _bernoulli, *_rule("bernoulli")),
        Family("binomial", "logit", "log-odds of a success", _binomial, *_rule("binomial")),
        Family("poisson", "log", "log of the expected count", _poisson, *_rule("poisson")),
        Family("gaussian", "identity", "mean of y", _gaussian, *_rule("gaussian")),
    )
}
"""The families by name."""


def get_family(name: str | Family) -> Family:
    """Look a family up by name, with a clear error for unknown names."""
    if isinstance(name, Family):
        return name
    try:
        return FAMILIES[name]
    except KeyError:
        raise InputError(f"Unknown family {shown(name)}; choose from: {', '.join(FAMILIES)}.") from None
