"""Analytic power and events of (weighted) log-rank tests under non-proportional hazards.

Piecewise-exponential hazards in each arm (delayed or crossing effects), optional cure
fractions, piecewise-constant accrual and exponential loss to follow-up. The first-order
asymptotic mean and variance of the Fleming–Harrington statistic
``U = sum_t w(t) (d_1 - d n_1 / n)`` per patient are integrals over follow-up time:

    E[U] / N   = int w(t) pi_1(t) pi_0(t) / pi(t) (h_1(t) - h_0(t)) dt
    Var[U] / N = int w(t)^2 pi_1(t) pi_0(t) / pi(t)^2 (pi_1(t) h_1(t) + pi_0(t) h_0(t)) dt

with ``pi_a(t)`` the share of randomized patients at risk in arm ``a`` at follow-up
``t`` (allocation × survival × no dropout × enrolled at least ``t`` before the analysis),
``pi = pi_0 + pi_1`` and ``w(t) = S(t)^rho (1 - S(t))^gamma`` from the pooled survival
``S`` (the mixture of the arms' survival, what the pooled Kaplan–Meier estimates). The
test's drift is ``sqrt(N) E[U] / sqrt(Var[U])``; with proportional hazards and ``w = 1``
it reduces to Schoenfeld's formula under local alternatives. Integrals use the
trapezoidal rule on a fine grid.

References
----------
Schoenfeld, D. (1981). The asymptotic properties of nonparametric tests for comparing
survival distributions. *Biometrika* 68, 316–319.
Lakatos, E. (1988). Sample sizes based on the log-rank statistic in complex clinical
trials. *Biometrics* 44, 229–241.
Fleming, T. R. and Harrington, D. P. (1991). *Counting Processes and Survival Analysis*.
Wiley.
Yung, G. and Liu, Y. (2020). Sample size and power for the weighted log-rank test and
Kaplan–Meier based tests with allowance for nonproportional hazards. *Biometrics* 76,
939–950.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

from trials.exceptions import DesignError

GRID = 4001


@dataclass(frozen=True)
class PiecewiseArm:
    """Hazards ``hazards[j]`` (per month) from ``starts[j]``; ``cure_fraction`` never fail."""

    starts: tuple[float, ...]
    hazards: tuple[float, ...]
    cure_fraction: float = 0.0

    def cumulative(self, t: np.ndarray) -> np.ndarray:
        starts, hazards = np.asarray(self.starts), np.asarray(self.hazards)
        at_starts = np.concatenate([[0.0], np.cumsum(np.diff(starts) * hazards[:-1])])
        piece = np.searchsorted(starts, t, side="right") - 1
        return at_starts[piece] + (t - starts[piece]) * hazards[piece]

    def survival(self, t: np.ndarray) -> np.ndarray:
        return self.cure_fraction + (1 - self.cure_fraction) * np.exp(-self.cumulative(t))

    def hazard(self, t: np.ndarray) -> np.ndarray:
        """Population hazard (the uncured hazard diluted by the cured)."""
        piece = np.searchsorted(np.asarray(self.starts), t, side="right") - 1
        hazard = np.asarray(self.hazards)[piece]
        if self.cure_fraction == 0:
            return hazard
        uncured = (1 - self.cure_fraction) * np.exp(-self.cumulative(t))
        return hazard * uncured / (self.cure_fraction + uncured)


@dataclass(frozen=True)
class NPHDesign:
    """Expected events and the power of a weighted log-rank test at an analysis time."""

    analysis_time: float
    n_patients: float
    events: float
    drift: float
    power: float
    rho: float
    gamma: float
    alpha: float


def _enrolled_fraction(u: np.ndarray, accrual_starts, accrual_rates, n_patients) -> np.ndarray:
    """Share of the ``n_patients`` enrolled by calendar time ``u``."""
    starts = np.asarray(accrual_starts, dtype=float)
    rates = np.asarray(accrual_rates, dtype=float)
    at_starts = np.concatenate([[0.0], np.cumsum(np.diff(starts) * rates[:-1])])
    u = np.maximum(u, 0.0)
    piece = np.searchsorted(starts, u, side="right") - 1
    enrolled = at_starts[piece] + (u - starts[piece]) * rates[piece]
    return np.minimum(enrolled / n_patients, 1.0)


def weighted_logrank_design(
    control: PiecewiseArm,
    experimental: PiecewiseArm,
    *,
    analysis_time: float,
    n_patients: float,
    accrual_starts: Sequence[float] = (0.0,),
    accrual_rates: Sequence[float],
    dropout_hazard: float = 0.0,
    allocation_ratio: float = 1.0,
    rho: float = 0.0,
    gamma: float = 0.0,
    alpha: float = 0.025,
) -> NPHDesign:
    """Expected events and one-sided power of FH(rho, gamma) at a calendar analysis time.

    Parameters
    ----------
    control, experimental : PiecewiseArm
    analysis_time : float
        Calendar month of the analysis (accrual starts at 0).
    n_patients : float
        Patients randomized; accrual follows ``accrual_rates`` from ``accrual_starts``
        until they are enrolled.
    dropout_hazard : float
        Monthly hazard of loss to follow-up (both arms).
    allocation_ratio : float
        ``n_experimental / n_control``.
    rho, gamma : float
        Fleming–Harrington weight ``S(t-)^rho (1 - S(t-))^gamma``; ``0, 0`` is the log-rank.
    alpha : float
        One-sided level; the power is for a benefit of the experimental arm.
    """
    if analysis_time <= 0 or n_patients <= 0:
        raise DesignError("analysis_time and n_patients must be positive")
    if rho < 0 or gamma < 0:
        raise DesignError(f"rho and gamma must be non-negative (got {rho}, {gamma})")
    t = np.linspace(0.0, analysis_time, GRID)
    share1 = allocation_ratio / (1 + allocation_ratio)
    shares = (1 - share1, share1)
    enrolled = _enrolled_fraction(analysis_time - t, accrual_starts, accrual_rates, n_patients)
    retained = np.exp(-dropout_hazard * t)
    arms = (control, experimental)
    at_risk = [
        s * arm.survival(t) * retained * enrolled for s, arm in zip(shares, arms, strict=False)
    ]
    hazards = [arm.hazard(t) for arm in arms]
    pooled = shares[0] * control.survival(t) + shares[1] * experimental.survival(t)
    weight = pooled**rho * (1 - pooled) ** gamma
    total = at_risk[0] + at_risk[1]
    with np.errstate(invalid="ignore", divide="ignore"):
        mix = np.where(total > 0, at_risk[0] * at_risk[1] / total, 0.0)
        share = np.where(total > 0, 1 / total, 0.0)
    mean = np.trapezoid(weight * mix * (hazards[0] - hazards[1]), t)
    variance = np.trapezoid(
        weight**2 * mix * share * (at_risk[1] * hazards[1] + at_risk[0] * hazards[0]), t
    )
    events = n_patients * sum(
        np.trapezoid(r * h, t) for r, h in zip(at_risk, hazards, strict=False)
    )
    drift = float(np.sqrt(n_patients) * mean / np.sqrt(variance)) if variance > 0 else 0.0
    power = float(special.ndtr(drift - special.ndtri(1 - alpha)))
    return NPHDesign(analysis_time, n_patients, float(events), drift, power, rho, gamma, alpha)


def time_of_events(events: float, control: PiecewiseArm, experimental: PiecewiseArm, **kw):
    """Calendar time at which ``events`` are expected, and the design there."""

    n_patients = kw["n_patients"]
    ratio = kw.get("allocation_ratio", 1.0)
    share = ratio / (1 + ratio)
    possible = n_patients * (
        (1 - share) * (1 - control.cure_fraction) + share * (1 - experimental.cure_fraction)
    )
    if events >= possible:
        raise DesignError(
            f"{events} events are never expected: at most {possible:.1f} of {n_patients} "
            "patients can have the event"
        )

    def gap(time: float) -> float:
        return (
            weighted_logrank_design(control, experimental, analysis_time=time, **kw).events - events
        )

    upper = 1.0
    while gap(upper) < 0:
        upper *= 2
        if upper > 1e4:
            raise DesignError(f"{events} events are never expected")
    time = optimize.brentq(gap, 1e-6, upper, xtol=1e-8)
    return weighted_logrank_design(control, experimental, analysis_time=time, **kw)


def events_for_power(
    power: float, control: PiecewiseArm, experimental: PiecewiseArm, **kw
) -> NPHDesign:
    """The number of events (and its analysis time) at which the test reaches ``power``.

    Searches the events between 1 and almost every patient who can have the event; raises
    DesignError when even then the power stays below the target (e.g. an effect that the
    weights cannot see).
    """
    if not 0 < power < 1:
        raise DesignError(f"power must lie in (0, 1), got {power}")
    n_patients = kw["n_patients"]
    ratio = kw.get("allocation_ratio", 1.0)
    share = ratio / (1 + ratio)
    possible = n_patients * (
        (1 - share) * (1 - control.cure_fraction) + share * (1 - experimental.cure_fraction)
    )

    def shortfall(events: float) -> float:
        return time_of_events(events, control, experimental, **kw).power - power

    # events keep coming only until dropout or cure takes everybody: find the plateau
    horizon = 64.0
    while (
        weighted_logrank_design(control, experimental, analysis_time=2 * horizon, **kw).events
        - weighted_logrank_design(control, experimental, analysis_time=horizon, **kw).events
        > 1e-3 * possible
        and horizon < 1e4
    ):
        horizon *= 2
    plateau = weighted_logrank_design(control, experimental, analysis_time=horizon, **kw).events
    upper = 0.99 * min(plateau, possible)
    if shortfall(upper) < 0:
        raise DesignError(
            f"power {power} is not reached with {n_patients} patients (at most "
            f"{shortfall(upper) + power:.4f}); enrol more patients"
        )
    events = optimize.brentq(shortfall, 2.0, upper, xtol=1e-6)
    return time_of_events(events, control, experimental, **kw)
