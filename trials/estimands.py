"""The true value of each estimand under a scenario, against which simulated estimates
are judged (bias, coverage).

- Hazard ratio and odds ratio: the protocol's value, conditional on covariates. When
  covariates affect the outcome, an unadjusted analysis estimates a marginal ratio closer
  to 1 (non-collapsibility), and the reported bias includes that difference.
- Difference in means: the protocol's mean difference (marginal and conditional agree in
  a linear model).
- Hazard ratio under a piecewise (non-proportional) effect: no single value (NaN); bias
  and coverage are then not reported.
- Difference in restricted mean survival time at tau: marginal over the eligible
  population (covariates drawn as below, 20,000 patients), including cure fractions, by
  the trapezoidal rule on 2,001 points of [0, tau] (error below 1e-6 of tau).
- Difference in proportions: the marginal difference over the eligible population,
  including the intercurrent events of a composite strategy. It is an average over
  covariates drawn from the population model (200,000 screened patients, fixed seed);
  the response probabilities themselves are exact.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, logit

from generators.population import covariate_model
from trials.protocol import BinaryEndpoint, Endpoint, Protocol

N_POPULATION = 200_000


def true_values(protocol: Protocol, endpoint: Endpoint, null: bool) -> np.ndarray:
    """Per arm (control 0), on the scale of the estimate: log HR, log OR, differences."""
    from trials.engine import arm_effects

    effect = arm_effects(protocol, endpoint, null)
    if (
        isinstance(endpoint, BinaryEndpoint)
        and endpoint.estimand.summary_measure == "difference_in_proportions"
    ):
        return _difference_in_proportions(protocol, endpoint, effect, null)
    if endpoint.estimand.summary_measure == "rmst_difference":
        return _rmst_difference(protocol, endpoint, null)
    return effect


def _population(protocol: Protocol, n: int) -> dict[str, np.ndarray]:
    """Covariates of ``n`` screened patients who are eligible (fixed seed)."""
    from trials.expressions import parse_expression

    population = protocol.population
    model = covariate_model(population)
    rng = np.random.default_rng(20_261_123)
    covariates = model.transform(rng.standard_normal((n, model.n_latent)))
    eligible = np.ones(n, dtype=bool)
    for text in population.eligibility:
        expression = parse_expression(text, model.numeric_names(), model.categorical_levels())
        eligible &= expression.evaluate(covariates)
    return {name: values[eligible] for name, values in covariates.items()}


def _rmst_difference(protocol: Protocol, endpoint, null: bool) -> np.ndarray:
    from trials.engine import arm_effects, cure_fractions, piecewise_effects
    from trials.outcomes import arm_cumulative_hazard, linear_predictor
    from trials.validation import endpoint_analysis

    tau = endpoint_analysis(protocol, endpoint).tau
    if tau is None:
        return np.full(len(protocol.arms), np.nan)
    grid = np.linspace(0.0, tau, 2001)
    if endpoint.covariate_effects:
        covariates = _population(protocol, 20_000)
        model = covariate_model(protocol.population)
        n = len(next(iter(covariates.values())))
        risk = np.exp(linear_predictor(endpoint.covariate_effects, covariates, model, (n,)))
    else:
        risk = np.ones(1)
    cured = cure_fractions(protocol, endpoint, null)
    if endpoint.effect.piecewise_hazard_ratio is not None and not null:
        pieces = piecewise_effects(protocol, endpoint)
    else:
        hr = np.exp(arm_effects(protocol, endpoint, null))
        pieces = [None if arm.control else _Constant(hr[k]) for k, arm in enumerate(protocol.arms)]
    rmst = []
    for k, piece in enumerate(pieces):
        breaks, ratios = ((), (1.0,)) if piece is None else (piece.breaks, piece.hazard_ratios)
        hazard = arm_cumulative_hazard(endpoint.control, grid, breaks, ratios)
        survival = np.exp(-np.outer(risk, hazard)).mean(axis=0)
        survival = cured[k] + (1 - cured[k]) * survival
        rmst.append(np.trapezoid(survival, grid))
    control = next(i for i, arm in enumerate(protocol.arms) if arm.control)
    return np.array(rmst) - rmst[control]


class _Constant:
    """A proportional hazard ratio in the shape of a piecewise one."""

    def __init__(self, ratio: float):
        self.breaks, self.hazard_ratios = (), (float(ratio),)


def _difference_in_proportions(
    protocol: Protocol, endpoint: BinaryEndpoint, effect: np.ndarray, null: bool
) -> np.ndarray:
    from trials.engine import ice_hazards
    from trials.outcomes import linear_predictor

    covariates = _population(protocol, N_POPULATION)
    n_eligible = len(next(iter(covariates.values()))) if covariates else 1
    model = covariate_model(protocol.population)
    linear = linear_predictor(endpoint.covariate_effects, covariates, model, (n_eligible,))
    probabilities = []
    for k in range(len(protocol.arms)):
        if endpoint.effect.odds_ratio is not None:
            p = expit(logit(endpoint.control.rate) + linear + effect[k])
        else:
            p = np.full(linear.shape, endpoint.control.rate + effect[k])
        for ice in endpoint.estimand.intercurrent_events:
            if ice.strategy != "composite" or ice.annual_rate is None:
                continue
            free = np.exp(
                -ice_hazards(protocol, ice.annual_rate, null)[k] * endpoint.assessment_month
            )
            p = p * free if endpoint.better == "higher" else 1 - (1 - p) * free
        probabilities.append(p.mean())
    control = next(i for i, arm in enumerate(protocol.arms) if arm.control)
    return np.array(probabilities) - probabilities[control]
