"""Fused log-density and gradient kernels for the five models in every family, sampled by nutpie directly.

nutpie's PyMC path compiles each model's log-density and gradient with numba on every run (most of that
time is numba's type inference of the generated graph, which cannot be cached). The models here share one
structure,

    eta_i = c[g_i] (+ d[t_i]) + sum_k bxy_k x_ik,   c[g] = intercept_g + sum_j bzy_j z_gj + sum_k buy_k w_gk,

so one hand-fused kernel serves them all: a single pass over the units accumulates the log-likelihood,
the gradient of the slopes and the residual sum of each group, and the group-level chain rule costs O(G K).
The units are kept sorted by group, so that pass is a run of straight SIMD loops (``exp`` and ``log1p``
from :mod:`groupfx.engines.vector_math`), several times cheaper per unit than scalar libm calls or vectorised
NumPy (measured in ``benchmarks/kernel_results.md`` and ``benchmarks/design_results.md``).
It is compiled once by numba and cached on disk, so later runs load it instead of compiling. The kernel
serves any family (Bernoulli, Binomial, Poisson with its exposure offset, Gaussian with ``sigma_y`` last in
the vector) and reads each named prior from a small table (:func:`prior_table`, one row per parameter: a
code and two numbers), so it serves every prior that table expresses: Normal(mu, sigma) on the location
parameters, Exponential(lam), HalfNormal(sigma), Gamma(alpha, beta) or HalfStudentT(nu, sigma) on the
scales (sampled on the log scale with the Jacobian). Other priors go through the PyMC model. Tests hold its
log-density (up to a constant) and gradient equal to the PyMC model's, under the default priors and under
drawn ones.

On two-way data (a period beside the group, :attr:`GroupedData.two_way`) the units stay sorted by group and
each unit's period is gathered: ``d[t]`` is the period part (free intercepts ``at`` with the first period's
0; or pooled ``f ~ ZeroSumNormal(tau_t)``; plus ``bvy`` times the period means of x for the Mundlak device,
or times the latent period shift ``v`` for the latent model), the pass sums the residuals per period beside
those per group, and the period blocks' chain rule costs O(T K) (O(G T K) for the latent shift's
measurement). The zero-sum variables hold PyMC's unconstrained values (its ``ZeroSumTransform``: T - 1 free
values per row, an isometry onto the vectors that sum to zero, so no Jacobian term).

Which kernel serves a strategy is read from its traits (:func:`kernel_kind`), and the unconstrained
parameter vector is laid out once, in :class:`KernelLayout`, which every reader (the kernel, the expansion
of draws, the C callbacks, the initial point) asks by block name. The kernel's data are one
:class:`KernelArrays`, read by field name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

import numba
import numpy as np

from groupfx.data.grouped import GroupedData
from groupfx.engines import unit_pass
from groupfx.models.builders import MODELS, ModelSpec, get_spec
from groupfx.models.families import FAMILIES, Family, get_family
from groupfx.models.priors import DEFAULT_PRIORS, SCALE_PARAMETERS, Prior

NAIVE, FIXED, MULTILEVEL, MUNDLAK, LATENT = range(5)
BERNOULLI, BINOMIAL, POISSON, GAUSSIAN = (unit_pass.BERNOULLI, unit_pass.BINOMIAL, unit_pass.POISSON,
                                         unit_pass.GAUSSIAN)  # fmt: skip
PRECISIONS = ("float64", "float32")


def kernel_kind(spec: ModelSpec) -> int | None:
    """The kernel that expresses a strategy's linear predictor, read from its traits; None where no kernel
    does (a latent u shared by every x, or a proxy of U beside free or single intercepts)."""
    if spec.group_proxy is None:
        return {"single": NAIVE, "free": FIXED, "pooled": MULTILEVEL}[spec.intercepts]
    if spec.intercepts != "pooled":
        return None
    if spec.group_proxy == "xbar" and spec.latent_group_variable is None:
        return MUNDLAK
    if spec.latent_group_variable == "per_x" and not spec.group_mean_of_x:
        return LATENT
    return None


SERVED_MODELS = tuple(name for name, spec in MODELS.items() if kernel_kind(spec) is not None)
"""The registry's strategies a fused kernel expresses, in the registry's order."""


def supported(
    model: str, family: str | Family, priors: Mapping[str, Prior], data: GroupedData | None = None
) -> bool:
    """Whether the fused kernel serves this model: every prior it reads one the kernel's prior table
    expresses (:func:`prior_row`), and (given ``data``) a y the family can hold (any other y goes to the
    PyMC model, whose likelihood refuses it with a clear error)."""
    family = family if isinstance(family, Family) else FAMILIES.get(family)
    spec = MODELS.get(model)
    if family is None or spec is None or kernel_kind(spec) is None:
        return False
    if data is not None and has_period_part(kernel_kind(spec), data) and data.n_times < 2:
        return False  # one period: no period part to speak of; the PyMC model says what it makes of it
    used = (spec.priors_used if data is None else spec.priors_read(data)) + family.noise_parameters
    return (data is None or _valid_outcome(family, data)) and all(
        prior_row(name, priors.get(name, DEFAULT_PRIORS[name])) is not None for name in used
    )


PRIOR_PARAMETERS = ("a0", "a", "abar", "tau", "bxy", "bzy", "buy", "bux", "ax", "sigma", "sigma_y", "at",
                    "tau_t", "bvy", "bpy", "bvx")  # fmt: skip
"""The rows of the kernel's prior table (:func:`prior_table`): every named prior a served model may read."""
(P_A0, P_A, P_ABAR, P_TAU, P_BXY, P_BZY, P_BUY, P_BUX, P_AX, P_SIGMA, P_SIGMA_Y, P_AT, P_TAU_T, P_BVY, P_BPY,
 P_BVX) = range(len(PRIOR_PARAMETERS))  # fmt: skip
NORMAL, EXPONENTIAL, HALF_NORMAL, GAMMA, HALF_STUDENT_T = range(5)
"""The codes of the distributions the kernel expresses: Normal(mu, sigma) for the location parameters;
Exponential(lam), HalfNormal(sigma), Gamma(alpha, beta) and HalfStudentT(nu, sigma) for the scales (each
sampled on the log scale, with its Jacobian)."""
PRIOR_COLUMNS = 3
"""The columns of the prior table: the distribution's code, then its two numbers (``mu, sigma``; ``lam, 0``;
``sigma, 0``; ``alpha, beta`` as PyMC's Gamma has them; ``nu, sigma``)."""


def _numbers(parameters: Mapping[str, float], allowed: set[str]) -> dict[str, float] | None:
    if not set(parameters) <= allowed:
        return None
    return {name: float(value) for name, value in parameters.items()}


def _spread(numbers: Mapping[str, float], precision: str) -> float | None:
    """A standard deviation given as ``sigma`` or as the precision ``tau``/``lam`` (1 when neither)."""
    if "sigma" in numbers and precision in numbers:
        return None
    return 1.0 / np.sqrt(numbers[precision]) if precision in numbers else numbers.get("sigma", 1.0)


def prior_row(name: str, prior: Prior) -> tuple[float, float, float] | None:
    """The prior table's row for parameter ``name`` under ``prior`` (code and two numbers), or None where
    the kernel cannot express it (the PyMC model serves it then).

    A location parameter takes a Normal (``mu``, and ``sigma`` or ``tau``); a scale parameter
    (:data:`~groupfx.models.priors.SCALE_PARAMETERS`) an Exponential (``lam`` or ``scale``), a HalfNormal
    (``sigma`` or ``tau``), a Gamma (``alpha, beta`` or ``mu, sigma``) or a HalfStudentT (``nu``, and
    ``sigma`` or ``lam``).
    """
    kind, given = prior.distribution, prior.parameters
    if name not in SCALE_PARAMETERS:
        numbers = _numbers(given, {"mu", "sigma", "tau"}) if kind == "Normal" else None
        spread = None if numbers is None else _spread(numbers, "tau")
        return None if spread is None else (float(NORMAL), numbers.get("mu", 0.0), spread)
    if kind == "Exponential":
        numbers = _numbers(given, {"lam", "scale"})
        if numbers is None or len(numbers) != 1:
            return None
        return (float(EXPONENTIAL), numbers["lam"] if "lam" in numbers else 1.0 / numbers["scale"], 0.0)
    if kind == "HalfNormal":
        numbers = _numbers(given, {"sigma", "tau"})
        spread = None if numbers is None else _spread(numbers, "tau")
        return None if spread is None else (float(HALF_NORMAL), spread, 0.0)
    if kind == "Gamma":
        numbers = _numbers(given, {"alpha", "beta", "mu", "sigma"})
        if numbers is not None and set(numbers) == {"alpha", "beta"}:
            return (float(GAMMA), numbers["alpha"], numbers["beta"])
        if numbers is not None and set(numbers) == {"mu", "sigma"}:
            mu, sigma = numbers["mu"], numbers["sigma"]
            return (float(GAMMA), mu * mu / (sigma * sigma), mu / (sigma * sigma))
        return None
    if kind == "HalfStudentT":
        numbers = _numbers(given, {"nu", "sigma", "lam"})
        spread = None if numbers is None or "nu" not in numbers else _spread(numbers, "lam")
        return None if spread is None else (float(HALF_STUDENT_T), numbers["nu"], spread)
    return None


def prior_table(priors: Mapping[str, Prior] | None = None, read: tuple[str, ...] = ()) -> np.ndarray:
    """The kernel's prior table, ``(len(PRIOR_PARAMETERS), PRIOR_COLUMNS)`` float64: each parameter's row
    (:func:`prior_row`) under ``priors`` (the defaults where a name is absent).

    Raises
    ------
    ValueError
        Where a parameter the model reads has a prior the kernel cannot express (a parameter it does
        not read keeps its default's row).
    """
    priors = priors or {}
    table = np.zeros((len(PRIOR_PARAMETERS), PRIOR_COLUMNS))
    for i, name in enumerate(PRIOR_PARAMETERS):
        prior = priors.get(name, DEFAULT_PRIORS[name])
        row = prior_row(name, prior)
        if row is None and name in read:
            raise ValueError(f"the fused kernel cannot express the prior {prior.describe()} of {name}")
        table[i] = row if row is not None else prior_row(name, DEFAULT_PRIORS[name])
    return table


def has_period_part(kind: int | None, data: GroupedData) -> bool:
    """Whether the kernel's predictor holds a period part on ``data`` (two-way data, any kernel but the
    naive one, which ignores both grouping factors)."""
    return data.two_way and kind not in (None, NAIVE)


def _period_shares(kind: int, data: GroupedData) -> bool:
    """Whether the group part holds the groups' shares of the periods (Mundlak, where the shares differ
    between groups: an unbalanced panel)."""
    return kind == MUNDLAK and has_period_part(kind, data) and data.period_shares_vary


def predictor_parameters(kind: int, data: GroupedData) -> list[str]:
    """The posterior variables :func:`group_predictor`, :func:`period_predictor` and the slopes of x read,
    for a model kind on ``data``."""
    names = [*{NAIVE: ["a0"], FIXED: ["a"]}.get(kind, ["abar", "tau", "e"]), "bxy"]
    names += ["bzy"] if data.n_z else []
    names += ["buy"] if kind >= MUNDLAK else []
    names += ["u"] if kind == LATENT else []
    if has_period_part(kind, data):
        names += ["at"] if kind == FIXED else ["f"]
        names += ["bvy"] if kind >= MUNDLAK else []
        names += ["bpy"] if _period_shares(kind, data) else []
        names += ["v"] if kind == LATENT else []
    return names


def group_predictor(
    kind: int, draws: Mapping[str, np.ndarray], data: GroupedData, groups: slice | np.ndarray
) -> np.ndarray:
    """The group-level part of the linear predictor of ``groups`` for every draw, shape (draws, groups).

    The intercept (a0, a[g], or abar + tau e[g]) plus bzy z[g], and buy xbar[g] (Mundlak) or buy u[g]
    (latent), and on an unbalanced two-way panel the Mundlak device's bpy times the group's shares of the
    periods; ``draws`` holds the posterior with chains and draws flattened into the first axis.
    """
    z, xbar = data.z[groups], data.xbar[groups]
    if kind == NAIVE:
        c = np.repeat(draws["a0"][:, None], z.shape[0], axis=1)
    elif kind == FIXED:
        c = draws["a"][:, groups].copy()
    else:
        c = draws["abar"][:, None] + draws["tau"][:, None] * draws["e"][:, groups]
    if z.shape[1]:
        c += draws["bzy"] @ z.T
    if kind == MUNDLAK:
        c += draws["buy"] @ xbar.T
    if kind == LATENT:
        c += np.einsum("sgk,sk->sg", draws["u"][:, groups], draws["buy"])
    if _period_shares(kind, data):
        c += draws["bpy"] @ data.period_shares[groups].T
    return c


def period_predictor(kind: int, draws: Mapping[str, np.ndarray], data: GroupedData) -> np.ndarray:
    """The period part of the linear predictor of every period for every draw, shape (draws, T); (draws, 0)
    where the predictor has none (one-way data, the naive model).

    The free intercepts (0 for the first period, then ``at``) or the pooled ``f``, plus ``bvy`` times the
    period means of x (Mundlak) or times the latent period shift ``v`` (latent).
    """
    n_draws = draws["bxy"].shape[0]
    if not has_period_part(kind, data):
        return np.zeros((n_draws, 0))
    if kind == FIXED:
        return np.concatenate([np.zeros((n_draws, 1)), draws["at"]], axis=1)
    d = np.array(draws["f"], dtype=float)
    if kind == MUNDLAK:
        d += draws["bvy"] @ data.xbar_time.T
    if kind == LATENT:
        d += np.einsum("stk,sk->st", draws["v"], draws["bvy"])
    return d


def _valid_outcome(family: Family, data: GroupedData) -> bool:
    y = np.asarray(data.y, dtype=float)
    if family.invalid(y).any():
        return False
    return not family.needs_trials or (data.trials is not None and bool((y <= data.trials).all()))


SLOTS = ("a0", "a", "abar", "log_tau", "e", "bxy", "bzy", "buy", "log_bux", "ax", "log_sigma", "m", "u",
         "log_sigma_y", "at", "log_tau_t", "f", "bvy", "bpy", "log_bvx", "w", "v", "f_z")  # fmt: skip
"""The rows of :attr:`KernelLayout.table`: every block a kernel's vector may hold, and the latent ``u`` and
``v`` (variables of the expanded draws only; so is ``f`` where the block is its non-centred ``f_z``)."""
(A0, A, ABAR, LOG_TAU, E, BXY, BZY, BUY, LOG_BUX, AX, LOG_SIGMA, M, U, LOG_SIGMA_Y, AT, LOG_TAU_T, F, BVY,
 BPY, LOG_BVX, W, V, F_Z) = range(len(SLOTS))  # fmt: skip
START, STOP, OUT, LOG, ZERO_SUM, BETWEEN = range(6)
"""The columns of :attr:`KernelLayout.table`: start and stop in the unconstrained vector, start in the
expanded draws, 1 where the variable is the exponential of the block, 1 where it is the zero-sum
extension of the block's rows (T - 1 free values to T), and 1 where the block holds the between slope of
a proxy (its variable plus ``bxy``, times ``bux`` or ``bvx`` for a latent proxy; see
:class:`KernelLayout`; -1 in all where absent)."""
N_COLUMNS = 6


@dataclass(frozen=True)
class Block:
    """One block of the unconstrained vector and the posterior variable it gives.

    Attributes
    ----------
    name : str
        The block, e.g. ``"log_tau"`` (a row of :data:`SLOTS`).
    variable : str
        The posterior variable, named as in the PyMC model, e.g. ``"tau"``.
    start, stop : int
        Where the block sits in the unconstrained vector.
    shape : tuple of int
        The variable's shape (``()`` for a scalar).
    dims : tuple of str
        The variable's dimensions.
    log : bool
        Whether the variable is the exponential of the block (a positive scale), else the block itself.
    zero_sum : bool
        Whether the variable sums to zero along its last axis and the block holds PyMC's unconstrained
        values of it (``ZeroSumTransform``: one fewer per row than the variable).
    between : bool
        Whether the block holds the between slope of a proxy of U rather than the variable itself
        (``buy + bxy`` for the group means of x, ``buy + bxy bux`` for the latent u; the same for ``bvy``
        on the period side): see :class:`KernelLayout`.
    """

    name: str
    variable: str
    start: int
    stop: int
    shape: tuple[int, ...]
    dims: tuple[str, ...]
    log: bool = False
    zero_sum: bool = False
    between: bool = False

    @property
    def slice(self) -> slice:
        """``slice(start, stop)``."""
        return slice(self.start, self.stop)

    @property
    def size(self) -> int:
        """The block's length in the vector."""
        return self.stop - self.start

    @property
    def variable_size(self) -> int:
        """The variable's number of values in the expanded draws."""
        return int(np.prod(self.shape))

    @property
    def value_shape(self) -> tuple[int, ...]:
        """The shape of the block's unconstrained values (the variable's, less one on a zero-sum axis)."""
        return (*self.shape[:-1], self.shape[-1] - 1) if self.zero_sum else self.shape


@dataclass(frozen=True)
class KernelLayout:
    """The one layout of a fused kernel's unconstrained vector and of its expanded draws.

    Built from the strategy's traits (:class:`~groupfx.models.builders.ModelSpec`) and the data's sizes
    (``K`` x columns, ``J`` z columns, ``G`` groups, ``T`` periods of two-way data); the kernel, the
    expansion of draws (in Python and in the C callbacks), the initial point and the tests all read it by
    block name::

        intercepts  single: a0 | free: a[G] | pooled: abar, log tau, e[G]
        slopes      bxy[K], bzy[J]
        periods     free: at[T - 1] | pooled: log tau_t, f[T - 1 free of T]       (two-way data;
                    beside a proxy of U f_z, with f = tau_t f_z expanded after it)
        proxy of U  buy[K] (group mean of x or latent u per x)
        Mundlak     bvy[K] (period means of x), bpy[T - 1] (shares varying)        (two-way data)
        latent u    log bux[K], ax[K], log sigma[K], m[G, K]   (u = (m - ax) / bux, expanded after m)
        latent v    log bvx[K], w[K, T - 1 free of T], bvy[K]  (v = (w / bvx)', expanded after w; two-way)
        noise       log sigma_y (Gaussian), last

    The proxies' blocks hold their between slopes, not their coefficients: ``buy + bxy`` for the group
    means of x (the slope of the groups' intercepts on their means of x), ``buy + bxy bux`` for the latent
    u, and the same for ``bvy`` with the period means (``bvx`` for the latent shift). The Mundlak model
    identifies ``bxy`` from the variation within groups and ``buy + bxy`` from that between them, so the
    two are nearly independent in the posterior, while ``buy`` and ``bxy`` are strongly correlated (a
    diagonal mass matrix does not see that: with thousands of groups the sampler took many more steps per
    draw). The change of variables has Jacobian 1 and the priors stay on ``buy`` and ``bvy``, so the
    posterior is the same; the expanded draws give ``buy`` and ``bvy`` (:func:`expand_into`), and
    :meth:`FusedModel.model_values` maps a vector to the PyMC model's values.

    Attributes
    ----------
    kind : int
        The kernel (:data:`NAIVE` ... :data:`LATENT`).
    blocks : tuple of Block
        In the vector's order; they tile ``0 .. n_params``.
    table : numpy.ndarray
        ``(len(SLOTS), N_COLUMNS)`` int64: per slot its ``START, STOP, OUT, LOG, ZERO_SUM, BETWEEN`` (see
        :data:`SLOTS`), what the numba code reads.
    n_times : int
        Periods of the predictor's period part (0 where it has none: one-way data, the naive model).
    """

    kind: int
    blocks: tuple[Block, ...]
    table: np.ndarray = field(compare=False, repr=False)
    n_times: int = 0

    @classmethod
    def of(
        cls,
        spec: ModelSpec,
        n_groups: int,
        n_x: int,
        n_z: int,
        noise_parameters: tuple[str, ...] = (),
        n_times: int = 0,
        period_shares: bool = False,
        between: bool = True,
    ) -> KernelLayout:
        """The layout of strategy ``spec`` for data of these sizes and a family with these noise parameters
        (each last in the vector, on the log scale); ``n_times`` periods (0: one-way data) of a panel
        whose Mundlak group part holds the ``period_shares`` or not; ``between`` samples the proxies'
        between slopes (the default) rather than their coefficients."""
        kind = kernel_kind(spec)
        if kind is None:
            raise ValueError(f"no fused kernel expresses the {spec.name!r} model")
        if kind == NAIVE:
            n_times = 0  # the naive model ignores the periods as it does the groups
        if n_times == 1:
            raise ValueError("a period part needs two periods or more")
        group, x_var, rest = ("group",), ("x_var",), ("period_rest",)
        blocks: list[Block] = []

        def add(name, variable, shape, dims, log=False, zero_sum=False, between=False):
            at = blocks[-1].stop if blocks else 0
            size = int(np.prod(shape)) // shape[-1] * (shape[-1] - 1) if zero_sum else int(np.prod(shape))
            blocks.append(Block(name, variable, at, at + size, shape, dims, log, zero_sum, between))

        if spec.intercepts == "single":
            add("a0", "a0", (), ())
        elif spec.intercepts == "free":
            add("a", "a", (n_groups,), group)
        else:
            add("abar", "abar", (), ())
            add("log_tau", "tau", (), (), log=True)
            add("e", "e", (n_groups,), group)
        add("bxy", "bxy", (n_x,), x_var)
        add("bzy", "bzy", (n_z,), ("z_var",))
        if n_times and kind == FIXED:
            add("at", "at", (n_times - 1,), rest)
        elif n_times:
            add("log_tau_t", "tau_t", (), (), log=True)
            if spec.group_proxy is None:  # centred, as the builder holds it
                add("f", "f", (n_times,), ("time",), zero_sum=True)
            else:  # non-centred beside a stand-in for the shocks: f = tau_t f_z
                add("f_z", "f_z", (n_times,), ("time",), zero_sum=True)
        if spec.group_proxy is not None:
            add("buy", "buy", (n_x,), x_var, between=between)
        if n_times and kind == MUNDLAK:
            add("bvy", "bvy", (n_x,), x_var, between=between)
            if period_shares:
                add("bpy", "bpy", (n_times - 1,), rest)
        if spec.latent_group_variable is not None:
            add("log_bux", "bux", (n_x,), x_var, log=True)
            add("ax", "ax", (n_x,), x_var)
            add("log_sigma", "sigma", (n_x,), x_var, log=True)
            add("m", "m", (n_groups, n_x), ("group", "x_var"))
            if n_times:
                add("log_bvx", "bvx", (n_x,), x_var, log=True)
                add("w", "w", (n_x, n_times), ("x_var", "time"), zero_sum=True)
                add("bvy", "bvy", (n_x,), x_var, between=between)
        for name in noise_parameters:
            add(f"log_{name}", name, (), (), log=True)
        table = np.full((len(SLOTS), N_COLUMNS), -1, dtype=np.int64)
        out = 0
        for block in blocks:
            if block.name not in SLOTS:
                raise ValueError(f"the kernels have no slot for the block {block.name!r}")
            row = (block.start, block.stop, out, int(block.log), int(block.zero_sum), int(block.between))
            table[SLOTS.index(block.name)] = row
            out += block.variable_size
            if block.name == "m":  # u = (m - ax) / bux follows m in the expanded draws
                table[U, OUT] = out
                out += block.variable_size
            if block.name == "w":  # v = (w / bvx)' follows w
                table[V, OUT] = out
                out += block.variable_size
            if block.name == "f_z":  # f = tau_t f_z follows f_z
                table[F, OUT] = out
                out += block.variable_size
        return cls(kind, tuple(blocks), table, n_times)

    @property
    def n_params(self) -> int:
        """The length of the unconstrained vector."""
        return self.blocks[-1].stop if self.blocks else 0

    @property
    def two_way(self) -> bool:
        """Whether the predictor holds a period part (:attr:`n_times` > 0)."""
        return self.n_times > 0

    def __getitem__(self, name: str) -> Block:
        for block in self.blocks:
            if block.name == name:
                return block
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        return any(block.name == name for block in self.blocks)

    def slice(self, name: str) -> slice:
        """Where block ``name`` sits in the unconstrained vector."""
        return self[name].slice

    def variables(self) -> list[tuple[str, tuple[int, ...], tuple[str, ...]]]:
        """``(name, shape, dims)`` of each expanded variable, in the expanded draws' order: each block's
        variable (a block of size 0, ``bzy`` without z, gives none), the latent ``u`` after ``m`` and the
        latent period shift ``v`` (dims ``time, x_var``) after ``w``."""
        out = []
        for block in self.blocks:
            if block.shape == () or block.variable_size:
                out.append((block.variable, block.shape, block.dims))
            if block.name == "m":
                out.append(("u", block.shape, block.dims))
            if block.name == "w":
                out.append(("v", block.shape[::-1], block.dims[::-1]))
            if block.name == "f_z":
                out.append(("f", block.shape, block.dims))
        return out

    def expanded_slices(self) -> dict[str, slice]:
        """Where each expanded variable sits in the flat expanded draws, by name."""
        sizes = {name: int(np.prod(shape)) for name, shape, _ in self.variables()}
        out, at = {}, 0
        for name, size in sizes.items():
            out[name] = slice(at, at + size)
            at += size
        return out


@numba.njit(nogil=True, cache=True)
def _zero_sum_extend(values, at, length, out, out_at):
    """Write the ``length + 1`` values summing to zero that PyMC's ``ZeroSumTransform`` makes of
    ``values[at:at + length]`` into ``out[out_at:]``: ``v - s / (sqrt(n) + n)``, then ``-s / sqrt(n)``."""
    n = length + 1.0
    root = np.sqrt(n)
    total = 0.0
    for i in range(length):
        total += values[at + i]
    norm = total / (root + n)
    for i in range(length):
        out[out_at + i] = values[at + i] - norm
    out[out_at + length] = -total / root


@numba.njit(nogil=True, cache=True)
def _zero_sum_pullback(gradient, grad, at):
    """Add the gradient by the ``len(gradient) - 1`` unconstrained values of a zero-sum vector whose own
    gradient is ``gradient`` to ``grad[at:]`` (the transpose of :func:`_zero_sum_extend`)."""
    length = gradient.shape[0] - 1
    n = length + 1.0
    total = 0.0
    for i in range(length):
        total += gradient[i]
    shared = total / (np.sqrt(n) + n) + gradient[length] / np.sqrt(n)
    for i in range(length):
        grad[at + i] += gradient[i] - shared


@numba.njit(nogil=True, cache=True)
def _squares(theta, at, length):
    total = 0.0
    for i in range(length):
        total += theta[at + i] * theta[at + i]
    return total


@numba.njit(nogil=True, cache=True)
def _group_slopes_grad(grad, theta, at, resid, covariates):
    """Gradient of the likelihood by the slopes ``theta[at:at + J]`` of group-level ``covariates`` (G, J)
    (their prior's is added where the prior is, :func:`_normal_prior`)."""
    for j in range(covariates.shape[1]):
        total = 0.0
        for gi in range(covariates.shape[0]):
            total += resid[gi] * covariates[gi, j]
        grad[at + j] += total


@numba.njit(nogil=True, cache=True, inline="always")
def _normal(priors, row, x):
    """Log-density (less its constant) and derivative of the location parameter ``x`` under row ``row`` of
    the prior table: Normal(mu, sigma)."""
    d = x - priors[row, 1]
    sigma = priors[row, 2]
    q = d / sigma
    return -0.5 * q * q, -d / (sigma * sigma)


@numba.njit(nogil=True, cache=True)
def _proxy_slope(theta, grad, table, slot, priors, row, k, scale, log_scale_at):
    """Coefficient ``k`` of the proxy block ``slot`` (``buy`` or ``bvy``) and its Normal prior ``row``
    (log-density added to the return, gradient to ``grad``): the block itself, or where it holds the between
    slope (column ``BETWEEN``) that slope less ``bxy_k`` times ``scale`` (1, or a latent proxy's loading,
    the exponential of ``theta[log_scale_at]``; ``log_scale_at`` < 0 for 1). Returns
    ``(coefficient, log-density)``."""
    at = table[slot, START] + k
    value = theta[at]
    bxy_at = table[BXY, START] + k
    between = table[slot, BETWEEN] == 1
    if between:
        value -= theta[bxy_at] * scale
    lp, slope = _normal(priors, row, value)
    grad[at] += slope
    if between:
        grad[bxy_at] -= slope * scale
        if log_scale_at >= 0:
            grad[log_scale_at] -= slope * theta[bxy_at] * scale
    return value, lp


@numba.njit(nogil=True, cache=True)
def _proxy_chain_rule(grad, theta, table, slot, k, total, scale, log_scale_at):
    """Add the likelihood's derivative ``total`` by coefficient ``k`` of proxy block ``slot`` (times the
    proxy: the sum over groups or periods of residual times proxy) to the block and, where it holds the
    between slope, to ``bxy_k`` (times ``-scale``) and the loading's log (``log_scale_at`` >= 0)."""
    grad[table[slot, START] + k] += total
    if table[slot, BETWEEN] == 1:
        bxy_at = table[BXY, START] + k
        grad[bxy_at] -= total * scale
        if log_scale_at >= 0:
            grad[log_scale_at] -= total * theta[bxy_at] * scale


@numba.njit(nogil=True, cache=True)
def _normal_prior(priors, row, theta, grad, at, length):
    """Add the gradient of the Normal prior ``row`` of ``theta[at:at + length]`` to ``grad``; returns the
    log-density's share."""
    lp = 0.0
    for i in range(length):
        value, slope = _normal(priors, row, theta[at + i])
        lp += value
        grad[at + i] += slope
    return lp


@numba.njit(nogil=True, cache=True, error_model="numpy", inline="always")
def _log_scale(priors, row, log_s):
    """Log-density (less its constant) and derivative of a scale's ``log_s = log s`` under row ``row`` of the
    prior table, with the Jacobian ``log s``: Exponential(lam), HalfNormal(sigma), Gamma(alpha, beta) or
    HalfStudentT(nu, sigma) of ``s``."""
    s = np.exp(log_s)
    code = priors[row, 0]
    if code == EXPONENTIAL:
        lam = priors[row, 1]
        return -lam * s + log_s, -lam * s + 1.0
    if code == HALF_NORMAL:
        q = s / priors[row, 1]
        return -0.5 * q * q + log_s, -q * q + 1.0
    if code == GAMMA:
        alpha, beta = priors[row, 1], priors[row, 2]
        return alpha * log_s - beta * s, alpha - beta * s
    nu, spread = priors[row, 1], priors[row, 2]  # HALF_STUDENT_T
    q = s / spread
    q = q * q / nu
    return -0.5 * (nu + 1.0) * np.log1p(q) + log_s, -(nu + 1.0) * q / (1.0 + q) + 1.0


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _period_terms(
    theta, grad, kind, table, priors, c, d, shifts, shifts_grad, xbar_t, shares, n_t, x_sum_t, cells
):
    """The period blocks' log-prior (and the latent shift's measurement of x) at ``theta``: fills the
    period part ``d`` (T,), adds the Mundlak shares' term to ``c`` (G,), the latent shifts ``w`` to
    ``shifts`` (K, T) and their measurement's gradient to ``shifts_grad``; the gradient of the terms that
    do not pass through the units goes into ``grad``. Returns the log-density's share."""
    n_times, n_x = xbar_t.shape
    n_groups = c.shape[0]
    rest = n_times - 1
    lp = 0.0
    if kind == FIXED:  # at by its prior, the first period's intercept 0
        at_at = table[AT, START]
        lp += _normal_prior(priors, P_AT, theta, grad, at_at, rest)
        for ti in range(rest):
            d[ti + 1] = theta[at_at + ti]
    elif table[F, START] >= 0:  # tau_t by its prior on the log scale; f ~ ZeroSumNormal(tau_t)
        tau_at, f_at = table[LOG_TAU_T, START], table[F, START]
        log_tau = theta[tau_at]
        tau = np.exp(log_tau)
        squares = _squares(theta, f_at, rest)
        prior_lp, prior_grad = _log_scale(priors, P_TAU_T, log_tau)
        lp += prior_lp - rest * log_tau - 0.5 * squares / (tau * tau)
        grad[tau_at] += prior_grad - rest + squares / (tau * tau)
        for i in range(rest):
            grad[f_at + i] += -theta[f_at + i] / (tau * tau)
        _zero_sum_extend(theta, f_at, rest, d, 0)
    else:  # non-centred: f = tau_t f_z, f_z ~ ZeroSumNormal(1) on T - 1 free values
        tau_at, f_at = table[LOG_TAU_T, START], table[F_Z, START]
        log_tau = theta[tau_at]
        tau = np.exp(log_tau)
        prior_lp, prior_grad = _log_scale(priors, P_TAU_T, log_tau)
        lp += prior_lp - 0.5 * _squares(theta, f_at, rest)
        grad[tau_at] += prior_grad
        for i in range(rest):
            grad[f_at + i] += -theta[f_at + i]
        _zero_sum_extend(theta, f_at, rest, d, 0)
        for ti in range(n_times):
            d[ti] *= tau
    if kind == MUNDLAK:  # bvy on the period means of x, bpy on the shares, each by its prior
        for k in range(n_x):
            b, prior_lp = _proxy_slope(theta, grad, table, BVY, priors, P_BVY, k, 1.0, -1)
            lp += prior_lp
            for ti in range(n_times):
                d[ti] += b * xbar_t[ti, k]
        bpy_at = table[BPY, START]
        if bpy_at >= 0:
            lp += _normal_prior(priors, P_BPY, theta, grad, bpy_at, rest)
            for j in range(rest):
                b = theta[bpy_at + j]
                for gi in range(n_groups):
                    c[gi] += b * shares[gi, j]
    if kind == LATENT:
        bvx_at, w_at = table[LOG_BVX, START], table[W, START]
        m_at, sigma_at = table[M, START], table[LOG_SIGMA, START]
        for k in range(n_x):
            # bvx by its prior on the log scale, w ~ ZeroSumNormal(bvx), bvy by its prior
            log_bvx = theta[bvx_at + k]
            bvx = np.exp(log_bvx)
            b, bvy_lp = _proxy_slope(theta, grad, table, BVY, priors, P_BVY, k, bvx, bvx_at + k)
            lp += bvy_lp
            squares = _squares(theta, w_at + k * rest, rest)
            prior_lp, prior_grad = _log_scale(priors, P_BVX, log_bvx)
            lp += prior_lp - rest * log_bvx - 0.5 * squares / (bvx * bvx)
            grad[bvx_at + k] += prior_grad - rest + squares / (bvx * bvx)
            for i in range(rest):
                grad[w_at + k * rest + i] += -theta[w_at + k * rest + i] / (bvx * bvx)
            _zero_sum_extend(theta, w_at + k * rest, rest, shifts[k], 0)
            # x_itk ~ Normal(m[g, k] + w[k, t], sigma_k): the terms in w, from the period sums of x
            inv_var = np.exp(-2.0 * theta[sigma_at + k])
            potential = 0.0
            for ti in range(n_times):
                cross = x_sum_t[ti, k]
                for gi in range(n_groups):
                    cross -= cells[gi, ti] * theta[m_at + gi * n_x + k]
                shift = shifts[k, ti]
                potential += shift * cross - 0.5 * n_t[ti] * shift * shift
                shifts_grad[k, ti] = (cross - n_t[ti] * shift) * inv_var
                for gi in range(n_groups):
                    grad[m_at + gi * n_x + k] -= cells[gi, ti] * shift * inv_var
                d[ti] += b * shift / bvx
            lp += potential * inv_var
            grad[sigma_at + k] += -2.0 * potential * inv_var
    return lp


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _period_chain_rule(theta, grad, kind, table, resid, resid_t, shifts, shifts_grad, xbar_t, shares):
    """The gradient of the period blocks through the units: ``resid_t`` is the log-likelihood's derivative
    by each period's part, ``resid`` by each group's."""
    n_times, n_x = xbar_t.shape
    rest = n_times - 1
    if kind == FIXED:
        at_at = table[AT, START]
        for ti in range(rest):
            grad[at_at + ti] += resid_t[ti + 1]
    elif table[F, START] >= 0:
        _zero_sum_pullback(resid_t, grad, table[F, START])
    else:  # f = tau_t f_z: through tau_t (by log tau_t, f itself) and through f_z (tau_t times)
        tau_at, f_at = table[LOG_TAU_T, START], table[F_Z, START]
        tau = np.exp(theta[tau_at])
        f_z = np.empty(n_times)
        _zero_sum_extend(theta, f_at, rest, f_z, 0)
        scaled = np.empty(n_times)
        total = 0.0
        for ti in range(n_times):
            total += resid_t[ti] * f_z[ti]
            scaled[ti] = resid_t[ti] * tau
        grad[tau_at] += total * tau
        _zero_sum_pullback(scaled, grad, f_at)
    bvy_at = table[BVY, START]
    if kind == MUNDLAK:
        for k in range(n_x):
            total = 0.0
            for ti in range(n_times):
                total += resid_t[ti] * xbar_t[ti, k]
            _proxy_chain_rule(grad, theta, table, BVY, k, total, 1.0, -1)
        bpy_at = table[BPY, START]
        if bpy_at >= 0:
            for j in range(rest):
                total = 0.0
                for gi in range(shares.shape[0]):
                    total += resid[gi] * shares[gi, j]
                grad[bpy_at + j] += total
    if kind == LATENT:
        bvx_at, w_at = table[LOG_BVX, START], table[W, START]
        for k in range(n_x):
            bvx = np.exp(theta[bvx_at + k])
            b = theta[bvy_at + k]
            if table[BVY, BETWEEN] == 1:
                b -= theta[table[BXY, START] + k] * bvx
            total = 0.0
            for ti in range(n_times):
                total += resid_t[ti] * shifts[k, ti]
                shifts_grad[k, ti] += resid_t[ti] * b / bvx
            grad[bvx_at + k] += -b * total / bvx
            _proxy_chain_rule(grad, theta, table, BVY, k, total / bvx, bvx, bvx_at + k)
            _zero_sum_pullback(shifts_grad[k], grad, w_at + k * rest)


@numba.njit(nogil=True, cache=True, error_model="numpy")  # a zero scale gives inf, not an exception
def _logp_grad(theta, kind, family, table, priors, xt, y, starts, z, xbar, ss, n, n_groups, trials, offset,
               periods):  # fmt: skip
    """Log-density and gradient at ``theta``; every block's place is read from ``table``
    (:attr:`KernelLayout.table`) and every named prior from ``priors`` (:func:`prior_table`).

    ``periods`` is ``(t, xbar_t, shares, n_t, x_sum_t, cells)`` where the predictor has a period part and
    ``None`` where it has none: numba then prunes the period code before typing it, so a one-way fit
    never compiles it (about 2 s on a fresh install)."""
    n_x, n_units = xt.shape
    n_z = z.shape[1]
    grad = np.zeros_like(theta)
    lp = 0.0
    # --- unpack and the group-level part c[g] -------------------------------------------------------
    c = np.zeros(n_groups)
    tau = 0.0
    a0_at, a_at, abar_at, tau_at, e_at = (table[A0, START], table[A, START], table[ABAR, START],
                                          table[LOG_TAU, START], table[E, START])  # fmt: skip
    bxy_at, bzy_at = table[BXY, START], table[BZY, START]
    bux_at, ax_at, sigma_at, m_at = (
        table[LOG_BUX, START],
        table[AX, START],
        table[LOG_SIGMA, START],
        table[M, START],
    )
    if kind == NAIVE:
        a0 = theta[a0_at]
        lp += _normal_prior(priors, P_A0, theta, grad, a0_at, 1)
        c[:] = a0
    elif kind == FIXED:
        lp += _normal_prior(priors, P_A, theta, grad, a_at, n_groups)
        for gi in range(n_groups):
            c[gi] = theta[a_at + gi]
    else:
        lp += _normal_prior(priors, P_ABAR, theta, grad, abar_at, 1)
        abar = theta[abar_at]
        log_tau = theta[tau_at]
        tau = np.exp(log_tau)
        prior_lp, prior_grad = _log_scale(priors, P_TAU, log_tau)
        lp += prior_lp
        grad[tau_at] += prior_grad
        for gi in range(n_groups):
            e = theta[e_at + gi]
            lp += -0.5 * e * e
            c[gi] = abar + tau * e
    lp += _normal_prior(priors, P_BXY, theta, grad, bxy_at, n_x)
    lp += _normal_prior(priors, P_BZY, theta, grad, bzy_at, n_z)
    for j in range(n_z):
        b = theta[bzy_at + j]
        for gi in range(n_groups):
            c[gi] += b * z[gi, j]
    if kind == MUNDLAK:
        for k in range(n_x):
            b, prior_lp = _proxy_slope(theta, grad, table, BUY, priors, P_BUY, k, 1.0, -1)
            lp += prior_lp
            for gi in range(n_groups):
                c[gi] += b * xbar[gi, k]
    buys = np.zeros(n_x)  # the latent model's buy (its block may hold the between slope)
    if kind == LATENT:
        lp += _normal_prior(priors, P_AX, theta, grad, ax_at, n_x)
        for k in range(n_x):
            log_bux = theta[bux_at + k]
            bux = np.exp(log_bux)
            buy, prior_lp = _proxy_slope(theta, grad, table, BUY, priors, P_BUY, k, bux, bux_at + k)
            buys[k] = buy
            lp += prior_lp
            ax = theta[ax_at + k]
            log_sigma = theta[sigma_at + k]
            sigma = np.exp(log_sigma)
            bux_lp, bux_grad = _log_scale(priors, P_BUX, log_bux)
            sigma_lp, sigma_grad = _log_scale(priors, P_SIGMA, log_sigma)
            lp += bux_lp + sigma_lp
            grad[bux_at + k] += bux_grad
            grad[sigma_at + k] += sigma_grad
            inv_var = 1.0 / (sigma * sigma)
            for gi in range(n_groups):
                m = theta[m_at + gi * n_x + k]
                u = (m - ax) / bux
                # m ~ Normal(ax, bux)
                lp += -0.5 * u * u - log_bux
                grad[m_at + gi * n_x + k] += -u / bux
                grad[ax_at + k] += u / bux
                grad[bux_at + k] += u * u - 1.0
                # xbar ~ Normal(m, sigma / sqrt(n)) and the within-group spread
                d = xbar[gi, k] - m
                lp += -0.5 * d * d * n[gi] * inv_var - n[gi] * log_sigma - 0.5 * ss[gi, k] * inv_var
                grad[m_at + gi * n_x + k] += d * n[gi] * inv_var
                grad[sigma_at + k] += d * d * n[gi] * inv_var - n[gi] + ss[gi, k] * inv_var
                c[gi] += buy * u
    # --- the period part d[t] (two-way data) ------------------------------------------------------
    if periods is None:
        period = np.zeros(0)
        t = np.zeros(0, dtype=np.int32)
    else:
        t, xbar_t, shares, n_t, x_sum_t, cells = periods
        n_times = xbar_t.shape[0]
        period = np.zeros(n_times)
        shifts = np.zeros((n_x, n_times))  # the latent period shift w
        shifts_grad = np.zeros((n_x, n_times))
        lp += _period_terms(theta, grad, kind, table, priors, c, period, shifts, shifts_grad, xbar_t, shares,
                            n_t, x_sum_t, cells)  # fmt: skip
    # --- one pass over the units, group by group -----------------------------------------------------
    sigma_y_at = table[LOG_SIGMA_Y, START]
    log_sigma_y = theta[sigma_y_at] if family == GAUSSIAN else 0.0
    sigma_y = np.exp(log_sigma_y) if family == GAUSSIAN else 1.0
    inv_var_y = 1.0 / (sigma_y * sigma_y)
    unit_lp, squares, resid, resid_t, gx = unit_pass.unit_pass(
        family, theta[bxy_at : bxy_at + n_x], c, period, xt, y, starts, t, trials, offset, inv_var_y
    )
    lp += unit_lp
    if family == GAUSSIAN:  # the likelihood's scale term and sigma_y by its prior on the log scale
        prior_lp, prior_grad = _log_scale(priors, P_SIGMA_Y, log_sigma_y)
        lp += -0.5 * squares * inv_var_y - n_units * log_sigma_y + prior_lp
        grad[sigma_y_at] += squares * inv_var_y - n_units + prior_grad
    # --- chain rule back to the parameters (the priors' gradient is in already) ----------------------
    for k in range(n_x):
        grad[bxy_at + k] += gx[k]
    _group_slopes_grad(grad, theta, bzy_at, resid, z)
    if kind == NAIVE:
        grad[a0_at] += resid.sum()
    elif kind == FIXED:
        for gi in range(n_groups):
            grad[a_at + gi] += resid[gi]
    else:
        s_abar = 0.0
        s_tau = 0.0
        for gi in range(n_groups):
            e = theta[e_at + gi]
            s_abar += resid[gi]
            s_tau += resid[gi] * e
            grad[e_at + gi] += resid[gi] * tau - e
        grad[abar_at] += s_abar
        grad[tau_at] += s_tau * tau
    if kind == MUNDLAK:
        for k in range(n_x):
            total = 0.0
            for gi in range(n_groups):
                total += resid[gi] * xbar[gi, k]
            _proxy_chain_rule(grad, theta, table, BUY, k, total, 1.0, -1)
    if kind == LATENT:
        for k in range(n_x):
            buy = buys[k]
            bux = np.exp(theta[bux_at + k])
            ax = theta[ax_at + k]
            total = 0.0
            for gi in range(n_groups):
                m = theta[m_at + gi * n_x + k]
                u = (m - ax) / bux
                total += resid[gi] * u
                grad[m_at + gi * n_x + k] += resid[gi] * buy / bux
                grad[ax_at + k] += -resid[gi] * buy / bux
                grad[bux_at + k] += -resid[gi] * buy * u
            _proxy_chain_rule(grad, theta, table, BUY, k, total, bux, bux_at + k)
    if periods is not None:
        _period_chain_rule(theta, grad, kind, table, resid, resid_t, shifts, shifts_grad, xbar_t, shares)
    return lp, grad


@numba.njit(cache=True)
def expand_into(theta, out, table, n_x, n_times):
    """Write the expanded draws of ``theta`` (:meth:`KernelLayout.variables`, flattened in order) into
    ``out``: each block as it is, through ``exp`` or extended to sum to zero over its ``n_times`` periods,
    where ``table`` puts it; u after m and v after w."""
    for slot in range(table.shape[0]):
        start, stop, at = table[slot, START], table[slot, STOP], table[slot, OUT]
        if start < 0:
            continue
        if table[slot, ZERO_SUM] == 1:
            rest = n_times - 1
            for row in range((stop - start) // rest):
                _zero_sum_extend(theta, start + row * rest, rest, out, at + row * n_times)
        elif table[slot, LOG] == 1:
            for i in range(stop - start):
                out[at + i] = np.exp(theta[start + i])
        else:
            for i in range(stop - start):
                out[at + i] = theta[start + i]
    bxy_at = table[BXY, START]
    for slot, scale_slot in ((BUY, LOG_BUX), (BVY, LOG_BVX)):  # between slopes back to the coefficients
        if table[slot, START] >= 0 and table[slot, BETWEEN] == 1:
            for k in range(n_x):
                scale = np.exp(theta[table[scale_slot, START] + k]) if table[scale_slot, START] >= 0 else 1.0
                out[table[slot, OUT] + k] -= theta[bxy_at + k] * scale
    u_at = table[U, OUT]
    if u_at >= 0:
        m_at, ax_at, bux_at = table[M, START], table[AX, START], table[LOG_BUX, START]
        for i in range(table[M, STOP] - m_at):
            k = i % n_x
            out[u_at + i] = (theta[m_at + i] - theta[ax_at + k]) / np.exp(theta[bux_at + k])
    if table[F, START] < 0 and table[F, OUT] >= 0:  # f = tau_t f_z
        f_at, f_z_at, tau = table[F, OUT], table[F_Z, OUT], np.exp(theta[table[LOG_TAU_T, START]])
        for ti in range(n_times):
            out[f_at + ti] = tau * out[f_z_at + ti]
    v_at = table[V, OUT]
    if v_at >= 0:  # v[t, k] = w[k, t] / bvx[k]
        w_at, bvx_at = table[W, OUT], table[LOG_BVX, START]
        for k in range(n_x):
            bvx = np.exp(theta[bvx_at + k])
            for ti in range(n_times):
                out[v_at + ti * n_x + k] = out[w_at + k * n_times + ti] / bvx


class KernelArrays(NamedTuple):
    """The data a kernel reads, units sorted by group (``xt``, ``y``, ``trials`` and ``offset`` in the
    kernel's precision, the group-level arrays in float64)."""

    xt: np.ndarray
    """x transposed, (K, N)."""
    y: np.ndarray
    starts: np.ndarray
    """Each group's first unit, and N last: (G + 1,) int64."""
    z: np.ndarray
    xbar: np.ndarray
    ss: np.ndarray
    """Each group's within sum of squares of each x, (G, K)."""
    sizes: np.ndarray
    n_groups: int
    trials: np.ndarray
    offset: np.ndarray
    """log(exposure) per unit (0 without one)."""
    t: np.ndarray
    """The period of each unit, (N,) int32; the period arrays below are empty (0 periods) where the
    predictor has no period part."""
    xbar_t: np.ndarray
    """Each period's mean of each x, (T, K)."""
    shares: np.ndarray
    """Each group's share of its units in each period after the first, (G, T - 1)."""
    time_sizes: np.ndarray
    """Units per period, (T,)."""
    x_sum_t: np.ndarray
    """Each period's sum of each x, (T, K)."""
    cells: np.ndarray
    """Units per group and period, (G, T)."""

    @property
    def n_times(self) -> int:
        """Periods of the predictor's period part (0 where it has none)."""
        return self.xbar_t.shape[0]


class FusedModel:
    """A model's data, layout and kernel: ``logp_grad(theta) -> (logp, grad)`` and ``expand(theta)``.

    ``precision="float32"`` keeps the unit-level data in single precision and runs the per-unit pass in
    float32 lanes (sums stay float64): about 1.7x faster per unit, with the log-density off by about
    1e-7 of its size. Group-level work and the returned gradient stay float64.

    ``priors`` (by name, the defaults where absent) fill the kernel's prior table (:func:`prior_table`);
    a prior the model reads that the table cannot express raises ``ValueError`` (:func:`supported` says
    which models the kernel serves).
    """

    def __init__(
        self,
        model: str,
        data: GroupedData,
        family: str | Family = "bernoulli",
        precision: str = "float64",
        priors: Mapping[str, Prior] | None = None,
    ) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)} (got {precision!r}).")
        self.model = model
        self.precision = precision
        self.family = get_family(family)
        """The outcome :class:`~groupfx.models.families.Family`."""
        self.data = data
        self.layout = KernelLayout.of(
            get_spec(model), data.n_groups, data.n_x, data.n_z, self.family.noise_parameters,
            n_times=data.n_times if data.two_way else 0, period_shares=data.period_shares_vary,
        )  # fmt: skip
        """The one :class:`KernelLayout` of the vector and of the expanded draws."""
        self.kind = self.layout.kind
        spec = get_spec(model)
        self.priors = prior_table(priors, spec.priors_read(data) + self.family.noise_parameters)
        """The kernel's prior table (:func:`prior_table`) of ``priors`` (the defaults where absent)."""
        self.n_dim = self.layout.n_params
        self.order = np.argsort(data.group, kind="stable")
        """The kernel's unit order: the data's rows sorted by group."""
        self.arrays = self._arrays(data, self.order, np.dtype(precision), self.layout.two_way)

    @staticmethod
    def _arrays(data: GroupedData, order: np.ndarray, dtype: np.dtype, two_way: bool) -> KernelArrays:
        """The kernel's arrays, units in ``order`` (sorted by group: the likelihood does not depend on it),
        with the periods' where the predictor has a period part (``two_way``)."""
        starts = np.zeros(data.n_groups + 1, dtype=np.int64)
        np.cumsum(np.bincount(data.group, minlength=data.n_groups), out=starts[1:])
        trials = np.ones(data.n_units) if data.trials is None else np.asarray(data.trials, dtype=np.float64)
        exposure = np.ones(data.n_units) if data.exposure is None else np.asarray(data.exposure, dtype=float)
        return KernelArrays(
            xt=np.ascontiguousarray(np.asarray(data.x, dtype=np.float64)[order].T, dtype=dtype),
            y=np.ascontiguousarray(np.asarray(data.y, dtype=np.float64)[order], dtype=dtype),
            starts=starts,
            z=np.ascontiguousarray(data.z, dtype=np.float64).reshape(data.n_groups, data.n_z),
            xbar=np.ascontiguousarray(data.xbar, dtype=np.float64),
            ss=np.ascontiguousarray(data.x_within_ss, dtype=np.float64),
            sizes=data.group_sizes.astype(np.float64),
            n_groups=data.n_groups,
            trials=np.ascontiguousarray(trials[order], dtype=dtype),
            offset=np.ascontiguousarray(np.log(exposure[order]), dtype=dtype),
            **FusedModel._period_arrays(data, order, two_way),
        )

    @staticmethod
    def _period_arrays(data: GroupedData, order: np.ndarray, two_way: bool) -> dict[str, np.ndarray]:
        """The period fields of :class:`KernelArrays` (of 0 periods where ``two_way`` is false)."""
        n_groups, n_x = data.n_groups, data.n_x
        if not two_way:
            return {"t": np.zeros(0, dtype=np.int32), "xbar_t": np.zeros((0, n_x)),
                    "shares": np.zeros((n_groups, 0)), "time_sizes": np.zeros(0),
                    "x_sum_t": np.zeros((0, n_x)), "cells": np.zeros((n_groups, 0))}  # fmt: skip
        sizes = data.time_sizes.astype(np.float64)
        xbar_t = np.ascontiguousarray(data.xbar_time, dtype=np.float64)
        return {
            "t": np.ascontiguousarray(data.time[order], dtype=np.int32),
            "xbar_t": xbar_t,
            "shares": np.ascontiguousarray(data.period_shares, dtype=np.float64),
            "time_sizes": sizes,
            "x_sum_t": np.ascontiguousarray(xbar_t * sizes[:, None]),
            "cells": np.ascontiguousarray(data.cell_counts, dtype=np.float64),
        }

    def logp_grad(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """Log-density (up to a constant) and its gradient at the unconstrained ``theta``."""
        a = self.arrays
        periods = (a.t, a.xbar_t, a.shares, a.time_sizes, a.x_sum_t, a.cells) if a.n_times else None
        return _logp_grad(theta, self.kind, self.family.kernel_code, self.layout.table, self.priors, a.xt,
                          a.y, a.starts, a.z, a.xbar, a.ss, a.sizes, a.n_groups, a.trials, a.offset,
                          periods)  # fmt: skip

    def _between_blocks(self):
        """``(proxy block, its x's bxy index, the loading's block or None)`` for each between-slope block."""
        scales = {"buy": "log_bux", "bvy": "log_bvx"}
        for block in self.layout.blocks:
            if block.between:
                scale = scales[block.name] if scales[block.name] in self.layout else None
                yield block, self.layout["bxy"], None if scale is None else self.layout[scale]

    def model_values(self, theta: np.ndarray) -> np.ndarray:
        """The vector of the PyMC model's unconstrained values at ``theta``, in the kernel's block order: each
        between slope's block (:class:`KernelLayout`) turned back into its coefficient, all else as it is."""
        values = np.array(theta, dtype=np.float64)
        for block, bxy, scale in self._between_blocks():
            loading = 1.0 if scale is None else np.exp(values[scale.slice])
            values[block.slice] -= values[bxy.slice] * loading
        return values

    def from_model_values(self, values: np.ndarray) -> np.ndarray:
        """The kernel's vector whose :meth:`model_values` are ``values`` (the inverse map)."""
        theta = np.array(values, dtype=np.float64)
        for block, bxy, scale in self._between_blocks():
            loading = 1.0 if scale is None else np.exp(theta[scale.slice])
            theta[block.slice] += theta[bxy.slice] * loading
        return theta

    def gradient_from_model(self, theta: np.ndarray, model_gradient: np.ndarray) -> np.ndarray:
        """The gradient by the kernel's vector at ``theta`` of a function whose gradient by the PyMC model's
        values (:meth:`model_values`, same order) is ``model_gradient``: the chain rule through that map."""
        grad = np.array(model_gradient, dtype=np.float64)
        theta = np.asarray(theta, dtype=np.float64)
        for block, bxy, scale in self._between_blocks():
            loading = 1.0 if scale is None else np.exp(theta[scale.slice])
            by_coefficient = model_gradient[block.slice]
            grad[bxy.slice] -= by_coefficient * loading
            if scale is not None:
                grad[scale.slice] -= by_coefficient * theta[bxy.slice] * loading
        return grad

    def expand(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        """The constrained parameters (and the latent model's u) named as in the PyMC model."""
        variables = self.layout.variables()
        flat = np.empty(sum(int(np.prod(shape)) for _, shape, _ in variables))
        expand_into(np.asarray(theta, dtype=np.float64), flat, self.layout.table, self.data.n_x,
                    self.layout.n_times)  # fmt: skip
        slices = self.layout.expanded_slices()
        return {name: flat[slices[name]].reshape(shape).copy() for name, shape, _ in variables}

    def expanded(self) -> tuple[list[str], list[tuple[int, ...]], dict[str, tuple[str, ...]]]:
        """Names, shapes and dims of :meth:`expand`'s output (dims of the variables that have any)."""
        variables = self.layout.variables()
        names = [name for name, _, _ in variables]
        return (
            names,
            [shape for _, shape, _ in variables],
            {name: dims for name, _, dims in variables if dims},
        )

    def initial_point(self, seed: int) -> np.ndarray:
        """Zeros jittered by Uniform(-1, 1), with the latent model's m started at the observed group means
        and, on two-way data, its period shift w at the observed period means of x about their mean."""
        point = np.random.default_rng(seed).uniform(-1, 1, self.n_dim)
        if "m" in self.layout:
            point[self.layout.slice("m")] += self.data.xbar.ravel()
        if "w" in self.layout:
            shifts = self.arrays.xbar_t.T - self.arrays.xbar_t.mean(axis=0)[:, None]  # (K, T), rows sum to 0
            point[self.layout.slice("w")] += zero_sum_values(shifts).ravel()
        return point


def zero_sum_values(values: np.ndarray) -> np.ndarray:
    """The unconstrained values of ``values``, which sum to zero along their last axis: the inverse of PyMC's
    ``ZeroSumTransform`` (and of the kernels' expansion), one fewer along that axis."""
    n = values.shape[-1]
    norm = -values[..., -1:] * np.sqrt(n) / (np.sqrt(n) + n)
    return values[..., :-1] + norm
