"""Tests of analysis.means against scipy and statsmodels.

References: ``scipy.stats.ttest_ind(equal_var=True)`` (statistic, p-value, df, confidence
interval) and statsmodels' ``OLS`` on intercept + arm + covariates (coefficient, standard
error, t, p-value, residual df, confidence interval), computed here replicate by replicate on
the same simulated data.
"""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats

from analysis.means import MeansResult, ancova, t_test

RTOL = 1e-8


def simulate(seed: int, n_rep: int = 6, n_pat: int = 80, n_cov: int = 3) -> dict:
    """Normal endpoint with a treatment effect of 0.5 and covariate effects; invalid = nan."""
    rng = np.random.default_rng(seed)
    group = rng.random((n_rep, n_pat)) < 0.5
    covariates = rng.normal(size=(n_rep, n_pat, n_cov)) * [1.0, 10.0, 0.1][:n_cov]
    covariates += [0.0, 50.0, 1.0][:n_cov]  # off-centre, on different scales
    y = 2.0 + 0.5 * group + covariates @ np.array([0.8, 0.03, -2.0])[:n_cov]
    y += rng.normal(size=(n_rep, n_pat))
    valid = rng.random((n_rep, n_pat)) < 0.9
    return {
        "y": np.where(valid, y, np.nan),
        "group": group,
        "covariates": np.where(valid[:, :, None], covariates, np.nan),
        "valid": valid,
    }


def test_t_test_matches_scipy() -> None:
    data = simulate(seed=31)
    res = t_test(data["y"], data["group"], valid=data["valid"])
    assert isinstance(res, MeansResult)
    ci = res.conf_int(0.9)
    for r in range(6):
        keep = data["valid"][r]
        y, exp = data["y"][r][keep], data["group"][r][keep]
        ref = stats.ttest_ind(y[exp], y[~exp], equal_var=True)
        np.testing.assert_allclose(res.t[r], ref.statistic, rtol=RTOL)
        np.testing.assert_allclose(res.p_value[r], ref.pvalue, rtol=RTOL)
        assert res.df[r] == ref.df
        np.testing.assert_allclose(res.difference[r], y[exp].mean() - y[~exp].mean(), rtol=RTOL)
        interval = ref.confidence_interval(confidence_level=0.9)
        np.testing.assert_allclose(ci[r], [interval.low, interval.high], rtol=RTOL)


def test_ancova_matches_statsmodels_ols() -> None:
    data = simulate(seed=32)
    res = ancova(data["y"], data["group"], data["covariates"], valid=data["valid"])
    ci = res.conf_int(0.95)
    for r in range(6):
        keep = data["valid"][r]
        design = sm.add_constant(
            np.column_stack([data["group"][r][keep].astype(float), data["covariates"][r][keep]])
        )
        ref = sm.OLS(data["y"][r][keep], design).fit()
        np.testing.assert_allclose(res.difference[r], ref.params[1], rtol=RTOL)
        np.testing.assert_allclose(res.se[r], ref.bse[1], rtol=RTOL)
        np.testing.assert_allclose(res.t[r], ref.tvalues[1], rtol=RTOL)
        np.testing.assert_allclose(res.p_value[r], ref.pvalues[1], rtol=RTOL)
        assert res.df[r] == ref.df_resid
        np.testing.assert_allclose(ci[r], ref.conf_int(alpha=0.05)[1], rtol=RTOL)


def test_ancova_with_one_covariate_given_without_last_axis() -> None:
    data = simulate(seed=33, n_cov=1)
    with_axis = ancova(data["y"], data["group"], data["covariates"], data["valid"])
    without = ancova(data["y"], data["group"], data["covariates"][:, :, 0], data["valid"])
    np.testing.assert_allclose(without.t, with_axis.t, rtol=1e-14)
    np.testing.assert_array_equal(without.df, with_axis.df)


def test_ancova_without_covariates_is_the_t_test() -> None:
    data = simulate(seed=34)
    res = ancova(data["y"], data["group"], None, data["valid"])
    ref = t_test(data["y"], data["group"], data["valid"])
    np.testing.assert_array_equal(res.t, ref.t)
    np.testing.assert_array_equal(res.df, ref.df)


def test_one_trial_input_returns_scalars() -> None:
    data = simulate(seed=35, n_rep=2)
    two_d = ancova(data["y"], data["group"], data["covariates"], data["valid"])
    one = ancova(data["y"][1], data["group"][1], data["covariates"][1], data["valid"][1])
    for field in ("difference", "se", "t", "df", "n_exp", "n_ctl"):
        assert np.ndim(getattr(one, field)) == 0
        np.testing.assert_allclose(getattr(one, field), getattr(two_d, field)[1], rtol=1e-12)
    assert one.conf_int().shape == (2,)
    assert one.summary().shape == (1, 9)
    single = t_test(data["y"][0], data["group"][0], data["valid"][0])
    assert np.ndim(single.t) == 0


def test_singular_designs_give_nan_for_that_replicate_only() -> None:
    data = simulate(seed=36, n_rep=4)
    group = data["group"].copy()
    group[0] = True  # no control patient
    covariates = data["covariates"].copy()
    covariates[1, :, 2] = 2.0 * covariates[1, :, 1] - 1.0  # collinear covariates
    valid = data["valid"].copy()
    valid[2, 5:] = False  # 5 patients for 5 coefficients: no residual df
    res = ancova(data["y"], group, covariates, valid)
    assert np.isnan(res.t[:3]).all()
    assert np.isnan(res.p_value[:3]).all()
    alone = ancova(data["y"][3], group[3], covariates[3], valid[3])
    np.testing.assert_allclose(res.t[3], alone.t, rtol=1e-12)
    t_res = t_test(data["y"], group, valid)
    assert np.isnan(t_res.t[0])
    assert np.isfinite(t_res.t[1:]).all()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: t_test(np.ones(4), np.ones(5, bool)), r"group has shape \(5,\)"),
        (lambda: t_test(np.array([1.0, np.nan]), np.array([True, False])), "y must be finite"),
        (
            lambda: ancova(np.ones((2, 4)), np.ones((2, 4), bool), np.ones((2, 4, 2, 1))),
            r"covariates has shape \(2, 4, 2, 1\)",
        ),
        (
            lambda: ancova(np.ones(2), np.array([True, False]), np.array([[1.0], [np.inf]])),
            "covariates must be finite",
        ),
        (lambda: t_test(np.ones(4), np.ones(4, bool)).conf_int(0.0), r"level must be in"),
    ],
)
def test_bad_input_is_rejected_with_a_message(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()
