"""The one place that chooses how a model is run, and the engines it returns.

:func:`choose_engine` looks at the model, the data, the family, the priors and the sampler settings and
returns an :class:`Engine`:

- :class:`FusedEngine` (``kind == "fused"``) where groupfx's fused kernel expresses the model (the five
  strategies with priors the kernel's prior table expresses, a y the family can hold) and the backend is
  numba: nutpie samples the kernel through C callbacks (:mod:`groupfx.engines.native`), nothing is compiled
  per model, and LOO and the expected outcome are the kernel's closed forms;
- :class:`GraphEngine` (``kind == "graph"``) otherwise: the PyMC model, compiled by nutpie with the numba
  or the JAX backend. Where the kernel could express the model but the backend is JAX, LOO and the expected
  outcome still take the kernel's closed forms (equal to the graph's, and cheaper).

Every engine offers the same steps: :meth:`~Engine.compile` (the caller times it), :meth:`~Engine.with_data`
(a data set of the same shape swapped in without compiling again, as the study's workers do for each
replicate), :meth:`~Engine.sample`, :meth:`~Engine.loo` and :meth:`~Engine.expected_outcome`. The draws
record which engine made them in ``sample_stats.attrs["engine"]``.

The engines live above ``loo/`` because scoring a fit by LOO is one of their steps; the kernels, sampling and
the expected outcome they call are in ``engines/``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass

import arviz as az
import pymc as pm

from groupfx.data.grouped import GroupedData
from groupfx.engines import kernels, native
from groupfx.engines.expected import ExpectedOutcome
from groupfx.engines.sampling import SamplerSettings, compile_model, draw_samples
from groupfx.errors import InputError
from groupfx.loo import fused as fused_loo
from groupfx.loo.loglik import loo, pointwise_loglik_function
from groupfx.models.builders import build_model, data_names, data_values, get_spec
from groupfx.models.families import get_family
from groupfx.models.priors import Prior, resolve_priors

KINDS = ("fused", "graph")
"""The engines :func:`choose_engine` may return, by their ``kind``."""

_lock = threading.RLock()  # PyTensor compilation and a shared model's data are not thread-safe


class Engine:
    """How one model is run on one data set: compile, swap data, sample, LOO, expected outcome.

    Made by :func:`choose_engine`, never directly.

    Attributes
    ----------
    kind : str
        ``"fused"`` or ``"graph"`` (also recorded in the draws' ``sample_stats.attrs["engine"]``).
    model, family : str
        The strategy's registry name and the outcome family's name.
    data : GroupedData
        The data it runs on.
    priors : dict of str to Prior
        The priors in force.
    settings : SamplerSettings
        The settings it was chosen for (backend and precision).
    closed_form : bool
        Whether the fused kernel expresses the model, so that its LOO, its expected outcome and its prior
        draws have closed forms (true of every fused engine, and of a graph run on JAX for such a model).
    """

    kind: str = ""

    def __init__(
        self,
        model: str,
        data: GroupedData,
        family: str,
        priors: dict[str, Prior],
        settings: SamplerSettings,
        closed_form: bool,
    ) -> None:
        self.model, self.data, self.family = model, data, family
        self.priors, self.settings, self.closed_form = priors, settings, closed_form

    def compile(self) -> Engine:
        """Make the engine ready to sample (idempotent); returns the engine."""
        raise NotImplementedError

    def with_data(self, data: GroupedData) -> Engine:
        """This engine on another data set of the same shape, without compiling again."""
        raise NotImplementedError

    def _sampler(self):
        raise NotImplementedError

    def sample(self, settings: SamplerSettings, seed: int, target_accept: float) -> az.InferenceData:
        """Draw the posterior (compiling first if need be).

        Parameters
        ----------
        settings : SamplerSettings
            Draws, warm-up, chains, cores and mass matrix of this run.
        seed : int
            The sampler's seed.
        target_accept : float
            The model's target acceptance, used unless ``settings`` sets one.

        Returns
        -------
        arviz.InferenceData
            Posterior and sampler statistics, as :func:`groupfx.engines.sampling.draw_samples` returns them,
            with ``sample_stats.attrs["engine"]`` set to :attr:`kind`.
        """
        idata = draw_samples(self.compile()._sampler(), settings, seed, target_accept)
        idata.sample_stats.attrs["engine"] = self.kind
        return idata

    def loo(self, idata: az.InferenceData) -> az.ELPDData:
        """PSIS-LOO of the outcome under ``idata``'s posterior, drawn by this engine on its data."""
        if self.closed_form:
            fused = kernels.FusedModel(self.model, self.data, self.family)
            return fused_loo.loo(fused, idata.posterior, self.settings.loo)
        return self._graph_loo(idata)

    def _graph_loo(self, idata: az.InferenceData) -> az.ELPDData:
        raise NotImplementedError

    def expected_outcome(self) -> ExpectedOutcome:
        """The expected outcome over draws: in closed form where the kernel expresses the model, else
        compiled from the PyMC model."""
        if self.closed_form:
            return ExpectedOutcome.closed_form(self.model, self.data, self.family)
        return ExpectedOutcome.of(build_model(self.model, self.data, self.priors, self.family))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.model!r}, {self.family!r}, backend={self.settings.backend!r})"


class FusedEngine(Engine):
    """The fused kernel sampled by nutpie through C callbacks; nothing to compile per model."""

    kind = "fused"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._kernel: kernels.FusedModel | None = None
        self._compiled = None

    def compile(self) -> FusedEngine:
        if self._compiled is None:  # the callbacks are cached on disk: this lays out the data only
            self._kernel = kernels.FusedModel(
                self.model, self.data, self.family, self.settings.precision, self.priors
            )
            self._compiled = native.compile_native(self._kernel)
        return self

    def with_data(self, data: GroupedData) -> FusedEngine:
        return FusedEngine(self.model, data, self.family, self.priors, self.settings, True)

    def _sampler(self):
        return self._compiled

    def loo(self, idata: az.InferenceData) -> az.ELPDData:
        kernel = self._kernel or kernels.FusedModel(self.model, self.data, self.family)
        # in float64 whatever the kernel's precision
        return fused_loo.loo(kernel, idata.posterior, self.settings.loo)


@dataclass
class _Graph:
    """What a graph engine compiles once and every engine swapped from it shares."""

    model: pm.Model
    compiled: object
    loglik: tuple | None
    names: list[str]


class GraphEngine(Engine):
    """The PyMC model compiled by nutpie (numba or JAX backend); new data are swapped into its ``pm.Data``."""

    kind = "graph"

    def __init__(self, *args, graph: _Graph | None = None, compiled=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._graph, self._compiled = graph, compiled

    def compile(self) -> GraphEngine:
        with _lock:
            if self._graph is None:
                model = build_model(self.model, self.data, self.priors, self.family)
                compiled = compile_model(model, self.settings.backend)
                loglik = None if self.closed_form else pointwise_loglik_function(model)
                self._graph = _Graph(model, compiled, loglik, data_names(model))
                self._compiled = compiled
        return self

    def _values(self, data: GroupedData) -> dict:
        return {name: value for name, value in data_values(data).items() if name in self._graph.names}

    def with_data(self, data: GroupedData) -> GraphEngine:
        graph = self.compile()._graph
        compiled = graph.compiled.with_data(**self._values(data))
        return GraphEngine(
            self.model,
            data,
            self.family,
            self.priors,
            self.settings,
            self.closed_form,
            graph=graph,
            compiled=compiled,
        )

    def _sampler(self):
        return self._compiled

    def _graph_loo(self, idata: az.InferenceData) -> az.ELPDData:
        graph = self.compile()._graph
        with _lock:  # the log-likelihood reads the data containers of one model copy, shared by swaps
            pm.set_data(self._values(self.data), model=graph.loglik[2])
            return loo(graph.model, idata, function=graph.loglik, setting=self.settings.loo)

    def expected_outcome(self) -> ExpectedOutcome:
        if self.closed_form or self._graph is None or self._compiled is not self._graph.compiled:
            return super().expected_outcome()  # closed form, or a model built on this engine's own data
        return ExpectedOutcome.of(self._graph.model)


def choose_engine(
    model: str,
    data: GroupedData,
    family: str = "bernoulli",
    priors: Mapping[str, Prior] | None = None,
    settings: SamplerSettings | None = None,
) -> Engine:
    """Choose how ``model`` is run on ``data``: the fused kernel or the PyMC graph.

    The fused kernel runs where it expresses the model (:func:`groupfx.engines.kernels.supported`: the five
    strategies, priors its prior table expresses, a y the family can hold) and the backend is numba;
    anything else runs the PyMC graph on the settings' backend. Nothing is compiled here.

    Parameters
    ----------
    model : str
        Registry name of the strategy.
    data : GroupedData
        The data.
    family : str
        The outcome family's name.
    priors : mapping of str to Prior, optional
        Priors overridden by name (the rest are the defaults).
    settings : SamplerSettings, optional
        Backend and precision (defaults: numba, float64).

    Returns
    -------
    Engine
        A :class:`FusedEngine` or a :class:`GraphEngine`, not compiled yet.

    Raises
    ------
    InputError
        ``precision="float32"`` where the fused kernel does not run (it alone computes in single precision).
    """
    spec = get_spec(model)
    family = get_family(family).name
    priors = resolve_priors(priors)
    settings = settings or SamplerSettings()
    served = kernels.supported(spec.name, family, priors, data)
    fused = served and settings.backend == "numba"
    if settings.precision != "float64" and not fused:
        raise InputError(
            f"{spec.label}: precision={settings.precision!r} needs the fused kernel, which serves the five"
            " models with priors it expresses on the numba backend; this model, these priors or the"
            f" {settings.backend} backend run in float64 (drop the option)."
        )
    kind = FusedEngine if fused else GraphEngine
    return kind(spec.name, data, family, priors, settings, served)
