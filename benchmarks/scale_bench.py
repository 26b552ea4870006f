"""``make bench`` (part 4): scale. The Mundlak and latent Mundlak models at a million units.

Each run fits one model with ``groupfx.fit`` on the seed's causal graph simulated at ``--units`` units in
``--groups`` groups (default 1,000,000 in 10,000), 4 chains x (1000 tune + 1000 draws) on the machine's
cores, in a fresh process, and records: sampling wall time, the blocked PSIS-LOO's time, peak resident
memory of the process, R-hat and bulk ESS of bxy and bzy, divergences and leapfrog steps per draw.

The seed notebook's way of writing these models (a per-draw ``Deterministic`` p of size N, then
``pm.compute_log_likelihood``) cannot run at a million units: p alone is chains x draws x N doubles,
32 GB. It is measured here at ``--seed-units`` (default 50,000 units in 500 groups) instead, and its
memory extrapolated.

Where JAX sees a GPU, the same two models also run with ``backend="jax"`` on it (rows
``model:float64:jax``); elsewhere the table says the GPU rows were skipped and why.

Usage: ``python benchmarks/scale_bench.py [--units 1000000 --groups 10000] [--runs mundlak:float32 ...]
[--gpu auto|skip]``. Writes ``benchmarks/scale_results.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

from groupfx.util.files import atomic_path
from machine import describe, short

HERE = Path(__file__).resolve().parent
DEFAULT_RUNS = ("mundlak:float64", "latent:float64", "mundlak:float32", "latent:float32")
GPU_RUNS = ("mundlak:float64:jax", "latent:float64:jax")
TARGET_SECONDS, TARGET_MIB = 5 * 60, 2048


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def device_peak_mib() -> float | None:
    """Peak memory JAX used on its device (GPUs report it; the CPU does not)."""
    import jax

    stats = jax.devices()[0].memory_stats() or {}
    return stats["peak_bytes_in_use"] / 2**20 if "peak_bytes_in_use" in stats else None


def child_groupfx(args: argparse.Namespace, model: str, precision: str, backend: str = "numba") -> dict:
    import arviz as az

    import groupfx

    start = time.perf_counter()
    sim = groupfx.simulate(n_groups=args.groups, n_units=args.units, seed=args.seed)
    simulate_s = time.perf_counter() - start
    fit = groupfx.fit(
        sim,
        model,
        draws=args.draws,
        tune=args.tune,
        chains=args.chains,
        precision=precision,
        backend=backend,
        warn=False,
    )
    names = ["bxy", "bzy"]
    rhat, ess = az.rhat(fit.idata, var_names=names), az.ess(fit.idata, var_names=names, method="bulk")
    stats = fit.idata.sample_stats
    return {
        "who": "groupfx",
        "model": model,
        "precision": precision,
        "backend": backend,
        "device": stats.attrs.get("device", "cpu"),
        "units": args.units,
        "groups": args.groups,
        "simulate_s": simulate_s,
        "compile_s": fit.timings["compile"],
        "sample_s": fit.timings["sample"],
        "loo_s": fit.timings["loo"],
        "peak_mib": peak_mib(),
        "rhat": {n: float(rhat[n].max()) for n in names},
        "ess_bulk": {n: float(ess[n].min()) for n in names},
        "divergences": int(stats["diverging"].sum()),
        "steps_per_draw": float(stats["n_steps"].mean()),
        "bxy_mean": float(fit.idata.posterior["bxy"].mean()),
        "device_peak_mib": device_peak_mib() if backend == "jax" else None,
        "mass_matrix": stats.attrs.get("mass_matrix", "?"),
        "target_accept": stats.attrs.get("target_accept"),
        "trace_store": stats.attrs.get("trace_store", "?"),
        "ran": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": short(),
    }


def child_seed(args: argparse.Namespace) -> dict:
    import numpy as np

    sys.path.insert(0, str(HERE))
    import seed_notebook as seed

    rng = np.random.default_rng(args.seed)
    settings = argparse.Namespace(
        draws=args.draws, tune=args.tune, chains=args.chains, cores=min(args.chains, os.cpu_count() or 1)
    )
    start = time.perf_counter()
    coords, g, x_obs, y_obs, z_obs, frame = seed.simulate(rng, args.seed_groups, args.seed_units)
    xbar = frame.groupby("group")["x"].mean().reindex(range(args.seed_groups)).to_numpy()
    model = seed.mundlak_model_fn(coords, g, x_obs, y_obs, z_obs, xbar)
    idata, fit_s = seed.fit(model, settings, rng, None)
    p_bytes = int(idata.posterior["p"].nbytes)
    wall = time.perf_counter() - start
    return {
        "who": "seed",
        "model": "mundlak",
        "units": args.seed_units,
        "groups": args.seed_groups,
        "wall_s": wall,
        "sample_loglik_s": fit_s,
        "peak_mib": peak_mib(),
        "p_bytes": p_bytes,
        "p_bytes_at_target": p_bytes * args.units / args.seed_units,
        "divergences": int(idata.sample_stats["diverging"].sum()),
        "ran": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def gpu_device() -> str:
    """JAX's first device as ``gpu (...)``, or why there is no GPU (asked in a child: JAX grabs the GPU)."""
    code = (
        "import importlib.util, sys\n"
        "if importlib.util.find_spec('jax') is None: print('no GPU: jax is not installed'); sys.exit()\n"
        "from groupfx.engines.sampling import jax_device\n"
        "d = jax_device(); print(d if d.startswith('gpu') else f'no GPU: JAX sees {d} only')"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    lines = done.stdout.strip().splitlines()
    return lines[-1] if lines else f"no GPU: asking JAX failed ({done.stderr.strip()[-200:]})"


def run_child(argv: list[str]) -> dict:
    """Run one measurement in a fresh process (its own peak memory) and read its JSON line."""
    done = subprocess.run(
        [sys.executable, __file__, *argv], capture_output=True, text=True, check=False, env=os.environ
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout)[-2000:]
        return {"error": f"exit {done.returncode}: {tail}", "argv": argv}
    return json.loads(lines[-1])


def render(args: argparse.Namespace, results: list[dict]) -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Scale: a million units",
        "",
        f"Table written {stamp} (each row's own run time in its last column) on {describe()};"
        f" command `python benchmarks/scale_bench.py` (`--units {args.units} --groups {args.groups}"
        f" --draws {args.draws} --tune {args.tune} --chains {args.chains}`). Data from the seed's causal"
        " graph (`groupfx.simulate`); each row is one `groupfx.fit` in a fresh process. Targets: sampling"
        f" under {TARGET_SECONDS // 60} minutes, peak memory under {TARGET_MIB} MiB, R-hat <= 1.01 on bxy"
        " and bzy.",
        "",
        "| model | precision | backend (device) | mass matrix | target accept | trace | sampling (s)"
        " | LOO, blocked (s) | peak RSS (MiB) | R-hat bxy / bzy | bulk ESS bxy / bzy | divergences"
        " | leapfrog steps per draw | targets met | ran (machine) |",
        "|---|---|---|---|---:|---|---:|---:|---:|---|---|---:|---:|---|---|",
    ]
    for r in results:
        if r.get("who") == "groupfx":
            met = (
                r["sample_s"] < TARGET_SECONDS
                and r["peak_mib"] < TARGET_MIB
                and max(r["rhat"].values()) <= 1.01
            )
            lines.append(
                f"| {r['model']} | {r['precision']} | {r.get('backend', 'numba')} ({r.get('device', 'cpu')})"
                f" | {r.get('mass_matrix', '?')} | {r.get('target_accept') or 'not recorded'}"
                f" | {r.get('trace_store', '?')} | {r['sample_s']:.0f} | {r['loo_s']:.0f}"
                f" | {r['peak_mib']:.0f} | {r['rhat']['bxy']:.3f} / {r['rhat']['bzy']:.3f}"
                f" | {r['ess_bulk']['bxy']:.0f} / {r['ess_bulk']['bzy']:.0f} | {r['divergences']}"
                f" | {r['steps_per_draw']:.1f} | {'yes' if met else 'no'}"
                f" | {r.get('ran', '')} ({r.get('machine', 'machine not recorded')}) |"
            )
        elif "error" in r:
            lines.append(f"| {' '.join(r['argv'])} | failed: {r['error'].splitlines()[-1][:200]} |")
    for r in results:
        if r.get("device_peak_mib"):
            lines += [
                "",
                f"{r['model']} on {r['device']}: peak device memory {r['device_peak_mib']:.0f} MiB.",
            ]
        if r.get("who") == "gpu-skipped":
            lines += ["", f"GPU rows ({', '.join(GPU_RUNS)}): skipped, {r['reason']}."]
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for r in results:
        if r.get("who") == "seed":
            need = 2 * r["p_bytes_at_target"]
            verdict = (
                f"more than this machine's {memory / 2**30:.0f} GiB: it cannot run at that size"
                if need > memory
                else f"within this machine's {memory / 2**30:.0f} GiB"
            )
            lines += [
                "",
                f"The seed notebook's Mundlak model, as it writes it, at {r['units']:,} units in"
                f" {r['groups']:,} groups (same draws): {r['wall_s']:.0f} s from simulation to the"
                f" log-likelihood, peak RSS {r['peak_mib']:.0f} MiB, of which its per-draw Deterministic p"
                f" is {r['p_bytes'] / 2**20:.0f} MiB. At {args.units:,} units p alone would be"
                f" {r['p_bytes_at_target'] / 2**30:.1f} GiB and the log-likelihood as much again,"
                f" {verdict}.",
            ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=1_000_000)
    parser.add_argument("--groups", type=int, default=10_000)
    parser.add_argument("--seed-units", type=int, default=50_000)
    parser.add_argument("--seed-groups", type=int, default=500)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--runs", nargs="*", default=list(DEFAULT_RUNS), help="model:precision[:backend], in order"
    )
    parser.add_argument(
        "--gpu", choices=("auto", "skip"), default="auto", help="add the JAX rows where JAX sees a GPU"
    )
    parser.add_argument("--skip-seed", action="store_true", help="leave out the seed notebook's way")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep the rows of the last run's JSON that this run does not redo",
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=HERE / "scale_results.md")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    if args.child:
        who = args.child[0]
        result = child_seed(args) if who == "seed" else child_groupfx(args, *args.child[1:4])
        print(json.dumps(result), flush=True)
        return 0
    shared = ["--units", str(args.units), "--groups", str(args.groups), "--draws", str(args.draws),
              "--tune", str(args.tune), "--chains", str(args.chains), "--seed", str(args.seed),
              "--seed-units", str(args.seed_units), "--seed-groups", str(args.seed_groups)]  # fmt: skip
    results = []
    runs = list(args.runs)
    if args.gpu == "auto":
        device = gpu_device()
        if device.startswith("gpu"):
            runs += [run for run in GPU_RUNS if run not in runs]
        else:
            results.append({"who": "gpu-skipped", "reason": device})
    for run in runs:
        result = run_child([*shared, "--child", "groupfx", *run.split(":")])
        print(json.dumps(result), flush=True)
        results.append(result)
    if not args.skip_seed:
        result = run_child([*shared, "--child", "seed"])
        print(json.dumps(result), flush=True)
        results.append(result)
    previous = args.out.with_suffix(".json")
    if args.merge and previous.exists():

        def key(r: dict) -> tuple:
            return r.get("who"), r.get("model"), r.get("precision"), r.get("backend", "numba")

        redone = {key(r) for r in results}
        kept = [
            r
            for r in json.loads(previous.read_text())
            if "error" not in r and key(r) not in redone and r.get("who") != "gpu-skipped"
        ]
        results = kept + results
        order = {run: i for i, run in enumerate(DEFAULT_RUNS)}
        results.sort(
            key=lambda r: (r.get("who") != "groupfx", order.get(f"{r.get('model')}:{r.get('precision')}", 99))
        )
    outputs = {args.out: render(args, results), args.out.with_suffix(".json"): json.dumps(results)}
    for path, text in outputs.items():
        with atomic_path(path) as tmp:
            tmp.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
