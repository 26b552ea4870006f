"""LOO against sampling: exact PSIS-LOO and the subsampled LOO of ``loo="auto"`` on the same posterior.

For each size and model it simulates the seed's causal graph, fits the model once (4 chains x (1000 +
1000), float64, every unit smoothed), then scores that posterior again with ``loo="auto"`` (the
difference estimator on a subsample, :mod:`groupfx.loo.subsample`) and once more exactly, the two LOO runs
in turn, twice, and writes the faster seconds of each beside the sampling's and the LOO seconds the fit
itself reported (``loo="auto"``, what a user's fit pays), the two estimates and how many subsampling SEs
apart they lie. Every LOO here runs after a warm-up fit, so no row pays for compiling.

Usage: ``python benchmarks/loo_bench.py [--sizes 100k 1m] [--models naive mundlak]``; results in
``loo_results.json`` and ``loo_results.md``. Part of ``make bench`` at 100,000 units (about 3 minutes on
2 cores); ``--sizes 1m`` adds a million units in 10,000 groups (the naive model about 3 minutes more,
Mundlak about 12).
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
JSON = HERE / "loo_results.json"
TABLE = HERE / "loo_results.md"
REPEATS = 2
"""Times each LOO runs on the same posterior, in turn with the other; the table shows the fastest."""
SIZES = {"100k": (100_000, 1_000), "1m": (1_000_000, 10_000)}


def _timed_loo(engine, idata) -> tuple[float, object]:
    start = time.perf_counter()
    elpd = engine.loo(idata)
    return time.perf_counter() - start, elpd


def measure(units: int, groups: int, model: str) -> dict:
    """One model at one size: sampling, exact LOO and ``auto`` LOO seconds and estimates."""
    from dataclasses import replace

    import groupfx
    from groupfx.inference.engine import choose_engine
    from groupfx.loo import subsample

    sim = groupfx.simulate(n_groups=groups, n_units=units, seed=7)
    fit = groupfx.fit(sim, model, draws=1000, tune=1000, chains=4, warn=False)  # loo="auto"
    engines = {
        setting: choose_engine(model, sim.data, fit.family, fit.priors, replace(fit.settings, loo=setting))
        for setting in ("auto", "exact")
    }
    seconds = {"auto": [], "exact": []}
    for _ in range(REPEATS):  # in turn, so that a drift in the machine's speed meets both
        for setting, engine in engines.items():
            took, elpd = _timed_loo(engine, fit.idata)
            seconds[setting].append(took)
            if setting == "auto":
                auto = elpd
            else:
                exact = elpd
    auto_s, exact_s = min(seconds["auto"]), min(seconds["exact"])
    sampled = subsample.is_subsampled(auto)
    subsample_se = float(auto.subsample_se) if sampled else 0.0
    return {
        "units": sim.data.n_units,
        "groups": sim.data.n_groups,
        "model": model,
        "sample_s": fit.timings["sample"],
        "fit_loo_s": fit.timings["loo"],
        "exact_loo_s": exact_s,
        "auto_loo_s": auto_s,
        "exact_elpd": float(exact.elpd_loo),
        "exact_se": float(exact.se),
        "auto_elpd": float(auto.elpd_loo),
        "auto_se": float(auto.se),
        "subsample": subsample.n_subsample(auto),
        "subsample_se": subsample_se,
        "ran": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": short(),
    }


def render(rows: list[dict]) -> str:
    lines = [
        "# LOO against sampling: exact and subsampled",
        "",
        f"Run {rows[0]['ran']} on {describe()}; command `python benchmarks/loo_bench.py`. The seed's causal"
        " graph, 4 chains x (1000 + 1000), float64; each model fitted once, its posterior then scored with"
        ' `loo="auto"` and exactly, in turn (compiled beforehand). "apart" is |auto - exact| in subsampling'
        ' SEs; each LOO ran twice in turn with the other, the faster shown; "in the fit" is the LOO seconds'
        " the fit reported (auto, its first LOO, with the step's bookkeeping). Target: LOO under a tenth of"
        " the sampling time.",
        "",
        "| units | groups | model | sampling (s) | exact LOO (s) | / sampling | auto LOO (s) | / sampling"
        " | in the fit (s) | / sampling | units smoothed | elpd exact (se) | elpd auto (se) | subsampling SE"
        " | apart |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        apart = abs(r["auto_elpd"] - r["exact_elpd"]) / r["subsample_se"] if r["subsample_se"] else 0.0
        lines.append(
            f"| {r['units']:,} | {r['groups']:,} | {r['model']} | {r['sample_s']:.1f}"
            f" | {r['exact_loo_s']:.2f} | {r['exact_loo_s'] / r['sample_s']:.3f} | {r['auto_loo_s']:.2f}"
            f" | {r['auto_loo_s'] / r['sample_s']:.3f} | {r['fit_loo_s']:.2f}"
            f" | {r['fit_loo_s'] / r['sample_s']:.3f} | {r['subsample']:,}"
            f" | {r['exact_elpd']:,.1f} ({r['exact_se']:.1f}) | {r['auto_elpd']:,.1f} ({r['auto_se']:.1f})"
            f" | {r['subsample_se']:.2f} | {apart:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", choices=sorted(SIZES), default=["100k"])
    parser.add_argument("--models", nargs="+", default=["naive", "mundlak"])
    parser.add_argument("--render-only", action="store_true", help="redraw the table from the JSON")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    if args.render_only:
        _write(json.loads(JSON.read_text(encoding="utf-8")))
        return 0
    import groupfx

    warm = groupfx.simulate(n_groups=40, n_units=30_000, seed=1)
    groupfx.fit(warm, "naive", draws=50, tune=50, loo=3000, warn=False)
    rows = []
    for size in args.sizes:
        units, groups = SIZES[size]
        for model in args.models:
            rows.append(measure(units, groups, model))
            print(json.dumps(rows[-1]), flush=True)
            _write(rows)  # after every row: a killed run keeps what it measured
    return 0


def _write(rows: list[dict]) -> None:
    with atomic_path(JSON) as tmp:
        tmp.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    with atomic_path(TABLE) as tmp:
        tmp.write_text(render(rows), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
