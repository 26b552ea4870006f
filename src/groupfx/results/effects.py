"""Effects people can read: counterfactual contrasts on the outcome scale, per group and on average.

The contrast of raising x by ``delta`` for unit i is ``E[y_i | x_i + delta] - E[y_i | x_i]`` on the
outcome scale (a probability for Bernoulli and Binomial, an expected count for Poisson, a mean for
Gaussian), with everything else about the unit and its group held as it is: the group intercept, z, and
the group-level proxy of U (the observed group mean of x in the Mundlak model, u in the latent one), since
raising x does not change the group's unobserved causes. Per group it is averaged over the group's
units, and over all units it is the average marginal effect (AME); each is computed draw by draw and
summarised by its mean and 94% HDI.

The expected outcome is the fit's (:class:`groupfx.engines.expected.ExpectedOutcome`: the fitted PyMC model's
graph of the outcome's mean, or its closed form where the fused kernels serve the model), evaluated on blocks
of units, so no ``draws x N`` array is held (memory is ``draws x block + draws x G``).
"""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd

from groupfx.loo.loglik import flatten_draws
from groupfx.results.fits import HDI_PROB, Fit

BLOCK_BYTES = 64 * 2**20
"""Largest ``draws x units`` block of expected outcomes computed at once."""
EFFECT_COLUMNS = ("model", "x", "delta", "group", "mean", "sd", "hdi_low", "hdi_high", "truth")
"""Columns of the effects table (``effects.csv``)."""


def flat_draws(fit: Fit, names: list[str]) -> dict[str, np.ndarray]:
    """The posterior draws of ``names`` with chains and draws flattened into one leading dimension."""
    return flatten_draws(fit.idata.posterior, names)


def unit_data(fit: Fit) -> dict[str, np.ndarray]:
    """The unit-level inputs of the expected outcome (:data:`.expected.UNIT_DATA`) of a fit."""
    data = fit.data
    values = {"x": data.x, "g": data.group}
    if data.two_way:
        values["t"] = data.time
    if data.trials is not None:
        values["trials"] = data.trials
    if data.exposure is not None:
        values["log_exposure"] = np.log(data.exposure)
    return values


def contrast_draws(fit: Fit, x: str | None = None, delta: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Draws of the contrast of raising ``x`` by ``delta``: per group ``(draws, G)`` and average ``(draws,)``.

    Parameters
    ----------
    fit : Fit
        A fitted model.
    x : str, optional
        Which unit-level variable to raise (default: the first).
    delta : float
        By how much (default 1).
    """
    data = fit.data
    x = data.x_names[0] if x is None else x
    if x not in data.x_names:
        raise ValueError(
            f"{x!r} is not a unit-level variable of this fit; choose from {', '.join(data.x_names)}."
        )
    column = data.x_names.index(x)
    expected = fit.expected_outcome
    params = flat_draws(fit, expected.parameters)
    n_draws = next(iter(params.values())).shape[0]
    units = unit_data(fit)
    block = max(1, BLOCK_BYTES // (8 * n_draws))
    sums = np.zeros((n_draws, data.n_groups))
    for start in range(0, data.n_units, block):
        stop = min(data.n_units, start + block)
        chunk = {name: values[start:stop] for name, values in units.items()}
        raised = dict(chunk, x=chunk["x"].copy())
        raised["x"][:, column] += delta
        args = [params[name] for name in expected.parameters]
        difference = expected.function(*args, *(raised[n] for n in expected.data)) - expected.function(
            *args, *(chunk[n] for n in expected.data)
        )
        codes = chunk["g"]
        order = np.argsort(codes, kind="stable")
        starts = np.flatnonzero(np.r_[True, np.diff(codes[order]) != 0])
        sums[:, codes[order][starts]] += np.add.reduceat(difference[:, order], starts, axis=1)
    sizes = data.group_sizes
    return sums / sizes, sums.sum(axis=1) / data.n_units


def true_contrasts(simulated, x: str | None = None, delta: float = 1.0) -> tuple[np.ndarray, float]:
    """The true contrasts of simulated data (from the truth and the simulated U and V): per group and the
    AME."""
    data, s = simulated.data, simulated.settings
    eta = simulated.linear_predictor()
    difference = 1 / (1 + np.exp(-(eta + s.bxy * delta))) - 1 / (1 + np.exp(-eta))
    per_group = np.bincount(data.group, weights=difference, minlength=data.n_groups) / data.group_sizes
    return per_group, float(difference.mean())


def _summary(values: np.ndarray) -> dict[str, float]:
    low, high = az.hdi(values, hdi_prob=HDI_PROB)
    return {"mean": float(values.mean()), "sd": float(values.std(ddof=1)), "hdi_low": float(low),
            "hdi_high": float(high)}  # fmt: skip


def contrasts(fit: Fit, x: str | None = None, delta: float = 1.0, simulated=None) -> pd.DataFrame:
    """The contrast of raising ``x`` by ``delta`` on the outcome scale, per group and on average.

    Parameters
    ----------
    fit : Fit
        A fitted model.
    x : str, optional
        Which unit-level variable (default: the first).
    delta : float
        By how much to raise it (default 1).
    simulated : SimulatedData, optional
        The simulation ``fit`` came from: adds the true contrasts (``truth``).

    Returns
    -------
    pandas.DataFrame
        Columns ``model, x, delta, group, mean, sd, hdi_low, hdi_high, truth``: one row per group (its
        label) and a last row with group ``"average"`` (the average marginal effect over the units).
    """
    x = fit.data.x_names[0] if x is None else x
    per_group, average = contrast_draws(fit, x, delta)
    truth_groups, truth_average = (None, None) if simulated is None else true_contrasts(simulated, x, delta)
    base = {"model": fit.label, "x": x, "delta": delta}
    rows = []
    for code, label in enumerate(fit.data.group_labels):
        truth = np.nan if truth_groups is None else float(truth_groups[code])
        rows.append(base | {"group": label} | _summary(per_group[:, code]) | {"truth": truth})
    truth = np.nan if truth_average is None else truth_average
    rows.append(base | {"group": "average"} | _summary(average) | {"truth": truth})
    return pd.DataFrame(rows, columns=list(EFFECT_COLUMNS))


def contrast_errors(effects: pd.DataFrame) -> pd.DataFrame:
    """Per model: mean squared error across groups of the posterior-mean contrast against the truth, and
    whether the average contrast's HDI covers the true one."""
    rows = []
    for model, table in effects.groupby("model", sort=False):
        groups = table[table["group"] != "average"]
        average = table[table["group"] == "average"].iloc[0]
        rows.append(
            {
                "model": model,
                "mse_groups": float(((groups["mean"] - groups["truth"]) ** 2).mean()),
                "average": float(average["mean"]),
                "true_average": float(average["truth"]),
                "covers_average": bool(average["hdi_low"] <= average["truth"] <= average["hdi_high"]),
            }
        )
    return pd.DataFrame(rows)
