"""Tests of analysis.weighted_logrank against lifelines, a plain loop and scipy.

References:

- ``lifelines.statistics.logrank_test(..., weightings="fleming-harrington", p=rho, q=gamma)``
  for the chi-squared ``z**2`` of each FH(rho, gamma) test, trial by trial.  lifelines weights
  each distinct time by the pooled Kaplan-Meier estimate *of the previous time*
  (``survival_function_[:-1]``, "left-continuous"), i.e. :math:`S(t-)` -- the same convention
  as ours, so the statistics agree to rounding;
- :func:`analysis.logrank.logrank_test` for FH(0, 0);
- ``plain_table`` / ``plain_scores`` below: a direct per-trial loop over the distinct event
  times, for the signed statistics, the stratified test and the MaxCombo covariance matrix;
- ``scipy.stats.multivariate_normal.cdf`` with that independently computed correlation (and a
  different random lattice) for the MaxCombo p-value, and a simulation under the null for its
  type I error.
"""

from __future__ import annotations

import numpy as np
import pytest
from lifelines.statistics import logrank_test as lifelines_logrank
from scipy import stats

from analysis.logrank import logrank_test
from analysis.weighted_logrank import (
    MaxComboResult,
    WeightedLogrankResult,
    maxcombo_test,
    weighted_logrank_test,
)

RTOL = 1e-8
FH_WEIGHTS = [(0, 0), (0, 1), (1, 0), (1, 1), (0.5, 2.0)]


def simulate(
    seed: int, n_rep: int = 5, n_pat: int = 120, ties: bool = False, n_strata: int = 0
) -> dict[str, np.ndarray]:
    """Two arms with a delayed treatment effect and censoring; invalid patients hold nan."""
    rng = np.random.default_rng(seed)
    group = rng.random((n_rep, n_pat)) < 0.5
    strata = rng.integers(0, max(n_strata, 1), size=(n_rep, n_pat))
    # Hazard 1 in both arms until t = 0.5, then 0.5 in the experimental arm.
    first = rng.exponential(1.0, size=(n_rep, n_pat)) * (1.0 + 0.3 * strata)
    late = 0.5 + rng.exponential(np.where(group, 2.0, 1.0))
    event_time = np.where(first < 0.5, first, late)
    censor_time = rng.uniform(0.5, 3.0, size=(n_rep, n_pat))
    time = np.minimum(event_time, censor_time)
    if ties:
        time = np.ceil(time * 5.0)  # fifths: many ties, events and censorings mixed
    event = event_time <= censor_time
    valid = rng.random((n_rep, n_pat)) < 0.85
    data = {"time": np.where(valid, time, np.nan), "event": event, "group": group, "valid": valid}
    if n_strata:
        data["strata"] = strata
    return data


def replicate(data: dict[str, np.ndarray], r: int) -> dict[str, np.ndarray]:
    """The valid patients of replicate ``r``, as 1-D arrays."""
    keep = data["valid"][r]
    return {k: v[r][keep] for k, v in data.items() if k != "valid"}


def plain_table(time: np.ndarray, event: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Rows (d, d1, n, n1, S(t-)) at each distinct event time, by a loop over event times."""
    rows = []
    surv = 1.0
    for t in np.unique(time[event]):
        at_risk = time >= t
        dead = (time == t) & event
        n, n1 = at_risk.sum(), (at_risk & group).sum()
        d, d1 = dead.sum(), (dead & group).sum()
        rows.append((d, d1, n, n1, surv))
        surv *= 1.0 - d / n
    return np.array(rows, dtype=float).reshape(-1, 5)


def plain_scores(
    one: dict[str, np.ndarray], weights: list[tuple[float, float]]
) -> tuple[np.ndarray, np.ndarray]:
    """U (K,) and its null covariance (K, K) of one trial, summed over its strata."""
    k = len(weights)
    score, cov = np.zeros(k), np.zeros((k, k))
    strata = one.get("strata", np.zeros(one["time"].size, dtype=int))
    for s in np.unique(strata):
        ins = strata == s
        for d, d1, n, n1, surv in plain_table(
            one["time"][ins], one["event"][ins], one["group"][ins]
        ):
            w = np.array([surv**rho * (1.0 - surv) ** gamma for rho, gamma in weights])
            v = d * (n1 / n) * (1.0 - n1 / n) * (n - d) / (n - 1) if n > 1 else 0.0
            score += w * (d1 - d * n1 / n)
            cov += np.outer(w, w) * v
    return score, cov


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize(("rho", "gamma"), FH_WEIGHTS)
def test_chi2_matches_lifelines(rho: float, gamma: float, ties: bool) -> None:
    data = simulate(11 + int(ties), ties=ties)
    res = weighted_logrank_test(**data, rho=rho, gamma=gamma)
    assert isinstance(res, WeightedLogrankResult)
    for r in range(data["time"].shape[0]):
        one = replicate(data, r)
        t, e, g = one["time"], one["event"], one["group"]
        ref = lifelines_logrank(
            t[g], t[~g], e[g], e[~g], weightings="fleming-harrington", p=rho, q=gamma
        )
        np.testing.assert_allclose(res.chi2[r], ref.test_statistic, rtol=RTOL)
        np.testing.assert_allclose(res.p_value[r], ref.p_value, rtol=1e-6)


@pytest.mark.parametrize("n_strata", [0, 3])
@pytest.mark.parametrize("ties", [False, True])
def test_signed_statistics_match_plain_loop(ties: bool, n_strata: int) -> None:
    data = simulate(21, ties=ties, n_strata=n_strata)
    for rho, gamma in FH_WEIGHTS:
        res = weighted_logrank_test(**data, rho=rho, gamma=gamma)
        for r in range(data["time"].shape[0]):
            score, cov = plain_scores(replicate(data, r), [(rho, gamma)])
            np.testing.assert_allclose(res.statistic[r], score[0], rtol=RTOL, atol=1e-12)
            np.testing.assert_allclose(res.variance[r], cov[0, 0], rtol=RTOL)
            np.testing.assert_allclose(res.z[r], score[0] / np.sqrt(cov[0, 0]), rtol=RTOL)


@pytest.mark.parametrize("n_strata", [0, 2])
@pytest.mark.parametrize("ties", [False, True])
def test_fh00_is_the_logrank_test(ties: bool, n_strata: int) -> None:
    data = simulate(31, n_rep=20, ties=ties, n_strata=n_strata)
    res = weighted_logrank_test(**data)
    ref = logrank_test(**data)
    np.testing.assert_allclose(res.statistic, ref.observed_minus_expected, rtol=1e-10)
    np.testing.assert_allclose(res.variance, ref.variance, rtol=1e-12)
    np.testing.assert_allclose(res.z, ref.z, rtol=1e-10)
    np.testing.assert_array_equal(res.events, ref.events)
    # The delayed benefit of the experimental arm makes z negative in most replicates.
    assert np.mean(res.z < 0) > 0.5


def test_one_trial_gives_scalars_and_summary() -> None:
    data = replicate(simulate(41, n_rep=1), 0)
    res = weighted_logrank_test(**data, rho=1, gamma=0)
    assert np.ndim(res.z) == 0
    both = weighted_logrank_test(**{k: np.stack([v, v]) for k, v in data.items()}, rho=1, gamma=0)
    np.testing.assert_allclose(both.z, [res.z, res.z], rtol=1e-14)
    table = both.summary()
    assert list(table.columns) == [
        "statistic",
        "variance",
        "events",
        "z",
        "chi2",
        "p_value",
        "rho",
        "gamma",
    ]
    assert table.index.name == "replicate"
    assert (table["rho"] == 1.0).all()


def test_no_weighted_information_gives_nan() -> None:
    # One event time: FH(0, 1) weighs it by 1 - S(t-) = 0.
    time = np.array([1.0, 2.0, 2.0, 3.0])
    event = np.array([False, True, False, False])
    group = np.array([True, True, False, False])
    res = weighted_logrank_test(time, event, group, rho=0, gamma=1)
    assert res.variance == 0.0
    assert np.isnan(res.z)
    assert np.isnan(res.p_value)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"rho": -1.0}, "rho must be finite and >= 0"),
        ({"gamma": np.nan}, "gamma must be finite and >= 0"),
    ],
)
def test_bad_exponents_are_named(kwargs: dict, match: str) -> None:
    data = simulate(1, n_rep=1)
    with pytest.raises(ValueError, match=match):
        weighted_logrank_test(**data, **kwargs)


def test_bad_input_shape_is_named() -> None:
    with pytest.raises(ValueError, match="group has shape"):
        weighted_logrank_test(np.ones(4), np.ones(4, dtype=bool), np.ones(3, dtype=bool))


# -- MaxCombo ------------------------------------------------------------------------------


@pytest.mark.parametrize("n_strata", [0, 2])
@pytest.mark.parametrize("ties", [False, True])
def test_maxcombo_covariance_matches_plain_loop(ties: bool, n_strata: int) -> None:
    data = simulate(51, ties=ties, n_strata=n_strata)
    weights = [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0.5)]
    res = maxcombo_test(**data, weights=weights, tolerance=1e-3)
    assert isinstance(res, MaxComboResult)
    assert res.z.shape == (5, 5)
    assert res.correlation.shape == (5, 5, 5)
    for r in range(data["time"].shape[0]):
        score, cov = plain_scores(replicate(data, r), weights)
        sd = np.sqrt(np.diag(cov))
        np.testing.assert_allclose(res.statistic_per_weight[r], score, rtol=RTOL, atol=1e-12)
        np.testing.assert_allclose(res.covariance[r], cov, rtol=RTOL)
        np.testing.assert_allclose(res.z[r], score / sd, rtol=RTOL)
        np.testing.assert_allclose(res.correlation[r], cov / np.outer(sd, sd), rtol=RTOL)
        assert res.statistic[r] == res.z[r].min()
    # Each column is the corresponding single weighted test.
    for k, (rho, gamma) in enumerate(weights):
        single = weighted_logrank_test(**data, rho=rho, gamma=gamma)
        np.testing.assert_allclose(res.z[:, k], single.z, rtol=1e-12)


def test_default_weights_are_linearly_dependent() -> None:
    # S + (1 - S) = 1: U of FH(0,0) is U of FH(1,0) plus U of FH(0,1), so the correlation
    # matrix of the four default weights has rank 3 (a singular normal, see maxcombo_test).
    data = simulate(52)
    res = maxcombo_test(**data, tolerance=1e-3)
    u = res.statistic_per_weight
    np.testing.assert_allclose(u[:, 0], u[:, 1] + u[:, 2], rtol=1e-10, atol=1e-12)
    assert np.all(np.linalg.matrix_rank(res.correlation, tol=1e-9) == 3)


def reference_p(z: np.ndarray, corr: np.ndarray, alternative: str) -> float:
    """P-value of the max-combo statistic from scipy's MVN cdf, at a tight setting."""
    k = z.size
    settings = {"allow_singular": True, "abseps": 1e-6, "releps": 0, "maxpts": 400_000}
    rng = np.random.default_rng(987)  # not the function's lattice randomization
    if alternative == "less":
        return 1.0 - stats.multivariate_normal.cdf(
            np.full(k, -z.min()), cov=corr, rng=rng, **settings
        )
    if alternative == "greater":
        return 1.0 - stats.multivariate_normal.cdf(
            np.full(k, z.max()), cov=corr, rng=rng, **settings
        )
    m = np.abs(z).max()
    return 1.0 - stats.multivariate_normal.cdf(
        np.full(k, m), lower_limit=np.full(k, -m), cov=corr, rng=rng, **settings
    )


@pytest.mark.parametrize("alternative", ["less", "greater", "two-sided"])
@pytest.mark.parametrize(
    ("weights", "max_points", "atol"),
    [
        # Non-singular correlation: the lattice rule reaches the 1e-5 tolerance on both sides.
        (((0, 0), (0, 1), (1, 1)), 50_000, 1e-4),
        # The default weights, singular: the integration stops at max_points.  At 400,000
        # points the standard error is about 5e-5 on each side (measured against a 1e8-draw
        # Monte Carlo), so 3e-4 is about 4 standard errors of the difference.
        (((0, 0), (0, 1), (1, 0), (1, 1)), 400_000, 3e-4),
        # Two weights: scipy's exact bivariate normal on both sides.
        (((0, 0), (0, 1)), 50_000, 1e-10),
    ],
)
def test_maxcombo_p_value_matches_scipy_with_plain_correlation(
    weights: tuple, max_points: int, atol: float, alternative: str
) -> None:
    data = simulate(61, n_rep=4)
    res = maxcombo_test(**data, weights=weights, alternative=alternative, max_points=max_points)
    for r in range(data["time"].shape[0]):
        score, cov = plain_scores(replicate(data, r), list(weights))
        sd = np.sqrt(np.diag(cov))
        z = score / sd
        expected = reference_p(z, cov / np.outer(sd, sd), alternative)
        np.testing.assert_allclose(res.p_value[r], expected, rtol=0, atol=atol)
        if alternative == "less":
            assert res.statistic[r] == pytest.approx(z.min(), rel=RTOL)
        elif alternative == "greater":
            assert res.statistic[r] == pytest.approx(z.max(), rel=RTOL)
        else:
            assert res.statistic[r] == pytest.approx(np.abs(z).max(), rel=RTOL)


def test_maxcombo_p_value_bounds_and_single_weight() -> None:
    data = simulate(71, n_rep=6)
    res = maxcombo_test(**data)
    single = stats.norm.cdf(res.statistic)  # one-sided p of the most extreme single test
    assert np.all(res.p_value >= single - 1e-15)
    assert np.all(res.p_value <= np.minimum(1.0, 4 * single) + 1e-15)
    one = maxcombo_test(**data, weights=[(0, 1)])
    np.testing.assert_allclose(one.p_value, stats.norm.cdf(one.z[:, 0]), rtol=1e-12)
    lr = logrank_test(**data)
    np.testing.assert_allclose(
        maxcombo_test(**data, weights=[(0, 0)], alternative="two-sided").p_value,
        lr.p_value,
        rtol=1e-10,
    )


def test_maxcombo_does_not_depend_on_chunking() -> None:
    data = simulate(81, n_rep=6)
    whole = maxcombo_test(**data)
    part = maxcombo_test(**{k: v[3:] for k, v in data.items()})
    np.testing.assert_array_equal(whole.p_value[3:], part.p_value)


def test_maxcombo_drops_weights_without_information() -> None:
    time = np.array([1.0, 2.0, 2.0, 3.0, 4.0])
    event = np.array([False, True, False, False, False])
    group = np.array([True, True, False, False, True])
    res = maxcombo_test(time, event, group)  # FH(0,1) and FH(1,1) weigh the one event by 0
    assert np.isnan(res.z[[1, 3]]).all()
    assert res.statistic == res.z[0]
    # FH(0,0) and FH(1,0) coincide (weight 1 at the first event time): correlation 1.
    assert res.p_value == pytest.approx(stats.norm.cdf(res.statistic), abs=1e-6)
    nothing = maxcombo_test(time, np.zeros(5, dtype=bool), group)
    assert np.isnan(nothing.statistic)
    assert np.isnan(nothing.p_value)


def test_maxcombo_summary() -> None:
    data = simulate(91, n_rep=3)
    table = maxcombo_test(**data).summary()
    assert list(table.columns) == [
        "z_fh(0,0)",
        "z_fh(0,1)",
        "z_fh(1,0)",
        "z_fh(1,1)",
        "statistic",
        "p_value",
        "events",
        "alternative",
    ]
    assert len(table) == 3


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"weights": []}, "at least one"),
        ({"weights": [(0, -1)]}, "gamma must be finite and >= 0"),
        ({"weights": [(0,)]}, "pair"),
        ({"alternative": "lower"}, "alternative must be"),
        ({"tolerance": 0.0}, "tolerance must be"),
        ({"max_points": 0}, "max_points must be"),
    ],
)
def test_maxcombo_bad_arguments_are_named(kwargs: dict, match: str) -> None:
    data = simulate(1, n_rep=1)
    with pytest.raises(ValueError, match=match):
        maxcombo_test(**data, **kwargs)


@pytest.mark.slow
def test_maxcombo_type_one_error_under_the_null() -> None:
    """One-sided MaxCombo at 0.025 on 4,000 null trials of 100 patients (about 40 s).

    Both arms exponential with hazard 1, uniform censoring on (0.5, 3): the rejection rate
    must be within 4 Monte Carlo standard errors of 0.025 (the test is asymptotic, so a small
    deviation at N = 100 is expected but must be small).
    """
    rng = np.random.default_rng(2020)
    n_rep, n_pat = 4000, 100
    group = np.arange(n_pat) % 2 == 0
    group = np.broadcast_to(group, (n_rep, n_pat))
    event_time = rng.exponential(1.0, size=(n_rep, n_pat))
    censor_time = rng.uniform(0.5, 3.0, size=(n_rep, n_pat))
    res = maxcombo_test(np.minimum(event_time, censor_time), event_time <= censor_time, group)
    rate = np.mean(res.p_value < 0.025)
    mcse = np.sqrt(0.025 * 0.975 / n_rep)
    assert abs(rate - 0.025) < 4 * mcse, (rate, mcse)


def test_maxcombo_decisions_at_a_level_equal_the_exact_ones():
    rng = np.random.default_rng(17)
    n_rep, n = 60, 120
    group = rng.random((n_rep, n)) < 0.5
    time = rng.exponential(np.where(group, 1.4, 1.0))
    censor = rng.uniform(0.5, 3.0, (n_rep, n))
    event = time <= censor
    time = np.minimum(time, censor)
    exact = maxcombo_test(time, event, group)
    fast = maxcombo_test(time, event, group, decide_at=0.025)
    np.testing.assert_array_equal(exact.p_value <= 0.025, fast.p_value <= 0.025)
    integrated = fast.p_exact
    np.testing.assert_allclose(fast.p_value[integrated], exact.p_value[integrated], rtol=1e-12)
    assert exact.p_exact.all()
    assert not integrated.all()
