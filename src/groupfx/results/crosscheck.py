"""Frequentist within-group ("fixed-effects") estimates, as a cross-check on the Bayesian fits.

The Bayesian fixed-effects model gives every group its own intercept, so the coefficients of the
unit-level covariates are identified only by variation *within* groups, and any group-level
confounder U_g (which shifts every unit of a group alike) is absorbed by the intercepts. The
estimators here use the same within-group information, but remove the group intercepts exactly
instead of estimating them, which is what makes them the classical counterpart of that model:

=========== ============================================ =============================================
family      estimator                                    how the group intercepts are removed
=========== ============================================ =============================================
bernoulli   ``statsmodels`` ``ConditionalLogit``         likelihood conditional on each group's
                                                         number of successes (Chamberlain, 1980)
binomial    the same, after expanding each unit into     the same; identical to the conditional
            ``trials`` binary rows                       binomial likelihood given group totals
poisson     ``statsmodels`` ``ConditionalPoisson``       likelihood conditional on each group's
                                                         total count (a multinomial likelihood)
gaussian    ``linearmodels`` ``PanelOLS`` with entity    demeaning y and x by group (within OLS)
            effects
=========== ============================================ =============================================

Why conditional likelihoods: an unconditional logit with one dummy per group estimates G nuisance
intercepts from a handful of units each, and its slope estimates stay biased however many groups
there are (the incidental-parameters problem; about a factor 2 with two units per group). The
group's number of successes is a sufficient statistic for its intercept, so conditioning on it
removes the intercept from the likelihood and the conditional MLE is consistent as G grows with
few units per group. The same holds for the Poisson (the group total is sufficient for its
intercept; here the conditional and dummy-variable estimates coincide) and for the linear model.

Groups whose outcome has no variation carry no within information and are dropped first: all 0 or
all 1 (Bernoulli), no successes or no failures (binomial), all counts zero (Poisson). For the
Poisson, ``statsmodels`` also drops groups whose counts are all equal but nonzero; these do carry
a little information, so dropping them changes the estimator slightly, and the note says how many.
A Poisson ``exposure`` enters as the offset ``log(exposure)``; it cancels from the conditional
likelihood when it is constant within each group, and is passed as ``offset=`` otherwise.

This is a cross-check and must never break the main fit: library errors, non-convergence and
library warnings are turned into NaN rows and a short ``note``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.special import gammaln
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from groupfx.data.grouped import GroupedData
from groupfx.models.families import FAMILIES, Family
from groupfx.results.fits import Fit

__all__ = ["COLUMNS", "CONSTANT_NOTE", "side_by_side", "within_estimate", "within_for"]

COLUMNS = ("term", "estimate", "se", "ci_low", "ci_high", "method", "n_used", "note")
"""Columns of the table that :func:`within_estimate` returns."""

MAX_EXPANDED_ROWS = 2_000_000
"""Largest number of binary rows the binomial expansion may build (sum of trials in used groups)."""

MAX_CONDITIONAL_WORK = 1_000_000
"""Largest sum over groups of successes * failures given to ConditionalLogit (roughly a minute of work)."""

MAX_LOG_CHOOSE = 400.0
"""Largest log C(rows, successes) of a group given to ConditionalLogit, whose sums overflow near 709."""

CONSTANT_NOTE = "x is constant within every group: no within effect"

_Z975 = 1.959963984540054  # standard normal 97.5% quantile, for the 95% Wald interval
_METHODS = {
    "conditional_logit": "statsmodels ConditionalLogit",
    "binary_expansion": "statsmodels ConditionalLogit (binary expansion)",
    "conditional_poisson": "statsmodels ConditionalPoisson",
    "panel_ols": "linearmodels PanelOLS (entity effects)",
}
"""Each estimator in words, by the key a :class:`groupfx.models.families.Family` names as its
``within_estimator``."""


def within_estimate(
    y: np.ndarray,
    x: np.ndarray,
    group: np.ndarray,
    x_names: Sequence[str],
    family: str | Family,
    trials: np.ndarray | None = None,
    exposure: np.ndarray | None = None,
) -> pd.DataFrame:
    """Estimate the within-group effects of the covariates with a classical fixed-effects estimator.

    Parameters
    ----------
    y : numpy.ndarray
        Outcome, shape (N,): 0/1, successes, counts or real numbers according to `family`.
    x : numpy.ndarray
        Unit-level covariates, shape (N, K) (a 1-D array is taken as K = 1).
    group : numpy.ndarray
        Group code of each unit, shape (N,).
    x_names : sequence of str
        The K covariate names, used as ``term``.
    family : str or Family
        ``"bernoulli"``, ``"binomial"``, ``"poisson"`` or ``"gaussian"`` (or the family itself); its
        ``within_estimator`` names the estimator.
    trials : numpy.ndarray, optional
        Number of trials of each unit, shape (N,); required for ``"binomial"``.
    exposure : numpy.ndarray, optional
        Positive exposure of each unit, shape (N,), for ``"poisson"``: the expected count is
        ``exposure * exp(eta)``.

    Returns
    -------
    pandas.DataFrame
        One row per covariate with columns ``term``, ``estimate``, ``se``, ``ci_low``, ``ci_high``
        (95% Wald interval from the library's standard error), ``method`` (the estimator, in words),
        ``n_used`` (units in the groups that carry within information) and ``note`` (empty, or why
        units were dropped or an estimate is NaN).

    Raises
    ------
    ValueError
        If the arrays do not have matching shapes, or `trials` is missing for ``"binomial"``.
        Estimation problems never raise: they give NaN rows and a note.
    """
    known = family if isinstance(family, Family) else FAMILIES.get(family)
    y, x, codes, trials, exposure = _check_inputs(y, x, group, x_names, known, trials, exposure)
    names = [str(name) for name in x_names]
    k = x.shape[1]
    estimate, se = np.full(k, np.nan), np.full(k, np.nan)
    if known is None or known.within_estimator not in _METHODS:
        note = f"no frequentist within estimator for family {getattr(family, 'name', family)!r}"
        return _table(names, estimate, se, "none", 0, [note] * k)
    family, method = known, _METHODS[known.within_estimator]
    if not all(np.isfinite(a).all() for a in (y, x, trials, exposure) if a is not None):
        note = "y, x, trials or exposure hold non-finite values"
        return _table(names, estimate, se, method, 0, [note] * k)

    keep, notes = _informative(y, codes, family, trials)
    y, x, codes = y[keep], x[keep], codes[keep]
    trials = None if trials is None else trials[keep]
    exposure = None if exposure is None else exposure[keep]
    n_used = int(keep.sum())

    varies = _varies_within(x, codes)
    row_notes = [[] if v or n_used == 0 else [CONSTANT_NOTE] for v in varies]
    if n_used == 0:
        notes.append("no group carries within information")
    elif varies.any():
        if np.linalg.matrix_rank(_demean(x[:, varies], codes)) < varies.sum():
            notes.append(
                "the covariates are collinear within groups: their within effects are not identified"
            )
        else:
            fitted, fit_notes = _guarded_fit(family, y, x[:, varies], codes, trials, exposure)
            notes.extend(fit_notes)
            if fitted is not None:
                estimate[varies], se[varies] = fitted
    notes = list(dict.fromkeys(notes))  # de-duplicate, keep order
    return _table(names, estimate, se, method, n_used, ["; ".join(r + notes) for r in row_notes])


def _check_inputs(y, x, group, x_names, family, trials, exposure):
    """Coerce the inputs to arrays and check their shapes; recode groups to 0..G-1."""
    y = np.asarray(y, dtype=float).ravel()
    x = np.asarray(x, dtype=float)
    x = x.reshape(-1, 1) if x.ndim == 1 else x
    n = y.shape[0]
    if x.ndim != 2 or x.shape[0] != n:
        raise ValueError(f"x must have shape ({n}, K), got {x.shape}")
    if len(x_names) != x.shape[1]:
        raise ValueError(f"x has {x.shape[1]} columns but {len(x_names)} names were given")
    group = np.asarray(group).ravel()
    if group.shape[0] != n:
        raise ValueError(f"group must have length {n}, got {group.shape[0]}")
    codes = np.unique(group, return_inverse=True)[1].ravel()
    if family is not None and family.needs_trials and trials is None:
        raise ValueError("the binomial family needs trials")
    arrays = []
    for name, values in (("trials", trials), ("exposure", exposure)):
        if values is not None:
            values = np.asarray(values, dtype=float).ravel()
            if values.shape[0] != n:
                raise ValueError(f"{name} must have length {n}, got {values.shape[0]}")
        arrays.append(values)
    return y, x, codes, *arrays


def _uninformative_panel_ols(y, codes, size, total, trials) -> list[tuple[np.ndarray, str]]:
    # singletons add no within information (PanelOLS would keep them harmlessly)
    return [(size < 2, "singleton groups")]


def _uninformative_conditional_logit(y, codes, size, total, trials) -> list[tuple[np.ndarray, str]]:
    return [((total == 0) | (total == size), "groups whose y is all 0 or all 1")]


def _uninformative_binary_expansion(y, codes, size, total, trials) -> list[tuple[np.ndarray, str]]:
    trials_total = np.bincount(codes, weights=trials)
    return [((total == 0) | (total == trials_total), "groups with no successes or no failures")]


def _uninformative_conditional_poisson(y, codes, size, total, trials) -> list[tuple[np.ndarray, str]]:
    low, high = _group_min_max(y, codes)
    why = "groups whose counts are all equal and nonzero (statsmodels drops groups with no variance in y)"
    return [(total == 0, "groups whose counts are all zero"), ((total > 0) & (low == high), why)]


_UNINFORMATIVE = {
    "conditional_logit": _uninformative_conditional_logit,
    "binary_expansion": _uninformative_binary_expansion,
    "conditional_poisson": _uninformative_conditional_poisson,
    "panel_ols": _uninformative_panel_ols,
}
"""Per estimator: ``(group mask, why)`` of the groups that carry no within information for it."""


def _informative(y, codes, family: Family, trials) -> tuple[np.ndarray, list[str]]:
    """Mask of the units in groups that carry within information, and notes on what was dropped."""
    size = np.bincount(codes)
    total = np.bincount(codes, weights=y)
    reasons = _UNINFORMATIVE[family.within_estimator](y, codes, size, total, trials)
    notes, dropped = [], np.zeros(size.shape[0], dtype=bool)
    for mask, why in reasons:
        if mask.any():
            notes.append(f"dropped {int(size[mask].sum())} units in {int(mask.sum())} {why}")
            dropped |= mask
    return ~dropped[codes], notes


def _group_min_max(values: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Smallest and largest value in each group."""
    n_groups = int(codes.max()) + 1 if codes.size else 0
    low, high = np.full(n_groups, np.inf), np.full(n_groups, -np.inf)
    np.minimum.at(low, codes, values)
    np.maximum.at(high, codes, values)
    return low, high


def _demean(x: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Subtract each group's mean from the columns of x."""
    size = np.bincount(codes, minlength=int(codes.max()) + 1)
    means = np.stack([np.bincount(codes, weights=col) / np.maximum(size, 1) for col in x.T], axis=1)
    return x - means[codes]


def _varies_within(x: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Which columns of x vary within at least one group (relative tolerance 1e-10)."""
    if codes.size == 0:
        return np.zeros(x.shape[1], dtype=bool)
    spread = np.abs(_demean(x, codes)).max(axis=0)
    return spread > 1e-10 * np.maximum(np.abs(x).max(axis=0), 1.0)


class _Skip(Exception):
    """A reason not to fit, reported verbatim in the note."""


def _guarded_fit(
    family, y, x, codes, trials, exposure
) -> tuple[tuple[np.ndarray, np.ndarray] | None, list[str]]:
    """Run the family's fitter, turning exceptions and warnings into notes; None if it failed."""
    notes: list[str] = []
    fitted = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fitted = _FITTERS[family.within_estimator](y, x, codes, trials, exposure)
        except _Skip as err:
            notes.append(str(err))
        except RecursionError:
            notes.append("a group is too large for statsmodels' recursive conditional likelihood")
        except Exception as err:  # a cross-check must never break the main fit
            notes.append(f"{family.name} fit failed: {type(err).__name__}: {_first_line(err)}")
    for warning in caught:
        if issubclass(warning.category, ConvergenceWarning):
            notes.append("the optimizer did not converge")
            fitted = None
        elif issubclass(warning.category, RuntimeWarning):  # numpy overflow / invalid value
            notes.append("overflow or invalid values in the likelihood")
            fitted = None
        elif not issubclass(warning.category, DeprecationWarning | FutureWarning):
            notes.append(f"{warning.category.__name__}: {_first_line(warning.message)}")
    if fitted is not None and not np.all(np.isfinite(fitted[0])):
        notes.append("the fit returned non-finite estimates")
        fitted = None
    return fitted, notes


def _first_line(message: object) -> str:
    """First line of a message, at most 160 characters."""
    text = str(message).strip().splitlines()
    return text[0][:160] if text else ""


def _check_conditional_logit_size(successes: np.ndarray, rows: np.ndarray) -> None:
    """Refuse (with :class:`_Skip`) data too large for statsmodels' ConditionalLogit.

    Its likelihood sums over all ways of placing a group's ``k`` successes among its ``t`` binary rows
    with a memoised Python recursion: about ``k * (t - k)`` steps per group and evaluation, with
    sums that overflow once ``C(t, k)`` nears 1e308.
    """
    failures = rows - successes
    log_choose = gammaln(rows + 1) - gammaln(successes + 1) - gammaln(failures + 1)
    if log_choose.max(initial=0.0) > MAX_LOG_CHOOSE:
        worst = int(np.argmax(log_choose))
        raise _Skip(
            f"a group with {int(successes[worst])} successes in {int(rows[worst])} binary rows is too "
            "large for statsmodels' conditional logit (its sums would overflow)"
        )
    work = float(np.sum(successes * failures))
    if work > MAX_CONDITIONAL_WORK:
        raise _Skip(
            f"the conditional logit would need {work:.3g} recursion steps per likelihood evaluation "
            f"(limit {MAX_CONDITIONAL_WORK:.3g}): too slow for a cross-check"
        )


def _check_divergence(params: np.ndarray, x_within: np.ndarray) -> np.ndarray:
    """Refuse estimates that shift the log odds or log rate by more than 10 per within-group SD of x.

    Such values mean the optimizer stopped on its way to infinity: within groups, x separates the
    outcomes (or the zero counts) perfectly and no finite maximum-likelihood estimate exists.
    """
    if np.any(np.abs(params) * x_within.std(axis=0) > 10.0):
        raise _Skip("no finite estimate: x separates the outcomes within groups (estimates diverge)")
    return params


def _fit_conditional_logit(y, x, codes, trials, exposure) -> tuple[np.ndarray, np.ndarray]:
    """ConditionalLogit on 0/1 outcomes; x is demeaned by group, which leaves the likelihood unchanged."""
    from statsmodels.discrete.conditional_models import ConditionalLogit

    _check_conditional_logit_size(np.bincount(codes, weights=y), np.bincount(codes).astype(float))
    x = _demean(x, codes)
    result = ConditionalLogit(y, x, groups=codes).fit(maxiter=200)
    return _check_divergence(np.asarray(result.params), x), np.asarray(result.bse)


def _fit_binomial(y, x, codes, trials, exposure) -> tuple[np.ndarray, np.ndarray]:
    """Expand successes and failures into binary rows, then ConditionalLogit."""
    if np.any((y < 0) | (y > trials) | (y != np.round(y)) | (trials != np.round(trials))):
        raise _Skip("binomial y must be whole numbers between 0 and trials")
    n_rows = int(trials.sum())
    if n_rows > MAX_EXPANDED_ROWS:
        raise _Skip(
            f"the binary expansion would have {n_rows} rows, more than {MAX_EXPANDED_ROWS}: "
            "too large for the conditional logit"
        )
    _check_conditional_logit_size(np.bincount(codes, weights=y), np.bincount(codes, weights=trials))
    counts = np.concatenate([y, trials - y]).astype(int)
    rows = np.repeat(np.tile(np.arange(y.shape[0]), 2), counts)
    binary = np.repeat(np.r_[np.ones_like(y), np.zeros_like(y)], counts)
    return _fit_conditional_logit(binary, x[rows], codes[rows], None, None)


def _fit_conditional_poisson(y, x, codes, trials, exposure) -> tuple[np.ndarray, np.ndarray]:
    """ConditionalPoisson, with offset log(exposure) only where exposure varies within a group."""
    from statsmodels.discrete.conditional_models import ConditionalPoisson

    if np.any((y < 0) | (y != np.round(y))):
        raise _Skip("poisson y must be whole numbers >= 0")
    kwargs = {}
    if exposure is not None:
        if np.any(~(exposure > 0)):
            raise _Skip("exposure must be positive")
        low, high = _group_min_max(exposure, codes)
        if np.any(low != high):
            kwargs["offset"] = np.log(exposure)
    x = _demean(x, codes)
    result = ConditionalPoisson(y, x, groups=codes, **kwargs).fit(maxiter=200)
    return _check_divergence(np.asarray(result.params), x), np.asarray(result.bse)


def _fit_panel_ols(y, x, codes, trials, exposure) -> tuple[np.ndarray, np.ndarray]:
    """PanelOLS with entity effects (the within estimator), unadjusted covariance."""
    from linearmodels import PanelOLS

    position = pd.Series(codes).groupby(codes).cumcount().to_numpy()
    index = pd.MultiIndex.from_arrays([codes, position], names=["group", "position"])
    columns = [f"x{j}" for j in range(x.shape[1])]
    exog = pd.DataFrame(x, index=index, columns=columns)
    result = PanelOLS(pd.Series(y, index=index, name="y"), exog, entity_effects=True).fit()
    return result.params[columns].to_numpy(), result.std_errors[columns].to_numpy()


_FITTERS = {
    "conditional_logit": _fit_conditional_logit,
    "binary_expansion": _fit_binomial,
    "conditional_poisson": _fit_conditional_poisson,
    "panel_ols": _fit_panel_ols,
}
"""Each estimator's fit, by the key a family names as its ``within_estimator``."""


def _table(names, estimate, se, method, n_used, notes) -> pd.DataFrame:
    """Assemble the result table."""
    return pd.DataFrame(
        {
            "term": names,
            "estimate": estimate,
            "se": se,
            "ci_low": estimate - _Z975 * se,
            "ci_high": estimate + _Z975 * se,
            "method": method,
            "n_used": n_used,
            "note": notes,
        },
        columns=list(COLUMNS),
    )


def within_for(data: GroupedData, family: str | Family) -> pd.DataFrame:
    """:func:`within_estimate` of every x of ``data`` under ``family``."""
    return within_estimate(
        np.asarray(data.y, dtype=float),
        data.x,
        data.group,
        data.x_names,
        family,
        trials=data.trials,
        exposure=data.exposure,
    )


def side_by_side(fits: Sequence[Fit], within: pd.DataFrame) -> pd.DataFrame:
    """The frequentist within estimate of each x beside the Bayesian within-effect models' ``bxy``.

    Parameters
    ----------
    fits : sequence of Fit
        The fits; those whose ``bxy`` is the within-group effect (``fit.spec.identifies_within``) get a
        column pair each (posterior mean and sd).
    within : pandas.DataFrame
        The table of :func:`within_estimate`.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``term``: ``within (se)``'s estimate, se and method, then ``<model> mean`` and
        ``<model> sd`` per within-effect model, and the note.
    """
    table = within.set_index("term")[["estimate", "se", "method"]].rename(
        columns={"estimate": "within estimate", "se": "within se"}
    )
    for fit in fits:
        if not fit.spec.identifies_within:
            continue
        draws = fit.idata.posterior["bxy"]
        table[f"{fit.label} mean"] = [float(draws.sel(x_var=term).mean()) for term in table.index]
        table[f"{fit.label} sd"] = [float(draws.sel(x_var=term).std()) for term in table.index]
    table["note"] = within.set_index("term")["note"]
    return table
