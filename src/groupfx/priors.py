"""Named priors, overridable by name.

A :class:`Prior` names a PyMC distribution and its parameters; the models look their priors up by the
parameter's name, so ``priors={"bxy": Prior("Normal", mu=0, sigma=2.5)}`` changes one prior and leaves the
others at their defaults.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymc as pm

from groupfx.errors import InputError


@dataclass(frozen=True)
class Prior:
    """A PyMC distribution by name with its parameters.

    Parameters
    ----------
    distribution : str
        Name of a PyMC distribution, e.g. ``"Normal"``, ``"HalfNormal"``, ``"Exponential"``.
    **parameters
        Its parameters, e.g. ``mu=0, sigma=1``.

    Examples
    --------
    >>> Prior("Normal", mu=0, sigma=2.5)
    Prior('Normal', mu=0, sigma=2.5)
    """

    distribution: str
    parameters: dict[str, Any] = field(default_factory=dict)

    def __init__(self, distribution: str, **parameters: Any) -> None:
        if not isinstance(getattr(pm, distribution, None), type) or not issubclass(
            getattr(pm, distribution), pm.Distribution
        ):
            raise InputError(f"{distribution!r} is not a PyMC distribution; use a name such as 'Normal'.")
        object.__setattr__(self, "distribution", distribution)
        object.__setattr__(self, "parameters", dict(parameters))

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.parameters.items())
        return f"Prior({self.distribution!r}, {params})"

    def create(self, name: str, **kwargs: Any) -> Any:
        """Create the random variable ``name`` in the current PyMC model."""
        return getattr(pm, self.distribution)(name, **self.parameters, **kwargs)

    def describe(self) -> str:
        """Short text such as ``Normal(mu=0, sigma=1)``."""
        params = ", ".join(f"{k}={v}" for k, v in self.parameters.items())
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
}
"""Defaults as in the seed study; ``bux`` is half-normal so that the latent model's sign is identified;
``sigma_y`` is the Gaussian family's noise scale (an Exponential(1) suits outcomes on a unit scale)."""


def resolve_priors(overrides: Mapping[str, Prior] | None = None) -> dict[str, Prior]:
    """Merge ``overrides`` into the defaults, refusing names no model uses."""
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(DEFAULT_PRIORS))
    if unknown:
        raise InputError(
            f"No model has a parameter {unknown[0]!r}; priors can be set for: {', '.join(DEFAULT_PRIORS)}."
        )
    for name, prior in overrides.items():
        if not isinstance(prior, Prior):
            raise InputError(f"The prior of {name!r} must be a groupfx.Prior (got {type(prior).__name__}).")
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
        The priors by parameter name, checked against the parameters the models use and against the
        distribution's own arguments.

    Raises
    ------
    InputError
        If the file is missing or not TOML, or a table names an unknown parameter or distribution or gives
        the distribution arguments it does not take.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"Priors file {path} does not exist; give a TOML file with one table per parameter.")
    try:
        tables = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"Priors file {path} is not valid TOML: {error}.") from None
    priors = {}
    for name, table in tables.items():
        where = f"[{name}] in {path}"
        if not isinstance(table, dict) or "distribution" not in table:
            raise InputError(
                f'{where} must be a table with distribution = "Normal" (or another) and its arguments.'
            )
        arguments = {key: value for key, value in table.items() if key != "distribution"}
        not_numbers = [
            k for k, v in arguments.items() if isinstance(v, bool) or not isinstance(v, int | float)
        ]
        if not_numbers:
            raise InputError(
                f"{where}: {not_numbers[0]} must be a number (one prior serves every covariate); got"
                f" {arguments[not_numbers[0]]!r}."
            )
        try:
            prior = Prior(str(table["distribution"]), **arguments)
        except InputError as error:
            raise InputError(f"{where}: {error}") from None
        try:
            getattr(pm, prior.distribution).dist(**arguments)
        except Exception as error:  # PyMC raises many types for bad arguments; the message is what matters
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise InputError(f"{where}: {prior.describe()} is not a valid prior ({reason}).") from None
        priors[name] = prior
    try:
        resolve_priors(priors)
    except InputError as error:
        raise InputError(f"Priors file {path}: {error}") from None
    return priors
