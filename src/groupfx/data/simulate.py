"""Simulated grouped data from the seed study's causal graph, with known truth.

The graph (all settings are parameters)::

    U_g ~ Normal(0, u_sd)                 per group, unobserved
    Z_g ~ Normal(0, 1)                    per group, observed
    X_i ~ Normal(U_g[i], 1)               per unit
    Y_i ~ Bernoulli(invlogit(a0 + bxy X_i + U_g[i] + bzy Z_g[i]))

With ``n_periods = T > 0`` the graph gains a second, crossed confounder: each unit also belongs to a period
``t[i]`` and an unobserved period shock drives both x and y::

    V_t ~ Normal(0, time_sd)              per period, unobserved
    X_i ~ Normal(U_g[i] + bvx V_t[i], 1)
    Y_i ~ Bernoulli(invlogit(a0 + bxy X_i + U_g[i] + bzy Z_g[i] + bvy V_t[i]))

so that comparing units within a group still confounds the effect of x (the periods differ within each
group): one-way strategies are biased and two-way ones (free, pooled or Mundlak period terms) are not. The
periods are dealt round robin (:func:`period_assignment`), and the shocks come from a stream of their own,
so the groups, U, z and the noise of x and y are those of the one-way data of the same seed.

The seed notebook writes it as a PyMC model, sets the truth with ``pymc.do`` and takes one prior-predictive
draw as the data set; :func:`simulate` draws the same numbers, value for value, with NumPy alone (the tests
hold it equal to that PyMC path), without compiling the model's forward sampler; with periods, the shock's
own stream makes it a draw of the same graph but no longer PyMC's numbers. With the
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
    n_periods : int
        Number of periods T (0: one-way data, the seed's; else at least 2 and at most ``n_units``). The
        units take the periods round robin (:func:`period_assignment`), so every period holds units and each
        group spans as many periods as it has units, up to all of them.
    time_sd : float
        Standard deviation of the unobserved period shock V_t (0: no period confounding; > 0 needs
        ``n_periods``).
    bvx, bvy : float
        Effects of V on x and on y (the logit scale), as U's are 1 and 1.
    """

    n_groups: int = 30
    n_units: int = 2000
    a0: float = -2.0
    bxy: float = 0.0
    bzy: float = 1.0
    u_sd: float = 1.5
    seed: int = 42
    u_mean: float = 0.0
    n_periods: int = 0
    time_sd: float = 0.0
    bvx: float = 1.0
    bvy: float = 1.0

    def __post_init__(self) -> None:
        _check_int("n_groups", self.n_groups, minimum=2)
        _check_int("n_units", self.n_units, minimum=2)
        _check_int("seed", self.seed, minimum=0)
        _check_int("n_periods", self.n_periods, minimum=0)
        for name in ("u_sd", "time_sd"):
            value = getattr(self, name)
            if not (_is_number(value) and np.isfinite(value) and value >= 0):
                raise InputError(f"{name} must be a finite number >= 0 (got {value!r}).")
        for name in ("a0", "bxy", "bzy", "u_mean", "bvx", "bvy"):
            value = getattr(self, name)
            if not (_is_number(value) and np.isfinite(value)):
                raise InputError(f"{name} must be a finite number (got {value!r}).")
        if self.n_periods == 1 or self.n_periods > self.n_units:
            raise InputError(
                f"n_periods must be 0 (one-way data) or from 2 to n_units ({self.n_units}), so that every"
                f" period holds units (got {self.n_periods})."
            )
        if self.time_sd > 0 and not self.n_periods:
            raise InputError(
                f"time_sd ({self.time_sd:g}) is the spread of a period shock: give n_periods >= 2 with it, or"
                " leave time_sd at 0."
            )

    @property
    def two_way(self) -> bool:
        """Whether the data have periods (``n_periods > 0``)."""
        return self.n_periods > 0

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
        The observed table (y, x, group, z; with periods also ``period``, a two-way table).
    ug : numpy.ndarray
        The unobserved confounder per group of ``data``, shape ``(G,)``.
    settings : SimulationSettings
        The settings that made it.
    vt : numpy.ndarray, optional
        The unobserved period shock per period of ``data``, shape ``(T,)`` (None for one-way data).
    """

    data: GroupedData
    ug: np.ndarray
    settings: SimulationSettings
    vt: np.ndarray | None = None

    @property
    def truth(self) -> dict[str, float]:
        """The true parameter values."""
        return self.settings.truth

    def linear_predictor(self) -> np.ndarray:
        """The true linear predictor (logit of P(y = 1)) of each unit, shape ``(N,)``: the graph's eta with
        the simulated U (and V)."""
        data, s = self.data, self.settings
        eta = s.a0 + s.bxy * data.x[:, 0] + self.ug[data.group] + s.bzy * data.z[data.group, 0]
        if self.vt is not None:
            eta = eta + s.bvy * self.vt[data.time]
        return eta

    def to_frame(self) -> pd.DataFrame:
        """The table as in the seed notebook: group, x, y, z, ug (with periods: group, period, x, y, z, ug,
        vt)."""
        if self.vt is None:
            return self.data.to_frame(ug=self.ug[self.data.group])
        return self.data.to_frame(ug=self.ug[self.data.group], vt=self.vt[self.data.time])


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _check_int(name: str, value: object, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum} (got {value!r}).")


def generative_model(
    group: np.ndarray,
    n_groups: int,
    u_sd: float = 1.5,
    u_mean: float = 0.0,
    *,
    time: np.ndarray | None = None,
    n_times: int = 0,
    time_sd: float = 0.0,
    bvx: float = 1.0,
    bvy: float = 1.0,
) -> pm.Model:
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
    time : numpy.ndarray, optional
        Period code of each unit: adds the period shock ``vt`` (one per period, ``n_times`` of them), which
        drives x (times ``bvx``) and y (times ``bvy``).
    n_times : int
        Number of periods (with ``time``).
    time_sd : float
        Standard deviation of the period shock V.
    bvx, bvy : float
        Effects of V on x and on y.
    """
    coords = {"group": np.arange(n_groups), "id": np.arange(group.shape[0])}
    if time is not None:
        coords["period"] = np.arange(n_times)
    with pm.Model(coords=coords) as model:
        a0 = pm.Normal("a0", mu=0, sigma=1)
        bzy = pm.Normal("bzy", mu=0, sigma=1)
        bxy = pm.Normal("bxy", mu=0, sigma=1)
        ug = pm.Normal("ug", mu=u_mean, sigma=u_sd, dims="group")
        x_mean, y_shift = ug[group], 0.0
        if time is not None:
            vt = pm.Normal("vt", mu=0, sigma=time_sd, dims="period")
            x_mean, y_shift = x_mean + bvx * vt[time], bvy * vt[time]
        x = pm.Normal("x", mu=x_mean, sigma=1, dims="id")
        z = pm.Normal("z", mu=0, sigma=1, dims="group")
        pm.Bernoulli("y", logit_p=a0 + bxy * x + ug[group] + bzy * z[group] + y_shift, dims="id")
    return model


def period_assignment(group: np.ndarray, n_periods: int) -> np.ndarray:
    """The period code of each unit: the units take the periods in turn (round robin), group after group.

    In the order of the groups (and, within a group, of the units), unit number ``k`` gets period
    ``k mod n_periods``: each group spans as many consecutive periods as it has units (all of them once it
    holds ``n_periods`` units or more), every period holds units when there are at least ``n_periods``,
    and the periods' sizes differ by one at most. With ``n_periods`` units in every group, each group holds
    each period once (a balanced panel).

    Parameters
    ----------
    group : numpy.ndarray
        Group code of each unit.
    n_periods : int
        Number of periods.
    """
    order = np.argsort(group, kind="stable")
    period = np.empty(group.shape[0], dtype=np.int64)
    period[order] = np.arange(group.shape[0]) % n_periods
    return period


def period_shocks(seed: int, n_periods: int, time_sd: float) -> np.ndarray:
    """The period shock V_t of each period, shape ``(n_periods,)``, from a stream of its own.

    The stream is the first child of ``SeedSequence(seed)``, independent of the stream
    ``default_rng(seed)`` draws the rest from, so adding periods leaves the other draws as they are.
    """
    (stream,) = np.random.SeedSequence(seed).spawn(1)
    return np.random.default_rng(stream).normal(0.0, time_sd, size=n_periods)


SEEDED_ORDER = ("z", "ug", "x", "y")
"""The random variables of :func:`generative_model` in the order PyMC hands them its spawned seeds."""


def draw_graph(
    rng: np.random.Generator,
    group: np.ndarray,
    settings: SimulationSettings,
    shock: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """One draw of the causal graph with the truth set, as ``pymc.sample_prior_predictive`` makes it.

    Value for value what ``pm.sample_prior_predictive(draws=1, random_seed=rng)`` draws from
    ``pm.do(generative_model(group, ...), settings.truth)``: PyMC takes one integer below 2**30 from
    ``rng``, spawns a ``SeedSequence`` of it into one PCG64 generator per random variable (in the order of
    :data:`SEEDED_ORDER`), and each variable draws as PyTensor's op does (the Bernoulli as a binomial with
    one trial).

    ``shock`` is the period shock of each unit, ``V_t[i]`` (already drawn, see :func:`period_shocks`): it
    shifts the mean of x by ``bvx V`` and the logit of y by ``bvy V``, from the same streams.
    """
    (seed,) = rng.integers(2**30, size=1)
    spawned = np.random.SeedSequence(seed).spawn(len(SEEDED_ORDER))
    streams = {
        name: np.random.Generator(np.random.PCG64(s)) for name, s in zip(SEEDED_ORDER, spawned, strict=True)
    }
    n_units, n_groups = group.shape[0], settings.n_groups
    ug = streams["ug"].normal(settings.u_mean, settings.u_sd, size=n_groups)
    x_mean = ug[group] if shock is None else ug[group] + settings.bvx * shock
    x = streams["x"].normal(x_mean, 1.0, size=n_units)
    z = streams["z"].normal(0.0, 1.0, size=n_groups)
    eta = settings.a0 + settings.bxy * x + ug[group] + settings.bzy * z[group]
    p = expit(eta if shock is None else eta + settings.bvy * shock)
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
        The data, the per-group confounder (and per-period shock) and the settings; with ``n_periods`` the
        data are two-way, their periods labelled ``0 .. T-1`` in a column named ``period``.

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
    if not settings.two_way:
        draw = draw_graph(rng, group, settings)
    else:
        period = period_assignment(group, settings.n_periods)
        vt = period_shocks(settings.seed, settings.n_periods, settings.time_sd)
        draw = draw_graph(rng, group, settings, shock=vt[period])
    columns = {"group": group}
    if settings.two_way:
        columns["period"] = period
    frame = pd.DataFrame(
        columns
        | {
            "x": draw["x"],
            "y": draw["y"].astype(np.int64),
            "z": draw["z"][group],
            "ug": draw["ug"][group],
        }
    )
    data = GroupedData.from_frame(frame, time="period" if settings.two_way else None)
    ug = draw["ug"][data.group_labels.astype(np.int64)]
    if not settings.two_way:
        return SimulatedData(data=data, ug=ug, settings=settings)
    return SimulatedData(data=data, ug=ug, settings=settings, vt=vt[data.time_labels.astype(np.int64)])
