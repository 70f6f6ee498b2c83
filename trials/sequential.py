"""Group-sequential trials: interim analyses at fractions of the target events.

Each simulated trial is analysed at every look (the calendar time of the look's event
count), with the primary test's boundaries recomputed at the information actually
observed — the events at each look over the planned maximum — as a real trial would
(:func:`analysis.boundaries.boundaries_at`). The trial stops at the first look where the
primary statistic crosses the efficacy boundary or falls to the futility bound (binding
or not, a simulated trial stops there, as the protocol says it will); every endpoint is
then reported as analysed at that look.
"""

from __future__ import annotations

from dataclasses import fields, replace
from functools import cached_property

import numpy as np

from analysis.boundaries import GroupSequentialDesign, boundaries_at, group_sequential_design
from trials.analyse import Comparison, analyse
from trials.engine import Cohort, Cutoff, EndpointData, Layout, apply_cutoff
from trials.protocol import Protocol


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

    def cutoffs(self, cohort: Cohort, primary: EndpointData) -> tuple[list[Cutoff], np.ndarray]:
        """The cut-off of every look (when its number of primary events is reached) and
        the events observed at each look, ``(R, K)``."""
        observable = primary.time <= primary.censor
        calendar = np.where(observable, cohort.enrollment + primary.time, np.inf)
        # the last look's order statistic first; the earlier ones lie among the smaller part
        last_k = int(self.events[-1]) - 1
        smaller = np.partition(calendar, last_k, axis=1)[:, : last_k + 1]
        if len(self.events) > 1:
            smaller = np.partition(smaller, self.events[:-1] - 1, axis=1)
        kth = smaller[:, self.events - 1]
        short = ~np.isfinite(kth[:, -1])  # trials that never reach the target events
        last = np.zeros(len(kth))
        total = np.zeros(len(kth), dtype=np.int64)
        if short.any():
            last[short] = np.max(np.where(observable[short], calendar[short], -np.inf), axis=1)
            total[short] = observable[short].sum(axis=1)
        out, events = [], []
        for k in range(len(self.events)):
            reached = np.isfinite(kth[:, k])
            out.append(
                Cutoff(np.where(reached, kth[:, k], last), cohort.enrollment, np.inf, reached)
            )
            events.append(np.where(reached, self.events[k], total))
        return out, np.stack(events, axis=1)

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
        cutoffs, events = self.cutoffs(cohort, data[0])
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
        for k, cutoff in enumerate(cutoffs):
            # every trial still running: views rather than copies
            rows = slice(None) if active.size == n_rep else active
            # patients are in order of enrollment: those enrolled by the look are a prefix
            enrolled = cohort.enrollment[rows] <= cutoff.analysis_time[rows, None]
            cols = slice(0, max(int(enrolled.sum(axis=1).max()), 1))
            covariates = {name: values[rows, cols] for name, values in cohort.covariates.items()}
            look = analyse(
                self.layout,
                cohort.arm[rows, cols],
                covariates,
                [
                    apply_cutoff(_rows(d, rows, cols), _cutoff_rows(cutoff, rows, cols))
                    for d in data
                ],
                null,
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
        looks, reasons = [], []
        for j in range(len(chosen)):
            at = stop[:, j] if j < n_arms else trial_stop
            rejected = reject[:, j] if j < n_arms else np.zeros(n_rep, dtype=bool)
            looks.append(at + 1)
            reasons.append(
                np.where(rejected, "efficacy", np.where(at == n_looks - 1, "final", "futility"))
                if j < n_arms
                else np.where(at == n_looks - 1, "final", "stopped")
            )
        rows = np.arange(n_rep)
        cutoff = Cutoff(
            np.stack([c.analysis_time for c in cutoffs], axis=1)[rows, trial_stop],
            cohort.enrollment,
            np.inf,
            np.stack([c.target_reached for c in cutoffs], axis=1)[rows, trial_stop],
        )
        return chosen, cutoff, looks, reasons

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
        unique, inverse = np.unique(np.round(fractions, 12), axis=0, return_inverse=True)
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


def _cutoff_rows(cutoff: Cutoff, rows: np.ndarray | slice, cols: slice) -> Cutoff:
    return Cutoff(
        cutoff.analysis_time[rows],
        cutoff.enrollment[rows, cols],
        cutoff.max_follow_up,
        cutoff.target_reached[rows],
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
