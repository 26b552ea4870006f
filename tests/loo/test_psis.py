"""Blocked PSIS-LOO equals arviz.loo, never holds the whole pointwise array, and leaves the model as found."""

from __future__ import annotations

import tracemalloc

import arviz as az
import numpy as np
import nutpie
import pytest
import xarray as xr

import groupfx
from groupfx.loo import loglik, psis
from groupfx.models.families import OUTCOME


@pytest.fixture(scope="module")
def drawn(small_sim):
    """Each model's posterior (2 x 300 draws) on the small table; the fixed effects one has k > 0.7."""
    out = {}
    for name in ("naive", "fixed", "latent"):
        model = groupfx.build_model(name, small_sim.data)
        compiled = nutpie.compile_pymc_model(model)
        out[name] = model, nutpie.sample(compiled, draws=300, tune=200, chains=2, seed=4, progress_bar=False)
    return out


@pytest.mark.slow  # its fixture compiles and samples three PyMC models
@pytest.mark.parametrize("name", ["naive", "fixed", "latent"])
def test_blocked_loo_equals_arviz(name, drawn, monkeypatch):
    model, idata = drawn[name]
    pointwise = loglik.pointwise_loglik(model, idata.posterior)
    with_loglik = az.InferenceData(posterior=idata.posterior, log_likelihood=xr.Dataset({OUTCOME: pointwise}))
    reference = az.loo(with_loglik, pointwise=True)
    monkeypatch.setattr(loglik, "LOO_BLOCK_BYTES", 8 * 600 * 7)  # blocks of 7 units: many blocks, one ragged
    ours = loglik.loo(model, idata)
    for field in ("elpd_loo", "se", "p_loo", "n_samples", "n_data_points", "good_k"):
        assert ours[field] == pytest.approx(reference[field], rel=1e-10), field
    np.testing.assert_allclose(ours.loo_i.values, reference.loo_i.values, rtol=1e-10)
    np.testing.assert_allclose(ours.pareto_k.values, reference.pareto_k.values, rtol=1e-8, atol=1e-10)
    assert ours.warning == reference.warning
    compared = az.compare({"ours": ours, "arviz": reference})
    assert compared.loc["arviz", "elpd_diff"] == pytest.approx(0, abs=1e-8)
    # the model copy the function reads has its whole data back, so it can serve the next fit
    fn, names, umodel = loglik.pointwise_loglik_function(model)
    loglik.loo(model, idata, function=(fn, names, umodel))
    assert umodel["y"].get_value().shape == (model["y"].get_value().shape[0],)


def test_psis_matches_arviz_on_heavy_tails_and_flags_them():
    rng = np.random.default_rng(3)
    draws = np.concatenate([rng.standard_t(1.5, size=(5, 2000)), rng.normal(size=(5, 2000))])
    ref_weights, ref_k = az.psislw(draws.copy(), reff=0.9)
    cutoff = psis.tail_length(2000, 0.9)
    elpd, _, k = psis.psis_loo_block(-draws, cutoff)  # log-likelihood = minus the log ratios
    np.testing.assert_allclose(k, ref_k, rtol=1e-9)
    assert (k[:5] > 0.5).all() and (k[5:] < 0.5).all()
    logsumexp = az.stats.stats_utils.logsumexp
    expected = np.array([logsumexp(w - d) for w, d in zip(ref_weights, draws, strict=True)])
    np.testing.assert_allclose(elpd, expected, rtol=1e-10)


@pytest.mark.parametrize("n_samples", [5, 20, 100, 511, 512, 700, 4000])
@pytest.mark.parametrize("kind", ["normal", "heavy", "ties"])
def test_psis_matches_arviz_on_short_columns_and_ties(n_samples, kind):
    """Columns shorter than the tail's sample, at the sample's stride edges, and draws with many ties."""
    rng = np.random.default_rng(n_samples)
    draws = {
        "normal": lambda: rng.normal(size=(6, n_samples)),
        "heavy": lambda: rng.standard_t(1.2, size=(6, n_samples)),
        "ties": lambda: np.round(rng.normal(size=(6, n_samples)), 1),
    }[kind]()
    ref_weights, ref_k = az.psislw(draws.copy(), reff=0.9)
    elpd, _, k = psis.psis_loo_block(-draws, psis.tail_length(n_samples, 0.9))
    assert (np.isfinite(k) == np.isfinite(ref_k)).all()
    finite = np.isfinite(ref_k)
    np.testing.assert_allclose(k[finite], ref_k[finite], rtol=1e-8, atol=1e-10)
    logsumexp = az.stats.stats_utils.logsumexp
    expected = np.array([logsumexp(w - d) for w, d in zip(ref_weights, draws, strict=True)])
    np.testing.assert_allclose(elpd, expected, rtol=1e-10)


@pytest.mark.slow
def test_loo_memory_is_a_block_not_draws_by_units():
    """50,000 units x 1,000 draws would be 400 MB as one array; the blocked LOO stays near one block."""
    n_units, n_groups = 50_000, 500
    rng = np.random.default_rng(0)
    group = np.repeat(np.arange(n_groups), n_units // n_groups)
    data = groupfx.GroupedData(
        y=rng.integers(0, 2, n_units), x=rng.normal(size=n_units), group=group, z=rng.normal(size=n_groups),
        group_labels=np.arange(n_groups),
    )  # fmt: skip
    model = groupfx.build_model("naive", data)
    posterior = xr.Dataset(
        {
            "a0": (("chain", "draw"), rng.normal(-0.1, 0.01, (2, 500))),
            "bxy": (("chain", "draw", "x_var"), rng.normal(0, 0.01, (2, 500, 1))),
            "bzy": (("chain", "draw", "z_var"), rng.normal(0, 0.01, (2, 500, 1))),
        }
    )
    function = loglik.pointwise_loglik_function(model)
    tracemalloc.start()
    result = loglik.loo(model, az.InferenceData(posterior=posterior), function=function)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    whole = 8 * 1000 * n_units
    assert result.n_data_points == n_units and np.isfinite(result.elpd_loo)
    assert peak < 0.5 * whole, f"peak {peak / 2**20:.0f} MiB, the whole array {whole / 2**20:.0f} MiB"


def _expanded_posterior(fused, rng, chains=2, draws=150):
    names, _, dims = fused.expanded()
    thetas = rng.normal(0, 0.3, (chains, draws, fused.n_dim))
    values = [[fused.expand(theta) for theta in chain] for chain in thetas]
    stacked = {n: np.array([[v[n] for v in chain] for chain in values]) for n in names}
    return xr.Dataset({n: (("chain", "draw", *dims.get(n, ())), stacked[n]) for n in names})


@pytest.mark.parametrize(
    "table",
    [
        pytest.param(table, marks=[] if table == "two x, two z" else [pytest.mark.slow])
        for table in ["one x, one z", "two x, two z", "no z", "binomial", "poisson", "gaussian"]
    ],
)
def test_numba_loo_of_a_fused_model_equals_the_pymc_models(table, tables, monkeypatch):
    """Every family's normalising constants included; blocks of whole groups, in the data's unit order."""
    from groupfx.engines import kernels
    from groupfx.loo import fused as fused_loo

    data, family = tables[table]
    rng = np.random.default_rng(8)
    monkeypatch.setattr(loglik, "LOO_BLOCK_BYTES", 8 * 300 * 40)  # blocks of about 40 units: many groups
    for name in kernels.SERVED_MODELS:
        fused = kernels.FusedModel(name, data, family)
        posterior = _expanded_posterior(fused, rng)
        ours = fused_loo.loo(fused, posterior)
        model = groupfx.build_model(name, data, family=family)
        reference = loglik.loo(model, az.InferenceData(posterior=posterior))
        np.testing.assert_allclose(ours.loo_i.values, reference.loo_i.values, rtol=1e-11, atol=1e-11)
        np.testing.assert_allclose(ours.pareto_k.values, reference.pareto_k.values, rtol=1e-8, atol=1e-10)
        assert ours.p_loo == pytest.approx(reference.p_loo, rel=1e-9)


def test_one_thread_at_a_time_holds_numbas_thread_pool():
    import numba

    with psis.thread_pool(True) as first:
        assert first == (numba.get_num_threads() > 1)
        with psis.thread_pool(True) as second:
            assert not second  # another caller meanwhile runs serially rather than abort the process
    with psis.thread_pool(False) as unwanted:
        assert not unwanted
    with psis.thread_pool(True) as again:
        assert again == first  # released


@pytest.mark.parametrize("table", ["two x, two z", pytest.param("gaussian", marks=pytest.mark.slow)])
def test_the_threaded_loo_gives_the_serial_values(table, tables, monkeypatch):
    """Above ``THREADS_FROM`` values both passes run on numba's threads: the very same numbers."""
    import numba

    from groupfx.engines import kernels
    from groupfx.loo import fused as fused_loo

    data, family = tables[table]
    rng = np.random.default_rng(3)
    monkeypatch.setattr(loglik, "LOO_BLOCK_BYTES", 8 * 300 * 40)
    for name in kernels.SERVED_MODELS:
        fused = kernels.FusedModel(name, data, family)
        posterior = _expanded_posterior(fused, rng)
        serial = fused_loo.loo(fused, posterior)
        monkeypatch.setattr(psis, "THREADS_FROM", 0)
        calls = []
        monkeypatch.setattr(psis, "psis_loo_block_threads", _spy(psis.psis_loo_block_threads, calls))
        threaded = fused_loo.loo(fused, posterior)
        monkeypatch.undo()
        monkeypatch.setattr(loglik, "LOO_BLOCK_BYTES", 8 * 300 * 40)
        assert bool(calls) == (numba.get_num_threads() > 1), name
        for field in ("loo_i", "pareto_k"):
            np.testing.assert_array_equal(threaded[field].values, serial[field].values, err_msg=name)


def _spy(function, calls):
    def spy(*args):
        calls.append(args[0].shape)
        return function(*args)

    return spy


@pytest.mark.parametrize("count", [1, 2, 15, 16, 17, 400, 4000])
def test_partial_sort_gives_the_smallest_values_in_order(count):
    """``_sort_smallest`` leaves the ``needed`` smallest values first, ascending, and keeps the multiset
    (ties, -inf and already sorted or reversed input included)."""
    rng = np.random.default_rng(count)
    columns = [
        rng.normal(size=count),
        np.round(rng.normal(size=count), 1),  # many ties
        np.sort(rng.normal(size=count)),
        np.sort(rng.normal(size=count))[::-1].copy(),
        np.where(rng.random(count) < 0.1, -np.inf, rng.normal(size=count)),
        np.zeros(count),
    ]
    for values in columns:
        for needed in sorted({1, max(1, count // 2), count}):
            beyond = rng.normal(size=3)
            work = np.concatenate([values, beyond])
            psis._sort_smallest(work, count, needed)
            np.testing.assert_array_equal(work[:needed], np.sort(values)[:needed])
            np.testing.assert_array_equal(np.sort(work[:count]), np.sort(values))
            np.testing.assert_array_equal(work[count:], beyond)  # past count: left alone
