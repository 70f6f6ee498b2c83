"""Analytic power and sample size for fixed (single-analysis) two-arm designs.

Time-to-event endpoints (log-rank test): the number of events from Schoenfeld's or
Freedman's formula, and the number of patients and the study duration that produce them
under piecewise-constant accrual, exponential survival and exponential loss to follow-up
(Lachin & Foulkes). Continuous and binary endpoints: the usual normal approximations (and the
t-test for means). Everything follows rpact's conventions and is tested against it
(``tests/results/power_rpact.R``).

Conventions
-----------
- Time is in months, hazards and accrual intensities are per month.
- ``alpha`` is one-sided unless ``sided=2``, in which case it is the two-sided level and each
  tail gets ``alpha / 2`` (rpact's ``sided``).
- ``allocation_ratio`` is ``n_experimental / n_control`` (rpact's ``allocationRatioPlanned``).
- One-sided power is the probability of rejecting in the direction of the assumed effect
  (rpact's ``directionUpper = hazard_ratio > 1``); two-sided power adds the probability of
  rejecting in the other direction, as rpact's ``getPower*`` functions do. Sample sizes for
  ``sided=2`` use ``alpha / 2`` and ignore the far tail (rpact's default
  ``twoSidedPower = FALSE``).
- Sizes are returned unrounded (as rpact reports them); round them up before use.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import optimize, special

from trials.exceptions import DesignError

__all__ = [
    "MeansDesign",
    "ProportionsDesign",
    "SurvivalDesign",
    "expected_events",
    "freedman_events",
    "logrank_power",
    "means_power",
    "means_sample_size",
    "proportions_power",
    "proportions_sample_size",
    "schoenfeld_events",
    "survival_power",
    "survival_sample_size",
]

LogrankMethod = Literal["schoenfeld", "freedman"]
Arm = Literal["experimental", "control"]

# ----------------------------------------------------------------------------- checks


def _finite(name: str, value: float) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise DesignError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(value):
        raise DesignError(f"{name} must be finite, got {value}")
    return value


def _positive(name: str, value: float) -> float:
    value = _finite(name, value)
    if value <= 0:
        raise DesignError(f"{name} must be positive, got {value}")
    return value


def _unit_open(name: str, value: float) -> float:
    value = _finite(name, value)
    if not 0 < value < 1:
        raise DesignError(f"{name} must lie strictly between 0 and 1, got {value}")
    return value


def _check_test(alpha: float, sided: int, power: float | None = None) -> tuple[float, int]:
    alpha = _unit_open("alpha", alpha)
    if sided not in (1, 2):
        raise DesignError(f"sided must be 1 or 2, got {sided!r}")
    if power is not None:
        power = _unit_open("power", power)
        if power <= alpha / sided:
            raise DesignError(
                f"power ({power}) must exceed the significance level of the one-sided test "
                f"(alpha / sided = {alpha / sided})"
            )
    return alpha, sided


def _check_method(method: str) -> LogrankMethod:
    if method not in ("schoenfeld", "freedman"):
        raise DesignError(f"method must be 'schoenfeld' or 'freedman', got {method!r}")
    return method  # type: ignore[return-value]


def _hazard_ratio_for_size(hazard_ratio: float) -> float:
    hazard_ratio = _positive("hazard_ratio", hazard_ratio)
    if hazard_ratio == 1:
        raise DesignError(
            "hazard_ratio = 1 means no treatment effect: no number of events gives power "
            "above alpha"
        )
    return hazard_ratio


def _z(p: float) -> float:
    """The upper ``p`` quantile of the standard normal distribution."""
    return float(-special.ndtri(p))


def _two_tail_power(drift: float, z_crit: float, sided: int) -> float:
    """Power of a z-test with the given drift in the direction of the effect."""
    power = special.ndtr(drift - z_crit)
    if sided == 2:
        power += special.ndtr(-drift - z_crit)
    return float(power)


# --------------------------------------------------------------------- log-rank events


def _logrank_theta(hazard_ratio: float, allocation_ratio: float, method: LogrankMethod) -> float:
    """Standardized effect per sqrt(event), positive in the direction of the effect."""
    r = allocation_ratio
    if method == "schoenfeld":
        return math.sqrt(r) / (1 + r) * abs(math.log(hazard_ratio))
    return math.sqrt(r) * abs(hazard_ratio - 1) / (r * hazard_ratio + 1)


def _events(
    hazard_ratio: float,
    alpha: float,
    power: float,
    allocation_ratio: float,
    sided: int,
    method: LogrankMethod,
) -> float:
    hazard_ratio = _hazard_ratio_for_size(hazard_ratio)
    alpha, sided = _check_test(alpha, sided, power)
    allocation_ratio = _positive("allocation_ratio", allocation_ratio)
    theta = _logrank_theta(hazard_ratio, allocation_ratio, method)
    return (_z(alpha / sided) + _z(1 - power)) ** 2 / theta**2


def schoenfeld_events(
    hazard_ratio: float,
    alpha: float = 0.025,
    power: float = 0.8,
    allocation_ratio: float = 1.0,
    sided: int = 1,
) -> float:
    r"""Number of events for a log-rank test, by Schoenfeld's formula.

    .. math::

        D = \frac{(1 + r)^2}{r} \frac{(z_{1-\alpha/s} + z_{1-\beta})^2}{(\log \mathrm{HR})^2}

    with ``r = allocation_ratio`` and ``s = sided``.

    Parameters
    ----------
    hazard_ratio : float
        Hazard ratio experimental / control under the alternative (positive, not 1).
    alpha : float
        Significance level, one-sided unless ``sided=2``.
    power : float
        Target power, in ``(alpha / sided, 1)``.
    allocation_ratio : float
        ``n_experimental / n_control``.
    sided : {1, 2}
        One- or two-sided test.

    Returns
    -------
    float
        The expected number of events (unrounded), as rpact's ``getSampleSizeSurvival``
        ``eventsFixed`` with ``typeOfComputation = "Schoenfeld"``.

    Raises
    ------
    DesignError
        For a hazard ratio that is not positive or equals 1, ``alpha`` or ``power`` outside
        ``(0, 1)``, power not above ``alpha / sided``, or a non-positive allocation ratio.

    References
    ----------
    .. [1] Schoenfeld, D. A. (1983). Sample-size formula for the proportional-hazards
       regression model. *Biometrics*, 39(2), 499-503.
    .. [2] rpact, ``getSampleSizeSurvival``, https://www.rpact.org.

    Examples
    --------
    >>> round(schoenfeld_events(0.7, alpha=0.025, power=0.8), 1)
    246.8
    """
    return _events(hazard_ratio, alpha, power, allocation_ratio, sided, "schoenfeld")


def freedman_events(
    hazard_ratio: float,
    alpha: float = 0.025,
    power: float = 0.8,
    allocation_ratio: float = 1.0,
    sided: int = 1,
) -> float:
    r"""Number of events for a log-rank test, by Freedman's formula.

    .. math::

        D = \frac{(1 + r\,\mathrm{HR})^2}{r\,(1 - \mathrm{HR})^2}
            (z_{1-\alpha/s} + z_{1-\beta})^2

    with ``r = allocation_ratio`` and ``s = sided`` (Freedman's 1:1 formula generalized to
    unequal allocation as in rpact).

    Parameters
    ----------
    hazard_ratio : float
        Hazard ratio experimental / control under the alternative (positive, not 1).
    alpha : float
        Significance level, one-sided unless ``sided=2``.
    power : float
        Target power, in ``(alpha / sided, 1)``.
    allocation_ratio : float
        ``n_experimental / n_control``.
    sided : {1, 2}
        One- or two-sided test.

    Returns
    -------
    float
        The expected number of events (unrounded), as rpact's ``getSampleSizeSurvival``
        ``eventsFixed`` with ``typeOfComputation = "Freedman"``.

    Raises
    ------
    DesignError
        As :func:`schoenfeld_events`.

    References
    ----------
    .. [1] Freedman, L. S. (1982). Tables of the number of patients required in clinical
       trials using the logrank test. *Statistics in Medicine*, 1(2), 121-129.
    .. [2] rpact, ``getSampleSizeSurvival``, https://www.rpact.org.

    Examples
    --------
    >>> round(freedman_events(0.7, alpha=0.025, power=0.8), 1)
    252.0
    """
    return _events(hazard_ratio, alpha, power, allocation_ratio, sided, "freedman")


def logrank_power(
    events: float,
    hazard_ratio: float,
    alpha: float = 0.025,
    allocation_ratio: float = 1.0,
    sided: int = 1,
    method: LogrankMethod = "schoenfeld",
) -> float:
    r"""Power of a log-rank test after a given number of events.

    ``Phi(theta sqrt(D) - z)`` (plus ``Phi(-theta sqrt(D) - z)`` when two-sided), with
    ``theta = sqrt(r) / (1 + r) |log HR|`` (Schoenfeld) or
    ``theta = sqrt(r) |HR - 1| / (r HR + 1)`` (Freedman) and ``z = z_{1 - alpha / sided}``.

    Parameters
    ----------
    events : float
        Number of events at the analysis (positive).
    hazard_ratio : float
        Hazard ratio experimental / control under the alternative (positive).
    alpha : float
        Significance level, one-sided unless ``sided=2``.
    allocation_ratio : float
        ``n_experimental / n_control``.
    sided : {1, 2}
        One- or two-sided test.
    method : {"schoenfeld", "freedman"}
        Variance approximation of the log-rank statistic.

    Returns
    -------
    float
        The power (rpact's ``getPowerSurvival`` ``overallReject`` with
        ``directionUpper = hazard_ratio > 1``).

    Raises
    ------
    DesignError
        For non-positive events or hazard ratio, or ``alpha`` outside ``(0, 1)``.

    References
    ----------
    .. [1] Schoenfeld, D. A. (1983). *Biometrics*, 39(2), 499-503.
    .. [2] Freedman, L. S. (1982). *Statistics in Medicine*, 1(2), 121-129.
    .. [3] rpact, ``getPowerSurvival``, https://www.rpact.org.

    Examples
    --------
    >>> round(logrank_power(246.8, 0.7), 3)
    0.8
    """
    events = _positive("events", events)
    hazard_ratio = _positive("hazard_ratio", hazard_ratio)
    alpha, sided = _check_test(alpha, sided)
    allocation_ratio = _positive("allocation_ratio", allocation_ratio)
    method = _check_method(method)
    theta = _logrank_theta(hazard_ratio, allocation_ratio, method)
    return _two_tail_power(theta * math.sqrt(events), _z(alpha / sided), sided)


# ---------------------------------------------------------------------------- accrual


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

    hazards: tuple[float, float]
    dropout_hazards: tuple[float, float]
    fractions: tuple[float, float]

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
    dropout_time = _positive("dropout_time", dropout_time)
    dropout_hazards = -np.log1p(-rates) / dropout_time
    r = allocation_ratio
    return _Model(
        hazards=(hazard_ratio * control_hazard, control_hazard),
        dropout_hazards=(float(dropout_hazards[0]), float(dropout_hazards[1])),
        fractions=(r / (1 + r), 1 / (1 + r)),
    )


def _root(fun, lower: float, upper: float) -> float:
    """Root of an increasing ``fun`` with ``fun(lower) < 0``; ``upper`` is doubled as needed."""
    for _ in range(200):
        if fun(upper) >= 0:
            return float(optimize.brentq(fun, lower, upper, xtol=1e-12, rtol=1e-15, maxiter=500))
        lower, upper = upper, 2 * upper
    raise DesignError("no solution found: the target is not reached in any finite time")


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
        return _survival_model(
            self.hazard_ratio,
            None,
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
        rows = {
            "hazard_ratio": self.hazard_ratio,
            "control_hazard": self.control_hazard,
            "experimental_hazard": self.experimental_hazard,
            "control_median": self.control_median,
            "experimental_median": self.experimental_median,
            "alpha": self.alpha,
            "sided": self.sided,
            "power": self.power,
            "allocation_ratio": self.allocation_ratio,
            "method": self.method,
            "dropout_rate_experimental": self.dropout_rate[0],
            "dropout_rate_control": self.dropout_rate[1],
            "dropout_time": self.dropout_time,
            "accrual_time": self.accrual_time,
            "accrual_intensity": self.accrual_intensity,
            "events": self.events,
            "n_patients": self.n_patients,
            "n_experimental": self.n_experimental,
            "n_control": self.n_control,
            "accrual_duration": self.accrual_duration,
            "follow_up": self.follow_up,
            "study_duration": self.study_duration,
            "n_enrolled": self.n_enrolled,
            "event_probability": self.event_probability,
        }
        return pd.DataFrame({"value": pd.Series(rows, dtype=object)})


def _design(
    accrual: _Accrual, model: _Model, study_duration: float, events: float, **inputs
) -> SurvivalDesign:
    nonempty = accrual.ends > accrual.starts  # periods that a truncation left empty go
    breaks = np.append(accrual.starts[nonempty], accrual.ends[nonempty][-1])
    return SurvivalDesign(
        events=float(events),
        n_patients=accrual.n_patients,
        accrual_time=tuple(float(b) for b in breaks),
        accrual_intensity=tuple(float(i) for i in accrual.intensity[nonempty]),
        study_duration=float(study_duration),
        control_hazard=model.hazards[1],
        **inputs,
    )


def _common_inputs(
    hazard_ratio,
    control_median,
    control_hazard,
    dropout_rate,
    dropout_time,
    alpha,
    sided,
    allocation_ratio,
    method,
):
    allocation_ratio = _positive("allocation_ratio", allocation_ratio)
    method = _check_method(method)
    model = _survival_model(
        hazard_ratio, control_median, control_hazard, dropout_rate, dropout_time, allocation_ratio
    )
    rates = np.atleast_1d(np.asarray(dropout_rate, dtype=float))
    rates = np.repeat(rates, 2) if rates.size == 1 else rates
    inputs = {
        "hazard_ratio": float(hazard_ratio),
        "alpha": float(alpha),
        "sided": int(sided),
        "allocation_ratio": allocation_ratio,
        "method": method,
        "dropout_rate": (float(rates[0]), float(rates[1])),
        "dropout_time": float(dropout_time),
    }
    return model, inputs


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
        For impossible inputs: a hazard ratio of 1 or below 0, ``alpha`` or ``power``
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
    model, inputs = _common_inputs(
        hazard_ratio,
        control_median,
        control_hazard,
        dropout_rate,
        dropout_time,
        alpha,
        sided,
        allocation_ratio,
        method,
    )
    spec = _parse_accrual(accrual_time, accrual_intensity, accrual_intensity_type)
    if n_patients is not None:
        n_patients = _positive("n_patients", n_patients)
    if follow_up is not None:
        follow_up = _finite("follow_up", follow_up)
        if follow_up < 0:
            raise DesignError(f"follow_up must be non-negative, got {follow_up}")
    accrual = _resolve_accrual(spec, n_patients)
    if accrual is not None:
        if follow_up is not None:
            raise DesignError(
                f"the number of patients ({accrual.n_patients:g}) is fixed by n_patients or "
                "the absolute accrual, so follow_up cannot also be fixed: give one of "
                "n_patients and follow_up (or relative accrual intensities)"
            )
        duration = _time_to_events(events, accrual, model)
        return _design(accrual, model, duration, events, power=float(power), **inputs)
    if follow_up is None:
        raise DesignError(
            "the design is under-determined: give n_patients, follow_up, or absolute "
            "accrual intensities over a closed accrual period"
        )
    if spec.relative:
        shape = _Accrual(spec.breaks[:-1], spec.breaks[1:], spec.intensity)
        duration = shape.duration + follow_up
        per_patient = float(model.events(duration, shape)) / shape.n_patients
        accrual = _resolve_accrual(spec, events / per_patient)
        return _design(accrual, model, duration, events, power=float(power), **inputs)

    # open-ended absolute accrual: solve for its end
    def excess(end: float) -> float:
        return float(model.events(end + follow_up, _accrual_with_end(spec, end))) - events

    end = _root(excess, 0.0, max(spec.breaks[-1], 1.0))
    accrual = _accrual_with_end(spec, end)
    return _design(accrual, model, end + follow_up, events, power=float(power), **inputs)


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
    >>> d = survival_power(300, 0.7, control_median=12, accrual_time=24, n_patients=600)
    >>> round(d.power, 3), round(d.study_duration, 2)
    (0.871, 27.45)
    """
    power = logrank_power(events, hazard_ratio, alpha, allocation_ratio, sided, method)
    model, inputs = _common_inputs(
        hazard_ratio,
        control_median,
        control_hazard,
        dropout_rate,
        dropout_time,
        alpha,
        sided,
        allocation_ratio,
        method,
    )
    spec = _parse_accrual(accrual_time, accrual_intensity, accrual_intensity_type)
    if n_patients is not None:
        n_patients = _positive("n_patients", n_patients)
    accrual = _resolve_accrual(spec, n_patients)
    if accrual is None:
        raise DesignError(
            "the number of patients is unknown: give n_patients, or absolute accrual "
            "intensities over a closed accrual period"
        )
    duration = _time_to_events(float(events), accrual, model)
    return _design(accrual, model, duration, events, power=power, **inputs)


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
    >>> round(expected_events(30, 0.7, control_median=12, accrual_time=24, n_patients=600), 1)
    334.6
    """
    hazard_ratio = _positive("hazard_ratio", hazard_ratio)
    allocation_ratio = _positive("allocation_ratio", allocation_ratio)
    if arm not in (None, "experimental", "control"):
        raise DesignError(f"arm must be None, 'experimental' or 'control', got {arm!r}")
    model = _survival_model(
        hazard_ratio, control_median, control_hazard, dropout_rate, dropout_time, allocation_ratio
    )
    spec = _parse_accrual(accrual_time, accrual_intensity, accrual_intensity_type)
    if n_patients is not None:
        n_patients = _positive("n_patients", n_patients)
    accrual = _resolve_accrual(spec, n_patients)
    if accrual is None:
        raise DesignError(
            "the number of patients is unknown: give n_patients, or absolute accrual "
            "intensities over a closed accrual period"
        )
    out = model.events(np.asarray(time, dtype=float), accrual, arm)
    return float(out) if np.ndim(out) == 0 else out


# ------------------------------------------------------------------------------ means


def _check_allocation(allocation_ratio: float) -> float:
    return _positive("allocation_ratio", allocation_ratio)


@dataclass(frozen=True)
class MeansDesign:
    """A fixed two-arm comparison of means (normal outcome, common standard deviation).

    The test is of ``H0: mu_experimental - mu_control = null_difference`` against the
    direction of ``difference``, by a z-test (``normal_approximation=True``) or a
    two-sample t-test with ``n_patients - 2`` degrees of freedom.

    Attributes
    ----------
    difference : float
        ``mu_experimental - mu_control`` under the alternative.
    sd : float
        Common standard deviation.
    null_difference : float
        The difference under the null hypothesis (rpact's ``thetaH0``).
    alpha, sided, allocation_ratio, normal_approximation
        The test (see :func:`means_sample_size`).
    power : float
        Target power (:func:`means_sample_size`) or power (:func:`means_power`).
    n_patients : float
        Total number of patients; ``n_experimental`` and ``n_control`` split it.
    """

    difference: float
    sd: float
    null_difference: float
    alpha: float
    power: float
    sided: int
    allocation_ratio: float
    normal_approximation: bool
    n_patients: float

    @property
    def n_experimental(self) -> float:
        return self.n_patients * self.allocation_ratio / (1 + self.allocation_ratio)

    @property
    def n_control(self) -> float:
        return self.n_patients / (1 + self.allocation_ratio)

    def summary(self) -> pd.DataFrame:
        """The design's inputs and results, one row each (column ``value``)."""
        names = [
            "difference",
            "sd",
            "null_difference",
            "alpha",
            "sided",
            "power",
            "allocation_ratio",
            "normal_approximation",
            "n_patients",
            "n_experimental",
            "n_control",
        ]
        rows = {name: getattr(self, name) for name in names}
        return pd.DataFrame({"value": pd.Series(rows, dtype=object)})


def _means_inputs(difference, sd, null_difference, alpha, sided, allocation_ratio, power=None):
    difference = _finite("difference", difference)
    sd = _positive("sd", sd)
    null_difference = _finite("null_difference", null_difference)
    alpha, sided = _check_test(alpha, sided, power)
    allocation_ratio = _check_allocation(allocation_ratio)
    # standardized effect per sqrt(total patients), in the direction of the effect
    theta = (
        math.sqrt(allocation_ratio)
        / (1 + allocation_ratio)
        * abs(difference - null_difference)
        / sd
    )
    return difference, sd, null_difference, alpha, sided, allocation_ratio, theta


def _t_power(n_patients: float, theta: float, tail_alpha: float, both_tails: bool) -> float:
    """Power of the two-sample t-test, ``tail_alpha`` in each tail that is tested."""
    df = max(n_patients - 2.0, 1e-3)  # as rpact, to keep the search defined near N = 2
    t_crit = float(special.stdtrit(df, 1 - tail_alpha))
    ncp = theta * math.sqrt(n_patients)
    power = float(special.nctdtr(df, -ncp, -t_crit))  # = 1 - F(t_crit; df, ncp)
    if both_tails:
        power += float(special.nctdtr(df, ncp, -t_crit))
    return power


def means_sample_size(
    difference: float,
    sd: float,
    alpha: float = 0.025,
    power: float = 0.8,
    allocation_ratio: float = 1.0,
    sided: int = 1,
    *,
    null_difference: float = 0.0,
    normal_approximation: bool = True,
) -> MeansDesign:
    r"""Number of patients to compare two means.

    With the normal approximation,

    .. math::

        N = \frac{(1 + r)^2}{r}
            \frac{(z_{1-\alpha/s} + z_{1-\beta})^2 \sigma^2}{(\delta - \delta_0)^2};

    otherwise the smallest (real) ``N`` at which the one-tailed power of the two-sample
    t-test, ``1 - F_{t}(t_{1-\alpha/s, N-2}; N - 2, \mathrm{ncp})`` with
    ``ncp = sqrt(N r) / (1 + r) |delta - delta0| / sigma``, reaches ``power``. Both as
    rpact's ``getSampleSizeMeans`` (``normalApproximation = TRUE / FALSE``).

    Parameters
    ----------
    difference : float
        ``mu_experimental - mu_control`` under the alternative.
    sd : float
        Common standard deviation (positive).
    alpha : float
        Significance level, one-sided unless ``sided=2``.
    power : float
        Target power.
    allocation_ratio : float
        ``n_experimental / n_control``.
    sided : {1, 2}
        One- or two-sided test.
    null_difference : float
        The difference under the null hypothesis (for a non-inferiority or superiority
        margin); ``difference`` must differ from it.
    normal_approximation : bool
        z-test (default) or t-test (rpact's default).

    Returns
    -------
    MeansDesign

    Raises
    ------
    DesignError
        For ``difference == null_difference``, a non-positive ``sd`` or allocation ratio,
        or ``alpha`` or ``power`` outside ``(0, 1)``.

    References
    ----------
    .. [1] Chow, S.-C., Shao, J. & Wang, H. (2008). *Sample Size Calculations in Clinical
       Research*, 2nd ed., ch. 3. Chapman & Hall/CRC.
    .. [2] rpact, ``getSampleSizeMeans``, https://www.rpact.org.

    Examples
    --------
    >>> round(means_sample_size(1.0, 3.0, power=0.9).n_patients, 2)
    378.27
    """
    difference, sd, null_difference, alpha, sided, allocation_ratio, theta = _means_inputs(
        difference, sd, null_difference, alpha, sided, allocation_ratio, power
    )
    if theta == 0:
        raise DesignError(
            f"difference ({difference}) equals null_difference ({null_difference}): there is "
            "no effect to detect"
        )
    n_patients = ((_z(alpha / sided) + _z(1 - power)) / theta) ** 2
    if not normal_approximation:
        # one-tailed power (rpact's twoSidedPower = FALSE), increasing in N for N > 2
        n_patients = _root(
            lambda n: _t_power(n, theta, alpha / sided, both_tails=False) - power,
            2.001,
            n_patients + 10.0,
        )
    return MeansDesign(
        difference=difference,
        sd=sd,
        null_difference=null_difference,
        alpha=alpha,
        power=float(power),
        sided=sided,
        allocation_ratio=allocation_ratio,
        normal_approximation=bool(normal_approximation),
        n_patients=float(n_patients),
    )


def means_power(
    difference: float,
    sd: float,
    n_patients: float,
    alpha: float = 0.025,
    allocation_ratio: float = 1.0,
    sided: int = 1,
    *,
    null_difference: float = 0.0,
    normal_approximation: bool = True,
) -> MeansDesign:
    r"""Power of a comparison of two means with ``n_patients`` patients in all.

    With the normal approximation ``Phi(theta sqrt(N) - z_{1-alpha/s})`` with
    ``theta = sqrt(r) / (1 + r) |delta - delta0| / sigma`` (plus the far tail when
    two-sided); otherwise the power of the two-sample t-test with ``N - 2`` degrees of
    freedom from the noncentral t distribution (both tails when two-sided).

    Parameters
    ----------
    difference : float
        ``mu_experimental - mu_control`` under the alternative.
    sd : float
        Common standard deviation (positive).
    n_patients : float
        Total number of patients (more than 2 for the t-test).
    alpha : float
        Significance level, one-sided unless ``sided=2``.
    allocation_ratio : float
        ``n_experimental / n_control``.
    sided : {1, 2}
        One- or two-sided test.
    null_difference : float
        The difference under the null hypothesis.
    normal_approximation : bool
        z-test (default) or t-test.

    Returns
    -------
    MeansDesign
        With ``power`` the power (rpact's ``getPowerMeans`` ``overallReject`` with
        ``directionUpper = difference > null_difference``).

    Raises
    ------
    DesignError
        For invalid inputs.

    References
    ----------
    .. [1] Chow, S.-C., Shao, J. & Wang, H. (2008). *Sample Size Calculations in Clinical
       Research*, 2nd ed., ch. 3. Chapman & Hall/CRC.
    .. [2] rpact, ``getPowerMeans``, https://www.rpact.org.

    Examples
    --------
    >>> round(means_power(1.0, 3.0, n_patients=378.3).power, 3)
    0.9
    """
    difference, sd, null_difference, alpha, sided, allocation_ratio, theta = _means_inputs(
        difference, sd, null_difference, alpha, sided, allocation_ratio
    )
    n_patients = _positive("n_patients", n_patients)
    if normal_approximation:
        power = _two_tail_power(theta * math.sqrt(n_patients), _z(alpha / sided), sided)
    else:
        if n_patients <= 2:
            raise DesignError(f"the t-test needs more than 2 patients, got {n_patients}")
        power = _t_power(n_patients, theta, alpha / sided, both_tails=sided == 2)
    return MeansDesign(
        difference=difference,
        sd=sd,
        null_difference=null_difference,
        alpha=alpha,
        power=power,
        sided=sided,
        allocation_ratio=allocation_ratio,
        normal_approximation=bool(normal_approximation),
        n_patients=n_patients,
    )


# ------------------------------------------------------------------------ proportions


@dataclass(frozen=True)
class ProportionsDesign:
    """A fixed two-arm comparison of proportions (binary outcome), by a z-test.

    The test is of ``H0: p_experimental - p_control = null_difference`` against the
    direction of ``p_experimental - p_control``, with the variance under the null hypothesis
    from the restricted maximum likelihood estimates of Farrington & Manning (the pooled
    proportion when ``null_difference = 0``).

    Attributes
    ----------
    p_control, p_experimental : float
        Proportions (probabilities of response) under the alternative.
    null_difference : float
        The difference under the null hypothesis (rpact's ``thetaH0``).
    alpha, sided, allocation_ratio
        The test (see :func:`proportions_sample_size`).
    power : float
        Target power (:func:`proportions_sample_size`) or power
        (:func:`proportions_power`).
    n_patients : float
        Total number of patients; ``n_experimental`` and ``n_control`` split it.
    """

    p_control: float
    p_experimental: float
    null_difference: float
    alpha: float
    power: float
    sided: int
    allocation_ratio: float
    n_patients: float

    @property
    def n_experimental(self) -> float:
        return self.n_patients * self.allocation_ratio / (1 + self.allocation_ratio)

    @property
    def n_control(self) -> float:
        return self.n_patients / (1 + self.allocation_ratio)

    def summary(self) -> pd.DataFrame:
        """The design's inputs and results, one row each (column ``value``)."""
        names = [
            "p_control",
            "p_experimental",
            "null_difference",
            "alpha",
            "sided",
            "power",
            "allocation_ratio",
            "n_patients",
            "n_experimental",
            "n_control",
        ]
        rows = {name: getattr(self, name) for name in names}
        return pd.DataFrame({"value": pd.Series(rows, dtype=object)})


def _restricted_mle(
    p_experimental: float, p_control: float, null_difference: float, allocation_ratio: float
) -> tuple[float, float]:
    """Proportions maximizing the likelihood subject to ``p1 - p2 = null_difference``.

    The closed-form root of Farrington & Manning's (1990) cubic, as rpact's
    ``.getFarringtonManningValuesDiff`` (``p1`` experimental, allocation ``n1 / n2``).
    """
    p1, p2, theta, r = p_experimental, p_control, null_difference, allocation_ratio
    if theta == 0:
        pooled = (r * p1 + p2) / (1 + r)
        return pooled, pooled
    a = 1 + 1 / r
    b = -(1 + 1 / r + p1 + p2 / r + theta * (1 / r + 2))
    c = theta**2 + theta * (2 * p1 + 1 / r + 1) + p1 + p2 / r
    d = -theta * (1 + theta) * p1
    v = b**3 / (3 * a) ** 3 - b * c / (6 * a**2) + d / (2 * a)
    root = math.sqrt(b**2 / (3 * a) ** 2 - c / (3 * a))
    if v == 0:
        u, w = root, math.pi / 2
    else:
        u = math.copysign(root, v)
        w = (math.pi + math.acos(max(-1.0, min(1.0, v / u**3)))) / 3
    ml1 = min(max(0.0, 2 * u * math.cos(w) - b / (3 * a)), 1.0)
    ml2 = min(max(0.0, ml1 - theta), 1.0)
    return ml1, ml2


def _proportions_inputs(
    p_control, p_experimental, null_difference, alpha, sided, allocation_ratio, power=None
):
    p_control = _unit_open("p_control", p_control)
    p_experimental = _unit_open("p_experimental", p_experimental)
    null_difference = _finite("null_difference", null_difference)
    if not -1 < null_difference < 1:
        raise DesignError(f"null_difference must lie in (-1, 1), got {null_difference}")
    alpha, sided = _check_test(alpha, sided, power)
    allocation_ratio = _check_allocation(allocation_ratio)
    effect = p_experimental - p_control - null_difference
    ml1, ml2 = _restricted_mle(p_experimental, p_control, null_difference, allocation_ratio)
    r = allocation_ratio
    # variances of sqrt(n_experimental) * (p1_hat - p2_hat) under H1 and H0
    var1 = p_experimental * (1 - p_experimental) + r * p_control * (1 - p_control)
    var0 = ml1 * (1 - ml1) + r * ml2 * (1 - ml2)
    return p_control, p_experimental, null_difference, alpha, sided, r, effect, var0, var1


def proportions_sample_size(
    p_control: float,
    p_experimental: float,
    alpha: float = 0.025,
    power: float = 0.8,
    allocation_ratio: float = 1.0,
    sided: int = 1,
    *,
    null_difference: float = 0.0,
) -> ProportionsDesign:
    r"""Number of patients to compare two proportions.

    .. math::

        n_E = \frac{\left(z_{1-\alpha/s}\sqrt{\tilde p_E \tilde q_E + r \tilde p_C \tilde q_C}
              + z_{1-\beta}\sqrt{p_E q_E + r p_C q_C}\right)^2}
              {(p_E - p_C - \delta_0)^2},
        \qquad N = n_E (1 + r) / r,

    with the null variance from the restricted maximum likelihood estimates
    ``tilde p`` (Farrington & Manning; the pooled proportion ``(r p_E + p_C) / (1 + r)``
    when ``null_difference = 0``), as rpact's ``getSampleSizeRates``.

    Parameters
    ----------
    p_control, p_experimental : float
        Proportions under the alternative, in ``(0, 1)``.
    alpha : float
        Significance level, one-sided unless ``sided=2``.
    power : float
        Target power.
    allocation_ratio : float
        ``n_experimental / n_control``.
    sided : {1, 2}
        One- or two-sided test.
    null_difference : float
        ``p_experimental - p_control`` under the null hypothesis (negative for a
        non-inferiority test when higher is better).

    Returns
    -------
    ProportionsDesign

    Raises
    ------
    DesignError
        For proportions outside ``(0, 1)``, no effect
        (``p_experimental - p_control == null_difference``), or ``alpha`` or ``power``
        outside ``(0, 1)``.

    References
    ----------
    .. [1] Farrington, C. P. & Manning, G. (1990). Test statistics and sample size formulae
       for comparative binomial trials with null hypothesis of non-zero risk difference or
       non-unity relative risk. *Statistics in Medicine*, 9(12), 1447-1454.
    .. [2] rpact, ``getSampleSizeRates``, https://www.rpact.org.

    Examples
    --------
    >>> round(proportions_sample_size(0.3, 0.45, power=0.8).n_patients, 1)
    324.7
    """
    p_control, p_experimental, null_difference, alpha, sided, r, effect, var0, var1 = (
        _proportions_inputs(
            p_control, p_experimental, null_difference, alpha, sided, allocation_ratio, power
        )
    )
    if effect == 0:
        raise DesignError(
            f"p_experimental - p_control ({p_experimental - p_control}) equals "
            f"null_difference ({null_difference}): there is no effect to detect"
        )
    n_experimental = (
        (_z(alpha / sided) * math.sqrt(var0) + _z(1 - power) * math.sqrt(var1)) / effect
    ) ** 2
    return ProportionsDesign(
        p_control=p_control,
        p_experimental=p_experimental,
        null_difference=null_difference,
        alpha=alpha,
        power=float(power),
        sided=sided,
        allocation_ratio=r,
        n_patients=n_experimental * (1 + r) / r,
    )


def proportions_power(
    p_control: float,
    p_experimental: float,
    n_patients: float,
    alpha: float = 0.025,
    allocation_ratio: float = 1.0,
    sided: int = 1,
    *,
    null_difference: float = 0.0,
) -> ProportionsDesign:
    r"""Power of a comparison of two proportions with ``n_patients`` patients in all.

    ``Phi((|p_E - p_C - delta0| sqrt(n_E) - z sqrt(v0)) / sqrt(v1))`` with the variances of
    :func:`proportions_sample_size` and ``z = z_{1-alpha/s}``; when two-sided, the far tail
    is added as rpact's ``getPowerRates`` does.

    Parameters
    ----------
    p_control, p_experimental : float
        Proportions under the alternative, in ``(0, 1)``.
    n_patients : float
        Total number of patients.
    alpha : float
        Significance level, one-sided unless ``sided=2``.
    allocation_ratio : float
        ``n_experimental / n_control``.
    sided : {1, 2}
        One- or two-sided test.
    null_difference : float
        ``p_experimental - p_control`` under the null hypothesis.

    Returns
    -------
    ProportionsDesign
        With ``power`` the power (rpact's ``getPowerRates`` ``overallReject`` with
        ``directionUpper = p_experimental - p_control > null_difference``).

    Raises
    ------
    DesignError
        For invalid inputs.

    References
    ----------
    .. [1] Farrington, C. P. & Manning, G. (1990). *Statistics in Medicine*, 9(12),
       1447-1454.
    .. [2] rpact, ``getPowerRates``, https://www.rpact.org.

    Examples
    --------
    >>> round(proportions_power(0.3, 0.45, n_patients=324.8).power, 3)
    0.8
    """
    p_control, p_experimental, null_difference, alpha, sided, r, effect, var0, var1 = (
        _proportions_inputs(
            p_control, p_experimental, null_difference, alpha, sided, allocation_ratio
        )
    )
    n_patients = _positive("n_patients", n_patients)
    z_crit = _z(alpha / sided)
    n_experimental = n_patients * r / (1 + r)
    # rpact's drift: the z-statistic's mean in null-variance units, shifted so that
    # Phi(drift - z) is the one-tailed power
    drift = abs(effect) * math.sqrt(n_experimental / var1) + z_crit * (1 - math.sqrt(var0 / var1))
    return ProportionsDesign(
        p_control=p_control,
        p_experimental=p_experimental,
        null_difference=null_difference,
        alpha=alpha,
        power=_two_tail_power(drift, z_crit, sided),
        sided=sided,
        allocation_ratio=r,
        n_patients=n_patients,
    )
