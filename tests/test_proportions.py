"""Tests of analysis.proportions against statsmodels and closed forms.

References: statsmodels' ``proportions_ztest`` (pooled z test) and
``confint_proportions_2indep(method="wald", compare="diff")`` (Wald interval), and
``StratifiedTable(...).test_null_odds(correction=False)`` / ``oddsratio_pooled`` (CMH test and
Mantel-Haenszel odds ratio), computed here replicate by replicate on the same simulated data;
plus the closed form linking the one-stratum CMH statistic to the Pearson statistic.
"""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.contingency_tables import StratifiedTable
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

from analysis.proportions import CMHResult, ProportionsResult, cmh_test, proportions_test

RTOL = 1e-8


def simulate(seed: int, n_rep: int = 6, n_pat: int = 150, n_strata: int = 3) -> dict:
    """Binary response, 40% vs 55%, shifted by stratum; about 10% of patients not valid."""
    rng = np.random.default_rng(seed)
    group = rng.random((n_rep, n_pat)) < 0.5
    strata = rng.integers(0, n_strata, size=(n_rep, n_pat))
    rate = np.where(group, 0.55, 0.40) + 0.1 * (strata - 1)
    return {
        "response": rng.random((n_rep, n_pat)) < rate,
        "group": group,
        "strata": strata,
        "valid": rng.random((n_rep, n_pat)) < 0.9,
    }


def test_proportions_match_statsmodels() -> None:
    data = simulate(seed=21)
    res = proportions_test(data["response"], data["group"], valid=data["valid"])
    assert isinstance(res, ProportionsResult)
    ci = res.conf_int(0.9)
    for r in range(6):
        keep = data["valid"][r]
        resp, exp = data["response"][r][keep], data["group"][r][keep]
        counts = [resp[exp].sum(), resp[~exp].sum()]
        nobs = [exp.sum(), (~exp).sum()]
        z, p_value = proportions_ztest(counts, nobs)
        np.testing.assert_allclose(res.z[r], z, rtol=RTOL)
        np.testing.assert_allclose(res.p_value[r], p_value, rtol=RTOL)
        low, high = confint_proportions_2indep(
            counts[0], nobs[0], counts[1], nobs[1], method="wald", compare="diff", alpha=0.1
        )
        np.testing.assert_allclose(ci[r], [low, high], rtol=RTOL)
        assert (res.n_exp[r], res.n_ctl[r]) == tuple(nobs)
        np.testing.assert_allclose(res.difference[r], counts[0] / nobs[0] - counts[1] / nobs[1])


def test_proportions_one_trial_returns_scalars() -> None:
    data = simulate(seed=22, n_rep=2)
    res = proportions_test(data["response"], data["group"], data["valid"])
    one = proportions_test(data["response"][1], data["group"][1], data["valid"][1])
    for field in ("p_exp", "p_ctl", "difference", "se", "z", "n_exp", "n_ctl"):
        assert np.ndim(getattr(one, field)) == 0
        np.testing.assert_allclose(getattr(one, field), getattr(res, field)[1], rtol=1e-14)
    assert one.conf_int().shape == (2,)
    assert one.summary().shape == (1, 10)


def test_proportions_degenerate_cases_give_nan() -> None:
    response = np.array([[True] * 6, [True, False] * 3, [True, False] * 3])
    group = np.array([[True, False] * 3, [True] * 6, [True, False] * 3])
    valid = np.array([[True] * 6, [True] * 6, [False] * 6])
    res = proportions_test(response, group, valid)
    assert np.isnan(res.z[0])  # everyone responds: the pooled variance is 0
    assert res.difference[0] == 0.0
    assert np.isnan(res.z[1])  # empty control arm
    assert np.isnan(res.p_ctl[1])
    assert np.isnan(res.z[2])  # nobody valid
    np.testing.assert_array_equal(res.n_exp, [3, 6, 0])


def test_cmh_matches_statsmodels_stratified_table() -> None:
    data = simulate(seed=23)
    res = cmh_test(data["response"], data["group"], data["strata"], valid=data["valid"])
    assert isinstance(res, CMHResult)
    for r in range(6):
        keep = data["valid"][r]
        resp, exp, stratum = (data[k][r][keep] for k in ("response", "group", "strata"))
        tables = np.array(
            [
                [
                    [np.sum(resp & exp & (stratum == k)), np.sum(~resp & exp & (stratum == k))],
                    [np.sum(resp & ~exp & (stratum == k)), np.sum(~resp & ~exp & (stratum == k))],
                ]
                for k in range(3)
            ],
            dtype=float,
        ).transpose(1, 2, 0)
        table = StratifiedTable(tables)
        ref = table.test_null_odds(correction=False)
        np.testing.assert_allclose(res.chi2[r], ref.statistic, rtol=RTOL)
        np.testing.assert_allclose(res.p_value[r], ref.pvalue, rtol=RTOL)
        np.testing.assert_allclose(res.common_odds_ratio[r], table.oddsratio_pooled, rtol=RTOL)
        # Signed: positive exactly when the experimental arm has the higher pooled odds.
        assert np.sign(res.z[r]) == np.sign(res.observed_minus_expected[r])


def test_cmh_sign_follows_the_experimental_arm() -> None:
    # Experimental patients respond more in both strata: z > 0 and odds ratio > 1.
    response = np.array([1, 1, 1, 0, 1, 0, 0, 0, 1, 1, 0, 0, 1, 0, 0, 0], dtype=bool)
    group = np.array([1, 1, 1, 1, 0, 0, 0, 0] * 2, dtype=bool)
    strata = np.repeat([0, 1], 8)
    res = cmh_test(response, group, strata)
    assert res.z > 0
    assert res.common_odds_ratio > 1
    flipped = cmh_test(response, ~group, strata)
    np.testing.assert_allclose(flipped.z, -res.z, rtol=1e-14)
    np.testing.assert_allclose(flipped.common_odds_ratio, 1 / res.common_odds_ratio, rtol=1e-14)


def test_cmh_with_one_stratum_is_the_scaled_pearson_statistic() -> None:
    # With one stratum the hypergeometric variance is (n - 1)/n times the pooled binomial
    # one, so chi2_CMH = (n - 1)/n * z_pooled**2 (Agresti 2013, section 6.4.3).
    data = simulate(seed=24)
    res = cmh_test(data["response"], data["group"], np.zeros_like(data["strata"]), data["valid"])
    prop = proportions_test(data["response"], data["group"], data["valid"])
    n = prop.n_exp + prop.n_ctl
    np.testing.assert_allclose(res.chi2, (n - 1) / n * prop.z**2, rtol=1e-12)
    np.testing.assert_allclose(np.sign(res.z), np.sign(prop.z))


def test_cmh_valid_mask_and_one_trial() -> None:
    data = simulate(seed=25, n_rep=3)
    res = cmh_test(data["response"], data["group"], data["strata"], data["valid"])
    for r in range(3):
        keep = data["valid"][r]
        one = cmh_test(data["response"][r][keep], data["group"][r][keep], data["strata"][r][keep])
        assert np.ndim(one.z) == 0
        np.testing.assert_allclose(one.z, res.z[r], rtol=1e-13)
        np.testing.assert_allclose(one.common_odds_ratio, res.common_odds_ratio[r], rtol=1e-13)
    # Invalid patients' stratum codes are ignored, even out of range.
    strata = np.where(data["valid"], data["strata"], 99)
    again = cmh_test(data["response"], data["group"], strata, data["valid"])
    np.testing.assert_allclose(again.z, res.z, rtol=1e-14)
    assert res.summary().shape == (3, 6)


def test_cmh_without_information_gives_nan() -> None:
    response = np.array([True, True, True, True])
    group = np.array([True, False, True, False])
    res = cmh_test(response, group, np.array([0, 0, 1, 1]))
    assert res.variance == 0.0
    assert np.isnan(res.z)
    assert np.isnan(res.p_value)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: proportions_test(np.ones(4, bool), np.ones(5, bool)), r"group has shape \(5,\)"),
        (lambda: proportions_test(np.ones((2, 2, 2), bool), np.ones((2, 2, 2), bool)), "1-D"),
        (
            lambda: cmh_test(np.ones(4, bool), np.ones(4, bool), np.array([0, 1, -1, 0])),
            "strata must be integer codes >= 0",
        ),
        (
            lambda: proportions_test(np.ones(4, bool), np.ones(4, bool)).conf_int(1.5),
            r"level must be in \(0, 1\)",
        ),
    ],
)
def test_bad_input_is_rejected_with_a_message(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()
