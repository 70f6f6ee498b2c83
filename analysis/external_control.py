"""Outcome analysis of a single-arm trial against external controls.

The trial patients are compared with external patients made to resemble them by a
propensity-score adjustment (:mod:`analysis.propensity`):

* time to event: weighted Kaplan-Meier curves and a weighted Cox model of the trial
  indicator with the robust (sandwich) variance of Lin & Wei (1989), both from lifelines;
* binary or continuous outcome: the weighted difference in means (proportions) by weighted
  least squares with a heteroscedasticity-consistent (HC0) variance (statsmodels);
* a bootstrap confidence interval that resamples trial and external patients separately
  and re-estimates the propensity model and the weights in each resample, so that the
  interval carries the uncertainty of the estimated scores (the robust variance treats the
  weights as known, Austin 2016);
* the E-value and a tipping-point grid (:mod:`analysis.evalue`).

The stratified bootstrap is :func:`analysis.bootstrap.bootstrap`; a synthetic (generated)
control arm is compared with the trial in :mod:`analysis.synthetic_control`.

Assumptions: no unmeasured confounding given the covariates (what the E-value probes);
positivity (every trial patient has comparable external patients: checked); the same
outcome definition, assessment and time zero in both sources (the harmonisation's job);
proportional hazards for the Cox model; non-informative censoring.

References
----------
Lin, D. Y. and Wei, L. J. (1989). The robust inference for the Cox proportional hazards
model. *J. Am. Stat. Assoc.* 84, 1074-1078.
Austin, P. C. (2016). Variance estimation when using inverse probability of treatment
weighting (IPTW) with survival analysis. *Stat. Med.* 35, 5642-5655.
Xie, J. and Liu, C. (2005). Adjusted Kaplan-Meier estimator and log-rank test with inverse
probability of treatment weighting for survival data. *Stat. Med.* 24, 3089-3110.
Abadie, A. and Imbens, G. W. (2008). On the failure of the bootstrap for matching
estimators. *Econometrica* 76, 1537-1557.
Efron, B. and Tibshirani, R. J. (1993). *An Introduction to the Bootstrap*. Chapman & Hall
(percentile intervals, ch. 13).
FDA (2023). Considerations for the design and conduct of externally controlled trials for
drug and biological products (draft guidance).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from analysis.balance import Balance, balance_table, overlap_summary
from analysis.bootstrap import BootstrapResult, bootstrap
from analysis.evalue import EValue, TippingPoint, e_value, tipping_point
from analysis.propensity import (
    Method,
    PropensityWeights,
    check_overlap,
    estimate_weights,
    fit_propensity,
)
from trials.exceptions import DataError

__all__ = [
    "DifferenceResult",
    "ExternalControlAnalysis",
    "WeightedCoxResult",
    "WeightedKaplanMeier",
    "analyse_external_control",
    "weighted_cox",
    "weighted_difference",
    "weighted_kaplan_meier",
]

TRIAL = "trial"
EXTERNAL = "external"


def _z(level: float) -> float:
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    return float(stats.norm.ppf((1 + level) / 2))


# ----------------------------------------------------------------------------- Kaplan-Meier
@dataclass(frozen=True)
class WeightedKaplanMeier:
    """Weighted Kaplan-Meier curves of the trial and the (adjusted) external patients.

    Attributes
    ----------
    table : DataFrame
        ``source``, ``time``, ``survival`` (the product-limit estimate with weighted
        events and numbers at risk), ``at_risk`` (weighted) and ``events`` (weighted).
    medians : dict
        Median time by source (``inf`` when the curve stays above 0.5).

    Notes
    -----
    Confidence bands are not given: Greenwood's variance is not valid with estimated
    weights (Xie & Liu 2005); use the bootstrap.
    """

    table: pd.DataFrame
    medians: dict[str, float]

    def survival_at(self, time: float) -> dict[str, float]:
        """The survival of each source at ``time``."""
        out = {}
        for source, part in self.table.groupby("source", sort=False):
            before = part[part["time"] <= time]
            out[str(source)] = float(before["survival"].iloc[-1]) if len(before) else 1.0
        return out

    def summary(self) -> pd.DataFrame:
        return self.table


def weighted_kaplan_meier(
    time: np.ndarray, event: np.ndarray, treated: np.ndarray, weights: np.ndarray
) -> WeightedKaplanMeier:
    """Weighted Kaplan-Meier estimate of each source (lifelines ``KaplanMeierFitter``).

    Parameters
    ----------
    time, event : array
        Follow-up time and event indicator (1 event, 0 censored).
    treated : array of bool
        True for trial patients.
    weights : array
        Non-negative weights; patients of weight 0 are left out.

    Returns
    -------
    WeightedKaplanMeier

    References
    ----------
    Xie & Liu (2005), see the module docstring.
    """
    from lifelines import KaplanMeierFitter
    from lifelines.exceptions import StatisticalWarning

    time, event, treated, weights = _survival_inputs(time, event, treated, weights)
    frames, medians = [], {}
    for label, mask in ((TRIAL, treated), (EXTERNAL, ~treated)):
        keep = mask & (weights > 0)
        fitter = KaplanMeierFitter()
        with warnings.catch_warnings():
            # lifelines warns that its (Greenwood) variance is invalid with non-integer
            # weights; the variance is not used here
            warnings.filterwarnings("ignore", category=StatisticalWarning)
            fitter.fit(time[keep], event[keep], weights=weights[keep])
        table = fitter.event_table
        frames.append(
            pd.DataFrame(
                {
                    "source": label,
                    "time": fitter.survival_function_.index.to_numpy(dtype=float),
                    "survival": fitter.survival_function_.iloc[:, 0].to_numpy(dtype=float),
                    "at_risk": table["at_risk"].to_numpy(dtype=float),
                    "events": table["observed"].to_numpy(dtype=float),
                }
            )
        )
        medians[label] = float(fitter.median_survival_time_)
    return WeightedKaplanMeier(table=pd.concat(frames, ignore_index=True), medians=medians)


def _survival_inputs(time, event, treated, weights):
    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=float)
    treated = np.asarray(treated, dtype=bool)
    weights = np.asarray(weights, dtype=float)
    if not (time.shape == event.shape == treated.shape == weights.shape) or time.ndim != 1:
        raise ValueError("time, event, treated and weights must be 1-d arrays of one length")
    if not (np.isfinite(time).all() and (time > 0).all()):
        raise DataError("times must be positive and finite")
    if not np.isin(event, (0.0, 1.0)).all():
        raise DataError("events must be 0 (censored) or 1 (event)")
    if not (np.isfinite(weights).all() and (weights >= 0).all()):
        raise DataError("weights must be non-negative and finite")
    return time, event, treated, weights


# ----------------------------------------------------------------------------- Cox
@dataclass(frozen=True)
class WeightedCoxResult:
    """Weighted Cox model of the trial indicator (trial / external hazard ratio).

    Attributes
    ----------
    log_hr : float
        Weighted maximum partial likelihood estimate (Efron ties, lifelines).
    se_log_hr : float
        Robust (sandwich) standard error (Lin & Wei 1989), treating the weights as known.
    n_trial, n_external : int
        Patients with a positive weight.
    events_trial, events_external : int
        Their events (unweighted counts).
    """

    log_hr: float
    se_log_hr: float
    n_trial: int
    n_external: int
    events_trial: int
    events_external: int

    @property
    def hazard_ratio(self) -> float:
        return math.exp(self.log_hr)

    @property
    def z(self) -> float:
        return self.log_hr / self.se_log_hr

    @property
    def p_value(self) -> float:
        """Two-sided Wald p-value with the robust standard error."""
        return float(2 * stats.norm.sf(abs(self.z)))

    def conf_int(self, level: float = 0.95) -> tuple[float, float]:
        """Wald interval of the hazard ratio with the robust standard error."""
        half = _z(level) * self.se_log_hr
        return math.exp(self.log_hr - half), math.exp(self.log_hr + half)

    def summary(self, level: float = 0.95) -> pd.DataFrame:
        low, high = self.conf_int(level)
        return pd.DataFrame(
            {
                "hazard_ratio": [self.hazard_ratio],
                "log_hr": [self.log_hr],
                "se_log_hr": [self.se_log_hr],
                "conf_low": [low],
                "conf_high": [high],
                "p_value": [self.p_value],
                "n_trial": [self.n_trial],
                "n_external": [self.n_external],
                "events_trial": [self.events_trial],
                "events_external": [self.events_external],
            }
        )


def _cox_frame(time, event, treated, weights) -> pd.DataFrame:
    keep = weights > 0
    return pd.DataFrame(
        {
            "time": time[keep],
            "event": event[keep],
            "trial": treated[keep].astype(float),
            "weight": weights[keep],
        }
    )


def weighted_cox(
    time: np.ndarray, event: np.ndarray, treated: np.ndarray, weights: np.ndarray
) -> WeightedCoxResult:
    """Weighted Cox model ``h(t) = h0(t) exp(beta * trial)`` with the robust variance.

    lifelines ``CoxPHFitter().fit(..., weights_col=..., robust=True)``.

    Parameters
    ----------
    time, event : array
    treated : array of bool
    weights : array
        Non-negative; patients of weight 0 are left out.

    Returns
    -------
    WeightedCoxResult

    Raises
    ------
    DataError
        If a source has no event among the patients with a positive weight.

    References
    ----------
    Lin & Wei (1989), see the module docstring.
    """
    from lifelines import CoxPHFitter

    time, event, treated, weights = _survival_inputs(time, event, treated, weights)
    frame = _cox_frame(time, event, treated, weights)
    counts = _event_counts(frame)
    fitter = CoxPHFitter().fit(
        frame,
        duration_col="time",
        event_col="event",
        weights_col="weight",
        robust=True,
        fit_options={"precision": 1e-10},
    )
    return WeightedCoxResult(
        log_hr=float(fitter.params_["trial"]),
        se_log_hr=float(fitter.standard_errors_["trial"]),
        **counts,
    )


def _event_counts(frame: pd.DataFrame) -> dict[str, int]:
    trial = frame["trial"] == 1
    counts = {
        "n_trial": int(trial.sum()),
        "n_external": int((~trial).sum()),
        "events_trial": int(frame.loc[trial, "event"].sum()),
        "events_external": int(frame.loc[~trial, "event"].sum()),
    }
    for label in ("trial", "external"):
        if counts[f"events_{label}"] == 0:
            raise DataError(f"no event among the {label} patients: the hazard ratio is not defined")
    return counts


def _cox_log_hr(time, event, treated, weights, *, tol: float = 1e-10) -> float:
    """The weighted Cox point estimate for a binary covariate, by Newton-Raphson.

    The bootstrap needs hundreds of fits; this is the weighted partial likelihood with
    Efron's ties exactly as lifelines writes it (``CoxPHFitter``'s
    ``_get_efron_values_single``): at an event time with ``d`` tied events of total weight
    ``W``, the log-likelihood gains ``beta * (weighted trial events) - (W / d) * sum_l
    log(S - (l / d) D)``, ``S`` and ``D`` the weighted risk and tie sums of ``exp(beta x)``.
    The test suite checks it against lifelines.
    """
    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=float) == 1
    x = np.asarray(treated, dtype=bool)
    w = np.asarray(weights, dtype=float)
    keep = w > 0
    time, event, x, w = time[keep], event[keep], x[keep], w[keep]
    if not (event & x).any() or not (event & ~x).any():
        raise DataError("no event among the trial or the external patients")
    order = np.argsort(time, kind="stable")
    time, event, x, w = time[order], event[order], x[order], w[order]
    times = np.unique(time[event])
    start = np.searchsorted(time, times, side="left")
    # risk sums from the end: patients with time >= t
    tail_1 = np.concatenate([np.cumsum((w * x)[::-1])[::-1], [0.0]])
    tail_0 = np.concatenate([np.cumsum((w * ~x)[::-1])[::-1], [0.0]])
    risk_1, risk_0 = tail_1[start], tail_0[start]
    slot = np.searchsorted(times, time[event])
    tie_1 = np.bincount(slot, weights=(w * x)[event], minlength=times.size)
    tie_0 = np.bincount(slot, weights=(w * ~x)[event], minlength=times.size)
    ties = np.bincount(slot, minlength=times.size)
    which = np.repeat(np.arange(times.size), ties)
    share = np.arange(which.size) - np.repeat(np.cumsum(ties) - ties, ties)
    share = share / ties[which]
    mean_weight = ((tie_1 + tie_0) / ties)[which]
    a = risk_1[which] - share * tie_1[which]
    b = risk_0[which] - share * tie_0[which]
    trial_events = tie_1.sum()
    beta = 0.0
    for _ in range(100):
        u = a * math.exp(beta)
        den = u + b
        gradient = trial_events - np.sum(mean_weight * u / den)
        hessian = -np.sum(mean_weight * u * b / den**2)
        step = -gradient / hessian
        step = max(min(step, 5.0), -5.0)
        beta += step
        if abs(step) < tol:
            return beta
    raise DataError("the Cox model did not converge")


# ----------------------------------------------------------------------------- difference
@dataclass(frozen=True)
class DifferenceResult:
    """Weighted difference in means (proportions for a 0/1 outcome), trial - external.

    Attributes
    ----------
    estimate : float
    se : float
        HC0 sandwich standard error of weighted least squares (weights treated as known).
    mean_trial, mean_external : float
        Weighted means.
    se_mean_trial, se_mean_external : float
        Their HC0 standard errors.
    binary : bool
        Whether the outcome is 0/1 (then the means are proportions).
    """

    estimate: float
    se: float
    mean_trial: float
    mean_external: float
    se_mean_trial: float
    se_mean_external: float
    binary: bool

    def conf_int(self, level: float = 0.95) -> tuple[float, float]:
        q = _z(level)
        return self.estimate - q * self.se, self.estimate + q * self.se

    @property
    def p_value(self) -> float:
        return float(2 * stats.norm.sf(abs(self.estimate / self.se)))

    def risk_ratio(self, level: float = 0.95) -> tuple[float, float, float]:
        """Risk ratio and its delta-method interval on the log scale (0/1 outcome)."""
        rr = self.mean_trial / self.mean_external
        se_log = math.sqrt(
            (self.se_mean_trial / self.mean_trial) ** 2
            + (self.se_mean_external / self.mean_external) ** 2
        )
        q = _z(level)
        return rr, rr * math.exp(-q * se_log), rr * math.exp(q * se_log)

    def summary(self, level: float = 0.95) -> pd.DataFrame:
        low, high = self.conf_int(level)
        return pd.DataFrame(
            {
                "estimate": [self.estimate],
                "se": [self.se],
                "conf_low": [low],
                "conf_high": [high],
                "p_value": [self.p_value],
                "mean_trial": [self.mean_trial],
                "mean_external": [self.mean_external],
            }
        )


def weighted_difference(
    outcome: np.ndarray, treated: np.ndarray, weights: np.ndarray
) -> DifferenceResult:
    """Weighted difference in means by WLS of the outcome on the trial indicator (statsmodels),
    with the HC0 sandwich variance.

    With a binary regressor the estimate is the difference of the weighted means, and the
    HC0 variance is ``sum_T w^2 (y - m_T)^2 / (sum_T w)^2 + sum_C w^2 (y - m_C)^2 /
    (sum_C w)^2``.

    Parameters
    ----------
    outcome : array
        Binary (0/1) or continuous outcome.
    treated : array of bool
        True for trial patients.
    weights : array
        Non-negative; patients of weight 0 are left out.

    Returns
    -------
    DifferenceResult
        Trial minus external; the weights are treated as known (use the bootstrap for
        estimated weights).

    References
    ----------
    White, H. (1980). A heteroskedasticity-consistent covariance matrix estimator and a
    direct test for heteroskedasticity. *Econometrica* 48, 817-838.
    """
    import statsmodels.api as sm

    y = np.asarray(outcome, dtype=float)
    treated = np.asarray(treated, dtype=bool)
    w = np.asarray(weights, dtype=float)
    keep = w > 0
    y, treated, w = y[keep], treated[keep], w[keep]
    if not np.isfinite(y).all():
        raise DataError("the outcome has missing or non-finite values")
    design = np.column_stack([np.ones(y.size), treated.astype(float)])
    fit = sm.WLS(y, design, weights=w).fit(cov_type="HC0")
    cov = np.asarray(fit.cov_params())
    se_external = math.sqrt(cov[0, 0])
    var_trial = cov[0, 0] + cov[1, 1] + 2 * cov[0, 1]
    return DifferenceResult(
        estimate=float(fit.params[1]),
        se=float(math.sqrt(cov[1, 1])),
        mean_trial=float(fit.params[0] + fit.params[1]),
        mean_external=float(fit.params[0]),
        se_mean_trial=float(math.sqrt(max(var_trial, 0.0))),
        se_mean_external=se_external,
        binary=bool(np.isin(y, (0.0, 1.0)).all()),
    )


# ----------------------------------------------------------------------------- the analysis
@dataclass(frozen=True)
class ExternalControlAnalysis:
    """A single-arm trial compared with adjusted external controls.

    Attributes
    ----------
    endpoint : {"time_to_event", "binary", "continuous"}
    weights : PropensityWeights
        The propensity model, the method and its weights.
    balance : Balance
    overlap : DataFrame
        :func:`analysis.balance.overlap_summary`.
    share_unsupported : float
        Share of trial patients outside the external patients' score range.
    effect : WeightedCoxResult or DifferenceResult
    naive : WeightedCoxResult or DifferenceResult
        The unadjusted comparison (all weights 1), for reference.
    kaplan_meier : WeightedKaplanMeier or None
    bootstrap : BootstrapResult or None
    e_value : EValue
    tipping : TippingPoint or None
    level : float
    notes : tuple of str
        What the reader must know, in words.
    """

    endpoint: str
    weights: PropensityWeights
    balance: Balance
    overlap: pd.DataFrame
    share_unsupported: float
    effect: WeightedCoxResult | DifferenceResult
    naive: WeightedCoxResult | DifferenceResult
    kaplan_meier: WeightedKaplanMeier | None
    bootstrap: BootstrapResult | None
    e_value: EValue
    tipping: TippingPoint | None
    level: float
    notes: tuple[str, ...] = field(default=())

    @property
    def estimate(self) -> float:
        """Hazard ratio (time to event) or difference (binary, continuous)."""
        if isinstance(self.effect, WeightedCoxResult):
            return self.effect.hazard_ratio
        return self.effect.estimate

    def conf_int(self, level: float | None = None) -> tuple[float, float]:
        """The robust Wald interval (hazard ratio scale for time to event)."""
        return self.effect.conf_int(self.level if level is None else level)

    def bootstrap_conf_int(self) -> tuple[float, float] | None:
        """The bootstrap percentile interval (hazard ratio scale for time to event)."""
        if self.bootstrap is None:
            return None
        low, high = self.bootstrap.conf_int()
        if self.endpoint == "time_to_event":
            return math.exp(low), math.exp(high)
        return low, high

    def summary(self) -> pd.DataFrame:
        """One row per comparison (naive, adjusted): estimate, interval(s), ESS."""
        rows = []
        for label, result in (("naive", self.naive), (self.weights.method, self.effect)):
            low, high = result.conf_int(self.level)
            rows.append(
                {
                    "analysis": label,
                    "estimate": result.hazard_ratio
                    if isinstance(result, WeightedCoxResult)
                    else result.estimate,
                    "conf_low": low,
                    "conf_high": high,
                    "p_value": result.p_value,
                }
            )
        boot = self.bootstrap_conf_int()
        frame = pd.DataFrame(rows).set_index("analysis")
        frame["bootstrap_low"] = [np.nan, np.nan if boot is None else boot[0]]
        frame["bootstrap_high"] = [np.nan, np.nan if boot is None else boot[1]]
        frame["ess_external"] = [float((~self.weights.treated).sum()), self.weights.ess_external]
        return frame


Endpoint = Literal["time_to_event", "binary", "continuous"]


def _adjust(
    data: pd.DataFrame,
    treatment: str,
    covariates: Sequence[str],
    method: Method,
    options: dict,
    max_unsupported: float,
    resample: bool = False,
) -> tuple[PropensityWeights, float]:
    model = fit_propensity(data, treatment, covariates, warn=not resample)
    if resample and not model.converged:
        raise DataError("the propensity model did not converge in this resample")
    share = check_overlap(model, max_unsupported=max_unsupported)
    return estimate_weights(model, method, **options), share


def _effect(endpoint: str, data: pd.DataFrame, columns: dict, treated, weights):
    if endpoint == "time_to_event":
        return weighted_cox(data[columns["time"]], data[columns["event"]], treated, weights)
    return weighted_difference(data[columns["outcome"]], treated, weights)


def analyse_external_control(
    data: pd.DataFrame,
    *,
    treatment: str,
    covariates: Sequence[str],
    endpoint: Endpoint = "time_to_event",
    time: str | None = None,
    event: str | None = None,
    outcome: str | None = None,
    method: Method = "iptw_att",
    k: int = 1,
    caliper: float | None = 0.2,
    replace: bool = False,
    max_unmatched: float = 0.1,
    max_unsupported: float = 0.1,
    min_effective_sample_size: float = 0.0,
    n_resamples: int = 200,
    rng: int | np.random.Generator | None = 0,
    level: float = 0.95,
    rare_outcome: bool = False,
    prevalence_differences: Sequence[float] | None = None,
    confounder_hazard_ratios: Sequence[float] | None = None,
) -> ExternalControlAnalysis:
    """Propensity adjustment, balance, outcome analysis, bootstrap and sensitivity.

    Parameters
    ----------
    data : DataFrame
        Trial and external patients, harmonised (same columns, units and categories).
    treatment : str
        Column: 1 for trial patients, 0 for external ones.
    covariates : sequence of str
        The propensity model's covariates.
    endpoint : {"time_to_event", "binary", "continuous"}
    time, event : str
        Time-to-event columns (time from the index date).
    outcome : str
        Binary or continuous outcome column.
    method : {"matching", "iptw_att", "overlap"}
    k, caliper, replace, max_unmatched
        Matching settings (:func:`analysis.propensity.estimate_weights`).
    max_unsupported : float, default 0.1
        Largest share of trial patients outside the external scores' range.
    min_effective_sample_size : float, default 0
        Smallest Kish effective sample size of the external weights.
    n_resamples : int, default 200
        Bootstrap resamples (0: no bootstrap).
    rng : int or Generator
        Seed of the bootstrap.
    level : float, default 0.95
    rare_outcome : bool, default False
        For the E-value's conversion of the hazard ratio.
    prevalence_differences, confounder_hazard_ratios : sequence of float, optional
        The tipping-point grid (:func:`analysis.evalue.tipping_point`).

    Returns
    -------
    ExternalControlAnalysis

    Raises
    ------
    DataError
        Bad or missing columns, non-overlapping scores, too many unmatched trial
        patients, an effective sample size below ``min_effective_sample_size``, no
        events.
    """
    if endpoint == "time_to_event":
        if time is None or event is None:
            raise ValueError("a time-to-event endpoint needs the time and event columns")
        columns = {"time": time, "event": event}
    elif endpoint in ("binary", "continuous"):
        if outcome is None:
            raise ValueError(f"a {endpoint} endpoint needs the outcome column")
        columns = {"outcome": outcome}
    else:
        raise ValueError(f"unknown endpoint {endpoint!r}")
    absent = [c for c in columns.values() if c not in data.columns]
    if absent:
        raise DataError(f"outcome columns not in the data: {', '.join(map(repr, absent))}")
    options = {"k": k, "caliper": caliper, "replace": replace, "max_unmatched": max_unmatched}
    weights, share = _adjust(data, treatment, covariates, method, options, max_unsupported)
    if weights.ess_external < min_effective_sample_size:
        raise DataError(
            f"the external patients' weights have an effective sample size of "
            f"{weights.ess_external:.1f}, below the minimum {min_effective_sample_size:g} "
            "(min_effective_sample_size): too few external patients resemble the trial's"
        )
    treated = weights.treated
    balance = balance_table(data, covariates, treated, weights.weights)
    effect = _effect(endpoint, data, columns, treated, weights.weights)
    naive = _effect(endpoint, data, columns, treated, np.ones(len(data)))
    km = None
    if endpoint == "time_to_event":
        km = weighted_kaplan_meier(
            data[time], data[event], treated, weights.weights
        )

    # Resamples are not held to the overlap thresholds (refusing some would bias the
    # bootstrap); only a complete separation makes a resample fail.
    relaxed = {**options, "max_unmatched": 1.0}

    def statistic(resample: pd.DataFrame, _rng: np.random.Generator) -> float:
        w, _ = _adjust(resample, treatment, covariates, method, relaxed, 1.0, resample=True)
        if endpoint == "time_to_event":
            return _cox_log_hr(
                resample[time].to_numpy(float),
                resample[event].to_numpy(float),
                w.treated,
                w.weights,
            )
        return weighted_difference(resample[outcome], w.treated, w.weights).estimate

    boot = None
    if n_resamples:
        boot = bootstrap(statistic, data, treated, n_resamples=n_resamples, rng=rng, level=level)
    low, high = effect.conf_int(level)
    notes = [
        f"Propensity adjustment: {method}; the estimand is the effect in the trial's "
        "population" + (" (the overlap population for overlap weights)" if method == "overlap"
                         else "") + ".",
        "The robust interval treats the weights as known; the bootstrap interval "
        "re-estimates the propensity model and the weights in each resample.",
    ]
    if method == "matching":
        notes.append(
            "The robust interval ignores the pairing of matched patients; the bootstrap of "
            "nearest-neighbour matching is not guaranteed to be valid (Abadie & Imbens 2008), "
            "least of all with replacement: read both intervals as approximate."
        )
    tipping = None
    if endpoint == "time_to_event":
        ev = e_value(effect.hazard_ratio, low, high, measure="hazard_ratio",
                     rare_outcome=rare_outcome)
        tipping = tipping_point(
            effect.hazard_ratio,
            low,
            high,
            prevalence_differences=prevalence_differences,
            confounder_hazard_ratios=confounder_hazard_ratios,
        )
    elif endpoint == "binary":
        rr, rr_low, rr_high = effect.risk_ratio(level)
        ev = e_value(rr, rr_low, rr_high, measure="risk_ratio")
    else:
        y = data[outcome].to_numpy(float)
        sd = math.sqrt((np.var(y[treated], ddof=1) + np.var(y[~treated], ddof=1)) / 2)
        ev = e_value(effect.estimate / sd, low / sd, high / sd, measure="standardized_difference")
    notes.append(f"E-value conversion: {ev.conversion}.")
    if boot is not None and boot.n_failed:
        notes.append(f"{boot.n_failed} of {boot.n_resamples} bootstrap resamples failed.")
    return ExternalControlAnalysis(
        endpoint=endpoint,
        weights=weights,
        balance=balance,
        overlap=overlap_summary(weights.model, weights.weights),
        share_unsupported=share,
        effect=effect,
        naive=naive,
        kaplan_meier=km,
        bootstrap=boot,
        e_value=ev,
        tipping=tipping,
        level=level,
        notes=tuple(notes),
    )
