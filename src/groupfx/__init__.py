"""groupfx: causal effects in grouped data under group-level confounding.

The public API: simulate data from the seed study's causal graph or read your own table (columns or a
formula, one or more x and any z), fit the five strategies (naive, fixed effects, multilevel, Mundlak,
latent Mundlak) with PyMC and nutpie, tabulate and compare them, cross-check them against the frequentist
within estimator, plot them, and write a report.
"""

from importlib.metadata import version as _version

from groupfx import quiet as _quiet  # noqa: F401  (first: it ignores ArviZ's import-time notice)
from groupfx.checks import group_intercepts, posterior_predictive_check, prior_predictive_means
from groupfx.crosscheck import within_estimate, within_for
from groupfx.data import GroupedData
from groupfx.datasets import load_dataset
from groupfx.effects import contrast_errors, contrasts, true_contrasts
from groupfx.errors import DiagnosticWarning, GroupfxError, InputError, UnknownModelError
from groupfx.fitting import fit, fit_all
from groupfx.models import DEFAULT_MODELS, MODELS, build_model
from groupfx.outputs import write_report
from groupfx.priors import DEFAULT_PRIORS, Prior, load_priors
from groupfx.reader import DataWarning, read_data
from groupfx.results import Fit, Fits, compare, estimates, mundlak_effects
from groupfx.sampling import SamplerSettings
from groupfx.scenarios import DEFAULT_SCENARIOS, Scenario, load_scenarios
from groupfx.simulate import SimulatedData, SimulationSettings, simulate
from groupfx.study import StudySettings
from groupfx.study_report import write_study_report
from groupfx.study_run import run_study
from groupfx.study_summary import summarise_study

__version__ = _version("groupfx")

__all__ = [
    "DEFAULT_MODELS",
    "DEFAULT_PRIORS",
    "DEFAULT_SCENARIOS",
    "MODELS",
    "DataWarning",
    "DiagnosticWarning",
    "Fit",
    "Fits",
    "GroupedData",
    "GroupfxError",
    "InputError",
    "Prior",
    "SamplerSettings",
    "Scenario",
    "SimulatedData",
    "SimulationSettings",
    "StudySettings",
    "UnknownModelError",
    "__version__",
    "build_model",
    "compare",
    "contrast_errors",
    "contrasts",
    "estimates",
    "fit",
    "fit_all",
    "group_intercepts",
    "load_dataset",
    "load_priors",
    "load_scenarios",
    "mundlak_effects",
    "posterior_predictive_check",
    "prior_predictive_means",
    "read_data",
    "run_study",
    "simulate",
    "summarise_study",
    "true_contrasts",
    "within_estimate",
    "within_for",
    "write_report",
    "write_study_report",
]
