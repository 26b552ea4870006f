"""The seed study end to end: simulate, fit the five strategies, compare, write the report."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from groupfx.data.simulate import SimulatedData, SimulationSettings, simulate
from groupfx.engines.sampling import SamplerSettings
from groupfx.fitting import Progress, fit_all
from groupfx.models.builders import DEFAULT_MODELS, MODELS
from groupfx.report.outputs import write_report
from groupfx.results.fits import Fits, compare, estimates
from groupfx.util.files import claim_output_folder

DEMO_TITLE = "Fixed, random and Mundlak effects under group-level confounding: a simulated study"
DEMO_INTRO = (
    "Units sit in groups, and an unobserved group-level cause U drives both the unit-level variable x and "
    "the outcome y. The true effect of x on y is known because the data are simulated. Five strategies "
    "estimate it: a naive regression, fixed effects, a multilevel (random intercepts) model, the Mundlak "
    "device and a latent Mundlak model. Each posterior is set against the truth, and the models are "
    "compared by PSIS-LOO."
)
TIME_SHOCKS = {"n_periods": 10, "time_sd": 1.5}
"""The simulation settings ``groupfx demo --time-shocks`` adds: ten periods, each with an unobserved shock V
as spread as the group confounder U (sd 1.5) and, like U, driving x and y with effect 1 (``bvx``, ``bvy``)."""
TIME_TITLE = (
    "Fixed, random and Mundlak effects under group- and period-level confounding: a simulated two-way study"
)


def _time_sentence(n_periods: int) -> str:
    return (
        f" The units are also spread over {n_periods} periods, and an unobserved period-level cause V drives"
        " x and y as well, so even comparing units within a group confounds the effect of x. Every strategy"
        " but the naive regression is therefore fitted two-way, with period terms beside the group's: free"
        " period intercepts (fixed effects), crossed pooled intercepts (multilevel), the period means of x"
        " (Mundlak) or a latent period shift measured through x (latent Mundlak)."
    )


def demo_intro(models: Sequence[str], n_periods: int = 0) -> str:
    """The report's opening paragraph for the strategies fitted (:data:`DEMO_INTRO` for all five on one-way
    data); with ``n_periods`` it says that a period confounder drives x and y and the fits are two-way."""
    start, rest = DEMO_INTRO.split(" Five strategies")
    if n_periods:
        start += _time_sentence(n_periods)
    if list(models) == list(DEFAULT_MODELS):
        return f"{start} Five strategies{rest}"
    names = [MODELS[name].phrase if name in MODELS else name for name in models]
    if len(names) == 1:
        return f"{start} One strategy estimates it, {names[0]}, and its posterior is set against the truth."
    listed = ", ".join(names[:-1]) + f" and {names[-1]}"
    return (
        f"{start} {len(names)} strategies estimate it: {listed}. Each posterior is set against the truth,"
        " and the models are compared by PSIS-LOO."
    )


@dataclass(frozen=True)
class DemoResult:
    """What ``run_demo`` made.

    Attributes
    ----------
    simulated : SimulatedData
        The data and its truth.
    fits : Fits
        The fits by registry name (all five unless fewer were asked for).
    estimates : pandas.DataFrame
        The estimates table (as in ``estimates.csv``).
    comparison : pandas.DataFrame
        The LOO comparison (as in ``loo.csv``; one row when one model was fitted).
    report : pathlib.Path
        Path of ``report.html``.
    """

    simulated: SimulatedData
    fits: Fits
    estimates: pd.DataFrame
    comparison: pd.DataFrame
    report: Path


def run_demo(
    out_dir: str | Path = "groupfx-demo",
    *,
    simulation: SimulationSettings | None = None,
    sampler: SamplerSettings | None = None,
    models: Sequence[str] | None = None,
    progress: Progress | None = None,
    writing: Callable[[str], None] | None = None,
) -> DemoResult:
    """Run the seed study and write its report into ``out_dir``.

    Parameters
    ----------
    out_dir : str or pathlib.Path
        Output folder, written atomically when everything is done. It must not exist, or be empty, or be
        a groupfx report folder (then it is replaced); anything else is refused before the data are
        simulated, and so is a folder another run is writing.
    simulation : SimulationSettings, optional
        The simulated data (default: the seed's). With periods (``n_periods``, e.g. the settings of
        :data:`TIME_SHOCKS`) the data are two-way, every strategy but the naive one is fitted with period
        terms, and the report's title and opening paragraph say so.
    sampler : SamplerSettings, optional
        Sampler settings (default: 4 chains x (1000 tuning + 1000 draws), seed 42).
    models : sequence of str, optional
        Strategies to fit (default: all five); one is enough (its report has no LOO comparison).
    progress : callable, optional
        ``progress(model_label, step)`` as each fitting step begins.
    writing : callable, optional
        Called with the part of the report being written.

    Returns
    -------
    DemoResult

    Raises
    ------
    InputError
        If ``out_dir`` may not be written (see :func:`groupfx.util.files.check_output_folder`).
    """
    with claim_output_folder(out_dir, "report"):
        simulated = simulate(simulation or SimulationSettings())
        fits = fit_all(
            simulated, models, settings=sampler or SamplerSettings(), progress=progress, warn=False
        )
        n_periods = simulated.settings.n_periods
        report = write_report(
            fits,
            out_dir,
            simulated=simulated,
            title=TIME_TITLE if n_periods else DEMO_TITLE,
            intro=demo_intro(list(fits), n_periods),
            progress=writing,
        )
    return DemoResult(
        simulated=simulated,
        fits=fits,
        estimates=estimates(fits, simulated.truth),
        comparison=compare(fits),
        report=report,
    )
