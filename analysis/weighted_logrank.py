"""Fleming-Harrington weighted log-rank tests and the MaxCombo test, vectorized over trials.

Under non-proportional hazards (delayed effects, crossing or converging curves) the log-rank
test loses power; weighting the event times by a function of the pooled survival estimate
puts the emphasis on early, middle or late differences.  :func:`weighted_logrank_test`
computes one Fleming-Harrington FH(rho, gamma) test on every replicate trial, and
:func:`maxcombo_test` combines several of them into the MaxCombo test of Lin et al. (2020).

The risk sets come from the scan of :mod:`analysis.logrank` (one sort per replicate, no loop
over patients); the weights need the pooled Kaplan-Meier curve of each replicate, a cumulative
sum over its sorted event times, also computed for all replicates at once.  Only the
multivariate normal integral of the MaxCombo p-value loops over replicates.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import special, stats

from analysis.logrank import _block_masks, _prepare, _RiskSetScan, _TieGroups

__all__ = [
    "MaxComboResult",
    "WeightedLogrankResult",
    "maxcombo_test",
    "weighted_logrank_test",
]

#: The four Fleming-Harrington weights of the MaxCombo test of Lin et al. (2020):
#: log-rank, late, early and middle differences.
MAXCOMBO_WEIGHTS: tuple[tuple[float, float], ...] = ((0, 0), (0, 1), (1, 0), (1, 1))

_Alternative = Literal["less", "greater", "two-sided"]


def _two_sided_p(z: np.ndarray) -> np.ndarray:
    return special.erfc(np.abs(z) / np.sqrt(2.0))


@dataclass(frozen=True)
class WeightedLogrankResult:
    """Result of :func:`weighted_logrank_test`: one value per replicate.

    Fields are arrays of shape ``(R,)`` when the inputs were ``(R, N)``, numpy scalars when the
    inputs were one trial of shape ``(N,)``.  All statistics are for the experimental arm
    (``group`` True), with the sign convention of :func:`analysis.logrank.logrank_test`.

    Attributes
    ----------
    statistic : ndarray of float
        The weighted observed minus expected events of the experimental arm,
        :math:`U = \\sum_t w(t)\\,(d_1 - d\\,n_1/n)`; negative when the experimental arm has
        fewer (weighted) events than expected under the null.
    variance : ndarray of float
        Its variance under the null,
        :math:`V = \\sum_t w(t)^2\\, d\\,(n_1/n)(1 - n_1/n)(n - d)/(n - 1)`.
    z : ndarray of float
        ``statistic / sqrt(variance)``; ``nan`` where ``variance`` is 0 (no event time with
        both arms at risk and a positive weight).
    events : ndarray of int
        Total number of events in both arms.
    rho, gamma : float
        The Fleming-Harrington exponents of the weight :math:`S(t-)^\\rho (1 - S(t-))^\\gamma`.
    """

    statistic: np.ndarray
    variance: np.ndarray
    z: np.ndarray
    events: np.ndarray
    rho: float
    gamma: float

    @property
    def chi2(self) -> np.ndarray:
        """Chi-squared statistic (1 degree of freedom), ``z**2``."""
        return self.z**2

    @property
    def p_value(self) -> np.ndarray:
        """Two-sided p-value, ``P(chi2_1 > z**2)``; ``nan`` where ``z`` is."""
        return _two_sided_p(self.z)

    def summary(self) -> pd.DataFrame:
        """One row per replicate with every statistic of the test."""
        return pd.DataFrame(
            {
                "statistic": np.atleast_1d(self.statistic),
                "variance": np.atleast_1d(self.variance),
                "events": np.atleast_1d(self.events),
                "z": np.atleast_1d(self.z),
                "chi2": np.atleast_1d(self.chi2),
                "p_value": np.atleast_1d(self.p_value),
            },
            index=pd.RangeIndex(np.size(self.z), name="replicate"),
        ).assign(rho=self.rho, gamma=self.gamma)


@dataclass(frozen=True)
class MaxComboResult:
    """Result of :func:`maxcombo_test`: one value per replicate and weight.

    With inputs of shape ``(R, N)`` and ``K`` weights, per-weight fields have shape ``(R, K)``,
    matrices ``(R, K, K)`` and the combined test ``(R,)``; for one trial of shape ``(N,)`` the
    leading replicate axis is dropped.

    Attributes
    ----------
    weights : tuple of (rho, gamma)
        The Fleming-Harrington weights, in the order of the last axis.
    statistic_per_weight : ndarray of float
        The weighted observed minus expected ``U_k`` of each weight (see
        :class:`WeightedLogrankResult`).
    covariance : ndarray of float
        Null covariances ``sum_t w_a(t) w_b(t) d (n1/n)(1 - n1/n)(n - d)/(n - 1)``; the
        diagonal holds the variances ``V_k``.
    z : ndarray of float
        ``U_k / sqrt(V_k)``, each a :func:`weighted_logrank_test` z; ``nan`` where ``V_k`` is 0.
    correlation : ndarray of float
        ``covariance[a, b] / sqrt(V_a V_b)``; ``nan`` in the rows and columns of weights with
        ``V_k == 0``.
    statistic : ndarray of float
        The MaxCombo statistic: ``min_k z_k`` for ``alternative="less"``, ``max_k z_k`` for
        ``"greater"``, ``max_k |z_k|`` for ``"two-sided"``, over the weights with ``V_k > 0``;
        ``nan`` where there is none.
    p_value : ndarray of float
        Its p-value under the multivariate normal null with the correlation of the replicate.
    events : ndarray of int
        Total number of events in both arms.
    alternative : str
        ``"less"``, ``"greater"`` or ``"two-sided"``.
    p_exact : ndarray of bool
        Whether the p-value was integrated. With ``decide_at``, a replicate whose
        Bonferroni bounds settle the decision is not integrated and reports the bound that
        settles it (``K p_single`` when significant, ``p_single`` when not).
    """

    weights: tuple[tuple[float, float], ...]
    statistic_per_weight: np.ndarray
    covariance: np.ndarray
    z: np.ndarray
    correlation: np.ndarray
    statistic: np.ndarray
    p_value: np.ndarray
    events: np.ndarray
    alternative: str
    p_exact: np.ndarray | None = None

    def summary(self) -> pd.DataFrame:
        """One row per replicate: the z of each weight, the MaxCombo statistic and p-value."""
        z = np.atleast_2d(self.z)
        columns = {
            f"z_fh({rho:g},{gamma:g})": z[:, k] for k, (rho, gamma) in enumerate(self.weights)
        }
        columns.update(
            statistic=np.atleast_1d(self.statistic),
            p_value=np.atleast_1d(self.p_value),
            events=np.atleast_1d(self.events),
        )
        frame = pd.DataFrame(columns, index=pd.RangeIndex(z.shape[0], name="replicate"))
        return frame.assign(alternative=self.alternative)


def weighted_logrank_test(
    time: ArrayLike,
    event: ArrayLike,
    group: ArrayLike,
    valid: ArrayLike | None = None,
    rho: float = 0.0,
    gamma: float = 0.0,
    strata: ArrayLike | None = None,
) -> WeightedLogrankResult:
    """Fleming-Harrington FH(rho, gamma) weighted log-rank test on each replicate trial.

    At each distinct event time :math:`t` with :math:`d` events among :math:`n` patients at
    risk, :math:`d_1` events and :math:`n_1` at risk in the experimental arm, the weight is

    .. math:: w(t) = \\hat S(t-)^{\\rho}\\,\\bigl(1 - \\hat S(t-)\\bigr)^{\\gamma},

    with :math:`\\hat S(t-)` the pooled (both arms) Kaplan-Meier estimate just before
    :math:`t`, i.e. the product of :math:`1 - d/n` over the event times before :math:`t`
    (1 at the first event time).  Then

    .. math:: U = \\sum_t w(t)\\,(d_1 - d\\,n_1/n), \\qquad
              V = \\sum_t w(t)^2\\, d\\,\\frac{n_1}{n}\\Bigl(1 - \\frac{n_1}{n}\\Bigr)
                  \\frac{n - d}{n - 1},

    and :math:`z = U/\\sqrt V` is approximately standard normal under the null hypothesis of
    equal hazards.  FH(0, 0) is the log-rank test; FH(0, 1) emphasizes late differences,
    FH(1, 0) early ones (the Peto-Prentice-like test), FH(1, 1) the middle.

    Parameters
    ----------
    time : array_like of float, shape (R, N) or (N,)
        Time to event or censoring, ``>= 0`` (``+inf`` allowed); ignored where not `valid`.
    event : array_like of bool, shape like `time`
        True where the time is an event, False where it is a censoring.
    group : array_like of bool, shape like `time`
        True for the experimental arm, False for the control arm.
    valid : array_like of bool, shape like `time`, optional
        Patients included in the analysis; default every patient.
    rho, gamma : float
        Fleming-Harrington exponents, finite and ``>= 0``.
    strata : array_like of int, shape like `time`, optional
        Stratum codes ``0 .. S-1``.  When given, ``U`` and ``V`` are summed over the strata,
        and the weights of a stratum use the Kaplan-Meier curve of that stratum (pooled over
        the arms), as ``simtrial::wlr`` does.

    Returns
    -------
    WeightedLogrankResult
        Arrays of shape ``(R,)`` for 2-D inputs; numpy scalars for 1-D inputs.

    Raises
    ------
    ValueError
        If `rho` or `gamma` is negative or not finite, or the inputs are malformed (see
        :func:`analysis.logrank.logrank_test`).

    Notes
    -----
    Patients censored at an event time are at risk at that time.  The weight uses the
    left-continuous :math:`\\hat S(t-)`, so that it is predictable (fixed before the events at
    :math:`t`) and FH(0, 1) gives the first event time weight 0.  ``1 - S`` is computed as
    ``-expm1(log S)``, accurate when ``S`` is close to 1.

    Cost: one sort of each replicate (two when times tie), then a few passes over the sorted
    risk sets; about the cost of :func:`analysis.logrank.logrank_test`.

    References
    ----------
    .. [1] Fleming, T. R. and Harrington, D. P. (1991). *Counting Processes and Survival
       Analysis*. Wiley, New York; section 7.3.
    .. [2] Harrington, D. P. and Fleming, T. R. (1982). A class of rank test procedures for
       censored survival data. *Biometrika* 69(3), 553-566.

    Examples
    --------
    >>> import numpy as np
    >>> from analysis.weighted_logrank import weighted_logrank_test
    >>> time = np.array([1.0, 2.0, 2.0, 3.0, 4.0, 5.0])
    >>> event = np.array([True, True, False, True, True, False])
    >>> group = np.array([False, False, True, False, True, True])
    >>> round(float(weighted_logrank_test(time, event, group).z), 4)  # the log-rank z
    -2.0934
    >>> round(float(weighted_logrank_test(time, event, group, rho=0, gamma=1).z), 4)
    -1.8196
    """
    weights = _check_weights([(rho, gamma)])
    one_trial, arrays = _prepare(time, event, group, valid, strata)
    score, cov, events = _weighted_scores(*arrays, weights)
    statistic = score[:, 0]
    variance = cov[:, 0, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(variance > 0, statistic / np.sqrt(variance), np.nan)
    fields = (statistic, variance, z, events)
    if one_trial:
        fields = tuple(f[0] for f in fields)
    return WeightedLogrankResult(*fields, rho=weights[0][0], gamma=weights[0][1])


def maxcombo_test(
    time: ArrayLike,
    event: ArrayLike,
    group: ArrayLike,
    valid: ArrayLike | None = None,
    weights: Sequence[tuple[float, float]] = MAXCOMBO_WEIGHTS,
    alternative: _Alternative = "less",
    strata: ArrayLike | None = None,
    tolerance: float = 1e-5,
    max_points: int = 50_000,
    integration_seed: int = 0,
    decide_at: float | None = None,
) -> MaxComboResult:
    """MaxCombo test: the most extreme of several Fleming-Harrington tests, on each replicate.

    The z statistics :math:`z_k` of the weights FH(:math:`\\rho_k, \\gamma_k`) (see
    :func:`weighted_logrank_test`) are jointly asymptotically normal under the null, with
    covariances :math:`\\sum_t w_a(t) w_b(t)\\, d\\,(n_1/n)(1 - n_1/n)(n - d)/(n - 1)` and so
    correlations :math:`\\rho_{ab} = \\mathrm{cov}_{ab}/\\sqrt{V_a V_b}`, estimated per
    replicate.  With :math:`Z \\sim N(0, \\rho)`:

    - ``alternative="less"`` (default; the experimental arm has the lower hazard, i.e. fewer
      events than expected, which makes ``z`` negative): statistic
      :math:`z_{\\min} = \\min_k z_k`, p-value
      :math:`1 - P(Z_k > z_{\\min}\\ \\forall k) = 1 - \\Phi_K(-z_{\\min}\\mathbf 1; \\rho)`.
      Reject at one-sided level ``alpha`` when the p-value is below ``alpha``.
    - ``"greater"``: statistic :math:`\\max_k z_k`, p-value
      :math:`1 - \\Phi_K(z_{\\max}\\mathbf 1; \\rho)`.
    - ``"two-sided"``: statistic :math:`m = \\max_k |z_k|`, p-value
      :math:`1 - P(|Z_k| < m\\ \\forall k)`.

    Parameters
    ----------
    time, event, group, valid, strata
        As in :func:`weighted_logrank_test`.
    weights : sequence of (rho, gamma)
        The Fleming-Harrington weights combined; default FH(0,0), FH(0,1), FH(1,0), FH(1,1)
        as in Lin et al. (2020).
    alternative : {"less", "greater", "two-sided"}
        Direction of the test, see above.
    tolerance : float
        Absolute error tolerance of the multivariate normal integral (``abseps`` of
        :meth:`scipy.stats.multivariate_normal.cdf`, with ``releps=0``), ``> 0``.
    max_points : int
        Budget of integration points (``maxpts``): the integration stops when it reaches
        `tolerance` or has used about this many points (scipy may overshoot it by up to
        about 40%).  The defaults are those of simtrial's ``pvalue_maxcombo``
        (``mvtnorm::GenzBretz(maxpts = 50000, abseps = 1e-05)``).
    integration_seed : int
        Seed of the randomized quasi-Monte Carlo integration.  Every replicate's integral
        uses a fresh generator from this seed, so a replicate's p-value does not depend on
        the other replicates or on how the replicates are chunked.
    decide_at : float, optional
        A significance level at which only the decision matters (a simulation's alpha):
        replicates whose Bonferroni bounds ``[p_single, K p_single]`` lie on one side of it
        are not integrated (see ``p_exact``); the decision ``p_value <= decide_at`` is
        unchanged.

    Returns
    -------
    MaxComboResult

    Raises
    ------
    ValueError
        If `weights` is empty or has a negative or non-finite exponent, `alternative` or
        `tolerance` is invalid, or the inputs are malformed.

    Notes
    -----
    Weights whose variance is 0 in a replicate (for example FH(0, 1) with a single event
    time) carry no information there and are left out of that replicate's maximum and
    integral.  The p-value is clipped to its exact Bonferroni bounds (between the p-value of
    the most extreme single test and ``K`` times it), which keeps it accurate in relative
    terms where it is much smaller than `tolerance`.

    The default four weights are linearly dependent: :math:`S + (1 - S) = 1` makes
    ``U`` of FH(0,0) the sum of those of FH(1,0) and FH(0,1), so their correlation matrix has
    rank 3.  Its distribution is then singular and the lattice rule converges slowly (the
    integrand has a jump): the integration usually stops at `max_points` rather than at
    `tolerance`, with a standard error of about ``1e-4`` to ``2e-4`` for p-values between
    0.005 and 0.035 at the defaults (about ``5e-5`` to ``1e-4`` with ``max_points=200_000``,
    at four times the cost).  That is small for a rejection rate over many replicates, but
    state it when a single trial's p-value is close to its threshold.

    Cost: the statistics and correlations are vectorized like :func:`weighted_logrank_test`,
    but the multivariate normal integral (Genz's randomized lattice rule in scipy) runs once
    per replicate in a Python loop.  With the default four weights and integration settings
    it takes about 5-20 ms per replicate (about 10 s for 1,000 replicates), far more than
    the statistics; one or two weights are integrated exactly and are fast.

    References
    ----------
    .. [1] Lin, R. S., Lin, J., Roychoudhury, S., et al. (2020). Alternative analysis methods
       for time to event endpoints under nonproportional hazards: a comparative analysis.
       *Statistics in Biopharmaceutical Research* 12(2), 187-198.
    .. [2] Karrison, T. G. (2016). Versatile tests for comparing survival curves based on
       weighted log-rank statistics. *The Stata Journal* 16(3), 678-690.
    .. [3] Fleming, T. R. and Harrington, D. P. (1991). *Counting Processes and Survival
       Analysis*. Wiley, New York.
    .. [4] Genz, A. (1992). Numerical computation of multivariate normal probabilities.
       *Journal of Computational and Graphical Statistics* 1(2), 141-149.

    Examples
    --------
    >>> import numpy as np
    >>> from analysis.weighted_logrank import maxcombo_test
    >>> rng = np.random.default_rng(1)
    >>> group = np.arange(200) % 2 == 0
    >>> time = rng.exponential(np.where(group, 1.5, 1.0))
    >>> res = maxcombo_test(time, np.ones(200, dtype=bool), group)
    >>> res.z.shape, bool(res.statistic == res.z.min())
    ((4,), True)
    """
    weights = _check_weights(weights)
    if alternative not in ("less", "greater", "two-sided"):
        raise ValueError(
            f"alternative must be 'less', 'greater' or 'two-sided'; got {alternative!r}"
        )
    if not (np.isfinite(tolerance) and tolerance > 0):
        raise ValueError(f"tolerance must be a positive number; got {tolerance!r}")
    if int(max_points) != max_points or max_points < 1:
        raise ValueError(f"max_points must be a positive integer; got {max_points!r}")
    one_trial, arrays = _prepare(time, event, group, valid, strata)
    score, cov, events = _weighted_scores(*arrays, weights)
    variance = np.diagonal(cov, axis1=1, axis2=2)
    positive = variance > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        sd = np.where(positive, np.sqrt(variance), np.nan)
        z = score / sd
        corr = cov / (sd[:, :, None] * sd[:, None, :])
    if alternative == "less":
        statistic = np.min(np.where(positive, z, np.inf), axis=1)
    elif alternative == "greater":
        statistic = np.max(np.where(positive, z, -np.inf), axis=1)
    else:
        statistic = np.max(np.where(positive, np.abs(z), -np.inf), axis=1)
    statistic = np.where(positive.any(axis=1), statistic, np.nan)
    p_value = np.full(statistic.shape, np.nan)
    exact = positive.any(axis=1)
    if decide_at is not None:
        # the exact p-value lies between the single-test p and K times it (Bonferroni):
        # where both sides agree on the decision at level decide_at, skip the integration
        n_weights = positive.sum(axis=1)
        if alternative == "two-sided":
            single = 2.0 * special.ndtr(-statistic)
        else:
            single = special.ndtr(statistic if alternative == "less" else -statistic)
        upper = np.minimum(1.0, n_weights * single)
        settled = exact & ((upper <= decide_at) | (single > decide_at))
        p_value[settled] = np.where(upper[settled] <= decide_at, upper[settled], single[settled])
        exact = exact & ~settled
    for r in np.flatnonzero(exact):  # the only loop over replicates
        keep = positive[r]
        p_value[r] = _maxcombo_p(
            statistic[r],
            corr[r][np.ix_(keep, keep)],
            alternative,
            tolerance,
            int(max_points),
            integration_seed,
        )
    fields = (score, cov, z, corr, statistic, p_value, events, exact)
    if one_trial:
        fields = tuple(f[0] for f in fields)
    *fields, exact = fields
    return MaxComboResult(weights, *fields, alternative=alternative, p_exact=exact)


def _maxcombo_p(
    statistic: float,
    corr: np.ndarray,
    alternative: str,
    tolerance: float,
    max_points: int,
    seed: int,
) -> float:
    """P-value of one replicate's MaxCombo statistic, with correlation matrix ``corr``."""
    k = corr.shape[0]
    if alternative == "two-sided":
        single = 2.0 * special.ndtr(-statistic)
        upper = np.full(k, statistic)
        lower = -upper
    else:
        # "less": P(all Z > s) = P(all -Z < -s), and -Z has the same correlation.
        bound = -statistic if alternative == "less" else statistic
        single = special.ndtr(-bound)
        upper = np.full(k, bound)
        lower = None
    if k == 1:
        return float(single)
    inside = stats.multivariate_normal.cdf(
        upper,
        cov=corr,
        allow_singular=True,
        maxpts=max_points,
        abseps=tolerance,
        releps=0.0,
        lower_limit=lower,
        rng=np.random.default_rng(seed),
    )
    return float(np.clip(1.0 - inside, single, min(1.0, k * single)))


def _check_weights(weights: Sequence[tuple[float, float]]) -> tuple[tuple[float, float], ...]:
    """The weights as a tuple of float pairs, each exponent finite and >= 0."""
    checked = []
    for pair in weights:
        try:
            rho, gamma = (float(x) for x in pair)
        except (TypeError, ValueError) as err:
            raise ValueError(
                f"each weight must be a pair (rho, gamma) of numbers; got {pair!r}"
            ) from err
        for name, value in (("rho", rho), ("gamma", gamma)):
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be finite and >= 0; got {value!r}")
        checked.append((rho, gamma))
    if not checked:
        raise ValueError("weights must hold at least one (rho, gamma) pair")
    return tuple(checked)


def _weighted_scores(
    time: np.ndarray,
    event: np.ndarray,
    group: np.ndarray,
    valid: np.ndarray | None,
    strata: np.ndarray | None,
    weights: tuple[tuple[float, float], ...],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted scores ``U`` (R, K), their null covariance (R, K, K) and the events (R,)."""
    n_rep = time.shape[0]
    n_w = len(weights)
    score = np.zeros((n_rep, n_w))
    cov = np.zeros((n_rep, n_w, n_w))
    events = np.count_nonzero(event if valid is None else event & valid, axis=1)
    pairs = [(a, b) for a in range(n_w) for b in range(a, n_w)]
    for rows, groups, d1, scan in _risk_sets(time, event, group, valid, strata):
        expected, var_terms = groups.expected_and_variance(scan)
        residual = d1 - expected
        w = _fh_weights(groups, weights)
        for k in range(n_w):
            score[rows, k] += groups.sum_by_replicate(w[k] * residual)
        for a, b in pairs:
            c = groups.sum_by_replicate(w[a] * w[b] * var_terms)
            cov[rows, a, b] += c
            if a != b:
                cov[rows, b, a] += c
    return score, cov, events


def _risk_sets(
    time: np.ndarray,
    event: np.ndarray,
    group: np.ndarray,
    valid: np.ndarray | None,
    strata: np.ndarray | None,
) -> Iterator[tuple[slice, _TieGroups, np.ndarray, _RiskSetScan]]:
    """Yield ``(rows, groups, d1, scan)`` per block of replicates and stratum.

    ``groups`` are the tie groups of :class:`analysis.logrank._RiskSetScan` (views into the
    workspace of ``scan``, overwritten by the next block) and ``d1`` the experimental-arm
    events of each group.  When every tie group is one patient record (no tied times: the
    usual case), ``d1 = d * (n1 - n1_next)``, the arm flag being the drop of
    the suffix count ``n1`` to the next record of the row; otherwise a second scan with the
    event flag replaced by ``event & group`` counts them (the tie groups depend only on the
    times, so both scans have the same groups in the same order).
    """
    n_rep, n_pat = time.shape
    if n_pat == 0:
        return
    scan = _RiskSetScan(time.shape)
    arm_scan: _RiskSetScan | None = None
    bits = time.view(np.uint64)
    arm_event = None
    for rows, included in _block_masks(n_rep, scan.block_rows, strata, valid):
        groups = scan.scan(bits[rows], event[rows], group[rows], included)
        m = rows.stop - rows.start
        if groups.d.size == m * n_pat:
            n1_next = np.zeros_like(groups.n1)
            n1_next[:-1] = groups.n1[1:]
            n1_next[groups.row_first[1:] - 1] = 0.0
            d1 = groups.d * (groups.n1 - n1_next)
        else:
            if arm_scan is None:
                arm_scan = _RiskSetScan(time.shape)
                arm_event = event & group
            arm_groups = arm_scan.scan(bits[rows], arm_event[rows], group[rows], included)
            if arm_groups.d.size != groups.d.size:  # pragma: no cover - internal invariant
                raise RuntimeError("the two risk-set scans disagree on the tie groups")
            d1 = arm_groups.d.copy()
        yield rows, groups, d1, scan


def _fh_weights(groups: _TieGroups, weights: tuple[tuple[float, float], ...]) -> list[np.ndarray]:
    """FH weights ``S(t-)^rho (1 - S(t-))^gamma`` at every tie group, for each weight."""
    log_s = _left_km_log(groups)
    s = np.exp(log_s)
    one_minus_s = -np.expm1(log_s)
    out = []
    for rho, gamma in weights:
        w = np.ones_like(s)
        if rho != 0:
            w *= s**rho
        if gamma != 0:
            w *= one_minus_s**gamma
        out.append(w)
    return out


def _left_km_log(groups: _TieGroups) -> np.ndarray:
    """Log of the pooled Kaplan-Meier estimate just before each tie group, row by row.

    ``log S(t_j-) = sum_{i < j} log(1 - d_i / n_i)`` over the earlier groups of the same row
    (``-inf`` after a group where every patient at risk had an event).  Rows are ragged when
    times tie; they are padded to a rectangle so that each row's sum starts at 0 exactly.
    """
    d, n, row_first = groups.d, groups.n, groups.row_first
    size = d.size
    m = row_first.size
    with np.errstate(divide="ignore"):
        # n <= 0 only for excluded patients, where d == 0.
        step = np.log1p(-d / np.maximum(n, 1.0))
    counts = np.diff(row_first, append=size)
    width = int(counts.max())
    if size == m * width:
        padded = step.reshape(m, width)
        rows = pos = None
    else:
        rows = np.repeat(np.arange(m), counts)
        pos = np.arange(size) - np.repeat(row_first, counts)
        padded = np.zeros((m, width))
        padded[rows, pos] = step
    before = np.zeros_like(padded)
    np.cumsum(padded[:, :-1], axis=1, out=before[:, 1:])
    if rows is None:
        return before.reshape(-1)
    return before[rows, pos]
