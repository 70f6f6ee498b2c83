"""Operating-characteristics summaries against established implementations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.proportion import proportion_confint

from analysis.operating import (
    OperatingCharacteristics,
    clopper_pearson,
    estimator_performance,
    rejection_rate,
)


@pytest.mark.parametrize(
    ("k", "n"), [(0, 50), (1, 50), (25, 50), (49, 50), (50, 50), (9412, 10000)]
)
def test_clopper_pearson_equals_statsmodels_beta_interval(k, n):
    lower, upper = clopper_pearson(k, n)
    ref_lower, ref_upper = proportion_confint(k, n, alpha=0.05, method="beta")
    assert lower == pytest.approx(ref_lower, rel=1e-10, abs=1e-14)
    assert upper == pytest.approx(ref_upper, rel=1e-10, abs=1e-14)


def test_rejection_rate_and_its_monte_carlo_error():
    reject = np.r_[np.ones(30, bool), np.zeros(70, bool)]
    out = rejection_rate(reject)
    assert out["rate"] == 0.3
    assert out["mcse"] == pytest.approx(np.sqrt(0.3 * 0.7 / 100))
    assert out["n_rejected"] == 30


def test_estimator_performance_formulas(rng):
    est = rng.normal(0.1, 2.0, 400)
    se = np.full(400, 2.0)
    covered = np.abs(est - 0.0) <= 1.96 * se
    perf = estimator_performance(est, se, covered, 0.0)
    assert perf["bias"] == pytest.approx(est.mean())
    assert perf["bias_mcse"] == pytest.approx(est.std(ddof=1) / 20)
    assert perf["empirical_se"] == pytest.approx(est.std(ddof=1))
    assert perf["empirical_se_mcse"] == pytest.approx(est.std(ddof=1) / np.sqrt(2 * 399))
    assert perf["model_se"] == pytest.approx(2.0)
    assert perf["coverage"] == pytest.approx(covered.mean())


def test_not_estimable_replicates_are_counted_not_averaged():
    perf = estimator_performance(
        np.array([0.1, np.inf, 0.3, np.nan]), np.ones(4), np.ones(4, bool), 0.2
    )
    assert perf["n_not_estimable"] == 2
    assert perf["mean"] == pytest.approx(0.2)


def test_summary_table_has_any_arm_row_for_several_arms():
    n = 10
    frame = pd.DataFrame(
        {
            "scenario": ["design"] * 2 * n,
            "replicate": np.tile(np.arange(n), 2),
            "endpoint": ["y"] * 2 * n,
            "arm": ["a"] * n + ["b"] * n,
            "scale": ["difference_in_means"] * 2 * n,
            "true_value": 1.0,
            "n_screened": 100,
            "n_analysed": 90,
            "events": np.nan,
            "analysis_time": 12.0,
            "target_reached": True,
            "estimate": 1.0,
            "se": 0.5,
            "ci_lower": 0.0,
            "ci_upper": 2.0,
            "reject": np.r_[np.arange(n) < 3, (np.arange(n) >= 2) & (np.arange(n) < 5)],
        }
    )
    table = OperatingCharacteristics.from_replicates(frame).table
    any_row = table[table["arm"] == "any"].iloc[0]
    assert any_row["rejection_rate"] == pytest.approx(0.5)  # replicates 0..4


def test_streamed_summary_equals_the_summary_of_the_whole_column(rng):
    from analysis.operating import OperatingCharacteristicsBuilder, distribution

    n = 1001
    frame = pd.DataFrame({
        "scenario": "design", "replicate": np.arange(n), "endpoint": "os", "arm": "x",
        "scale": "log_hazard_ratio", "true_value": -0.3, "n_screened": rng.integers(600, 640, n),
        "n_analysed": rng.integers(500, 600, n), "events": rng.integers(300, 400, n).astype(float),
        "analysis_time": rng.normal(30, 2, n), "target_reached": True,
        "estimate": rng.normal(-0.3, 0.1, n), "se": np.full(n, 0.1),
        "ci_lower": 0.0, "ci_upper": 0.0, "reject": rng.random(n) < 0.9,
    })
    frame["ci_lower"] = frame["estimate"] - 0.196
    frame["ci_upper"] = frame["estimate"] + 0.196
    builder = OperatingCharacteristicsBuilder()
    for start in range(0, n, 97):  # chunks of whole replicates
        builder.add(frame.iloc[start : start + 97])
    row = builder.result().table.iloc[0]
    for key, value in distribution(frame["events"]).items():
        assert row[f"events_{key}"] == pytest.approx(value, rel=1e-12)
    covered = (frame["ci_lower"] <= -0.3) & (-0.3 <= frame["ci_upper"])
    perf = estimator_performance(frame["estimate"], frame["se"], covered, -0.3)
    for key, value in perf.items():
        assert row[f"estimate_{key}"] == pytest.approx(value, rel=1e-9)
    assert row["rejection_rate"] == frame["reject"].mean()
