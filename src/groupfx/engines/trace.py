"""nutpie's trace to InferenceData, keeping the posterior draws only and copying each value once.

Where the trace lives: nutpie (nuts-rs 0.17) keeps every iteration of every chain, warm-up included,
and with each draw its unconstrained position and gradient, whatever its ``store_*`` settings say. For a
model with 10,000 groups that is 2 x 10,000 doubles an iteration beyond the draw itself: the Mundlak
model at a million units held about 2 GiB of trace in memory, the latent model about 4.5 GiB. So a run
whose trace would pass :data:`DISK_TRACE_BYTES` is written by nutpie's zarr store to a temporary folder
on disk and only its posterior draws and scalar statistics are read back (:func:`from_zarr`); smaller runs
stay in memory (nutpie's Arrow trace, :func:`to_inference_data`).

``nutpie.sample`` converts its Arrow trace by building NumPy arrays of the warm-up draws and of the
posterior draws and then an ``arviz.from_dict`` of both, even with ``save_warmup=False``. Here the
posterior draws of each variable are copied once from the Arrow columns into one array, the warm-up draws
never leave Arrow, and the trace is released as soon as it is read. Measured on the latent model with
10,000 groups (4 x (300 + 300)): the process's peak above its start fell from 7.9 to 6.5 times the
posterior's size; the rest is nutpie's Arrow storage during sampling, warm-up draws included. Tests hold
the result equal, value for value, to nutpie's own conversion.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import arviz as az
import numpy as np
import pyarrow
import xarray as xr

SKIPPED_STATS = ("gradient", "unconstrained_draw", "mass_matrix_inv", "mass_matrix_eigvals",
                 "mass_matrix_stds", "divergence_start", "divergence_end", "divergence_momentum",
                 "divergence_start_gradient")  # fmt: skip
"""Statistics of a parameter's size per draw (or kept by nutpie only for divergences): never read."""

DISK_TRACE_BYTES = 512 * 2**20
"""A run whose trace nutpie would hold in memory above this size is written to disk instead."""


def stored_bytes(compiled, chains: int, iterations: int) -> int:
    """The bytes of trace nutpie keeps for ``chains`` x ``iterations`` (warm-up included) of ``compiled``.

    Each iteration stores the expanded draw (every variable of the posterior, derived ones included)
    plus the unconstrained position and its gradient.
    """
    n_dim = int(compiled.n_dim)
    n_expanded = getattr(compiled, "n_expanded", None)  # nutpie's numba models
    if n_expanded is None:  # its JAX models (PyFuncModel, whose .shapes fails in nutpie 0.16.8)
        n_expanded = sum(int(variable.num_elements) for variable in compiled._variables)
    return 8 * chains * iterations * (n_expanded + 2 * n_dim)


def _dims_and_shape(column) -> tuple[list[str], list[int]]:
    meta = column.field.metadata or {}
    dims = meta.get(b"dims", b"").decode("utf-8")
    shape = meta.get(b"shape", b"").decode("utf-8")
    return (dims.split(",") if dims else []), ([int(s) for s in shape.split(",")] if shape else [])


def _with_coords(variables: dict[str, tuple], coords: Mapping[str, object]) -> xr.Dataset:
    """A Dataset of ``variables`` (each ``(dims, values)``, chain and draw first) with the coordinates its
    dims use: chain and draw numbered from 0, the rest from ``coords``."""
    n_chains, n_draws = next(iter(variables.values()))[1].shape[:2]
    used = {d for dims, _ in variables.values() for d in dims}
    dataset_coords = {"chain": np.arange(n_chains), "draw": np.arange(n_draws)}
    dataset_coords |= {name: values for name, values in coords.items() if name in used}
    return xr.Dataset(variables, coords=dataset_coords)


def _dataset(batches: Sequence, starts: Sequence[int], n_draws: int, coords: Mapping[str, object],
             skip: Sequence[str] = ()) -> xr.Dataset:  # fmt: skip
    """The rows ``starts[c]:starts[c] + n_draws`` of each chain's batch (nutpie's Arrow record batches),
    one array per column."""
    n_chains = len(batches)
    kept = [batch.slice(start, n_draws) for batch, start in zip(batches, starts, strict=True)]
    variables = {}
    for name in kept[0].column_names:
        if name in skip or name in ("chain", "draw"):  # nutpie's own indices: the coordinates say it
            continue
        dims, shape = _dims_and_shape(kept[0].column(name))
        out = None
        for chain, batch in enumerate(kept):
            column = pyarrow.array(batch.column(name))
            valid = ~column.is_null().to_numpy(False)
            flat = column.flatten() if hasattr(column, "flatten") else column
            values = flat.to_numpy(False)
            if out is None:
                fill = np.nan if values.dtype.kind == "f" else 0
                out = np.full((n_chains, n_draws, *shape), fill, dtype=values.dtype)
            out[chain, :n_draws][valid] = values.reshape((int(valid.sum()), *shape))
        if not dims:
            dims = [f"{name}_dim_{i}" for i in range(len(shape))]
        variables[name] = (("chain", "draw", *dims), out)
    return _with_coords(variables, coords)


def to_inference_data(result, coords: Mapping[str, object]) -> az.InferenceData:
    """The posterior draws and sampler statistics of nutpie's raw ``result`` (no warm-up), trace released."""
    draw_batches, stat_batches = result.get_arrow_trace()
    del result
    tuning = [int(pyarrow.array(batch.column("tuning")).to_numpy(False).sum()) for batch in stat_batches]
    n_draws = min(batch.num_rows - t for batch, t in zip(stat_batches, tuning, strict=True))
    posterior = _dataset(draw_batches, tuning, n_draws, coords)
    del draw_batches
    stats = _dataset(stat_batches, tuning, n_draws, coords, skip=SKIPPED_STATS)
    return az.InferenceData(posterior=posterior, sample_stats=stats)


def _zarr_dataset(group, coords: Mapping[str, object], skip: Sequence[str] = ()) -> xr.Dataset:
    """The arrays of a zarr group written by nutpie whose first dimensions are (chain, draw)."""
    variables = {}
    for name, array in group.arrays():
        dims = tuple(array.metadata.dimension_names or ())
        if name in skip or dims[:2] != ("chain", "draw"):  # coordinates, and statistics never read
            continue
        variables[name] = (dims, array[...])
    return _with_coords(variables, coords)


def from_zarr(folder: str | Path, coords: Mapping[str, object]) -> az.InferenceData:
    """The posterior draws and scalar sampler statistics of a trace nutpie wrote to ``folder`` (zarr).

    The warm-up groups and the per-draw position, gradient and divergence arrays stay on disk.
    """
    import zarr

    root = zarr.open_group(str(folder), mode="r")
    posterior = _zarr_dataset(root["posterior"], coords)
    stats = _zarr_dataset(root["sample_stats"], coords, skip=SKIPPED_STATS)
    return az.InferenceData(posterior=posterior, sample_stats=stats)
