"""Recovery study: replicates x scenarios x models, each model compiled once per worker.

A task is one model fitted to one replicate of one scenario. A worker process keeps, per scenario and model,
the engine :func:`~groupfx.inference.engine.choose_engine` picks, compiled once (for the PyMC graph: the
model, its nutpie compilation and its pointwise log-likelihood); every further replicate of that scenario only
swaps the data in (:meth:`Engine.with_data <groupfx.inference.engine.Engine.with_data>`), so a study of 100
replicates compiles each model once per worker instead of 100 times. The models with default priors need no
compilation at all: they sample through the fused kernels (cached on disk), given each replicate's data. The
engine is the one :func:`groupfx.fit` uses, and the rows per effect are
:func:`~groupfx.results.fits.summary_table`'s, as a fit's summary is. Every fit samples its chains on one core
(the workers are the parallelism) and is seeded from the study seed, the scenario, the replicate and the model
only, so results are bit for bit the same whatever the number of workers or where they run.

On a scenario with periods (:attr:`Scenario.two_way <groupfx.study.scenarios.Scenario.two_way>`) each
strategy is fitted to every replicate twice: one-way, to the replicate with its periods dropped, and two-way,
with the strategy's period terms (:func:`~groupfx.models.builders.build_strategy`); the two are separate
tasks (``two_way`` in the rows, key ``<replicate>-<model>-two-way``) and separate compiled models. Strategies
without a two-way variant of their own (:func:`has_two_way_variant`: the naive regression, which ignores
both grouping factors, and a latent u shared by every x, which is one-way only) are fitted once.

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
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import pandas as pd

from groupfx.data.grouped import GroupedData
from groupfx.engines.sampling import SamplerSettings
from groupfx.errors import InputError
from groupfx.inference.engine import Engine, choose_engine
from groupfx.models.builders import DEFAULT_MODELS, ModelSpec, get_spec
from groupfx.models.priors import resolve_priors
from groupfx.results.fits import EFFECTS, summary_table
from groupfx.study.scenarios import Scenario, simulate_replicate

MAX_DIVERGENT_SHARE = 0.05
"""A fit with more divergent draws than this share is recorded as failed."""
RESULT_COLUMNS = (
    "scenario",
    "replicate",
    "model",
    "two_way",
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


def has_two_way_variant(spec: ModelSpec) -> bool:
    """Whether a strategy fitted two-way differs from its one-way fit and is defined: not for the naive
    regression (a single intercept: it ignores both grouping factors) nor for a latent u shared by every x
    (one-way only, :meth:`ModelSpec.check_data <groupfx.models.builders.ModelSpec.check_data>`)."""
    return spec.intercepts != "single" and spec.latent_group_variable != "shared"


def one_way(data: GroupedData) -> GroupedData:
    """``data`` with its periods dropped (itself when it has none)."""
    if not data.two_way:
        return data
    names = {key: value for key, value in data.names.items() if key != "time"}
    return replace(data, time=None, time_labels=None, names=names)


TWO_WAY_SUFFIX = "-two-way"
"""What a two-way fit adds to its model's name in a task's key and seed."""


@dataclass(frozen=True)
class Task:
    """One model fitted to one replicate of one scenario (two-way: with the model's period terms)."""

    scenario: Scenario
    replicate: int
    model: str
    settings: StudySettings = field(repr=False)
    two_way: bool = False

    def __post_init__(self) -> None:
        if self.two_way and not (self.scenario.two_way and has_two_way_variant(get_spec(self.model))):
            raise InputError(
                f"A two-way fit of {self.model} needs a scenario with periods and a model with period terms"
                f" (scenario {self.scenario.name!r} has {self.scenario.n_periods} periods)."
            )

    @property
    def fit_name(self) -> str:
        """The model's name, with :data:`TWO_WAY_SUFFIX` for a two-way fit."""
        return self.model + (TWO_WAY_SUFFIX if self.two_way else "")

    @property
    def key(self) -> str:
        """Stable name of the task: ``<scenario>/<replicate>-<model>`` (``...-<model>-two-way``)."""
        return f"{self.scenario.name}/{self.replicate:04d}-{self.fit_name}"

    @property
    def seed(self) -> int:
        """The sampler seed of this fit alone."""
        keys = [
            int.from_bytes(text.encode(), "little") % (2**63) for text in (self.scenario.name, self.fit_name)
        ]
        sequence = np.random.SeedSequence([self.settings.seed, keys[0], self.replicate, keys[1]])
        return int(sequence.generate_state(1, dtype=np.uint64)[0] % (2**63))


def make_tasks(scenarios: Sequence[Scenario], settings: StudySettings) -> list[Task]:
    """Every task of a study, replicate by replicate so that early results cover every scenario and model;
    on a scenario with periods, each model one-way and (where it has one) two-way."""
    return [
        Task(scenario, replicate, model, settings, two_way)
        for replicate in range(settings.replicates)
        for scenario in scenarios
        for model in settings.models
        for two_way in (False, True)
        if not two_way or (scenario.two_way and has_two_way_variant(get_spec(model)))
    ]


_cache: dict[tuple, Engine] = {}
_lock = threading.Lock()  # PyTensor compilation is not thread-safe (Dask workers may run threads)
compile_count = 0
"""Models compiled in this process (read by tests and benchmarks)."""


def _engine(task: Task, data: GroupedData) -> tuple[Engine, float]:
    """The engine of the task's scenario and model on ``data``, and the seconds spent compiling it: compiled
    now on the first task of its kind in this process (then kept), else the kept one with ``data`` swapped
    in (0 seconds)."""
    global compile_count
    scenario = task.scenario
    # what fixes a compiled model's shapes and terms: a two-way and a one-way fit are two models, and so
    # are a balanced and an unbalanced panel (the latter adds the groups' period shares)
    key = (scenario.name, scenario.family, task.model, data.n_groups, data.n_units, data.n_times,
           data.balanced)  # fmt: skip
    with _lock:
        seconds = 0.0
        if key not in _cache:
            start = time.perf_counter()
            settings = task.settings.sampler(task.seed)
            _cache[key] = choose_engine(
                task.model, data, scenario.family, resolve_priors(), settings
            ).compile()
            seconds = time.perf_counter() - start
            compile_count += 1
        return _cache[key].with_data(data), seconds


def run_task(task: Task) -> pd.DataFrame:
    """Fit one task and return its result rows (never raises: a failure is a row with its reason)."""
    scenario, spec = task.scenario, get_spec(task.model)
    base = {"scenario": scenario.name, "replicate": task.replicate, "model": task.model,
            "two_way": task.two_way}  # fmt: skip
    task_start = time.perf_counter()
    try:
        data, _ = simulate_replicate(scenario, task.settings.seed, task.replicate)
        if not task.two_way:
            data = one_way(data)
        engine, compile_s = _engine(task, data)
        start = time.perf_counter()
        idata = engine.sample(task.settings.sampler(task.seed), task.seed, spec.target_accept_for(data))
        sample_s = time.perf_counter() - start
        elpd = float(engine.loo(idata).elpd_loo)
        divergences = int(idata.sample_stats["diverging"].sum())
        status, reason = "ok", ""
        share = divergences / (task.settings.draws * task.settings.chains)
        if share > MAX_DIVERGENT_SHARE:
            status, reason = "failed", f"{divergences} divergent draws ({share:.0%})"
        summary = summary_table(idata, list(EFFECTS))
        rows = []
        for parameter in EFFECTS:
            effect = summary.loc[[parameter]].iloc[0]  # the first covariate's (one x and one z here)
            low, high = float(effect["hdi_low"]), float(effect["hdi_high"])
            truth = scenario.truth[parameter]
            rows.append(
                base
                | {
                    "parameter": parameter,
                    "truth": truth,
                    "mean": float(effect["mean"]),
                    "sd": float(effect["sd"]),
                    "hdi_low": low,
                    "hdi_high": high,
                    "covers": bool(low <= truth <= high),
                    "r_hat": float(effect["r_hat"]),
                    "ess_bulk": float(effect["ess_bulk"]),
                    "divergences": divergences,
                    "elpd_loo": elpd,
                    "sample_s": sample_s,
                    "compile_s": compile_s,
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
