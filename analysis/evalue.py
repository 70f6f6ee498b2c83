"""Sensitivity to unmeasured confounding: the E-value and a tipping-point analysis.

**E-value** (VanderWeele & Ding 2017): the smallest strength of association, on the risk
ratio scale, that an unmeasured confounder would need with both the treatment and the
outcome, above and beyond the measured covariates, to explain away an observed risk ratio
``RR``: ``E = RR + sqrt(RR (RR - 1))`` for ``RR >= 1`` (``1 / RR`` in place of ``RR`` below
1). The E-value of the confidence interval is that of the limit nearer the null, or 1 when
the interval includes the null. Other measures are first converted to a risk ratio:

* hazard ratio, rare outcome (under 15 % by the end of follow-up): ``RR ~ HR``;
* hazard ratio, common outcome: ``RR ~ (1 - 0.5^sqrt(HR)) / (1 - 0.5^sqrt(1 / HR))``
  (VanderWeele's square-root based conversion, 2017 and 2020);
* odds ratio, rare outcome: ``RR ~ OR``; common: ``RR ~ sqrt(OR)``;
* standardized mean difference ``d`` (continuous outcome): ``RR ~ exp(0.91 d)``.

**Tipping point**: a binary unmeasured confounder ``U`` whose prevalence differs by
``delta = P(U | trial) - P(U | external)`` and whose log hazard ratio on the outcome is
``gamma`` biases the log hazard ratio by about ``delta * gamma`` (the first-order term in
the prevalences of the bias factor of Lin, Psaty & Kronmal 1998; exact for a normally
distributed confounder with mean difference ``delta`` and a rare outcome). The grid shows
the log hazard ratio and its interval after removing that bias, and where the interval
starts to include 1.

References
----------
VanderWeele, T. J. and Ding, P. (2017). Sensitivity analysis in observational research:
introducing the E-value. *Ann. Intern. Med.* 167, 268-274.
VanderWeele, T. J. (2020). Optimal approximate conversions of odds ratios and hazard ratios
to risk ratios. *Biometrics* 76, 746-752.
Lin, D. Y., Psaty, B. M. and Kronmal, R. A. (1998). Assessing the sensitivity of regression
results to unmeasured confounders in observational studies. *Biometrics* 54, 948-963.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

__all__ = [
    "EValue",
    "TippingPoint",
    "e_value",
    "e_value_of_risk_ratio",
    "hazard_ratio_to_risk_ratio",
    "tipping_point",
]

Measure = Literal["risk_ratio", "hazard_ratio", "odds_ratio", "standardized_difference"]


def e_value_of_risk_ratio(risk_ratio: float) -> float:
    """``RR + sqrt(RR (RR - 1))`` for ``RR >= 1``, of ``1 / RR`` for ``RR < 1``.

    Examples
    --------
    >>> round(e_value_of_risk_ratio(3.9), 2)   # VanderWeele & Ding (2017)
    7.26
    """
    if not (risk_ratio > 0 and math.isfinite(risk_ratio)):
        raise ValueError(f"a risk ratio must be positive and finite, got {risk_ratio!r}")
    rr = risk_ratio if risk_ratio >= 1 else 1.0 / risk_ratio
    return rr + math.sqrt(rr * (rr - 1.0))


def hazard_ratio_to_risk_ratio(hazard_ratio: float, *, rare_outcome: bool) -> float:
    """The risk ratio a hazard ratio corresponds to (VanderWeele 2017, 2020).

    ``HR`` itself for a rare outcome; ``(1 - 0.5^sqrt(HR)) / (1 - 0.5^sqrt(1/HR))`` for a
    common one (more than about 15 % with the outcome by the end of follow-up).
    """
    if not (hazard_ratio > 0 and math.isfinite(hazard_ratio)):
        raise ValueError(f"a hazard ratio must be positive and finite, got {hazard_ratio!r}")
    if rare_outcome:
        return float(hazard_ratio)
    return (1 - 0.5 ** math.sqrt(hazard_ratio)) / (1 - 0.5 ** math.sqrt(1 / hazard_ratio))


def _to_risk_ratio(value: float, measure: str, rare_outcome: bool) -> float:
    if measure == "risk_ratio":
        return float(value)
    if measure == "hazard_ratio":
        return hazard_ratio_to_risk_ratio(value, rare_outcome=rare_outcome)
    if measure == "odds_ratio":
        return float(value) if rare_outcome else math.sqrt(value)
    if measure == "standardized_difference":
        return math.exp(0.91 * value)
    raise ValueError(f"unknown measure {measure!r}")


@dataclass(frozen=True)
class EValue:
    """E-values of an estimate and of its confidence interval.

    Attributes
    ----------
    measure : str
        The scale of ``estimate`` (risk ratio, hazard ratio, odds ratio, standardized
        difference).
    estimate, conf_low, conf_high : float
        As given (``nan`` for an interval not given).
    rare_outcome : bool
    risk_ratio : float
        The estimate as a risk ratio (after the conversion of the measure).
    risk_ratio_limit : float
        The confidence limit nearer the null as a risk ratio (1 when the interval
        includes the null; ``nan`` without an interval).
    e_value : float
        E-value of the estimate.
    e_value_ci : float
        E-value of the confidence limit nearer the null (1 when the interval includes
        the null).
    conversion : str
        How the measure was converted to a risk ratio, in words.
    """

    measure: str
    estimate: float
    conf_low: float
    conf_high: float
    rare_outcome: bool
    risk_ratio: float
    risk_ratio_limit: float
    e_value: float
    e_value_ci: float
    conversion: str

    def summary(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "measure": [self.measure],
                "estimate": [self.estimate],
                "conf_low": [self.conf_low],
                "conf_high": [self.conf_high],
                "risk_ratio": [self.risk_ratio],
                "e_value": [self.e_value],
                "e_value_ci": [self.e_value_ci],
                "conversion": [self.conversion],
            }
        )


_CONVERSIONS = {
    ("risk_ratio", True): "none (a risk ratio)",
    ("risk_ratio", False): "none (a risk ratio)",
    ("hazard_ratio", True): "rare outcome: the hazard ratio taken as the risk ratio",
    ("hazard_ratio", False): (
        "common outcome: RR = (1 - 0.5^sqrt(HR)) / (1 - 0.5^sqrt(1/HR)) "
        "(VanderWeele's square-root approximation)"
    ),
    ("odds_ratio", True): "rare outcome: the odds ratio taken as the risk ratio",
    ("odds_ratio", False): "common outcome: RR = sqrt(OR)",
    ("standardized_difference", True): "RR = exp(0.91 d)",
    ("standardized_difference", False): "RR = exp(0.91 d)",
}


def e_value(
    estimate: float,
    conf_low: float | None = None,
    conf_high: float | None = None,
    *,
    measure: Measure = "risk_ratio",
    rare_outcome: bool = False,
) -> EValue:
    """E-value of an estimate and of its confidence limit nearer the null.

    Parameters
    ----------
    estimate : float
        A ratio (risk, hazard, odds; positive) or a standardized mean difference.
    conf_low, conf_high : float, optional
        The confidence interval, on the same scale.
    measure : {"risk_ratio", "hazard_ratio", "odds_ratio", "standardized_difference"}
    rare_outcome : bool, default False
        Whether the outcome is rare (under about 15 % by the end of follow-up), for
        hazard and odds ratios.

    Returns
    -------
    EValue

    Notes
    -----
    The E-value assumes nothing about the confounder's prevalence; it is the minimum of
    the two associations (confounder-treatment and confounder-outcome, each as a risk
    ratio) at which the confounder could move the estimate to the null. The conversions
    of hazard and odds ratios are approximations (see the module docstring).

    References
    ----------
    VanderWeele & Ding (2017); VanderWeele (2020).

    Examples
    --------
    Breastfeeding and infant death from respiratory infection (VanderWeele & Ding 2017):

    >>> result = e_value(3.9, 1.8, 8.7)
    >>> round(result.e_value, 2), round(result.e_value_ci, 2)
    (7.26, 3.0)
    """
    rr = _to_risk_ratio(estimate, measure, rare_outcome)
    limit = math.nan
    if conf_low is not None and conf_high is not None:
        if not conf_low <= conf_high:
            raise ValueError(f"conf_low {conf_low} is above conf_high {conf_high}")
        low = _to_risk_ratio(conf_low, measure, rare_outcome)
        high = _to_risk_ratio(conf_high, measure, rare_outcome)
        if low <= 1.0 <= high:
            limit = 1.0
        else:
            limit = low if rr > 1 else high
    return EValue(
        measure=measure,
        estimate=float(estimate),
        conf_low=math.nan if conf_low is None else float(conf_low),
        conf_high=math.nan if conf_high is None else float(conf_high),
        rare_outcome=bool(rare_outcome),
        risk_ratio=rr,
        risk_ratio_limit=limit,
        e_value=e_value_of_risk_ratio(rr),
        e_value_ci=math.nan if math.isnan(limit) else e_value_of_risk_ratio(limit),
        conversion=_CONVERSIONS[(measure, bool(rare_outcome))],
    )


# ----------------------------------------------------------------------------- tipping point
@dataclass(frozen=True)
class TippingPoint:
    """A grid of unmeasured binary confounders and what each would do to the estimate.

    Attributes
    ----------
    grid : DataFrame
        One row per (``prevalence_difference``, ``confounder_hazard_ratio``): the
        ``bias_log_hr`` ``delta * log(HR_U)``, the ``hazard_ratio_adjusted`` and its
        interval ``conf_low_adjusted``, ``conf_high_adjusted`` (the observed ones divided
        by ``exp(bias)``), and ``includes_null``.
    tipping_bias_log_hr : float
        The smallest bias (in absolute value, in the direction that moves the estimate
        to the null) at which the interval includes 1; 0 when it already does.
    tipping : DataFrame
        For each confounder hazard ratio, the prevalence difference at which the
        interval starts to include 1 (``nan`` when none in [-1, 1] does).
    hazard_ratio, conf_low, conf_high : float
        The observed estimate and interval.
    """

    grid: pd.DataFrame
    tipping_bias_log_hr: float
    tipping: pd.DataFrame
    hazard_ratio: float
    conf_low: float
    conf_high: float

    def summary(self) -> pd.DataFrame:
        return self.tipping


def tipping_point(
    hazard_ratio: float,
    conf_low: float,
    conf_high: float,
    *,
    prevalence_differences: Sequence[float] | None = None,
    confounder_hazard_ratios: Sequence[float] | None = None,
) -> TippingPoint:
    """How strong an unmeasured binary confounder would have to be to make the interval
    include 1.

    Parameters
    ----------
    hazard_ratio, conf_low, conf_high : float
        The observed hazard ratio (trial / external) and its confidence interval.
    prevalence_differences : sequence of float, optional
        ``P(U | trial) - P(U | external)``, in [-1, 1]; by default -0.5 to 0.5 by 0.1.
    confounder_hazard_ratios : sequence of float, optional
        Hazard ratios of ``U`` on the outcome; by default 1.25, 1.5, 2, 3, 4.

    Returns
    -------
    TippingPoint

    Notes
    -----
    The bias model is ``log HR_observed = log HR_true + delta * log(HR_U)``, first order
    in the prevalences (Lin, Psaty & Kronmal 1998); it assumes ``U`` acts on the hazard
    multiplicatively, independently of the measured covariates, and that the outcome is
    rare enough for the hazard ratio not to be diluted by the depletion of the risk sets.

    Examples
    --------
    >>> tp = tipping_point(0.6, 0.45, 0.8)
    >>> round(tp.tipping_bias_log_hr, 4)   # log(0.8)
    -0.2231
    """
    if not 0 < conf_low <= hazard_ratio <= conf_high:
        raise ValueError(
            f"need 0 < conf_low <= hazard_ratio <= conf_high, got {conf_low}, "
            f"{hazard_ratio}, {conf_high}"
        )
    deltas = np.round(np.arange(-0.5, 0.51, 0.1), 10) if prevalence_differences is None else (
        np.asarray(prevalence_differences, dtype=float)
    )
    default = [1.25, 1.5, 2.0, 3.0, 4.0]
    strengths = np.asarray(
        default if confounder_hazard_ratios is None else confounder_hazard_ratios, dtype=float
    )
    if np.any(np.abs(deltas) > 1):
        raise ValueError("prevalence differences must be in [-1, 1]")
    if np.any(strengths <= 0):
        raise ValueError("confounder hazard ratios must be positive")
    lo, hi = math.log(conf_low), math.log(conf_high)
    d, g = np.meshgrid(deltas, np.log(strengths), indexing="ij")
    bias = d * g
    grid = pd.DataFrame(
        {
            "prevalence_difference": d.ravel(),
            "confounder_hazard_ratio": np.exp(g.ravel()),
            "bias_log_hr": bias.ravel(),
            "hazard_ratio_adjusted": hazard_ratio / np.exp(bias.ravel()),
            "conf_low_adjusted": np.exp(lo - bias.ravel()),
            "conf_high_adjusted": np.exp(hi - bias.ravel()),
        }
    )
    grid["includes_null"] = (grid["conf_low_adjusted"] <= 1) & (grid["conf_high_adjusted"] >= 1)
    # interval [lo - b, hi - b] contains 0 iff lo <= b <= hi
    if lo <= 0 <= hi:
        tipping_bias = 0.0
    else:
        tipping_bias = hi if hi < 0 else lo
    rows = []
    for strength in strengths:
        gamma = math.log(strength)
        delta = tipping_bias / gamma if gamma != 0 else math.nan
        rows.append(
            {
                "confounder_hazard_ratio": float(strength),
                "prevalence_difference": delta if abs(delta) <= 1 else math.nan,
            }
        )
    return TippingPoint(
        grid=grid,
        tipping_bias_log_hr=float(tipping_bias),
        tipping=pd.DataFrame(rows),
        hazard_ratio=float(hazard_ratio),
        conf_low=float(conf_low),
        conf_high=float(conf_high),
    )
