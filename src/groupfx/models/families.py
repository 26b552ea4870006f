"""Outcome families: one frozen object per family holding everything that is family-specific.

=========== ============== ===================================== ==========================
family      link           likelihood                            y
=========== ============== ===================================== ==========================
bernoulli   logit          Bernoulli(invlogit(eta))              0 or 1
binomial    logit          Binomial(trials, invlogit(eta))       successes 0 .. trials
poisson     log            Poisson(exposure * exp(eta))          counts 0, 1, 2, ...
gaussian    identity       Normal(eta, sigma_y)                  any finite number
=========== ============== ===================================== ==========================

A :class:`Family` carries its link and inverse link, what y may hold (its rule from
:mod:`groupfx.data.outcomes`, which stays below the models because the reader checks y with it), the PyMC
likelihood, the replicate draws of the predictive checks, the words the report uses, the code of the fused
kernels and the name of its frequentist within estimator. The other modules ask the object, never its
name: adding a family is one more entry here (and its rule, kernel branch and estimator where it needs new
ones).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pymc as pm

from groupfx.data.outcomes import OUTCOME_RULES, OutcomeRule
from groupfx.errors import InputError, shown
from groupfx.models.priors import Prior

OUTCOME = "y_obs"
"""Name of the outcome variable in every model; its pointwise log-likelihood is what LOO compares."""

POISSON_CAP = 1e15
"""Largest expected count a replicated Poisson draw takes (NumPy refuses much larger ones)."""


def _inverse_logit(eta: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-eta))


def _logit(mean: np.ndarray) -> np.ndarray:
    return np.log(mean) - np.log1p(-mean)


def _identity(values: np.ndarray) -> np.ndarray:
    return values


def _draw_bernoulli(mean, rng, trials, sigma_y) -> np.ndarray:
    return (rng.random(mean.shape) < mean).astype(float)


def _draw_binomial(mean, rng, trials, sigma_y) -> np.ndarray:
    return rng.binomial(trials, mean).astype(float)


def _draw_poisson(mean, rng, trials, sigma_y) -> np.ndarray:
    # a wide prior can put exp(eta) beyond what a Poisson draw takes: cap it there
    return rng.poisson(np.minimum(np.nan_to_num(mean, posinf=POISSON_CAP), POISSON_CAP)).astype(float)


def _draw_normal(mean, rng, trials, sigma_y) -> np.ndarray:
    return rng.normal(mean, sigma_y)


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


@dataclass(frozen=True)
class Family:
    """An outcome family: everything the models, kernels, checks, cross-check and report ask of it.

    Attributes
    ----------
    name : str
        ``bernoulli``, ``binomial``, ``poisson`` or ``gaussian``.
    link : str
        The link of eta to the mean of y, in words (``logit``, ``log``, ``identity``).
    scale : str
        What the coefficients measure, for tables and reports.
    outcome_scale : str
        What the expected outcome is (``probability``, ``expected count``, ``mean``): the effects' scale.
    outcome : callable
        The PyMC likelihood: ``outcome(eta, data, priors)`` creates the observed variable ``y_obs`` in the
        current model from the model's data containers (``data["y"]``, ``data["trials"]`` for the Binomial,
        ``data["log_exposure"]`` for the Poisson when it has one).
    rule : OutcomeRule
        What y may hold (:data:`groupfx.data.outcomes.OUTCOME_RULES`); :attr:`invalid`, :attr:`requirement`,
        :attr:`binary`, :attr:`needs_trials` and :attr:`takes_exposure` read it.
    inverse : callable
        The inverse link on NumPy arrays, eta to the expected outcome (per trial for the Binomial).
    linked : callable
        The link on NumPy arrays, expected outcome to eta.
    draw : callable
        ``draw(mean, rng, trials, sigma_y)``: replicated y given its expected outcome; use :meth:`replicate`.
    noise_parameters : tuple of str
        The likelihood's own parameters beyond eta (``("sigma_y",)`` for the Gaussian), in the kernels'
        order: they close the fused kernels' parameter vector.
    kernel_code : int
        The family's code in the fused kernels (:mod:`groupfx.engines.unit_pass` branches on it).
    distribution : str
        The name of the PyMC distribution of ``y_obs`` (its random variable's ``op.name``).
    mean_input : int
        Position of the mean parameter among the inputs of that random variable's node.
    within_estimator : str
        The key of the frequentist within-group estimator in :mod:`groupfx.results.crosscheck`.
    """

    name: str
    link: str
    scale: str
    outcome_scale: str
    outcome: Callable[[object, object, Mapping[str, Prior]], None]
    rule: OutcomeRule
    inverse: Callable[[np.ndarray], np.ndarray]
    linked: Callable[[np.ndarray], np.ndarray]
    draw: Callable[..., np.ndarray]
    noise_parameters: tuple[str, ...]
    kernel_code: int
    distribution: str
    mean_input: int
    within_estimator: str

    @property
    def invalid(self) -> Callable[[np.ndarray], np.ndarray]:
        """``invalid(y) -> mask`` of the values this family cannot take."""
        return self.rule.invalid

    @property
    def requirement(self) -> str:
        """What y must hold, as the end of an error message."""
        return self.rule.requirement

    @property
    def binary(self) -> bool:
        """Whether y is 0 or 1."""
        return self.rule.binary

    @property
    def needs_trials(self) -> bool:
        """Whether each unit needs its number of trials."""
        return self.rule.needs_trials

    @property
    def takes_exposure(self) -> bool:
        """Whether the family takes an exposure per unit (an offset log(exposure) in eta)."""
        return self.rule.takes_exposure

    @property
    def has_noise_scale(self) -> bool:
        """Whether the likelihood has a scale of its own (``sigma_y``)."""
        return bool(self.noise_parameters)

    def replicate(
        self,
        mean: np.ndarray,
        rng: np.random.Generator,
        trials: np.ndarray | None = None,
        sigma_y: np.ndarray | float | None = None,
    ) -> np.ndarray:
        """Replicated outcomes given their expected outcome, as floats of ``mean``'s shape.

        Parameters
        ----------
        mean : numpy.ndarray
            The expected outcome (per trial for the Binomial), any shape, e.g. (draws, units).
        rng : numpy.random.Generator
            The source of randomness.
        trials : numpy.ndarray, optional
            Trials per unit, broadcastable against ``mean`` (Binomial).
        sigma_y : numpy.ndarray or float, optional
            The noise scale, broadcastable against ``mean`` (Gaussian).

        Returns
        -------
        numpy.ndarray
        """
        return self.draw(mean, rng, trials, sigma_y)

    def __reduce__(self):
        """Pickled by name (its rule's functions are lambdas): a worker process gets the same object."""
        return get_family, (self.name,)


BERNOULLI = Family(
    "bernoulli", "logit", "log-odds of y = 1", "probability", _bernoulli, OUTCOME_RULES["bernoulli"],
    _inverse_logit, _logit, _draw_bernoulli, (), 0, "bernoulli", 2, "conditional_logit",
)  # fmt: skip
BINOMIAL = Family(
    "binomial", "logit", "log-odds of a success", "probability", _binomial, OUTCOME_RULES["binomial"],
    _inverse_logit, _logit, _draw_binomial, (), 1, "binomial", 3, "binary_expansion",
)  # fmt: skip
POISSON = Family(
    "poisson", "log", "log of the expected count", "expected count", _poisson, OUTCOME_RULES["poisson"],
    np.exp, np.log, _draw_poisson, (), 2, "poisson", 2, "conditional_poisson",
)  # fmt: skip
GAUSSIAN = Family(
    "gaussian", "identity", "mean of y", "mean", _gaussian, OUTCOME_RULES["gaussian"],
    _identity, _identity, _draw_normal, ("sigma_y",), 3, "normal", 2, "panel_ols",
)  # fmt: skip

FAMILIES: dict[str, Family] = {family.name: family for family in (BERNOULLI, BINOMIAL, POISSON, GAUSSIAN)}
"""The families by name, in the order they are offered."""


def get_family(name: str | Family) -> Family:
    """Look a family up by name (a :class:`Family` is returned as it is), with a clear error for unknown
    names."""
    if isinstance(name, Family):
        return name
    try:
        return FAMILIES[name]
    except (KeyError, TypeError):
        raise InputError(f"Unknown family {shown(name)}; choose from: {', '.join(FAMILIES)}.") from None


def family_of_outcome(op_name: str) -> Family:
    """The family whose likelihood is the PyMC distribution named ``op_name`` (``y_obs``'s ``op.name``)."""
    for family in FAMILIES.values():
        if family.distribution == op_name:
            return family
    raise ValueError(f"no family has the likelihood {op_name!r}")
