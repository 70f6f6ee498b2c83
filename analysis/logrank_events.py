"""Events for a log-rank test: Schoenfeld's and Freedman's formulas, and the power of a
log-rank test after a given number of events. Conventions as in :mod:`analysis.power`."""

from __future__ import annotations

import math

from analysis.design_inputs import (
    LogrankMethod,
    _check_method,
    _check_test,
    _hazard_ratio_for_size,
    _positive,
    _two_tail_power,
    _z,
)

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
