"""Group-sequential trials: interim analyses at fractions of the target events.

Each simulated trial is analysed at every look (the calendar time of the look's event
count), with the primary test's boundaries recomputed at the information actually
observed — the events at each look over the planned maximum — as a real trial would
(:func:`analysis.boundaries.boundaries_at`). The trial stops at the first look where the
primary statistic crosses the efficacy boundary or falls to the futility bound (binding
or not, a simulated trial stops there, as the protocol says it will); every endpoint is
then reported as analysed at that look.

A look sees the patients enrolled by its cut-off — a prefix of every row, the patients
being in order of enrollment — of the trials still running, administratively censored as
:func:`trials.engine.apply_cutoff` censors them. An endpoint analysed with the
(unstratified) log-rank test goes through :class:`analysis.logrank_looks.LogrankLooks`,
prepared once for all looks (its event calendar also places the looks), which censors and
scans only those trials and patients, block by block; every other endpoint goes through
:func:`trials.analyse.analyse`. Both give what ``analyse`` gives on ``apply_cutoff``'s data.
"""

from __future__ import annotations

from dataclasses import fields, replace
from functools import cached_property

import numpy as np

from analysis.boundaries import GroupSequentialDesign, boundaries_at, group_sequential_design
from analysis.logrank import LogrankResult
from analysis.logrank_looks import LogrankLooks, _entered_columns, event_calendar
from trials.analyse import (
    Comparison,
    adjust_for_multiplicity,
    analyse,
    comparison,
    comparison_alpha,
)
from trials.engine import Cohort, Cutoff, EndpointData, Layout, apply_cutoff
from trials.estimands import true_values
from trials.protocol import Endpoint, Protocol, TimeToEventEndpoint
from trials.validation import endpoint_analysis


def design_of(protocol: Protocol) -> GroupSequentialDesign:
    """The planned boundaries of each comparison of the protocol's group-sequential
    design (at alpha / k for k experimental arms with Bonferroni)."""
    from trials.analyse import comparison_alpha

    gs = protocol.analysis.group_sequential
    return group_sequential_design(
        gs.information_fractions,
        alpha=comparison_alpha(protocol),
        beta=gs.beta,
        efficacy=gs.efficacy,
        efficacy_parameter=gs.efficacy_parameter,
        futility=gs.futility,
        futility_parameter=gs.futility_parameter,
        binding=gs.binding,
        sided=protocol.analysis.sided,
    )


def look_events(protocol: Protocol) -> np.ndarray:
    """Planned events at each look (the last is the target)."""
    target = protocol.analysis.timing.target_events
    fractions = np.asarray(protocol.analysis.group_sequential.information_fractions)
    return np.maximum(np.round(fractions * target).astype(int), 1)


class SequentialAnalysis:
    """Looks, boundaries and stopping of one protocol's group-sequential design."""

    def __init__(self, layout: Layout):
        self.layout = layout
        self.protocol = layout.protocol

    @cached_property
    def design(self) -> GroupSequentialDesign:
        return design_of(self.protocol)

    @cached_property
    def events(self) -> np.ndarray:
        return look_events(self.protocol)

    def cutoffs(self, calendar: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The calendar time of every look, when its number of primary events is
        reached, whether it was reached and the events observed at it, each ``(R, K)``.

        ``calendar`` is the primary endpoint's
        :func:`~analysis.logrank_looks.event_calendar`. A trial short of a look's events
        has that look at its last event.
        """
        ordered = np.sort(calendar, axis=1)  # the observable events first, in order
        analysis_time = ordered[:, self.events - 1]
        reached = np.isfinite(analysis_time)
        events = np.broadcast_to(self.events, analysis_time.shape).copy()
        short = ~reached[:, -1]  # trials that never reach the target events
        if short.any():
            total = np.count_nonzero(~np.isnan(ordered[short]), axis=1)
            last = np.where(total > 0, ordered[short, np.maximum(total - 1, 0)], -np.inf)
            analysis_time[short] = np.where(reached[short], analysis_time[short], last[:, None])
            events[short] = np.where(reached[short], self.events, total[:, None])
        return analysis_time, reached, events

    def run(self, cohort: Cohort, data: list[EndpointData], null: bool):
        """Analyse the looks in turn. Each experimental arm's comparison with control
        stops at its first crossing: for efficacy (success) or futility (the arm is
        dropped); the trial goes on while an arm is still running, and a trial or arm
        that has stopped is not analysed at later looks.

        Returns the comparisons (each at its own stopping look; secondary endpoints at
        the trial's last look), the cut-off of the trial's last look, and per comparison
        the 1-based stopping look and its reason: 'efficacy' (the boundary was crossed,
        at an interim or the final look), 'futility' (stopped at an interim futility
        bound) or 'final' (the final analysis without rejection).
        """
        looks = _Looks(self, cohort, data, null)
        analysis_time, reached, events = self.cutoffs(looks.primary_calendar)
        efficacy, futility = self.boundaries(events)
        n_rep, n_looks = efficacy.shape
        n_arms = len(self.protocol.experimental_arms)
        stop = np.full((n_rep, n_arms), n_looks - 1)
        reject = np.zeros((n_rep, n_arms), dtype=bool)
        running = np.ones((n_rep, n_arms), dtype=bool)
        trial_stop = np.full(n_rep, n_looks - 1)
        active = np.arange(n_rep)
        stored: list[dict] = []
        templates: list[Comparison] = []
        for k in range(n_looks):
            look = looks.analyse(
                analysis_time[:, k], reached[:, k], None if active.size == n_rep else active
            )
            if not stored:
                templates = look
                stored = [_empty_like(c, n_rep) for c in look]
            for j in range(n_arms):  # the primary endpoint's comparisons come first
                statistic = look[j].statistic
                with np.errstate(invalid="ignore"):
                    crossed_efficacy = statistic >= efficacy[active, k]
                    stopping = crossed_efficacy | (statistic <= futility[active, k])
                if k == n_looks - 1:
                    stopping[:] = True
                stopping &= running[active, j]
                rows = active[stopping]
                stop[rows, j] = k
                reject[rows, j] = crossed_efficacy[stopping]
                running[rows, j] = False
                _store(stored[j], look[j], rows, stopping)
            done = ~running[active].any(axis=1)
            trial_stop[active[done]] = k
            for j in range(n_arms, len(look)):  # secondary endpoints: at the trial's end
                _store(stored[j], look[j], active[done], done)
            active = active[~done]
            if active.size == 0:
                break
        for j in range(n_arms):
            stored[j]["reject"] = reject[:, j]
        chosen = [replace(t, **values) for t, values in zip(templates, stored, strict=True)]
        stop_looks, reasons = [], []
        for j in range(len(chosen)):
            at = stop[:, j] if j < n_arms else trial_stop
            rejected = reject[:, j] if j < n_arms else np.zeros(n_rep, dtype=bool)
            stop_looks.append(at + 1)
            reasons.append(
                np.where(rejected, "efficacy", np.where(at == n_looks - 1, "final", "futility"))
                if j < n_arms
                else np.where(at == n_looks - 1, "final", "stopped")
            )
        rows = np.arange(n_rep)
        cutoff = Cutoff(
            analysis_time[rows, trial_stop], cohort.enrollment, np.inf, reached[rows, trial_stop]
        )
        return chosen, cutoff, stop_looks, reasons

    def boundaries(self, events: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Efficacy and futility z boundaries per trial at its observed events.

        Spending-function boundaries are recomputed at the observed information fractions;
        classical O'Brien–Fleming and Pocock boundaries exist only at their planned looks
        and are used as planned.
        """
        target = self.protocol.analysis.timing.target_events
        fractions = np.nan_to_num(events, nan=0.0) / target
        fractions[:, -1] = 1.0  # the final analysis spends what is left
        planned = np.asarray(self.design.information_fractions)
        usable = np.all(np.diff(fractions, axis=1) > 0, axis=1) & (fractions[:, 0] > 0)
        # a trial that never reaches a look's events keeps the planned boundaries
        fractions[~usable] = planned
        efficacy = np.empty_like(fractions)
        futility = np.empty_like(fractions)
        rounded = np.round(fractions, 12)
        if (rounded == rounded[:1]).all():  # as usual, every trial at the same events
            unique, inverse = rounded[:1], np.zeros(len(rounded), dtype=np.intp)
        else:
            unique, inverse = np.unique(rounded, axis=0, return_inverse=True)
        classical = self.design.efficacy_type in ("OF", "P")
        for i, row in enumerate(unique):
            if classical or np.allclose(row, planned, rtol=0, atol=1e-9):
                # as planned (classical boundaries exist only at their planned looks)
                eff, fut = self.design.efficacy, self.design.futility
            else:
                bounds = boundaries_at(self.design, row)
                eff, fut = bounds.efficacy, bounds.futility
            efficacy[inverse.ravel() == i] = eff
            futility[inverse.ravel() == i] = fut
        return efficacy, futility


class _Looks:
    """The analysis of one chunk's trials at a look, for the trials still running.

    Endpoints analysed with the log-rank test go through
    :class:`analysis.logrank_looks.LogrankLooks` (prepared once for all looks, one test
    per experimental arm); the others through :func:`trials.analyse.analyse` on
    :func:`trials.engine.apply_cutoff`'s data. The comparisons come in ``analyse``'s order.
    """

    def __init__(self, sequential: SequentialAnalysis, cohort: Cohort, data, null: bool):
        self.layout = sequential.layout
        self.protocol = protocol = sequential.protocol
        self.cohort = cohort
        self.data = data
        self.null = null
        control = next(i for i, a in enumerate(protocol.arms) if a.control)
        two_arms = len(protocol.arms) == 2
        # per experimental arm: its name, index, patients in it, patients compared and
        # how many of those among the first i patients, (R, N + 1) (None with two arms)
        self.arms = []
        for k, arm in enumerate(protocol.arms):
            if arm.control:
                continue
            compared, counts = None, None
            if not two_arms:
                compared = (cohort.arm == control) | (cohort.arm == k)
                counts = np.zeros((compared.shape[0], compared.shape[1] + 1), dtype=np.intp)
                np.cumsum(compared, axis=1, out=counts[:, 1:])
            self.arms.append((arm.name, k, cohort.arm == k, compared, counts))
        self.logrank = [
            LogrankLooks(d.time, d.censor, cohort.enrollment)
            if _uses_logrank(protocol, d.endpoint)
            else None
            for d in data
        ]
        primary = data[0]
        self.primary_calendar = (
            self.logrank[0].calendar
            if self.logrank[0] is not None
            else event_calendar(primary.time, primary.censor, cohort.enrollment)
        )

    def analyse(
        self, time: np.ndarray, reached: np.ndarray, rows: np.ndarray | None
    ) -> list[Comparison]:
        """Every comparison at the cut-off ``time`` (one per replicate of the chunk) of
        the replicates ``rows`` (None: all)."""
        cohort = self.cohort
        index = slice(None) if rows is None else rows
        out: list[Comparison] = []
        for d, looks in zip(self.data, self.logrank, strict=True):
            if looks is not None:
                out += self._logrank(d.endpoint, looks, time, rows)
                continue
            cols = slice(0, max(_entered_columns(cohort.enrollment, index, time[index]), 1))
            cutoff = Cutoff(time[index], cohort.enrollment[index, cols], np.inf, reached[index])
            out += analyse(
                self.layout,
                cohort.arm[index, cols],
                {name: values[index, cols] for name, values in cohort.covariates.items()},
                [apply_cutoff(_rows(d, index, cols), cutoff)],
                self.null,
            )
        return out

    def _logrank(
        self, endpoint: Endpoint, looks: LogrankLooks, time: np.ndarray, rows: np.ndarray | None
    ) -> list[Comparison]:
        """The endpoint's comparisons as :func:`trials.analyse.analyse` makes them with
        the log-rank test."""
        protocol = self.protocol
        enrolled = _n_enrolled(self.cohort.enrollment, time)
        truth = true_values(protocol, endpoint, self.null)
        comparisons = []
        for name, k, group, valid, counts in self.arms:
            fit = looks.test(time, group, valid, rows)
            n_analysed = enrolled if counts is None else counts[np.arange(len(enrolled)), enrolled]
            comparisons.append(
                _logrank_comparison(
                    protocol,
                    endpoint,
                    name,
                    truth[k],
                    fit,
                    n_analysed if rows is None else n_analysed[rows],
                )
            )
        return adjust_for_multiplicity(protocol, comparisons)


def _n_enrolled(enrollment: np.ndarray, time: np.ndarray) -> np.ndarray:
    """The patients enrolled by ``time`` in each row: enrollment ascends along each row, so
    every row is bisected at once."""
    n_rep, n_pat = enrollment.shape
    rows = np.arange(n_rep)
    low = np.zeros(n_rep, dtype=np.intp)  # patients before low are enrolled
    high = np.full(n_rep, n_pat)  # patients from high on are not
    for _ in range(n_pat.bit_length()):
        middle = (low + high) // 2
        enrolled = enrollment[rows, np.minimum(middle, n_pat - 1)] <= time
        enrolled &= middle < high
        low = np.where(enrolled, middle + 1, low)
        high = np.where(enrolled, high, middle)
    return low


def _uses_logrank(protocol: Protocol, endpoint: Endpoint) -> bool:
    """Whether the endpoint is analysed with the (unstratified) log-rank test alone."""
    return (
        isinstance(endpoint, TimeToEventEndpoint)
        and endpoint_analysis(protocol, endpoint).test == "logrank"
    )


def _logrank_comparison(
    protocol: Protocol,
    endpoint: Endpoint,
    arm: str,
    truth: float,
    fit: LogrankResult,
    n_analysed: np.ndarray,
) -> Comparison:
    """One arm's log-rank comparison, as :func:`trials.analyse.analyse` builds it: the
    Peto estimate of the log hazard ratio, the statistic ``-z`` (positive favouring the
    experimental arm), its one- or two-sided normal p-value and Wald interval."""
    return comparison(
        endpoint.name, arm, "log_hazard_ratio", truth, fit.log_hr, fit.se_log_hr, -fit.z,
        n_analysed, fit.events.astype(float),
        sided=protocol.analysis.sided, alpha=comparison_alpha(protocol),
    )


def _rows(data: EndpointData, rows: np.ndarray | slice, cols: slice) -> EndpointData:
    """The endpoint data of some replicates and patients."""
    return replace(
        data,
        **{
            f.name: getattr(data, f.name)[rows, cols]
            for f in fields(data)
            if isinstance(getattr(data, f.name), np.ndarray)
        },
    )


def _store(values: dict, comparison: Comparison, rows: np.ndarray, mask: np.ndarray) -> None:
    for name, array in values.items():
        array[rows] = getattr(comparison, name)[mask]


def _empty_like(comparison: Comparison, n_rep: int) -> dict[str, np.ndarray]:
    """Full-size arrays for the per-replicate fields of a comparison."""
    return {
        f.name: np.zeros(n_rep, dtype=getattr(comparison, f.name).dtype)
        for f in fields(comparison)
        if isinstance(getattr(comparison, f.name), np.ndarray)
    }
