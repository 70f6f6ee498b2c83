"""The generated control test: a trial's treated arm against control arms from several
generator fits (analysis.synthetic_control.generated_control_test).

Independent references: when every "generated" arm is the historical patients themselves
the test is the log-rank test of treated against historical patients (lifelines); under the
null, with a parametric generator fitted to the historical patients (with and without a
fit-to-fit noise like a neural network's), the test rejects at the nominal 5 % within 4
Monte Carlo SEs, while the plain log-rank test against one generated arm rejects at the
closed-form rate of a perfect generator, 2 (1 - Phi(1.96 / sqrt(1 + n_t n_c / (n_h (n_t +
n_c))))), and far above it with fit-to-fit noise.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import ndtr, ndtri

from analysis.logrank import logrank_test
from analysis.synthetic_control import generated_control_test
from trials.exceptions import DataError


def arm(rng: np.random.Generator, n: int, rate: float, follow_up: float = 3.0):
    """Exponential event times with uniform censoring on (0, follow_up)."""
    event_time = rng.exponential(1.0 / rate, n)
    censor = rng.uniform(0.0, follow_up, n)
    return np.minimum(event_time, censor), event_time <= censor


def test_arms_equal_to_the_historical_patients_give_the_logrank_test_against_them():
    from lifelines.statistics import logrank_test as lifelines_logrank

    rng = np.random.default_rng(3)
    treated, historical = arm(rng, 80, 0.4), arm(rng, 200, 0.6)
    result = generated_control_test(treated, historical, [historical] * 3)
    reference = lifelines_logrank(treated[0], historical[0], treated[1], historical[1])
    assert result.between_variance == 0.0
    assert math.isinf(result.df)
    assert result.z**2 == pytest.approx(reference.test_statistic, rel=1e-10)
    assert result.p_value == pytest.approx(reference.p_value, rel=1e-8)
    assert result.z < 0  # the treated arm's hazard is lower
    assert result.naive_z == pytest.approx(result.z, rel=1e-12)


def test_variance_adds_the_between_arm_variance_over_the_number_of_arms():
    rng = np.random.default_rng(4)
    treated, historical = arm(rng, 100, 0.5), arm(rng, 300, 0.5)
    arms = [arm(rng, 100, 0.5 * math.exp(0.2 * rng.standard_normal())) for _ in range(4)]
    result = generated_control_test(treated, historical, arms)

    def one(control):
        time = np.concatenate([treated[0], control[0]])
        event = np.concatenate([treated[1], control[1]])
        return logrank_test(time, event, np.arange(time.size) < treated[0].size)

    thetas = np.array([float(one(a).log_hr) for a in arms])
    v_h = 1.0 / float(one(historical).variance)
    b = thetas.var(ddof=1)
    assert result.log_hr == pytest.approx(thetas.mean(), rel=1e-12)
    assert result.se**2 == pytest.approx(v_h + b / 4, rel=1e-12)
    assert result.df == pytest.approx(3 * (1 + v_h / (b / 4)) ** 2, rel=1e-12)
    assert result.naive_z == pytest.approx(float(one(arms[0]).z), rel=1e-12)


def perfect_generator_type1(n_t: int, n_c: int, n_h: int, alpha: float = 0.05) -> float:
    factor = 1 + n_t * n_c / (n_h * (n_t + n_c))
    return float(2 * (1 - ndtr(ndtri(1 - alpha / 2) / math.sqrt(factor))))


@pytest.mark.parametrize("fit_noise", [0.0, 0.2])
def test_rejects_a_true_null_at_the_nominal_rate(fit_noise):
    """The generator: the exponential rate fitted to the historical patients by maximum
    likelihood, times exp(fit_noise * N(0, 1)) for each fit (a stand-in for a network's
    seed-to-seed spread); 5 fits per trial, 100 treated, 300 historical, 100 per arm."""
    replicates, members, alpha = 2000, 5, 0.05
    ensemble = naive = 0
    for child in np.random.SeedSequence(20261123).spawn(replicates):
        rng = np.random.default_rng(child)
        treated, historical = arm(rng, 100, 0.5), arm(rng, 300, 0.5)
        rate = historical[1].sum() / historical[0].sum()
        arms = [
            arm(rng, 100, rate * math.exp(fit_noise * rng.standard_normal()))
            for _ in range(members)
        ]
        result = generated_control_test(treated, historical, arms)
        ensemble += result.p_value < alpha
        naive += abs(result.naive_z) > ndtri(1 - alpha / 2)
    mc_se = math.sqrt(alpha * (1 - alpha) / replicates)
    assert abs(ensemble / replicates - alpha) < 4 * mc_se
    perfect = perfect_generator_type1(100, 100, 300)
    if fit_noise == 0.0:
        se = math.sqrt(perfect * (1 - perfect) / replicates)
        assert abs(naive / replicates - perfect) < 4 * se
    else:
        assert naive / replicates > perfect + 0.05


def test_fewer_than_two_arms_or_no_events_are_refused():
    rng = np.random.default_rng(5)
    treated, historical = arm(rng, 50, 0.5), arm(rng, 100, 0.5)
    with pytest.raises(DataError, match="at least 2 generated arms"):
        generated_control_test(treated, historical, [historical])
    silent = (np.ones(100), np.zeros(100, dtype=bool))
    no_events = (np.ones(50), np.zeros(50, dtype=bool))
    with pytest.raises(DataError, match="no event"):
        generated_control_test(no_events, silent, [silent, silent])
