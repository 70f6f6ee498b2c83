"""The true value of each estimand under a scenario, against which simulated estimates
are judged (bias, coverage).

- Hazard ratio and odds ratio: the protocol's value, conditional on covariates. When
  covariates affect the outcome, an unadjusted analysis estimates a marginal ratio closer
  to 1 (non-collapsibility), and the reported bias includes that difference.
- Difference in means: the protocol's mean difference (marginal and conditional agree in
  a linear model).
- Difference in proportions: the marginal difference over the eligible population,
  including the intercurrent events of a composite strategy. It is an average over
  covariates drawn from the population model (200,000 screened patients, fixed seed);
  the response probabilities themselves are exact.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, logit

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
    return effect


def _difference_in_proportions(
    protocol: Protocol, endpoint: BinaryEndpoint, effect: np.ndarray, null: bool
) -> np.ndarray:
    from generators.parametric import ParametricCovariates
    from trials.engine import ice_hazards
    from trials.expressions import parse_expression
    from trials.outcomes import linear_predictor

    population = protocol.population
    model = ParametricCovariates(population.covariates, population.correlations)
    rng = np.random.default_rng(20_261_123)
    covariates = model.transform(rng.standard_normal((N_POPULATION, model.n_latent)))
    eligible = np.ones(N_POPULATION, dtype=bool)
    for text in population.eligibility:
        expression = parse_expression(text, model.numeric_names(), model.categorical_levels())
        eligible &= expression.evaluate(covariates)
    covariates = {name: values[eligible] for name, values in covariates.items()}
    specs = {c.name: c for c in population.covariates}
    linear = linear_predictor(endpoint.covariate_effects, covariates, specs, (int(eligible.sum()),))
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
