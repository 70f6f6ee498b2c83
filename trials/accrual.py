"""Enrollment times from piecewise-constant accrual rates."""

from __future__ import annotations

import numpy as np

from trials.arrays import like, namespace
from trials.protocol import Accrual


def accrual_knots(accrual: Accrual) -> tuple[np.ndarray, np.ndarray]:
    """Start times of the periods and their rates (patients per month)."""
    durations = [p.duration for p in accrual.periods[:-1]]
    starts = np.concatenate([[0.0], np.cumsum(durations)]) if durations else np.array([0.0])
    rates = np.array([p.rate for p in accrual.periods], dtype=float)
    return starts, rates


def enrollment_time(accrual: Accrual, expected):
    """Invert the cumulative accrual intensity: the time at which ``expected`` patients
    are expected to have enrolled (the last period lasts for ever); ``expected`` is a
    numpy array or a torch tensor."""
    starts, rates = accrual_knots(accrual)
    cumulative = np.concatenate([[0.0], np.cumsum(np.diff(starts) * rates[:-1])])
    starts, rates, cumulative = (like(a, expected) for a in (starts, rates, cumulative))
    piece = namespace(expected).searchsorted(cumulative, expected, side="right") - 1
    return starts[piece] + (expected - cumulative[piece]) / rates[piece]


def enrollment_times(accrual: Accrual, n_patients: int, exponentials):
    """Calendar enrollment times of patients 1..n (months from the start of the study).

    Parameters
    ----------
    accrual : Accrual
        The accrual rates.
    n_patients : int
        Number of patients (the last axis of ``exponentials``).
    exponentials : ndarray, tensor or None
        Standard exponential draws, shape ``(R, n_patients)``, for a Poisson process;
        ignored for deterministic accrual, where patient ``i`` (1-based) enters when the
        cumulative expected accrual reaches ``i``.
    """
    if accrual.process == "deterministic" or exponentials is None:
        return enrollment_time(accrual, np.arange(1, n_patients + 1, dtype=float))
    return enrollment_time(accrual, namespace(exponentials).cumulative_sum(exponentials, axis=-1))


def expected_accrual_duration(accrual: Accrual, n_patients: int) -> float:
    """The time at which ``n_patients`` are expected to have enrolled."""
    return float(enrollment_time(accrual, np.array([float(n_patients)]))[0])
