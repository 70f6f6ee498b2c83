"""Average hazard ratio (Kalbfleisch & Prentice 1981), vectorized over simulated trials.

The average hazard ratio up to a horizon :math:`\\tau` summarizes the ratio of the arms'
hazards by a weighted average that stays meaningful when the hazards are not proportional:
each time contributes in proportion to the chance :math:`S_0(t)S_1(t)` that a patient of each
arm is still event-free.  Every input is an ``(R, N)`` array, one row per replicate; each row
is sorted once (the risk-set scan of :mod:`analysis.logrank`) and the rest are cumulative sums
along the rows: no Python loop runs over patients or single replicates (only over blocks of
about ``2**16`` patient records, to keep the working memory small).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import special, stats

from analysis.logrank import _prepare, _TieGroups
from analysis.weighted_logrank import _left_km_log, _risk_sets

__all__ = ["AHRResult", "average_hazard_ratio"]


@dataclass(frozen=True)
class AHRResult:
    """Result of :func:`average_hazard_ratio`: one value per replicate.

    Fields are arrays of shape ``(R,)`` when the inputs were ``(R, N)``, numpy scalars when
    the inputs were one trial of shape ``(N,)``.  "Experimental" is ``group`` True.

    Attributes
    ----------
    tau : float
        The horizon :math:`\\tau`.
    theta : ndarray of float
        :math:`\\hat\\theta`, the experimental arm's weighted share of the summed hazards
        (see :func:`average_hazard_ratio`); ``nan`` where no event occurs by `tau`.
    ahr : ndarray of float
        Average hazard ratio (experimental / control), ``theta / (1 - theta)``; below 1 when
        the experimental arm has the lower hazard.  ``0`` or ``inf`` where one arm has no
        event by `tau`, ``nan`` where neither has.
    log_ahr : ndarray of float
        ``log(ahr)``.
    se_log_ahr : ndarray of float
        Delta-method standard error of ``log_ahr``; ``nan`` where ``log_ahr`` is not finite
        or the variance estimate is 0.
    z : ndarray of float
        ``log_ahr / se_log_ahr``: negative when the experimental arm has the lower hazard
        (the sign convention of the log-rank z); ``nan`` where ``se_log_ahr`` is.  A ``nan``
        never compares true, so a rule ``z < -c`` never rejects for such a replicate.
    events : ndarray of int
        Events in both arms at times ``<= tau``.

    Notes
    -----
    ``p_value`` and ``conf_int`` use the normal approximation to the distribution of
    ``log_ahr``.
    """

    tau: float
    theta: np.ndarray
    ahr: np.ndarray
    log_ahr: np.ndarray
    se_log_ahr: np.ndarray
    z: np.ndarray
    events: np.ndarray

    @property
    def p_value(self) -> np.ndarray:
        """Two-sided p-value of ``z``, ``P(|Z| > |z|)``; ``nan`` where ``z`` is."""
        return special.erfc(np.abs(self.z) / np.sqrt(2.0))

    def conf_int(self, level: float = 0.95) -> np.ndarray:
        """Wald confidence interval of the average hazard ratio, on the ratio scale.

        Parameters
        ----------
        level : float
            Two-sided confidence level, in (0, 1).

        Returns
        -------
        ndarray
            ``(R, 2)`` lower and upper bounds (``(2,)`` for one trial),
            ``exp(log_ahr -+ q se_log_ahr)`` with ``q`` the ``(1 + level) / 2`` normal
            quantile.

        Raises
        ------
        ValueError
            If `level` is not in (0, 1).
        """
        if not 0.0 < level < 1.0:
            raise ValueError(f"level must be in (0, 1); got {level!r}")
        half = stats.norm.ppf(0.5 + level / 2.0) * np.asarray(self.se_log_ahr)
        log_ahr = np.asarray(self.log_ahr)
        return np.exp(np.stack([log_ahr - half, log_ahr + half], axis=-1))

    def summary(self, level: float = 0.95) -> pd.DataFrame:
        """One row per replicate: the estimate, its test and its confidence interval."""
        ci = np.atleast_2d(self.conf_int(level))
        pct = f"{100 * level:g}%"
        return pd.DataFrame(
            {
                "ahr": np.atleast_1d(self.ahr),
                "log_ahr": np.atleast_1d(self.log_ahr),
                "se_log_ahr": np.atleast_1d(self.se_log_ahr),
                "z": np.atleast_1d(self.z),
                "p_value": np.atleast_1d(self.p_value),
                f"ci_lower_{pct}": ci[:, 0],
                f"ci_upper_{pct}": ci[:, 1],
                "events": np.atleast_1d(self.events),
            },
            index=pd.RangeIndex(ci.shape[0], name="replicate"),
        ).assign(tau=self.tau)


def average_hazard_ratio(
    time: ArrayLike,
    event: ArrayLike,
    group: ArrayLike,
    tau: float,
    valid: ArrayLike | None = None,
) -> AHRResult:
    """Kalbfleisch-Prentice average hazard ratio up to `tau`, on each replicate trial.

    With :math:`\\hat S_a(t-)` the left-continuous Kaplan-Meier curve of arm :math:`a`
    (1 experimental, 0 control), :math:`d_{aj}` events among :math:`n_{aj}` patients of arm
    :math:`a` at risk at the distinct event time :math:`t_j \\le \\tau`, the Nelson-Aalen
    increments :math:`d\\hat\\Lambda_{aj} = d_{aj}/n_{aj}` (0 where :math:`d_{aj} = 0`) and the
    weight :math:`W_j = \\hat S_0(t_j-)\\,\\hat S_1(t_j-)`,

    .. math:: \\hat\\theta = \\frac{A}{B}, \\quad
              A = \\sum_j W_j\\,d\\hat\\Lambda_{1j}, \\quad
              B = \\sum_j W_j\\,(d\\hat\\Lambda_{0j} + d\\hat\\Lambda_{1j}), \\qquad
              \\widehat{\\mathrm{AHR}} = \\frac{\\hat\\theta}{1 - \\hat\\theta}.

    Under proportional hazards with ratio :math:`\\psi`, :math:`\\theta = \\psi/(1+\\psi)` and
    the AHR is :math:`\\psi` whatever the weight.

    Variance (delta method on the influence function).  Linearizing
    :math:`\\hat S_a(t-)/S_a(t-) - 1 \\approx -(\\hat\\Lambda_a - \\Lambda_a)(t-)` and
    exchanging the order of summation gives
    :math:`\\hat\\theta - \\theta \\approx B^{-1}\\sum_a \\sum_j h_{aj}\\,
    (d\\hat\\Lambda_{aj} - d\\Lambda_{aj})` with

    .. math:: h_{1j} = (1-\\hat\\theta)\\,W_j + G_j, \\quad h_{0j} = -\\hat\\theta\\,W_j + G_j,
              \\quad G_j = \\hat\\theta\\,C_{0j} - (1-\\hat\\theta)\\,C_{1j}, \\quad
              C_{aj} = \\sum_{k > j} W_k\\,d\\hat\\Lambda_{ak},

    (:math:`C_{aj}` the weighted hazard after :math:`t_j`, up to `tau`; the :math:`C` terms
    carry the randomness of the weight).  The Nelson-Aalen increments are uncorrelated with
    variance estimated by :math:`d_{aj}/n_{aj}^2`, so

    .. math:: \\widehat{\\mathrm{Var}}(\\hat\\theta) = \\frac{1}{B^2}\\sum_j \\Big(
              h_{1j}^2\\,\\frac{d_{1j}}{n_{1j}^2} + h_{0j}^2\\,\\frac{d_{0j}}{n_{0j}^2}\\Big),
              \\qquad
              \\mathrm{se}(\\log\\widehat{\\mathrm{AHR}}) =
              \\frac{\\sqrt{\\widehat{\\mathrm{Var}}(\\hat\\theta)}}
              {\\hat\\theta\\,(1-\\hat\\theta)},

    since :math:`d\\log\\mathrm{AHR}/d\\theta = 1/(\\theta(1-\\theta))`.  The test statistic is
    ``z = log_ahr / se_log_ahr``, which is asymptotically standard normal when the arms have
    the same hazard on :math:`[0, \\tau]`.

    Parameters
    ----------
    time : array_like of float, shape (R, N) or (N,)
        Time to event or censoring, ``>= 0`` (``+inf`` allowed); ignored where not `valid`.
    event : array_like of bool, shape like `time`
        True where the time is an event, False where it is a censoring.
    group : array_like of bool, shape like `time`
        True for the experimental arm, False for the control arm.
    tau : float
        The horizon, ``> 0`` (``+inf``: the whole follow-up).  Events at times ``<= tau``
        count.
    valid : array_like of bool, shape like `time`, optional
        Patients included in the analysis; default every patient.

    Returns
    -------
    AHRResult
        Arrays of shape ``(R,)`` for 2-D inputs; numpy scalars for 1-D inputs.

    Raises
    ------
    ValueError
        If `tau` is not a number ``> 0``, or the inputs are malformed (see
        :func:`analysis.logrank.logrank_test`).

    Notes
    -----
    Patients censored at an event time are at risk at that time.  The weight uses the
    Kaplan-Meier curves just before each time (left-continuous), so an event does not
    down-weight itself; once an arm's curve reaches 0 the later times get weight 0.  Where
    one arm has no event by `tau` the estimate is 0 or ``inf`` and no test is done (``z`` is
    ``nan``).  Choose `tau` where both arms still have patients at risk; the weight then
    keeps the late, poorly estimated hazards from dominating.

    The variance :math:`d/n^2` of a Nelson-Aalen increment is that of continuous time.  With
    many tied event times (coarsely grouped times) it overstates the binomial
    :math:`d(n-d)/n^3` of grouped data, and the standard error is conservative: by about 8%
    when a fifth of the patients at risk have an event at each time.

    Cost: one sort of each replicate (the risk-set scan shared with
    :func:`analysis.logrank.logrank_test`) and a few cumulative sums along the sorted rows, in
    blocks of about ``2**16`` patient records.

    References
    ----------
    .. [1] Kalbfleisch, J. D. and Prentice, R. L. (1981). Estimation of the average hazard
       ratio. *Biometrika* 68(1), 105-112.
    .. [2] Schemper, M., Wakounig, S. and Heinze, G. (2009). The estimation of average
       hazard ratios by weighted Cox regression. *Statistics in Medicine* 28(19), 2473-2489.
    .. [3] Andersen, P. K., Borgan, O., Gill, R. D. and Keiding, N. (1993). *Statistical
       Models Based on Counting Processes*. Springer, New York; section IV.1 (the
       Nelson-Aalen estimator and its variance).

    Examples
    --------
    >>> import numpy as np
    >>> from analysis.ahr import average_hazard_ratio
    >>> time = np.array([1.0, 2.0, 3.0, 4.0, 2.0, 3.0, 5.0, 6.0])
    >>> event = np.array([True, True, False, True, True, True, True, False])
    >>> group = np.array([False] * 4 + [True] * 4)
    >>> res = average_hazard_ratio(time, event, group, tau=5.0)
    >>> round(float(res.ahr), 4), int(res.events)
    (0.4167, 6)
    >>> round(float(res.se_log_ahr), 4), round(float(res.z), 4)
    (1.0063, -0.87)
    """
    try:
        tau = float(tau)
    except (TypeError, ValueError) as err:
        raise ValueError(f"tau must be a number > 0; got {tau!r}") from err
    if not tau > 0:
        raise ValueError(f"tau must be a number > 0; got {tau!r}")
    one_trial, (t, e, g, v, _) = _prepare(time, event, group, valid, None)
    # Events after tau do not enter the integrals: make them censorings (the tie groups, which
    # depend only on the times, do not change).
    e = e & (t <= tau)
    if v is not None:
        e &= v
    events = np.count_nonzero(e, axis=1)
    n_rep = t.shape[0]
    a_sum = np.zeros(n_rep)
    b_sum = np.zeros(n_rep)
    var_sum = np.zeros(n_rep)
    for rows, groups, d1, _scan in _risk_sets(t, e, g, v, None):
        a, b, var_num = _block_sums(groups, d1)
        a_sum[rows] = a
        b_sum[rows] = b
        var_sum[rows] = var_num
    with np.errstate(divide="ignore", invalid="ignore"):
        theta = np.where(b_sum > 0, a_sum / b_sum, np.nan)
        ahr = theta / (1.0 - theta)
        log_ahr = np.log(ahr)
        se_theta = np.sqrt(var_sum) / b_sum
        testable = np.isfinite(log_ahr) & (var_sum > 0)
        se = np.where(testable, se_theta / (theta * (1.0 - theta)), np.nan)
        z = log_ahr / se
    fields = (theta, ahr, log_ahr, se, z, events)
    if one_trial:
        fields = tuple(f[0] for f in fields)
    return AHRResult(tau, *fields)


def _block_sums(groups: _TieGroups, d1: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``A``, ``B`` and ``B**2 Var(theta)`` of each row of one block of tie groups."""
    d, n, n1, row_first = groups.d, groups.n, groups.n1, groups.row_first
    d0 = d - d1
    n0 = n - n1
    # n_a <= 0 only for the excluded patients' entry, where d_a == 0.
    log_s1 = _left_km_log(_TieGroups(d1, n1, n1, row_first))
    log_s0 = _left_km_log(_TieGroups(d0, n0, n0, row_first))
    w = np.exp(log_s0 + log_s1)
    n1_safe = np.maximum(n1, 1.0)
    n0_safe = np.maximum(n0, 1.0)
    dl1 = d1 / n1_safe
    dl0 = d0 / n0_safe
    wdl1 = w * dl1
    wdl0 = w * dl0
    a = groups.sum_by_replicate(wdl1)
    b = a + groups.sum_by_replicate(wdl0)
    with np.errstate(divide="ignore", invalid="ignore"):
        theta = np.where(b > 0, a / b, 0.0)
    counts = np.diff(row_first, append=d.size)
    theta_e = np.repeat(theta, counts)
    c1 = _suffix_after(wdl1, row_first, counts)
    c0 = _suffix_after(wdl0, row_first, counts)
    g_term = theta_e * c0 - (1.0 - theta_e) * c1
    h1 = (1.0 - theta_e) * w + g_term
    h0 = g_term - theta_e * w
    terms = h1**2 * (dl1 / n1_safe) + h0**2 * (dl0 / n0_safe)
    return a, b, groups.sum_by_replicate(terms)


def _suffix_after(values: np.ndarray, row_first: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``sum_{k > j} values[k]`` over the later entries ``k`` of the same row as ``j``.

    Rows are ragged when times tie; they are then padded with zeros to a rectangle.
    """
    size = values.size
    m = row_first.size
    width = int(counts.max())
    if size == m * width:
        padded = values.reshape(m, width)
        rows = pos = None
    else:
        rows = np.repeat(np.arange(m), counts)
        pos = np.arange(size) - np.repeat(row_first, counts)
        padded = np.zeros((m, width))
        padded[rows, pos] = values
    after = np.zeros_like(padded)
    np.cumsum(padded[:, :0:-1], axis=1, out=after[:, -2::-1])
    if rows is None:
        return after.reshape(-1)
    return after[rows, pos]
