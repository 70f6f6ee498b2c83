"""Outcome models: times to event, dropout and intercurrent events; binary and
continuous responses. All functions work on arrays (replicates × patients) and turn
uniform draws into outcomes by inversion, so that a changed effect moves each simulated
patient's outcome monotonically (common random numbers across a grid of effects)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from array_api_compat import device
from scipy.special import expit, logit, ndtri

from generators.population import CovariateModel
from trials.arrays import like, namespace
from trials.protocol import (
    DropoutModel,
    ExponentialControl,
    PiecewiseExponentialControl,
    SurvivalControl,
    WeibullControl,
)

MONTHS_PER_YEAR = 12.0


@dataclass(frozen=True)
class PiecewiseHazard:
    """A piecewise-constant hazard: ``hazards[j]`` from ``starts[j]`` (``starts[0] = 0``)."""

    starts: np.ndarray
    hazards: np.ndarray

    @classmethod
    def constant(cls, hazard: float) -> PiecewiseHazard:
        return cls(np.array([0.0]), np.array([float(hazard)]))

    @property
    def cumulative_at_starts(self) -> np.ndarray:
        return np.concatenate([[0.0], np.cumsum(np.diff(self.starts) * self.hazards[:-1])])

    def cumulative(self, t: np.ndarray) -> np.ndarray:
        """The cumulative hazard at ``t``."""
        piece = np.searchsorted(self.starts, t, side="right") - 1
        return self.cumulative_at_starts[piece] + (t - self.starts[piece]) * self.hazards[piece]

    def inverse(self, target):
        """The time at which the cumulative hazard reaches ``target`` (inf if never);
        ``target`` is a numpy array or a torch tensor."""
        xp = namespace(target)
        if len(self.starts) == 1:
            if self.hazards[0] == 0:
                return xp.full_like(target, np.inf, dtype=xp.float64)
            return target / self.hazards[0]
        cum = like(self.cumulative_at_starts, target)
        # a zero-hazard piece has equal cumulative hazards at both ends: 'right' skips it
        piece = xp.searchsorted(cum, target, side="right") - 1
        starts, hazards = like(self.starts, target), like(self.hazards, target)
        with np.errstate(divide="ignore", invalid="ignore"):
            time = starts[piece] + (target - cum[piece]) / hazards[piece]
        return xp.where(xp.isnan(time), np.inf, time)


def annual_rate_hazard(rate: float) -> float:
    """Monthly hazard of an exponential with proportion ``rate`` within 12 months."""
    return -np.log1p(-rate) / MONTHS_PER_YEAR


def dropout_hazard(model: DropoutModel) -> PiecewiseHazard:
    if model.piecewise:
        starts = [0.0] + [p.until for p in model.piecewise[:-1]]
        return PiecewiseHazard(
            np.array(starts), np.array([annual_rate_hazard(p.annual_rate) for p in model.piecewise])
        )
    return PiecewiseHazard.constant(annual_rate_hazard(model.annual_rate or 0.0))


def control_median(control: SurvivalControl) -> float:
    """Median time to event in the control arm for a reference patient."""
    if isinstance(control, WeibullControl):
        return _weibull_scale(control) * np.log(2.0) ** (1.0 / control.shape)
    hazard = control_hazard(control)
    return float(hazard.inverse(np.array([np.log(2.0)]))[0])


def control_hazard(control: ExponentialControl | PiecewiseExponentialControl) -> PiecewiseHazard:
    if isinstance(control, ExponentialControl):
        rate = control.hazard if control.hazard is not None else np.log(2.0) / control.median
        return PiecewiseHazard.constant(rate)
    return PiecewiseHazard(np.array([0.0, *control.breaks]), np.array(control.hazards))


def _weibull_scale(control: WeibullControl) -> float:
    if control.scale is not None:
        return control.scale
    return control.median / np.log(2.0) ** (1.0 / control.shape)


def event_times(control: SurvivalControl, exponentials, log_hazard_ratio):
    """Times to event under proportional hazards (numpy arrays or torch tensors).

    Solves ``H0(t) * exp(log_hazard_ratio) = E`` for standard exponential ``E``.
    """
    target = exponentials * namespace(log_hazard_ratio).exp(-log_hazard_ratio)
    if isinstance(control, WeibullControl):
        return _weibull_scale(control) * target ** (1.0 / control.shape)
    if isinstance(control, ExponentialControl):
        rate = control.hazard if control.hazard is not None else np.log(2.0) / control.median
        return target / rate
    return control_hazard(control).inverse(target)


def cumulative_hazard(control: SurvivalControl, t: np.ndarray) -> np.ndarray:
    """Control cumulative hazard ``H0(t)`` of a reference patient (uncured)."""
    if isinstance(control, WeibullControl):
        return (np.asarray(t) / _weibull_scale(control)) ** control.shape
    return control_hazard(control).cumulative(np.asarray(t, dtype=float))


def inverse_cumulative_hazard(control: SurvivalControl, target: np.ndarray) -> np.ndarray:
    """``H0^{-1}``: the time at which the control cumulative hazard reaches ``target``."""
    if isinstance(control, WeibullControl):
        return _weibull_scale(control) * np.asarray(target) ** (1.0 / control.shape)
    return control_hazard(control).inverse(np.asarray(target, dtype=float))


def piecewise_effect_event_times(
    control: SurvivalControl, target: np.ndarray, breaks, hazard_ratios
) -> np.ndarray:
    """Times to event when the hazard ratio is ``hazard_ratios[j]`` between ``breaks``.

    Solves ``H(t) = target`` with ``H(t) = sum_j HR_j (H0(min(t, b_j+1)) - H0(b_j))``,
    the arm's cumulative hazard, piece by piece through ``H0``'s inverse.
    """
    knots = np.array([0.0, *breaks])
    ratios = np.asarray(hazard_ratios, dtype=float)
    h0_knots = cumulative_hazard(control, knots)
    arm_knots = np.concatenate([[0.0], np.cumsum(np.diff(h0_knots) * ratios[:-1])])
    piece = np.searchsorted(arm_knots, target, side="right") - 1
    h0_target = h0_knots[piece] + (target - arm_knots[piece]) / ratios[piece]
    return inverse_cumulative_hazard(control, h0_target)


def arm_cumulative_hazard(
    control: SurvivalControl, t: np.ndarray, breaks=(), hazard_ratios=(1.0,)
) -> np.ndarray:
    """An arm's cumulative hazard under a piecewise-constant hazard ratio (one piece:
    proportional hazards)."""
    knots = np.array([0.0, *breaks])
    ratios = np.asarray(hazard_ratios, dtype=float)
    h0_knots = cumulative_hazard(control, knots)
    arm_knots = np.concatenate([[0.0], np.cumsum(np.diff(h0_knots) * ratios[:-1])])
    piece = np.searchsorted(knots, t, side="right") - 1
    return arm_knots[piece] + ratios[piece] * (cumulative_hazard(control, t) - h0_knots[piece])


def linear_predictor(
    effects: Mapping[str, float | Mapping[str, float]],
    covariates: Mapping[str, np.ndarray],
    model: CovariateModel,
    shape: tuple[int, ...],
):
    """Sum of covariate effects: per unit from the mean for continuous covariates, for
    ``1`` vs ``0`` for binary ones, per level for categorical ones (numpy arrays or torch
    tensors, like the covariates)."""
    reference = next(iter(covariates.values()), None)
    if reference is None:
        lp = np.zeros(shape)
    else:
        xp = namespace(reference)
        lp = xp.zeros(shape, dtype=xp.float64, device=device(reference))
    for name, effect in effects.items():
        values = covariates[name]
        kind = model.kind(name)
        if kind == "categorical":
            per_level = np.array([effect.get(level, 0.0) for level in model.levels(name)])
            lp += like(per_level, values)[values]
        elif kind == "binary":
            lp += effect * values
        else:
            lp += effect * (values - model.mean(name))
    return lp


def binary_responses(
    uniforms: np.ndarray,
    control_rate: float,
    linear: np.ndarray,
    arm_effect: np.ndarray,
    scale: str,
) -> np.ndarray:
    """Responses: ``logit p = logit(rate) + lp + log OR`` (``scale='logit'``) or
    ``p = rate + risk difference`` (``scale='risk'``)."""
    if scale == "logit":
        probability = expit(logit(control_rate) + linear + arm_effect)
    else:
        probability = np.clip(control_rate + arm_effect, 0.0, 1.0)
    return uniforms < probability


def continuous_responses(
    uniforms: np.ndarray, mean: float, sd: float, linear: np.ndarray, arm_effect: np.ndarray
) -> np.ndarray:
    """Normal responses ``mean + lp + difference + sd * Z`` with ``Z = Φ⁻¹(U)``."""
    return mean + linear + arm_effect + sd * ndtri(uniforms)
