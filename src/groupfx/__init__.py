"""groupfx: causal effects in grouped data under group-level confounding.

The public API: simulate data from the seed study's causal graph, fit the five strategies (naive, fixed
effects, multilevel, Mundlak, latent Mundlak) with PyMC and nutpie, tabulate and compare them, plot them,
and write a report.
"""

from importlib.metadata import version as _version

from groupfx.data import GroupedData
from groupfx.errors import DiagnosticWarning, GroupfxError, InputError, UnknownModelError
from groupfx.fitting import fit, fit_all
from groupfx.models import MODELS, build_model
from groupfx.outputs import write_report
from groupfx.priors import DEFAULT_PRIORS, Prior
from groupfx.reader import DataWarning, read_data
from groupfx.results import Fit, compare, estimates, mundlak_effects
from groupfx.sampling import SamplerSettings
from groupfx.simulate import SimulatedData, SimulationSettings, simulate

__version__ = _version("groupfx")

__all__ = [
    "DEFAULT_PRIORS",
    "MODELS",
    "DataWarning",
    "DiagnosticWarning",
    "Fit",
    "GroupedData",
    "GroupfxError",
    "InputError",
    "Prior",
    "SamplerSettings",
    "SimulatedData",
    "SimulationSettings",
    "UnknownModelError",
    "__version__",
    "build_model",
    "compare",
    "estimates",
    "fit",
    "fit_all",
    "mundlak_effects",
    "read_data",
    "simulate",
    "write_report",
]
