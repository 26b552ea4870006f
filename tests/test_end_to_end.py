"""The seed study at full draws: the conclusions the seed draws must hold, with clean diagnostics."""

from __future__ import annotations

import numpy as np
import pytest

from groupfx.demo import run_demo
from groupfx.engines.diagnostics import parameter_diagnostics

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return run_demo(tmp_path_factory.mktemp("e2e") / "demo")


def row(demo, label, parameter):
    table = demo.estimates
    return table[(table.model == label) & (table.parameter == parameter)].iloc[0]


LABELS = ["Naive", "Fixed effects", "Multilevel", "Mundlak", "Latent Mundlak"]


def test_no_divergences_and_converged_effects(demo):
    for fit in demo.fits.values():
        assert fit.divergences == 0, fit.label
        for parameter in ("bxy", "bzy"):
            r = row(demo, fit.label, parameter)
            assert r.r_hat <= 1.01, (fit.label, parameter, r.r_hat)
            assert r.ess_bulk >= 400, (fit.label, parameter, r.ess_bulk)


@pytest.mark.parametrize("model", ["naive", "mundlak", "latent"])
def test_every_parameter_converged(demo, model):
    diagnostics = parameter_diagnostics(demo.fits[model].idata)
    assert diagnostics.r_hat.max() <= 1.01, diagnostics.r_hat.idxmax()


def test_bxy_conclusions_match_the_seed(demo):
    for label in ("Naive", "Multilevel"):
        r = row(demo, label, "bxy")
        assert r.hdi_low > 0, label  # confounded: the interval excludes the true 0
    for label in ("Fixed effects", "Mundlak", "Latent Mundlak"):
        r = row(demo, label, "bxy")
        assert r.hdi_low < 0 < r.hdi_high, label
        assert abs(r["mean"]) < 0.15, label


def test_fixed_effects_cannot_pin_bzy(demo):
    fixed, mundlak = row(demo, "Fixed effects", "bzy"), row(demo, "Mundlak", "bzy")
    assert fixed.sd >= 3 * mundlak.sd
    assert not fixed.identified
    assert "bzy is not identified" in demo.report.read_text()


def test_loo_prefers_the_mundlak_models(demo):
    ranks = demo.comparison["rank"]
    worst_mundlak = max(ranks["Mundlak"], ranks["Latent Mundlak"])
    best_other = min(ranks["Multilevel"], ranks["Fixed effects"], ranks["Naive"])
    assert worst_mundlak < best_other
    assert ranks["Naive"] == 4


def test_estimates_close_to_the_reference_run(demo):
    # Reference (seed's own code, DESIGN.md): bxy means 0.68, 0.03, 0.22, 0.03, 0.04.
    means = [row(demo, label, "bxy")["mean"] for label in LABELS]
    np.testing.assert_allclose(means, [0.68, 0.03, 0.22, 0.03, 0.04], atol=0.04)
