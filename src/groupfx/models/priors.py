"""Named priors, overridable by name, each checked before any model is built.

A :class:`Prior` names a PyMC distribution and its parameters; the models look their priors up by the
parameter's name, so ``priors={"bxy": Prior("Normal", mu=0, sigma=2.5)}`` changes one prior and leaves the
others at their defaults.

Every prior is checked before the first second of compute, in three steps, each failure one line that names
the parameter, the argument and its value:

1. its arguments: real, finite numbers, each in its domain (positive scales, ``lower < upper``...), by name
   for the distributions people use (:data:`POSITIVE_ARGUMENTS`);
2. its fit to the parameter: a continuous, univariate, proper distribution, and one on positive values for
   the scale parameters of the models (:data:`SCALE_PARAMETERS`);
3. PyMC's own checks: one value is drawn from it and its log-density there must be finite (which catches
   whatever step 1 does not name, for any distribution).
"""

from __future__ import annotations

import math
import tomllib
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from numbers import Real
from pathlib import Path
from typing import Any

import numpy as np
import pymc as pm
from pymc.distributions.continuous import BoundedContinuous, PositiveContinuous, UnitContinuous

from groupfx.errors import InputError

POSITIVE_ARGUMENTS: dict[str, tuple[str, ...]] = {
    "Normal": ("sigma", "tau"),
    "HalfNormal": ("sigma", "tau"),
    "TruncatedNormal": ("sigma", "tau"),
    "LogNormal": ("sigma", "tau"),
    "SkewNormal": ("sigma", "tau"),
    "Exponential": ("lam", "scale"),
    "StudentT": ("nu", "sigma", "lam"),
    "HalfStudentT": ("nu", "sigma", "lam"),
    "SkewStudentT": ("a", "b", "sigma", "lam"),
    "Cauchy": ("beta",),
    "HalfCauchy": ("beta",),
    "Gamma": ("alpha", "beta", "mu", "sigma"),
    "InverseGamma": ("alpha", "beta", "mu", "sigma"),
    "Laplace": ("b",),
    "AsymmetricLaplace": ("b", "kappa"),
    "Beta": ("alpha", "beta", "sigma", "nu"),
    "Kumaraswamy": ("a", "b"),
    "Weibull": ("alpha", "beta"),
    "Logistic": ("s",),
    "Gumbel": ("beta",),
    "Moyal": ("sigma",),
    "ExGaussian": ("sigma", "nu"),
    "Wald": ("mu", "lam", "phi"),
    "Pareto": ("alpha", "m"),
    "VonMises": ("kappa",),
    "Rice": ("sigma",),
}
"""The arguments that must be positive, by distribution (checked by name; PyMC checks the rest)."""

BOUNDED = ("Uniform", "TruncatedNormal", "Triangular")
"""Distributions with ``lower`` and ``upper`` arguments, which must satisfy ``lower < upper``."""

SCALE_PARAMETERS: dict[str, str] = {
    "tau": "the spread of the group intercepts (a = abar + tau * e)",
    "sigma": "the within-group standard deviation of x",
    "sigma_y": "the standard deviation of y in the Gaussian family",
    "bux": "the standard deviation of the latent group mean of x (m ~ Normal(ax, bux))",
    "tau_t": "the spread of the period intercepts (f ~ ZeroSumNormal(tau_t))",
    "bvx": "the standard deviation of the latent period shift of x (w ~ ZeroSumNormal(bvx))",
}
"""The parameters the models use as standard deviations: their priors must put all their mass on >= 0."""

IMPROPER = {"Flat": "Normal(mu=0, sigma=10)", "HalfFlat": "HalfNormal(sigma=10)"}
"""Improper distributions, which nothing can be drawn from, and a wide proper prior to use instead."""


def _shown(value: Any) -> str:
    """A value as the user wrote it: ``-1``, ``0.5``, ``nan``, ``'abc'`` (no ``np.float64(...)``)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _distribution_class(distribution: str) -> type | None:
    found = getattr(pm, distribution, None) if isinstance(distribution, str) else None
    return found if isinstance(found, type) and issubclass(found, pm.Distribution) else None


def argument_problem(distribution: str, arguments: Mapping[str, Any]) -> str | None:
    """What is wrong with a distribution's name or arguments, without building anything, or None.

    Parameters
    ----------
    distribution : str
        Name of a PyMC distribution.
    arguments : mapping of str to object
        Its arguments.

    Returns
    -------
    str or None
        One clause such as ``"sigma must be positive (got -1)"``, or None when nothing is wrong.
    """
    if _distribution_class(distribution) is None:
        return (
            f"{_shown(distribution)} is not a PyMC distribution; use a name such as 'Normal' or 'HalfNormal'"
        )
    for name, value in arguments.items():
        if isinstance(value, bool | np.bool_) or not isinstance(value, Real):
            return f"{name} must be a number (one prior serves every covariate); got {_shown(value)}"
        if not math.isfinite(value):
            return f"{name} must be a finite number (got {_shown(value)})"
    for name in POSITIVE_ARGUMENTS.get(distribution, ()):
        if name in arguments and not arguments[name] > 0:
            return f"{name} must be positive (got {_shown(arguments[name])})"
    if "lower" in arguments and "upper" in arguments and not arguments["lower"] < arguments["upper"]:
        return (
            f"lower must be below upper (got lower = {_shown(arguments['lower'])},"
            f" upper = {_shown(arguments['upper'])})"
        )
    if distribution == "Triangular" and "c" in arguments:
        lower, upper = arguments.get("lower", 0), arguments.get("upper", 1)
        if not lower <= arguments["c"] <= upper:
            return (
                f"c must lie between lower = {_shown(lower)} and upper = {_shown(upper)}"
                f" (got {_shown(arguments['c'])})"
            )
    if distribution == "Beta" and "mu" in arguments:
        mu = arguments["mu"]
        if not 0 < mu < 1:
            return f"mu must lie strictly between 0 and 1 (got {_shown(mu)})"
        if "sigma" in arguments and not arguments["sigma"] < math.sqrt(mu * (1 - mu)):
            return (
                f"sigma must be below sqrt(mu * (1 - mu)) = {math.sqrt(mu * (1 - mu)):.4g} for mu ="
                f" {_shown(mu)} (got {_shown(arguments['sigma'])})"
            )
    if distribution in IMPROPER:
        return (
            f"{distribution} is improper, and groupfx draws from every prior for the prior predictive check;"
            f" use a wide proper prior such as {IMPROPER[distribution]}"
        )
    return None


@dataclass(frozen=True)
class Prior:
    """A PyMC distribution by name with its parameters.

    Parameters
    ----------
    distribution : str
        Name of a PyMC distribution, e.g. ``"Normal"``, ``"HalfNormal"``, ``"Exponential"``.
    **parameters
        Its parameters, e.g. ``mu=0, sigma=1``: real, finite numbers in their domains.

    Raises
    ------
    InputError
        If ``distribution`` is not a PyMC distribution or an argument is not a finite number in its domain
        (see :func:`argument_problem`).

    Examples
    --------
    >>> Prior("Normal", mu=0, sigma=2.5)
    Prior('Normal', mu=0, sigma=2.5)
    """

    distribution: str
    parameters: dict[str, Any] = field(default_factory=dict)

    def __init__(self, distribution: str, /, **parameters: Any) -> None:
        problem = argument_problem(distribution, parameters)
        if problem is not None:
            shown = ", ".join(f"{k}={_shown(v)}" for k, v in parameters.items())
            raise InputError(f"Prior {distribution}({shown}): {problem}.")
        object.__setattr__(self, "distribution", distribution)
        object.__setattr__(self, "parameters", dict(parameters))

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={_shown(v)}" for k, v in self.parameters.items())
        return f"Prior({self.distribution!r}, {params})"

    def create(self, name: str, **kwargs: Any) -> Any:
        """Create the random variable ``name`` in the current PyMC model."""
        return getattr(pm, self.distribution)(name, **self.parameters, **kwargs)

    def describe(self) -> str:
        """Short text such as ``Normal(mu=0, sigma=1)``."""
        params = ", ".join(f"{k}={_shown(v)}" for k, v in self.parameters.items())
        return f"{self.distribution}({params})"


DEFAULT_PRIORS: dict[str, Prior] = {
    "a0": Prior("Normal", mu=0, sigma=1),
    "a": Prior("Normal", mu=0, sigma=10),
    "abar": Prior("Normal", mu=0, sigma=1),
    "tau": Prior("Exponential", lam=1),
    "bxy": Prior("Normal", mu=0, sigma=1),
    "bzy": Prior("Normal", mu=0, sigma=1),
    "buy": Prior("Normal", mu=0, sigma=1),
    "bux": Prior("HalfNormal", sigma=1),
    "ax": Prior("Normal", mu=0, sigma=1),
    "sigma": Prior("Exponential", lam=1),
    "sigma_y": Prior("Exponential", lam=1),
    "at": Prior("Normal", mu=0, sigma=10),
    "tau_t": Prior("Exponential", lam=1),
    "bvy": Prior("Normal", mu=0, sigma=1),
    "bpy": Prior("Normal", mu=0, sigma=5),
    "bvx": Prior("HalfNormal", sigma=1),
}
"""Defaults as in the seed study; ``bux`` is half-normal so that the latent model's sign is identified;
``sigma_y`` is the Gaussian family's noise scale (an Exponential(1) suits outcomes on a unit scale). On
two-way data (a period beside the group): ``at`` the free period intercepts (fixed effects, relative to the
first period), ``tau_t`` the spread of the pooled ones, ``bvy`` the effect of the period's stand-in (its mean
of x, or the latent shift ``v``), ``bpy`` that of a group's shares of the periods (unbalanced panels,
Mundlak) and ``bvx`` the spread of the latent period shift of x."""


def _lowest_value(variable: Any, distribution: type) -> float:
    """The lower end of a continuous distribution's support (``-inf`` on the real line)."""
    if issubclass(distribution, PositiveContinuous | UnitContinuous):
        return 0.0
    if issubclass(distribution, BoundedContinuous):
        from pymc.distributions.transforms import _default_transform
        from pytensor.tensor.basic import get_underlying_scalar_constant_value

        lower, _ = _default_transform(variable.owner.op, variable).args_fn(*variable.owner.inputs)
        return -math.inf if lower is None else float(get_underlying_scalar_constant_value(lower))
    return -math.inf


def fit_problem(name: str, prior: Prior) -> str | None:
    """What makes ``prior`` unfit for the model parameter ``name``, without compiling anything, or None.

    The arguments (:func:`argument_problem`), PyMC's acceptance of them, a continuous univariate
    distribution, and for the scale parameters (:data:`SCALE_PARAMETERS`) a support on values >= 0.
    """
    problem = argument_problem(prior.distribution, prior.parameters)
    if problem is not None:
        return problem
    distribution = getattr(pm, prior.distribution)
    if issubclass(distribution, pm.Discrete):
        return (
            f"{prior.distribution} is discrete, but {name} is a continuous parameter; use a continuous"
            " distribution such as Normal or HalfNormal"
        )
    if not issubclass(distribution, pm.Continuous):
        return (
            f"{prior.distribution} is built from other distributions, which a prior here cannot name; use a"
            " univariate distribution such as Normal or HalfNormal"
        )
    try:
        variable = distribution.dist(**prior.parameters)
    except Exception as error:  # PyMC raises many types for bad arguments; the message is what matters
        return f"{prior.describe()} is not a valid prior ({_first_line(error)})"
    if getattr(variable.owner.op, "ndim_supp", 0) != 0:
        return (
            f"{prior.describe()} is multivariate; give a univariate distribution (one serves every covariate)"
        )
    if name in SCALE_PARAMETERS and _lowest_value(variable, distribution) < 0:
        fix = " (or set lower = 0)" if "lower" in prior.parameters or prior.distribution in BOUNDED else ""
        return (
            f"{prior.describe()} allows negative values, but {name} is {SCALE_PARAMETERS[name]} and must be"
            f" positive; use a distribution on positive values such as HalfNormal(sigma=1),"
            f" Exponential(lam=1) or HalfStudentT(nu=3, sigma=1){fix}"
        )
    return None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0].rstrip(".") if text else type(error).__name__


def sampling_problem(prior: Prior) -> str | None:
    """What PyMC finds wrong with ``prior`` when it draws one value and evaluates its log-density, or None.

    The general check behind the named ones of :func:`argument_problem`: it serves any distribution. It
    compiles two small functions (in PyTensor's fast-compile mode), once per distinct prior.
    """
    return _sampling_problem(prior.distribution, tuple(prior.parameters.items()))


@lru_cache(maxsize=256)
def _sampling_problem(distribution: str, arguments: tuple[tuple[str, Any], ...]) -> str | None:
    prior = Prior(distribution, **dict(arguments))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            variable = getattr(pm, distribution).dist(**prior.parameters)
            value = pm.draw(variable, random_seed=0, mode="FAST_COMPILE")
            logp = float(pm.logp(variable, value).eval(mode="FAST_COMPILE"))
        except Exception as error:  # PyMC raises many types for bad arguments; the message is what matters
            return f"{prior.describe()} is not a valid prior (PyMC: {_first_line(error)})"
    if not (np.all(np.isfinite(value)) and math.isfinite(logp)):
        return (
            f"{prior.describe()} is not a valid prior: its log-density is {logp:g} at a value drawn from it"
        )
    return None


def check_prior(name: str, prior: Prior) -> None:
    """Refuse a prior that cannot serve the model parameter ``name``.

    Parameters
    ----------
    name : str
        A parameter of the models (a key of :data:`DEFAULT_PRIORS`).
    prior : Prior
        Its prior.

    Raises
    ------
    InputError
        ``"Prior of NAME: ..."``, naming the argument and its value: see :func:`fit_problem` and
        :func:`sampling_problem`.
    """
    problem = fit_problem(name, prior) or sampling_problem(prior)
    if problem is not None:
        raise InputError(f"Prior of {name}: {problem}.")


def resolve_priors(overrides: Mapping[str, Prior] | None = None) -> dict[str, Prior]:
    """Merge ``overrides`` into the defaults, refusing names no model uses and priors that cannot serve.

    Raises
    ------
    InputError
        For an unknown parameter name, a value that is not a :class:`Prior`, or a prior refused by
        :func:`check_prior` (all before any model is built).
    """
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(DEFAULT_PRIORS), key=str)
    if unknown:
        raise InputError(
            f"No model has a parameter {_shown(unknown[0])}; priors can be set for:"
            f" {', '.join(DEFAULT_PRIORS)}."
        )
    for name, prior in overrides.items():
        if not isinstance(prior, Prior):
            raise InputError(f"The prior of {name!r} must be a groupfx.Prior (got {type(prior).__name__}).")
    changed = {name: prior for name, prior in overrides.items() if prior != DEFAULT_PRIORS[name]}
    for name, prior in changed.items():  # the cheap checks of every prior before the compiled one of any
        problem = fit_problem(name, prior)
        if problem is not None:
            raise InputError(f"Prior of {name}: {problem}.")
    for name, prior in changed.items():
        check_prior(name, prior)
    return {**DEFAULT_PRIORS, **overrides}


def load_priors(path: str | Path) -> dict[str, Prior]:
    """Read priors from a TOML file: one table per parameter, its distribution and parameters.

    Parameters
    ----------
    path : str or pathlib.Path
        A ``.toml`` file such as::

            [bxy]
            distribution = "Normal"
            mu = 0
            sigma = 2.5

            [tau]
            distribution = "HalfNormal"
            sigma = 0.5

    Returns
    -------
    dict of str to Prior
        The priors by parameter name, each checked by :func:`check_prior`.

    Raises
    ------
    InputError
        If the file is missing or not TOML, or a table names an unknown parameter or distribution, or gives
        the distribution arguments it does not take or values outside their domain (``sigma = -1``,
        ``mu = nan``), or a distribution unfit for its parameter (a Normal for the scale ``tau``). The
        message names the parameter, the argument, the value and the table.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"Priors file {path} does not exist; give a TOML file with one table per parameter.")
    try:
        tables = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"Priors file {path} is not valid TOML: {_first_line(error)}.") from None
    priors = {}
    for name, table in tables.items():
        where = f"[{name}] in {path}"
        if name not in DEFAULT_PRIORS:
            raise InputError(
                f"Priors file {path}: No model has a parameter {name!r} ({where}); priors can be set for:"
                f" {', '.join(DEFAULT_PRIORS)}."
            )
        if not isinstance(table, dict) or "distribution" not in table:
            raise InputError(
                f'{where} must be a table with distribution = "Normal" (or another) and its arguments.'
            )
        arguments = {key: value for key, value in table.items() if key != "distribution"}
        distribution = table["distribution"]
        problem = argument_problem(distribution, arguments)
        if problem is None:
            problem = fit_problem(name, Prior(distribution, **arguments))
        if problem is not None:
            raise InputError(f"Prior of {name} ({where}): {problem}.")
        priors[name] = Prior(distribution, **arguments)
    for name, prior in priors.items():  # PyMC's own checks once every table has passed the cheap ones
        problem = sampling_problem(prior)
        if problem is not None:
            raise InputError(f"Prior of {name} ([{name}] in {path}): {problem}.")
    return priors
