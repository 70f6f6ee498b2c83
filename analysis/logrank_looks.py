"""The log-rank test at an interim look of trials with staggered entry.

A trial analysed at a calendar cut-off ``c`` has followed each patient enrolled by then
(``entry <= c``) for ``c - entry``. An event that comes before the patient's own
censoring (``time <= censor``, both measured from entry) and by the cut-off on the
calendar scale (``entry + time <= c``, so that the event that triggers an event-driven
analysis counts exactly) is observed; any other patient is censored at the earlier of the
censoring and the end of follow-up (administrative censoring). A group-sequential trial
applies this rule at each of its looks.

:func:`administrative_censoring` applies the rule to whole arrays; the trial engine's
cut-off (:func:`trials.engine.apply_cutoff`) uses it. :class:`LogrankLooks` holds what
does not depend on the cut-off (each patient's follow-up to the first of event and
censoring, and the calendar time of an event that comes first) and tests one look at a
time: it applies the cut-off block by block of replicates inside the risk-set scan of
:mod:`analysis.logrank`, to the replicates and patients of the look only, so that a look's
censored data are never built for a whole chunk of trials; its results are those of
:func:`analysis.logrank.logrank_test` on the censored data, bit for bit.

Each look sorts its patients again. Sorting once for all looks does not pay here: the
patients censored by a look's cut-off (at ``c - entry``) must then be merged into the
sorted order at each look, and with numpy that merge (a search or a two-run sort per
trial) costs about as much as the sort it replaces.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from analysis.logrank import LogrankResult, _logrank_result, _RiskSetScan

__all__ = ["LogrankLooks", "administrative_censoring", "event_calendar"]


def administrative_censoring(
    time: np.ndarray,
    censor: np.ndarray,
    entry: np.ndarray,
    cutoff: np.ndarray,
    max_follow_up: float = np.inf,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Times and event flags observed at a calendar cut-off.

    A patient is enrolled by the cut-off when ``cutoff - entry >= 0``. An enrolled
    patient's event is observed when ``time <= censor``, ``entry + time <= cutoff`` (on the
    calendar scale) and ``time <= max_follow_up``; the patient is then analysed at
    ``time``, and otherwise censored at ``max(min(censor, cutoff - entry, max_follow_up),
    0)``.

    Parameters
    ----------
    time : ndarray of float, shape (R, N)
        Time from entry to the event (``inf``: none).
    censor : ndarray of float, shape (R, N)
        Time from entry to censoring by dropout or an intercurrent event (``inf``: none).
    entry : ndarray of float, shape (R, N)
        Calendar time of entry (enrollment).
    cutoff : ndarray of float, shape (R,)
        Calendar time of the analysis of each replicate.
    max_follow_up : float, default inf
        Longest follow-up of any patient.

    Returns
    -------
    time : ndarray of float, shape (R, N)
        The time analysed: the event's where ``event``, the censoring time elsewhere.
    event : ndarray of bool, shape (R, N)
        Whether the event is observed.
    enrolled : ndarray of bool, shape (R, N)
        Whether the patient is enrolled by the cut-off (and so analysed).

    Notes
    -----
    The censoring time is computed for everyone as ``max(min(time, censor, horizon), 0)``,
    with ``horizon = min(cutoff - entry, max_follow_up)``; for a patient without an
    observed event it equals ``max(min(censor, horizon), 0)``: either ``time > censor``;
    or the event is after the cut-off on the calendar scale, and then ``horizon <= time``
    in floating point too (were ``fl(cutoff - entry) > time``, then ``cutoff > entry +
    time`` exactly and ``fl(entry + time) <= cutoff``); or ``time > max_follow_up >=
    horizon``; or the patient is not enrolled and both are 0. An observed event keeps its
    time, which the expression gives unless rounding puts an event that is by the cut-off
    on the calendar scale at a follow-up ``fl(cutoff - entry)`` just short of it; those
    few are restored. No select over the whole array is needed.
    """
    horizon = cutoff[:, None] - entry  # follow-up by the cut-off
    enrolled = horizon >= 0
    event = time <= censor
    event &= entry + time <= cutoff[:, None]
    if np.isfinite(max_follow_up):
        event &= time <= max_follow_up
        np.minimum(horizon, max_follow_up, out=horizon)
    event &= enrolled
    observed = np.fmin(time, censor)
    np.minimum(observed, horizon, out=observed)
    np.maximum(observed, 0.0, out=observed)
    shifted = event & (observed != time)
    if shifted.any():
        np.copyto(observed, time, where=shifted)
    return observed, event, enrolled


def event_calendar(time: np.ndarray, censor: np.ndarray, entry: np.ndarray) -> np.ndarray:
    """Calendar time of each event that comes before its censoring, ``entry + time``
    where ``time <= censor``; NaN elsewhere.

    The event is observed at a cut-off exactly when this is ``<=`` the cut-off (NaN never
    is).
    """
    calendar = entry + time
    np.copyto(calendar, np.nan, where=~(time <= censor))
    return calendar


class LogrankLooks:
    """Two-arm log-rank tests of staggered-entry trials at calendar cut-offs (interim looks).

    At a cut-off the data are those :func:`administrative_censoring` gives (without a
    follow-up limit): the patients enrolled by the cut-off, their events observed by then
    on the calendar scale, everyone else censored at the earlier of their censoring and
    the end of follow-up. On them each test is :func:`analysis.logrank.logrank_test`'s:
    at each distinct event time with :math:`d` events among :math:`n` at risk,
    :math:`n_1` in the experimental arm, ``O - E`` adds the experimental arm's events less
    :math:`d\\,n_1/n` and ``V`` adds :math:`d\\,(n_1/n)(1-n_1/n)(n-d)/(n-1)`; a patient
    censored at an event time is at risk at it.

    What does not depend on the cut-off is computed once: each patient's follow-up to the
    first of event and censoring, ``min(time, censor)``, and the calendar time of the
    event where it comes first, ``entry + time`` (NaN where the censoring comes first). At
    a cut-off ``c`` the patient is then enrolled when ``c - entry >= 0``, has an event
    when that calendar time is ``<= c``, and is analysed at ``min(follow-up, c - entry)``
    otherwise (the event's own time when it has one).

    Parameters
    ----------
    time : array_like of float, shape (R, N) or (N,)
        Time from entry to the event, ``>= 0`` (``inf``: none).
    censor : array_like of float, shape like `time`
        Time from entry to censoring by dropout or an intercurrent event, ``>= 0``
        (``inf``: none).
    entry : array_like of float, shape like `time`
        Calendar time of entry, ascending along each replicate (patients in order of
        enrollment, as the trial engine has them).

    Attributes
    ----------
    calendar : ndarray of float, shape (R, N)
        Calendar time of each patient's event where it comes before the censoring, NaN
        elsewhere; an event is observed at a cut-off when its calendar time is ``<=`` the
        cut-off.

    Raises
    ------
    ValueError
        If the inputs do not have one shape or are not 1-D or 2-D, a time or censoring
        time is negative or ``nan``, or the entry times are not in order.

    Notes
    -----
    A test analyses only the columns up to the last patient enrolled by a cut-off in any
    of its replicates, and only the replicates asked for, in the blocks of
    :func:`~analysis.logrank.logrank_test`'s risk-set scan (about ``2**16`` patient
    records): each block's data at the cut-off are made and then scanned, so no array of
    the whole chunk's censored data is built. The risk sets and the per-replicate sums are
    those of ``logrank_test`` on the same replicates and columns, so the results are equal
    to it bit for bit.

    Examples
    --------
    >>> import numpy as np
    >>> from analysis.logrank_looks import LogrankLooks
    >>> entry = np.array([0.0, 0.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0])
    >>> time = np.array([1.0, 4.0, 2.0, 0.5, 5.0, 1.0, 0.5, 2.0])
    >>> censor = np.full(8, np.inf)
    >>> group = np.array([False, True, False, True, False, True, False, True])
    >>> looks = LogrankLooks(time, censor, entry)
    >>> res = looks.test(3.5, group)
    >>> int(res.events), round(float(res.observed_minus_expected), 4)
    (5, -0.3)
    """

    def __init__(self, time: ArrayLike, censor: ArrayLike, entry: ArrayLike):
        t = np.asarray(time, dtype=np.float64)
        if t.ndim not in (1, 2):
            raise ValueError(
                "time must be 1-D (one trial) or 2-D (replicates, patients); "
                f"got {t.ndim} dimensions"
            )
        self.one_trial = t.ndim == 1
        c = self._as_2d("censor", censor, t.shape, np.float64)
        e = self._as_2d("entry", entry, t.shape, np.float64)
        t = self._as_2d("time", t, t.shape, np.float64)
        self.follow_up = np.minimum(t, c)  # nan if either is
        bad = ~(self.follow_up >= 0)
        if bad.any():
            r, i = np.argwhere(bad)[0]
            where = f"[{i}]" if self.one_trial else f"[{r}, {i}]"
            raise ValueError(
                f"time and censor must be >= 0 (not nan); time{where} = {float(t[r, i])!r}, "
                f"censor{where} = {float(c[r, i])!r}"
            )
        if (e[:, 1:] < e[:, :-1]).any():
            raise ValueError("entry must ascend along each replicate (patients in order of entry)")
        self.entry = e
        self.calendar = event_calendar(t, c, e)

    def _as_2d(self, name: str, a: ArrayLike, shape: tuple, dtype: type) -> np.ndarray:
        arr = np.asarray(a)
        if arr.shape != shape:
            raise ValueError(f"{name} has shape {arr.shape}; expected {shape}, the shape of time")
        arr = arr.astype(dtype, copy=False)
        return arr[None, :] if self.one_trial else arr

    def test(
        self,
        cutoff: ArrayLike,
        group: ArrayLike,
        valid: ArrayLike | None = None,
        rows: ArrayLike | None = None,
    ) -> LogrankResult:
        """The log-rank test of each replicate at a calendar cut-off.

        Parameters
        ----------
        cutoff : array_like of float, shape (R,), or a scalar for one trial
            Calendar time of the analysis of each replicate.
        group : array_like of bool, shape (R, N) or (N,)
            True for the experimental arm, False for the control arm.
        valid : array_like of bool, shape like `group`, optional
            Patients that may be analysed (the two arms compared, in a multi-arm trial);
            default every patient. A patient not enrolled by the cut-off is left out anyway.
        rows : array_like of int, optional
            The replicates to analyse (the trials still running at a look, say), in the
            order of the results; default every replicate.

        Returns
        -------
        LogrankResult
            One value per replicate of `rows`; numpy scalars for one trial.

        Raises
        ------
        ValueError
            If `cutoff` does not have one value per replicate, `group` or `valid` does not
            have the shape of the data, or `rows` is given for one trial.
        """
        n_rep, n_pat = self.entry.shape
        shape = (n_pat,) if self.one_trial else (n_rep, n_pat)
        g = self._as_2d("group", group, shape, bool)
        v = None if valid is None else self._as_2d("valid", valid, shape, bool)
        at = np.asarray(cutoff, dtype=np.float64).reshape(-1)
        if at.shape != (n_rep,):
            raise ValueError(f"cutoff has {at.size} values; expected one per replicate ({n_rep})")
        if rows is not None:
            if self.one_trial:
                raise ValueError("rows selects replicates; a 1-D input is one trial")
            rows = np.asarray(rows, dtype=np.intp).reshape(-1)
        every = slice(None) if rows is None else rows
        n_rows = n_rep if rows is None else rows.size
        cols = slice(0, _entered_columns(self.entry, every, at[every]))

        o_minus_e = np.zeros(n_rows)
        variance = np.zeros(n_rows)
        events = np.zeros(n_rows, dtype=np.intp)
        scan = _RiskSetScan((n_rows, cols.stop))
        for first in range(0, n_rows if cols.stop else 0, scan.block_rows):
            out = slice(first, min(first + scan.block_rows, n_rows))
            block = out if rows is None else rows[out]
            follow_up = self.follow_up[block, cols]
            cut = at[block, None]
            time = cut - self.entry[block, cols]  # the follow-up available by the cut-off
            included = time >= 0
            event = self.calendar[block, cols] <= cut
            if v is not None:
                included &= v[block, cols]
            event &= included
            np.minimum(time, follow_up, out=time)
            # an event by the cut-off on the calendar scale keeps its time even where
            # rounding puts cut - entry just short of it
            shifted = event & (time != follow_up)
            if shifted.any():
                np.copyto(time, follow_up, where=shifted)
            b_group = g[block, cols]
            events[out] = np.count_nonzero(event, axis=1)
            o_minus_e[out] = np.count_nonzero(event & b_group, axis=1)
            groups = scan.scan(time.view(np.uint64), event, b_group, included)
            expected, var_terms = groups.expected_and_variance(scan)
            o_minus_e[out] -= groups.sum_by_replicate(expected)
            variance[out] += groups.sum_by_replicate(var_terms)
        return _logrank_result(o_minus_e, variance, events, self.one_trial)


def _entered_columns(entry: np.ndarray, rows: np.ndarray | slice, cutoff: np.ndarray) -> int:
    """The columns up to the last patient entered by the cut-off in any of the rows.

    Entry ascends along each row, so this is the most patients entered in a row; found by
    bisection on the columns.
    """
    low, high = 0, entry.shape[1]  # some row has column < low entered; none >= high
    while low < high:
        middle = (low + high) // 2
        if np.any(entry[rows, middle] <= cutoff):
            low = middle + 1
        else:
            high = middle
    return low
