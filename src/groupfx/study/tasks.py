"""Recovery study: replicates x scenarios x models, each model compiled once per worker.

A task is one model fitted to one replicate of one scenario. A worker process keeps, per scenario and model,
the PyMC model, its nutpie compilation and its compiled pointwise log-likelihood; every further replicate of
that scenario only swaps the data in (``compiled.with_data``, ``pm.set_data``), so a study of 100 replicates
compiles each model once per worker instead of 100 times. The Bernoulli models with default priors need no
nutpie compilation at all: they sample through the fused kernels of :mod:`~groupfx.engines.kernels` (cached on
disk), given each replicate's data. Every fit samples its chains on one core (the workers are the parallelism)
and is seeded from the study seed, the scenario, the replicate and the model only, so results are bit for bit
the same whatever the number of workers or where they run.

The results of a task are one row per effect (``bxy``, ``bzy``): estimate, interval, coverage,
diagnostics, elpd_loo, and the seconds spent sampling, compiling (on the task that compiled) and in all.
A task that raises, or whose sampler diverges in more than :data:`MAX_DIVERGENT_SHARE` of its draws, is
recorded as failed with its reason.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import arviz as az
import numpy as np
import pandas as pd
import pymc as pm

from groupfx.engines import kernels, native
from groupfx.engines.sampling import SamplerSettings, compile_model, draw_samples
from groupfx.errors import InputError
from groupfx.loo import fused as fused_loo
from groupfx.loo.loglik import loo, pointwise_loglik_function
from groupfx.models.builders import DEFAULT_MODELS, build_model, data_names, data_values, get_spec
from groupfx.models.priors import resolve_priors
from groupfx.results.fits import EFFECTS, HDI_PROB
from groupfx.study.scenarios import Scenario, simulate_replicate

MAX_DIVERGENT_SHARE = 0.05
"""A fit with more divergent draws than this share is recorded as failed."""
RESULT_COLUMNS = (
    "scenario",
    "replicate",
    "model",
    "parameter",
    "truth",
    "mean",
    "sd",
    "hdi_low",
    "hdi_high",
    "covers",
    "r_hat",
    "ess_bulk",
    "divergences",
    "elpd_loo",
    "sample_s",
    "compile_s",
    "task_s",
    "status",
    "reason",
)
"""Columns of a task's result rows, in order."""


@dataclass(frozen=True)
class StudySettings:
    """What every fit of a study shares.

    Parameters
    ----------
    replicates : int
        Replicates per scenario.
    models : tuple of str
        Strategies to fit to each replicate.
    draws, tune, chains : int
        Sampling per fit (chains run one after another on one core).
    seed : int
        Study seed: every replicate's data and every fit's sampler derive from it.
    """

    replicates: int = 100
    models: tuple[str, ...] = DEFAULT_MODELS
    draws: int = 500
    tune: int = 500
    chains: int = 2
    seed: int = 42

    def __post_init__(self) -> None:
        if isinstance(self.replicates, bool) or not isinstance(self.replicates, int) or self.replicates < 1:
            raise InputError(f"replicates must be a positive integer (got {self.replicates!r}).")
        for name in self.models:
            get_spec(name)
        if len(set(self.models)) != len(self.models) or not self.models:
            raise InputError(f"Name each model once (got {', '.join(self.models) or 'none'}).")
        self.sampler(0)  # validates draws, tune, chains and seed

    def sampler(self, seed: int) -> SamplerSettings:
        """Sampler settings of one fit: one core, the given seed."""
        return SamplerSettings(draws=self.draws, tune=self.tune, chains=self.chains, cores=1, seed=seed)

    def to_dict(self) -> dict[str, object]:
        """Plain values, for the study's record."""
        values = asdict(self)
        values["models"] = list(self.models)
        return values


@dataclass(frozen=True)
class Task:
    """One model fitted to one replicate of one scenario."""

    scenario: Scenario
    replicate: int
    model: str
    settings: StudySettings = field(repr=False)

    @property
    def key(self) -> str:
        """Stable name of the task: ``<scenario>/<replicate>-<model>``."""
        return f"{self.scenario.name}/{self.replicate:04d}-{self.model}"

    @property
    def seed(self) -> int:
        """The sampler seed of this fit alone."""
        keys = [
            int.from_bytes(text.encode(), "little") % (2**63) for text in (self.scenario.name, self.model)
        ]
        sequence = np.random.SeedSequence([self.settings.seed, keys[0], self.replicate, keys[1]])
        return int(sequence.generate_state(1, dtype=np.uint64)[0] % (2**63))


def make_tasks(scenarios: Sequence[Scenario], settings: StudySettings) -> list[Task]:
    """Every task of a study, replicate by replicate so that early results cover every scenario and model."""
    return [
        Task(scenario, replicate, model, settings)
        for replicate in range(settings.replicates)
        for scenario in scenarios
        for model in settings.models
    ]


@dataclass
class _Compiled:
    model: pm.Model
    compiled: object
    loglik: tuple
    names: list[str]
    seconds: float


_cache: dict[tuple, _Compiled] = {}
_lock = threading.Lock()  # PyTensor compilation is not thread-safe (Dask workers may run threads)
compile_count = 0
"""Models compiled in this process (read by tests and benchmarks)."""


def _compiled(task: Task, data) -> _Compiled:
    """The compiled model of the task's scenario and model: from this process's cache, or compiled now
    (then its ``seconds`` are the compile time; 0 for a cached one)."""
    global compile_count
    scenario = task.scenario
    key = (scenario.name, scenario.n_groups, scenario.n_units, scenario.family, task.model)
    with _lock:
        if key in _cache:
            entry = _cache[key]
            return _Compiled(entry.model, entry.compiled, entry.loglik, entry.names, 0.0)
        start = time.perf_counter()
        model = build_model(task.model, data, family=scenario.family)
        fused = kernels.supported(task.model, scenario.family, resolve_priors(), data)
        compiled = None if fused else compile_model(model)  # a fused kernel needs no compilation
        function = None if fused else pointwise_loglik_function(model)  # fused: LOO in numba
        entry = _Compiled(model, compiled, function, data_names(model), time.perf_counter() - start)
        _cache[key] = entry
        compile_count += 1
        return entry


def run_task(task: Task) -> pd.DataFrame:
    """Fit one task and return its result rows (never raises: a failure is a row with its reason)."""
    scenario, spec = task.scenario, get_spec(task.model)
    base = {"scenario": scenario.name, "replicate": task.replicate, "model": task.model}
    task_start = time.perf_counter()
    try:
        data, _ = simulate_replicate(scenario, task.settings.seed, task.replicate)
        entry = _compiled(task, data)
        values = {name: value for name, value in data_values(data).items() if name in entry.names}
        fused = None
        if entry.compiled is None:
            fused = kernels.FusedModel(task.model, data, task.scenario.family)
            compiled = native.compile_native(fused)
        else:
            compiled = entry.compiled.with_data(**values)
        start = time.perf_counter()
        idata = draw_samples(compiled, task.settings.sampler(task.seed), task.seed, spec.target_accept)
        sample_s = time.perf_counter() - start
        if fused is not None:
            elpd = float(fused_loo.loo(fused, idata.posterior).elpd_loo)
        else:
            with _lock:  # the model's data containers are shared by the threads of one process
                pm.set_data(values, model=entry.loglik[2])  # the copy the log-likelihood reads
                elpd = float(loo(entry.model, idata, function=entry.loglik).elpd_loo)
        divergences = int(idata.sample_stats["diverging"].sum())
        status, reason = "ok", ""
        share = divergences / (task.settings.draws * task.settings.chains)
        if share > MAX_DIVERGENT_SHARE:
            status, reason = "failed", f"{divergences} divergent draws ({share:.0%})"
        posterior = idata.posterior
        hdi = az.hdi(posterior[list(EFFECTS)], hdi_prob=HDI_PROB)
        summary = az.summary(posterior, var_names=list(EFFECTS), kind="diagnostics", round_to="none")
        rows = []
        for parameter in EFFECTS:
            draws = posterior[parameter].to_numpy().ravel()
            low, high = (float(v) for v in hdi[parameter].to_numpy().ravel())
            label = next(i for i in summary.index if i.startswith(parameter))
            truth = scenario.truth[parameter]
            rows.append(
                base
                | {
                    "parameter": parameter,
                    "truth": truth,
                    "mean": float(draws.mean()),
                    "sd": float(draws.std(ddof=1)),
                    "hdi_low": low,
                    "hdi_high": high,
                    "covers": bool(low <= truth <= high),
                    "r_hat": float(summary.loc[label, "r_hat"]),
                    "ess_bulk": float(summary.loc[label, "ess_bulk"]),
                    "divergences": divergences,
                    "elpd_loo": elpd,
                    "sample_s": sample_s,
                    "compile_s": entry.seconds,
                    "task_s": time.perf_counter() - task_start,
                    "status": status,
                    "reason": reason,
                }
            )
        return pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
    except Exception as error:  # a failed fit is a result too; the study goes on
        reason = f"{type(error).__name__}: {' '.join(str(error).split())}"[:500]
        last = traceback.extract_tb(error.__traceback__)[-1:]
        if last:
            reason += f" (at {last[0].filename.rsplit('/', 1)[-1]}:{last[0].lineno})"
        rows = [base | {"parameter": p, "truth": scenario.truth[p], "status": "failed", "reason": reason}
                for p in EFFECTS]  # fmt: skip
        return pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
