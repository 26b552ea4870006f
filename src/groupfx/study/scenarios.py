"""Scenarios of a recovery study: the seed's causal graph with its settings varied, simulated in bulk.

Each replicate is drawn from the seed study's graph, generalised::

    U_g ~ Normal(0, u_sd)        Z_g ~ Normal(0, 1)        X_i ~ Normal(ux * U_g[i], 1)
    eta_i = a0 + bxy X_i + U_g[i] + bzy Z_g[i]
    Y_i ~ Bernoulli(invlogit(eta_i)) | Poisson(exp(eta_i)) | Normal(eta_i, sigma_y)

``ux`` is how strongly U drives x: 1 in the seed, 0 for no confounding (U still drives y, so the groups
still differ, but x tells nothing about them). A scenario with periods (``n_periods = T > 0``) adds a
second, crossed confounder, a shock per period, as :mod:`groupfx.data.simulate` does::

    V_t ~ Normal(0, time_sd)      X_i ~ Normal(ux * U_g[i] + bvx * V_t[i], 1)      eta_i += bvy V_t[i]

the units taking the periods round robin, group after group
(:func:`~groupfx.data.simulate.period_assignment`); its replicates are two-way data, and each strategy is
fitted to them both one-way (the periods ignored) and two-way (see :mod:`groupfx.study.tasks`). Group sizes
are ``equal`` (as equal as the counts allow)
or ``random`` (every group gets one unit, the rest fall uniformly at random, as in the seed). A replicate's
data depend only on the study seed, the scenario's name and the replicate number, so any replicate can be
redrawn alone, in any process, bit for bit.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from groupfx.data.grouped import GroupedData
from groupfx.data.simulate import period_assignment
from groupfx.errors import InputError
from groupfx.models.families import FAMILIES

SIZES = ("equal", "random")


@dataclass(frozen=True)
class Scenario:
    """One setting of the simulated study.

    Parameters
    ----------
    name : str
        Short name used in tables, figures and file names (letters, digits, ``-`` and ``_``).
    n_groups, n_units : int
        Groups and units in all.
    sizes : str
        ``equal`` or ``random`` group sizes.
    a0, bxy, bzy : float
        The truth: intercept, effect of x, effect of z (on the family's link scale).
    u_sd : float
        Standard deviation of the group confounder U.
    ux : float
        Effect of U on x (0: x is not confounded).
    family : str
        ``bernoulli``, ``poisson`` or ``gaussian``.
    sigma_y : float
        Noise of the Gaussian family.
    description : str
        What the scenario teaches, for the report.
    n_periods : int
        Number of periods T (0: one-way data; else from 2 to ``n_units``).
    time_sd : float
        Standard deviation of the period shock V (0: none; > 0 needs ``n_periods``).
    bvx, bvy : float
        Effects of V on x and on y (as in :class:`groupfx.SimulationSettings`).
    """

    name: str
    n_groups: int = 30
    n_units: int = 2000
    sizes: str = "random"
    a0: float = -2.0
    bxy: float = 0.0
    bzy: float = 1.0
    u_sd: float = 1.5
    ux: float = 1.0
    family: str = "bernoulli"
    sigma_y: float = 1.0
    description: str = ""
    n_periods: int = 0
    time_sd: float = 0.0
    bvx: float = 1.0
    bvy: float = 1.0

    def __post_init__(self) -> None:
        where = f"Scenario {self.name!r}"
        if not self.name or not all(c.isalnum() or c in "-_" for c in self.name):
            raise InputError(f"Scenario name {self.name!r} must be letters, digits, '-' or '_'.")
        for name, minimum in (("n_groups", 2), ("n_units", 2), ("n_periods", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise InputError(f"{where}: {name} must be an integer >= {minimum} (got {value!r}).")
        if self.n_units < self.n_groups:
            raise InputError(
                f"{where}: n_units ({self.n_units}) must be at least n_groups ({self.n_groups})."
            )
        if self.sizes not in SIZES:
            raise InputError(f"{where}: sizes must be one of {', '.join(SIZES)} (got {self.sizes!r}).")
        family = FAMILIES.get(self.family) if isinstance(self.family, str) else None
        if family is None or family.needs_trials:
            *others, last = [f.name for f in FAMILIES.values() if not f.needs_trials]
            raise InputError(f"{where}: family must be {', '.join(others)} or {last} (got {self.family!r}).")
        for name in ("a0", "bxy", "bzy", "u_sd", "ux", "sigma_y", "time_sd", "bvx", "bvy"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
                raise InputError(f"{where}: {name} must be a finite number (got {value!r}).")
        if self.u_sd < 0 or self.sigma_y <= 0 or self.time_sd < 0:
            raise InputError(f"{where}: u_sd and time_sd must be >= 0 and sigma_y > 0.")
        if self.n_periods == 1 or self.n_periods > self.n_units:
            raise InputError(
                f"{where}: n_periods must be 0 (one-way data) or from 2 to n_units ({self.n_units}), so that"
                f" every period holds units (got {self.n_periods})."
            )
        if self.time_sd > 0 and not self.n_periods:
            raise InputError(
                f"{where}: time_sd ({self.time_sd:g}) is the spread of a period shock: give n_periods >= 2"
                " with it, or leave time_sd at 0."
            )

    @property
    def two_way(self) -> bool:
        """Whether the scenario's data have periods (``n_periods > 0``), so that its strategies are fitted
        both one-way and two-way."""
        return self.n_periods > 0

    @property
    def truth(self) -> dict[str, float]:
        """True effects by parameter name."""
        return {"bxy": float(self.bxy), "bzy": float(self.bzy)}

    def to_dict(self) -> dict[str, object]:
        """The settings as plain values."""
        return asdict(self)


DEFAULT_SCENARIOS: tuple[Scenario, ...] = (
    Scenario("seed", description="The seed study: 30 groups, 2000 units, U drives x and y, bxy = 0."),
    Scenario(
        "few-units",
        n_groups=200,
        n_units=1000,
        sizes="equal",
        bxy=1.0,
        description="Five units a group: free intercepts are estimated from five units each (incidental"
        " parameters), and the observed group mean of x is a noisy proxy for U.",
    ),
    Scenario(
        "few-groups",
        n_groups=6,
        n_units=600,
        sizes="equal",
        bxy=0.5,
        description="Six groups: little to pool, so tau and the group-level terms are weakly informed.",
    ),
    Scenario(
        "no-confounding",
        ux=0.0,
        description="The seed's setting but U does not drive x: every model is unbiased, and partial"
        " pooling (multilevel) should give the narrowest honest intervals.",
    ),
)
"""The default grid: the seed's setting and three that each break one of its conditions."""

TIME_SHOCKS = Scenario(
    "time-shocks",
    n_periods=10,
    time_sd=1.5,
    description="The seed's setting spread over 10 periods, with an unobserved shock per period (sd 1.5, as"
    " U's) that drives x and y: within-group comparisons are confounded too, so the one-way strategies are"
    " biased, and the two-way ones (period terms beside the group's) should recover bxy; the multilevel"
    " model stays confounded by U either way.",
)
"""The scenario ``groupfx study --time-shocks`` adds to the grid: a period confounder beside U."""


def load_scenarios(path: str | Path) -> tuple[Scenario, ...]:
    """Read a grid of scenarios from a TOML file: one ``[[scenario]]`` table each.

    Example::

        [[scenario]]
        name = "seed"

        [[scenario]]
        name = "small-groups"
        n_groups = 100
        n_units = 500
        sizes = "equal"
        bxy = 1.0

    Fields left out take the seed's values (see :class:`Scenario`).

    Raises
    ------
    InputError
        If the file is missing or not TOML, a field is unknown or invalid, or two scenarios share a name.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"Scenario file {path} does not exist; give a TOML file of [[scenario]] tables.")
    try:
        tables = tomllib.loads(path.read_text(encoding="utf-8")).get("scenario")
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"Scenario file {path} is not valid TOML: {error}.") from None
    if not isinstance(tables, list) or not tables:
        raise InputError(f"Scenario file {path} has no [[scenario]] tables; add one per scenario.")
    known = {f.name for f in fields(Scenario)}
    scenarios = []
    for position, table in enumerate(tables, start=1):
        unknown = sorted(set(table) - known)
        if unknown:
            raise InputError(
                f"Scenario {position} in {path} has an unknown field {unknown[0]!r};"
                f" fields: {', '.join(sorted(known))}."
            )
        if "name" not in table:
            raise InputError(f'Scenario {position} in {path} has no name; add name = "...".')
        scenarios.append(Scenario(**table))
    names = [s.name for s in scenarios]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InputError(f"Scenario name {repeated[0]!r} is used twice in {path}; give each its own name.")
    return tuple(scenarios)


def replicate_seed(seed: int, scenario: str, replicate: int) -> np.random.SeedSequence:
    """The seed of one replicate's data: a function of the study seed, scenario name and replicate only."""
    key = int.from_bytes(scenario.encode(), "little") % (2**63)
    return np.random.SeedSequence([seed, key, replicate])


def group_assignment(scenario: Scenario, rng: np.random.Generator) -> np.ndarray:
    """Group code of each unit: every group non-empty, equal or random sizes."""
    g, n = scenario.n_groups, scenario.n_units
    if scenario.sizes == "equal":
        return np.sort(np.arange(n) % g)
    return np.sort(np.concatenate([np.arange(g), rng.integers(0, g, size=n - g)]))


def replicate_shocks(scenario: Scenario, seed: int, replicate: int) -> np.ndarray:
    """The period shock V of each period of one replicate, shape ``(n_periods,)`` (empty without periods).

    Drawn from a stream of its own (the first child of the replicate's seed), so they can be redrawn
    alone and a scenario's other draws do not depend on them.
    """
    (stream,) = replicate_seed(seed, scenario.name, replicate).spawn(1)
    return np.random.default_rng(stream).normal(0.0, scenario.time_sd, scenario.n_periods)


def simulate_replicate(scenario: Scenario, seed: int, replicate: int) -> tuple[GroupedData, np.ndarray]:
    """Draw one replicate of ``scenario``.

    Returns
    -------
    GroupedData, numpy.ndarray
        The data (groups labelled ``0 .. G-1``, x named ``x``, z named ``z``; with periods, two-way data
        whose periods are labelled ``0 .. T-1`` and named ``period``) and the confounder U per group (the
        shock V per period is :func:`replicate_shocks`).
    """
    rng = np.random.default_rng(replicate_seed(seed, scenario.name, replicate))
    group = group_assignment(scenario, rng)
    u = rng.normal(0.0, scenario.u_sd, scenario.n_groups)
    z = rng.normal(0.0, 1.0, scenario.n_groups)
    if scenario.two_way:
        period = period_assignment(group, scenario.n_periods)
        shock = replicate_shocks(scenario, seed, replicate)[period]
        x = rng.normal(scenario.ux * u[group] + scenario.bvx * shock, 1.0)
        eta = scenario.a0 + scenario.bxy * x + u[group] + scenario.bzy * z[group] + scenario.bvy * shock
    else:
        x = rng.normal(scenario.ux * u[group], 1.0)
        eta = scenario.a0 + scenario.bxy * x + u[group] + scenario.bzy * z[group]
    family = FAMILIES[scenario.family]
    y = family.replicate(family.inverse(eta), rng, sigma_y=scenario.sigma_y)
    if family.rule.integer:
        y = y.astype(np.int64)
    data = GroupedData(
        y=y,
        x=x,
        group=group,
        z=z,
        group_labels=np.arange(scenario.n_groups),
        names={"y": "y", "group": "group"} | ({"time": "period"} if scenario.two_way else {}),
        time=period if scenario.two_way else None,
        time_labels=np.arange(scenario.n_periods) if scenario.two_way else None,
    )
    return data, u
