"""Analysis of every simulated trial: each endpoint's test, each experimental arm
against control, vectorized over replicates.

Statistics are oriented so that a positive ``statistic`` favours the experimental arm
(lower hazard for time-to-event endpoints; the protocol's ``better`` direction for binary
and continuous ones). With ``sided: 1`` an arm is a success when its one-sided p-value is
at most its alpha; with ``sided: 2`` when its two-sided p-value is.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import stats

from analysis.ahr import average_hazard_ratio
from analysis.cox import cox_treatment
from analysis.logrank import logrank_test
from analysis.means import ancova, t_test
from analysis.multiplicity import dunnett_critical_value, holm_adjusted
from analysis.proportions import cmh_test, proportions_test
from analysis.rmst import rmst_difference
from analysis.weighted_logrank import maxcombo_test, weighted_logrank_test
from trials.engine import AnalysisData, Layout, stratum_codes
from trials.estimands import true_values
from trials.protocol import (
    EndpointAnalysis,
    Protocol,
    TimeToEventEndpoint,
)
from trials.validation import endpoint_analysis

CI_LEVEL = 0.95


@dataclass(frozen=True)
class Comparison:
    """One experimental arm against control, per replicate (arrays of shape ``(R,)``).

    ``estimate`` is on the scale of the estimand's summary measure: log hazard ratio,
    difference in proportions, log odds ratio or difference in means.
    """

    endpoint: str
    arm: str
    scale: str
    true_value: float
    estimate: np.ndarray
    se: np.ndarray
    ci_lower: np.ndarray
    ci_upper: np.ndarray
    statistic: np.ndarray
    p_value: np.ndarray
    reject: np.ndarray
    n_analysed: np.ndarray
    events: np.ndarray


def comparison_alpha(protocol: Protocol) -> float:
    """Alpha of each comparison (Bonferroni over arms; the full alpha otherwise, Holm
    and Dunnett adjusting the decisions afterwards)."""
    alpha = protocol.analysis.alpha
    n_comparisons = len(protocol.experimental_arms)
    if protocol.analysis.multiplicity == "bonferroni":
        return alpha / n_comparisons
    return alpha


def adjust_for_multiplicity(protocol: Protocol, comparisons: list[Comparison]) -> list[Comparison]:
    """Holm or Dunnett decisions across the arms of one endpoint (others unchanged)."""
    method = protocol.analysis.multiplicity
    if method not in ("holm", "dunnett") or len(comparisons) < 2:
        return comparisons
    alpha, sided = protocol.analysis.alpha, protocol.analysis.sided
    if method == "holm":
        adjusted = holm_adjusted(np.stack([c.p_value for c in comparisons]))
        rejects = np.nan_to_num(adjusted, nan=1.0) <= alpha
    else:
        control = protocol.control_arm.allocation
        ratios = [arm.allocation / control for arm in protocol.experimental_arms]
        critical = dunnett_critical_value(ratios, alpha, sided)
        stats_ = np.stack([c.statistic for c in comparisons])
        rejects = (np.abs(stats_) if sided == 2 else stats_) >= critical
    return [replace(c, reject=r) for c, r in zip(comparisons, rejects, strict=True)]


def analyse(
    layout: Layout,
    arm: np.ndarray,
    covariates: dict[str, np.ndarray],
    data: list[AnalysisData],
    null: bool,
) -> list[Comparison]:
    """Every comparison of every endpoint in one chunk of replicates."""
    protocol = layout.protocol
    control = next(i for i, a in enumerate(protocol.arms) if a.control)
    alpha = comparison_alpha(protocol)
    out = []
    for endpoint_data in data:
        endpoint = endpoint_data.endpoint
        spec = endpoint_analysis(protocol, endpoint)
        truth = true_values(protocol, endpoint, null)
        per_endpoint = []
        for k, experimental in enumerate(protocol.arms):
            if experimental.control:
                continue
            valid = endpoint_data.valid & ((arm == control) | (arm == k))
            group = arm == k
            per_endpoint.append(
                _compare(
                    layout,
                    endpoint_data,
                    spec,
                    covariates,
                    valid,
                    group,
                    alpha,
                    experimental.name,
                    truth[k],
                )
            )
        out.extend(adjust_for_multiplicity(protocol, per_endpoint))
    return out


def _compare(
    layout: Layout,
    data: AnalysisData,
    spec: EndpointAnalysis,
    covariates: dict[str, np.ndarray],
    valid: np.ndarray,
    group: np.ndarray,
    alpha: float,
    arm_name: str,
    truth: float,
) -> Comparison:
    endpoint = data.endpoint
    sided = layout.protocol.analysis.sided
    strata = stratum_codes(layout, covariates, spec.strata) if spec.strata else None
    n_analysed = valid.sum(axis=1)
    events = np.full(valid.shape[0], np.nan)
    df = None
    p_value = None
    if isinstance(endpoint, TimeToEventEndpoint):
        events = (data.event & valid).sum(axis=1).astype(float)
        if spec.test == "rmst":
            fit = rmst_difference(data.time, data.event, group, spec.tau, valid=valid)
            estimate, se = fit.difference, fit.se
            statistic = fit.z  # positive: longer restricted mean survival on experimental
            scale = "rmst_difference"
        elif spec.test == "average_hazard_ratio":
            fit = average_hazard_ratio(data.time, data.event, group, spec.tau, valid=valid)
            estimate, se, statistic = fit.log_ahr, fit.se_log_ahr, -fit.z
            scale = "log_hazard_ratio"
        elif spec.test == "cox":
            fit = cox_treatment(data.time, data.event, group, valid=valid, strata=strata)
            estimate, se, statistic = fit.log_hr, fit.se_log_hr, -fit.z
            scale = "log_hazard_ratio"
        else:
            # the log-rank (Pike) estimate of the log hazard ratio goes with every
            # log-rank-type test; the test statistic is the protocol's
            fit = logrank_test(
                data.time,
                data.event,
                group,
                valid=valid,
                strata=strata if spec.test == "stratified_logrank" else None,
            )
            estimate, se, statistic = fit.log_hr, fit.se_log_hr, -fit.z
            scale = "log_hazard_ratio"
            if spec.test == "weighted_logrank":
                weighted = weighted_logrank_test(
                    data.time, data.event, group, valid=valid,
                    rho=spec.rho or 0.0, gamma=spec.gamma or 0.0,
                )
                statistic = -weighted.z
            elif spec.test == "maxcombo":
                combo = maxcombo_test(
                    data.time, data.event, group, valid=valid,
                    alternative="less" if sided == 1 else "two-sided",
                    decide_at=alpha,
                )
                statistic, p_value = -combo.statistic, combo.p_value
    elif spec.test in ("difference_in_proportions", "cmh"):
        response = data.value.astype(bool)
        if spec.test == "cmh":
            fit = cmh_test(response, group, strata, valid=valid)
            estimate = np.log(fit.common_odds_ratio)
            se = np.full_like(estimate, np.nan)
            scale = "log_odds_ratio"
        else:
            fit = proportions_test(response, group, valid=valid)
            estimate, se = fit.difference, fit.se
            scale = "difference_in_proportions"
        statistic = fit.z if endpoint.better == "higher" else -fit.z
    else:
        y = data.value.astype(float)
        if spec.test == "ancova":
            design = _covariate_matrix(layout, covariates, spec.covariates)
            fit = ancova(y, group, design, valid=valid)
        else:
            fit = t_test(y, group, valid=valid)
        estimate, se, df = fit.difference, fit.se, fit.df
        statistic = fit.t if endpoint.better == "higher" else -fit.t
        scale = "difference_in_means"
    return comparison(
        endpoint.name, arm_name, scale, truth, estimate, se, statistic, n_analysed, events,
        sided=sided, alpha=alpha, df=df, p_value=p_value,
    )


def comparison(
    endpoint: str,
    arm: str,
    scale: str,
    truth: float,
    estimate,
    se,
    statistic,
    n_analysed: np.ndarray,
    events: np.ndarray,
    *,
    sided: int,
    alpha: float,
    df=None,
    p_value=None,
) -> Comparison:
    """A comparison from its estimate, SE and statistic (positive favouring the
    experimental arm): the one- or two-sided p-value (normal, or t with ``df``) unless
    given, the decision at ``alpha`` and the Wald interval at ``CI_LEVEL``."""
    if df is None:
        z_crit = stats.norm.ppf(0.5 + CI_LEVEL / 2)
    else:
        z_crit = stats.t.ppf(0.5 + CI_LEVEL / 2, df)
    with np.errstate(invalid="ignore"):
        if df is None:
            one_sided = stats.norm.sf(statistic)
        else:
            one_sided = stats.t.sf(statistic, df)
        if p_value is None:
            p_value = one_sided if sided == 1 else 2 * np.minimum(one_sided, 1 - one_sided)
        reject = p_value <= alpha
        ci_lower, ci_upper = estimate - z_crit * se, estimate + z_crit * se
    return Comparison(
        endpoint=endpoint,
        arm=arm,
        scale=scale,
        true_value=float(truth),
        estimate=np.asarray(estimate, float),
        se=np.asarray(se, float),
        ci_lower=np.asarray(ci_lower, float),
        ci_upper=np.asarray(ci_upper, float),
        statistic=np.asarray(statistic, float),
        p_value=np.asarray(p_value, float),
        reject=np.asarray(reject, bool),
        n_analysed=n_analysed,
        events=events,
    )


def _covariate_matrix(layout: Layout, covariates, names: list[str]) -> np.ndarray | None:
    """ANCOVA design columns: numeric covariates as they are, categorical ones as
    indicators of every level but the first."""
    if not names:
        return None
    model = layout.covariate_model  # the protocol's covariates or its generator's
    columns = []
    for name in names:
        values = covariates[name]
        if model.kind(name) == "categorical":
            columns += [(values == level).astype(float) for level in range(1, model.n_levels(name))]
        else:
            columns.append(values.astype(float))
    return np.stack(columns, axis=-1)
