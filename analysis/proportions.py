"""Tests of a binary endpoint between two arms, vectorized over simulated trials.

Every input is an ``(R, N)`` array (``R`` replicate trials of ``N`` patients) or one trial of
shape ``(N,)``; the statistics are computed for all replicates at once, with no Python loop over
patients or replicates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import special, stats

__all__ = ["CMHResult", "ProportionsResult", "cmh_test", "proportions_test"]


def _two_sided_p(z: np.ndarray) -> np.ndarray:
    """Two-sided normal p-value of ``z`` (``nan`` stays ``nan``)."""
    return special.erfc(np.abs(z) / np.sqrt(2.0))


@dataclass(frozen=True)
class ProportionsResult:
    """Result of :func:`proportions_test`: one value per replicate.

    Fields are arrays of shape ``(R,)`` for ``(R, N)`` inputs, numpy scalars for one trial.

    Attributes
    ----------
    p_exp, p_ctl : ndarray of float
        Response rates of the experimental and the control arm (``nan`` for an empty arm).
    difference : ndarray of float
        ``p_exp - p_ctl``.
    se : ndarray of float
        Unpooled standard error of the difference,
        ``sqrt(p_exp (1 - p_exp) / n_exp + p_ctl (1 - p_ctl) / n_ctl)``, used by
        :meth:`conf_int`.
    z : ndarray of float
        Two-sample z statistic with the pooled variance under the null,
        ``difference / sqrt(p (1 - p) (1 / n_exp + 1 / n_ctl))`` with ``p`` the pooled rate
        (as statsmodels' ``proportions_ztest``); ``nan`` where that variance is 0 (pooled rate
        0 or 1) or an arm is empty.  Positive when the experimental arm responds more.
    n_exp, n_ctl : ndarray of int
        Patients in each arm.
    """

    p_exp: np.ndarray
    p_ctl: np.ndarray
    difference: np.ndarray
    se: np.ndarray
    z: np.ndarray
    n_exp: np.ndarray
    n_ctl: np.ndarray

    @property
    def p_value(self) -> np.ndarray:
        """Two-sided p-value of ``z``."""
        return _two_sided_p(self.z)

    def conf_int(self, level: float = 0.95) -> np.ndarray:
        """Wald confidence interval of the difference, with the unpooled ``se``.

        Parameters
        ----------
        level : float
            Two-sided confidence level, in (0, 1).

        Returns
        -------
        ndarray
            ``(R, 2)`` lower and upper bounds (``(2,)`` for one trial).
        """
        q = _normal_quantile(level)
        half = q * np.asarray(self.se)
        return np.stack([self.difference - half, self.difference + half], axis=-1)

    def summary(self, level: float = 0.95) -> pd.DataFrame:
        """One row per replicate: rates, difference, confidence interval and test."""
        ci = np.atleast_2d(self.conf_int(level))
        pct = f"{100 * level:g}%"
        return pd.DataFrame(
            {
                "n_exp": np.atleast_1d(self.n_exp),
                "n_ctl": np.atleast_1d(self.n_ctl),
                "p_exp": np.atleast_1d(self.p_exp),
                "p_ctl": np.atleast_1d(self.p_ctl),
                "difference": np.atleast_1d(self.difference),
                "se": np.atleast_1d(self.se),
                f"difference lower {pct}": ci[:, 0],
                f"difference upper {pct}": ci[:, 1],
                "z": np.atleast_1d(self.z),
                "p_value": np.atleast_1d(self.p_value),
            },
            index=pd.RangeIndex(np.size(self.z), name="replicate"),
        )


@dataclass(frozen=True)
class CMHResult:
    """Result of :func:`cmh_test`: one value per replicate.

    Fields are arrays of shape ``(R,)`` for ``(R, N)`` inputs, numpy scalars for one trial.

    Attributes
    ----------
    observed_minus_expected : ndarray of float
        Experimental-arm responders minus their expectation given the margins of each
        stratum's 2x2 table, summed over strata.
    variance : ndarray of float
        Its hypergeometric variance, summed over strata.
    z : ndarray of float
        ``observed_minus_expected / sqrt(variance)``, positive when the experimental arm has
        the higher odds of response; ``nan`` where ``variance`` is 0.
    common_odds_ratio : ndarray of float
        Mantel-Haenszel estimate of the common odds ratio (experimental / control); ``inf``
        or ``nan`` where its denominator is 0.
    """

    observed_minus_expected: np.ndarray
    variance: np.ndarray
    z: np.ndarray
    common_odds_ratio: np.ndarray

    @property
    def chi2(self) -> np.ndarray:
        """Cochran-Mantel-Haenszel chi-squared statistic (1 df, no continuity correction)."""
        return self.z**2

    @property
    def p_value(self) -> np.ndarray:
        """Two-sided p-value, ``P(chi2_1 > chi2)``."""
        return _two_sided_p(self.z)

    def summary(self) -> pd.DataFrame:
        """One row per replicate with every statistic of the test."""
        return pd.DataFrame(
            {
                "observed_minus_expected": np.atleast_1d(self.observed_minus_expected),
                "variance": np.atleast_1d(self.variance),
                "z": np.atleast_1d(self.z),
                "chi2": np.atleast_1d(self.chi2),
                "p_value": np.atleast_1d(self.p_value),
                "common_odds_ratio": np.atleast_1d(self.common_odds_ratio),
            },
            index=pd.RangeIndex(np.size(self.z), name="replicate"),
        )


def proportions_test(
    response: ArrayLike, group: ArrayLike, valid: ArrayLike | None = None
) -> ProportionsResult:
    """Two-sample test of proportions (pooled-variance z test) on each replicate trial.

    Parameters
    ----------
    response : array_like of bool, shape (R, N) or (N,)
        True for a responder.
    group : array_like of bool, shape like `response`
        True for the experimental arm, False for the control arm.
    valid : array_like of bool, shape like `response`, optional
        Patients included (default: all); the others are ignored.

    Returns
    -------
    ProportionsResult
        Arrays of shape ``(R,)`` for 2-D inputs; numpy scalars for 1-D inputs (one trial).

    Raises
    ------
    ValueError
        If the inputs do not have one shape or are not 1-D or 2-D.

    Notes
    -----
    The z statistic uses the variance under the null hypothesis of equal rates (pooled rate),
    as statsmodels' ``proportions_ztest`` and the uncorrected Pearson chi-squared test
    (``z**2``); the confidence interval uses the unpooled variance (Wald).  Both rely on the
    normal approximation, poor with few responders or non-responders.

    References
    ----------
    .. [1] Agresti, A. (2013). *Categorical Data Analysis*, 3rd ed., section 3.1. Wiley.
    .. [2] Fleiss, J. L., Levin, B. and Paik, M. C. (2003). *Statistical Methods for Rates and
       Proportions*, 3rd ed., chapter 2. Wiley.

    Examples
    --------
    >>> import numpy as np
    >>> from analysis.proportions import proportions_test
    >>> response = np.array([1, 1, 1, 0, 1, 0, 0, 0], dtype=bool)
    >>> group = np.array([1, 1, 1, 1, 0, 0, 0, 0], dtype=bool)
    >>> res = proportions_test(response, group)
    >>> float(res.difference), round(float(res.z), 4)
    (0.5, 1.4142)
    """
    one_trial, (resp, g), v = _as_replicates(("response", response), ("group", group), valid=valid)
    exp = g if v is None else g & v
    ctl = ~g if v is None else ~g & v
    n_exp = np.count_nonzero(exp, axis=1)
    n_ctl = np.count_nonzero(ctl, axis=1)
    x_exp = np.count_nonzero(resp & exp, axis=1)
    x_ctl = np.count_nonzero(resp & ctl, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_exp = x_exp / n_exp
        p_ctl = x_ctl / n_ctl
        difference = p_exp - p_ctl
        se = np.sqrt(p_exp * (1.0 - p_exp) / n_exp + p_ctl * (1.0 - p_ctl) / n_ctl)
        pooled = (x_exp + x_ctl) / (n_exp + n_ctl)
        null_var = pooled * (1.0 - pooled) * (1.0 / n_exp + 1.0 / n_ctl)
        z = np.where(null_var > 0, difference / np.sqrt(null_var), np.nan)
    fields = (p_exp, p_ctl, difference, se, z, n_exp, n_ctl)
    if one_trial:
        fields = tuple(f[0] for f in fields)
    return ProportionsResult(*fields)


def cmh_test(
    response: ArrayLike,
    group: ArrayLike,
    strata: ArrayLike,
    valid: ArrayLike | None = None,
) -> CMHResult:
    """Cochran-Mantel-Haenszel test of a binary endpoint stratified by a factor.

    In each stratum ``k`` the 2x2 table has ``a_k`` experimental responders, ``n1_k``
    experimental patients, ``m1_k`` responders and ``n_k`` patients.  Under the null of no
    association in any stratum, ``a_k`` is hypergeometric with mean ``n1_k m1_k / n_k`` and
    variance ``n1_k n0_k m1_k m0_k / (n_k^2 (n_k - 1))``.  The test sums ``a_k - E[a_k]`` and the
    variances over strata: ``z = sum(a - E) / sqrt(sum(var))``, ``chi2 = z**2`` (no continuity
    correction, as statsmodels' ``StratifiedTable.test_null_odds(correction=False)``).

    Parameters
    ----------
    response : array_like of bool, shape (R, N) or (N,)
        True for a responder.
    group : array_like of bool, shape like `response`
        True for the experimental arm, False for the control arm.
    strata : array_like of int, shape like `response`
        Stratum codes ``0 .. S-1``.
    valid : array_like of bool, shape like `response`, optional
        Patients included (default: all); the others are ignored.

    Returns
    -------
    CMHResult
        Arrays of shape ``(R,)`` for 2-D inputs; numpy scalars for 1-D inputs (one trial).

    Raises
    ------
    ValueError
        If the inputs do not have one shape, are not 1-D or 2-D, or a valid patient has a
        negative stratum code.

    Notes
    -----
    A stratum with fewer than two patients carries no information and adds nothing (its
    variance is 0 and so is ``a - E``).  The Mantel-Haenszel common odds ratio is
    ``sum(a_k d_k / n_k) / sum(b_k c_k / n_k)`` with ``b`` experimental non-responders, ``c``
    control responders and ``d`` control non-responders.

    References
    ----------
    .. [1] Mantel, N. and Haenszel, W. (1959). Statistical aspects of the analysis of data
       from retrospective studies of disease. *Journal of the National Cancer Institute*
       22(4), 719-748.
    .. [2] Cochran, W. G. (1954). Some methods for strengthening the common chi-squared
       tests. *Biometrics* 10(4), 417-451.

    Examples
    --------
    >>> import numpy as np
    >>> from analysis.proportions import cmh_test
    >>> response = np.array([1, 1, 0, 0, 1, 0, 1, 1, 0, 0], dtype=bool)
    >>> group = np.array([1, 1, 1, 0, 0, 1, 1, 0, 0, 0], dtype=bool)
    >>> strata = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    >>> res = cmh_test(response, group, strata)
    >>> round(float(res.z), 4), round(float(res.common_odds_ratio), 4)
    (0.4714, 2.0)
    """
    one_trial, (resp, g, s), v = _as_replicates(
        ("response", response), ("group", group), ("strata", strata), valid=valid
    )
    s = s.astype(np.int64, copy=False)
    negative = s < 0 if v is None else (s < 0) & v
    if negative.any():
        raise ValueError("strata must be integer codes >= 0")
    n_rep = s.shape[0]
    n_strata = int(s.max(where=True if v is None else v, initial=0)) + 1
    # One bincount over (replicate, stratum, arm, response) cells; excluded patients go to
    # one extra cell past the end.
    cell = np.arange(n_rep, dtype=np.int64)[:, None] * n_strata
    cell = cell + s
    cell *= 4
    cell += 2 * g
    cell += resp
    if v is not None:
        np.putmask(cell, ~v, 4 * n_rep * n_strata)
    counts = np.bincount(cell.ravel(), minlength=4 * n_rep * n_strata + 1)
    counts = counts[: 4 * n_rep * n_strata].reshape(n_rep, n_strata, 4).astype(np.float64)
    d, c, b, a = (counts[..., k] for k in range(4))  # ctl non-resp, ctl resp, exp ...
    n = a + b + c + d
    n1 = a + b
    m1 = a + c
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = np.where(n > 0, n1 * m1 / n, 0.0)
        var = np.where(n > 1, n1 * (n - n1) * m1 * (n - m1) / (n * n * (n - 1.0)), 0.0)
        observed_minus_expected = (a - expected).sum(axis=1)
        variance = var.sum(axis=1)
        z = np.where(variance > 0, observed_minus_expected / np.sqrt(variance), np.nan)
        numerator = np.where(n > 0, a * d / n, 0.0).sum(axis=1)
        denominator = np.where(n > 0, b * c / n, 0.0).sum(axis=1)
        common_odds_ratio = numerator / denominator
    fields = (observed_minus_expected, variance, z, common_odds_ratio)
    if one_trial:
        fields = tuple(f[0] for f in fields)
    return CMHResult(*fields)


def _normal_quantile(level: float) -> float:
    """Two-sided normal quantile of a confidence `level`."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1); got {level!r}")
    return float(stats.norm.ppf(0.5 + level / 2.0))


def _as_replicates(
    *named: tuple[str, ArrayLike], valid: ArrayLike | None
) -> tuple[bool, list[np.ndarray], np.ndarray | None]:
    """Check that the arrays share one 1-D or 2-D shape and return them as 2-D.

    The first array fixes the shape; the first two (response, group) are made bool.  Returns
    whether the input was one trial, the arrays, and ``valid`` (None when not given).
    """
    first_name, first = named[0]
    shape = np.shape(first)
    if len(shape) not in (1, 2):
        raise ValueError(
            f"{first_name} must be 1-D (one trial) or 2-D (replicates, patients); "
            f"got {len(shape)} dimensions"
        )
    one_trial = len(shape) == 1

    def as_2d(name: str, a: ArrayLike, make_bool: bool) -> np.ndarray:
        arr = np.asarray(a)
        if arr.shape != shape:
            raise ValueError(
                f"{name} has shape {arr.shape}; expected {shape}, the shape of {first_name}"
            )
        if make_bool:
            arr = arr.astype(bool, copy=False)
        return arr[None, :] if one_trial else arr

    arrays = [as_2d(name, a, k < 2) for k, (name, a) in enumerate(named)]
    v = None if valid is None else as_2d("valid", valid, True)
    return one_trial, arrays, v
