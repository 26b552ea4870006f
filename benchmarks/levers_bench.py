"""``make bench`` (part 5): the sampler's levers, at equal draws, measured side by side in one run.

The Mundlak model on the seed's graph at 100,000 units in 1,000 groups (the scale run's shape at a tenth of
its size), 4 chains x 1000 draws, for each combination of nutpie's mass matrix (diagonal or low-rank
modified) and the warm-up length (1000, 500 or 300 tuning iterations), and of the kernel's precision at the
default settings. Records sampling time, leapfrog steps per draw, the smallest bulk ESS over bxy, bzy, buy
and tau, that ESS per second, and the largest R-hat over every parameter. Writes
``benchmarks/levers_results.md``.

Usage: ``python benchmarks/levers_bench.py [--units 100000 --groups 1000]``.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from datetime import UTC, datetime
from pathlib import Path

from groupfx.util.files import atomic_path
from machine import describe

HERE = Path(__file__).resolve().parent
LEVERS = (  # (mass matrix, tune, precision)
    ("low-rank", 1000, "float64"),
    ("diagonal", 1000, "float64"),
    ("low-rank", 500, "float64"),
    ("diagonal", 500, "float64"),
    ("low-rank", 300, "float64"),
    ("low-rank", 1000, "float32"),
)
WATCHED = ["bxy", "bzy", "buy", "tau"]


def measure(sim, mass: str, tune: int, precision: str, draws: int, chains: int) -> dict:
    import arviz as az

    import groupfx

    fit = groupfx.fit(
        sim, "mundlak", draws=draws, tune=tune, chains=chains, precision=precision,
        low_rank_mass_matrix=mass == "low-rank", warn=False,
    )  # fmt: skip
    ess = az.ess(fit.idata, var_names=WATCHED, method="bulk")
    rhat = az.rhat(fit.idata)
    seconds = fit.timings["sample"]
    min_ess = min(float(ess[name].min()) for name in WATCHED)
    return {
        "mass": mass,
        "tune": tune,
        "precision": precision,
        "seconds": seconds,
        "steps": float(fit.idata.sample_stats["n_steps"].mean()),
        "min_ess": min_ess,
        "ess_per_s": min_ess / seconds,
        "rhat": max(float(rhat[name].max()) for name in rhat.data_vars),
        "divergences": int(fit.idata.sample_stats["diverging"].sum()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=100_000)
    parser.add_argument("--groups", type=int, default=1_000)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--out", type=Path, default=HERE / "levers_results.md")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    import groupfx

    sim = groupfx.simulate(n_groups=args.groups, n_units=args.units, seed=42)
    rows = []
    for mass, tune, precision in LEVERS:
        row = measure(sim, mass, tune, precision, args.draws, args.chains)
        print(row, flush=True)
        rows.append(row)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Sampler levers at equal draws",
        "",
        f"Run {stamp} on {describe()}; command `python"
        f" benchmarks/levers_bench.py` (Mundlak, {args.units:,} units in {args.groups:,} groups,"
        f" {args.chains} chains x {args.draws} draws). ESS is the smallest bulk ESS over"
        f" {', '.join(WATCHED)}; R-hat the largest over every parameter.",
        "",
        "| mass matrix | tuning | precision | sampling (s) | steps per draw | min bulk ESS | ESS per s"
        " | max R-hat | divergences |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['mass']} | {r['tune']} | {r['precision']} | {r['seconds']:.1f} | {r['steps']:.1f}"
        f" | {r['min_ess']:.0f} | {r['ess_per_s']:.1f} | {r['rhat']:.3f} | {r['divergences']} |"
        for r in rows
    ]
    with atomic_path(args.out) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
