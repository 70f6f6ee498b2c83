"""Assurance: the probability of success averaged over what is known of the effect.

For a test whose z statistic is normal with mean ``delta sqrt(I)`` (``delta`` the effect
in the direction of benefit, ``I`` the statistical information) and a normal distribution
``N(mu, sigma^2)`` for ``delta`` (e.g. the posterior of a phase-2 estimate), the
probability of rejecting at one-sided level ``alpha`` is

    assurance = Phi((mu sqrt(I) - z_{1-alpha}) / sqrt(1 + I sigma^2))

(O'Hagan, Stevens & Campbell 2005), which tends to ``P(delta > 0)`` as ``I`` grows rather
than to 1. For a log-rank test ``delta = -log HR`` and ``I = D r / (1 + r)^2`` with ``D``
events and allocation ratio ``r`` (Schoenfeld).

References
----------
O'Hagan, A., Stevens, J. W. and Campbell, M. J. (2005). Assurance in clinical trial
design. *Pharmaceutical Statistics* 4, 187–201.
Spiegelhalter, D. J., Abrams, K. R. and Myles, J. P. (2004). *Bayesian Approaches to
Clinical Trials and Health-Care Evaluation*, section 6.5. Wiley.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize, special

from trials.exceptions import DesignError


def normal_assurance(mean: float, sd: float, information: float, alpha: float = 0.025) -> float:
    """Assurance of a one-sided z-test with a normal distribution for the effect."""
    if sd < 0 or information <= 0 or not 0 < alpha < 1:
        raise DesignError("need sd >= 0, information > 0 and alpha in (0, 1)")
    z = special.ndtri(1 - alpha)
    return float(
        special.ndtr((mean * math.sqrt(information) - z) / math.sqrt(1 + information * sd**2))
    )


def logrank_information(events: float, allocation_ratio: float = 1.0) -> float:
    """Schoenfeld's information for the log hazard ratio after ``events`` events."""
    return events * allocation_ratio / (1 + allocation_ratio) ** 2


def logrank_assurance(
    events: float,
    log_hr_mean: float,
    log_hr_sd: float,
    alpha: float = 0.025,
    allocation_ratio: float = 1.0,
) -> float:
    """Assurance of a log-rank test with ``log HR ~ N(log_hr_mean, log_hr_sd^2)``."""
    info = logrank_information(events, allocation_ratio)
    return normal_assurance(-log_hr_mean, log_hr_sd, info, alpha)


def events_for_assurance(
    target: float,
    log_hr_mean: float,
    log_hr_sd: float,
    alpha: float = 0.025,
    allocation_ratio: float = 1.0,
) -> float:
    """Events at which the log-rank assurance reaches ``target`` (DesignError if never:
    the assurance cannot exceed the probability that the effect is beneficial)."""
    ceiling = special.ndtr(-log_hr_mean / log_hr_sd) if log_hr_sd > 0 else float(log_hr_mean < 0)
    return _solve_events(
        target,
        ceiling,
        lambda events: logrank_assurance(
            events, log_hr_mean, log_hr_sd, alpha, allocation_ratio
        ),
    )


def logrank_assurance_draws(
    events: float,
    log_hr_draws: np.ndarray,
    alpha: float = 0.025,
    allocation_ratio: float = 1.0,
) -> float:
    """Assurance of a log-rank test when the log hazard ratio is known by draws (e.g. the
    posterior of a Bayesian fit): the mean over the draws of Schoenfeld's power,
    ``mean_d Phi(-log_hr_d sqrt(I) - z_{1-alpha})``, exact for the empirical distribution
    of the draws (no Monte Carlo error beyond that of the draws themselves)."""
    draws = np.asarray(log_hr_draws, dtype=float)
    if draws.ndim != 1 or draws.size == 0 or not np.isfinite(draws).all():
        raise DesignError("the log hazard ratio draws must be a non-empty 1-D finite array")
    if events <= 0 or not 0 < alpha < 1:
        raise DesignError("need events > 0 and alpha in (0, 1)")
    root_info = math.sqrt(logrank_information(events, allocation_ratio))
    return float(special.ndtr(-draws * root_info - special.ndtri(1 - alpha)).mean())


def events_for_assurance_draws(
    target: float,
    log_hr_draws: np.ndarray,
    alpha: float = 0.025,
    allocation_ratio: float = 1.0,
) -> float:
    """Events at which :func:`logrank_assurance_draws` reaches ``target`` (DesignError if
    never: it cannot exceed the share of draws with a hazard ratio below 1)."""
    ceiling = float(np.mean(np.asarray(log_hr_draws) < 0))
    return _solve_events(
        target,
        ceiling,
        lambda events: logrank_assurance_draws(events, log_hr_draws, alpha, allocation_ratio),
    )


def _solve_events(target: float, ceiling: float, assurance) -> float:
    if target >= ceiling:
        raise DesignError(
            f"assurance {target} is never reached: it cannot exceed the probability "
            f"{ceiling:.4f} that the hazard ratio is below 1"
        )

    def gap(events: float) -> float:
        return assurance(events) - target

    upper = 10.0
    while gap(upper) < 0:
        upper *= 2
    return float(optimize.brentq(gap, 1e-6, upper, xtol=1e-8))
