"""Cox proportional hazards model of the treatment effect, vectorized over simulated trials.

One binary covariate, the arm: the partial likelihood then depends on the data only through the
risk sets of the distinct event times (events, patients at risk, experimental patients at
risk), which :mod:`analysis.logrank` builds for every replicate at once.  Newton-Raphson then
runs on all replicates together.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import special, stats

from analysis.logrank import _event_risk_sets, _prepare
from trials.exceptions import ConvergenceWarning

__all__ = ["CoxResult", "cox_treatment"]


@dataclass(frozen=True)
class CoxResult:
    """Result of :func:`cox_treatment`: one value per replicate.

    Fields are arrays of shape ``(R,)`` when the inputs were ``(R, N)``, numpy scalars when
    the inputs were one trial of shape ``(N,)``.

    Attributes
    ----------
    log_hr : ndarray of float
        Maximum partial likelihood estimate of the log hazard ratio, experimental / control.
        ``-inf`` or ``+inf`` where the partial likelihood is monotone (e.g. no event in one
        arm), ``nan`` where it is flat (no event time with both arms at risk).
    se_log_hr : ndarray of float
        Its standard error, from the observed information; ``inf`` where ``log_hr`` is not
        finite.
    z : ndarray of float
        Wald statistic ``log_hr / se_log_hr``; ``nan`` where ``log_hr`` is not finite.
    p_value : ndarray of float
        Two-sided Wald p-value; ``nan`` where ``z`` is.
    converged : ndarray of bool
        False where the estimate is not finite or Newton-Raphson reached ``max_iter``.
    n_iter : ndarray of int
        Newton-Raphson iterations taken (0 where no finite estimate exists).

    Notes
    -----
    The model assumes proportional hazards between the arms (within each stratum, when
    stratified), non-informative censoring, and Breslow's handling of tied event times.
    """

    log_hr: np.ndarray
    se_log_hr: np.ndarray
    z: np.ndarray
    p_value: np.ndarray
    converged: np.ndarray
    n_iter: np.ndarray

    @property
    def hazard_ratio(self) -> np.ndarray:
        """Estimated hazard ratio, ``exp(log_hr)``."""
        return np.exp(self.log_hr)

    def conf_int(self, level: float = 0.95) -> np.ndarray:
        """Wald confidence interval of the hazard ratio.

        Parameters
        ----------
        level : float
            Two-sided confidence level, in (0, 1).

        Returns
        -------
        ndarray
            ``(R, 2)`` lower and upper bounds (``(2,)`` for one trial), ``exp(log_hr -+ q *
            se_log_hr)`` with ``q`` the ``(1 + level) / 2`` normal quantile.
        """
        if not 0.0 < level < 1.0:
            raise ValueError(f"level must be in (0, 1); got {level!r}")
        q = stats.norm.ppf(0.5 + level / 2.0)
        with np.errstate(invalid="ignore"):
            half = q * np.asarray(self.se_log_hr)
            return np.exp(np.stack([self.log_hr - half, self.log_hr + half], axis=-1))

    def summary(self, level: float = 0.95) -> pd.DataFrame:
        """One row per replicate: estimate, standard error, test and confidence interval."""
        ci = np.atleast_2d(self.conf_int(level))
        pct = f"{100 * level:g}%"
        return pd.DataFrame(
            {
                "log_hr": np.atleast_1d(self.log_hr),
                "se_log_hr": np.atleast_1d(self.se_log_hr),
                "hazard_ratio": np.atleast_1d(self.hazard_ratio),
                f"hazard_ratio lower {pct}": ci[:, 0],
                f"hazard_ratio upper {pct}": ci[:, 1],
                "z": np.atleast_1d(self.z),
                "p_value": np.atleast_1d(self.p_value),
                "converged": np.atleast_1d(self.converged),
                "n_iter": np.atleast_1d(self.n_iter),
            },
            index=pd.RangeIndex(np.size(self.log_hr), name="replicate"),
        )


def cox_treatment(
    time: ArrayLike,
    event: ArrayLike,
    group: ArrayLike,
    valid: ArrayLike | None = None,
    strata: ArrayLike | None = None,
    max_iter: int = 50,
    tol: float = 1e-10,
) -> CoxResult:
    """Cox model with the arm as only covariate, fitted to each replicate trial.

    Maximizes Breslow's partial likelihood

    .. math:: \\ell(\\beta) = \\sum_j \\left[ d_{1j}\\,\\beta
              - d_j \\log\\left(n_{0j} + n_{1j} e^{\\beta}\\right) \\right]

    over the distinct event times :math:`j` (:math:`d_j` events, :math:`d_{1j}` of them in
    the experimental arm, :math:`n_{0j}` control and :math:`n_{1j}` experimental patients at
    risk), by Newton-Raphson from :math:`\\beta = 0` on all replicates at once.  A stratified
    model has a separate baseline hazard per stratum: the sum also runs over strata.  When no
    two events share a time, Breslow's and Efron's partial likelihoods are equal, so the
    estimates equal those of lifelines' ``CoxPHFitter`` (Efron); with tied event times they
    differ slightly (statsmodels' ``PHReg(ties="breslow")`` gives these).

    Parameters
    ----------
    time : array_like of float, shape (R, N) or (N,)
        Time to event or censoring, ``>= 0``; ignored for patients not ``valid``.
    event : array_like of bool, shape like `time`
        True where the time is an event, False where it is a censoring.
    group : array_like of bool, shape like `time`
        True for the experimental arm, False for the control arm.
    valid : array_like of bool, shape like `time`, optional
        Patients included in the analysis (default: all); the others are ignored completely.
    strata : array_like of int, shape like `time`, optional
        Stratum codes ``0 .. S-1`` for a stratified model.
    max_iter : int
        Most Newton-Raphson iterations.
    tol : float
        Convergence when the Newton step ``|U / I|`` is at most `tol`.

    Returns
    -------
    CoxResult
        Arrays of shape ``(R,)`` for 2-D inputs; numpy scalars for 1-D inputs (one trial).

    Raises
    ------
    ValueError
        If the inputs do not have one shape, are not 1-D or 2-D, or a valid patient has a
        negative or ``nan`` time or a negative stratum code.

    Warns
    -----
    ConvergenceWarning
        When some replicate has no finite estimate (monotone or flat partial likelihood, e.g.
        no event in one arm) or did not converge in `max_iter` iterations; those replicates
        have ``converged`` False.

    Notes
    -----
    A finite estimate exists exactly when the score :math:`U(\\beta)` changes sign, i.e. when
    :math:`U(-\\infty) > 0 > U(+\\infty)`; this is checked first, so no iteration is spent on
    replicates whose estimate is infinite.  Steps are halved while they do not decrease
    :math:`|U|`, which makes Newton-Raphson safe from overshooting on a steep likelihood.

    References
    ----------
    .. [1] Cox, D. R. (1972). Regression models and life-tables. *Journal of the Royal
       Statistical Society B* 34(2), 187-220.
    .. [2] Breslow, N. (1974). Covariance analysis of censored survival data. *Biometrics*
       30(1), 89-99.
    .. [3] Efron, B. (1977). The efficiency of Cox's likelihood function for censored data.
       *Journal of the American Statistical Association* 72(359), 557-565.

    Examples
    --------
    >>> import numpy as np
    >>> from analysis.cox import cox_treatment
    >>> time = np.array([1.0, 2.0, 2.5, 3.0, 4.0, 5.0])
    >>> event = np.array([True, True, False, True, True, True])
    >>> group = np.array([False, True, False, False, True, True])
    >>> res = cox_treatment(time, event, group)
    >>> round(float(res.log_hr), 4), bool(res.converged)
    (-1.0731, True)
    """
    if max_iter < 0:
        raise ValueError(f"max_iter must be >= 0; got {max_iter!r}")
    one_trial, (t, e, g, v, s) = _prepare(time, event, group, valid, strata)
    n_rep = t.shape[0]
    rows, d, n, n1 = _event_risk_sets(t, e, g, v, s)
    if s is not None:  # the risk sets come stratum by stratum within blocks of replicates
        order = np.argsort(rows, kind="stable")
        rows, d, n, n1 = rows[order], d[order], n[order], n1[order]
    row_sum = _RowSum(rows, n_rep)
    n0 = n - n1
    observed = e & g
    if v is not None:
        observed &= v
    observed = np.count_nonzero(observed, axis=1).astype(np.float64)

    # U(-inf) and U(+inf): only risk sets with a single arm keep a non-zero share.
    score_low = observed - row_sum(d * (n0 == 0))
    score_high = observed - row_sum(d * (n1 > 0))
    finite = (score_low > 0) & (score_high < 0)
    log_hr = np.where(
        finite,
        0.0,
        np.where(score_low <= 0, np.where(score_high < score_low, -np.inf, np.nan), np.inf),
    )

    with np.errstate(divide="ignore"):
        log_odds = np.log(n1)
        log_odds -= np.log(n0)  # of being in the experimental arm at beta = 0
    work = np.empty_like(log_odds)

    def score_information(beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = np.take(beta, rows, out=work)
        p += log_odds
        special.expit(p, out=p)  # share of the experimental arm in the risk set
        score = observed - row_sum(d * p)
        p *= 1.0 - p
        p *= d
        return score, row_sum(p)

    beta = np.zeros(n_rep)
    n_iter = np.zeros(n_rep, dtype=np.int64)
    converged = np.zeros(n_rep, dtype=bool)
    active = finite.copy()
    score, information = score_information(beta)
    for iteration in range(max_iter + 1):
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(active, score / information, 0.0)
        done = active & (np.abs(step) <= tol)
        beta[done] += step[done]
        n_iter += done
        converged |= done
        active &= ~done
        if iteration == max_iter or not active.any():
            break
        step[~active] = 0.0
        new_score, new_information = score_information(beta + step)
        # Step halving: a Newton step on a monotone score must decrease |U|.
        for _ in range(60):
            worse = active & ~(np.abs(new_score) < np.abs(score))
            if not worse.any():
                break
            step[worse] *= 0.5
            new_score, new_information = score_information(beta + step)
        beta += step
        n_iter += active
        score, information = new_score, new_information

    score, information = score_information(beta)
    log_hr = np.where(finite, beta, log_hr)
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.where(finite, 1.0 / np.sqrt(information), np.inf)
        z = np.where(finite, log_hr / se, np.nan)
    p_value = special.erfc(np.abs(z) / np.sqrt(2.0))

    n_infinite = int(np.count_nonzero(~finite))
    n_slow = int(np.count_nonzero(finite & ~converged))
    if n_infinite or n_slow:
        problems = []
        if n_infinite:
            problems.append(
                f"{n_infinite} of {n_rep} replicates have no finite estimate (monotone or flat "
                "partial likelihood, e.g. no event in one arm): log_hr is -inf, +inf or nan"
            )
        if n_slow:
            problems.append(
                f"{n_slow} of {n_rep} replicates did not converge in {max_iter} iterations"
            )
        warnings.warn(
            "; ".join(problems) + "; converged is False for them.",
            ConvergenceWarning,
            stacklevel=2,
        )

    fields = (log_hr, se, z, p_value, converged, n_iter)
    if one_trial:
        fields = tuple(f[0] for f in fields)
    return CoxResult(*fields)


class _RowSum:
    """Sums of per-risk-set values by replicate, for risk sets sorted by replicate."""

    def __init__(self, rows: np.ndarray, n_rep: int):
        starts = np.searchsorted(rows, np.arange(n_rep))
        ends = np.append(starts[1:], rows.size)
        self.nonempty = np.flatnonzero(ends > starts)
        self.starts = starts[self.nonempty]
        self.n_rep = n_rep

    def __call__(self, values: np.ndarray) -> np.ndarray:
        sums = np.zeros(self.n_rep)
        if self.starts.size:
            sums[self.nonempty] = np.add.reduceat(values, self.starts)
        return sums
