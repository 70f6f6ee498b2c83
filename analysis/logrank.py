"""The two-arm log-rank test, vectorized over simulated trials.

The trial engine analyses ``R`` replicate trials of ``N`` patients at once: every input is an
``(R, N)`` array, one row per replicate.  One sort per row, on a key packing the time with the
event and arm flags, gives the risk sets; no Python loop runs over patients or single
replicates.  The replicates are scanned in blocks of about ``2**16`` patient records through
one preallocated workspace, so that the working memory stays small and in cache whatever ``R``
is (a stratified test also loops over the strata).

The risk-set scan (:class:`_RiskSetScan`, :func:`_event_risk_sets`) is shared with
:mod:`analysis.cox`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import special

__all__ = ["LogrankResult", "logrank_test"]


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
    Each row is sorted once on a 64-bit key packing the bits of the time with the event and arm
    flags (see :class:`_RiskSetScan`); equal times give equal keys up to the flags, so ties are
    exact.  Excluded patients sort after every valid one and are never at risk.  ``-0.0``
    counts as ``0.0``.  The replicates are processed in blocks of about ``2**16`` patient
    records through one preallocated workspace, to bound the working memory.

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
    (-1.7667, 4)
    >>> round(float(res.z), 4), round(float(res.p_value), 4)
    (-2.0934, 0.0363)
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
    return _logrank_result(o_minus_e, variance, events, one_trial)


def _logrank_result(
    o_minus_e: np.ndarray, variance: np.ndarray, events: np.ndarray, one_trial: bool
) -> LogrankResult:
    """The test's result from ``O - E``, ``V`` and the events of each replicate."""
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
            f"time must be >= 0 (not nan) for every valid patient; time{where} = {float(t[r, i])!r}"
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


def _event_risk_sets(
    time: np.ndarray,
    event: np.ndarray,
    group: np.ndarray,
    valid: np.ndarray | None,
    strata: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Risk sets of every (replicate, stratum, distinct event time) with an event.

    Takes the 2-D arrays returned by :func:`_prepare`; returns ``(rows, d, n, n1)``: the
    replicate, the number of events, the number at risk and the number at risk in the
    experimental arm (the last three as float64).
    """
    scan = _RiskSetScan(time.shape)
    parts: list[tuple[np.ndarray, ...]] = []
    for rows, groups in scan.blocks(time, event, group, valid, strata):
        keep = np.flatnonzero(groups.d)
        parts.append(
            (
                groups.rows()[keep] + rows.start,
                groups.d[keep],
                groups.n[keep],
                groups.n1[keep],
            )
        )
    if not parts:
        empty = np.zeros(0)
        return np.zeros(0, dtype=np.int64), empty, empty, empty
    return tuple(np.concatenate(column) for column in zip(*parts, strict=True))


# Patient records per block of the risk-set scan: the workspace is about 100 bytes a record.
_BLOCK_RECORDS = 1 << 16
_SIGN_CLEAR = np.uint64(0x7FFF_FFFF_FFFF_FFFF)
_INF_BITS = np.uint64(0x7FF0_0000_0000_0000)
_ONE = np.uint64(1)
_TWO = np.uint64(2)
# Largest span of rebased time bits that leaves two low bits for the event and arm flags and
# keeps every valid key below the excluded keys.
_PACKED_SPAN = np.uint64(1 << 61)
# Sort keys of patients left out of the analysis: above every valid key, flag bits clear.
_EXCLUDED_PACKED = np.uint64(0xFFFF_FFFF_FFFF_FFFC)
_EXCLUDED_KEY = np.uint64(0xFFFF_FFFF_FFFF_FFFE)


@dataclass(frozen=True)
class _TieGroups:
    """Tie groups of one block of replicates, for one stratum (views into the workspace).

    One entry per run of equal times of the valid patients of a row (plus, in a row with
    excluded patients, one entry for them, or one for each when no valid times tie), in row
    order: ``d`` events, ``n`` patients at risk (time >= the group's time), ``n1`` of them in
    the experimental arm (all float64).  ``row_first[r]`` is the index of the first entry of
    row ``r``; every row has one.  Entries of censoring-only times and of the excluded patients
    have ``d == 0`` (and ``n <= 0`` for the latter).
    """

    d: np.ndarray
    n: np.ndarray
    n1: np.ndarray
    row_first: np.ndarray

    def sum_by_replicate(self, values: np.ndarray) -> np.ndarray:
        """Sum ``values`` (one per entry) over the entries of each row, in order.

        The sum is sequential (a running sum), not pairwise: a row's sum then depends only
        on its own entries in time order, not on how many trailing zero entries it has
        (excluded patients, whose number depends on the other trials of the block), so a
        trial's statistic is the same to the last bit whatever trials it is analysed with.
        """
        m = self.row_first.size
        counts = np.diff(self.row_first, append=values.size)
        width = int(counts.max()) if m else 0
        if np.all(counts == width):  # one entry per patient: already a rectangle
            table = values.reshape(m, width)
        else:
            table = np.zeros((m, width))
            position = np.arange(values.size) - np.repeat(self.row_first, counts)
            table[np.repeat(np.arange(m), counts), position] = values
        return np.cumsum(table, axis=1)[:, -1] if width else np.zeros(m)

    def rows(self) -> np.ndarray:
        """The row (within the block) of every entry."""
        counts = np.diff(self.row_first, append=self.d.size)
        return np.repeat(np.arange(self.row_first.size, dtype=np.int64), counts)

    def expected_and_variance(self, scan: _RiskSetScan) -> tuple[np.ndarray, np.ndarray]:
        """Expected experimental-arm events and their hypergeometric variance per group."""
        size = self.d.size
        expected, var_terms, w1, w2 = (buf[:size] for buf in scan.float_work)
        # max(n, 1) and max(n - 1, 1) only change groups whose numerator is 0 anyway
        # (n <= 0: the excluded patients; n == 1: then d == 0 or n - d == 0).
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

    Each row is sorted once on a 64-bit key made of the bits of the time (for times >= 0 the
    IEEE-754 bits are monotone in the value, so equal times give equal bits and ties stay
    exact) rebased to the smallest time of the block and shifted left by two, with the event
    flag in bit 0 and the arm flag in bit 1.  Zero and infinite times are first moved next to
    the smallest positive and largest finite times (which keeps the order), so the rebased
    span fits unless the positive finite times span more than 512 binades (a ratio of about
    ``1e154``); then each row is sorted twice instead, on the time bits shifted left by one
    with the event flag, then with the arm flag.  The sign bit is cleared first, so ``-0.0``
    counts as ``0.0``.  Excluded patients get a key above every valid one (never at risk).

    Cumulative counts of events and of experimental patients along the sorted rows then give
    ``d``, ``n`` and ``n1`` of each tie group.  When no two valid times of a block tie (the
    usual case for continuous times), every sorted position is its own group and the counts
    are computed in place, without compaction.
    """

    def __init__(self, shape: tuple[int, int]):
        n_rep, n_pat = shape
        self.n_pat = n_pat
        self.block_rows = max(1, min(n_rep, _BLOCK_RECORDS // max(n_pat, 1)))
        size = self.block_rows * n_pat
        self.key = np.empty(size, dtype=np.uint64)
        self.work = np.empty(size, dtype=np.uint64)
        self.flags = np.empty(size, dtype=np.uint8)
        self.cum_event = np.empty(size, dtype=np.int64)
        self.cum_group = np.empty(size, dtype=np.int64)
        self.last = np.empty(size, dtype=bool)
        self.int_work = [np.empty(size, dtype=np.int64) for _ in range(2)]
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
        n_rep, n_pat = time.shape
        if n_pat == 0:
            return
        bits = time.view(np.uint64)
        for rows, included in _block_masks(n_rep, self.block_rows, strata, valid):
            yield rows, self.scan(bits[rows], event[rows], group[rows], included)

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
        if included is not None and included.all():
            included = None
        excluded = None if included is None else ~included
        key = self.key[:size].reshape(m, n_pat)
        work = self.work[:size].reshape(m, n_pat)
        cum_event = self.cum_event[:size]
        cum_group = self.cum_group[:size]

        np.bitwise_and(bits, _SIGN_CLEAR, out=key)
        packed = self._pack(key, event, group, excluded)
        if packed:
            key.sort(axis=1)
            np.right_shift(key, _TWO, out=work)
        else:
            key_event = self._sort_fallback(bits, event, excluded)
            np.right_shift(key_event, _ONE, out=work)
        # The tie groups are the runs of equal time bits (the same positions in both orders of
        # the fallback, which agree on the times).
        last = self.last[:size].reshape(m, n_pat)
        np.not_equal(work[:, 1:], work[:, :-1], out=last[:, :-1])
        last[:, -1] = True
        n_groups = int(np.count_nonzero(last))
        n_excluded = None if excluded is None else np.count_nonzero(excluded, axis=1)
        # Excluded patients tie among themselves at the end of their row.
        excluded_ties = 0 if excluded is None else int(np.maximum(n_excluded - 1, 0).sum())

        # cum_x[k] = number of flagged patients among flat positions <= k (twice the number
        # for the arm in packed keys, where its flag is bit 1).
        if packed:
            np.bitwise_and(key, _ONE, out=work)
            if n_groups == size - excluded_ties:  # no two valid times tie
                return self._untied_groups(m, n_pat, key, work, n_excluded)
            np.cumsum(self.work[:size].view(np.int64), out=cum_event)
            np.bitwise_and(key, _TWO, out=work)
            np.cumsum(self.work[:size].view(np.int64), out=cum_group)
        else:
            np.bitwise_and(key_event, _ONE, out=key_event)
            np.cumsum(self.key[:size].view(np.int64), out=cum_event)
            key_group = self._sort_fallback(bits, group, excluded)
            np.bitwise_and(key_group, _ONE, out=work)
            np.cumsum(self.work[:size].view(np.int64), out=cum_group)

        # Group j spans flat positions stop[j - 1] + 1 .. stop[j]; a row ends every group.
        stop = np.flatnonzero(self.last[:size])
        counts = np.count_nonzero(last, axis=1)
        row_first = np.zeros(m, dtype=np.int64)
        np.cumsum(counts[:-1], out=row_first[1:])
        rows = np.repeat(np.arange(m, dtype=np.int64), counts)
        d, n, n1 = (buf[:n_groups] for buf in self.group_columns)
        at_stop, before_start = (buf[:n_groups] for buf in self.int_work)

        np.take(cum_event, stop, out=at_stop)
        before_start[0] = 0
        before_start[1:] = at_stop[:-1]
        np.subtract(at_stop, before_start, out=d)

        # n1 = arm patients of the row at or after the group start.
        np.take(cum_group, stop, out=at_stop)
        before_start[1:] = at_stop[:-1]
        row_end_count = cum_group[n_pat - 1 :: n_pat]
        np.take(row_end_count, rows, out=at_stop)
        np.subtract(at_stop, before_start, out=n1)
        if packed:
            n1 *= 0.5

        # n = valid patients of the row at or after the group start; start = stop[j-1] + 1.
        row_valid_end = np.arange(1, m + 1, dtype=np.int64) * n_pat
        if excluded is not None:
            row_valid_end -= n_excluded
        np.take(row_valid_end, rows, out=at_stop)
        before_start[0] = 0
        before_start[1:] = stop[:-1]
        before_start[1:] += 1
        np.subtract(at_stop, before_start, out=n)
        return _TieGroups(d, n, n1, row_first)

    def _untied_groups(
        self,
        m: int,
        n_pat: int,
        key: np.ndarray,
        events: np.ndarray,
        n_excluded: np.ndarray | None,
    ) -> _TieGroups:
        """Tie groups when no two valid times of a row are equal: one per patient record.

        ``key`` holds the sorted packed keys and ``events`` their event flags.  Every position
        is its own group, so no compaction is needed; excluded patients each get an entry,
        with ``d == 0`` and ``n <= 0``.
        """
        size = m * n_pat
        d, n, n1 = (buf[:size].reshape(m, n_pat) for buf in self.group_columns)
        np.copyto(d, events.view(np.int64))
        arm = events  # reuse the buffer: twice the arm flag
        np.bitwise_and(key, _TWO, out=arm)
        arm = arm.view(np.int64)
        cum_group = self.cum_group[:size].reshape(m, n_pat)
        np.cumsum(arm, axis=1, out=cum_group)
        # n1 = arm patients at or after the position: row total - cumulative + own flag.
        np.subtract(cum_group[:, -1:], cum_group, out=n1)
        n1 += arm
        n1 *= 0.5
        position = np.arange(n_pat, dtype=np.float64)
        if n_excluded is None:
            np.subtract(float(n_pat), position, out=n)
        else:
            n_valid = (n_pat - n_excluded).astype(np.float64)
            np.subtract(n_valid[:, None], position, out=n)
        row_first = np.arange(m, dtype=np.int64) * n_pat
        return _TieGroups(d.reshape(-1), n.reshape(-1), n1.reshape(-1), row_first)

    def _sort_fallback(
        self, bits: np.ndarray, flag: np.ndarray, excluded: np.ndarray | None
    ) -> np.ndarray:
        """Sorted keys ``(time bits << 1) | flag`` in ``self.key``, when packing fails."""
        key = self.key[: bits.size].reshape(bits.shape)
        np.bitwise_and(bits, _SIGN_CLEAR, out=key)
        key <<= _ONE
        key |= flag
        if excluded is not None:
            np.putmask(key, excluded, _EXCLUDED_KEY)
        key.sort(axis=1)
        return key

    def _pack(
        self,
        key: np.ndarray,
        event: np.ndarray,
        group: np.ndarray,
        excluded: np.ndarray | None,
    ) -> bool:
        """Turn the time bits in ``key`` into packed sort keys; False if they do not fit.

        ``key`` holds the sign-cleared time bits on entry; on False it is left modified.
        """
        if excluded is not None:
            first_included = int(np.argmin(excluded))
            if excluded.flat[first_included]:
                key.fill(_EXCLUDED_PACKED)  # nobody in this block and stratum
                return True
            # A valid patient's value is neutral for the minimum and the maximum.
            np.copyto(key, key.flat[first_included], where=excluded)
        lo = key.min()
        hi = key.max()
        if lo == 0 and hi > 0:
            lo = key.min(where=key > 0, initial=hi) - _ONE
            np.maximum(key, lo, out=key)
        if hi == _INF_BITS and lo < _INF_BITS:
            hi = key.max(where=key < _INF_BITS, initial=lo) + _ONE
            np.minimum(key, hi, out=key)
        if hi - lo >= _PACKED_SPAN:
            return False
        key -= lo
        key <<= _TWO
        flags = self.flags[: key.size].reshape(key.shape)
        np.left_shift(group.view(np.uint8), 1, out=flags)
        flags |= event.view(np.uint8)
        key |= flags
        if excluded is not None:
            np.putmask(key, excluded, _EXCLUDED_PACKED)
        return True


def _block_masks(n_rep: int, block_rows: int, strata, valid):
    """Blocks of replicates and, per stratum, the mask of the patients included.

    Yields ``(rows, included)``: a slice of replicates and a boolean mask (``None`` when
    every patient is included), one stratum at a time.
    """
    if strata is None:
        n_strata = 1
    else:
        n_strata = int(strata.max(where=True if valid is None else valid, initial=0)) + 1
    for first in range(0, n_rep, block_rows):
        rows = slice(first, min(first + block_rows, n_rep))
        for k in range(n_strata):
            if strata is None:
                included = None if valid is None else valid[rows]
            else:
                included = strata[rows] == k
                if valid is not None:
                    included &= valid[rows]
            yield rows, included
