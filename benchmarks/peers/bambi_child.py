"""What a Bambi user writes for the four strategies, timed: run in the peers' own virtual environment.

``python bambi_child.py --data data.csv --models naive,fixed,multilevel,mundlak --json out.json``

Reads the shared table (group, x, y, z), computes the group mean of x with pandas (the Mundlak term), and
for each model builds ``bmb.Model(formula, data, family="bernoulli")`` with Bambi's default priors, samples
it with ``model.fit(inference_method="nutpie", ...)`` (PyMC's nutpie path, the same nutpie as groupfx's), then
``model.compute_log_likelihood`` and ``az.loo``; with two models or more, ``az.compare`` at the end. No
figures. The fixed-effects formula drops ``z``: it is constant within each group, so it is a linear
combination of the group dummies and has no effect of its own to estimate.

Writes one JSON object: the versions, per model its timings, bulk ESS, R-hat, mean and sd of each effect,
divergences and nutpie's leapfrog steps per draw, and the wall time of the whole study.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

START = time.perf_counter()

import arviz as az  # noqa: E402
import bambi as bmb  # noqa: E402
import formulae  # noqa: E402
import numpy as np  # noqa: E402
import nutpie  # noqa: E402
import pandas as pd  # noqa: E402
import pymc as pm  # noqa: E402

IMPORT_S = time.perf_counter() - START

FORMULAS = {
    "naive": "y ~ x + z",
    "fixed": "y ~ 0 + x + C(group)",
    "multilevel": "y ~ x + z + (1|group)",
    "mundlak": "y ~ x + z + xbar + (1|group)",
}
EFFECTS = {"bxy": "x", "bzy": "z", "buy": "xbar"}
"""groupfx's name of each effect -> the Bambi (formula) term that carries it."""


def versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "bambi": bmb.__version__,
        "formulae": formulae.__version__,
        "pymc": pm.__version__,
        "nutpie": nutpie.__version__,
        "arviz": az.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
    }


def fit_one(
    name: str, frame: pd.DataFrame, args: argparse.Namespace, checkpoint
) -> tuple[dict, az.InferenceData]:
    """Build, sample, summarise (then ``checkpoint(result)``, so a run that dies in LOO keeps its sampling
    numbers), then the log-likelihood and LOO."""
    start = time.perf_counter()
    model = bmb.Model(FORMULAS[name], frame, family="bernoulli")
    model.build()
    build_s = time.perf_counter() - start
    start = time.perf_counter()
    idata = model.fit(
        draws=args.draws,
        tune=args.tune,
        chains=args.chains,
        inference_method="nutpie",
        random_seed=args.seed,
        progressbar=False,
    )
    sample_s = time.perf_counter() - start
    terms = {key: term for key, term in EFFECTS.items() if term in idata.posterior}
    ess = az.ess(idata, var_names=list(terms.values()), method="bulk")
    rhat = az.rhat(idata, var_names=list(terms.values()))
    stats = idata.sample_stats
    steps = stats["n_steps"] if "n_steps" in stats else stats.get("tree_size")
    result = {
        "formula": FORMULAS[name],
        "build_s": build_s,
        "sample_s": sample_s,
        "fit_s": build_s + sample_s,
        "divergences": int(stats["diverging"].sum()),
        "steps_per_draw": None if steps is None else float(steps.mean()),
        "effects": {
            key: {
                "term": term,
                "mean": float(idata.posterior[term].mean()),
                "sd": float(idata.posterior[term].std()),
                "ess_bulk": float(ess[term]),
                "rhat": float(rhat[term]),
            }
            for key, term in terms.items()
        },
    }
    checkpoint(result)
    start = time.perf_counter()
    model.compute_log_likelihood(idata)  # PyMC's nutpie path ignores idata_kwargs={"log_likelihood": True}
    loo = az.loo(idata)
    result |= {"loo_s": time.perf_counter() - start, "elpd_loo": float(loo.elpd_loo)}
    return result, idata


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--models", default="naive,fixed,multilevel,mundlak")
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    study_start = time.perf_counter()
    frame = pd.read_csv(args.data)
    frame["group"] = frame["group"].astype(str)  # a factor, not a number
    frame["xbar"] = frame.groupby("group")["x"].transform("mean")
    read_s = time.perf_counter() - study_start
    models, idatas = {}, {}

    def write(stage: str, compare_s: float | None = None) -> None:
        payload = {
            "stage": stage,
            "versions": versions(),
            "import_s": IMPORT_S,
            "read_s": read_s,
            "study_s": time.perf_counter() - study_start,
            "compare_s": compare_s,
            "units": len(frame),
            "groups": int(frame["group"].nunique()),
            "pid": os.getpid(),
            "models": models,
        }
        tmp = args.json.with_name(f".{args.json.name}.tmp")
        tmp.write_text(json.dumps(payload, indent=2), encoding="utf-8")
        os.replace(tmp, args.json)

    for name in args.models.split(","):

        def checkpoint(result: dict, name: str = name) -> None:
            models[name] = result
            write("loo")

        models[name], idatas[name] = fit_one(name, frame, args, checkpoint)
    compare_s = None
    if len(idatas) > 1:
        start = time.perf_counter()
        az.compare(idatas, ic="loo")
        compare_s = time.perf_counter() - start
    write("done", compare_s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
