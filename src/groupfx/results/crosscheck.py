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

Two-way data (a period beside the group: ``time=``) get the two-way within estimator: ``PanelOLS``
with entity (group) and time (period) effects for the Gaussian, and for the other families the
conditional likelihood by group with one dummy per period after the first as extra regressors (the
period effects are few and each is estimated from many groups, so free dummies carry no
incidental-parameters bias); only the slopes of x enter the table. Periods that carry no information
are dropped as groups are (all 0 or all 1, no successes or no failures, all counts zero), by turns
with the groups until neither drops more, and an x that is a group part plus a period part (age in a
yearly panel) has no two-way within effect.

Standard errors: ``se`` is the classical one (PanelOLS' unadjusted covariance; the inverse Hessian
of the conditional likelihood), from which the 95% interval is made. ``se_cluster`` is robust to any
dependence and heteroskedasticity within a group (a unit's periods in a panel): PanelOLS'
``cov_type="clustered", cluster_entity=True``, with linearmodels' small-sample factor: ``N / (N - K)``
one-way, ``N / (N - K - d)`` two-way, where ``d`` counts the unit and the period effects (Stata's
``xtreg, fe vce(cluster)``, which leaves out the unit effects nested in the clusters, gives about 6%
less on the wage panel). The conditional likelihoods, which ``statsmodels`` fits with no robust
covariance, get the sandwich ``G / (G - 1) H^-1 (sum_g s_g s_g') H^-1`` from each group's score
``s_g`` (as Stata's ``vce(cluster)``).

:func:`two_way_mundlak_ols` is the frequentist counterpart of the two-way Mundlak device: pooled OLS
of y on 1, x, the group means of x and the period means of x, whose x coefficients equal two-way
fixed effects exactly on a balanced panel; on an unbalanced one the period dummies and each group's
shares of the periods take the period means' place, and the equality holds again (Wooldridge 2021).

This is a cross-check and must never break the main fit: library errors, non-convergence and
library warnings are turned into NaN rows and a short ``note``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.linalg
from scipy.special import gammaln
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from groupfx.data.grouped import GroupedData, two_way_residual
from groupfx.errors import InputError
from groupfx.models.families import FAMILIES, Family, get_family
from groupfx.results.fits import Fit

__all__ = [
    "COLUMNS",
    "CONSTANT_NOTE",
    "MUNDLAK_COLUMNS",
    "TWO_WAY_CONSTANT_NOTE",
    "side_by_side",
    "two_way_mundlak_ols",
    "within_estimate",
    "within_for",
]

COLUMNS = ("term", "estimate", "se", "se_cluster", "ci_low", "ci_high", "method", "n_used", "note")
"""Columns of the table that :func:`within_estimate` returns."""

MUNDLAK_COLUMNS = ("term", "estimate", "se", "se_cluster", "method", "n_used")
"""Columns of the table that :func:`two_way_mundlak_ols` returns."""

MAX_EXPANDED_ROWS = 2_000_000
"""Largest number of binary rows the binomial expansion may build (sum of trials in used groups)."""

MAX_CONDITIONAL_WORK = 1_000_000
"""Largest sum over groups of successes * failures given to ConditionalLogit (roughly a minute of work)."""

MAX_LOG_CHOOSE = 400.0
"""Largest log C(rows, successes) of a group given to ConditionalLogit, whose sums overflow near 709."""

MAX_PERIOD_DUMMIES = 100
"""Most period dummies a conditional likelihood takes on two-way data (its numerical Hessian costs one
score evaluation per parameter)."""

MAX_DUMMY_CELLS = 20_000_000
"""Largest rows x period dummies of the dense design given to a conditional likelihood (160 MB)."""

CONSTANT_NOTE = "x is constant within every group: no within effect"

TWO_WAY_CONSTANT_NOTE = (
    "x varies only by group and period: the period effects absorb it, no two-way within effect"
)

_Z975 = 1.959963984540054  # standard normal 97.5% quantile, for the 95% Wald interval
_METHODS = {
    "conditional_logit": "statsmodels ConditionalLogit",
    "binary_expansion": "statsmodels ConditionalLogit (binary expansion)",
    "conditional_poisson": "statsmodels ConditionalPoisson",
    "panel_ols": "linearmodels PanelOLS (entity effects)",
}
"""Each estimator in words, by the key a :class:`groupfx.models.families.Family` names as its
``within_estimator``."""

_TWO_WAY_METHODS = {
    "conditional_logit": "statsmodels ConditionalLogit, period dummies (unit and period effects)",
    "binary_expansion": (
        "statsmodels ConditionalLogit (binary expansion), period dummies (unit and period effects)"
    ),
    "conditional_poisson": "statsmodels ConditionalPoisson, period dummies (unit and period effects)",
    "panel_ols": "linearmodels PanelOLS (unit and period effects)",
}
"""Each two-way estimator in words, by the same keys."""


def within_estimate(
    y: np.ndarray,
    x: np.ndarray,
    group: np.ndarray,
    x_names: Sequence[str],
    family: str | Family,
    trials: np.ndarray | None = None,
    exposure: np.ndarray | None = None,
    time: np.ndarray | None = None,
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
    time : numpy.ndarray, optional
        Period code of each unit, shape (N,): a second grouping factor crossed with the groups. With it
        the estimator is two-way (group and period effects; see the module's notes).

    Returns
    -------
    pandas.DataFrame
        One row per covariate with columns ``term``, ``estimate``, ``se`` (classical), ``se_cluster``
        (robust, clustered by group), ``ci_low``, ``ci_high`` (95% Wald interval from the classical
        ``se``), ``method`` (the estimator, in words), ``n_used`` (units in the groups and periods that
        carry within information) and ``note`` (empty, or why units were dropped or an estimate is NaN).

    Raises
    ------
    ValueError
        If the arrays do not have matching shapes, or `trials` is missing for ``"binomial"``.
        Estimation problems never raise: they give NaN rows and a note.
    """
    known = family if isinstance(family, Family) else FAMILIES.get(family)
    y, x, codes, trials, exposure, period = _check_inputs(y, x, group, x_names, known, trials, exposure, time)
    names = [str(name) for name in x_names]
    k = x.shape[1]
    estimate, se, se_cluster = np.full(k, np.nan), np.full(k, np.nan), np.full(k, np.nan)
    methods = _METHODS if period is None else _TWO_WAY_METHODS
    if known is None or known.within_estimator not in methods:
        note = f"no frequentist within estimator for family {getattr(family, 'name', family)!r}"
        return _table(names, estimate, se, se_cluster, "none", 0, [note] * k)
    family, method = known, methods[known.within_estimator]
    if not all(np.isfinite(a).all() for a in (y, x, trials, exposure) if a is not None):
        note = "y, x, trials or exposure hold non-finite values"
        return _table(names, estimate, se, se_cluster, method, 0, [note] * k)

    keep, notes = _informative(y, codes, family, trials, period)
    y, x, codes = y[keep], x[keep], codes[keep]
    trials = None if trials is None else trials[keep]
    exposure = None if exposure is None else exposure[keep]
    period = None if period is None else period[keep]
    n_used = int(keep.sum())

    varies = _varies_within(x, codes)
    beyond = varies if period is None or n_used == 0 else varies & _varies_beyond_periods(x, codes, period)
    row_notes = [
        [] if b or n_used == 0 else [CONSTANT_NOTE if not v else TWO_WAY_CONSTANT_NOTE]
        for v, b in zip(varies, beyond, strict=True)
    ]
    if n_used == 0:
        notes.append("no group carries within information")
    elif beyond.any():
        if period is None:
            residual, where = _demean(x[:, beyond], codes), "within groups"
        else:
            residual, where = (
                two_way_residual(x[:, beyond], codes, period),
                "once group and period effects go",
            )
        if np.linalg.matrix_rank(residual) < beyond.sum():
            notes.append(f"the covariates are collinear {where}: their within effects are not identified")
        else:
            fitted, fit_notes = _guarded_fit(family, y, x[:, beyond], codes, trials, exposure, period)
            notes.extend(fit_notes)
            if fitted is not None:
                estimate[beyond], se[beyond], se_cluster[beyond] = fitted
    notes = list(dict.fromkeys(notes))  # de-duplicate, keep order
    return _table(names, estimate, se, se_cluster, method, n_used, ["; ".join(r + notes) for r in row_notes])


def _check_inputs(y, x, group, x_names, family, trials, exposure, time=None):
    """Coerce the inputs to arrays and check their shapes; recode groups (and periods) to 0..G-1."""
    y = np.asarray(y, dtype=float).ravel()
    x = np.asarray(x, dtype=float)
    x = x.reshape(-1, 1) if x.ndim == 1 else x
    n = y.shape[0]
    if x.ndim != 2 or x.shape[0] != n:
        raise ValueError(f"x must have shape ({n}, K), got {x.shape}")
    if len(x_names) != x.shape[1]:
        raise ValueError(f"x has {x.shape[1]} columns but {len(x_names)} names were given")
    coded = []
    for name, values in (("group", group), ("time", time)):
        if values is not None:
            values = np.asarray(values).ravel()
            if values.shape[0] != n:
                raise ValueError(f"{name} must have length {n}, got {values.shape[0]}")
            values = np.unique(values, return_inverse=True)[1].ravel()
        coded.append(values)
    if family is not None and family.needs_trials and trials is None:
        raise ValueError("the binomial family needs trials")
    arrays = []
    for name, values in (("trials", trials), ("exposure", exposure)):
        if values is not None:
            values = np.asarray(values, dtype=float).ravel()
            if values.shape[0] != n:
                raise ValueError(f"{name} must have length {n}, got {values.shape[0]}")
        arrays.append(values)
    return y, x, coded[0], *arrays, coded[1]


def _uninformative_panel_ols(y, codes, size, total, trials) -> list[tuple[np.ndarray, str]]:
    # singletons add no within information (PanelOLS would keep them harmlessly)
    return [(size < 2, "singleton groups")]


def _uninformative_conditional_logit(y, codes, size, total, trials) -> list[tuple[np.ndarray, str]]:
    return [((total == 0) | (total == size), "groups whose y is all 0 or all 1")]


def _uninformative_binary_expansion(y, codes, size, total, trials) -> list[tuple[np.ndarray, str]]:
    trials_total = np.bincount(codes, weights=trials, minlength=size.shape[0])
    return [((total == 0) | (total == trials_total), "groups with no successes or no failures")]


def _uninformative_conditional_poisson(y, codes, size, total, trials) -> list[tuple[np.ndarray, str]]:
    low, high = _group_min_max(y, codes, size.shape[0])
    why = "groups whose counts are all equal and nonzero (statsmodels drops groups with no variance in y)"
    return [(total == 0, "groups whose counts are all zero"), ((total > 0) & (low == high), why)]


_UNINFORMATIVE = {
    "conditional_logit": _uninformative_conditional_logit,
    "binary_expansion": _uninformative_binary_expansion,
    "conditional_poisson": _uninformative_conditional_poisson,
    "panel_ols": _uninformative_panel_ols,
}
"""Per estimator: ``(group mask, why)`` of the groups that carry no within information for it."""


def _periods_conditional_logit(y, codes, size, total, trials) -> list[tuple[np.ndarray, str]]:
    return [((total == 0) | (total == size), "periods whose y is all 0 or all 1")]


def _periods_binary_expansion(y, codes, size, total, trials) -> list[tuple[np.ndarray, str]]:
    trials_total = np.bincount(codes, weights=trials, minlength=size.shape[0])
    return [((total == 0) | (total == trials_total), "periods with no successes or no failures")]


def _periods_conditional_poisson(y, codes, size, total, trials) -> list[tuple[np.ndarray, str]]:
    return [(total == 0, "periods whose counts are all zero")]


_UNINFORMATIVE_PERIODS = {
    "conditional_logit": _periods_conditional_logit,
    "binary_expansion": _periods_binary_expansion,
    "conditional_poisson": _periods_conditional_poisson,
}
"""Per estimator with period dummies: ``(period mask, why)`` of the periods whose dummy would run off to
infinity (their units then carry nothing); PanelOLS' period effects never do."""


def _informative(y, codes, family: Family, trials, period=None) -> tuple[np.ndarray, list[str]]:
    """Mask of the units in groups (and periods) that carry within information, and notes on what was
    dropped. On two-way data groups and periods are dropped by turns until neither drops more."""
    levels = [(codes, _UNINFORMATIVE[family.within_estimator])]
    if period is not None and family.within_estimator in _UNINFORMATIVE_PERIODS:
        levels.append((period, _UNINFORMATIVE_PERIODS[family.within_estimator]))
    keep = np.ones(y.shape[0], dtype=bool)
    dropped: dict[str, list[int]] = {}  # why -> [units, groups or periods]
    changed = True
    while changed:
        changed = False
        for level, rule in levels:
            kept = level[keep]
            count = int(level.max()) + 1 if level.size else 0
            size = np.bincount(kept, minlength=count)
            total = np.bincount(kept, weights=y[keep], minlength=count)
            gone = np.zeros(count, dtype=bool)
            for mask, why in rule(y[keep], kept, size, total, None if trials is None else trials[keep]):
                mask = mask & (size > 0) & ~gone
                if mask.any():
                    tally = dropped.setdefault(why, [0, 0])
                    tally[0] += int(size[mask].sum())
                    tally[1] += int(mask.sum())
                    gone |= mask
            if gone.any():
                keep &= ~gone[level]
                changed = len(levels) > 1
    notes = [f"dropped {units} units in {count} {why}" for why, (units, count) in dropped.items()]
    return keep, notes


def _group_min_max(
    values: np.ndarray, codes: np.ndarray, n_groups: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Smallest and largest value in each group."""
    if n_groups is None:
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


def _varies_beyond_periods(x: np.ndarray, codes: np.ndarray, period: np.ndarray) -> np.ndarray:
    """Which columns of x are not a group part plus a period part (relative tolerance 1e-8: the two-way
    residual is an alternating projection's, exact only on a balanced panel)."""
    spread = np.abs(two_way_residual(x, codes, period, tolerance=1e-13)).max(axis=0)
    return spread > 1e-8 * np.maximum(np.abs(x).max(axis=0), 1.0)


class _Skip(Exception):
    """A reason not to fit, reported verbatim in the note."""


def _guarded_fit(
    family, y, x, codes, trials, exposure, period=None
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray] | None, list[str]]:
    """Run the family's fitter, turning exceptions and warnings into notes; None if it failed.

    The fit gives ``(estimate, se, se_cluster)``; one that gives two arrays has no clustered se (NaN).
    """
    notes: list[str] = []
    fitted = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fitted = _FITTERS[family.within_estimator](y, x, codes, trials, exposure, period)
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
    if fitted is not None and len(fitted) == 2:
        fitted = (*fitted, np.full_like(np.asarray(fitted[0], dtype=float), np.nan))
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


def _check_divergence(params: np.ndarray, x_within: np.ndarray, n_slopes: int | None = None) -> np.ndarray:
    """Refuse estimates that shift the log odds or log rate by more than 10 per within-group SD of x.

    Such values mean the optimizer stopped on its way to infinity: within groups, x separates the
    outcomes (or the zero counts) perfectly and no finite maximum-likelihood estimate exists. Columns
    after the first ``n_slopes`` are period dummies, which can run off the same way.
    """
    n_slopes = params.shape[0] if n_slopes is None else n_slopes
    diverges = np.abs(params) * x_within.std(axis=0) > 10.0
    if np.any(diverges[:n_slopes]):
        raise _Skip("no finite estimate: x separates the outcomes within groups (estimates diverge)")
    if np.any(diverges[n_slopes:]):
        raise _Skip(
            "no finite estimate: the periods separate the outcomes within groups (period effects diverge)"
        )
    return params


def _period_dummies(period: np.ndarray | None, codes: np.ndarray) -> np.ndarray:
    """Indicators of the periods after the first present one, demeaned by group, keeping only linearly
    independent columns (pivoted QR); shape (N, 0) for one-way data."""
    if period is None:
        return np.zeros((codes.shape[0], 0))
    present = np.unique(period)
    n_dummies = present.shape[0] - 1
    if n_dummies > MAX_PERIOD_DUMMIES:
        raise _Skip(
            f"{n_dummies + 1} periods are too many for period dummies in a conditional likelihood (limit "
            f"{MAX_PERIOD_DUMMIES + 1}): too slow for a cross-check"
        )
    if codes.shape[0] * n_dummies > MAX_DUMMY_CELLS:
        raise _Skip(
            f"the period dummies would fill {codes.shape[0] * n_dummies:.3g} cells (limit "
            f"{MAX_DUMMY_CELLS:.3g}): too large for a cross-check"
        )
    dummies = _demean((period[:, None] == present[None, 1:]).astype(float), codes)
    if n_dummies == 0:
        return dummies
    _, r, pivots = scipy.linalg.qr(dummies, mode="economic", pivoting=True)
    diagonal = np.abs(np.diag(r))
    rank = int(np.sum(diagonal > 1e-9 * max(diagonal[0], 1e-300)))
    return dummies[:, np.sort(pivots[:rank])]


def _cluster_se(bread: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Standard errors of the sandwich ``G / (G - 1) B (sum_g s_g s_g') B'`` clustered by group, from the
    classical covariance ``B`` (inverse negative Hessian) and the groups' scores ``s_g`` (G, P); NaN
    with fewer than two groups."""
    n_groups = scores.shape[0]
    if n_groups < 2:
        return np.full(bread.shape[0], np.nan)
    covariance = n_groups / (n_groups - 1) * bread @ (scores.T @ scores) @ bread.T
    return np.sqrt(np.maximum(np.diag(covariance), 0.0))


def _conditional_fit(model, design: np.ndarray, n_slopes: int) -> tuple[np.ndarray, np.ndarray]:
    """Fit a statsmodels conditional model; refuse diverging estimates before the Hessian is inverted.

    Returns the estimates and their classical covariance, the inverse of the negative numerical Hessian
    (as statsmodels computes it after BFGS, which would fail on a diverging fit before the divergence
    could be told).
    """
    result = model.fit(maxiter=200 + 10 * (design.shape[1] - n_slopes), skip_hessian=True)
    params = _check_divergence(np.asarray(result.params), design, n_slopes)
    information = -np.atleast_2d(model.hessian(params))
    information = (information + information.T) / 2
    if not np.all(np.isfinite(information)):
        raise _Skip("the conditional likelihood's Hessian is not finite: no standard errors")
    values, vectors = np.linalg.eigh(information)
    if values.min() <= 0:
        raise _Skip("the conditional likelihood is flat in some direction at its maximum: no standard errors")
    return params, (vectors / values) @ vectors.T


def _fit_conditional_logit(y, x, codes, trials, exposure, period=None) -> tuple[np.ndarray, ...]:
    """ConditionalLogit on 0/1 outcomes (with period dummies on two-way data); x is demeaned by group,
    which leaves the likelihood unchanged."""
    from statsmodels.discrete.conditional_models import ConditionalLogit

    _check_conditional_logit_size(np.bincount(codes, weights=y), np.bincount(codes).astype(float))
    k = x.shape[1]
    design = np.column_stack([_demean(x, codes), _period_dummies(period, codes)])
    model = ConditionalLogit(y, design, groups=codes)
    params, covariance = _conditional_fit(model, design, k)
    scores = np.stack([model.score_grp(g, params) for g in range(len(model._endog_grp))])
    return params[:k], np.sqrt(np.diag(covariance))[:k], _cluster_se(covariance, scores)[:k]


def _fit_binomial(y, x, codes, trials, exposure, period=None) -> tuple[np.ndarray, ...]:
    """Expand successes and failures into binary rows, then ConditionalLogit (clustered by group)."""
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
    return _fit_conditional_logit(
        binary, x[rows], codes[rows], None, None, None if period is None else period[rows]
    )


def _poisson_group_scores(y, design, codes, params, offset) -> np.ndarray:
    """Each group's score of the conditional Poisson likelihood, shape (groups with units, P):
    ``sum_i x_i (y_i - n_g p_i)`` with ``p_i`` the unit's share of its group's expected count."""
    eta = design @ params + (0.0 if offset is None else offset)
    n_groups = int(codes.max()) + 1
    top = np.full(n_groups, -np.inf)
    np.maximum.at(top, codes, eta)
    weight = np.exp(eta - top[codes])
    share = weight / np.bincount(codes, weights=weight, minlength=n_groups)[codes]
    residual = y - np.bincount(codes, weights=y, minlength=n_groups)[codes] * share
    scores = np.zeros((n_groups, design.shape[1]))
    np.add.at(scores, codes, design * residual[:, None])
    return scores[np.bincount(codes, minlength=n_groups) > 0]


def _fit_conditional_poisson(y, x, codes, trials, exposure, period=None) -> tuple[np.ndarray, ...]:
    """ConditionalPoisson (with period dummies on two-way data), with offset log(exposure) only where
    exposure varies within a group."""
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
    k = x.shape[1]
    design = np.column_stack([_demean(x, codes), _period_dummies(period, codes)])
    params, covariance = _conditional_fit(ConditionalPoisson(y, design, groups=codes, **kwargs), design, k)
    scores = _poisson_group_scores(y, design, codes, params, kwargs.get("offset"))
    return params[:k], np.sqrt(np.diag(covariance))[:k], _cluster_se(covariance, scores)[:k]


def _fit_panel_ols(y, x, codes, trials, exposure, period=None) -> tuple[np.ndarray, ...]:
    """PanelOLS with entity effects (and time effects on two-way data), unadjusted and clustered by entity.

    The panel is indexed by (group, period) where each cell holds one unit; where a cell holds several
    (a crossed factor rather than a panel) by (group, position), with the periods as ``other_effects``,
    which is the same estimator.
    """
    from linearmodels import PanelOLS

    position = pd.Series(codes).groupby(codes).cumcount().to_numpy()
    effects: dict[str, object] = {"entity_effects": True}
    if period is not None and not pd.MultiIndex.from_arrays([codes, period]).has_duplicates:
        index = pd.MultiIndex.from_arrays([codes, period], names=["group", "period"])
        effects["time_effects"] = True
    else:
        index = pd.MultiIndex.from_arrays([codes, position], names=["group", "position"])
        if period is not None:
            effects["other_effects"] = pd.DataFrame({"period": period}, index=index)
    columns = [f"x{j}" for j in range(x.shape[1])]
    exog = pd.DataFrame(x, index=index, columns=columns)
    model = PanelOLS(pd.Series(y, index=index, name="y"), exog, **effects)
    result = model.fit()
    clustered = model.fit(cov_type="clustered", cluster_entity=True)
    return (
        result.params[columns].to_numpy(),
        result.std_errors[columns].to_numpy(),
        clustered.std_errors[columns].to_numpy(),
    )


_FITTERS = {
    "conditional_logit": _fit_conditional_logit,
    "binary_expansion": _fit_binomial,
    "conditional_poisson": _fit_conditional_poisson,
    "panel_ols": _fit_panel_ols,
}
"""Each estimator's fit, by the key a family names as its ``within_estimator``: ``fit(y, x, codes, trials,
exposure, period)`` gives the slopes of x, their classical se and their se clustered by group."""


def _table(names, estimate, se, se_cluster, method, n_used, notes) -> pd.DataFrame:
    """Assemble the result table."""
    return pd.DataFrame(
        {
            "term": names,
            "estimate": estimate,
            "se": se,
            "se_cluster": se_cluster,
            "ci_low": estimate - _Z975 * se,
            "ci_high": estimate + _Z975 * se,
            "method": method,
            "n_used": n_used,
            "note": notes,
        },
        columns=list(COLUMNS),
    )


def within_for(data: GroupedData, family: str | Family) -> pd.DataFrame:
    """:func:`within_estimate` of every x of ``data`` under ``family``: two-way on two-way data."""
    return within_estimate(
        np.asarray(data.y, dtype=float),
        data.x,
        data.group,
        data.x_names,
        family,
        trials=data.trials,
        exposure=data.exposure,
        time=data.time,
    )


def two_way_mundlak_ols(
    data: GroupedData, family: str | Family = "gaussian", shares: bool | None = None
) -> pd.DataFrame:
    """Wooldridge's (2021) two-way Mundlak regression: pooled OLS of y on 1, x, the group means of x and
    the period means of x.

    On a balanced panel its x coefficients equal the two-way fixed-effects (within) estimates exactly. On
    an unbalanced panel they do not; the period dummies and each group's shares of the periods
    (:attr:`GroupedData.period_shares`, the group means of the period dummies) then take the period means'
    place (which the dummies span), and the equality holds again.

    Parameters
    ----------
    data : GroupedData
        Two-way data (``data.two_way``).
    family : str or Family, default ``"gaussian"``
        The outcome family; only one whose within estimator is OLS (the Gaussian) has this regression.
    shares : bool, optional
        Whether to use the period dummies and the shares instead of the period means of x; by default
        exactly when the panel is unbalanced. ``False`` on an unbalanced panel gives the regression that
        does not reproduce two-way fixed effects.

    Returns
    -------
    pandas.DataFrame
        One row per x (columns :data:`MUNDLAK_COLUMNS`): ``term``, ``estimate``, ``se`` (classical OLS),
        ``se_cluster`` (clustered by group, with Stata's small-sample factor ``G / (G - 1) * (N - 1) /
        (N - P)``), ``method`` (the regressors, in words) and ``n_used`` (units).

    Raises
    ------
    InputError
        If the data are one-way or the family is not Gaussian.
    """
    known = family if isinstance(family, Family) else get_family(family)
    if known.within_estimator != "panel_ols":
        raise InputError(
            f"The two-way Mundlak regression is a linear regression: it needs a Gaussian outcome, not"
            f" {known.name}."
        )
    if not data.two_way:
        raise InputError("The two-way Mundlak regression needs two-way data: give the period (time=).")
    import statsmodels.api as sm

    shares = not data.balanced if shares is None else shares
    y = np.asarray(data.y, dtype=float)
    columns = [np.ones((data.n_units, 1)), data.x, data.xbar[data.group]]
    if shares:
        columns += [np.eye(data.n_times)[data.time][:, 1:], data.period_shares[data.group]]
        method = "pooled OLS of y on 1, x, group means of x, period dummies, group shares of the periods"
    else:
        columns.append(data.xbar_time[data.time])
        method = "pooled OLS of y on 1, x, group means of x, period means of x"
    design = _independent_columns(np.column_stack(columns), data.n_x + 1)
    model = sm.OLS(y, design)
    k = slice(1, data.n_x + 1)
    classical = model.fit()
    clustered = model.fit(cov_type="cluster", cov_kwds={"groups": data.group})
    return pd.DataFrame(
        {
            "term": list(data.x_names),
            "estimate": np.asarray(classical.params)[k],
            "se": np.asarray(classical.bse)[k],
            "se_cluster": np.asarray(clustered.bse)[k],
            "method": method,
            "n_used": data.n_units,
        },
        columns=list(MUNDLAK_COLUMNS),
    )


def _independent_columns(design: np.ndarray, n_first: int) -> np.ndarray:
    """The first ``n_first`` columns of ``design`` and those of the rest that add to their span (pivoted QR
    of the rest after projecting the first out): a balanced panel's constant shares, say, are dropped."""
    first, rest = design[:, :n_first], design[:, n_first:]
    if rest.shape[1] == 0:
        return design
    rest = rest - first @ np.linalg.lstsq(first, rest, rcond=None)[0]
    _, r, pivots = scipy.linalg.qr(rest, mode="economic", pivoting=True)
    diagonal = np.abs(np.diag(r))
    scale = max(float(np.abs(design).max()), 1e-300) * np.sqrt(design.shape[0])
    rank = int(np.sum(diagonal > 1e-10 * scale))
    return np.column_stack([first, design[:, n_first:][:, np.sort(pivots[:rank])]])


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
        Indexed by ``term``: the within estimate, its classical se, its se clustered by group and its
        method, then ``<model> mean`` and ``<model> sd`` per within-effect model, and the note.
    """
    table = within.set_index("term")[["estimate", "se", "se_cluster", "method"]].rename(
        columns={"estimate": "within estimate", "se": "within se", "se_cluster": "within se (cluster)"}
    )
    for fit in fits:
        if not fit.spec.identifies_within:
            continue
        draws = fit.idata.posterior["bxy"]
        table[f"{fit.label} mean"] = [float(draws.sel(x_var=term).mean()) for term in table.index]
        table[f"{fit.label} sd"] = [float(draws.sel(x_var=term).std()) for term in table.index]
    table["note"] = within.set_index("term")["note"]
    return table
