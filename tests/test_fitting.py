import warnings

import arviz as az
import numpy as np
import pandas as pd
import pytest

import groupfx
from groupfx.engines.diagnostics import find_issues
from groupfx.errors import DiagnosticWarning, InputError, UnknownModelError
from groupfx.models.builders import MODELS
from groupfx.results.crosscheck import within_for
from groupfx.results.fits import mundlak_effects

from .conftest import TINY


def test_fits_are_reproducible_from_the_seed(small_sim):
    a = groupfx.fit(small_sim, "naive", warn=False, seed=11, **TINY)
    b = groupfx.fit(small_sim, "naive", warn=False, seed=11, **TINY)
    c = groupfx.fit(small_sim, "naive", warn=False, seed=12, **TINY)
    np.testing.assert_array_equal(a.idata.posterior["bxy"], b.idata.posterior["bxy"])
    assert not np.array_equal(a.idata.posterior["bxy"], c.idata.posterior["bxy"])


def test_models_get_distinct_seeds():
    from groupfx.engines.sampling import model_seed

    seeds = {model_seed(42, name) for name in MODELS}
    assert len(seeds) == len(MODELS)
    assert model_seed(42, "naive") == model_seed(42, "naive")


def test_fit_keeps_no_per_unit_draws(small_fits, small_sim):
    for fit in small_fits.values():
        for var in fit.idata.posterior.data_vars.values():
            assert small_sim.data.n_units not in var.shape
        assert not [name for name in fit.idata.posterior.data_vars if name.endswith("__")]
        assert "log_likelihood" not in fit.idata.groups()
        assert fit.loo.elpd_loo < 0 and len(fit.loo.loo_i) == small_sim.data.n_units


def test_short_chains_raise_diagnostic_warnings_naming_model_and_parameter(small_sim):
    with pytest.warns(DiagnosticWarning, match=r"Naive: .*bulk ESS of (a0|bxy|bzy) is \d+ \(< 400\)"):
        fit = groupfx.fit(small_sim, "naive", draws=20, tune=20, chains=2)
    assert any(issue.kind == "ess_bulk" for issue in fit.issues)


def test_disagreeing_chains_are_flagged_by_rhat():
    rng = np.random.default_rng(0)
    theta = np.stack([rng.normal(0, 1, 500), rng.normal(3, 1, 500)])
    idata = az.from_dict(
        posterior={"theta": theta, "good": rng.normal(size=(2, 500))},
        sample_stats={"diverging": np.zeros((2, 500), dtype=bool)},
    )
    issues = find_issues(idata, "Toy")
    flagged = {(i.parameter, i.kind) for i in issues}
    assert ("theta", "r_hat") in flagged
    assert not any(p == "good" and k == "r_hat" for p, k in flagged)
    assert "Toy: R-hat of theta" in next(i.message for i in issues if i.kind == "r_hat")


def test_estimates_table(small_fits, small_sim):
    table = groupfx.estimates(small_fits, small_sim.truth)
    assert list(table.columns) == [
        "model", "parameter", "term", "mean", "sd", "hdi_low", "hdi_high", "truth", "covers_truth",
        "r_hat", "ess_bulk", "ess_tail", "identified", "within_estimate",
    ]  # fmt: skip
    assert list(table["model"].unique()) == ["Naive", "Fixed effects", "Mundlak"]
    bxy = table[table.parameter == "bxy"]
    assert (bxy.truth == 0).all() and (bxy.term == "x").all()
    assert (table[table.parameter == "tau"].term == "").all()
    expected = (bxy.hdi_low <= 0) & (bxy.hdi_high >= 0)
    assert (bxy.covers_truth.astype(bool) == expected).all()
    assert table[table.parameter == "buy"].truth.isna().all()
    fixed_bzy = table[(table.model == "Fixed effects") & (table.parameter == "bzy")]
    assert not fixed_bzy.identified.item()
    # HDI brackets the mean, sd positive
    assert ((table.hdi_low <= table["mean"]) & (table["mean"] <= table.hdi_high)).all()
    assert (table.sd > 0).all()


def test_compare_ranks_by_elpd(small_fits):
    table = groupfx.compare(small_fits)
    assert set(table.index) == {"Naive", "Fixed effects", "Mundlak"}
    assert table["elpd_loo"].is_monotonic_decreasing
    assert table["rank"].tolist() == [0, 1, 2]


def test_bad_sampler_settings_are_refused(small_sim):
    with pytest.raises(InputError, match="draws must be an integer >= 1"):
        groupfx.fit(small_sim, "naive", draws=0)
    with pytest.raises(InputError, match="Unknown sampler setting 'draw'"):
        groupfx.fit(small_sim, "naive", draw=10)
    with pytest.raises(InputError, match="named twice"):
        groupfx.fit_all(small_sim, ["naive", "naive"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(UnknownModelError):
            groupfx.fit_all(small_sim, ["naive", "nope"])


def test_mass_matrix_is_low_rank_for_small_models_and_diagonal_for_large_ones(small_sim, monkeypatch):
    import nutpie

    from groupfx.engines.sampling import (
        LOW_RANK_MAX_PARAMETERS,
        SamplerSettings,
        mass_matrix_text,
        uses_low_rank,
    )

    auto = SamplerSettings()
    assert uses_low_rank(auto, LOW_RANK_MAX_PARAMETERS)
    assert not uses_low_rank(auto, LOW_RANK_MAX_PARAMETERS + 1)
    assert uses_low_rank(SamplerSettings(low_rank_mass_matrix=True), 10**6)
    assert not uses_low_rank(SamplerSettings(low_rank_mass_matrix=False), 3)
    assert "diagonal above" in mass_matrix_text(auto)
    assert mass_matrix_text(SamplerSettings(low_rank_mass_matrix=False)) == "diagonal mass matrix"
    with pytest.raises(InputError, match="low_rank_mass_matrix must be True, False or None"):
        SamplerSettings(low_rank_mass_matrix="yes")

    asked = []
    real_sample = nutpie.sample

    def spy(compiled, **kwargs):
        asked.append((compiled.n_dim, kwargs["low_rank_modified_mass_matrix"]))
        return real_sample(compiled, **kwargs)

    monkeypatch.setattr(nutpie, "sample", spy)
    groupfx.fit(small_sim, "fixed", warn=False, **TINY)
    monkeypatch.setattr("groupfx.engines.sampling.LOW_RANK_MAX_PARAMETERS", 5)
    groupfx.fit(small_sim, "fixed", warn=False, **TINY)
    groupfx.fit(small_sim, "fixed", warn=False, low_rank_mass_matrix=True, **TINY)
    n_dim = small_sim.data.n_groups + 2  # a[g], bxy, bzy
    assert asked == [(n_dim, True), (n_dim, False), (n_dim, True)]


def test_loo_notes_count_high_pareto_k(small_fits):
    from groupfx.report.html import loo_notes

    notes = loo_notes(list(small_fits.values()))
    flagged = [fit for fit in small_fits.values() if (np.asarray(fit.loo.pareto_k) > 0.7).any()]
    assert flagged, "tiny draws should leave some high Pareto k"
    assert len(notes) == len(flagged)
    for fit, note in zip(flagged, notes, strict=True):
        count = int((np.asarray(fit.loo.pareto_k) > 0.7).sum())
        assert note.startswith(f"{fit.label}: {count} of {len(fit.loo.pareto_k)} observations")


def test_the_report_says_what_loo_cost(small_fits, monkeypatch):
    from groupfx.loo import loglik
    from groupfx.report.html import loo_cost

    fits = list(small_fits.values())
    text = loo_cost(fits)
    assert "120 draws x 200 units, 0 MiB if held whole) was computed 200 units at a time" in text
    for fit in fits:
        assert f"{fit.label} {fit.timings['loo']:.1f} s" in text
    monkeypatch.setattr(loglik, "LOO_BLOCK_BYTES", 8 * 120 * 50)
    assert "computed 50 units at a time" in loo_cost(fits)


@pytest.mark.slow  # compiles the PyMC model (the kernel refuses y = 2)
def test_a_model_that_cannot_start_is_one_clear_error(small_sim):
    from dataclasses import replace

    # counts of 2 and more under the Bernoulli family: no finite starting point exists
    broken = replace(small_sim.data, y=small_sim.data.y * 2)
    with pytest.raises(
        groupfx.GroupfxError, match=r"Naive: nutpie could not sample the model .*bernoulli family"
    ):
        groupfx.fit(broken, "naive", draws=20, tune=20, chains=2, warn=False)


def test_conclusions_follow_the_estimates_table(small_fits, small_sim):
    from groupfx.report.html import conclusions

    fits = list(small_fits.values())
    table = groupfx.estimates(fits, small_sim.truth)
    lines = conclusions(fits, table, groupfx.compare(fits), small_sim.truth)
    bxy = table[table.parameter == "bxy"].set_index("model")
    covering = [m for m in bxy.index if bxy.hdi_low[m] <= 0 <= bxy.hdi_high[m]]
    if covering:
        assert f"The 94% HDI of bxy includes the true bxy = 0 under: {', '.join(covering)}." in lines
    sd = table[(table.model == "Fixed effects") & (table.parameter == "bzy")].sd.item()
    assert any(
        line.startswith(f"Fixed effects: bzy is not identified (posterior sd {sd:.2f})") for line in lines
    )
    # bzy of fixed effects is not identified, so it is left out of the interval sentences
    assert not any("bzy" in line and "Fixed effects" in line and "HDI" in line for line in lines)


@pytest.mark.slow  # the shared-u latent model compiles its PyMC graph; the report draws every figure
def test_several_x_and_z_flow_through_tables_figures_and_report(two_x_data, tmp_path):
    fits = groupfx.fit_all(two_x_data, ["fixed", "mundlak", "latent_shared"], warn=False, **TINY)
    table = groupfx.estimates(
        fits, truth={"bxy": 0.0, "bxy[x2]": 0.0}, within=within_for(two_x_data, "bernoulli")
    )
    bxy = table[table.parameter == "bxy"]
    assert list(bxy.term) == ["x", "x2"] * 3 and (bxy.truth == 0).all() and bxy.within_estimate.notna().all()
    assert list(table[table.parameter == "bzy"].term) == ["z", "z2"] * 3
    assert table[table.parameter == "bzy"].truth.isna().all()
    assert not table[(table.model == "Fixed effects") & (table.parameter == "bzy")].identified.any()
    shared = table[table.model == "Latent Mundlak (shared u)"]
    assert set(shared[shared.parameter == "bux_other"].term) == {"x2"}
    effects = mundlak_effects(fits)
    assert set(effects.term) == {"x", "x2"} and set(effects.model) == {"Mundlak"}
    within = effects[effects.effect == "within"].set_index("term")["mean"]
    posterior = fits["mundlak"].idata.posterior["bxy"].mean(("chain", "draw"))
    np.testing.assert_allclose(within.loc[["x", "x2"]], posterior.sel(x_var=["x", "x2"]))
    report = groupfx.write_report(fits, tmp_path / "out")
    page = report.read_text()
    assert "bxy[x2]" in page and "bzy[z2]" in page and "Frequentist cross-check" in page
    crosscheck = pd.read_csv(tmp_path / "out" / "crosscheck.csv")
    assert list(crosscheck.term) == ["x", "x2"]


def test_report_lists_the_priors_in_use_and_marks_the_overridden(small_fits):
    from groupfx.report.html import _priors_text

    fits = list(small_fits.values())
    text = _priors_text(fits, fits[0].priors)
    assert "a ~ Normal(mu=0, sigma=10)" in text and "buy ~ Normal(mu=0, sigma=1)" in text
    assert "sigma_y" not in text and "bux" not in text and "set by you" not in text  # unused here
    changed = fits[0].priors | {"bxy": groupfx.Prior("Normal", mu=0, sigma=2.5)}
    assert "bxy ~ Normal(mu=0, sigma=2.5) (set by you)" in _priors_text(fits, changed)


@pytest.mark.slow  # fits two models twice
def test_fit_all_gives_the_same_fits_with_one_worker_or_two(small_sim):
    steps: dict[int, list[tuple[str, str]]] = {}
    fits = {}
    for n_workers in (1, 2):
        steps[n_workers] = []
        fits[n_workers] = groupfx.fit_all(
            small_sim, ["naive", "mundlak"], warn=False, workers=n_workers,
            progress=lambda label, step, into=steps[n_workers]: into.append((label, step)), **TINY,
        )  # fmt: skip
        assert list(fits[n_workers]) == ["naive", "mundlak"]
    for name in ("naive", "mundlak"):
        np.testing.assert_array_equal(
            fits[1][name].idata.posterior["bxy"], fits[2][name].idata.posterior["bxy"]
        )
        assert fits[1][name].loo.elpd_loo == fits[2][name].loo.elpd_loo
    assert steps[2] and sorted(steps[1]) == sorted(steps[2])  # the workers' progress reaches the caller


@pytest.mark.slow  # compiles two models with JAX
def test_jax_fits_run_in_this_process_by_default(small_sim, monkeypatch):
    pytest.importorskip("jax")

    def no_workers(*args, **kwargs):
        raise AssertionError("the JAX backend should not fork workers")

    monkeypatch.setattr("groupfx.util.workers._run_forked", no_workers)
    fits = groupfx.fit_all(small_sim, ["naive", "mundlak"], backend="jax", warn=False, **TINY)
    assert [fit.idata.sample_stats.attrs["backend"] for fit in fits.values()] == ["jax", "jax"]
    assert all(fit.idata.sample_stats.attrs["device"] for fit in fits.values())  # cpu, or gpu (...)
    # that JAX samples the same posterior as numba is tests/test_sampler_agreement.py's


def test_backend_settings_are_checked(small_sim, monkeypatch):
    import importlib.util

    with pytest.raises(InputError, match="backend must be one of 'numba', 'jax'"):
        groupfx.fit(small_sim, "naive", backend="cuda")
    if importlib.util.find_spec("jax") is not None:
        with pytest.raises(InputError, match=r"precision='float32' needs the fused kernel.*jax backend"):
            groupfx.fit(small_sim, "naive", backend="jax", precision="float32")
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "jax" else real_find_spec(name)
    )
    with pytest.raises(InputError, match=r"backend='jax' needs JAX: pip install 'groupfx\[jax\]'"):
        groupfx.fit(small_sim, "naive", backend="jax")


def test_target_acceptance_follows_the_number_of_groups():
    from groupfx.models.builders import MANY_GROUPS, MANY_GROUPS_TARGET_ACCEPT, get_spec

    few = groupfx.simulate(n_groups=30, n_units=600, seed=1).data
    many = groupfx.simulate(n_groups=MANY_GROUPS, n_units=12 * MANY_GROUPS, seed=1).data
    two_way = groupfx.simulate(n_groups=MANY_GROUPS, n_units=12 * MANY_GROUPS, n_periods=3, seed=1).data
    assert few.n_groups < MANY_GROUPS <= many.n_groups and two_way.two_way
    for name in ("multilevel", "mundlak", "latent", "latent_shared"):
        spec = get_spec(name)
        assert spec.target_accept_for(few) == spec.target_accept == 0.9
        assert spec.target_accept_for(many) == MANY_GROUPS_TARGET_ACCEPT == 0.8
        # the period factor has few levels: its tau_t keeps the smaller step
        assert spec.target_accept_for(two_way) == 0.9
    for name, value in (("naive", 0.8), ("fixed", 0.95)):
        assert get_spec(name).target_accept_for(few) == get_spec(name).target_accept_for(many) == value


def test_the_sampler_gets_the_chosen_target_acceptance_and_records_it(monkeypatch):
    import nutpie

    from groupfx.models.builders import MANY_GROUPS

    many = groupfx.simulate(n_groups=MANY_GROUPS, n_units=12 * MANY_GROUPS, seed=3)
    asked = []
    real_sample = nutpie.sample

    def spy(compiled, **kwargs):
        asked.append(kwargs["target_accept"])
        return real_sample(compiled, **kwargs)

    monkeypatch.setattr(nutpie, "sample", spy)
    chosen = groupfx.fit(many, "mundlak", warn=False, **TINY)
    mine = groupfx.fit(many, "mundlak", warn=False, target_accept=0.85, **TINY)
    assert asked == [0.8, 0.85]
    assert chosen.idata.sample_stats.attrs["target_accept"] == 0.8
    assert mine.idata.sample_stats.attrs["target_accept"] == 0.85


def test_the_report_names_each_models_target_acceptance(small_fits):
    from groupfx.report.outputs import _target_accept_text

    fits = list(small_fits.values())
    expected = {fit.label: fit.spec.target_accept_for(fit.data) for fit in fits}
    text = _target_accept_text(fits)
    assert text.startswith(", target acceptance ")
    for label, value in expected.items():
        assert f"{label} {value:g}" in text
    assert _target_accept_text(fits[:1]) == f", target acceptance {expected[fits[0].label]:g}"
