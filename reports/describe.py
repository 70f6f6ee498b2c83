"""Plain-language descriptions of the parts of a protocol, for the report's text."""

from __future__ import annotations

from trials.protocol import (
    BinaryEndpoint,
    BlockRandomization,
    CalendarTiming,
    ContinuousEndpoint,
    EventsTiming,
    ExponentialControl,
    FollowUpTiming,
    MinimizationRandomization,
    PiecewiseExponentialControl,
    Protocol,
    SimpleRandomization,
    StratifiedBlockRandomization,
    TimeToEventEndpoint,
    WeibullControl,
    effect_distribution,
)

TESTS = {
    "logrank": "log-rank test",
    "stratified_logrank": "stratified log-rank test",
    "cox": "Cox proportional-hazards model (Wald test)",
    "weighted_logrank": "Fleming–Harrington weighted log-rank test",
    "maxcombo": "MaxCombo test (maximum of FH(0,0), FH(0,1), FH(1,0), FH(1,1))",
    "rmst": "difference in restricted mean survival time",
    "average_hazard_ratio": "average hazard ratio (Kalbfleisch–Prentice)",
    "difference_in_proportions": "difference in proportions (z-test)",
    "cmh": "Cochran–Mantel–Haenszel test",
    "t_test": "two-sample t-test",
    "ancova": "analysis of covariance (ANCOVA)",
}
MEASURES = {
    "hazard_ratio": "hazard ratio (experimental / control)",
    "rmst_difference": "difference in restricted mean survival time (months)",
    "difference_in_proportions": "difference in proportions (experimental − control)",
    "odds_ratio": "odds ratio (experimental / control)",
    "difference_in_means": "difference in means (experimental − control)",
}
STRATEGIES = {
    "treatment_policy": "treatment policy (outcome used as observed)",
    "hypothetical": "hypothetical (outcome after the event treated as missing / censored)",
    "composite": "composite (the event counts as a failure)",
    "while_on_treatment": "while on treatment (outcome up to the event)",
}
SCALES = {
    "log_hazard_ratio": "log hazard ratio",
    "log_odds_ratio": "log odds ratio",
    "difference_in_means": "difference in means",
    "difference_in_proportions": "difference in proportions",
    "rmst_difference": "RMST difference (months)",
}


def endpoints(protocol: Protocol) -> list:
    return [protocol.endpoints.primary, *protocol.endpoints.secondary]


def arm_label(protocol: Protocol, name: str) -> str:
    arm = next((a for a in protocol.arms if a.name == name), None)
    if arm is None:
        return "any arm (family-wise)" if name == "any" else name
    return f"{arm.label} ({arm.name})" if arm.label else arm.name


def allocation(protocol: Protocol) -> str:
    return (
        ":".join(f"{a.allocation:g}" for a in protocol.arms)
        + " ("
        + ", ".join(a.name for a in protocol.arms)
        + ")"
    )


def endpoint_type(endpoint) -> str:
    return {"time_to_event": "time to event", "binary": "binary", "continuous": "continuous"}[
        endpoint.type
    ]


def control(endpoint) -> str:
    """The control arm's outcome distribution."""
    if isinstance(endpoint, TimeToEventEndpoint):
        c = endpoint.control
        cure = f", cure fraction {c.cure_fraction:g}" if c.cure_fraction else ""
        if isinstance(c, ExponentialControl):
            what = f"median {c.median:g} months" if c.median else f"hazard {c.hazard:g}/month"
            return f"exponential, {what}{cure}"
        if isinstance(c, WeibullControl):
            what = f"scale {c.scale:g} months" if c.scale else f"median {c.median:g} months"
            return f"Weibull, shape {c.shape:g}, {what}{cure}"
        if isinstance(c, PiecewiseExponentialControl):
            pieces = ", ".join(f"{h:g}" for h in c.hazards)
            breaks = ", ".join(f"{b:g}" for b in c.breaks)
            return (
                f"piecewise exponential, monthly hazards {pieces} changing at months {breaks}{cure}"
            )
    if isinstance(endpoint, BinaryEndpoint):
        return (
            f"response rate {endpoint.control.rate:g} (assessed at month "
            f"{endpoint.assessment_month:g}; {endpoint.better} is better)"
        )
    if isinstance(endpoint, ContinuousEndpoint):
        return (
            f"normal, mean {endpoint.control.mean:g}, SD {endpoint.control.sd:g} (assessed "
            f"at month {endpoint.assessment_month:g}; {endpoint.better} is better)"
        )
    return "\u2013"


def _per_arm(value, fmt="{:g}") -> str:
    if isinstance(value, dict):
        return ", ".join(f"{arm} {fmt.format(v)}" for arm, v in value.items())
    return fmt.format(value)


def effect(endpoint) -> str:
    """The treatment effect assumed in the design scenario."""
    e = endpoint.effect
    if isinstance(endpoint, TimeToEventEndpoint):
        parts = []
        if e.hazard_ratio is not None:
            parts.append(f"hazard ratio {_per_arm(e.hazard_ratio)} (proportional hazards)")
        if e.piecewise_hazard_ratio is not None:
            pw = e.piecewise_hazard_ratio
            items = pw.items() if isinstance(pw, dict) else [(None, pw)]
            for arm, spec in items:
                text = ", ".join(f"{h:g}" for h in spec.hazard_ratios)
                breaks = ", ".join(f"{b:g}" for b in spec.breaks)
                parts.append(
                    f"{arm + ': ' if arm else ''}piecewise hazard ratio {text} "
                    f"changing at months {breaks}"
                )
        if e.log_hazard_ratio_distribution is not None:
            parts.append(effect_distribution_text(e.log_hazard_ratio_distribution))
        if e.cure_fraction is not None:
            parts.append(f"cure fraction {_per_arm(e.cure_fraction)}")
        return "; ".join(parts)
    spread = effect_distribution(endpoint)
    if spread is not None:
        return effect_distribution_text(spread)
    if isinstance(endpoint, BinaryEndpoint):
        if e.odds_ratio is not None:
            return f"odds ratio {_per_arm(e.odds_ratio)}"
        return f"risk difference {_per_arm(e.risk_difference)}"
    return f"mean difference {_per_arm(e.mean_difference)}"


def effect_distribution_text(d) -> str:
    """An effect drawn per trial from a distribution (an ``EffectDistribution``)."""
    scale = d.scale.replace("_", " ")  # log hazard ratio, log odds ratio, mean difference
    if d.model is not None:
        return f"{scale} drawn per trial from the posterior draws of {d.model}"
    return f"{scale} drawn per trial from N({d.mean:g}, {d.sd:g}²)"


def covariate_effects(endpoint) -> str:
    if not endpoint.covariate_effects:
        return "none"
    scale = {"time_to_event": "log HR", "binary": "log OR", "continuous": "mean shift"}[
        endpoint.type
    ]
    items = []
    for name, value in endpoint.covariate_effects.items():
        items.append(f"{name}: {_per_arm(value, '{:+g}')}")
    return f"{'; '.join(items)} ({scale})"


def covariate(c) -> str:
    if c.distribution == "normal":
        return f"normal, mean {c.mean:g}, SD {c.sd:g}"
    if c.distribution == "lognormal":
        return f"log-normal, meanlog {c.meanlog:g}, sdlog {c.sdlog:g}"
    if c.distribution == "binary":
        return f"binary, P(1) = {c.p:g}"
    return "categorical: " + ", ".join(f"{k} {v:g}" for k, v in c.categories.items())


def accrual(protocol: Protocol) -> str:
    a = protocol.population.accrual
    periods = []
    for p in a.periods:
        periods.append(
            f"{p.rate:g}/month" + (f" for {p.duration:g} months" if p.duration else " thereafter")
        )
    process = "Poisson arrivals" if a.process == "poisson" else "deterministic arrivals"
    return f"{'; '.join(periods)} ({process})"


def randomization(protocol: Protocol) -> str:
    r = protocol.randomization
    if isinstance(r, SimpleRandomization):
        return "simple randomization"
    if isinstance(r, StratifiedBlockRandomization):
        return (
            f"permuted blocks of size {', '.join(map(str, r.block_sizes))} within strata "
            f"{', '.join(r.strata)}"
        )
    if isinstance(r, BlockRandomization):
        return f"permuted blocks of size {', '.join(map(str, r.block_sizes))}"
    if isinstance(r, MinimizationRandomization):
        return f"Pocock–Simon minimization on {', '.join(r.factors)} (p_best {r.p_best:g})"
    return r.method


def dropout(protocol: Protocol) -> str:
    d = protocol.dropout

    def one(model) -> str:
        if model.piecewise:
            return "piecewise " + ", ".join(
                f"{p.annual_rate:g}/year" + (f" until month {p.until:g}" if p.until else "")
                for p in model.piecewise
            )
        return f"{(model.annual_rate or 0):g} per year"

    text = f"{one(d.all)} in every arm"
    if d.by_arm:
        text += "; " + ", ".join(f"{arm}: {one(m)}" for arm, m in d.by_arm.items())
    return text + " (proportion lost within 12 months, exponential)"


def timing(protocol: Protocol) -> str:
    t = protocol.analysis.timing
    if isinstance(t, EventsTiming):
        return f"when {t.target_events} primary-endpoint events have occurred"
    if isinstance(t, CalendarTiming):
        return f"{t.months:g} months after the first randomization"
    if isinstance(t, FollowUpTiming):
        return f"when every patient has been followed for {t.months:g} months"
    return t.type


def analysis(spec) -> str:
    text = TESTS.get(spec.test, spec.test)
    extra = []
    if spec.strata:
        extra.append(f"strata {', '.join(spec.strata)}")
    if spec.covariates:
        extra.append(f"covariates {', '.join(spec.covariates)}")
    if spec.rho is not None or spec.gamma is not None:
        extra.append(f"rho {spec.rho or 0:g}, gamma {spec.gamma or 0:g}")
    if spec.tau is not None:
        extra.append(f"tau {spec.tau:g} months")
    return text + (f" ({'; '.join(extra)})" if extra else "")


def group_sequential(protocol: Protocol) -> str | None:
    gs = protocol.analysis.group_sequential
    if gs is None:
        return None
    names = {
        "OF": "O'Brien–Fleming",
        "P": "Pocock",
        "asOF": "Lan–DeMets O'Brien–Fleming-type",
        "asP": "Lan–DeMets Pocock-type",
        "asKD": "Kim–DeMets power family",
        "asHSD": "Hwang–Shih–DeCani",
        "bsOF": "O'Brien–Fleming-type beta spending",
        "bsP": "Pocock-type beta spending",
        "bsKD": "Kim–DeMets beta spending",
        "bsHSD": "Hwang–Shih–DeCani beta spending",
    }
    fractions = ", ".join(f"{f:.3g}" for f in gs.information_fractions)
    text = f"{len(gs.information_fractions)} looks at information fractions {fractions}; "
    text += f"efficacy: {names.get(gs.efficacy, gs.efficacy) if gs.efficacy else 'none'}"
    if gs.efficacy_parameter is not None:
        text += f" (parameter {gs.efficacy_parameter:g})"
    if gs.futility:
        text += (
            f"; futility: {names.get(gs.futility, gs.futility)}"
            f"{' (binding)' if gs.binding else ' (non-binding)'} for power {1 - gs.beta:g}"
        )
    return text + "; boundaries recomputed in each trial at the information observed"
