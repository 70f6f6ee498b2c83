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
    if target >= ceiling:
        raise DesignError(
            f"assurance {target} is never reached: it cannot exceed the probability "
            f"{ceiling:.4f} that the hazard ratio is below 1"
        )

    def gap(events: float) -> float:
        return logrank_assurance(events, log_hr_mean, log_hr_sd, alpha, allocation_ratio) - target

    upper = 10.0
    while gap(upper) < 0:
        upper *= 2
    return float(optimize.brentq(gap, 1e-6, upper, xtol=1e-8))
