"""Baseline benchmark: a faithful transcription of the seed notebook's computations.

This script re-runs, step by step, what the seed notebook
("Fixed and Random Effects Models: A Simulated Study", after McElreath's Statistical
Rethinking 2026 lecture B04) computes, so that the optimised ``groupfx`` package can be
timed against it:

1. the generative model (with ``pm.Deterministic("p", ...)``) intervened on with
   ``pm.do`` and simulated with ``pm.sample_prior_predictive(draws=1, random_seed=rng)``;
2. the five models exactly as the notebook writes them -- naive, fixed effects,
   multilevel (with the notebook's own ``z ~ Normal(abar, 1)`` followed by
   ``a = abar + z * tau``), Mundlak, and the latent Mundlak model (no sign constraint on
   ``bux``) -- each carrying a Deterministic ``p`` of size N;
3. each sampled with ``pm.sample(..., nuts_sampler="nutpie", random_seed=rng)`` and
   followed by ``pm.compute_log_likelihood`` (``var_names=["y_obs"]`` for the latent one);
4. ``az.compare(..., ic="loo")`` over the five fits.

It is deliberately kept as-is, inefficiencies and modelling quirks included (the
per-draw Deterministic ``p`` that is stored for every unit, the doubled ``abar`` in the
multilevel models, the shared ``Generator`` threaded through every call, the
unconstrained latent model): it is the *baseline*, and changing any of that would change
what the benchmark compares against. Only the plots are left out, because figures are
not part of the timed computation; ``progressbar=False`` (on ``pm.sample`` and
``pm.compute_log_likelihood``) only keeps the output quiet.

Imports happen before the timer starts. ``wall_s`` covers simulation through
``az.compare``; the per-model diagnostics (ESS, R-hat, divergences, posterior summaries)
are computed after the timer stops.

Usage::

    python benchmarks/seed_notebook.py --seed 42 --groups 30 --units 2000 \\
        --draws 1000 --tune 1000 --chains 4 --json results/seed.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import arviz as az
import numpy as np
import nutpie
import pandas as pd
import pymc as pm

MODEL_KEYS: tuple[str, ...] = ("naive", "fixed", "multilevel", "mundlak", "latent")
# The names the notebook gives the models in ``az.compare``.
NOTEBOOK_NAMES: dict[str, str] = {
    "naive": "Naive",
    "fixed": "Fixed Effects",
    "multilevel": "Multilevel",
    "mundlak": "Mundlak",
    "latent": "Mundlak Latent",
}
TRUE_PARAMS: dict[str, float] = {"a0": -2, "bzy": 1.0, "bxy": 0.0}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--groups", type=int, default=30, help="number of groups (n_groups)")
    parser.add_argument("--units", type=int, default=2_000, help="number of units (n_id)")
    parser.add_argument("--draws", type=int, default=1_000)
    parser.add_argument("--tune", type=int, default=1_000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--cores", type=int, default=None, help="default: min(chains, os.cpu_count())")
    parser.add_argument("--json", type=Path, default=None, help="write the results here (atomically)")
    args = parser.parse_args(argv)
    if args.cores is None:
        args.cores = min(args.chains, os.cpu_count() or 1)
    return args


# --------------------------------------------------------------------------------------
# Generate data (notebook section "Generate Data")
# --------------------------------------------------------------------------------------


def simulate(
    rng: np.random.Generator, n_groups: int, n_id: int
) -> tuple[dict[str, Any], np.ndarray, np.ndarray, np.ndarray, np.ndarray, pd.DataFrame]:
    g = rng.choice(n_groups, size=(n_id,), replace=True)

    coords: dict[str, Any] = {
        "group": np.arange(n_groups),
        "id": np.arange(n_id),
    }

    with pm.Model(coords=coords) as generative_model:
        a0 = pm.Normal("a0", mu=0, sigma=1)
        bzy = pm.Normal("bzy", mu=0, sigma=1)
        bxy = pm.Normal("bxy", mu=0, sigma=1)
        ug = pm.Normal("ug", mu=0, sigma=1.5, dims="group")
        x = pm.Normal("x", mu=ug[g], sigma=1, dims="id")
        z = pm.Normal("z", mu=0, sigma=1, dims="group")
        p = pm.Deterministic("p", pm.math.invlogit(a0 + bxy * x + ug[g] + bzy * z[g]), dims="id")
        pm.Bernoulli("y", p, dims="id")

    generative_model_do = pm.do(generative_model, TRUE_PARAMS)

    with generative_model_do:
        idata_obs = pm.sample_prior_predictive(draws=1, random_seed=rng)

    ug_obs = idata_obs["prior"]["ug"].sel(chain=0, draw=0).to_numpy()
    z_obs = idata_obs["prior"]["z"].sel(chain=0, draw=0).to_numpy()
    x_obs = idata_obs["prior"]["x"].sel(chain=0, draw=0).to_numpy()
    y_obs = idata_obs["prior"]["y"].sel(chain=0, draw=0).to_numpy()

    assert ug_obs.shape == (n_groups,)
    assert z_obs.shape == (n_groups,)
    assert x_obs.shape == (n_id,)
    assert y_obs.shape == (n_id,)

    data_df = pd.DataFrame({"group": g, "x": x_obs, "y": y_obs, "z": z_obs[g], "ug": ug_obs[g]})
    return coords, g, x_obs, y_obs, z_obs, data_df


# --------------------------------------------------------------------------------------
# The five models, as written in the notebook
# --------------------------------------------------------------------------------------


def naive_model_fn(
    coords: dict[str, Any], g: np.ndarray, x_obs: np.ndarray, y_obs: np.ndarray, z_obs: np.ndarray
) -> pm.Model:
    with pm.Model(coords=coords) as naive_model:
        x_data = pm.Data("x_data", x_obs, dims="id")
        y_data = pm.Data("y_data", y_obs, dims="id")
        g_data = pm.Data("g_data", g, dims="id")
        z_data = pm.Data("z_data", z_obs, dims="group")

        a0 = pm.Normal("a0", mu=0, sigma=1)
        bzy = pm.Normal("bzy", mu=0, sigma=1)
        bxy = pm.Normal("bxy", mu=0, sigma=1)

        p = pm.Deterministic("p", pm.math.invlogit(a0 + bxy * x_data + bzy * z_data[g_data]), dims="id")
        pm.Bernoulli("y_obs", p, dims="id", observed=y_data)
    return naive_model


def fixed_effects_model_fn(
    coords: dict[str, Any], g: np.ndarray, x_obs: np.ndarray, y_obs: np.ndarray, z_obs: np.ndarray
) -> pm.Model:
    with pm.Model(coords=coords) as fixed_effects_model:
        x_data = pm.Data("x_data", x_obs, dims="id")
        y_data = pm.Data("y_data", y_obs, dims="id")
        g_data = pm.Data("g_data", g, dims="id")
        z_data = pm.Data("z_data", z_obs, dims="group")

        a0 = pm.Normal("a0", mu=0, sigma=10, dims="group")
        bzy = pm.Normal("bzy", mu=0, sigma=1)
        bxy = pm.Normal("bxy", mu=0, sigma=1)

        p = pm.Deterministic(
            "p", pm.math.invlogit(a0[g_data] + bxy * x_data + bzy * z_data[g_data]), dims="id"
        )
        pm.Bernoulli("y_obs", p, dims="id", observed=y_data)
    return fixed_effects_model


def multilevel_model_fn(
    coords: dict[str, Any], g: np.ndarray, x_obs: np.ndarray, y_obs: np.ndarray, z_obs: np.ndarray
) -> pm.Model:
    with pm.Model(coords=coords) as multilevel_model:
        x_data = pm.Data("x_data", x_obs, dims="id")
        y_data = pm.Data("y_data", y_obs, dims="id")
        g_data = pm.Data("g_data", g, dims="id")
        z_data = pm.Data("z_data", z_obs, dims="group")

        bzy = pm.Normal("bzy", mu=0, sigma=1)
        bxy = pm.Normal("bxy", mu=0, sigma=1)
        abar = pm.Normal("abar", mu=0, sigma=1)
        tau = pm.Exponential("tau", lam=1)
        # Kept as in the notebook: z is centred on abar *and* abar is added again below.
        z = pm.Normal("z", mu=abar, sigma=1, dims="group")

        a = abar + z * tau

        p = pm.Deterministic(
            "p", pm.math.invlogit(a[g_data] + bxy * x_data + bzy * z_data[g_data]), dims="id"
        )
        pm.Bernoulli("y_obs", p, dims="id", observed=y_data)
    return multilevel_model


def mundlak_model_fn(
    coords: dict[str, Any],
    g: np.ndarray,
    x_obs: np.ndarray,
    y_obs: np.ndarray,
    z_obs: np.ndarray,
    xbar_obs: np.ndarray,
) -> pm.Model:
    with pm.Model(coords=coords) as mundlak_model:
        x_data = pm.Data("x_data", x_obs, dims="id")
        y_data = pm.Data("y_data", y_obs, dims="id")
        g_data = pm.Data("g_data", g, dims="id")
        z_data = pm.Data("z_data", z_obs, dims="group")
        xbar_data = pm.Data("xbar_data", xbar_obs, dims="group")

        bzy = pm.Normal("bzy", mu=0, sigma=1)
        bxy = pm.Normal("bxy", mu=0, sigma=1)
        buy = pm.Normal("buy", mu=0, sigma=1)
        abar = pm.Normal("abar", mu=0, sigma=1)
        tau = pm.Exponential("tau", lam=1)
        z = pm.Normal("z", mu=abar, sigma=1, dims="group")

        a = abar + z * tau

        p = pm.Deterministic(
            "p",
            pm.math.invlogit(a[g_data] + bxy * x_data + bzy * z_data[g_data] + buy * xbar_data[g_data]),
            dims="id",
        )
        pm.Bernoulli("y_obs", p, dims="id", observed=y_data)
    return mundlak_model


def mundlak_latent_model_fn(
    coords: dict[str, Any], g: np.ndarray, x_obs: np.ndarray, y_obs: np.ndarray, z_obs: np.ndarray
) -> pm.Model:
    with pm.Model(coords=coords) as mundlak_latent_model:
        x_data = pm.Data("x_data", x_obs, dims="id")
        y_data = pm.Data("y_data", y_obs, dims="id")
        g_data = pm.Data("g_data", g, dims="id")
        z_data = pm.Data("z_data", z_obs, dims="group")

        bzy = pm.Normal("bzy", mu=0, sigma=1)
        bxy = pm.Normal("bxy", mu=0, sigma=1)
        buy = pm.Normal("buy", mu=0, sigma=1)
        bux = pm.Normal("bux", mu=0, sigma=1)  # no sign constraint, as in the notebook
        abar = pm.Normal("abar", mu=0, sigma=1)
        tau = pm.Exponential("tau", lam=1)
        z = pm.Normal("z", mu=abar, sigma=1, dims="group")
        ug = pm.Normal("u", mu=0, sigma=1, dims="group")
        ax = pm.Normal("ax", mu=0, sigma=1)
        sigma = pm.Exponential("sigma", lam=1)

        mu = pm.Deterministic("mu", ax + bux * ug[g_data])

        pm.Normal("x_obs", mu=mu, sigma=sigma, dims="id", observed=x_obs)

        a = abar + z * tau

        p = pm.Deterministic(
            "p",
            pm.math.invlogit(a[g_data] + bxy * x_data + bzy * z_data[g_data] + buy * ug[g_data]),
            dims="id",
        )
        pm.Bernoulli("y_obs", p, dims="id", observed=y_data)
    return mundlak_latent_model


# --------------------------------------------------------------------------------------
# Sampling, diagnostics, output
# --------------------------------------------------------------------------------------


def fit(
    model: pm.Model, args: argparse.Namespace, rng: np.random.Generator, loglik_var_names: list[str] | None
) -> tuple[az.InferenceData, float]:
    """``pm.sample`` with nutpie then ``pm.compute_log_likelihood``, as in each notebook cell."""
    t0 = time.perf_counter()
    with model:
        idata = pm.sample(
            tune=args.tune,
            draws=args.draws,
            chains=args.chains,
            cores=args.cores,
            nuts_sampler="nutpie",
            random_seed=rng,
            progressbar=False,
        )

        if loglik_var_names is None:
            pm.compute_log_likelihood(idata, progressbar=False)
        else:
            pm.compute_log_likelihood(idata, var_names=loglik_var_names, progressbar=False)
    return idata, time.perf_counter() - t0


def summarise_study(idata: az.InferenceData, seconds: float) -> dict[str, Any]:
    var_names = ["bxy", "bzy"]
    ess = az.ess(idata, var_names=var_names, method="bulk")
    rhat = az.rhat(idata, var_names=var_names)
    post = idata.posterior
    out: dict[str, Any] = {
        "sample_loglik_s": seconds,
        "divergences": int(idata.sample_stats["diverging"].sum()),
    }
    for v in var_names:
        out[v] = {
            "ess_bulk": float(ess[v]),
            "rhat": float(rhat[v]),
            "mean": float(post[v].mean()),
            "sd": float(post[v].std()),
        }
    return out


def peak_rss_mb() -> dict[str, float]:
    """Peak resident set size in MB (``ru_maxrss`` is in KiB on Linux).

    ``total`` adds this process's peak to the largest peak among its waited-for children (e.g. the C
    compiler PyTensor runs); the two peaks need not coincide, so it is an upper bound.
    """
    self_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "total": (self_kib + children_kib) / 1024,
        "self": self_kib / 1024,
        "children": children_kib / 1024,
    }


def write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates the file 0600; give it the usual umask-derived mode instead.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, "w") as fh:
            json.dump(payload, fh, indent=2)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    # ---- timed section: simulation through az.compare ---------------------------------
    t_start = time.perf_counter()

    seed: int = args.seed
    rng: np.random.Generator = np.random.default_rng(seed=seed)
    n_groups: int = args.groups
    n_id: int = args.units

    coords, g, x_obs, y_obs, z_obs, data_df = simulate(rng, n_groups, n_id)
    xbar_obs = data_df.groupby("group")["x"].mean().to_numpy()
    simulate_s = time.perf_counter() - t_start

    idatas: dict[str, az.InferenceData] = {}
    seconds: dict[str, float] = {}
    idatas["naive"], seconds["naive"] = fit(naive_model_fn(coords, g, x_obs, y_obs, z_obs), args, rng, None)
    idatas["fixed"], seconds["fixed"] = fit(
        fixed_effects_model_fn(coords, g, x_obs, y_obs, z_obs), args, rng, None
    )
    idatas["multilevel"], seconds["multilevel"] = fit(
        multilevel_model_fn(coords, g, x_obs, y_obs, z_obs), args, rng, None
    )
    idatas["mundlak"], seconds["mundlak"] = fit(
        mundlak_model_fn(coords, g, x_obs, y_obs, z_obs, xbar_obs), args, rng, None
    )
    idatas["latent"], seconds["latent"] = fit(
        mundlak_latent_model_fn(coords, g, x_obs, y_obs, z_obs), args, rng, ["y_obs"]
    )

    t_compare = time.perf_counter()
    comp_df = az.compare({NOTEBOOK_NAMES[k]: idatas[k] for k in MODEL_KEYS}, ic="loo")
    t_end = time.perf_counter()
    wall_s = t_end - t_start
    compare_s = t_end - t_compare
    # ---- end of timed section ---------------------------------------------------------

    key_of = {v: k for k, v in NOTEBOOK_NAMES.items()}
    loo_rank = [key_of[name] for name in comp_df.sort_values("rank").index]
    loo = {
        key_of[name]: {
            "rank": int(row["rank"]),
            "elpd_loo": float(row["elpd_loo"]),
            "p_loo": float(row["p_loo"]),
            "elpd_diff": float(row["elpd_diff"]),
            "weight": float(row["weight"]),
            "se": float(row["se"]),
            "dse": float(row["dse"]),
            "warning": bool(row["warning"]),
        }
        for name, row in comp_df.iterrows()
    }
    models = {k: summarise_study(idatas[k], seconds[k]) for k in MODEL_KEYS}
    rss = peak_rss_mb()

    payload: dict[str, Any] = {
        "wall_s": wall_s,
        "simulate_s": simulate_s,
        "compare_s": compare_s,
        "settings": {
            "seed": args.seed,
            "groups": args.groups,
            "units": args.units,
            "draws": args.draws,
            "tune": args.tune,
            "chains": args.chains,
            "cores": args.cores,
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "pymc": pm.__version__,
            "nutpie": getattr(nutpie, "__version__", "unknown"),
            "arviz": az.__version__,
        },
        "models": models,
        "loo_rank": loo_rank,
        "loo": loo,
        "peak_rss_mb": rss["total"],
        "peak_rss_self_mb": rss["self"],
        "peak_rss_children_mb": rss["children"],
    }
    if args.json is not None:
        write_json_atomic(args.json, payload)

    s = payload["settings"]
    print(
        f"seed notebook baseline: groups={s['groups']} units={s['units']} draws={s['draws']} "
        f"tune={s['tune']} chains={s['chains']} cores={s['cores']}"
    )
    print(
        f"wall time: {wall_s:.1f} s (simulate {simulate_s:.1f} s, az.compare {compare_s:.1f} s)   "
        f"peak RSS: {rss['total']:.0f} MB"
    )
    header = (
        f"{'model':<11} {'time_s':>7} {'div':>4} {'ess_bxy':>8} {'ess_bzy':>8} "
        f"{'rhat_bxy':>8} {'rhat_bzy':>8} {'bxy':>15} {'bzy':>15}"
    )
    print(header)
    for k in MODEL_KEYS:
        m = models[k]
        bxy, bzy = m["bxy"], m["bzy"]
        print(
            f"{k:<11} {m['sample_loglik_s']:>7.1f} {m['divergences']:>4d} {bxy['ess_bulk']:>8.0f} "
            f"{bzy['ess_bulk']:>8.0f} {bxy['rhat']:>8.3f} {bzy['rhat']:>8.3f} "
            f"{bxy['mean']:>7.3f}±{bxy['sd']:<7.3f} {bzy['mean']:>7.3f}±{bzy['sd']:<7.3f}"
        )
    print("LOO rank:", " > ".join(loo_rank))
    if args.json is not None:
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
