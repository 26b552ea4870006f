"""One chooser decides how a model runs, and `fit`, the study's worker and the results all ask it."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import groupfx
from groupfx.engines.kernels import FusedModel
from groupfx.engines.sampling import SamplerSettings
from groupfx.errors import InputError
from groupfx.inference import engine as engine_module
from groupfx.inference.engine import FusedEngine, GraphEngine, choose_engine
from groupfx.loo import fused as fused_loo
from groupfx.models.builders import DEFAULT_MODELS
from groupfx.study import tasks as study
from groupfx.study.scenarios import Scenario

TINY = {"draws": 60, "tune": 60, "chains": 2}
WIDER = {"bxy": groupfx.Prior("StudentT", nu=4, mu=0, sigma=2.5)}
"""A prior the fused kernel does not express: its model runs the PyMC graph."""


@pytest.fixture(scope="module")
def two_replicates():
    """Two data sets of the same shape (8 groups, 200 units), different draws."""
    return groupfx.simulate(n_groups=8, n_units=200, seed=3).data, groupfx.simulate(
        n_groups=8, n_units=200, seed=4
    ).data


def test_the_five_models_with_default_priors_run_the_fused_kernel_on_numba(small_sim):
    for name in DEFAULT_MODELS:
        chosen = choose_engine(name, small_sim.data)
        assert isinstance(chosen, FusedEngine) and chosen.kind == "fused" and chosen.closed_form
    poisson = choose_engine(
        "mundlak", small_sim.data, "poisson", settings=SamplerSettings(precision="float32")
    )
    assert poisson.kind == "fused" and poisson.family == "poisson"


def test_another_prior_a_y_the_kernel_refuses_or_jax_run_the_pymc_graph(small_sim):
    wider = choose_engine("mundlak", small_sim.data, priors=WIDER)
    assert isinstance(wider, GraphEngine) and wider.kind == "graph" and not wider.closed_form
    assert choose_engine("latent_shared", small_sim.data).kind == "graph"
    from dataclasses import replace

    counts = replace(small_sim.data, y=small_sim.data.y * 2)  # not a Bernoulli y: the graph refuses it
    assert choose_engine("naive", counts).kind == "graph"
    pytest.importorskip("jax")
    on_jax = choose_engine("mundlak", small_sim.data, settings=SamplerSettings(backend="jax"))
    assert on_jax.kind == "graph" and on_jax.closed_form  # sampled by JAX, scored by the kernel's LOO


def test_single_precision_off_the_kernel_is_refused_with_its_reason(small_sim):
    single = SamplerSettings(precision="float32")
    with pytest.raises(
        InputError, match=r"Mundlak: precision='float32' needs the fused kernel.*numba backend"
    ):
        choose_engine("mundlak", small_sim.data, priors=WIDER, settings=single)
    with pytest.raises(InputError, match="precision='float32' needs the fused kernel"):
        choose_engine("latent_shared", small_sim.data, settings=single)
    if importlib.util.find_spec("jax") is not None:
        jax_single = SamplerSettings(precision="float32", backend="jax")
        with pytest.raises(InputError, match="the jax backend run in float64"):
            choose_engine("naive", small_sim.data, settings=jax_single)


def test_a_fused_engine_given_new_data_samples_the_new_data(two_replicates):
    first, second = two_replicates
    settings = SamplerSettings(seed=1, **TINY)
    engine = choose_engine("mundlak", first).compile()
    swapped = engine.with_data(second)
    on_first = engine.sample(settings, 1, 0.8)
    on_second = swapped.sample(settings, 1, 0.8)
    assert on_first.posterior["e"].shape == on_second.posterior["e"].shape == (2, 60, 8)
    assert not np.allclose(on_first.posterior["bxy"], on_second.posterior["bxy"])
    # the swapped engine is the engine chosen for the second data set: the same draws, bit for bit
    direct = choose_engine("mundlak", second).sample(settings, 1, 0.8)
    np.testing.assert_array_equal(on_second.posterior["bxy"], direct.posterior["bxy"])
    assert on_first.sample_stats.attrs["engine"] == on_second.sample_stats.attrs["engine"] == "fused"
    assert swapped.loo(on_second).elpd_loo != engine.loo(on_first).elpd_loo


def test_a_graph_engine_compiled_once_samples_and_scores_new_data_without_compiling(
    two_replicates, monkeypatch
):
    first, second = two_replicates
    settings = SamplerSettings(seed=2, **TINY)
    engine = choose_engine("naive", first, priors=WIDER).compile()
    monkeypatch.setattr(engine_module, "compile_model", lambda *a: pytest.fail("compiled a second time"))
    swapped = engine.with_data(second)
    on_first = engine.sample(settings, 2, 0.8)
    on_second = swapped.sample(settings, 2, 0.8)
    assert on_first.sample_stats.attrs["engine"] == on_second.sample_stats.attrs["engine"] == "graph"
    assert on_first.posterior["bxy"].shape == on_second.posterior["bxy"].shape == (2, 60, 1)
    assert not np.allclose(on_first.posterior["bxy"], on_second.posterior["bxy"])
    # its LOO reads the second data set, and the first engine's still reads the first (the prior does not
    # enter the likelihood, so the kernel's LOO of the same draws is the reference)
    for chosen, data, idata in ((swapped, second, on_second), (engine, first, on_first)):
        reference = fused_loo.loo(FusedModel("naive", data), idata.posterior)
        assert chosen.loo(idata).elpd_loo == pytest.approx(reference.elpd_loo, rel=1e-9)


def test_fit_goes_through_the_chooser_and_records_the_engine(small_sim, monkeypatch):
    asked = []

    def counting(*args, **kwargs):
        chosen = choose_engine(*args, **kwargs)
        asked.append(chosen.kind)
        return chosen

    monkeypatch.setattr("groupfx.fitting.choose_engine", counting)
    result = groupfx.fit(small_sim, "multilevel", warn=False, **TINY)
    assert asked == ["fused"] and result.idata.sample_stats.attrs["engine"] == "fused"
    # the fit's expected outcome and its prior draws ask the same chooser, which gives the same engine
    monkeypatch.setattr("groupfx.results.fits.choose_engine", counting)
    from groupfx.results.checks import prior_parameter_draws

    assert result.engine().kind == "fused"
    assert result.expected_outcome.parameters == ["abar", "tau", "e", "bxy", "bzy"]
    prior_parameter_draws(result, ["bxy"], 5, 0)
    assert asked == ["fused"] * 4


def test_the_study_worker_chooses_once_then_swaps_each_replicate_in(monkeypatch):
    asked, swapped = [], []

    def counting(*args, **kwargs):
        chosen = choose_engine(*args, **kwargs)
        asked.append(chosen.kind)
        return chosen

    real_with_data = FusedEngine.with_data

    def spy(self, data):
        swapped.append(data.n_units)
        return real_with_data(self, data)

    monkeypatch.setattr(study, "choose_engine", counting)
    monkeypatch.setattr(FusedEngine, "with_data", spy)
    study._cache.clear()
    settings = study.StudySettings(replicates=2, models=("naive",), **TINY)
    scenario = Scenario("small", n_groups=8, n_units=200)
    rows = [study.run_task(study.Task(scenario, replicate, "naive", settings)) for replicate in (0, 1)]
    study._cache.clear()
    assert asked == ["fused"] and swapped == [200, 200]
    assert all((frame.status == "ok").all() for frame in rows)
    assert rows[0]["mean"].tolist() != rows[1]["mean"].tolist()
    assert rows[0].compile_s.iloc[0] >= 0 and rows[1].compile_s.iloc[0] == 0
