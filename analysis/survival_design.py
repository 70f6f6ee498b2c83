"""Patients and study duration for a log-rank design under piecewise-constant accrual,
exponential survival and exponential loss to follow-up (Lachin & Foulkes; rpact's method).
Conventions as in :mod:`analysis.power`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from analysis.design_inputs import (
    Arm,
    LogrankMethod,
    _finite,
    _positive,
    _root,
)
from analysis.logrank_events import _events, logrank_power
from trials.exceptions import DesignError


@dataclass(frozen=True)
class _AccrualSpec:
    """Accrual as given: breakpoints, intensities, whether the last piece is open-ended."""

    breaks: np.ndarray
    intensity: np.ndarray
    open_ended: bool
    relative: bool


def _parse_accrual(
    accrual_time: float | Sequence[float],
    accrual_intensity: float | Sequence[float] | None,
    accrual_intensity_type: str,
) -> _AccrualSpec:
    if accrual_intensity_type not in ("absolute", "relative"):
        raise DesignError(
            "accrual_intensity_type must be 'absolute' or 'relative', "
            f"got {accrual_intensity_type!r}"
        )
    if np.ndim(accrual_time) == 0:
        end = _positive("accrual_time", accrual_time)  # type: ignore[arg-type]
        breaks = np.array([0.0, end])
    else:
        breaks = np.asarray(accrual_time, dtype=float)
        if breaks.ndim != 1 or breaks.size == 0:
            raise DesignError("accrual_time must be a number or a non-empty sequence of times")
        if not np.all(np.isfinite(breaks)):
            raise DesignError(f"accrual_time must be finite, got {breaks.tolist()}")
        if breaks[0] != 0:
            raise DesignError(
                f"accrual_time must start at 0 (the start of accrual), got {breaks.tolist()}"
            )
        if np.any(np.diff(breaks) <= 0):
            raise DesignError(f"accrual_time must be strictly increasing, got {breaks.tolist()}")
    n_closed = breaks.size - 1
    if accrual_intensity is None:
        if n_closed == 0:
            raise DesignError(
                "accrual_time = [0] (open-ended accrual) needs an absolute accrual_intensity"
            )
        intensity = np.ones(n_closed)
        relative = True
    else:
        intensity = np.atleast_1d(np.asarray(accrual_intensity, dtype=float))
        relative = accrual_intensity_type == "relative"
        if intensity.ndim != 1 or not np.all(np.isfinite(intensity)) or np.any(intensity < 0):
            raise DesignError(
                f"accrual_intensity must be finite and non-negative, got {intensity.tolist()}"
            )
    if intensity.size == n_closed:
        open_ended = False
        if not np.any(intensity > 0):
            raise DesignError("accrual_intensity must be positive in at least one period")
    elif intensity.size == n_closed + 1:
        open_ended = True
        if relative:
            raise DesignError(
                "an open-ended last accrual period (as many intensities as accrual_time "
                "entries) needs absolute intensities (patients per month)"
            )
        if intensity[-1] <= 0:
            raise DesignError("the open-ended last accrual period needs a positive intensity")
    else:
        raise DesignError(
            f"accrual_intensity has {intensity.size} values; accrual_time "
            f"{breaks.tolist()} defines {n_closed} accrual periods (give {n_closed} values, "
            f"or {n_closed + 1} to let the last period run until enrolment is complete)"
        )
    return _AccrualSpec(breaks, intensity, open_ended, relative)


@dataclass(frozen=True)
class _Accrual:
    """A finite accrual profile: periods ``[starts[j], ends[j])`` at ``intensity[j]``/month."""

    starts: np.ndarray
    ends: np.ndarray
    intensity: np.ndarray

    @property
    def n_patients(self) -> float:
        return float(np.sum((self.ends - self.starts) * self.intensity))

    @property
    def duration(self) -> float:
        return float(self.ends[-1])

    def enrolled(self, time: np.ndarray) -> np.ndarray:
        t = np.asarray(time, dtype=float)[..., None]
        return np.sum((np.clip(t, self.starts, self.ends) - self.starts) * self.intensity, axis=-1)

    def truncated(self, end: float) -> _Accrual:
        """The same intensities, accrual stopped at ``end``."""
        ends = np.maximum(np.minimum(self.ends, end), self.starts)
        return _Accrual(self.starts, ends, self.intensity)


def _accrual_with_end(spec: _AccrualSpec, end: float) -> _Accrual:
    """Absolute intensities, open-ended last period closed at ``end`` (>= 0)."""
    starts = spec.breaks
    ends = np.append(spec.breaks[1:], max(end, spec.breaks[-1]))
    accrual = _Accrual(starts, ends, spec.intensity.copy())
    return accrual.truncated(end)


def _time_to_enrol(spec: _AccrualSpec, n_patients: float) -> float:
    """End of an open-ended absolute accrual that enrols ``n_patients``."""
    starts = spec.breaks
    lengths = np.diff(starts)
    cumulative = np.concatenate([[0.0], np.cumsum(lengths * spec.intensity[:-1])])
    for j in range(lengths.size):
        if n_patients <= cumulative[j + 1] and spec.intensity[j] > 0:
            return float(starts[j] + (n_patients - cumulative[j]) / spec.intensity[j])
    return float(starts[-1] + (n_patients - cumulative[-1]) / spec.intensity[-1])


def _resolve_accrual(spec: _AccrualSpec, n_patients: float | None) -> _Accrual | None:
    """The accrual profile in patients per month, or None when the size is still unknown."""
    if spec.relative:
        if n_patients is None:
            return None
        scale = n_patients / np.sum(np.diff(spec.breaks) * spec.intensity)
        return _Accrual(spec.breaks[:-1], spec.breaks[1:], spec.intensity * scale)
    if spec.open_ended:
        if n_patients is None:
            return None
        return _accrual_with_end(spec, _time_to_enrol(spec, n_patients))
    accrual = _Accrual(spec.breaks[:-1], spec.breaks[1:], spec.intensity)
    if n_patients is not None and not math.isclose(n_patients, accrual.n_patients, rel_tol=1e-9):
        raise DesignError(
            f"n_patients ({n_patients:g}) disagrees with the absolute accrual: "
            f"{accrual.n_patients:g} patients by the end of accrual (give one of them, or "
            "accrual_intensity_type='relative' to scale the intensities to n_patients)"
        )
    return accrual


# ------------------------------------------------------------------ event probability


def _integrated_cdf(u: np.ndarray, hazard: float, dropout_hazard: float) -> np.ndarray:
    """``int_0^u P(event by s) ds`` for exponential event and dropout times."""
    k = hazard + dropout_hazard
    u = np.maximum(u, 0.0)
    return hazard / k * (u + np.expm1(-k * u) / k)


def _arm_events(
    time: np.ndarray, accrual: _Accrual, hazard: float, dropout_hazard: float
) -> np.ndarray:
    """Expected events by calendar ``time`` per patient-per-month of accrual intensity."""
    t = np.asarray(time, dtype=float)[..., None]
    upper = _integrated_cdf(t - accrual.starts, hazard, dropout_hazard)
    lower = _integrated_cdf(t - accrual.ends, hazard, dropout_hazard)
    return np.sum(accrual.intensity * (upper - lower), axis=-1)


@dataclass(frozen=True)
class _Model:
    """Survival and dropout model of the two arms (experimental first)."""

    hazard_ratio: float
    control_hazard: float
    dropout_rate: tuple[float, float]
    dropout_time: float
    allocation_ratio: float

    @property
    def hazards(self) -> tuple[float, float]:
        return self.hazard_ratio * self.control_hazard, self.control_hazard

    @property
    def dropout_hazards(self) -> tuple[float, float]:
        return tuple(-math.log1p(-rate) / self.dropout_time for rate in self.dropout_rate)

    @property
    def fractions(self) -> tuple[float, float]:
        r = self.allocation_ratio
        return r / (1 + r), 1 / (1 + r)

    def events(self, time: np.ndarray, accrual: _Accrual, arm: Arm | None = None) -> np.ndarray:
        arms = {"experimental": (0,), "control": (1,), None: (0, 1)}[arm]
        return sum(
            self.fractions[i] * _arm_events(time, accrual, self.hazards[i], self.dropout_hazards[i])
            for i in arms
        )

    @property
    def ultimate_probability(self) -> float:
        """Probability that a patient ever has an observed event (not lost first)."""
        return sum(
            f * h / (h + d)
            for f, h, d in zip(self.fractions, self.hazards, self.dropout_hazards, strict=True)
        )


def _survival_model(
    hazard_ratio: float,
    control_median: float | None,
    control_hazard: float | None,
    dropout_rate: float | Sequence[float],
    dropout_time: float,
    allocation_ratio: float,
) -> _Model:
    if (control_median is None) == (control_hazard is None):
        raise DesignError("give exactly one of control_median and control_hazard")
    if control_median is not None:
        control_hazard = math.log(2) / _positive("control_median", control_median)
    else:
        control_hazard = _positive("control_hazard", control_hazard)  # type: ignore[arg-type]
    rates = np.atleast_1d(np.asarray(dropout_rate, dtype=float))
    if rates.size == 1:
        rates = np.repeat(rates, 2)
    if rates.ndim != 1 or rates.size != 2:
        raise DesignError(
            "dropout_rate must be one number or two (experimental, control), "
            f"got {np.asarray(dropout_rate).tolist()}"
        )
    if not np.all((rates >= 0) & (rates < 1)):
        raise DesignError(f"dropout_rate must lie in [0, 1), got {rates.tolist()}")
    return _Model(
        hazard_ratio=hazard_ratio,
        control_hazard=control_hazard,
        dropout_rate=(float(rates[0]), float(rates[1])),
        dropout_time=_positive("dropout_time", dropout_time),
        allocation_ratio=allocation_ratio,
    )


def _time_to_events(events: float, accrual: _Accrual, model: _Model) -> float:
    ceiling = accrual.n_patients * model.ultimate_probability
    if events >= ceiling:
        raise DesignError(
            f"{accrual.n_patients:g} patients can never produce {events:.4g} events: at most "
            f"{ceiling:.4g} are expected even with unlimited follow-up (dropout and patients "
            "lost before their event); enrol more patients or reduce dropout"
        )
    return _root(
        lambda t: float(model.events(t, accrual)) - events, 0.0, max(accrual.duration, 1.0)
    )


# ------------------------------------------------------------------------ the design


@dataclass(frozen=True)
class SurvivalDesign:
    """A fixed two-arm survival design analysed by a log-rank test.

    Patients enter by piecewise-constant accrual (``accrual_intensity`` patients per month
    between the ``accrual_time`` breakpoints) and are randomized ``allocation_ratio`` : 1
    to experimental : control. Times to event are exponential (hazard ``control_hazard`` in
    the control arm, ``hazard_ratio * control_hazard`` in the experimental arm), and so are
    times to loss to follow-up (hazards from ``dropout_rate`` within ``dropout_time``
    months), independent of each other and of entry. The single analysis happens at
    calendar time ``study_duration``, when ``events`` events are expected.

    Attributes
    ----------
    hazard_ratio, control_hazard, experimental_hazard : float
        The assumed effect and hazards (per month).
    control_median, experimental_median : float
        The medians ``log(2) / hazard`` (months).
    alpha, sided, allocation_ratio, method
        The test (see :func:`survival_sample_size`).
    power : float
        Target power (:func:`survival_sample_size`) or power after ``events``
        (:func:`survival_power`).
    events : float
        Events required (sample size) or planned (power) at the analysis.
    n_patients : float
        Maximum number of patients (enrolled by the end of accrual).
    n_experimental, n_control : float
        ``n_patients`` split by the allocation ratio.
    accrual_time : tuple of float
        Breakpoints of accrual, from 0 to the end of accrual.
    accrual_intensity : tuple of float
        Patients per month in each accrual period.
    accrual_duration : float
        End of accrual (months).
    study_duration : float
        Calendar time of the analysis (months after the first patient in).
    follow_up : float
        ``study_duration - accrual_duration``; negative when the events are reached before
        accrual ends (as in rpact).
    n_enrolled : float
        Patients expected to be enrolled by ``study_duration``.
    event_probability : float
        Probability that one of the ``n_patients`` has an observed event by
        ``study_duration`` (``events / n_patients``).
    dropout_rate : tuple of float
        Probability of loss to follow-up within ``dropout_time`` months, experimental and
        control.
    dropout_time : float
        The time ``dropout_rate`` refers to (months).
    """

    hazard_ratio: float
    control_hazard: float
    alpha: float
    power: float
    sided: int
    allocation_ratio: float
    method: LogrankMethod
    events: float
    n_patients: float
    accrual_time: tuple[float, ...]
    accrual_intensity: tuple[float, ...]
    study_duration: float
    dropout_rate: tuple[float, float]
    dropout_time: float

    @property
    def experimental_hazard(self) -> float:
        return self.hazard_ratio * self.control_hazard

    @property
    def control_median(self) -> float:
        return math.log(2) / self.control_hazard

    @property
    def experimental_median(self) -> float:
        return math.log(2) / self.experimental_hazard

    @property
    def n_experimental(self) -> float:
        return self.n_patients * self.allocation_ratio / (1 + self.allocation_ratio)

    @property
    def n_control(self) -> float:
        return self.n_patients / (1 + self.allocation_ratio)

    @property
    def accrual_duration(self) -> float:
        return self.accrual_time[-1]

    @property
    def follow_up(self) -> float:
        return self.study_duration - self.accrual_duration

    @property
    def n_enrolled(self) -> float:
        return float(self._accrual.enrolled(np.array(self.study_duration)))

    @property
    def event_probability(self) -> float:
        return self.events / self.n_patients

    @property
    def _accrual(self) -> _Accrual:
        breaks = np.asarray(self.accrual_time)
        return _Accrual(breaks[:-1], breaks[1:], np.asarray(self.accrual_intensity))

    @property
    def _model(self) -> _Model:
        return _Model(
            self.hazard_ratio,
            self.control_hazard,
            self.dropout_rate,
            self.dropout_time,
            self.allocation_ratio,
        )

    def expected_events(
        self, time: float | np.ndarray, arm: Arm | None = None
    ) -> float | np.ndarray:
        """Expected number of events by calendar time(s) ``time`` (months).

        Parameters
        ----------
        time : float or array_like
            Calendar times since the start of accrual.
        arm : {None, "experimental", "control"}
            Events in one arm, or in both (``None``).

        Returns
        -------
        float or ndarray
            Same shape as ``time``.
        """
        out = self._model.events(np.asarray(time, dtype=float), self._accrual, arm)
        return float(out) if np.ndim(out) == 0 else out

    def expected_enrolled(self, time: float | np.ndarray) -> float | np.ndarray:
        """Expected number of patients enrolled by calendar time(s) ``time``."""
        out = self._accrual.enrolled(np.asarray(time, dtype=float))
        return float(out) if np.ndim(out) == 0 else out

    def time_to_events(self, events: float) -> float:
        """Calendar time at which ``events`` events are expected.

        Raises
        ------
        DesignError
            When ``n_patients`` can never produce that many events.
        """
        return _time_to_events(_positive("events", events), self._accrual, self._model)

    def summary(self) -> pd.DataFrame:
        """The design's inputs and results, one row each (column ``value``)."""
        names = [
            "hazard_ratio", "control_hazard", "experimental_hazard", "control_median",
            "experimental_median", "alpha", "sided", "power", "allocation_ratio", "method",
            "dropout_rate", "dropout_time", "accrual_time", "accrual_intensity", "events",
            "n_patients", "n_experimental", "n_control", "accrual_duration", "follow_up",
            "study_duration", "n_enrolled", "event_probability",
        ]  # fmt: skip
        rows = {name: getattr(self, name) for name in names}
        return pd.DataFrame({"value": pd.Series(rows, dtype=object)})


def _design(
    accrual: _Accrual,
    model: _Model,
    study_duration: float,
    events: float,
    **test,
) -> SurvivalDesign:
    nonempty = accrual.ends > accrual.starts  # drop periods that a truncation emptied
    breaks = np.append(accrual.starts[nonempty], accrual.ends[nonempty][-1])
    return SurvivalDesign(
        hazard_ratio=model.hazard_ratio,
        control_hazard=model.control_hazard,
        allocation_ratio=model.allocation_ratio,
        events=float(events),
        n_patients=accrual.n_patients,
        accrual_time=tuple(float(b) for b in breaks),
        accrual_intensity=tuple(float(i) for i in accrual.intensity[nonempty]),
        study_duration=float(study_duration),
        dropout_rate=model.dropout_rate,
        dropout_time=model.dropout_time,
        **test,
    )


def _setup(
    hazard_ratio: float,
    control_median: float | None,
    control_hazard: float | None,
    accrual_time: float | Sequence[float],
    accrual_intensity: float | Sequence[float] | None,
    accrual_intensity_type: str,
    n_patients: float | None,
    dropout_rate: float | Sequence[float],
    dropout_time: float,
    allocation_ratio: float,
) -> tuple[_Model, _AccrualSpec, _Accrual | None]:
    """Validated model, accrual as given, and the accrual profile when its size is known."""
    model = _survival_model(
        _positive("hazard_ratio", hazard_ratio),
        control_median,
        control_hazard,
        dropout_rate,
        dropout_time,
        _positive("allocation_ratio", allocation_ratio),
    )
    spec = _parse_accrual(accrual_time, accrual_intensity, accrual_intensity_type)
    if n_patients is not None:
        n_patients = _positive("n_patients", n_patients)
    return model, spec, _resolve_accrual(spec, n_patients)


_UNKNOWN_SIZE = (
    "the number of patients is unknown: give n_patients, or absolute accrual intensities "
    "over a closed accrual period"
)


def survival_sample_size(
    hazard_ratio: float,
    *,
    accrual_time: float | Sequence[float],
    control_median: float | None = None,
    control_hazard: float | None = None,
    accrual_intensity: float | Sequence[float] | None = None,
    accrual_intensity_type: Literal["absolute", "relative"] = "absolute",
    n_patients: float | None = None,
    follow_up: float | None = None,
    dropout_rate: float | Sequence[float] = 0.0,
    dropout_time: float = 12.0,
    alpha: float = 0.025,
    power: float = 0.8,
    allocation_ratio: float = 1.0,
    sided: int = 1,
    method: LogrankMethod = "schoenfeld",
) -> SurvivalDesign:
    """Events, patients and study duration for a log-rank test with accrual and dropout.

    The events come from Schoenfeld's (or Freedman's) formula; the patients and the time
    that produce them from the expected number of events by calendar time under the
    accrual, survival and dropout model of :class:`SurvivalDesign` (Lachin & Foulkes), as in
    rpact's ``getSampleSizeSurvival``. Exactly one of the following is solved for:

    - ``n_patients``, when the end of accrual and ``follow_up`` are given and the accrual
      intensities are relative (or omitted: uniform accrual);
    - the study duration (hence ``follow_up``), when the number of patients is known: from
      ``n_patients``, or from absolute intensities over a closed accrual period;
    - the end of accrual (hence ``n_patients``), when the last accrual period is open-ended
      with an absolute intensity and ``follow_up`` is given (accrual stops as soon as
      enough patients are in, even within an earlier period).

    Parameters
    ----------
    hazard_ratio : float
        Hazard ratio experimental / control under the alternative (positive, not 1).
    accrual_time : float or sequence of float
        End of accrual (months), or breakpoints of piecewise accrual starting at 0 (rpact's
        ``accrualTime``): ``[0, 6, 24]`` defines the periods [0, 6) and [6, 24).
    control_median, control_hazard : float
        The control arm's median survival (months) or hazard (per month); give one.
    accrual_intensity : float or sequence of float, optional
        Patients per month in each accrual period (rpact's ``accrualIntensity``). With one
        value more than there are periods, the last runs from the last breakpoint until
        enrolment is complete (``accrual_time=[0, 6], accrual_intensity=[10, 30]``: 10 per
        month for 6 months, then 30 per month). Omitted: uniform accrual over the periods
        (relative intensities all equal).
    accrual_intensity_type : {"absolute", "relative"}
        ``"relative"`` intensities only give the shape of accrual and are scaled to the
        number of patients.
    n_patients : float, optional
        Maximum number of patients (rpact's ``maxNumberOfSubjects``).
    follow_up : float, optional
        Time from the end of accrual to the analysis (rpact's ``followUpTime``).
    dropout_rate : float or (float, float)
        Probability of loss to follow-up within ``dropout_time`` months (experimental,
        control; one number for both), rpact's ``dropoutRate1, dropoutRate2``.
    dropout_time : float
        Months that ``dropout_rate`` refers to.
    alpha : float
        Significance level, one-sided unless ``sided=2``.
    power : float
        Target power.
    allocation_ratio : float
        ``n_experimental / n_control``.
    sided : {1, 2}
        One- or two-sided test.
    method : {"schoenfeld", "freedman"}
        Formula for the number of events.

    Returns
    -------
    SurvivalDesign

    Raises
    ------
    DesignError
        For impossible inputs: a hazard ratio that is 1 or not positive, ``alpha`` or ``power``
        outside ``(0, 1)``, inconsistent or over-determined accrual (``n_patients`` and
        ``follow_up`` both fixed), or a number of patients that can never produce the
        events (for example because of dropout).

    References
    ----------
    .. [1] Schoenfeld, D. A. (1983). Sample-size formula for the proportional-hazards
       regression model. *Biometrics*, 39(2), 499-503.
    .. [2] Freedman, L. S. (1982). Tables of the number of patients required in clinical
       trials using the logrank test. *Statistics in Medicine*, 1(2), 121-129.
    .. [3] Lachin, J. M. & Foulkes, M. A. (1986). Evaluation of sample size and power for
       analyses of survival with allowance for nonuniform patient entry, losses to
       follow-up, noncompliance, and stratification. *Biometrics*, 42(3), 507-519.
    .. [4] Wassmer, G. & Pahlke, F. rpact: Confirmatory Adaptive Clinical Trial Design and
       Analysis, R package, https://www.rpact.org (``getSampleSizeSurvival``,
       ``getPowerSurvival``).

    Examples
    --------
    >>> d = survival_sample_size(0.7, control_median=12, accrual_time=24, n_patients=600,
    ...                          dropout_rate=0.05, power=0.9)
    >>> round(d.events, 1), round(d.study_duration, 2)
    (330.4, 30.61)
    """
    events = _events(hazard_ratio, alpha, power, allocation_ratio, sided, method)
    test = {"alpha": alpha, "power": float(power), "sided": sided, "method": method}
    model, spec, accrual = _setup(
        hazard_ratio, control_median, control_hazard, accrual_time, accrual_intensity,
        accrual_intensity_type, n_patients, dropout_rate, dropout_time, allocation_ratio,
    )  # fmt: skip
    if follow_up is not None:
        follow_up = _finite("follow_up", follow_up)
        if follow_up < 0:
            raise DesignError(f"follow_up must be non-negative, got {follow_up}")
    if accrual is not None:
        if follow_up is not None:
            raise DesignError(
                f"the number of patients ({accrual.n_patients:g}) is fixed by n_patients or "
                "the absolute accrual, so follow_up cannot also be fixed: give one of "
                "n_patients and follow_up (or relative accrual intensities)"
            )
        duration = _time_to_events(events, accrual, model)
        return _design(accrual, model, duration, events, **test)
    if follow_up is None:
        raise DesignError(f"{_UNKNOWN_SIZE}, or give follow_up")
    if spec.relative:
        shape = _Accrual(spec.breaks[:-1], spec.breaks[1:], spec.intensity)
        duration = shape.duration + follow_up
        per_patient = float(model.events(duration, shape)) / shape.n_patients
        accrual = _resolve_accrual(spec, events / per_patient)
        return _design(accrual, model, duration, events, **test)

    # open-ended absolute accrual: solve for its end
    def excess(end: float) -> float:
        return float(model.events(end + follow_up, _accrual_with_end(spec, end))) - events

    end = _root(excess, 0.0, max(spec.breaks[-1], 1.0))
    accrual = _accrual_with_end(spec, end)
    return _design(accrual, model, end + follow_up, events, **test)


def survival_power(
    events: float,
    hazard_ratio: float,
    *,
    accrual_time: float | Sequence[float],
    control_median: float | None = None,
    control_hazard: float | None = None,
    accrual_intensity: float | Sequence[float] | None = None,
    accrual_intensity_type: Literal["absolute", "relative"] = "absolute",
    n_patients: float | None = None,
    dropout_rate: float | Sequence[float] = 0.0,
    dropout_time: float = 12.0,
    alpha: float = 0.025,
    allocation_ratio: float = 1.0,
    sided: int = 1,
    method: LogrankMethod = "schoenfeld",
) -> SurvivalDesign:
    """Power after ``events`` events, and when they are expected, for a given enrolment.

    As rpact's ``getPowerSurvival`` with ``maxNumberOfEvents`` and ``maxNumberOfSubjects``:
    the power is :func:`logrank_power`; the study duration (analysis time) is the calendar
    time at which the expected number of events reaches ``events`` under the model of
    :class:`SurvivalDesign`.

    Parameters
    ----------
    events : float
        Number of events at the analysis.
    hazard_ratio : float
        Hazard ratio experimental / control under the alternative (positive).
    accrual_time, control_median, control_hazard, accrual_intensity
        As :func:`survival_sample_size`.
    accrual_intensity_type, n_patients, dropout_rate, dropout_time
        As :func:`survival_sample_size`; the number of patients must be known (from
        ``n_patients`` or from absolute intensities over a closed accrual period).
    alpha, allocation_ratio, sided, method
        As :func:`logrank_power`.

    Returns
    -------
    SurvivalDesign
        With ``power`` the power of the test after ``events`` events.

    Raises
    ------
    DesignError
        For invalid inputs, an unknown number of patients, or a number of patients that can
        never produce ``events`` events.

    References
    ----------
    .. [1] Lachin, J. M. & Foulkes, M. A. (1986). *Biometrics*, 42(3), 507-519.
    .. [2] rpact, ``getPowerSurvival``, https://www.rpact.org.

    Examples
    --------
    >>> d = survival_power(300, 0.7, control_median=12, accrual_time=24, n_patients=600)
    >>> round(d.power, 3), round(d.study_duration, 2)
    (0.871, 27.45)
    """
    power = logrank_power(events, hazard_ratio, alpha, allocation_ratio, sided, method)
    model, _, accrual = _setup(
        hazard_ratio, control_median, control_hazard, accrual_time, accrual_intensity,
        accrual_intensity_type, n_patients, dropout_rate, dropout_time, allocation_ratio,
    )  # fmt: skip
    if accrual is None:
        raise DesignError(_UNKNOWN_SIZE)
    duration = _time_to_events(float(events), accrual, model)
    return _design(
        accrual, model, duration, events, alpha=alpha, power=power, sided=sided, method=method
    )


def expected_events(
    time: float | np.ndarray,
    hazard_ratio: float,
    *,
    accrual_time: float | Sequence[float],
    control_median: float | None = None,
    control_hazard: float | None = None,
    accrual_intensity: float | Sequence[float] | None = None,
    accrual_intensity_type: Literal["absolute", "relative"] = "absolute",
    n_patients: float | None = None,
    dropout_rate: float | Sequence[float] = 0.0,
    dropout_time: float = 12.0,
    allocation_ratio: float = 1.0,
    arm: Arm | None = None,
) -> float | np.ndarray:
    """Expected number of events by calendar time under the model of :class:`SurvivalDesign`.

    Parameters
    ----------
    time : float or array_like
        Calendar times (months since the start of accrual).
    hazard_ratio : float
        Hazard ratio experimental / control (positive).
    accrual_time, control_median, control_hazard, accrual_intensity
        As :func:`survival_sample_size`.
    accrual_intensity_type, n_patients, dropout_rate, dropout_time, allocation_ratio
        As :func:`survival_sample_size`; the number of patients must be known.
    arm : {None, "experimental", "control"}
        Events in one arm, or in both (``None``).

    Returns
    -------
    float or ndarray
        Same shape as ``time``; ``n_patients`` times rpact's event probability
        (``getEventProbabilities``).

    Raises
    ------
    DesignError
        For invalid inputs or an unknown number of patients.

    References
    ----------
    .. [1] Lachin, J. M. & Foulkes, M. A. (1986). *Biometrics*, 42(3), 507-519.
    .. [2] rpact, ``getEventProbabilities``, https://www.rpact.org.

    Examples
    --------
    >>> round(expected_events(30, 0.7, control_median=12, accrual_time=24, n_patients=600), 1)
    334.6
    """
    if arm not in (None, "experimental", "control"):
        raise DesignError(f"arm must be None, 'experimental' or 'control', got {arm!r}")
    model, _, accrual = _setup(
        hazard_ratio, control_median, control_hazard, accrual_time, accrual_intensity,
        accrual_intensity_type, n_patients, dropout_rate, dropout_time, allocation_ratio,
    )  # fmt: skip
    if accrual is None:
        raise DesignError(_UNKNOWN_SIZE)
    out = model.events(np.asarray(time, dtype=float), accrual, arm)
    return float(out) if np.ndim(out) == 0 else out
