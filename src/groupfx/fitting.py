"""Fit the strategies: the engine :func:`~groupfx.inference.engine.choose_engine` picks compiles once,
samples and scores by LOO; then the diagnostics, and a :class:`Fit` per model."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from functools import partial

import arviz as az
import pandas as pd
import xarray as xr

from groupfx.data.grouped import GroupedData
from groupfx.data.simulate import SimulatedData
from groupfx.engines.diagnostics import find_issues, pareto_k_issues, warn_issues
from groupfx.engines.sampling import SamplerSettings, model_seed
from groupfx.errors import InputError, SamplingError
from groupfx.inference.engine import choose_engine
from groupfx.models.builders import DEFAULT_MODELS, get_spec
from groupfx.models.families import OUTCOME
from groupfx.models.priors import Prior, resolve_priors
from groupfx.results.fits import Fit, Fits
from groupfx.util.workers import default_workers, forks, run_pool, send

Progress = Callable[[str, str], None]
"""``progress(model_label, step)`` is called as each step of a fit begins."""


READ_FIRST = "groupfx.read_data(frame, y=..., x=..., group=...)"


def _as_data(data: GroupedData | SimulatedData) -> GroupedData:
    """The GroupedData to fit; a table or a file is refused with the call that makes one of it."""
    if isinstance(data, SimulatedData):
        return data.data
    if isinstance(data, GroupedData):
        return data
    if isinstance(data, pd.DataFrame):  # its columns have no roles yet: which is y, x, the group?
        raise InputError(
            "data is a DataFrame, whose columns have no roles yet; name them with"
            f" {READ_FIRST} (or formula=...) and fit what it returns."
        )
    if isinstance(data, str | os.PathLike):
        raise InputError(
            f"data is a path ({os.fspath(data)!r}); read it with"
            f" {READ_FIRST.replace('frame', 'path')} (or formula=...) and fit what it returns."
        )
    raise InputError(
        f"data must be a GroupedData or SimulatedData (got {type(data).__name__});"
        f" make one with {READ_FIRST}."
    )


def _settings(settings: SamplerSettings | None, overrides: Mapping[str, object]) -> SamplerSettings:
    base = settings or SamplerSettings()
    unknown = sorted(set(overrides) - set(base.to_dict()))
    if unknown:
        raise InputError(f"Unknown sampler setting {unknown[0]!r}; use one of {', '.join(base.to_dict())}.")
    return replace(base, **overrides)


def fit(
    data: GroupedData | SimulatedData,
    model: str = "mundlak",
    *,
    priors: Mapping[str, Prior] | None = None,
    family: str = "bernoulli",
    settings: SamplerSettings | None = None,
    progress: Progress | None = None,
    warn: bool = True,
    **sampler_options: object,
) -> Fit:
    """Fit one strategy to grouped data.

    Parameters
    ----------
    data : GroupedData or SimulatedData
        The data.
    model : str
        ``naive``, ``fixed``, ``multilevel``, ``mundlak`` (default) or ``latent``.
    priors : mapping of str to Prior, optional
        Priors to override by parameter name.
    family : str
        Outcome family: ``bernoulli`` (default, logit link), ``poisson`` (log) or ``gaussian`` (identity).
    settings : SamplerSettings, optional
        Sampler settings; keyword options (``draws=``, ``tune=``, ``chains=``, ``seed=``, ``loo=``, ...)
        override it (``loo="exact"`` smooths every unit; see :class:`SamplerSettings`).
    progress : callable, optional
        Called as ``progress(model_label, step)`` when each step starts.
    warn : bool
        Emit a :class:`~groupfx.errors.DiagnosticWarning` per diagnostic outside its threshold.

    Returns
    -------
    Fit
        Posterior, LOO, diagnostics and timings.

    Examples
    --------
    >>> sim = simulate()                                     # doctest: +SKIP
    >>> result = fit(sim, "mundlak", draws=500)               # doctest: +SKIP
    >>> result.summary().loc["bxy", ["mean", "hdi_low", "hdi_high"]]  # doctest: +SKIP
    """
    spec = get_spec(model)
    grouped = _as_data(data)
    spec.check_data(grouped)
    settings = _settings(settings, sampler_options)
    priors = resolve_priors(priors)
    report = progress or (lambda label, step: None)
    seed = model_seed(settings.seed, spec.name)
    timings: dict[str, float] = {}

    start = time.perf_counter()
    report(spec.label, "compiling")
    engine = choose_engine(spec.name, grouped, family, priors, settings).compile()
    family = engine.family
    timings["compile"] = time.perf_counter() - start

    start = time.perf_counter()
    report(spec.label, "sampling")
    try:
        idata = engine.sample(settings, seed, spec.target_accept_for(grouped))
    except RuntimeError as error:
        reason = " ".join(str(error).split())
        raise SamplingError(
            f"{spec.label}: nutpie could not sample the model ({reason}); check that y suits the"
            f" {family} family and that the priors allow the data."
        ) from None
    timings["sample"] = time.perf_counter() - start

    start = time.perf_counter()
    report(spec.label, "computing LOO")
    elpd = engine.loo(idata)
    transformed = [name for name in idata.posterior.data_vars if str(name).endswith("__")]
    idata = az.InferenceData(
        posterior=idata.posterior.drop_vars(transformed),
        sample_stats=idata.sample_stats,
        observed_data=xr.Dataset({OUTCOME: (("unit",), grouped.y)}),
    )
    idata.posterior.attrs.update({"groupfx_model": spec.name, "sampler_seed": seed})
    timings["loo"] = time.perf_counter() - start

    issues = find_issues(idata, spec.label) + pareto_k_issues(
        elpd.pareto_k, spec.label, n_units=int(elpd.n_data_points)
    )
    if warn:
        warn_issues(issues)
    return Fit(
        model=spec.name,
        idata=idata,
        data=grouped,
        settings=settings,
        priors=priors,
        seed=seed,
        loo=elpd,
        issues=issues,
        timings=timings,
        family=family,
    )


def fit_all(
    data: GroupedData | SimulatedData,
    models: Sequence[str] | None = None,
    *,
    priors: Mapping[str, Prior] | None = None,
    family: str = "bernoulli",
    settings: SamplerSettings | None = None,
    progress: Progress | None = None,
    warn: bool = True,
    workers: int | None = None,
    **sampler_options: object,
) -> Fits:
    """Fit several strategies (all five by default) to the same data.

    Parameters
    ----------
    data : GroupedData or SimulatedData
        The data.
    models : sequence of str, optional
        Registry names, in the order wanted; defaults to all five in the seed's order.
    priors, family, settings, progress, warn, **sampler_options
        As in :func:`fit`.
    workers : int, optional
        Worker processes fitting models side by side (default: one per CPU core, at most one per
        model; with ``backend="jax"`` one, since one process holds JAX's device); ``1`` fits them one
        after another in this process. Results are the same either way.

    Returns
    -------
    Fits
        A dict of :class:`Fit` keyed by registry name, in the order of ``models``; it shows its estimates
        table in Jupyter.
    """
    grouped = _as_data(data)  # a table or a path is refused before anything is started
    names = list(models) if models is not None else list(DEFAULT_MODELS)
    if not names:
        raise InputError(
            f"models is empty; name at least one of {', '.join(DEFAULT_MODELS)} (or leave it out)."
        )
    for name in names:
        get_spec(name).check_data(grouped)
    if len(set(names)) != len(names):
        raise InputError(f"A model is named twice in {names}; name each once.")
    settings = _settings(settings, sampler_options)
    if workers is None:
        workers = 1 if settings.backend == "jax" else default_workers(len(names))
    if workers < 1:
        raise InputError(f"workers must be a positive integer (got {workers}).")
    one_fit = partial(fit, data, priors=priors, family=family, settings=settings, progress=send, warn=False)
    longest_first = sorted(names, key=lambda name: -get_spec(name).cost)  # while one samples, others start
    order = longest_first if forks(workers, len(names)) else names
    fits = dict(zip(order, run_pool(one_fit, order, workers, on_event=progress), strict=True))
    fits = {name: fits[name] for name in names}
    if warn:
        for result in fits.values():
            warn_issues(result.issues)
    return Fits(fits)
