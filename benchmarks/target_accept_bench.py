"""Design measurement: divergences and steps per draw of the pooled models at two target acceptances.

The grouped models' target acceptance is 0.9 on data with few groups and nutpie's 0.8 from
``groupfx.models.builders.MANY_GROUPS`` groups on (``ModelSpec.target_accept_for``). This script is the
measurement behind that rule: for each number of groups it simulates the seed's causal graph at the seed's
density (2,000 units per 30 groups) with several data seeds, fits the multilevel, Mundlak and latent models
at each target acceptance, 4 chains x (1000 + 1000), and counts divergent fits, steps per draw and the
bulk ESS of tau. Rows are appended to ``target_accept_results.jsonl`` as they finish (a killed run keeps
its rows); the table ``target_accept_results.md`` is drawn from every row there.

Usage: ``python benchmarks/target_accept_bench.py [--groups 30 100 300] [--target-accept 0.8 0.9]
[--seeds 8] [--first-seed 0] [--models multilevel mundlak latent] [--render-only]``. Not part of
``make bench`` (about 20 minutes on 2 cores at the defaults).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

from groupfx.util.files import atomic_path
from machine import describe, short

HERE = Path(__file__).resolve().parent
ROWS = HERE / "target_accept_results.jsonl"
TABLE = HERE / "target_accept_results.md"
UNITS_PER_30_GROUPS = 2000


def fit_row(groups: int, target_accept: float, seed: int, model: str) -> dict:
    """One fit's divergences, steps per draw, tau's bulk ESS and bxy's R-hat."""
    import arviz as az

    import groupfx

    sim = groupfx.simulate(n_groups=groups, n_units=round(UNITS_PER_30_GROUPS * groups / 30), seed=seed)
    start = time.perf_counter()
    fit = groupfx.fit(sim, model, draws=1000, tune=1000, chains=4, target_accept=target_accept, warn=False)
    stats = fit.idata.sample_stats
    return {
        "groups": sim.data.n_groups,
        "units": sim.data.n_units,
        "target_accept": target_accept,
        "seed": seed,
        "model": model,
        "divergences": int(fit.divergences),
        "steps_per_draw": float(stats["n_steps"].mean()),
        "ess_tau": float(az.ess(fit.idata, var_names=["tau"])["tau"]),
        "rhat_bxy": float(az.rhat(fit.idata, var_names=["bxy"])["bxy"].max()),
        "seconds": time.perf_counter() - start,  # the whole fit: compiling, sampling and LOO
        "ran": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": short(),
    }


def render(rows: list[dict]) -> str:
    """The table: one line per model, number of groups and target acceptance."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    frame["diverged"] = frame["divergences"] > 0
    table = (
        frame.groupby(["model", "groups", "target_accept"])
        .agg(
            fits=("seed", "size"),
            diverged=("diverged", "sum"),
            divergences=("divergences", "sum"),
            steps=("steps_per_draw", "mean"),
            ess_tau=("ess_tau", "mean"),
            rhat=("rhat_bxy", "max"),
            seconds=("seconds", "mean"),
        )
        .reset_index()
    )
    machines = ", ".join(sorted(frame["machine"].unique()))
    lines = [
        "# Target acceptance and the number of groups",
        "",
        f"Rows gathered {frame['ran'].min()} to {frame['ran'].max()} on {machines}; table drawn on"
        f" {describe()}; command `python benchmarks/target_accept_bench.py`. The seed's causal graph at its"
        " density (about 67 units a group; the groups counted are those that drew units), one data seed a"
        " fit, 4 chains x (1000 + 1000), float64. A fit diverged if any draw did.",
        "",
        "| model | groups | target accept | fits | fits that diverged | divergences | steps per draw"
        " | bulk ESS tau (mean) | R-hat bxy (max) | one fit, wall (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in table.itertuples():
        lines.append(
            f"| {r.model} | {r.groups} | {r.target_accept} | {r.fits} | {r.diverged} | {r.divergences}"
            f" | {r.steps:.1f} | {r.ess_tau:.0f} | {r.rhat:.3f} | {r.seconds:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, nargs="+", default=[30, 100, 300])
    parser.add_argument("--target-accept", type=float, nargs="+", default=[0.8, 0.9])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--models", nargs="+", default=["multilevel", "mundlak", "latent"])
    parser.add_argument("--render-only", action="store_true", help="redraw the table from the rows")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    if not args.render_only:
        for groups in args.groups:
            for target_accept in args.target_accept:
                for seed in range(42 + args.first_seed, 42 + args.first_seed + args.seeds):
                    for model in args.models:
                        row = fit_row(groups, target_accept, seed, model)
                        print(json.dumps(row), flush=True)
                        with ROWS.open("a", encoding="utf-8") as out:
                            out.write(json.dumps(row) + "\n")
    rows = [json.loads(line) for line in ROWS.read_text(encoding="utf-8").splitlines() if line.strip()]
    with atomic_path(TABLE) as tmp:
        tmp.write_text(render(rows), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
