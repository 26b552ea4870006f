"""The report's effects and checks: contrasts, their errors, group intercepts and predictive checks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import pandas as pd

from groupfx.models.families import get_family
from groupfx.report import effect_plots
from groupfx.results.checks import (
    PredictiveCheck,
    group_intercepts,
    posterior_predictive_check,
    prior_predictive_means,
)
from groupfx.results.effects import contrast_errors, contrasts
from groupfx.results.fits import Fit


@dataclass
class EffectSection:
    """Everything the report says about effects and checks."""

    effects: pd.DataFrame
    errors: pd.DataFrame | None
    sentences: list[str]
    intercepts: dict[str, np.ndarray] = field(default_factory=dict)
    true_intercepts: np.ndarray | None = None
    checks: dict[str, PredictiveCheck] = field(default_factory=dict)
    prior_means: dict[str, np.ndarray] = field(default_factory=dict)
    binary: bool = True
    scale: str = "probability"
    observed_mean: float = 0.0

    def drawings(self) -> dict[str, Callable]:
        """Figure key to a function drawing it."""
        drawings: dict[str, Callable] = {}
        for k, x in enumerate(dict.fromkeys(self.effects["x"])):
            suffix = "" if k == 0 else f"_{k + 1}"
            table = self.effects[self.effects["x"] == x]
            drawings[f"effects_average{suffix}"] = partial(
                effect_plots.plot_average_contrasts, table, self.scale
            )
            drawings[f"effects_groups{suffix}"] = partial(effect_plots.plot_group_contrasts, table)
        if self.intercepts and self.true_intercepts is not None:
            drawings["group_intercepts"] = partial(
                effect_plots.plot_group_intercepts, self.intercepts, self.true_intercepts
            )
        drawings["ppc_groups"] = partial(effect_plots.plot_predictive_groups, self.checks, self.binary)
        drawings["calibration"] = partial(effect_plots.plot_calibration, self.checks, self.binary)
        drawings["prior_predictive"] = partial(
            effect_plots.plot_prior_predictive, self.prior_means, self.observed_mean, self.binary
        )
        return drawings


def effect_section(fits: Sequence[Fit], simulated=None, delta: float = 1.0) -> EffectSection:
    """Compute the contrasts of every x for every fit, and the checks (truth where ``simulated`` is given)."""
    first = fits[0]
    y = np.asarray(first.data.y, dtype=float)
    binary = bool(np.isin(y, (0.0, 1.0)).all())
    scale = get_family(first.family).outcome_scale
    first_x = first.data.x_names[0]
    tables = [
        contrasts(fit, x, delta, simulated if x == first_x else None)
        for x in first.data.x_names
        for fit in fits
    ]
    effects = pd.concat(tables, ignore_index=True)
    errors = None
    averages = effects[(effects["group"] == "average") & (effects["x"] == first.data.x_names[0])]
    name = f"{first.data.x_names[0]} + {delta:g}"
    if simulated is not None:
        errors = contrast_errors(effects[effects["x"] == first.data.x_names[0]])
        truth = float(averages["truth"].iloc[0])
        covering = list(errors.loc[errors["covers_average"], "model"])
        missing = list(errors.loc[~errors["covers_average"], "model"])
        sentences = [f"The true average effect of {name} is {truth:.3f} on the {scale} scale."]
        if covering:
            sentences.append(f"Its 94% HDI covers the truth under: {', '.join(covering)}.")
        if missing:
            sentences.append(f"It misses the truth under: {', '.join(missing)}.")
        if simulated.settings.bxy == 0:
            excluding = list(averages.loc[(averages["hdi_low"] > 0) | (averages["hdi_high"] < 0), "model"])
            sentences.append(
                "With bxy = 0 every true contrast is 0; the average contrast's interval excludes 0 under: "
                + (", ".join(excluding) if excluding else "no model")
                + "."
            )
    else:
        excluding = list(averages.loc[(averages["hdi_low"] > 0) | (averages["hdi_high"] < 0), "model"])
        which = ", ".join(excluding) or "no model"
        sentences = [f"The 94% HDI of the average effect of {name} excludes 0 under: {which}."]
    section = EffectSection(effects, errors, sentences, binary=binary, scale=scale,
                            observed_mean=float(y.mean()))  # fmt: skip
    if simulated is not None:
        s = simulated.settings
        section.true_intercepts = s.a0 + simulated.ug + s.bzy * simulated.data.z[:, 0]
        section.intercepts = {  # one-way only: a two-way fit's intercept also depends on the period
            fit.label: group_intercepts(fit)
            for fit in fits
            if fit.spec.has_group_intercepts and not fit.data.two_way
        }
    section.checks = {fit.label: posterior_predictive_check(fit) for fit in fits}
    section.prior_means = {fit.label: prior_predictive_means(fit) for fit in fits}
    return section
