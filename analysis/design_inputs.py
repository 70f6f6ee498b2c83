"""Input checks and normal-distribution helpers shared by the analytic design modules."""

from __future__ import annotations

import math
from typing import Literal

from scipy import optimize, special

from trials.exceptions import DesignError

LogrankMethod = Literal["schoenfeld", "freedman"]
Arm = Literal["experimental", "control"]



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


def _root(fun, lower: float, upper: float) -> float:
    """Root of an increasing ``fun`` with ``fun(lower) < 0``; ``upper`` is doubled as needed."""
    for _ in range(200):
        if fun(upper) >= 0:
            return float(optimize.brentq(fun, lower, upper, xtol=1e-12, rtol=1e-15, maxiter=500))
        lower, upper = upper, 2 * upper
    raise DesignError("no solution found: the target is not reached in any finite time")
