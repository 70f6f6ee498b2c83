"""The two-arm log-rank test, vectorized over simulated trials.

The trial engine analyses ``R`` replicate trials of ``N`` patients at once: every input is an
``(R, N)`` array, one row per replicate.  Two sorts per row (one carrying the event flag, one
the arm flag) give the risk sets; no Python loop runs over patients or single replicates.  The
replicates are scanned in blocks of about ``2**16`` patient records through one preallocated
workspace, so that the working memory stays small and in cache whatever ``R`` is (a stratified
test also loops over the strata).

The risk-set scan (:class:`_RiskSetScan`) is shared with :mod:`analysis.cox`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import special

__all__ = ["LogrankResult", "logrank_test"]

# Sort key of a patient left out of the analysis: above every valid key (the largest is
# ``+inf`` with an event, 0xFFE0000000000001), with the event and arm bits clear.
_EXCLUDED_KEY = np.uint64(0xFFFF_FFFF_FFFF_FFFE)
_ONE = np.uint64(1)


@dataclass(frozen=True)
class LogrankResult:
    """Result of :func:`logrank_test`: one value per replicate.

    All statistics are for the experimental arm (``group`` True).  The fields are arrays of
    shape ``(R,)`` when the inputs were ``(R, N)``, and numpy scalars when the inputs were one
    trial of shape ``(N,)``.

    Attributes
    ----------
    observed_minus_expected : ndarray of float
        Observed minus expected events in the experimental arm, summed over the distinct event
        times (and over the strata in a stratified test).  Negative when the experimental arm
        has fewer events than expected under the null, i.e. when its hazard is lower.
    variance : ndarray of float
        Hypergeometric variance of ``observed_minus_expected`` under the null.
    z : ndarray of float
        ``observed_minus_expected / sqrt(variance)``; ``nan`` where ``variance`` is 0 (no event,
        or no event time at which both arms are at risk).
    events : ndarray of int
        Total number of events in both arms.
    log_hr : ndarray of float
        Peto's one-step estimate of the log hazard ratio (experimental / control),
        ``observed_minus_expected / variance``; ``nan`` where ``variance`` is 0.
    se_log_hr : ndarray of float
        Its standard error ``1 / sqrt(variance)``; ``inf`` where ``variance`` is 0.

    Notes
    -----
    ``chi2`` and ``p_value`` are derived from ``z`` and are ``nan`` wherever ``z`` is.  A ``nan``
    z never compares true, so a decision rule ``z < -c`` never rejects for such a replicate.
    """

    observed_minus_expected: np.ndarray
    variance: np.ndarray
    z: np.ndarray
    events: np.ndarray
    log_hr: np.ndarray
    se_log_hr: np.ndarray

    @property
    def chi2(self) -> np.ndarray:
        """Log-rank chi-squared statistic (1 degree of freedom), ``z**2``."""
        return self.z**2

    @property
    def p_value(self) -> np.ndarray:
        """Two-sided p-value, ``P(chi2_1 > z**2)``."""
        return special.erfc(np.abs(self.z) / np.sqrt(2.0))

    def summary(self) -> pd.DataFrame:
        """One row per replicate with every statistic of the test."""
        return pd.DataFrame(
            {
                "observed_minus_expected": np.atleast_1d(self.observed_minus_expected),
                "variance": np.atleast_1d(self.variance),
                "events": np.atleast_1d(self.events),
                "z": np.atleast_1d(self.z),
                "chi2": np.atleast_1d(self.chi2),
                "p_value": np.atleast_1d(self.p_value),
                "log_hr": np.atleast_1d(self.log_hr),
                "se_log_hr": np.atleast_1d(self.se_log_hr),
            },
            index=pd.RangeIndex(np.size(self.z), name="replicate"),
        )


def logrank_test(
    time: ArrayLike,
    event: ArrayLike,
    group: ArrayLike,
    valid: ArrayLike | None = None,
    strata: ArrayLike | None = None,
) -> LogrankResult:
    """Two-arm (optionally stratified) log-rank test on each replicate trial.

    At each distinct event time :math:`t` with :math:`d` events among :math:`n` patients at
    risk, :math:`n_1` of them in the experimental arm, the experimental arm's expected events
    are :math:`d\\,n_1/n` and their hypergeometric variance is
    :math:`d\\,(n_1/n)(1-n_1/n)(n-d)/(n-1)`.  A patient whose time equals an event time is at
    risk at that time whether censored or not (events come before censorings).  ``O - E`` and
    ``V`` are summed over event times (and over strata), and ``z = (O - E)/sqrt(V)``.

    Parameters
    ----------
    time : array_like of float, shape (R, N) or (N,)
        Time to event or censoring, ``>= 0`` (``+inf`` allowed).  Values of patients that are
        not ``valid`` are ignored and may be anything, ``nan`` included.
    event : array_like of bool, shape like `time`
        True where the time is an event, False where it is a censoring.
    group : array_like of bool, shape like `time`
        True for the experimental arm, False for the control arm.
    valid : array_like of bool, shape like `time`, optional
        Patients included in the analysis; the others (not yet enrolled, in a third arm, ...)
        are ignored completely.  Default: every patient.
    strata : array_like of int, shape like `time`, optional
        Stratum codes ``0 .. S-1``.  When given, the test is stratified: ``O - E`` and ``V``
        are computed within each stratum and summed.

    Returns
    -------
    LogrankResult
        Arrays of shape ``(R,)`` for 2-D inputs; numpy scalars for 1-D inputs (one trial).

    Raises
    ------
    ValueError
        If the inputs do not have one shape, are not 1-D or 2-D, or a valid patient has a
        negative or ``nan`` time or a negative stratum code.

    Notes
    -----
    Each row is sorted on a 64-bit key made of the bits of the (non-negative) time shifted
    left by one, with the event flag (respectively the arm flag) in the lowest bit; equal times
    keep equal keys up to that bit, so ties are exact.  Excluded patients get a key above every
    valid one and are never at risk.  ``-0.0`` counts as ``0.0``.

    The one-step estimate ``log_hr = (O - E)/V`` (Peto et al. 1977) is close to the Cox
    estimate when the hazard ratio is near 1 and the arms are balanced, and biased towards 0
    otherwise; use :func:`analysis.cox.cox_treatment` for the maximum likelihood estimate.

    References
    ----------
    .. [1] Mantel, N. (1966). Evaluation of survival data and two new rank order statistics
       arising in its consideration. *Cancer Chemotherapy Reports* 50(3), 163-170.
    .. [2] Peto, R. and Peto, J. (1972). Asymptotically efficient rank invariant test
       procedures. *Journal of the Royal Statistical Society A* 135(2), 185-207.
    .. [3] Peto, R., Pike, M. C., Armitage, P., et al. (1977). Design and analysis of
       randomized clinical trials requiring prolonged observation of each patient. II.
       Analysis and examples. *British Journal of Cancer* 35(1), 1-39.

    Examples
    --------
    >>> import numpy as np
    >>> from analysis.logrank import logrank_test
    >>> time = np.array([1.0, 2.0, 2.0, 3.0, 4.0, 5.0])
    >>> event = np.array([True, True, False, True, True, False])
    >>> group = np.array([False, False, True, False, True, True])
    >>> res = logrank_test(time, event, group)
    >>> round(float(res.observed_minus_expected), 4), int(res.events)
    (-1.0833, 4)
    """
    one_trial, (t, e, g, v, s) = _prepare(time, event, group, valid, strata)
    included = e & g if v is None else e & g & v
    o_minus_e = np.count_nonzero(included, axis=1).astype(np.float64)
    np.logical_and(e, True if v is None else v, out=included)
    events = np.count_nonzero(included, axis=1)
    variance = np.zeros(t.shape[0])
    scan = _RiskSetScan(t.shape)
    for rows, groups in scan.blocks(t, e, g, v, s):
        expected, var_terms = groups.expected_and_variance(scan)
        o_minus_e[rows] -= groups.sum_by_replicate(expected)
        variance[rows] += groups.sum_by_replicate(var_terms)
    with np.errstate(divide="ignore", invalid="ignore"):
        se = 1.0 / np.sqrt(variance)
        z = np.where(variance > 0, o_minus_e * se, np.nan)
        log_hr = np.where(variance > 0, o_minus_e / variance, np.nan)
    fields = (o_minus_e, variance, z, events, log_hr, se)
    if one_trial:
        fields = tuple(f[0] for f in fields)
    return LogrankResult(*fields)


def _prepare(
    time: ArrayLike,
    event: ArrayLike,
    group: ArrayLike,
    valid: ArrayLike | None,
    strata: ArrayLike | None,
) -> tuple[bool, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]]:
    """Check the inputs of a survival analysis and return them as 2-D arrays.

    Returns whether the input was one trial (1-D), and ``(time, event, group, valid,
    strata)`` as C-contiguous ``(R, N)`` arrays; ``valid`` and ``strata`` stay None when not
    given.
    """
    t = np.asarray(time, dtype=np.float64)
    if t.ndim not in (1, 2):
        raise ValueError(
            f"time must be 1-D (one trial) or 2-D (replicates, patients); got {t.ndim} dimensions"
        )
    one_trial = t.ndim == 1
    shape = t.shape

    def as_2d(name: str, a: ArrayLike, dtype: type) -> np.ndarray:
        arr = np.asarray(a)
        if arr.shape != shape:
            raise ValueError(f"{name} has shape {arr.shape}; expected {shape}, the shape of time")
        arr = arr.astype(dtype, copy=False)
        return np.ascontiguousarray(arr[None, :] if one_trial else arr)

    e = as_2d("event", event, bool)
    g = as_2d("group", group, bool)
    v = None if valid is None else as_2d("valid", valid, bool)
    t = np.ascontiguousarray(t[None, :] if one_trial else t)
    bad = ~(t >= 0)
    if v is not None:
        bad &= v
    if bad.any():
        r, i = np.argwhere(bad)[0]
        where = f"[{i}]" if one_trial else f"[{r}, {i}]"
        raise ValueError(
            f"time must be >= 0 (not nan) for every valid patient; time{where} = {t[r, i]!r}"
        )
    s = None
    if strata is not None:
        s = as_2d("strata", strata, np.int64)
        negative = s < 0
        if v is not None:
            negative &= v
        if negative.any():
            raise ValueError("strata must be integer codes >= 0")
    return one_trial, (t, e, g, v, s)


# Patient records per block of the risk-set scan: the workspace is about 150 bytes a record.
_BLOCK_RECORDS = 1 << 16


@dataclass(frozen=True)
class _TieGroups:
    """Tie groups of one block of replicates, for one stratum (views into the workspace).

    One entry per run of equal times of the valid patients of a row (plus one for its
    excluded patients, if any), in row order: ``d`` events, ``n`` patients at risk (time >=
    the group's time), ``n1`` of them in the experimental arm, ``rows`` the row within the
    block.  ``row_first[r]`` is the index of the first entry of row ``r``; every row has one.
    Entries of censoring-only times and of the excluded patients have ``d == 0``.
    """

    d: np.ndarray
    n: np.ndarray
    n1: np.ndarray
    rows: np.ndarray
    row_first: np.ndarray

    def sum_by_replicate(self, values: np.ndarray) -> np.ndarray:
        """Sum ``values`` (one per entry) over the entries of each row."""
        return np.add.reduceat(values, self.row_first)

    def expected_and_variance(self, scan: _RiskSetScan) -> tuple[np.ndarray, np.ndarray]:
        """Expected experimental-arm events and their hypergeometric variance per group."""
        size = self.d.size
        expected, var_terms, w1, w2 = (buf[:size] for buf in scan.float_work)
        # max(n, 1) and max(n - 1, 1) only change groups whose numerator is 0 anyway
        # (n == 0: the excluded patients; n == 1: then d == 0 or n - d == 0).
        np.multiply(self.d, self.n1, out=expected)
        np.maximum(self.n, 1.0, out=w1)
        expected /= w1
        np.subtract(self.n, self.n1, out=var_terms)
        np.subtract(self.n, self.d, out=w2)
        var_terms *= w2
        var_terms *= expected
        np.subtract(self.n, 1.0, out=w2)
        np.maximum(w2, 1.0, out=w2)
        w2 *= w1
        var_terms /= w2
        return expected, var_terms


class _RiskSetScan:
    """Workspace of the risk-set scan, reused by every block of replicates.

    Each row is sorted on a 64-bit key: the bits of the (non-negative) time shifted left by
    one, with a flag (the event, then the arm) in the lowest bit.  For times >= 0 the bits are
    monotone in the time, so equal times keep equal ``key >> 1`` and ties are exact; the sign
    bit of ``-0.0`` falls off, so it counts as ``0.0``.  Excluded patients get a key above every
    valid one and are never at risk.
    """

    def __init__(self, shape: tuple[int, int]):
        n_rep, n_pat = shape
        self.n_pat = n_pat
        self.block_rows = max(1, min(n_rep, _BLOCK_RECORDS // max(n_pat, 1)))
        size = self.block_rows * n_pat
        self.key = np.empty(size, dtype=np.uint64)
        self.work = np.empty(size, dtype=np.uint64)
        self.cum_event = np.zeros(size + 1, dtype=np.int64)
        self.cum_group = np.zeros(size + 1, dtype=np.int64)
        self.last = np.empty(size, dtype=bool)
        self.stop_candidates = np.arange(1, size + 1, dtype=np.int64)
        self.int_work = [np.empty(size, dtype=np.int64) for _ in range(5)]
        self.group_columns = [np.empty(size, dtype=np.float64) for _ in range(3)]
        self.float_work = [np.empty(size, dtype=np.float64) for _ in range(4)]

    def blocks(
        self,
        time: np.ndarray,
        event: np.ndarray,
        group: np.ndarray,
        valid: np.ndarray | None,
        strata: np.ndarray | None,
    ) -> Iterator[tuple[slice, _TieGroups]]:
        """Yield ``(rows, groups)`` for each block of replicates (and each stratum).

        The groups are views into the workspace, overwritten by the next block.
        """
        n_rep = time.shape[0]
        bits = time.view(np.uint64)
        n_strata = 1 if strata is None else int(strata.max(initial=0)) + 1
        for first in range(0, n_rep, self.block_rows):
            rows = slice(first, min(first + self.block_rows, n_rep))
            for k in range(n_strata):
                if strata is None:
                    included = None if valid is None else valid[rows]
                else:
                    included = strata[rows] == k
                    if valid is not None:
                        included &= valid[rows]
                yield rows, self.scan(bits[rows], event[rows], group[rows], included)

    def _sort_keys(
        self, bits: np.ndarray, flag: np.ndarray, excluded: np.ndarray | None
    ) -> np.ndarray:
        """Sorted keys ``(time bits << 1) | flag`` of a block, in ``self.key``."""
        key = self.key[: bits.size].reshape(bits.shape)
        np.left_shift(bits, _ONE, out=key)
        np.bitwise_or(key, flag, out=key)
        if excluded is not None:
            np.putmask(key, excluded, _EXCLUDED_KEY)
        key.sort(axis=1)
        return key

    def scan(
        self,
        bits: np.ndarray,
        event: np.ndarray,
        group: np.ndarray,
        included: np.ndarray | None,
    ) -> _TieGroups:
        """Tie groups of one block: ``bits`` is the ``(m, N)`` uint64 view of the times."""
        m, n_pat = bits.shape
        size = m * n_pat
        excluded = None if included is None or included.all() else ~included
        work = self.work[:size].reshape(m, n_pat)

        key = self._sort_keys(bits, event, excluded)
        np.bitwise_and(key, _ONE, out=work)
        np.cumsum(self.work[:size].view(np.int64), out=self.cum_event[1 : size + 1])
        # Both sorts order the times identically, so the tie groups (runs of equal
        # key >> 1) lie at the same positions in both.  Group j spans [start[j], stop[j]).
        np.right_shift(key, _ONE, out=work)
        last = self.last[:size].reshape(m, n_pat)
        np.not_equal(work[:, 1:], work[:, :-1], out=last[:, :-1])
        last[:, -1] = True
        n_groups = int(np.count_nonzero(last))
        i_stop, i_start, i_rows, i_a, i_b = (buf[:n_groups] for buf in self.int_work)
        np.compress(self.last[:size], self.stop_candidates[:size], out=i_stop)
        i_start[0] = 0
        i_start[1:] = i_stop[:-1]

        key = self._sort_keys(bits, group, excluded)
        np.bitwise_and(key, _ONE, out=work)
        np.cumsum(self.work[:size].view(np.int64), out=self.cum_group[1 : size + 1])

        d, n, n1 = (buf[:n_groups] for buf in self.group_columns)
        np.take(self.cum_event, i_stop, out=i_a)
        np.take(self.cum_event, i_start, out=i_b)
        np.subtract(i_a, i_b, out=d)
        np.floor_divide(i_start, n_pat, out=i_rows)
        np.multiply(i_rows, n_pat, out=i_stop)  # i_stop now holds the start of the row
        np.add(i_stop, n_pat, out=i_a)  # and i_a the end of the row
        np.take(self.cum_group, i_a, out=i_b)
        np.take(self.cum_group, i_start, out=i_a)
        np.subtract(i_b, i_a, out=n1)
        if excluded is None:
            np.add(i_stop, n_pat, out=i_a)
        else:
            # Excluded patients sort to the end of their row: the valid ones end there.
            n_valid = np.count_nonzero(included, axis=1)
            np.take(n_valid, i_rows, out=i_a)
            i_a += i_stop
        np.subtract(i_a, i_start, out=n)
        row_first = np.searchsorted(i_start, np.arange(m, dtype=np.int64) * n_pat)
        return _TieGroups(d, n, n1, i_rows, row_first)
