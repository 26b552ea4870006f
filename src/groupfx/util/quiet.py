"""Keep the libraries' warnings and log chatter off the terminal; groupfx's own warnings still show.

ArviZ, PyMC, PyTensor, nutpie, numba, JAX, matplotlib and xarray warn about their own plans and internals
(ArviZ's daily FutureWarning, UserWarnings printed with a line of their source, PyTensor's BLAS notice).
None of it is for a user of groupfx: what matters of it groupfx says itself, once per model, in its own
words (sampler diagnostics, Pareto k). :func:`quiet_libraries` is called by the command line and by the
worker processes that fit models side by side (their stderr is the terminal's, not the caller's).

Warnings whose class groupfx defines (:class:`~groupfx.data.reader.DataWarning`,
:class:`~groupfx.errors.DiagnosticWarning`) still show, as one line without Python source. A user who
wants to see everything gives Python's own ``-W`` option or ``PYTHONWARNINGS`` (``PYTHONWARNINGS=default``):
then the warnings are left as Python shows them.
"""

from __future__ import annotations

import logging
import sys
import warnings
from typing import TextIO

LIBRARY_LOGGERS = (
    "absl",
    "arviz",
    "jax",
    "matplotlib",
    "numba",
    "nutpie",
    "pymc",
    "pytensor",
    "xarray",
)
"""Loggers of the libraries groupfx uses; they are held to errors."""


def is_groupfx_warning(category: type[Warning]) -> bool:
    """Whether a warning class is one of groupfx's own (defined in a groupfx module)."""
    return category.__module__.split(".")[0] == "groupfx"


def _show(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """Print groupfx's own warnings as one line; drop every other."""
    if not is_groupfx_warning(category):
        return
    stream = file if file is not None else sys.stderr
    if stream is None:  # no stderr (pythonw): nowhere to print
        return
    try:
        stream.write(f"warning: {message}\n")
    except OSError:  # a closed or broken stream must not stop the work
        pass


def ignore_import_notices() -> None:
    """Ignore the notice ArviZ prints when first imported each day (its coming refactor of its own API).

    This module is imported by ``groupfx/__init__.py`` before anything imports ArviZ, and runs this
    then, for the command line and the Python API alike: the notice is about ArviZ's plans, not about a
    fit. Python's ``-W`` options or ``PYTHONWARNINGS``, when given, are left in charge.
    """
    if not sys.warnoptions:
        warnings.filterwarnings(
            "ignore", message=r"\s*ArviZ is undergoing a major refactor", category=FutureWarning
        )


def quiet_libraries() -> None:
    """Silence the libraries' warnings, and their logs below errors, for this whole process.

    groupfx's own warnings still show, one line each; so do the libraries' errors. Calling it again
    changes nothing. When Python was given ``-W`` options or ``PYTHONWARNINGS``, warnings are left as those
    say; the libraries' logs are held to errors either way.
    """
    if not sys.warnoptions:
        warnings.showwarning = _show
    root = logging.getLogger()
    if not root.handlers:  # logging not set up by the user: hold every other library to errors too
        root.setLevel(logging.ERROR)
    for name in LIBRARY_LOGGERS:  # PyMC, ArviZ and PyTensor set levels and handlers of their own
        logging.getLogger(name).setLevel(logging.ERROR)


ignore_import_notices()
