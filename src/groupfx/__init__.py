"""groupfx: causal effects in grouped data under group-level confounding.

The public API is the handful of verbs and types a user needs: simulate data from the seed study's causal
graph or read your own table, build or fit the five strategies (naive, fixed effects, multilevel, Mundlak,
latent Mundlak) with PyMC and nutpie, tabulate and compare them, read their effects on the outcome scale,
write a report, and run a recovery study. Everything else is importable from the subpackages named in
ARCHITECTURE.md (``groupfx.data``, ``groupfx.models``, ``groupfx.engines``, ``groupfx.loo``,
``groupfx.results``, ``groupfx.report``, ``groupfx.study``); the errors are in ``groupfx.errors``.
"""

from importlib.metadata import version as _version

import groupfx.util.quiet as _quiet  # noqa: F401  (first: it ignores ArviZ's import-time notice)
from groupfx.data.datasets import load_dataset
from groupfx.data.grouped import GroupedData
from groupfx.data.reader import read_data
from groupfx.data.simulate import SimulationSettings, simulate
from groupfx.engines.sampling import SamplerSettings
from groupfx.errors import GroupfxError, InputError
from groupfx.fitting import fit, fit_all
from groupfx.models.builders import build_model
from groupfx.models.priors import Prior
from groupfx.report.outputs import write_report
from groupfx.results.effects import contrasts
from groupfx.results.fits import Fit, Fits, compare, estimates
from groupfx.study.run import run_study
from groupfx.study.scenarios import Scenario
from groupfx.study.tasks import StudySettings

__version__ = _version("groupfx")

__all__ = [
    "Fit",
    "Fits",
    "GroupedData",
    "GroupfxError",
    "InputError",
    "Prior",
    "SamplerSettings",
    "Scenario",
    "SimulationSettings",
    "StudySettings",
    "__version__",
    "build_model",
    "compare",
    "contrasts",
    "estimates",
    "fit",
    "fit_all",
    "load_dataset",
    "read_data",
    "run_study",
    "simulate",
    "write_report",
]
