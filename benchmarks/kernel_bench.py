"""``make bench`` (part 3): the cost of one log-density + gradient per row, per model and size.

Side by side in one run, for each model (Bernoulli family, one x, one z, groups of about 100 units) at N =
2,000, 100,000 and 1,000,000 units: groupfx's fused kernel (``engines.kernels``) in float64 and in float32,
nutpie's compiled PyMC graph (numba backend, the path the kernels replace), the same graph compiled to JAX
(``--backend jax``, on JAX's default device: the CPU here, a GPU where JAX has one), and a plain vectorised
NumPy evaluation of the same log density and gradient (the floor the issue sets). Reported as nanoseconds
per row (the median of repeated calls divided by N). Writes ``benchmarks/kernel_results.md``.

Usage: ``python benchmarks/kernel_bench.py [--sizes 2000 100000 1000000]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
import warnings
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import numpy as np

from groupfx.data.grouped import GroupedData
from groupfx.engines.kernels import FusedModel
from groupfx.engines.sampling import compile_model
from groupfx.models.builders import build_model
from groupfx.util.files import atomic_path
from machine import describe

HERE = Path(__file__).resolve().parent
MODELS = ("naive", "fixed", "multilevel", "mundlak", "latent")


def grouped(n_units: int, seed: int = 0) -> GroupedData:
    rng = np.random.default_rng(seed)
    n_groups = max(2, n_units // 100)
    group = np.sort(np.concatenate([np.arange(n_groups), rng.integers(0, n_groups, n_units - n_groups)]))
    u = rng.normal(0, 1.5, n_groups)
    x = rng.normal(u[group], 1)
    z = rng.normal(size=n_groups)
    y = (rng.random(n_units) < 1 / (1 + np.exp(-(-2 + u[group] + z[group])))).astype(np.int64)
    return GroupedData(y=y, x=x, group=group, z=z, group_labels=np.arange(n_groups))


def numpy_floor(fused: FusedModel):
    """Vectorised NumPy logp + gradient of the likelihood part (the per-row work; priors are O(G))."""
    data = fused.data
    x, y, g, z, xbar = data.x[:, 0], data.y.astype(float), data.group, data.z[:, 0], data.xbar[:, 0]
    n_groups = fused.data.n_groups
    blocks = {block.name: (block.start, block.stop) for block in fused.layout.blocks}

    def evaluate(theta):
        if "a0" in blocks:
            c = np.full(n_groups, theta[0])
        elif "a" in blocks:
            c = theta[:n_groups].copy()
        else:
            c = theta[0] + np.exp(theta[1]) * theta[2 : 2 + n_groups]
        c = c + theta[blocks["bzy"][0]] * z
        if "buy" in blocks and "m" not in blocks:
            c = c + theta[blocks["buy"][0]] * xbar
        if "m" in blocks:
            start = blocks["m"][0]
            m = theta[start : start + n_groups]
            c = c + theta[blocks["buy"][0]] * (m - theta[blocks["ax"][0]]) / np.exp(
                theta[blocks["log_bux"][0]]
            )
        eta = c[g] + theta[blocks["bxy"][0]] * x
        logp = float(np.sum(y * eta - np.logaddexp(0, eta)))
        r = y - 1 / (1 + np.exp(-eta))
        return logp, float(r @ x), np.bincount(g, weights=r, minlength=n_groups)

    return evaluate


def per_row(function, theta, n_units: int, budget: float = 1.0) -> float:
    function(theta)
    times = []
    start = time.perf_counter()
    while time.perf_counter() - start < budget or len(times) < 5:
        t = time.perf_counter()
        function(theta)
        times.append(time.perf_counter() - t)
    return float(np.median(times)) / n_units * 1e9


def jax_logp_grad(model):
    """nutpie's JAX logp-and-gradient of ``model``, as its sampler calls it (device round trip included)."""
    compiled = compile_model(model, backend="jax")
    return partial(compiled._make_logp_func(), **compiled._shared_data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2_000, 100_000, 1_000_000])
    parser.add_argument("--out", type=Path, default=HERE / "kernel_results.md")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    rows = []
    device = None
    if importlib.util.find_spec("jax") is not None:
        from groupfx.engines.sampling import jax_device

        device = jax_device()
    for n in args.sizes:
        data = grouped(n)
        for name in MODELS:
            fused = FusedModel(name, data)
            theta = np.random.default_rng(1).normal(0, 0.3, fused.n_dim)
            kernel = per_row(fused.logp_grad, theta, n)
            single = per_row(FusedModel(name, data, precision="float32").logp_grad, theta, n)
            floor = per_row(numpy_floor(fused), theta, n)
            compiled = compile_model(build_model(name, data))
            graph = per_row(compiled.logp_func, theta, n)  # the graph's logp and gradient, no cfunc wrapper
            on_jax = per_row(jax_logp_grad(build_model(name, data)), theta, n) if device else float("nan")
            rows.append((n, name, kernel, single, graph, on_jax, floor))
            print(
                f"N={n:>9} {name:<11} kernel {kernel:.1f} (float32 {single:.1f}), PyMC graph {graph:.1f},"
                f" JAX {on_jax:.1f}, NumPy {floor:.1f} ns/row"
            )
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Log-density + gradient per row",
        "",
        f"Run {stamp} on {describe()}; command `python"
        " benchmarks/kernel_bench.py`. Bernoulli family, one x, one z, groups of about 100 units; median of"
        " repeated single-threaded calls divided by N. The NumPy floor evaluates the likelihood part only"
        " (logp, the slope gradient and the per-group residual sums), vectorised. The float32 kernel keeps"
        " the unit-level data and lanes in single precision and sums in float64 (`--precision float32`)."
        f" The JAX column is the PyMC graph compiled to JAX on {device or 'no device (jax not installed)'},"
        " called as nutpie's sampler calls it.",
        "",
        "| N | model | groupfx kernel (ns/row) | kernel, float32 (ns/row) | PyMC graph, numba (ns/row)"
        f" | PyMC graph, JAX on {device or '-'} (ns/row) | NumPy floor (ns/row) | kernel / floor |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {n:,} | {name} | {k:.1f} | {s:.1f} | {gr:.1f} | {j:.1f} | {f:.1f} | {k / f:.2f} |"
        for n, name, k, s, gr, j, f in rows
    ]
    with atomic_path(args.out) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
