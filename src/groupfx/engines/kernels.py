"""Fused log-density and gradient kernels for the five models in every family, sampled by nutpie directly.

nutpie's PyMC path compiles each model's log-density and gradient with numba on every run (most of that
time is numba's type inference of the generated graph, which cannot be cached). The models here share one
structure,

    eta_i = c[g_i] + sum_k bxy_k x_ik,   c[g] = intercept_g + sum_j bzy_j z_gj + sum_k buy_k w_gk,

so one hand-fused kernel serves them all: a single pass over the units accumulates the log-likelihood,
the gradient of the slopes and the residual sum of each group, and the group-level chain rule costs O(G K).
The units are kept sorted by group, so that pass is a run of straight SIMD loops (``exp`` and ``log1p``
from :mod:`groupfx.engines.vector_math`), several times cheaper per unit than scalar libm calls or vectorised
NumPy (measured in ``benchmarks/kernel_results.md`` and ``benchmarks/design_results.md``).
It is compiled once by numba and cached on disk, so later runs load it instead of compiling. The kernel is
used when a model's priors are the defaults (any family: Bernoulli, Binomial, Poisson with its exposure
offset, Gaussian with ``sigma_y`` last in the vector); other priors go through the PyMC model. Tests hold
its log-density (up to a constant) and gradient equal to the PyMC model's.

Unconstrained parameter vector, in order (``K`` x columns, ``J`` z columns, ``G`` groups)::

    naive       a0, bxy[K], bzy[J]
    fixed       a[G], bxy[K], bzy[J]
    multilevel  abar, log tau, e[G], bxy[K], bzy[J]
    mundlak     multilevel, buy[K]
    latent      multilevel, buy[K], log bux[K], ax[K], log sigma[K], m[G, K]
"""

from __future__ import annotations

from collections.abc import Mapping

import numba
import numpy as np

from groupfx.data.grouped import GroupedData
from groupfx.engines import unit_pass
from groupfx.models.families import FAMILIES, Family, get_family
from groupfx.models.priors import DEFAULT_PRIORS, Prior

NAIVE, FIXED, MULTILEVEL, MUNDLAK, LATENT = range(5)
BERNOULLI, BINOMIAL, POISSON, GAUSSIAN = (unit_pass.BERNOULLI, unit_pass.BINOMIAL, unit_pass.POISSON,
                                         unit_pass.GAUSSIAN)  # fmt: skip
PRECISIONS = ("float64", "float32")
KINDS = {"naive": NAIVE, "fixed": FIXED, "multilevel": MULTILEVEL, "mundlak": MUNDLAK, "latent": LATENT}
PRIORS_USED = {
    "naive": ("a0", "bxy", "bzy"),
    "fixed": ("a", "bxy", "bzy"),
    "multilevel": ("abar", "tau", "bxy", "bzy"),
    "mundlak": ("abar", "tau", "bxy", "bzy", "buy"),
    "latent": ("abar", "tau", "bxy", "bzy", "buy", "bux", "ax", "sigma"),
}


def supported(
    model: str, family: str | Family, priors: Mapping[str, Prior], data: GroupedData | None = None
) -> bool:
    """Whether the fused kernel serves this model: the default priors, and (given ``data``) a y the family
    can hold (any other y goes to the PyMC model, whose likelihood refuses it with a clear error)."""
    family = family if isinstance(family, Family) else FAMILIES.get(family)
    if family is None:
        return False
    used = PRIORS_USED.get(model, ()) + family.noise_parameters
    return (
        (data is None or _valid_outcome(family, data))
        and model in KINDS
        and all(priors.get(name, DEFAULT_PRIORS[name]) == DEFAULT_PRIORS[name] for name in used)
    )


def predictor_parameters(kind: int, n_z: int) -> list[str]:
    """The posterior variables :func:`group_predictor` and the slopes of x read, for a model kind."""
    names = [*{NAIVE: ["a0"], FIXED: ["a"]}.get(kind, ["abar", "tau", "e"]), "bxy"]
    names += ["bzy"] if n_z else []
    names += ["buy"] if kind >= MUNDLAK else []
    return names + (["u"] if kind == LATENT else [])


def group_predictor(
    kind: int, draws: Mapping[str, np.ndarray], z: np.ndarray, xbar: np.ndarray, groups: slice | np.ndarray
) -> np.ndarray:
    """The group-level part of the linear predictor of ``groups`` for every draw, shape (draws, groups).

    The intercept (a0, a[g], or abar + tau e[g]) plus bzy z[g], and buy xbar[g] (Mundlak) or buy u[g]
    (latent); ``draws`` holds the posterior with chains and draws flattened into the first axis.
    """
    z, xbar = z[groups], xbar[groups]
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
    return c


def _valid_outcome(family: Family, data: GroupedData) -> bool:
    y = np.asarray(data.y, dtype=float)
    if family.invalid(y).any():
        return False
    return not family.needs_trials or (data.trials is not None and bool((y <= data.trials).all()))


def layout(model: str, n_groups: int, n_x: int, n_z: int) -> dict[str, tuple[int, int]]:
    """Start and stop in the unconstrained vector of each block, by name."""
    kind = KINDS[model]
    blocks: list[tuple[str, int]] = []
    if kind == NAIVE:
        blocks.append(("a0", 1))
    elif kind == FIXED:
        blocks.append(("a", n_groups))
    else:
        blocks += [("abar", 1), ("log_tau", 1), ("e", n_groups)]
    blocks += [("bxy", n_x), ("bzy", n_z)]
    if kind >= MUNDLAK:
        blocks.append(("buy", n_x))
    if kind == LATENT:
        blocks += [("log_bux", n_x), ("ax", n_x), ("log_sigma", n_x), ("m", n_groups * n_x)]
    out, start = {}, 0
    for name, size in blocks:
        out[name] = (start, start + size)
        start += size
    return out


@numba.njit(nogil=True, cache=True)
def _group_slopes_grad(grad, theta, at, resid, covariates):
    """Gradient of the Normal(0, 1) slopes ``theta[at:at + J]`` of group-level ``covariates`` (G, J)."""
    for j in range(covariates.shape[1]):
        total = -theta[at + j]
        for gi in range(covariates.shape[0]):
            total += resid[gi] * covariates[gi, j]
        grad[at + j] += total


@numba.njit(nogil=True, cache=True, error_model="numpy")  # a zero scale gives inf, not an exception
def _logp_grad(theta, kind, family, xt, y, starts, z, xbar, ss, n, n_groups, trials, offset):
    n_x, n_units = xt.shape
    n_z = z.shape[1]
    grad = np.zeros_like(theta)
    lp = 0.0
    # --- unpack and the group-level part c[g] -------------------------------------------------------
    c = np.zeros(n_groups)
    pos = 0
    tau = 0.0
    if kind == NAIVE:
        a0 = theta[0]
        lp += -0.5 * a0 * a0
        c[:] = a0
        pos = 1
    elif kind == FIXED:
        for gi in range(n_groups):
            a = theta[gi]
            lp += -0.5 * a * a / 100.0
            c[gi] = a
        pos = n_groups
    else:
        abar = theta[0]
        log_tau = theta[1]
        tau = np.exp(log_tau)
        lp += -0.5 * abar * abar - tau + log_tau
        for gi in range(n_groups):
            e = theta[2 + gi]
            lp += -0.5 * e * e
            c[gi] = abar + tau * e
        pos = 2 + n_groups
    bxy_at = pos
    for k in range(n_x):
        lp += -0.5 * theta[bxy_at + k] ** 2
    bzy_at = bxy_at + n_x
    for j in range(n_z):
        b = theta[bzy_at + j]
        lp += -0.5 * b * b
        for gi in range(n_groups):
            c[gi] += b * z[gi, j]
    buy_at = bzy_at + n_z
    if kind == MUNDLAK:
        for k in range(n_x):
            b = theta[buy_at + k]
            lp += -0.5 * b * b
            for gi in range(n_groups):
                c[gi] += b * xbar[gi, k]
    if kind == LATENT:
        bux_at = buy_at + n_x
        ax_at = bux_at + n_x
        sigma_at = ax_at + n_x
        m_at = sigma_at + n_x
        for k in range(n_x):
            buy = theta[buy_at + k]
            log_bux = theta[bux_at + k]
            bux = np.exp(log_bux)
            ax = theta[ax_at + k]
            log_sigma = theta[sigma_at + k]
            sigma = np.exp(log_sigma)
            lp += -0.5 * buy * buy - 0.5 * bux * bux + log_bux - 0.5 * ax * ax - sigma + log_sigma
            grad[bux_at + k] += -bux * bux + 1.0
            grad[ax_at + k] += -ax
            grad[sigma_at + k] += -sigma + 1.0
            grad[buy_at + k] += -buy
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
    # --- one pass over the units, group by group -----------------------------------------------------
    sigma_y = np.exp(theta[-1]) if family == GAUSSIAN else 1.0
    inv_var_y = 1.0 / (sigma_y * sigma_y)
    unit_lp, squares, resid, gx = unit_pass.unit_pass(
        family, theta[bxy_at : bxy_at + n_x], c, xt, y, starts, trials, offset, inv_var_y
    )
    lp += unit_lp
    if family == GAUSSIAN:  # the likelihood's scale term and sigma_y ~ Exponential(1) on log scale
        lp += -0.5 * squares * inv_var_y - n_units * theta[-1] - sigma_y + theta[-1]
        grad[-1] += squares * inv_var_y - n_units - sigma_y + 1.0
    # --- chain rule back to the parameters ---------------------------------------------------------
    for k in range(n_x):
        grad[bxy_at + k] += gx[k] - theta[bxy_at + k]
    _group_slopes_grad(grad, theta, bzy_at, resid, z)
    if kind == NAIVE:
        grad[0] += resid.sum() - theta[0]
    elif kind == FIXED:
        for gi in range(n_groups):
            grad[gi] += resid[gi] - theta[gi] / 100.0
    else:
        s_abar = -theta[0]
        s_tau = 0.0
        for gi in range(n_groups):
            e = theta[2 + gi]
            s_abar += resid[gi]
            s_tau += resid[gi] * e
            grad[2 + gi] += resid[gi] * tau - e
        grad[0] += s_abar
        grad[1] += s_tau * tau - tau + 1.0
    if kind == MUNDLAK:
        _group_slopes_grad(grad, theta, buy_at, resid, xbar)
    if kind == LATENT:
        bux_at = buy_at + n_x
        ax_at = bux_at + n_x
        m_at = ax_at + 2 * n_x
        for k in range(n_x):
            buy = theta[buy_at + k]
            bux = np.exp(theta[bux_at + k])
            ax = theta[ax_at + k]
            for gi in range(n_groups):
                m = theta[m_at + gi * n_x + k]
                u = (m - ax) / bux
                grad[buy_at + k] += resid[gi] * u
                grad[m_at + gi * n_x + k] += resid[gi] * buy / bux
                grad[ax_at + k] += -resid[gi] * buy / bux
                grad[bux_at + k] += -resid[gi] * buy * u
    return lp, grad


class FusedModel:
    """A model's data, layout and kernel: ``logp_grad(theta) -> (logp, grad)`` and ``expand(theta)``.

    ``precision="float32"`` keeps the unit-level data in single precision and runs the per-unit pass in
    float32 lanes (sums stay float64): about 1.7x faster per unit, with the log-density off by about
    1e-7 of its size. Group-level work and the returned gradient stay float64.
    """

    def __init__(
        self, model: str, data: GroupedData, family: str | Family = "bernoulli", precision: str = "float64"
    ) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)} (got {precision!r}).")
        self.model = model
        self.precision = precision
        self.kind = KINDS[model]
        self.family = get_family(family)
        """The outcome :class:`~groupfx.models.families.Family`."""
        self.data = data
        self.blocks = layout(model, data.n_groups, data.n_x, data.n_z)
        for name in self.family.noise_parameters:  # last in the vector, on the log scale
            end = max(stop for _, stop in self.blocks.values())
            self.blocks[f"log_{name}"] = (end, end + 1)
        self.n_dim = max(stop for _, stop in self.blocks.values())
        self.order = np.argsort(data.group, kind="stable")
        """The kernel's unit order: the data's rows sorted by group."""
        self.arrays = self._arrays(data, self.order, np.dtype(precision))

    @staticmethod
    def _arrays(data: GroupedData, order: np.ndarray, dtype: np.dtype) -> tuple:
        """The kernel's arrays, units in ``order`` (sorted by group: the likelihood does not depend on it)."""
        starts = np.zeros(data.n_groups + 1, dtype=np.int64)
        np.cumsum(np.bincount(data.group, minlength=data.n_groups), out=starts[1:])
        trials = np.ones(data.n_units) if data.trials is None else np.asarray(data.trials, dtype=np.float64)
        exposure = np.ones(data.n_units) if data.exposure is None else np.asarray(data.exposure, dtype=float)
        return (
            np.ascontiguousarray(np.asarray(data.x, dtype=np.float64)[order].T, dtype=dtype),
            np.ascontiguousarray(np.asarray(data.y, dtype=np.float64)[order], dtype=dtype),
            starts,
            np.ascontiguousarray(data.z, dtype=np.float64).reshape(data.n_groups, data.n_z),
            np.ascontiguousarray(data.xbar, dtype=np.float64),
            np.ascontiguousarray(data.x_within_ss, dtype=np.float64),
            data.group_sizes.astype(np.float64),
            data.n_groups,
            np.ascontiguousarray(trials[order], dtype=dtype),
            np.ascontiguousarray(np.log(exposure[order]), dtype=dtype),
        )

    def logp_grad(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """Log-density (up to a constant) and its gradient at the unconstrained ``theta``."""
        return _logp_grad(theta, self.kind, self.family.kernel_code, *self.arrays)

    def expand(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        """The constrained parameters (and the latent model's u) named as in the PyMC model."""
        data, b = self.data, self.blocks

        def part(name):
            start, stop = b[name]
            return theta[start:stop]

        out: dict[str, np.ndarray] = {}
        if self.kind == NAIVE:
            out["a0"] = np.asarray(part("a0")[0])
        elif self.kind == FIXED:
            out["a"] = part("a").copy()
        else:
            out["abar"] = np.asarray(part("abar")[0])
            out["tau"] = np.asarray(np.exp(part("log_tau")[0]))
            out["e"] = part("e").copy()
        out["bxy"] = part("bxy").copy()
        if data.n_z:
            out["bzy"] = part("bzy").copy()
        if self.kind >= MUNDLAK:
            out["buy"] = part("buy").copy()
        if self.kind == LATENT:
            bux, ax = np.exp(part("log_bux")), part("ax").copy()
            m = part("m").reshape(data.n_groups, data.n_x).copy()
            out |= {"bux": bux, "ax": ax, "sigma": np.exp(part("log_sigma")), "m": m, "u": (m - ax) / bux}
        for name in self.family.noise_parameters:
            out[name] = np.asarray(np.exp(part(f"log_{name}")[0]))
        return out

    def expanded(self) -> tuple[list[str], list[tuple[int, ...]], dict[str, tuple[str, ...]]]:
        """Names, shapes and dims of :meth:`expand`'s output."""
        values = self.expand(np.zeros(self.n_dim))
        dims = {"a": ("group",), "e": ("group",), "bxy": ("x_var",), "bzy": ("z_var",), "buy": ("x_var",),
                "bux": ("x_var",), "ax": ("x_var",), "sigma": ("x_var",), "m": ("group", "x_var"),
                "u": ("group", "x_var")}  # fmt: skip
        names = list(values)
        return names, [tuple(np.shape(values[n])) for n in names], {n: dims[n] for n in names if n in dims}

    def initial_point(self, seed: int) -> np.ndarray:
        """Zeros jittered by Uniform(-1, 1), with the latent model's m started at the observed group means."""
        point = np.random.default_rng(seed).uniform(-1, 1, self.n_dim)
        if self.kind == LATENT:
            start, stop = self.blocks["m"]
            point[start:stop] += self.data.xbar.ravel()
        return point
