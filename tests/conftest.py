"""Shared fixtures: small simulated data and cheap real fits (tiny draws, real nutpie sampling)."""

from __future__ import annotations

import warnings

import matplotlib
import pytest

matplotlib.use("Agg")
warnings.filterwarnings("ignore", category=FutureWarning)

import groupfx  # noqa: E402
from groupfx.data.simulate import SimulatedData  # noqa: E402

TINY = {"draws": 60, "tune": 60, "chains": 2}


@pytest.fixture(scope="session")
def small_sim() -> SimulatedData:
    """200 units in 8 groups from the seed's graph."""
    return groupfx.simulate(n_groups=8, n_units=200, seed=3)


@pytest.fixture(scope="session")
def small_fits(small_sim) -> dict[str, groupfx.Fit]:
    """Three strategies fitted with tiny draws."""
    return groupfx.fit_all(small_sim, ["naive", "fixed", "mundlak"], warn=False, **TINY)


@pytest.fixture(scope="session")
def two_x_data(small_sim) -> groupfx.GroupedData:
    """The small simulated table with a second x (also driven by U) and a second z."""
    import numpy as np

    frame = small_sim.to_frame()
    rng = np.random.default_rng(11)
    frame["x2"] = -0.5 * frame["ug"] + rng.normal(size=len(frame))
    frame["z2"] = rng.normal(size=small_sim.data.n_groups)[frame["group"].to_numpy()]
    return groupfx.GroupedData.from_frame(frame, x=["x", "x2"], z=["z", "z2"])


@pytest.fixture(scope="session")
def tables(small_sim, two_x_data):
    """Six tables and their families: the kernels' and the numba LOO's test cases."""
    from dataclasses import replace

    import numpy as np

    no_z = groupfx.GroupedData.from_frame(small_sim.to_frame(), x="x", z=None)
    rng = np.random.default_rng(9)
    n = two_x_data.n_units
    trials = rng.integers(1, 6, n)
    return {
        "one x, one z": (small_sim.data, "bernoulli"),
        "two x, two z": (two_x_data, "bernoulli"),
        "no z": (no_z, "bernoulli"),
        "binomial": (replace(two_x_data, y=rng.binomial(trials, 0.4), trials=trials), "binomial"),
        "poisson": (replace(two_x_data, y=rng.poisson(2.0, n), exposure=rng.uniform(0.5, 2, n)), "poisson"),
        "gaussian": (replace(two_x_data, y=rng.normal(size=n)), "gaussian"),
    }
