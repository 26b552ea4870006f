"""Shared fixtures: small simulated data and cheap real fits (tiny draws, real nutpie sampling)."""

from __future__ import annotations

import warnings

import matplotlib
import pytest

matplotlib.use("Agg")
warnings.filterwarnings("ignore", category=FutureWarning)

import groupfx  # noqa: E402

TINY = {"draws": 60, "tune": 60, "chains": 2}


@pytest.fixture(scope="session")
def small_sim() -> groupfx.SimulatedData:
    """200 units in 8 groups from the seed's graph."""
    return groupfx.simulate(n_groups=8, n_units=200, seed=3)


@pytest.fixture(scope="session")
def small_fits(small_sim) -> dict[str, groupfx.Fit]:
    """Three strategies fitted with tiny draws."""
    return groupfx.fit_all(small_sim, ["naive", "fixed", "mundlak"], warn=False, **TINY)
