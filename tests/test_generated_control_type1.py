"""The core of bench/bench_type1_generated_control.py: one trial whose control arm comes
from a source (real historical patients or a fitted generator), tested by log-rank.

Independent reference properties: with the control arm drawn from disjoint real patients of
the same population, the rejection rate is the nominal alpha (within 4 Monte Carlo SEs);
the log-rank z agrees with lifelines' implementation; the reverse Kaplan-Meier censoring
reproduces the censoring distribution when every patient is censored; a replicate is a
function of its seed.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from tests.conftest import load_bench


@pytest.fixture(scope="module")
def bench():
    return load_bench("bench_type1_generated_control")


@pytest.fixture(scope="module")
def data(bench):
    return bench.load_data()


def test_data_is_one_untreated_population(bench, data):
    assert len(data) == 440
    assert "horTh" not in data.columns
    assert set(data[bench.EVENT].unique()) == {0, 1}


def test_real_control_arm_keeps_the_nominal_type1_error(bench, data):
    """Disjoint real patients on both arms: the rejection rate is alpha up to MC error."""
    source = bench.sources()["real_subsample"]
    n_rep = 800
    results = [bench.replicate(data, source, (11, r)) for r in range(n_rep)]
    rate = np.mean([r["reject"] for r in results])
    se = math.sqrt(bench.ALPHA * (1 - bench.ALPHA) / n_rep)
    assert abs(rate - bench.ALPHA) <= 4 * se, rate
    z = np.array([r["z"] for r in results])
    assert abs(z.mean()) < 4 / math.sqrt(n_rep)
    assert 0.85 < z.std(ddof=1) < 1.15
    summary = bench.summarize(results)
    assert summary["replicates"] == n_rep
    assert summary["rejections"] == int(round(rate * n_rep))
    low, high = summary["ci95_wilson"]
    assert low < rate < high


def test_logrank_z_matches_lifelines(bench, data):
    from lifelines.statistics import logrank_test
    from scipy.stats import norm

    rng = np.random.default_rng(3)
    historical, pool = bench.split(data, bench.N_HISTORICAL, rng)
    treated = pool.iloc[:100]
    control = bench.control_arm(bench.sources()["real_subsample"], historical, 100, rng)
    t_arm = (treated[bench.TIME].to_numpy(float), treated[bench.EVENT].to_numpy() == 1)
    z = bench.logrank_z(t_arm, control)
    reference = logrank_test(t_arm[0], control[0], t_arm[1], control[1])
    assert z**2 == pytest.approx(reference.test_statistic, rel=1e-9)
    assert 2 * norm.sf(abs(z)) == pytest.approx(reference.p_value, rel=1e-9)


def test_split_is_disjoint_and_complete(bench, data):
    historical, pool = bench.split(data, bench.N_HISTORICAL, np.random.default_rng(0))
    assert len(historical) == bench.N_HISTORICAL
    assert len(pool) == len(data) - bench.N_HISTORICAL
    assert not set(historical.index) & set(pool.index)


def test_reverse_km_censoring_reproduces_all_censored_times(bench):
    times = np.arange(1.0, 201.0)
    historical = pd.DataFrame({bench.TIME: times, bench.EVENT: np.zeros(200, dtype=int)})
    draws = bench.censoring_times(historical, 20000, np.random.default_rng(1))
    assert set(np.unique(draws)) <= set(times)
    assert draws.mean() == pytest.approx(times.mean(), rel=0.02)
    # with events, no draw goes beyond the longest follow-up
    historical[bench.EVENT] = (times % 3 == 0).astype(int)
    draws = bench.censoring_times(historical, 5000, np.random.default_rng(2))
    assert draws.max() <= times.max()


def test_copula_replicate_is_deterministic_for_a_seed(bench, data):
    source = bench.sources()["copula"]
    first = [bench.replicate(data, source, (5, r)) for r in range(3)]
    again = [bench.replicate(data, source, (5, r)) for r in range(3)]
    for a, b in zip(first, again, strict=True):
        assert a["z"] == b["z"]
        assert a["reject"] == b["reject"]
        assert a["fit_seconds"] > 0
    assert len({r["z"] for r in first}) == 3  # the replicates differ from each other
    other = bench.replicate(data, source, (6, 0))
    assert other["z"] != first[0]["z"]


def test_fit_once_reuses_the_given_fit(bench, data):
    source = bench.sources()["copula"]
    fixed = bench.split(data, bench.N_HISTORICAL, np.random.default_rng(9))
    model, info = bench.fit(source, fixed[0], seed=0)
    assert info["fit_seconds"] > 0
    runs = [bench.replicate(data, source, (1, r), fixed=fixed, model=model) for r in range(2)]
    assert all("fit_seconds" not in r for r in runs)  # no refit
    assert runs[0]["z"] == bench.replicate(data, source, (1, 0), fixed=fixed, model=model)["z"]
    assert runs[0]["z"] != runs[1]["z"]


def test_predicted_inflation_of_a_perfect_generator(bench):
    assert bench.predicted_type1(100, 100, 10**9, 0.05) == pytest.approx(0.05, abs=1e-6)
    assert bench.predicted_type1(100, 100, 300, 0.05) == pytest.approx(0.069, abs=0.001)


def test_ensemble_replicate_keeps_the_nominal_rate_and_is_deterministic(bench, data):
    """Bootstrap arms of bootstrap resamples of the historical patients (the perfect
    generator) analysed by the ensemble test: nominal rate within 4 MC SEs, and a
    replicate is a function of its seed; a copula replicate refits the generator once per
    arm."""
    source = bench.sources()["real_bootstrap"]
    n_rep = 600
    results = [bench.replicate_ensemble(data, source, (12, r), members=3) for r in range(n_rep)]
    rate = np.mean([r["reject"] for r in results])
    se = math.sqrt(bench.ALPHA * (1 - bench.ALPHA) / n_rep)
    assert abs(rate - bench.ALPHA) <= 4 * se, rate
    summary = bench.summarize(results)
    assert {"naive_type1_error", "naive_sd_z", "generator_share_mean"} <= set(summary)
    again = bench.replicate_ensemble(data, source, (12, 0), members=3)
    assert again == results[0]
    copula = bench.sources()["copula"]
    one = bench.replicate_ensemble(data, copula, (1, 0), members=2)
    assert one == {**bench.replicate_ensemble(data, copula, (1, 0), members=2),
                   "fit_seconds": one["fit_seconds"]}  # fmt: skip
    assert one["fit_seconds"] > 0
