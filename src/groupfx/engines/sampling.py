"""Sampling with nutpie: settings, seeds, compilation and the draws.

A model is compiled once with ``nutpie.compile_pymc_model`` (numba backend, or JAX with ``backend="jax"``;
the fused kernels of :mod:`groupfx.engines.kernels` need no compiling) and sampled with nutpie's
low-rank-modified mass matrix while it has at most :data:`LOW_RANK_MAX_PARAMETERS` parameters: on the seed
study that mixes the latent Mundlak model's location parameters and the fixed-effects ``bzy`` several
times better than the diagonal default. Above that size the diagonal matrix is used: with thousands of
group parameters the low-rank adaptation needs more warm-up steps and holds parameters x window draws and
gradients per chain (measured on the latent model with 10,000 groups: 1.6 times the warm-up steps and
about 640 MiB more memory, at the same cost per step and the same steps per draw).
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
import warnings
from dataclasses import asdict, dataclass

import arviz as az
import numpy as np
import nutpie
import pandas as pd
import pymc as pm

from groupfx.engines import trace
from groupfx.errors import InputError

BACKENDS = ("numba", "jax")
"""Where the log-density and its gradient are computed: numba on the CPU, or JAX on its default device."""


@dataclass(frozen=True)
class SamplerSettings:
    """How to sample each model.

    Parameters
    ----------
    draws : int
        Draws kept per chain.
    tune : int
        Warm-up iterations per chain.
    chains : int
        Number of chains.
    cores : int, optional
        Chains run at once; defaults to ``min(chains, CPU count)``.
    seed : int
        Seed of the whole fit; each model gets its own stream derived from it.
    target_accept : float, optional
        NUTS target acceptance rate; defaults to each model's own (0.8, or 0.9 for fixed effects).
    low_rank_mass_matrix : bool, optional
        Use nutpie's low-rank-modified mass matrix (True) or the diagonal one (False). The default,
        None, picks low-rank for models with at most :data:`LOW_RANK_MAX_PARAMETERS` parameters and
        diagonal above (see :func:`uses_low_rank`).
    precision : str
        ``"float64"`` (default) or ``"float32"``: the precision of the per-unit work in the fused kernels
        (priors they express only). Single precision is about 1.5x faster per unit and moves the
        log-density by about 1e-8 of its size (up to 5e-7 for Poisson; ``benchmarks/kernel_results.md``);
        the sums and the draws stay float64.
    backend : str
        ``"numba"`` (default): groupfx's fused kernels where they serve the model, else the PyMC model
        compiled by numba; all on the CPU. ``"jax"``: the PyMC model compiled to JAX, on JAX's default
        device (a GPU where ``jax`` has one; needs the ``jax`` extra).
    loo : str or int
        How each fit is scored by PSIS-LOO after sampling. ``"auto"`` (default): every unit, except on
        data of 100 million log-likelihood values or more (25,000 units at 4,000 draws), where a random
        subsample of the units is smoothed exactly and the rest approximated (the difference estimator
        of Magnusson et al. 2019), the subsample sized for a subsampling SE of about 1 (every unit where
        that would need half of them). ``"exact"``: every unit. An int ``m``: a subsample of ``m`` units.
        See :mod:`groupfx.loo.subsample`.
    """

    draws: int = 1000
    tune: int = 1000
    chains: int = 4
    cores: int | None = None
    seed: int = 42
    target_accept: float | None = None
    low_rank_mass_matrix: bool | None = None
    precision: str = "float64"
    backend: str = "numba"
    loo: str | int = "auto"

    def __post_init__(self) -> None:
        for name, minimum in (("draws", 1), ("tune", 0), ("chains", 1), ("seed", 0)):
            value = getattr(self, name)
            if not _is_count(value, minimum):
                raise InputError(f"{name} must be an integer >= {minimum} (got {value!r}).")
        if self.cores is not None and (not isinstance(self.cores, (int, np.integer)) or self.cores < 1):
            raise InputError(f"cores must be a positive integer (got {self.cores!r}).")
        if self.low_rank_mass_matrix is not None and not isinstance(self.low_rank_mass_matrix, bool):
            raise InputError(
                "low_rank_mass_matrix must be True, False or None (automatic)"
                f" (got {self.low_rank_mass_matrix!r})."
            )
        if self.backend not in BACKENDS:
            choices = ", ".join(map(repr, BACKENDS))
            raise InputError(f"backend must be one of {choices} (got {self.backend!r}).")
        if self.backend == "jax" and importlib.util.find_spec("jax") is None:
            raise InputError(
                "backend='jax' needs JAX: pip install 'groupfx[jax]' (CPU) or 'jax[cuda12]' (NVIDIA GPU),"
                " or leave the backend at 'numba'."
            )
        if self.precision not in ("float64", "float32"):
            raise InputError(f"precision must be 'float64' or 'float32' (got {self.precision!r}).")
        problem = loo_setting_problem(self.loo)
        if problem:
            raise InputError(problem)
        if self.target_accept is not None and not 0 < self.target_accept < 1:
            raise InputError(f"target_accept must lie strictly between 0 and 1 (got {self.target_accept}).")

    @property
    def n_cores(self) -> int:
        """Chains sampled at once."""
        return self.cores or max(1, min(self.chains, os.cpu_count() or 1))

    def to_dict(self) -> dict[str, object]:
        """The settings as plain values (for reports and file attributes)."""
        return asdict(self)


LOW_RANK_MAX_PARAMETERS = 1000
"""Above this many parameters the automatic choice is the diagonal mass matrix."""


def _is_count(value: object, minimum: int) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | np.integer) and value >= minimum


def loo_setting_problem(value: object) -> str | None:
    """Why ``value`` is no ``loo`` setting (``"auto"``, ``"exact"`` or a number of units >= 2), or None."""
    if value in ("auto", "exact") or _is_count(value, minimum=2):
        return None
    return f"loo must be 'auto', 'exact' or a number of units (at least 2) to subsample (got {value!r})."


def uses_low_rank(settings: SamplerSettings, n_parameters: int) -> bool:
    """Whether a model with ``n_parameters`` unconstrained parameters is sampled with the low-rank matrix."""
    if settings.low_rank_mass_matrix is None:
        return n_parameters <= LOW_RANK_MAX_PARAMETERS
    return settings.low_rank_mass_matrix


def mass_matrix_text(settings: SamplerSettings) -> str:
    """The mass matrix the settings ask for, in words."""
    if settings.low_rank_mass_matrix is None:
        return f"low-rank-modified mass matrix up to {LOW_RANK_MAX_PARAMETERS:,} parameters, diagonal above"
    return f"{'low-rank-modified' if settings.low_rank_mass_matrix else 'diagonal'} mass matrix"


def model_seed(seed: int, model_name: str) -> int:
    """A seed for one model derived from the fit's seed and the model's name, stable across runs."""
    key = int.from_bytes(model_name.encode(), "little") % (2**63)
    return int(np.random.SeedSequence([seed, key]).generate_state(1, dtype=np.uint64)[0] % (2**63))


def compile_model(model: pm.Model, backend: str = "numba") -> nutpie.CompiledModel:
    """Compile a PyMC model for nutpie (logp and gradient with numba, or with JAX).

    The compiled model keeps the ``pm.Data`` containers swappable with ``compiled.with_data(...)``.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        if backend == "jax":
            return nutpie.compile_pymc_model(model, backend="jax", gradient_backend="jax")
        return nutpie.compile_pymc_model(model, backend="numba")


def jax_device() -> str:
    """The device JAX computes on, e.g. ``gpu (NVIDIA H100)`` or ``cpu``."""
    import jax

    device = jax.devices()[0]
    kind = getattr(device, "device_kind", "")
    return f"{device.platform} ({kind})" if device.platform != "cpu" and kind else device.platform


def draw_samples(
    compiled: nutpie.CompiledModel, settings: SamplerSettings, seed: int, target_accept: float
) -> az.InferenceData:
    """Sample a compiled model and return posterior and sampler statistics (no warm-up draws).

    The trace is converted by :func:`groupfx.engines.trace.to_inference_data`, which never materialises the
    warm-up draws (nutpie's own conversion peaks at about 7.6 times the posterior's size). A run whose
    trace would pass :data:`groupfx.engines.trace.DISK_TRACE_BYTES` is written to a temporary folder on disk
    (nutpie's zarr store) and only its posterior read back: the memory of a fit then grows with the
    posterior, not with nutpie's whole trace.
    """
    options = {
        "return_raw_trace": True,
        "draws": settings.draws,
        "tune": settings.tune,
        "chains": settings.chains,
        "cores": settings.n_cores,
        "seed": seed,
        "save_warmup": False,
        "progress_bar": False,
        "low_rank_modified_mass_matrix": uses_low_rank(settings, compiled.n_dim),
        "target_accept": settings.target_accept or target_accept,
    }
    coords = {name: pd.Index(values) for name, values in (compiled.coords or {}).items()}
    iterations = settings.tune + settings.draws
    if trace.stored_bytes(compiled, settings.chains, iterations) <= trace.DISK_TRACE_BYTES:
        idata, store = trace.to_inference_data(nutpie.sample(compiled, **options), coords), "memory"
    else:
        with tempfile.TemporaryDirectory(prefix="groupfx-trace-") as folder:
            nutpie.sample(compiled, zarr_store=nutpie.zarr_store.LocalStore(folder), **options)
            idata, store = trace.from_zarr(folder, coords), "disk"
    idata.sample_stats.attrs.update(
        {
            "mass_matrix": "low-rank" if options["low_rank_modified_mass_matrix"] else "diagonal",
            "target_accept": float(options["target_accept"]),
            "trace_store": store,
            "n_parameters": int(compiled.n_dim),
            "backend": settings.backend,
            "device": jax_device() if settings.backend == "jax" else "cpu",
            "precision": settings.precision,
            "cores": settings.n_cores,
        }
    )
    return idata
