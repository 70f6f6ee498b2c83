"""PROCOVA (analysis/procova.py) against independent references.

References: statsmodels' OLS with HC0-HC3 covariances (the batched closed form and the
ANCOVA), statsmodels' ``NormalIndPower`` (the unadjusted sample size), the variance factor
1 - rho^2 of Schuler et al. (2022) checked by simulation within its Monte Carlo error, the
nominal one-sided type I error within its Monte Carlo error, and the normal-approximation
power of the adjusted test; a Cox model with the score recovers the log hazard ratio of
simulated data.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.power import NormalIndPower

from analysis.procova import (
    ols_hc,
    procova_ancova,
    procova_cox,
    procova_sample_size,
    procova_simulation,
    prognostic_score,
)
from trials.exceptions import DataError, DesignError


@pytest.mark.parametrize("cov_type", ["HC0", "HC1", "HC2", "HC3"])
def test_batched_ols_equals_statsmodels(rng, cov_type):
    y = rng.normal(size=(3, 30)) * np.linspace(0.5, 2, 30)
    x = np.stack([np.ones((3, 30)), rng.integers(0, 2, (3, 30)), rng.normal(size=(3, 30))], -1)
    coef, se = ols_hc(y, x, cov_type)
    for r in range(3):
        fit = sm.OLS(y[r], x[r]).fit(cov_type=cov_type)
        np.testing.assert_allclose(coef[r], fit.params, rtol=1e-10)
        np.testing.assert_allclose(se[r], fit.bse, rtol=1e-10)


def _trial(rng, n=200, effect=0.5, rho=0.7):
    x = rng.normal(size=n)
    z = np.repeat([0, 1], n // 2)
    y = 1.0 + effect * z + rho * x + math.sqrt(1 - rho**2) * rng.normal(size=n)
    return pd.DataFrame({"y": y, "z": z, "x": x, "age": rng.normal(60, 8, n)})


def test_ancova_equals_statsmodels_and_accepts_any_score(rng):
    data = _trial(rng)
    fit = sm.OLS(data.y, sm.add_constant(data[["z", "x"]])).fit(cov_type="HC3", use_t=True)
    res = procova_ancova(data, "y", "z", "x")
    assert res.effect == pytest.approx(fit.params["z"], rel=1e-12)
    assert res.se == pytest.approx(fit.bse["z"], rel=1e-12)
    assert res.p_value == pytest.approx(fit.pvalues["z"], rel=1e-10)
    assert res.p_value_one_sided == pytest.approx(fit.pvalues["z"] / 2, rel=1e-10)
    lower, upper = res.conf_int(0.95)
    np.testing.assert_allclose([lower, upper], fit.conf_int().loc["z"], rtol=1e-10)
    # a fitted model's predict (any affine map of the score gives the same effect)
    by_callable = procova_ancova(data, "y", "z", lambda frame: 3 + 2 * frame["x"])
    assert by_callable.effect == pytest.approx(res.effect, rel=1e-10)
    by_array = procova_ancova(data, "y", "z", data["x"].to_numpy())
    assert by_array.se == pytest.approx(res.se, rel=1e-12)
    assert 0.6 < res.score_correlation < 0.8


def test_cox_with_the_score_recovers_the_log_hazard_ratio(rng):
    n, log_hr = 1500, -0.4
    x = rng.normal(size=n)
    z = rng.integers(0, 2, n)
    t = rng.exponential(1 / np.exp(0.8 * x + log_hr * z))
    c = rng.uniform(0, 3, n)
    data = pd.DataFrame({"time": np.minimum(t, c), "event": (t <= c) * 1, "arm": z, "score": x})
    res = procova_cox(data, "time", "event", "arm", "score")
    assert abs(res.effect - log_hr) < 4 * res.se
    assert res.score_coefficient == pytest.approx(0.8, abs=0.15)
    assert res.p_value_one_sided == pytest.approx(stats.norm.cdf(res.effect / res.se))


def test_bad_scores_and_columns_are_named():
    data = pd.DataFrame({"y": [1.0, 2, 3, 4], "z": [0, 1, 0, 1]})
    with pytest.raises(DataError, match="3 values for 4 patients"):
        procova_ancova(data, "y", "z", [1.0, 2.0, 3.0])
    with pytest.raises(DataError, match=r"not finite for rows \[2\]"):
        prognostic_score([1.0, 2.0, np.nan, 4.0])
    with pytest.raises(DataError, match="no column"):
        procova_ancova(data, "y", "arm", [1.0, 2, 3, 4])
    with pytest.raises(DataError, match="must hold 0"):
        procova_ancova(data.assign(z=2), "y", "z", [1.0, 2, 3, 4])


def test_sample_size_reduction_is_one_minus_rho_squared():
    design = procova_sample_size(0.4, 1.2, 0.6, alpha=0.025, power=0.9)
    per_arm = NormalIndPower().solve_power(effect_size=0.4 / 1.2, alpha=0.025, power=0.9,
                                           ratio=1.0, alternative="larger")  # fmt: skip
    assert design.n_unadjusted == 2 * math.ceil(per_arm)
    adjusted_effect = 0.4 / (1.2 * math.sqrt(1 - 0.36))
    adjusted = NormalIndPower().solve_power(effect_size=adjusted_effect, alpha=0.025, power=0.9,
                                            alternative="larger")  # fmt: skip
    assert design.n_adjusted == 2 * math.ceil(adjusted)
    assert design.variance_factor == pytest.approx(0.64)
    with pytest.raises(DesignError, match="-1 < rho < 1"):
        procova_sample_size(0.4, 1.0, 1.0)


def test_variance_reduction_equals_one_minus_rho_squared_in_large_samples():
    rho = 0.6
    sim = procova_simulation(300, 300, 0.1, 1.0, rho, n_replicates=1500, seed=7)
    assert abs(sim.variance_ratio - (1 - rho**2)) < 4 * sim.variance_ratio_mcse


def test_type_i_error_is_kept_and_power_gained():
    n, effect, rho, alpha, reps = 60, 0.5, 0.6, 0.025, 4000
    sim = procova_simulation(n, n, effect, 1.0, rho, n_replicates=reps, alpha=alpha, seed=3)
    table = sim.table.set_index(["analysis", "scenario"])
    for analysis in ("unadjusted", "procova"):
        row = table.loc[(analysis, "null")]
        assert abs(row.rejection_rate - alpha) < 4 * math.sqrt(alpha * (1 - alpha) / reps)
        assert abs(row.coverage - 0.95) < 4 * math.sqrt(0.95 * 0.05 / reps)
    gained = table.loc[("procova", "design")].rejection_rate
    assert gained > table.loc[("unadjusted", "design")].rejection_rate + 0.1
    se = math.sqrt((1 - rho**2) * 2 / n)
    expected = stats.norm.cdf(effect / se - stats.norm.ppf(1 - alpha))  # z approximation
    assert abs(gained - expected) < 4 * math.sqrt(expected * (1 - expected) / reps) + 0.02
