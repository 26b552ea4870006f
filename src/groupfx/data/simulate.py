"""Simulated grouped data from the seed study's causal graph, with known truth.

The graph (all settings are parameters)::

    U_g ~ Normal(0, u_sd)                 per group, unobserved
    Z_g ~ Normal(0, 1)                    per group, observed
    X_i ~ Normal(U_g[i], 1)               per unit
    Y_i ~ Bernoulli(invlogit(a0 + bxy X_i + U_g[i] + bzy Z_g[i]))

The seed notebook writes it as a PyMC model, sets the truth with ``pymc.do`` and takes one prior-predictive
draw as the data set; :func:`simulate` draws the same numbers, value for value, with NumPy alone (the tests
hold it equal to that PyMC path), without compiling the model's forward sampler. With the
defaults the first rows are ``group 2, x -1.636772, y 0, z -0.784611, ug -0.262631``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import pymc as pm
from scipy.special import expit

from groupfx.data.grouped import GroupedData
from groupfx.errors import InputError


@dataclass(frozen=True)
class SimulationSettings:
    """Settings of one simulated data set.

    Parameters
    ----------
    n_groups : int
        Number of groups G; each unit's group is a uniform draw, so some groups may stay empty when
        ``n_units`` is small (they are dropped from the data).
    n_units : int
        Number of units N.
    a0, bxy, bzy : float
        True intercept, effect of x and effect of z on the logit scale.
    u_sd : float
        Standard deviation of the unobserved group confounder U (0 removes the confounding).
    u_mean : float
        Mean of U (0 in the seed; the lecture the seed follows uses 1.5).
    seed : int
        Seed of ``numpy.random.default_rng``; it draws the groups, then the model's variables.
    """

    n_groups: int = 30
    n_units: int = 2000
    a0: float = -2.0
    bxy: float = 0.0
    bzy: float = 1.0
    u_sd: float = 1.5
    seed: int = 42
    u_mean: float = 0.0

    def __post_init__(self) -> None:
        _check_int("n_groups", self.n_groups, minimum=2)
        _check_int("n_units", self.n_units, minimum=2)
        _check_int("seed", self.seed, minimum=0)
        if not (np.isfinite(self.u_sd) and self.u_sd >= 0):
            raise InputError(f"u_sd must be a finite number >= 0 (got {self.u_sd}).")
        for name in ("a0", "bxy", "bzy", "u_mean"):
            if not np.isfinite(getattr(self, name)):
                raise InputError(f"{name} must be a finite number (got {getattr(self, name)}).")

    @property
    def truth(self) -> dict[str, float]:
        """The true values of the parameters the models estimate."""
        return {"a0": float(self.a0), "bxy": float(self.bxy), "bzy": float(self.bzy)}


@dataclass(frozen=True)
class SimulatedData:
    """A simulated data set with the truth that made it.

    Attributes
    ----------
    data : GroupedData
        The observed table (y, x, group, z).
    ug : numpy.ndarray
        The unobserved confounder per group of ``data``, shape ``(G,)``.
    settings : SimulationSettings
        The settings that made it.
    """

    data: GroupedData
    ug: np.ndarray
    settings: SimulationSettings

    @property
    def truth(self) -> dict[str, float]:
        """The true parameter values."""
        return self.settings.truth

    def to_frame(self) -> pd.DataFrame:
        """The table as in the seed notebook: group, x, y, z, ug."""
        return self.data.to_frame(ug=self.ug[self.data.group])


def _check_int(name: str, value: object, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum} (got {value!r}).")


def generative_model(group: np.ndarray, n_groups: int, u_sd: float = 1.5, u_mean: float = 0.0) -> pm.Model:
    """The causal graph as a PyMC model, with the parameters a0, bxy and bzy still free.

    Parameters
    ----------
    group : numpy.ndarray
        Group code of each unit.
    n_groups : int
        Number of groups.
    u_sd : float
        Standard deviation of the group confounder U.
    u_mean : float
        Mean of U.
    """
    coords = {"group": np.arange(n_groups), "id": np.arange(group.shape[0])}
    with pm.Model(coords=coords) as model:
        a0 = pm.Normal("a0", mu=0, sigma=1)
        bzy = pm.Normal("bzy", mu=0, sigma=1)
        bxy = pm.Normal("bxy", mu=0, sigma=1)
        ug = pm.Normal("ug", mu=u_mean, sigma=u_sd, dims="group")
        x = pm.Normal("x", mu=ug[group], sigma=1, dims="id")
        z = pm.Normal("z", mu=0, sigma=1, dims="group")
        pm.Bernoulli("y", logit_p=a0 + bxy * x + ug[group] + bzy * z[group], dims="id")
    return model


SEEDED_ORDER = ("z", "ug", "x", "y")
"""The random variables of :func:`generative_model` in the order PyMC hands them its spawned seeds."""


def draw_graph(
    rng: np.random.Generator, group: np.ndarray, settings: SimulationSettings
) -> dict[str, np.ndarray]:
    """One draw of the causal graph with the truth set, as ``pymc.sample_prior_predictive`` makes it.

    Value for value what ``pm.sample_prior_predictive(draws=1, random_seed=rng)`` draws from
    ``pm.do(generative_model(group, ...), settings.truth)``: PyMC takes one integer below 2**30 from
    ``rng``, spawns a ``SeedSequence`` of it into one PCG64 generator per random variable (in the order of
    :data:`SEEDED_ORDER`), and each variable draws as PyTensor's op does (the Bernoulli as a binomial with
    one trial).
    """
    (seed,) = rng.integers(2**30, size=1)
    spawned = np.random.SeedSequence(seed).spawn(len(SEEDED_ORDER))
    streams = {
        name: np.random.Generator(np.random.PCG64(s)) for name, s in zip(SEEDED_ORDER, spawned, strict=True)
    }
    n_units, n_groups = group.shape[0], settings.n_groups
    ug = streams["ug"].normal(settings.u_mean, settings.u_sd, size=n_groups)
    x = streams["x"].normal(ug[group], 1.0, size=n_units)
    z = streams["z"].normal(0.0, 1.0, size=n_groups)
    p = expit(settings.a0 + settings.bxy * x + ug[group] + settings.bzy * z[group])
    return {"ug": ug, "x": x, "z": z, "y": streams["y"].binomial(1, p, size=n_units)}


def simulate(settings: SimulationSettings | None = None, **overrides: float) -> SimulatedData:
    """Simulate one data set from the seed's causal graph with the truth set by ``do()``.

    Parameters
    ----------
    settings : SimulationSettings, optional
        All settings; defaults to the seed's (30 groups, 2000 units, a0=-2, bxy=0, bzy=1, u_sd=1.5, seed 42).
    **overrides
        Fields of :class:`SimulationSettings` to change, e.g. ``simulate(n_groups=50, bxy=0.5)``.

    Returns
    -------
    SimulatedData
        The data, the per-group confounder and the settings.

    Examples
    --------
    >>> sim = simulate()
    >>> sim.to_frame().head(2).round(6).to_dict("list")["x"]
    [-1.636772, -0.630586]
    """
    base = settings or SimulationSettings()
    settings = SimulationSettings(**{**asdict(base), **overrides})
    rng = np.random.default_rng(settings.seed)
    group = rng.choice(settings.n_groups, size=(settings.n_units,), replace=True)
    draw = draw_graph(rng, group, settings)
    frame = pd.DataFrame(
        {
            "group": group,
            "x": draw["x"],
            "y": draw["y"].astype(np.int64),
            "z": draw["z"][group],
            "ug": draw["ug"][group],
        }
    )
    data = GroupedData.from_frame(frame)
    ug = draw["ug"][data.group_labels.astype(np.int64)]
    return SimulatedData(data=data, ug=ug, settings=settings)
