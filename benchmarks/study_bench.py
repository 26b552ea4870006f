"""``make bench`` (part 2): a recovery study's fits, groupfx's compile-once workers against refitting.

Side by side in one run, on the seed scenario, the Mundlak model, the study's sampling settings (2 chains x
(500 tuning + 500 draws), one core):

- groupfx: ``groupfx.study.tasks.run_task`` on replicate after replicate in one process: the Bernoulli Mundlak
  model samples through its fused kernel (``groupfx.engines.kernels``, cached on disk: no nutpie compilation),
  the log-likelihood function is compiled for the first replicate and its data swapped in for the rest.
  Compile share = compile seconds / all seconds.
- refit (the seed's way): per replicate, the seed notebook's Mundlak model built anew, ``pm.sample(
  nuts_sampler="nutpie")`` (which compiles every time), ``pm.compute_log_likelihood`` and ``az.loo``.

Writes ``benchmarks/study_results.md``: fits per minute of each, the speed-up, the compile share measured
over the run and projected to 100 replicates (compiled once per worker and model).

Usage: ``python benchmarks/study_bench.py [--replicates 8]``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

import arviz as az
import numpy as np
import pymc as pm

from groupfx.util.files import atomic_path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from groupfx.study import tasks as study  # noqa: E402
from groupfx.study.scenarios import DEFAULT_SCENARIOS, simulate_replicate  # noqa: E402
from groupfx.study.tasks import StudySettings, Task, run_task  # noqa: E402
from machine import describe  # noqa: E402
from seed_notebook import mundlak_model_fn  # noqa: E402


def groupfx_fits(settings: StudySettings, replicates: int) -> dict[str, float]:
    scenario = DEFAULT_SCENARIOS[0]
    study._cache.clear()
    start = time.perf_counter()
    rows = [run_task(Task(scenario, r, "mundlak", settings)) for r in range(replicates)]
    wall = time.perf_counter() - start
    compile_s = sum(float(frame["compile_s"].iloc[0]) for frame in rows)
    failed = sum(int((frame["status"] != "ok").any()) for frame in rows)
    return {"wall": wall, "compile": compile_s, "failed": failed}


def refit_fits(settings: StudySettings, replicates: int) -> dict[str, float]:
    scenario = DEFAULT_SCENARIOS[0]
    start = time.perf_counter()
    for replicate in range(replicates):
        data, _ = simulate_replicate(scenario, settings.seed, replicate)
        coords = {"group": np.arange(data.n_groups), "id": np.arange(data.n_units)}
        model = mundlak_model_fn(coords, data.group, data.x[:, 0], data.y, data.z[:, 0], data.xbar[:, 0])
        with model:
            idata = pm.sample(tune=settings.tune, draws=settings.draws, chains=settings.chains, cores=1,
                              nuts_sampler="nutpie", random_seed=replicate, progressbar=False)  # fmt: skip
            pm.compute_log_likelihood(idata, progressbar=False)
        az.loo(idata)
    return {"wall": time.perf_counter() - start}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=8)
    parser.add_argument("--out", type=Path, default=HERE / "study_results.md")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    logging.getLogger("pymc").setLevel(logging.ERROR)
    settings = StudySettings(replicates=args.replicates, models=("mundlak",))
    ours = groupfx_fits(settings, args.replicates)
    theirs = refit_fits(settings, args.replicates)
    per_fit = (ours["wall"] - ours["compile"]) / args.replicates
    projected = ours["compile"] / (ours["compile"] + 100 * per_fit)
    rate = {name: 60 * args.replicates / run["wall"] for name, run in (("ours", ours), ("theirs", theirs))}
    share = ours["compile"] / ours["wall"]
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = f"""# Study benchmark: compile once and swap data, against refitting

Run {stamp} on {describe()}; command `make bench` (`python benchmarks/study_bench.py --replicates
{args.replicates}`). Seed scenario, Mundlak model, {args.replicates} replicates one after another on one
core, each fit {settings.chains} chains x ({settings.tune} tuning + {settings.draws} draws) with LOO.

| | refit with pm.sample (seed's way) | groupfx study worker | ratio |
|---|---:|---:|---:|
| wall time (s) | {theirs["wall"]:.1f} | {ours["wall"]:.1f} | {ours["wall"] / theirs["wall"]:.2f} |
| fits per minute | {rate["theirs"]:.1f} | {rate["ours"]:.1f} | **{rate["ours"] / rate["theirs"]:.1f}x** |
| compiling, share of the run | every fit | {ours["compile"]:.1f} s once: {share:.0%} | |
| compile share projected at 100 replicates | | {projected:.1%} | |

Failed fits: {ours["failed"]}.
"""
    with atomic_path(args.out) as tmp:
        tmp.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
