"""The fused kernels equal the PyMC models: log-density up to a constant, and its gradient."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import groupfx
from groupfx.engines import kernels
from groupfx.engines.kernels import FusedModel
from groupfx.models.builders import build_model, get_spec

RENAMED = {
    "log_tau": "tau_log__",
    "log_bux": "bux_log__",
    "log_sigma": "sigma_log__",
    "log_sigma_y": "sigma_y_log__",
}


def _pymc_point(fused: FusedModel, theta: np.ndarray, initial: dict) -> dict:
    theta = fused.model_values(theta)  # the between slopes back to the PyMC model's coefficients
    point = {}
    for block in fused.layout.blocks:
        name = RENAMED.get(block.name, block.name)
        if name in initial:
            point[name] = theta[block.slice].reshape(np.shape(initial[name]))
    return point


TABLES = ["one x, one z", "two x, two z", "no z", "binomial", "poisson", "gaussian"]
FAST_CASES = {("naive", "one x, one z"), ("fixed", "binomial"), ("multilevel", "poisson"),
              ("mundlak", "two x, two z"), ("mundlak", "no z"), ("latent", "gaussian")}  # fmt: skip
"""Every model and every table once in the fast set (each case compiles the PyMC model's logp and
gradient); the other pairs run with the slow tests."""


@pytest.mark.parametrize(
    ("name", "table"),
    [
        pytest.param(
            name, table, id=f"{table}-{name}", marks=[] if (name, table) in FAST_CASES else [pytest.mark.slow]
        )
        for table in TABLES
        for name in kernels.SERVED_MODELS
    ],
)
def test_kernel_equals_the_pymc_model(name, table, tables):
    data, family = tables[table]
    model = build_model(name, data, family=family)
    fused = FusedModel(name, data, family)
    initial = model.initial_point()
    logp, dlogp = model.compile_logp(jacobian=True), model.compile_dlogp(jacobian=True)
    sizes = [int(np.prod(np.shape(initial[v.name]))) for v in model.value_vars]
    rng = np.random.default_rng(5)
    differences = []
    for _ in range(5):
        theta = rng.normal(0, 0.7, fused.n_dim)
        value, gradient = fused.logp_grad(theta)
        point = _pymc_point(fused, theta, initial)
        assert set(point) == set(initial)
        differences.append(value - logp(point))
        parts = dict(zip([v.name for v in model.value_vars], np.split(dlogp(point), np.cumsum(sizes)[:-1]),
                         strict=True))  # fmt: skip
        expected = np.zeros(fused.n_dim)
        for block in fused.layout.blocks:
            if block.size:
                expected[block.slice] = np.ravel(parts[RENAMED.get(block.name, block.name)])
        expected = fused.gradient_from_model(theta, expected)
        np.testing.assert_allclose(gradient, expected, rtol=1e-9, atol=1e-9)
    assert np.ptp(differences) < 1e-8  # equal up to the normalising constants
    names, shapes, _ = fused.expanded()
    draws = fused.expand(theta)
    for variable, shape in zip(names, shapes, strict=True):
        assert np.shape(draws[variable]) == shape
        if variable in initial:  # the untransformed variables come back as they are
            np.testing.assert_allclose(np.ravel(draws[variable]), np.ravel(point[variable]))


def test_kernels_serve_only_the_priors_they_express():
    priors = groupfx.models.priors.resolve_priors()
    assert kernels.supported("mundlak", "bernoulli", priors)
    assert kernels.supported("mundlak", "poisson", priors)
    half_normal = {"sigma_y": groupfx.Prior("HalfNormal", sigma=2)}
    assert kernels.supported("mundlak", "gaussian", priors | half_normal)
    assert not kernels.supported(
        "mundlak", "gaussian", priors | {"sigma_y": groupfx.Prior("HalfCauchy", beta=2)}
    )
    assert not kernels.supported("latent_shared", "bernoulli", priors)
    wider = priors | {"tau": groupfx.Prior("LogNormal", mu=0, sigma=1)}
    assert not kernels.supported("multilevel", "bernoulli", wider)
    assert kernels.supported("naive", "bernoulli", wider)  # the naive model has no tau


def test_an_outcome_outside_zero_one_goes_to_the_pymc_model(small_sim):
    from dataclasses import replace

    priors = groupfx.models.priors.resolve_priors()
    assert kernels.supported("naive", "bernoulli", priors, small_sim.data)
    assert not kernels.supported(
        "naive", "bernoulli", priors, replace(small_sim.data, y=small_sim.data.y * 2)
    )


@pytest.mark.parametrize("family", ["bernoulli", "poisson", "gaussian"])
def test_a_point_outside_the_support_gives_a_non_finite_density_not_a_finite_one(small_sim, family):
    """The SIMD loops may reorder sums but must not assume finite values: nutpie rejects NaN and -inf."""
    from dataclasses import replace

    data = small_sim.data if family != "gaussian" else replace(small_sim.data, y=small_sim.data.x[:, 0])
    for name in kernels.SERVED_MODELS:
        fused = FusedModel(name, data, family)
        start = fused.layout["bxy"].start
        for bad in (np.nan, np.inf, -np.inf):
            theta = np.zeros(fused.n_dim)
            theta[start] = bad
            value, gradient = fused.logp_grad(theta)
            assert not np.isfinite(value) or not np.isfinite(gradient).all(), (name, bad)
    latent = FusedModel("latent", data, family)
    theta = np.zeros(latent.n_dim)
    theta[latent.layout["log_sigma"].start] = -800.0  # sigma = exp(-800) is 0.0 in floating point
    value, _ = latent.logp_grad(theta)  # no ZeroDivisionError
    assert not np.isfinite(value)


@pytest.mark.parametrize("table", ["one x, one z", "two x, two z", "binomial", "poisson", "gaussian"])
def test_single_precision_kernel_tracks_double_precision(table, tables):
    data, family = tables[table]
    rng = np.random.default_rng(11)
    for name in kernels.SERVED_MODELS:
        double = FusedModel(name, data, family)
        single = FusedModel(name, data, family, precision="float32")
        assert single.arrays.xt.dtype == np.float32 and double.arrays.xt.dtype == np.float64
        for _ in range(3):
            theta = rng.normal(0, 0.7, double.n_dim)
            (lp64, g64), (lp32, g32) = double.logp_grad(theta), single.logp_grad(theta)
            assert g32.dtype == np.float64
            assert abs(lp32 - lp64) < 2e-6 * abs(lp64), name
            np.testing.assert_allclose(g32, g64, rtol=0, atol=2e-6 * np.abs(g64).max())


def test_single_precision_is_refused_off_the_kernel():
    # that it samples the same posterior as float64 is tests/test_sampler_agreement.py's
    sim = groupfx.simulate(n_groups=20, n_units=600, seed=5)
    with pytest.raises(groupfx.InputError, match="precision='float32' needs the fused kernel"):
        groupfx.fit(sim, "latent_shared", warn=False, draws=10, tune=10, chains=1, precision="float32")
    wider = {"tau": groupfx.Prior("LogNormal", mu=0, sigma=1)}  # the kernel cannot: the PyMC graph, float64
    with pytest.raises(groupfx.InputError, match="precision='float32' needs the fused kernel"):
        groupfx.fit(
            sim, "mundlak", priors=wider, warn=False, draws=10, tune=10, chains=1, precision="float32"
        )
    with pytest.raises(groupfx.InputError, match="precision must be"):
        groupfx.SamplerSettings(precision="float16")


@pytest.mark.parametrize("table", ["one x, one z", "two x, two z", "no z", "binomial", "poisson", "gaussian"])
def test_the_c_callbacks_nutpie_calls_equal_the_kernel_bit_for_bit(table, tables):
    from tests.engines.callbacks import assert_callbacks_equal_the_kernel, call_logp

    compiled = assert_callbacks_equal_the_kernel(*tables[table])
    code, _, _ = call_logp(compiled, np.full(compiled.n_dim, np.nan))
    assert code in (3, 4)  # a point outside the support: nutpie is told, not given a number


LAZY_CALLBACKS = """
import groupfx
from groupfx.engines import native
from groupfx.engines.kernels import FusedModel
assert native.callbacks.cache_info().currsize == 0  # importing compiles (or loads) no callback
fused = FusedModel("mundlak", groupfx.simulate(n_groups=4, n_units=40, seed=1).data)
native.compile_native(fused)
native.compile_native(FusedModel("naive", fused.data))
info = native.callbacks.cache_info()
assert (info.currsize, info.misses) == (1, 1), info  # float64 only, made once
"""


def test_a_run_compiles_only_the_callbacks_of_its_precision():
    command = [sys.executable, "-c", LAZY_CALLBACKS]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]


def assert_same_draws(a, b):
    """Posterior and sampler statistics hold the same variables, dims and values."""
    for group in ("posterior", "sample_stats"):
        first, second = getattr(a, group), getattr(b, group)
        assert set(first.data_vars) == set(second.data_vars), group
        for name in first.data_vars:
            assert first[name].dims == second[name].dims, name
            np.testing.assert_array_equal(first[name].values, second[name].values)


def test_our_trace_conversion_equals_nutpies_value_for_value(small_sim):
    import nutpie
    import pandas as pd

    from groupfx.engines import native, trace

    compiled = native.compile_native(FusedModel("latent", small_sim.data))
    options = {"draws": 50, "tune": 50, "chains": 3, "cores": 2, "seed": 5, "progress_bar": False,
               "save_warmup": False}  # fmt: skip
    theirs = nutpie.sample(compiled, **options)
    coords = {name: pd.Index(values) for name, values in compiled.coords.items()}
    ours = trace.to_inference_data(nutpie.sample(compiled, return_raw_trace=True, **options), coords)
    assert_same_draws(theirs, ours)
    assert list(ours.posterior["e"]["group"].values) == list(small_sim.data.group_labels)
    assert "warmup_posterior" not in ours.groups()


def test_a_trace_written_to_disk_reads_back_equal_to_the_one_in_memory(small_sim, tmp_path, monkeypatch):
    import tempfile

    import nutpie
    import pandas as pd
    import pyarrow

    from groupfx.engines import native, sampling, trace

    compiled = native.compile_native(FusedModel("latent", small_sim.data))
    options = {"draws": 40, "tune": 30, "chains": 3, "cores": 2, "seed": 5, "progress_bar": False,
               "save_warmup": False, "return_raw_trace": True}  # fmt: skip
    coords = {name: pd.Index(values) for name, values in compiled.coords.items()}
    raw = nutpie.sample(compiled, **options)
    draws, stats = raw.get_arrow_trace()

    def values_bytes(batch, name):  # the values, not a list column's offsets
        column = pyarrow.array(batch.column(name))
        return (column.flatten() if hasattr(column, "flatten") else column).nbytes

    held = sum(values_bytes(batch, name) for batch in draws for name in batch.column_names
               if name not in ("chain", "draw"))  # fmt: skip
    held += sum(values_bytes(batch, name) for batch in stats for name in ("unconstrained_draw", "gradient"))
    assert trace.stored_bytes(compiled, 3, 70) == held
    in_memory = trace.to_inference_data(nutpie.sample(compiled, **options), coords)
    nutpie.sample(compiled, zarr_store=nutpie.zarr_store.LocalStore(str(tmp_path)), **options)
    on_disk = trace.from_zarr(tmp_path, coords)
    assert_same_draws(in_memory, on_disk)
    assert list(on_disk.posterior["e"]["group"].values) == list(small_sim.data.group_labels)
    assert on_disk.posterior.sizes["draw"] == 40

    # draw_samples takes the disk path above the threshold and leaves no folder behind
    folders = tmp_path / "tmp"
    folders.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folders))
    monkeypatch.setattr(trace, "DISK_TRACE_BYTES", trace.stored_bytes(compiled, 3, 70) - 1)
    settings = sampling.SamplerSettings(draws=40, tune=30, chains=3, cores=2)
    written = []
    real_sample = nutpie.sample

    def spy(compiled, **kwargs):
        written.append("zarr_store" in kwargs)
        return real_sample(compiled, **kwargs)

    monkeypatch.setattr(nutpie, "sample", spy)
    through_disk = sampling.draw_samples(compiled, settings, 5, 0.8)
    assert written == [True] and not list(folders.iterdir())
    monkeypatch.setattr(trace, "DISK_TRACE_BYTES", trace.stored_bytes(compiled, 3, 70))
    in_memory_again = sampling.draw_samples(compiled, settings, 5, 0.8)
    assert written == [True, False]
    assert through_disk.sample_stats.attrs["trace_store"] == "disk"
    assert in_memory_again.sample_stats.attrs["trace_store"] == "memory"
    assert in_memory_again.sample_stats.attrs["mass_matrix"] == "low-rank"
    assert in_memory_again.sample_stats.attrs["n_parameters"] == compiled.n_dim
    for name in ("bxy", "m", "u"):
        np.testing.assert_array_equal(in_memory_again.posterior[name], through_disk.posterior[name])


@pytest.mark.parametrize("table", TABLES)
def test_the_layout_tiles_the_vector_and_its_table_says_the_same(table, tables):
    data, family = tables[table]
    for name in kernels.SERVED_MODELS:
        layout = FusedModel(name, data, family).layout
        at = 0
        for block in layout.blocks:  # in order, each starting where the last stopped
            assert block.start == at and block.stop >= block.start, (name, block)
            assert block.size == int(np.prod(block.shape))
            at = block.stop
        assert at == layout.n_params and len({b.name for b in layout.blocks}) == len(layout.blocks)
        covered = np.zeros(layout.n_params, dtype=int)
        for block in layout.blocks:
            covered[block.slice] += 1
        assert (covered == 1).all(), name
        slices = layout.expanded_slices()
        for slot, row in zip(kernels.SLOTS, layout.table, strict=True):
            if slot in layout:
                block = layout[slot]
                assert tuple(row[: kernels.OUT]) == (block.start, block.stop)
                if block.size:  # a block of size 0 (bzy without z) has no expanded variable
                    assert row[kernels.OUT] == slices[block.variable].start
                assert row[kernels.LOG] == block.log
            elif slot == "u" and "m" in layout:
                assert row[kernels.START] == -1 and row[kernels.OUT] == slices["u"].start
            else:
                assert (row == -1).all(), (name, slot)
        assert (layout.kind, name) == (kernels.kernel_kind(get_spec(name)), name)


def test_a_layout_is_refused_where_no_kernel_expresses_the_model(small_sim):
    assert kernels.kernel_kind(get_spec("latent_shared")) is None
    with pytest.raises(ValueError, match="no fused kernel"):
        kernels.KernelLayout.of(get_spec("latent_shared"), 8, 1, 1)
    assert kernels.SERVED_MODELS == ("naive", "fixed", "multilevel", "mundlak", "latent")


@pytest.mark.parametrize("table", ["two x, two z", "gaussian"])
def test_the_layouts_variables_are_the_pymc_models_and_what_the_sampler_returns(table, tables):
    import nutpie

    from groupfx.engines import native

    data, family = tables[table]
    for name in kernels.SERVED_MODELS:
        fused = FusedModel(name, data, family)
        model = build_model(name, data, family=family)
        variables = {variable: shape for variable, shape, _ in fused.layout.variables()}
        pymc_names = {rv.name for rv in model.free_RVs} | {d.name for d in model.deterministics}
        assert set(variables) == pymc_names, name
        initial = model.initial_point()
        for block in fused.layout.blocks:  # the vector's blocks are the PyMC model's value variables
            value = block.name if not block.log else f"{block.variable}_log__"
            assert value in initial or block.size == 0, (name, block.name)
        trace = nutpie.sample(native.compile_native(fused), draws=5, tune=5, chains=1, seed=1,
                              progress_bar=False)  # fmt: skip
        assert set(trace.posterior.data_vars) == set(variables), name
        for variable, shape in variables.items():
            assert trace.posterior[variable].shape[2:] == shape, (name, variable)
            assert trace.posterior[variable].dims[2:] == model.named_vars_to_dims.get(variable, ())


@pytest.mark.parametrize("name", ["mundlak", "latent"])
def test_the_proxies_blocks_hold_between_slopes_and_the_map_back_is_exact(name, tables):
    """The proxy blocks hold between slopes (``buy + bxy``; ``buy + bxy bux`` for the latent u); the map to
    the PyMC model's values gives ``buy`` back, the expanded draws say the same, and the chain rule through
    the map is the transpose of its Jacobian (checked against central differences)."""
    data, family = tables["two x, two z"]
    fused = FusedModel(name, data, family)
    assert fused.layout["buy"].between and fused.layout.table[kernels.BUY, kernels.BETWEEN] == 1
    rng = np.random.default_rng(11)
    theta = rng.normal(0, 0.5, fused.n_dim)
    values = fused.model_values(theta)
    between, bxy = theta[fused.layout.slice("buy")], theta[fused.layout.slice("bxy")]
    loading = np.exp(theta[fused.layout.slice("log_bux")]) if name == "latent" else 1.0
    np.testing.assert_allclose(values[fused.layout.slice("buy")], between - bxy * loading, rtol=1e-14)
    np.testing.assert_allclose(fused.expand(theta)["buy"], between - bxy * loading, rtol=1e-14)
    others = np.ones(fused.n_dim, dtype=bool)
    others[fused.layout.slice("buy")] = False
    np.testing.assert_array_equal(values[others], theta[others])
    np.testing.assert_allclose(fused.from_model_values(values), theta, rtol=1e-13, atol=1e-15)
    weights = rng.normal(size=fused.n_dim)  # d/dtheta of weights . model_values(theta)
    step = 1e-6
    numeric = np.array(
        [
            weights
            @ (fused.model_values(theta + step * unit) - fused.model_values(theta - step * unit))
            / (2 * step)
            for unit in np.eye(fused.n_dim)
        ]
    )
    np.testing.assert_allclose(fused.gradient_from_model(theta, weights), numeric, rtol=1e-7, atol=1e-8)
    old = kernels.KernelLayout.of(get_spec(name), data.n_groups, data.n_x, data.n_z, between=False)
    assert not old["buy"].between and old.n_params == fused.layout.n_params
