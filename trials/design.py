"""Design quantities of a protocol without simulation.

For an event-driven two-arm time-to-event design: the boundaries of its group-sequential
plan on the z, p and hazard-ratio scales, cumulative alpha and beta spent, the inflation
factor, stopping probabilities per look and expected events under the null and under the
protocol's hazard ratio (Schoenfeld's drift ``sqrt(r) / (1 + r) |log HR| sqrt(D)``), and —
when the protocol is in the closed-form family (exponential control, proportional
hazards, no covariate effects, no cure, one dropout rate) — the calendar time of each look
and the expected duration (Lachin–Foulkes, as rpact). A fixed design is a single look.
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import pandas as pd

from analysis.boundaries import group_sequential_design
from analysis.survival_design import survival_power
from trials.accrual import accrual_knots
from trials.exceptions import DesignError
from trials.protocol import (
    DISTRIBUTION_KEYS,
    EventsTiming,
    ExponentialControl,
    Protocol,
    TimeToEventEndpoint,
    effect_distribution,
)


def design_summary(protocol: Protocol) -> dict:
    """Boundaries and operating characteristics of the protocol's design, analytically."""
    primary = protocol.endpoints.primary
    timing = protocol.analysis.timing
    if (
        isinstance(primary, TimeToEventEndpoint)
        and isinstance(timing, EventsTiming)
        and len(protocol.arms) == 2
        and protocol.analysis.group_sequential is None
        and (
            primary.effect.piecewise_hazard_ratio is not None
            or primary.effect.cure_fraction is not None
            or primary.control.cure_fraction > 0
        )
    ):
        return nph_summary(protocol)
    if (
        isinstance(primary, TimeToEventEndpoint)
        and isinstance(timing, EventsTiming)
        and len(protocol.arms) == 2
        and effect_distribution(primary) is not None
    ):
        return assurance_summary(protocol)
    if not (
        isinstance(primary, TimeToEventEndpoint)
        and isinstance(timing, EventsTiming)
        and len(protocol.arms) == 2
        and primary.effect.hazard_ratio is not None
        and not isinstance(primary.effect.hazard_ratio, dict)
    ):
        raise DesignError(
            "insilico design needs an event-driven two-arm time-to-event design with one "
            "proportional hazard ratio; simulate other designs with insilico simulate"
        )
    from trials.sequential import design_of, look_events

    gs = protocol.analysis.group_sequential
    alpha, sided = protocol.analysis.alpha, protocol.analysis.sided
    if gs is None:
        design = group_sequential_design([1.0], alpha=alpha, efficacy="asOF", sided=sided)
        events = np.array([timing.target_events])
    else:
        design = design_of(protocol)
        events = look_events(protocol)
    hazard_ratio = primary.effect.hazard_ratio
    ratio = protocol.experimental_arms[0].allocation / protocol.control_arm.allocation
    theta = math.sqrt(ratio) / (1 + ratio) * abs(math.log(hazard_ratio))
    drift = theta * math.sqrt(timing.target_events)
    under_null = design.stopping_probabilities(0.0)
    under_design = design.stopping_probabilities(drift)
    looks = pd.DataFrame(
        {
            "look": np.arange(1, len(events) + 1),
            "information_fraction": design.information_fractions,
            "events": events,
            "efficacy_z": design.efficacy,
            "efficacy_p": _p(design.efficacy),
            "efficacy_hazard_ratio": _hazard_ratio(design.efficacy, events, ratio),
            "futility_z": design.futility,
            "futility_p": _p(design.futility),
            "futility_hazard_ratio": _hazard_ratio(design.futility, events, ratio),
            "alpha_spent": design.alpha_spent,
            "beta_spent": design.beta_spent,
            "stop_efficacy_h0": under_null.efficacy,
            "stop_futility_h0": under_null.futility,
            "stop_efficacy_h1": under_design.efficacy,
            "stop_futility_h1": under_design.futility,
        }
    )
    timeline = _look_times(protocol, primary, events, hazard_ratio, ratio)
    out = {
        "protocol": {"id": protocol.id, "version": protocol.version},
        "alpha": alpha,
        "sided": sided,
        "hazard_ratio": hazard_ratio,
        "target_events": timing.target_events,
        "drift": drift,
        "inflation_factor": design.inflation_factor,
        "design_drift": design.drift,
        "power": under_design.rejection,
        "type_i_error": under_null.rejection,
        "expected_events_h0": float((events * _stop_share(under_null)).sum()),
        "expected_events_h1": float((events * _stop_share(under_design)).sum()),
        "looks": looks,
    }
    if timeline is not None:
        from trials.accrual import enrollment_time

        looks["time"] = timeline
        out["expected_duration_h0"] = float((timeline * _stop_share(under_null)).sum())
        out["expected_duration_h1"] = float((timeline * _stop_share(under_design)).sum())
        # patients randomized by each look (deterministic accrual at the expected rates)
        n_patients = protocol.population.n_patients
        grid = np.arange(1, n_patients + 1, dtype=float)
        entry = enrollment_time(protocol.population.accrual, grid)
        enrolled = np.searchsorted(entry, timeline, side="right").astype(float)
        looks["n_enrolled"] = enrolled
        out["expected_sample_size_h0"] = float((enrolled * _stop_share(under_null)).sum())
        out["expected_sample_size_h1"] = float((enrolled * _stop_share(under_design)).sum())
    return out


def _stop_share(probabilities) -> np.ndarray:
    """Probability that the trial ends at each look (stop there, or reach the last)."""
    stop = np.asarray(probabilities.efficacy) + np.asarray(probabilities.futility)
    stop = stop.copy()
    stop[-1] = 1.0 - stop[:-1].sum()
    return stop


def _p(z: np.ndarray) -> np.ndarray:
    from scipy import special

    return special.ndtr(-np.asarray(z, dtype=float))


def _hazard_ratio(z: np.ndarray, events: np.ndarray, ratio: float) -> np.ndarray:
    """The observed hazard ratio at which the log-rank z equals the boundary."""
    with np.errstate(over="ignore", invalid="ignore"):
        return np.exp(-np.asarray(z) * (1 + ratio) / np.sqrt(ratio * events))


def _look_times(protocol, primary, events, hazard_ratio, ratio) -> np.ndarray | None:
    dropout = protocol.dropout
    closed_form = (
        isinstance(primary.control, ExponentialControl)
        and not primary.covariate_effects
        and primary.control.cure_fraction == 0
        and primary.effect.cure_fraction is None
        and not dropout.by_arm
        and dropout.all.piecewise is None
        and not any(ice.annual_rate for ice in primary.estimand.intercurrent_events)
    )
    if not closed_form:
        return None
    starts, rates = accrual_knots(protocol.population.accrual)
    control = primary.control
    hazard = control.hazard if control.hazard is not None else math.log(2) / control.median
    plan = survival_power(
        float(events[-1]),
        hazard_ratio,
        accrual_time=[*starts.tolist()] if len(starts) > 1 else [0.0],
        accrual_intensity=rates.tolist(),
        n_patients=protocol.population.n_patients,
        control_hazard=hazard,
        dropout_rate=dropout.all.annual_rate or 0.0,
        dropout_time=12.0,
        alpha=protocol.analysis.alpha,
        allocation_ratio=ratio,
        sided=protocol.analysis.sided,
    )
    return np.array([plan.time_to_events(float(e)) for e in events])


def nph_summary(protocol: Protocol) -> dict:
    """Power of the primary (weighted) log-rank test under non-proportional hazards, from
    the asymptotic mean and variance of the statistic (:mod:`analysis.nph_design`)."""
    from analysis.nph_design import PiecewiseArm, time_of_events
    from trials.outcomes import control_hazard

    primary = protocol.endpoints.primary
    spec = protocol.analysis.primary
    dropout = protocol.dropout
    if (
        spec.test not in ("logrank", "weighted_logrank")
        or primary.covariate_effects
        or dropout.by_arm
        or dropout.all.piecewise is not None
        or not hasattr(primary.control, "hazards")
        and not isinstance(primary.control, ExponentialControl)
        or any(ice.annual_rate for ice in primary.estimand.intercurrent_events)
    ):
        raise DesignError(
            "the analytic power under non-proportional hazards needs an exponential or "
            "piecewise-exponential control, no covariate effects, one dropout rate and a "
            "log-rank or weighted log-rank test; simulate other designs"
        )
    control = control_hazard(primary.control)
    experimental_arm = protocol.experimental_arms[0]
    effect = primary.effect
    if effect.piecewise_hazard_ratio is not None:
        piece = effect.piecewise_hazard_ratio
        piece = piece[experimental_arm.name] if isinstance(piece, dict) else piece
        breaks, ratios = list(piece.breaks), list(piece.hazard_ratios)
    else:
        hr = effect.hazard_ratio
        breaks, ratios = [], [hr[experimental_arm.name] if isinstance(hr, dict) else hr]
    # the experimental hazard: control hazard times the ratio, on the union of the breaks
    starts = sorted({0.0, *control.starts.tolist(), *breaks})
    starts_arr = np.array(starts)
    base = control.hazards[np.searchsorted(control.starts, starts_arr, side="right") - 1]
    ratio = np.array(ratios)[
        np.searchsorted(np.array([0.0, *breaks]), starts_arr, side="right") - 1
    ]
    cure = effect.cure_fraction
    cure = cure[experimental_arm.name] if isinstance(cure, dict) else cure
    arms = (
        PiecewiseArm(
            tuple(control.starts.tolist()),
            tuple(control.hazards.tolist()),
            primary.control.cure_fraction,
        ),
        PiecewiseArm(
            tuple(starts),
            tuple((base * ratio).tolist()),
            primary.control.cure_fraction if cure is None else cure,
        ),
    )
    accrual_starts, rates = accrual_knots(protocol.population.accrual)
    from trials.outcomes import annual_rate_hazard

    design = time_of_events(
        protocol.analysis.timing.target_events,
        *arms,
        n_patients=protocol.population.n_patients,
        accrual_starts=accrual_starts.tolist(),
        accrual_rates=rates.tolist(),
        dropout_hazard=annual_rate_hazard(dropout.all.annual_rate or 0.0),
        allocation_ratio=experimental_arm.allocation / protocol.control_arm.allocation,
        rho=spec.rho or 0.0,
        gamma=spec.gamma or 0.0,
        alpha=protocol.analysis.alpha,
    )
    return {
        "protocol": {"id": protocol.id, "version": protocol.version},
        "method": "asymptotic mean and variance of the weighted log-rank statistic",
        "test": spec.test,
        "rho": design.rho,
        "gamma": design.gamma,
        "alpha": protocol.analysis.alpha,
        "target_events": protocol.analysis.timing.target_events,
        "analysis_time": design.analysis_time,
        "drift": design.drift,
        "power": design.power,
    }


def assurance_summary(protocol: Protocol) -> dict:
    """For an event-driven two-arm time-to-event design: assurance of the log-rank test
    when the log hazard ratio is uncertain (a normal distribution or a model's posterior
    draws), the conditional power at the median effect (and at the protocol's chosen
    hazard ratio), and the events for 80 % and 90 % assurance when they can be reached."""
    from analysis.assurance import (
        events_for_assurance,
        events_for_assurance_draws,
        logrank_assurance,
        logrank_assurance_draws,
    )
    from analysis.power import logrank_power

    spec = effect_distribution(protocol.endpoints.primary)
    ratio = protocol.experimental_arms[0].allocation / protocol.control_arm.allocation
    alpha = protocol.analysis.alpha
    events = protocol.analysis.timing.target_events
    out = {
        "protocol": {"id": protocol.id, "version": protocol.version},
        "method": "assurance of the log-rank test (O'Hagan, Stevens & Campbell 2005)",
        "target_events": events,
    }
    if spec.model is None:
        out |= {
            "log_hazard_ratio_mean": spec.mean,
            "log_hazard_ratio_sd": spec.sd,
            "assurance": logrank_assurance(events, spec.mean, spec.sd, alpha, ratio),
        }
        solve = partial(
            events_for_assurance,
            log_hr_mean=spec.mean,
            log_hr_sd=spec.sd,
            alpha=alpha,
            allocation_ratio=ratio,
        )
    else:
        from trials.engine import posterior_effect_draws

        draws = posterior_effect_draws(spec.model, spec.scale)
        out |= {
            "log_hazard_ratio_model": spec.model,
            "log_hazard_ratio_draws": int(draws.size),
            "log_hazard_ratio_mean": float(draws.mean()),
            "log_hazard_ratio_sd": float(draws.std(ddof=1)),
            "assurance": logrank_assurance_draws(events, draws, alpha, ratio),
        }
        solve = partial(
            events_for_assurance_draws, log_hr_draws=draws, alpha=alpha, allocation_ratio=ratio
        )
    out["conditional_power"] = [
        {
            "effect": label,
            "hazard_ratio": float(np.exp(log_hr)),
            "power": float(
                logrank_power(events, float(np.exp(log_hr)), alpha=alpha, allocation_ratio=ratio)
            ),
        }
        for label, log_hr in conditional_effects(protocol)
    ]
    for target in (0.8, 0.9):
        try:
            out[f"events_for_assurance_{int(target * 100)}"] = solve(target)
        except DesignError:
            out[f"events_for_assurance_{int(target * 100)}"] = None
    return out


def conditional_effects(protocol: Protocol) -> list[tuple[str, float]]:
    """``(label, effect on the model scale)`` of the conditional powers reported with an
    assurance: at the median of the primary endpoint's effect distribution, and at the
    protocol's chosen effect (``power_at_hazard_ratio``, ``power_at_odds_ratio`` or
    ``power_at_mean_difference``) when given."""
    spec = effect_distribution(protocol.endpoints.primary)
    if spec is None:
        return []
    if spec.model is None:
        out = [("median of the effect distribution", float(spec.mean))]
    else:
        from trials.engine import posterior_effect_draws

        draws = posterior_effect_draws(spec.model, spec.scale)
        out = [("posterior median", float(np.median(draws)))]
    if spec.power_at is not None:
        out.append((f"chosen {spec.fixed_key.replace('_', ' ')}", spec.power_at))
    return out


def conditional_effect(protocol: Protocol, value: float) -> dict:
    """A conditional effect on the model scale as the run summary reports it: on the
    natural scale under the protocol's fixed-effect key (``{"hazard_ratio": 0.7}``,
    ``{"odds_ratio": 1.8}``, ``{"mean_difference": -2.5}``)."""
    spec = effect_distribution(protocol.endpoints.primary)
    return {spec.fixed_key: spec.from_scale(value)}


def conditional_effect_text(row: dict) -> str:
    """How a conditional power of a run summary names its effect: ``HR 0.700``,
    ``OR 1.800`` or ``mean difference -2.5``."""
    if "hazard_ratio" in row:
        return f"HR {row['hazard_ratio']:.3f}"
    if "odds_ratio" in row:
        return f"OR {row['odds_ratio']:.3f}"
    if "mean_difference" in row:
        return f"mean difference {row['mean_difference']:.4g}"
    return "the fixed effect"


def with_fixed_effect(protocol: Protocol, value: float) -> Protocol:
    """The protocol with the primary endpoint's effect distribution replaced by one
    effect (``value`` on the model scale: log HR, log OR or mean difference), for a
    conditional power with the same random draws."""
    primary = protocol.endpoints.primary
    content = protocol.model_dump(mode="python", exclude_unset=True)
    effect = content["endpoints"]["primary"]["effect"]
    effect.pop(DISTRIBUTION_KEYS[primary.type])
    effect |= conditional_effect(protocol, value)
    return Protocol.model_validate(content)
