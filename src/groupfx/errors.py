"""Exceptions raised by groupfx.

Every error a user can cause derives from :class:`GroupfxError`; the command line prints its message as one
line and exits non-zero, so messages are written to be read on their own: what is wrong, where, and the fix.
"""

from __future__ import annotations


class GroupfxError(Exception):
    """Base class of the errors a user of groupfx can cause."""


class InputError(GroupfxError, ValueError):
    """A setting or a data table that groupfx cannot use as given."""


class UnknownModelError(InputError, KeyError):
    """A model name that is not in the registry."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class SamplingError(GroupfxError, RuntimeError):
    """The sampler could not run a model (for example, no finite starting point)."""


class DiagnosticWarning(UserWarning):
    """A sampler diagnostic (R-hat, ESS, divergences) outside its threshold."""


def shown(value: object) -> str:
    """``repr(value)`` as a user wrote the value: NumPy scalars as the Python value they hold.

    Labels and values taken from a table are often NumPy scalars, whose ``repr`` is ``np.int64(3)``; in a
    message the user should read ``3`` (and ``'A'`` for a string).

    Examples
    --------
    >>> import numpy as np
    >>> shown(np.int64(3)), shown(np.float64(0.5)), shown("A")
    ('3', '0.5', "'A'")
    """
    import numpy as np

    return repr(value.item() if isinstance(value, np.generic) else value)
