"""The five strategies as pure model builders, in one registry.

Each builder takes a :class:`~groupfx.data.grouped.GroupedData` and the priors and returns a fresh
``pymc.Model`` whose data live in ``pm.Data`` containers (so a compiled model can swap data), whose outcome
``y_obs`` follows the chosen family (Bernoulli-logit by default, Poisson-log or Gaussian; see
:mod:`groupfx.models.families`), and which stores no per-unit quantity as a Deterministic.
The group-level part of ``eta`` is summed per group first and gathered to the units once (one gather
and, in the gradient, one scatter over N instead of one per group-level term; measured in
``benchmarks/design_results.md``).

=============== ==============================================================
naive           eta = a0 + bxy x + bzy z[g]
fixed           eta = a[g] + bxy x + bzy z[g],              a[g] ~ Normal(0, 10)
multilevel      eta = abar + tau e[g] + bxy x + bzy z[g],    e ~ Normal(0, 1)
mundlak         multilevel + buy xbar[g]                     xbar: observed mean of x in g
latent          multilevel + buy u[g],  x ~ Normal(ax + bux u[g], sigma),  u ~ Normal(0, 1), bux > 0
                (x enters through its sufficient statistics per group: same posterior, O(G) cost;
                u is sampled through m = ax + bux u, the group mean of x, which the data pin down)
latent_shared   as latent, but one u shared by all the x (x_k ~ Normal(ax_k + bux_k u[g], sigma_k))
=============== ==============================================================

On two-way data (a period t crossed with the group g) every strategy but the naive one adds a period part:

=============== ==============================================================
fixed           + at[t]                    free, the first period's 0
multilevel      + f[t]                     f ~ ZeroSumNormal(tau_t), centred
mundlak         + f[t] + bvy xbar_t[t]     f = tau_t f_z, f_z ~ ZeroSumNormal(1); on an unbalanced panel
                                           also + bpy shares[g] (the group's shares of the periods)
latent          + f[t] + bvy v[t]          f as in mundlak; x ~ Normal(ax + bux u[g] + bvx v[t], sigma),
                                           v ~ ZeroSumNormal(1) (sampled as w = bvx v)
=============== ==============================================================

With several x, ``bxy``, ``buy`` (and the latent model's ``u``, ``ax``, ``bux``, ``sigma``) have one entry
per x (dimension ``x_var``) and ``bzy`` one per z (dimension ``z_var``); with no z there is no ``bzy``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from groupfx.data.grouped import GroupedData
from groupfx.errors import InputError, UnknownModelError
from groupfx.models.families import Family, get_family
from groupfx.models.priors import Prior, resolve_priors

Builder = Callable[[GroupedData, Mapping[str, Prior], Family], pm.Model]

INTERCEPTS = ("single", "free", "pooled")
"""How a model's linear predictor holds the intercept: one for all, one free per group, pooled per group."""
LATENT_VARIABLES = (None, "per_x", "shared")
"""A model's latent group variable: none, one per x, or one shared by every x."""
MANY_GROUPS = 300
"""Groups from which the pooled models sample at :data:`MANY_GROUPS_TARGET_ACCEPT`. Measured at the seed's
density (``benchmarks/target_accept_results.md``): at 0.8 the Mundlak model diverged in 3 of 16 fits at 30
groups and 2 of 8 at 100, none of 16 at 300; the latent model in 7 of 16 at 30, none of 8 at 100 and 16 at
300; the multilevel model in none; at 0.9, none at all."""
MANY_GROUPS_TARGET_ACCEPT = 0.8
"""The pooled models' target acceptance on one-way data with at least :data:`MANY_GROUPS` groups."""


@dataclass(frozen=True)
class ModelSpec:
    """One strategy: its builder, what its linear predictor holds, and what to say about it.

    The traits (``intercepts``, ``group_mean_of_x``, ``latent_group_variable`` and the properties derived
    from them) are the one place that says what a strategy holds: the fused kernel, the effects, the
    cross-check and the report ask them instead of comparing the strategy's name.

    Attributes
    ----------
    name : str
        Registry key, e.g. ``"mundlak"``.
    label : str
        Name for tables and figures, e.g. ``"Mundlak"``.
    equation : str
        The linear predictor in words a reader can check.
    idea : str
        One sentence on how the strategy treats the group confounder.
    build : callable
        ``build(data, priors, family) -> pymc.Model``.
    not_identified : dict of str to str
        Parameters the data cannot identify under this strategy, with the reason.
    cost : int
        Rough relative cost of a fit; the longest fits are started first when fits run side by side.
    target_accept : float
        NUTS target acceptance on data with few groups (see :meth:`target_accept_for`). The grouped models
        use 0.9: at nutpie's 0.8 the seed study (30 groups) showed a few divergences (fixed effects: a group
        whose y is all 0 lets its intercept drift into the prior's tail; Mundlak and latent: small tau),
        which the smaller step removes.
    phrase : str
        The strategy in a sentence's words, e.g. ``"the Mundlak device"``.
    intercepts : {"single", "free", "pooled"}
        The intercept: one for all units (``a0``), one free per group (``a[g]``), or pooled per group
        (``abar + tau e[g]``).
    group_mean_of_x : bool
        Whether the observed group mean of each x enters the predictor (``buy xbar[g]``).
    latent_group_variable : {None, "per_x", "shared"}
        A latent group variable measured through x that enters the predictor (``buy u[g]``): one per x
        (``u[g, k]``), or one shared by every x (``u[g]``).
    """

    name: str
    label: str
    equation: str
    idea: str
    build: Builder
    not_identified: dict[str, str] = field(default_factory=dict)
    cost: int = 3
    target_accept: float = 0.9
    phrase: str = ""
    intercepts: str = "pooled"
    group_mean_of_x: bool = False
    latent_group_variable: str | None = None

    def target_accept_for(self, data: GroupedData) -> float:
        """The NUTS target acceptance for fitting this strategy to ``data``.

        Pooled intercepts on one-way data with at least :data:`MANY_GROUPS` groups sample at nutpie's
        0.8, where tau is well determined and the smaller step of 0.9 only costs gradient evaluations
        (Mundlak, 100,000 units in 1,000 groups: 15.0 against 22.2 leapfrog steps a draw, same ESS, no
        divergences); everything else keeps :attr:`target_accept`. A user's ``target_accept`` overrides
        both.

        Parameters
        ----------
        data : GroupedData
            The data to be fitted.

        Returns
        -------
        float
            The target acceptance.
        """
        if self.intercepts == "pooled" and not data.two_way and data.n_groups >= MANY_GROUPS:
            return MANY_GROUPS_TARGET_ACCEPT
        return self.target_accept

    def __post_init__(self) -> None:
        if self.intercepts not in INTERCEPTS:
            raise ValueError(f"intercepts must be one of {', '.join(INTERCEPTS)} (got {self.intercepts!r})")
        if self.latent_group_variable not in LATENT_VARIABLES:
            raise ValueError(f"latent_group_variable must be None, 'per_x' or 'shared' (got "
                             f"{self.latent_group_variable!r})")  # fmt: skip

    @property
    def group_proxy(self) -> str | None:
        """The group-level stand-in for U the predictor holds: ``"xbar"``, ``"u"`` or None."""
        if self.latent_group_variable is not None:
            return "u"
        return "xbar" if self.group_mean_of_x else None

    @property
    def identifies_within(self) -> bool:
        """Whether ``bxy`` is the within-group effect: free intercepts absorb U, or a proxy of U stands in
        for it beside pooled ones."""
        return self.intercepts == "free" or self.group_proxy is not None

    @property
    def has_group_intercepts(self) -> bool:
        """Whether U is carried by a per-group intercept alone (free or pooled, no proxy of U beside it), so
        that the intercepts themselves estimate each group's ``a0 + U + bzy z``."""
        return self.intercepts != "single" and self.group_proxy is None

    @property
    def contextual_effect(self) -> str | None:
        """How the contextual effect of each x's group mean is computed from the draws: ``"buy"`` (the
        observed group mean), ``"buy/bux"`` (a latent u per x, on its own scale: the group mean of x is
        ``ax + bux u``), or None (no proxy, or one u shared by all the x, which does not split by x)."""
        if self.group_mean_of_x:
            return "buy"
        return "buy/bux" if self.latent_group_variable == "per_x" else None

    @property
    def priors_used(self) -> tuple[str, ...]:
        """The named priors (see :mod:`groupfx.models.priors`) the builder reads, in the predictor's order."""
        names = {"single": ("a0",), "free": ("a",), "pooled": ("abar", "tau")}[self.intercepts]
        names += ("bxy", "bzy")
        if self.group_proxy is not None:
            names += ("buy",)
        if self.latent_group_variable is not None:
            names += ("bux", "ax", "sigma")
        return names

    def equation_for(self, data: GroupedData) -> str:
        """:attr:`equation`, with the period terms the builder adds on two-way data."""
        if not data.two_way or self.intercepts == "single":
            return self.equation
        head, _, tail = self.equation.partition(",  ")
        if self.intercepts == "free":
            terms = " + at[t]"
            note = "at[first period] = 0"
        else:
            terms = " + f[t]"
            note = "f ~ ZeroSumNormal(tau_t)"
        if self.group_mean_of_x:
            terms += " + bvy·xbar_t[t]" + (" + bpy·shares[g]" if data.period_shares_vary else "")
        if self.latent_group_variable is not None:
            terms += " + bvy·v[t]"
            tail = tail.replace("bux·u[g]", "bux·u[g] + bvx·v[t]")
        return head + terms + ",  " + ", ".join(filter(None, [tail, note]))

    def check_data(self, data: GroupedData) -> None:
        """Refuse data the strategy cannot take, before anything is built.

        Raises
        ------
        InputError
            For two-way data under a latent u shared by every x (its period shift is not defined).
        """
        if data.two_way and self.latent_group_variable == "shared":
            raise InputError(
                f"The {self.label} model is one-way; on two-way data (--time) fit the latent model, whose u"
                " and period shift are per x."
            )

    def priors_read(self, data: GroupedData) -> tuple[str, ...]:
        """The named priors the builder reads for ``data``: :attr:`priors_used`, and on two-way data those
        of the period terms (``at``, or ``tau_t``; ``bvy`` with a stand-in for U; ``bpy`` on an
        unbalanced panel; ``bvx`` for a latent shift)."""
        if not data.two_way or self.intercepts == "single":
            return self.priors_used
        names = ("at",) if self.intercepts == "free" else ("tau_t",)
        if self.group_proxy is not None:
            names += ("bvy",)
        if self.group_mean_of_x and data.period_shares_vary:
            names += ("bpy",)
        if self.latent_group_variable is not None:
            names += ("bvx",)
        return self.priors_used + names


# Every model is built with ``check_bounds=False``: all parameters are valid by construction (scales are
# positive through their priors' transforms, means come through their link), so the per-evaluation parameter
# checks only cost time (about 15% of sampling). The outcome's own support check (e.g. y in {0, 1}) remains.


def _coords(data: GroupedData) -> dict[str, object]:
    coords: dict[str, object] = {
        "group": data.group_labels,
        "unit": np.arange(data.n_units),
        "x_var": list(data.x_names),
    }
    if data.n_z:
        coords["z_var"] = list(data.z_names)
    if data.two_way:
        coords["time"] = data.time_labels
        coords["period_rest"] = data.time_labels[1:]
    return coords


def data_values(data: GroupedData) -> dict[str, np.ndarray]:
    """The value of every ``pm.Data`` container a model of ``data`` may hold, by name.

    A model holds a subset (see :func:`data_names`); a compiled model takes a new data set of the same
    shape through ``compiled.with_data(**values)`` without compiling again.
    """
    values = {
        "x": data.x,
        "y": data.y,
        "g": data.group,
        "z": data.z,
        "xbar": data.xbar,
        "n": data.group_sizes.astype(float),
        "x_ss": data.x_within_ss,
    }
    if data.trials is not None:
        values["trials"] = data.trials
    if data.exposure is not None:
        values["log_exposure"] = np.log(data.exposure)
    if data.two_way:
        values |= {
            "t": data.time,
            "xbar_t": data.xbar_time,
            "shares": data.period_shares,
            "n_t": data.time_sizes.astype(float),
            "x_sum_t": data.xbar_time * data.time_sizes[:, None],
            "cells": data.cell_counts,
        }
    return values


def data_names(model: pm.Model) -> list[str]:
    """Names of the ``pm.Data`` containers of a built model."""
    return [variable.name for variable in model.data_vars]


def _data_containers(data: GroupedData) -> dict[str, pm.Data]:
    containers = {
        "x": pm.Data("x", data.x, dims=("unit", "x_var")),
        "y": pm.Data("y", data.y, dims="unit"),
        "g": pm.Data("g", data.group, dims="unit"),
    }
    if data.n_z:
        containers["z"] = pm.Data("z", data.z, dims=("group", "z_var"))
    if data.trials is not None:
        containers["trials"] = pm.Data("trials", data.trials, dims="unit")
    if data.exposure is not None:
        containers["log_exposure"] = pm.Data("log_exposure", np.log(data.exposure), dims="unit")
    if data.two_way:
        containers["t"] = pm.Data("t", data.time, dims="unit")
    return containers


FUSED_COLUMNS = 8
"""Up to this many covariates, ``matrix @ coefficients`` is written as a sum of column products."""


def _times(matrix, coefficients, columns: int):
    """``matrix @ coefficients``. With few columns, a sum of elementwise products, which PyTensor fuses with
    the likelihood's own elementwise work into one loop (a dot product is a separate BLAS call, and without a
    linked BLAS PyTensor's C backend falls back to a slow one); with many, the dot product."""
    if columns > FUSED_COLUMNS:
        return pt.dot(matrix, coefficients)
    total = matrix[:, 0] * coefficients[0]
    for k in range(1, columns):
        total = total + matrix[:, k] * coefficients[k]
    return total


def _slopes(data: GroupedData, d: Mapping[str, pm.Data], priors: Mapping[str, Prior]):
    """The effect terms every model shares: ``bxy`` per x on the units and ``bzy`` per z on the groups.

    Returns the unit-level part ``x @ bxy`` and the group-level part ``z @ bzy`` (0 without z).
    """
    bxy = priors["bxy"].create("bxy", dims="x_var")
    unit_part = _times(d["x"], bxy, data.n_x)
    if not data.n_z:
        return unit_part, 0.0
    bzy = priors["bzy"].create("bzy", dims="z_var")
    return unit_part, _times(d["z"], bzy, data.n_z)


def _group_intercepts(priors: Mapping[str, Prior]):
    """Non-centred random intercepts a[g] = abar + tau * e[g], e ~ Normal(0, 1)."""
    abar = priors["abar"].create("abar")
    tau = priors["tau"].create("tau")
    e = pm.Normal("e", mu=0, sigma=1, dims="group")
    return abar + tau * e


def _gather(group_part, d: Mapping[str, pm.Data]):
    """The group-level part of eta, one value per group, gathered to the units (a scalar stays scalar)."""
    if getattr(group_part, "ndim", 0) == 0:
        return group_part
    return group_part[d["g"]]


def _intercepts(spec: ModelSpec, data: GroupedData, priors: Mapping[str, Prior]):
    """The group intercepts the strategy holds: ``a0`` (one for all), ``a[g]`` (free) or pooled."""
    if spec.intercepts == "single":
        return priors["a0"].create("a0")
    if spec.intercepts == "free":
        return priors["a"].create("a", dims="group")
    return _group_intercepts(priors)


def _period_intercepts(spec: ModelSpec, priors: Mapping[str, Prior]):
    """The period intercepts of two-way data, one per period: free (the first period's is 0, so that the
    group intercepts keep the level) or pooled, ``f ~ ZeroSumNormal(tau_t)`` (``abar`` keeps the level)."""
    if spec.intercepts == "free":
        rest = priors["at"].create("at", dims="period_rest")
        return pt.concatenate([pt.zeros(1), rest])
    # Summing to zero, so that abar keeps the level. Centred where the intercepts carry the periods' shocks
    # alone: each period holds many units (a panel's years) and the data pin them down (non-centred, tau_t
    # mixed poorly). Non-centred, f = tau_t f_z, beside a stand-in for the shocks (the period means of x,
    # a latent shift), which leaves f small: centred, small tau_t made a funnel (divergences).
    tau_t = priors["tau_t"].create("tau_t")
    if spec.group_proxy is None:
        return pm.ZeroSumNormal("f", sigma=tau_t, dims="time")
    f_z = pm.ZeroSumNormal("f_z", sigma=1.0, dims="time")
    return pm.Deterministic("f", tau_t * f_z, dims="time")


def _x_measurement(data: GroupedData, priors: Mapping[str, Prior], means):
    """The likelihood of every x given its true group means ``means`` (G, K), through sufficient statistics.

    ``x_ik ~ Normal(means[g, k], sigma_k)`` is, per group, the group mean ``xbar[g, k] ~ Normal(means[g, k],
    sigma_k / sqrt(n[g]))`` and the within-group sum of squares ``ss[g, k]``, which is sigma_k^2 times a
    chi-square with n[g] - 1 degrees of freedom; its log-density in sigma_k, ``-(n[g] - 1) log(sigma_k) -
    ss[g, k] / (2 sigma_k^2)``, is added as a potential (the chi-square's normalising terms do not depend on
    the parameters, and leaving them out keeps compilation fast). Same posterior, O(G K) cost.
    Returns ``sigma``.
    """
    n = pm.Data("n", data.group_sizes.astype(float), dims="group")
    xbar = pm.Data("xbar", data.xbar, dims=("group", "x_var"))
    ss = pm.Data("x_ss", data.x_within_ss, dims=("group", "x_var"))
    sigma = priors["sigma"].create("sigma", dims="x_var")
    pm.Normal("xbar_obs", mu=means, sigma=sigma / pm.math.sqrt(n)[:, None], observed=xbar,
              dims=("group", "x_var"))  # fmt: skip
    pm.Potential("x_spread", pm.math.sum(-(n - 1)[:, None] * pm.math.log(sigma) - ss / (2 * sigma**2)))
    return sigma


def _x_time_measurement(data: GroupedData, sigma, means, shifts) -> None:
    """What two-way data add to the likelihood of x in :func:`_x_measurement`: with
    ``x_itk ~ Normal(means[g, k] + shifts[t, k], sigma_k)``, the terms in the period shifts, from the period
    sums of x and the units per group and period (same posterior as unit by unit, O((G + T) K) data)."""
    n_t = pm.Data("n_t", data.time_sizes.astype(float), dims="time")
    x_sum_t = pm.Data("x_sum_t", data.xbar_time * data.time_sizes[:, None], dims=("time", "x_var"))
    cells = pm.Data("cells", data.cell_counts, dims=("group", "time"))
    cross = x_sum_t - pt.dot(cells.T, means)
    pm.Potential("x_time_spread", pm.math.sum((shifts * cross - 0.5 * n_t[:, None] * shifts**2) / sigma**2))


def build_strategy(
    spec: ModelSpec, data: GroupedData, priors: Mapping[str, Prior], family: Family
) -> pm.Model:
    """Build the PyMC model of strategy ``spec`` from its traits: one builder for every strategy.

    The linear predictor is ``group part[g] + x @ bxy (+ period part[t])``: the group part holds the
    intercepts (:attr:`ModelSpec.intercepts`), ``z @ bzy`` and the stand-in for U (the observed group
    means of x, or a latent u measured through x); on two-way data (``data.two_way``) the period part holds
    the period intercepts (free or pooled, as the group's) and, for the Mundlak device, the period means of
    x (with, on an unbalanced panel, each group's shares of the periods in the group part: Wooldridge
    2021), or for the latent model a latent period shift measured through x. The naive model ignores both
    grouping factors.
    """
    spec.check_data(data)
    two_way = data.two_way and spec.intercepts != "single"
    coords = _coords(data)
    if spec.latent_group_variable == "shared":
        coords["x_other"] = list(data.x_names[1:])
    with pm.Model(coords=coords, check_bounds=False) as model:
        d = _data_containers(data)
        if spec.group_mean_of_x:
            xbar = pm.Data("xbar", data.xbar, dims=("group", "x_var"))
        group = _intercepts(spec, data, priors)
        unit_part, group_part = _slopes(data, d, priors)
        group = group + group_part
        period = _period_intercepts(spec, priors) if two_way else None
        if spec.group_mean_of_x:
            buy = priors["buy"].create("buy", dims="x_var")
            group = group + _times(xbar, buy, data.n_x)
            if two_way:
                xbar_t = pm.Data("xbar_t", data.xbar_time, dims=("time", "x_var"))
                bvy = priors["bvy"].create("bvy", dims="x_var")
                period = period + _times(xbar_t, bvy, data.n_x)
                if data.period_shares_vary:
                    shares = pm.Data("shares", data.period_shares, dims=("group", "period_rest"))
                    bpy = priors["bpy"].create("bpy", dims="period_rest")
                    group = group + _times(shares, bpy, data.n_times - 1)
        if spec.latent_group_variable == "per_x":
            buy = priors["buy"].create("buy", dims="x_var")
            bux = priors["bux"].create("bux", dims="x_var")
            ax = priors["ax"].create("ax", dims="x_var")
            # u ~ Normal(0, 1) is sampled through m = ax + bux * u, the true group mean of x, which the data
            # pin down: centred in m, the posterior has no ridge between ax, bux and u (same model, better
            # mixing).
            m = pm.Normal("m", mu=ax, sigma=bux, dims=("group", "x_var"))
            u = pm.Deterministic("u", (m - ax) / bux, dims=("group", "x_var"))
            sigma = _x_measurement(data, priors, m)
            group = group + _times(u, buy, data.n_x)
            if two_way:
                # the period shift of x, w = bvx v with v ~ ZeroSumNormal(1): centred in w, which the data
                # pin down; summing to zero over the periods leaves the level to ax
                bvx = priors["bvx"].create("bvx", dims="x_var")
                w = pm.ZeroSumNormal("w", sigma=bvx[:, None], dims=("x_var", "time"))
                v = pm.Deterministic("v", (w / bvx[:, None]).T, dims=("time", "x_var"))
                _x_time_measurement(data, sigma, m, w.T)
                bvy = priors["bvy"].create("bvy", dims="x_var")
                period = period + _times(v, bvy, data.n_x)
        if spec.latent_group_variable == "shared":
            buy = priors["buy"].create("buy")
            bux_first = priors["bux"].create("bux")
            ax = priors["ax"].create("ax", dims="x_var")
            m_first = pm.Normal("m", mu=ax[0], sigma=bux_first, dims="group")
            u = pm.Deterministic("u", (m_first - ax[0]) / bux_first, dims="group")
            if data.n_x > 1:
                bux_other = pm.Normal("bux_other", mu=0, sigma=1, dims="x_other")
                loadings = pt.concatenate([bux_first[None], bux_other])
            else:
                loadings = bux_first[None]
            _x_measurement(data, priors, ax + u[:, None] * loadings)
            group = group + buy * u
        eta = _gather(group, d) + unit_part
        if period is not None:
            eta = eta + period[d["t"]]
        family.outcome(eta, d, priors)
    return model


def build_naive(data: GroupedData, priors: Mapping[str, Prior], family: Family) -> pm.Model:
    """Naive model: ignores the groups (and the periods), so x absorbs the group confounder."""
    return build_strategy(MODELS["naive"], data, priors, family)


def build_fixed(data: GroupedData, priors: Mapping[str, Prior], family: Family) -> pm.Model:
    """Fixed effects: one free intercept per group (no pooling), and per period on two-way data."""
    return build_strategy(MODELS["fixed"], data, priors, family)


def build_multilevel(data: GroupedData, priors: Mapping[str, Prior], family: Family) -> pm.Model:
    """Multilevel (random intercepts, crossed on two-way data), non-centred; assumes U independent of x."""
    return build_strategy(MODELS["multilevel"], data, priors, family)


def build_mundlak(data: GroupedData, priors: Mapping[str, Prior], family: Family) -> pm.Model:
    """Mundlak: multilevel plus the observed group mean (and period mean) of each x as a proxy for U."""
    return build_strategy(MODELS["mundlak"], data, priors, family)


def build_latent(data: GroupedData, priors: Mapping[str, Prior], family: Family) -> pm.Model:
    """Latent Mundlak: a latent group variable u_k per x explains both x_k and y; bux > 0 fixes its sign.

    The measurement model ``x_ik ~ Normal(ax_k + bux_k u[g, k] (+ w[t, k]), sigma_k)`` enters through its
    sufficient statistics per group (and period; see :func:`_x_measurement`).
    """
    return build_strategy(MODELS["latent"], data, priors, family)


def build_latent_shared(data: GroupedData, priors: Mapping[str, Prior], family: Family) -> pm.Model:
    """Latent Mundlak with one latent group variable u shared by every x (one-way data only).

    ``x_ik ~ Normal(ax_k + bux_k u[g], sigma_k)`` and ``eta += buy u[g]``: one confounder measured by all
    the x. The first x fixes u's sign (``bux`` of the first x is positive, the others ``bux_other`` are
    free in sign); u is sampled through the true group mean of the first x, as in :func:`build_latent`.
    With one x it is the latent model.
    """
    return build_strategy(MODELS["latent_shared"], data, priors, family)


_FIXED_BZY = (
    "z is constant within each group, so under free group intercepts only the prior separates bzy from the"
    " intercepts: its posterior is mostly prior and its interval is wide."
)

MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            "naive",
            "Naive",
            "eta = a0 + bxy·x + bzy·z[g]",
            "Ignores the groups; x carries the group confounder U into bxy.",
            build_naive,
            cost=1,
            target_accept=0.8,
            phrase="a naive regression",
            intercepts="single",
        ),
        ModelSpec(
            "fixed",
            "Fixed effects",
            "eta = a[g] + bxy·x + bzy·z[g],  a[g] ~ Normal(0, 10)",
            "A free intercept per group absorbs U, so bxy is estimated within groups.",
            build_fixed,
            {"bzy": _FIXED_BZY},
            cost=4,
            # groups whose y is all 0 let their intercept wander into the Normal(0, 10) prior's tail, where
            # even 0.9 left a divergence now and then
            target_accept=0.95,
            phrase="fixed effects",
            intercepts="free",
        ),
        ModelSpec(
            "multilevel",
            "Multilevel",
            "eta = abar + tau·e[g] + bxy·x + bzy·z[g],  e[g] ~ Normal(0, 1)",
            "Partially pooled intercepts assume U is unrelated to x, so bxy stays confounded.",
            build_multilevel,
            phrase="a multilevel (random intercepts) model",
        ),
        ModelSpec(
            "mundlak",
            "Mundlak",
            "eta = abar + tau·e[g] + bxy·x + bzy·z[g] + buy·xbar[g]",
            "The group mean of x stands in for U, giving within-group bxy with pooled intercepts.",
            build_mundlak,
            phrase="the Mundlak device",
            group_mean_of_x=True,
        ),
        ModelSpec(
            "latent",
            "Latent Mundlak",
            "eta = abar + tau·e[g] + bxy·x + bzy·z[g] + buy·u[g],  x ~ Normal(ax + bux·u[g], sigma)",
            "A latent group variable u, measured through x, stands in for U (bux > 0 fixes its sign).",
            build_latent,
            cost=5,
            phrase="a latent Mundlak model",
            latent_group_variable="per_x",
        ),
        ModelSpec(
            "latent_shared",
            "Latent Mundlak (shared u)",
            "eta = abar + tau·e[g] + bxy·x + bzy·z[g] + buy·u[g],  x_k ~ Normal(ax_k + bux_k·u[g], sigma_k)",
            "One latent group variable u, measured by every x, stands in for U (the first x fixes its sign).",
            build_latent_shared,
            cost=5,
            phrase="a latent Mundlak model with one u shared by the x",
            latent_group_variable="shared",
        ),
    )
}
"""The registry of strategies, in the seed's order, then the shared-latent variant."""
DEFAULT_MODELS = ("naive", "fixed", "multilevel", "mundlak", "latent")
"""The seed's five strategies, fitted unless a user names others."""


def get_spec(name: str) -> ModelSpec:
    """Look a strategy up by name, with a clear error for unknown names."""
    try:
        return MODELS[name]
    except KeyError:
        raise UnknownModelError(f"Unknown model {name!r}; choose from: {', '.join(MODELS)}.") from None


def build_model(
    name: str,
    data: GroupedData,
    priors: Mapping[str, Prior] | None = None,
    family: str | Family = "bernoulli",
) -> pm.Model:
    """Build the PyMC model of strategy ``name`` for ``data``.

    Parameters
    ----------
    name : str
        One of ``naive``, ``fixed``, ``multilevel``, ``mundlak``, ``latent``, ``latent_shared``.
    data : GroupedData
        The data.
    priors : mapping of str to Prior, optional
        Priors to override by parameter name.
    family : str or Family
        Outcome family: ``bernoulli`` (default), ``poisson`` or ``gaussian``.

    Returns
    -------
    pymc.Model
    """
    return get_spec(name).build(data, resolve_priors(priors), get_family(family))
