"""External control arms: propensity scores, matching, weights, balance, weighted survival,
bootstrap, E-value and tipping point, the synthetic control arm, and the protocol section.

References checked against:

- standardized mean differences and variance ratios: Austin (2009, Stat Med 28:3083),
  eqs. 1-2, computed by hand on a small frame;
- Kish's effective sample size ``(sum w)^2 / sum w^2`` (Kish 1965);
- E-value: VanderWeele & Ding (2017, Ann Intern Med 167:268), worked example RR 3.9
  (95 % CI 1.8 to 8.7) -> E-values 7.26 and 3.0; the common-outcome hazard-ratio conversion
  of VanderWeele (2020, Biometrics), as the R package EValue's tests write it;
- the weighted Kaplan-Meier estimator: the product-limit formula with weighted counts;
- the weighted Cox model: lifelines ``CoxPHFitter`` with ``weights_col`` and ``robust=True``;
- the propensity model: statsmodels ``Logit`` on the same design;
- the WLS difference and its HC0 variance: their closed forms for a binary regressor;
- matching and weighting recover a known effect on data simulated with known confounding:
  a constant mean difference, and the marginal hazard ratio in the trial population computed
  from simulated counterfactual outcomes (non-collapsibility makes it differ from the
  conditional one); tolerance 3.5 standard errors, while the naive comparison is further off.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import special

from analysis.balance import (
    balance_table,
    overlap_histogram,
    overlap_summary,
    plot_love,
    plot_overlap,
)
from analysis.bootstrap import bootstrap
from analysis.evalue import (
    e_value,
    e_value_of_risk_ratio,
    hazard_ratio_to_risk_ratio,
    tipping_point,
)
from analysis.external_control import (
    _cox_log_hr,
    analyse_external_control,
    weighted_cox,
    weighted_difference,
    weighted_kaplan_meier,
)
from analysis.propensity import (
    PropensityModel,
    att_weights,
    check_overlap,
    estimate_weights,
    fit_propensity,
    kish_ess,
    match_nearest,
    overlap_weights,
)
from analysis.synthetic_control import synthetic_control_arm, synthetic_control_comparison
from tests.conftest import PROTOCOLS
from trials.exceptions import DataError, ProtocolError


# ----------------------------------------------------------------------------- data
def confounded(rng, n=1500, *, log_hr=math.log(0.6), shift=2.0):
    """Trial membership and outcome both depend on x1, x2 and a category."""
    x1 = rng.normal(size=n)
    x2 = rng.binomial(1, 0.4, n)
    group = rng.choice(["a", "b", "c"], n)
    logit = -1.2 + 0.8 * x1 + 0.7 * x2 + 0.5 * (group == "b")
    trial = rng.random(n) < special.expit(logit)
    prognosis = 0.7 * x1 + 0.6 * x2 + 0.4 * (group == "c")
    hazard = 0.1 * np.exp(prognosis + log_hr * trial)
    t = rng.exponential(1 / hazard)
    c = rng.uniform(5, 30, n)
    return pd.DataFrame(
        {
            "x1": x1,
            "x2": x2,
            "group": group,
            "trial": trial.astype(int),
            "time": np.minimum(t, c),
            "event": (t <= c).astype(int),
            "y": 3.0 * prognosis + shift * trial + rng.normal(size=n),
        }
    )


def model_from_logits(logits, treated) -> PropensityModel:
    logits = np.asarray(logits, dtype=float)
    return PropensityModel(
        covariates=("x",),
        coefficients=pd.Series(dtype=float),
        standard_errors=pd.Series(dtype=float),
        linear_predictor=logits,
        treated=np.asarray(treated, dtype=bool),
        index=pd.RangeIndex(logits.size),
        converged=True,
    )


# ----------------------------------------------------------------------------- balance
def test_smd_and_variance_ratio_equal_a_hand_computation():
    frame = pd.DataFrame(
        {
            "age": [50.0, 60, 70, 40, 44, 60, 52],
            "male": [1, 0, 1, 0, 0, 1, 0],
            "stage": ["I", "II", "II", "I", "I", "II", "I"],
        }
    )
    treated = np.array([1, 1, 1, 0, 0, 0, 0], dtype=bool)
    table = balance_table(frame, ["age", "male", "stage"], treated).summary()
    # age: trial mean 60, variance 100; external 40, 44, 60, 52: mean 49, variance 236 / 3
    assert table.loc["age", "smd_before"] == pytest.approx(
        (60 - 49) / math.sqrt((100 + 236 / 3) / 2)
    )
    assert table.loc["age", "variance_ratio_before"] == pytest.approx(100 / (236 / 3))
    # male: 2/3 vs 1/4, denominator sqrt((p1 q1 + p0 q0) / 2)
    p1, p0 = 2 / 3, 1 / 4
    expected = (p1 - p0) / math.sqrt((p1 * (1 - p1) + p0 * (1 - p0)) / 2)
    assert table.loc["male", "smd_before"] == pytest.approx(expected)
    assert math.isnan(table.loc["male", "variance_ratio_before"])
    # a categorical gets a row per level: stage II is 2/3 vs 1/4 as well
    assert table.loc["stage[II]", "smd_before"] == pytest.approx(expected)
    assert table.loc["stage[I]", "smd_before"] == pytest.approx(-expected)


def test_weighted_smd_uses_weighted_means_and_the_unadjusted_denominator():
    frame = pd.DataFrame({"age": [50.0, 60, 70, 40, 44, 60, 52]})
    treated = np.array([1, 1, 1, 0, 0, 0, 0], dtype=bool)
    w = np.array([1, 1, 1, 0.5, 1.0, 3.0, 1.5])
    row = balance_table(frame, ["age"], treated, w).summary().loc["age"]
    mean_c = np.sum(w[3:] * frame["age"][3:]) / w[3:].sum()
    assert row["mean_external_adjusted"] == pytest.approx(mean_c)
    assert row["smd_after"] == pytest.approx((60 - mean_c) / math.sqrt((100 + 236 / 3) / 2))
    # reliability-weighted variance of the external ages
    x, v = frame["age"].to_numpy()[3:], w[3:]
    var_c = np.sum(v * (x - mean_c) ** 2) / (v.sum() - np.sum(v**2) / v.sum())
    assert row["variance_ratio_after"] == pytest.approx(100 / var_c)


def test_kish_ess_equals_its_formula():
    w = np.array([0.5, 1.0, 2.0, 4.0, 0.0])
    assert kish_ess(w) == pytest.approx(7.5**2 / (0.25 + 1 + 4 + 16))
    assert kish_ess(np.ones(17)) == pytest.approx(17)
    assert kish_ess(np.zeros(3)) == 0.0


# ----------------------------------------------------------------------------- propensity
def test_propensity_model_equals_statsmodels_logit(rng):
    import statsmodels.api as sm

    data = confounded(rng, 600)
    model = fit_propensity(data, "trial", ["x1", "x2", "group"])
    design = sm.add_constant(
        pd.DataFrame(
            {
                "x1": data["x1"],
                "x2": data["x2"].astype(float),
                "group[b]": (data["group"] == "b").astype(float),
                "group[c]": (data["group"] == "c").astype(float),
            }
        )
    )
    reference = sm.Logit(data["trial"].astype(float), design).fit(disp=0)
    np.testing.assert_allclose(model.coefficients, reference.params, rtol=1e-6)
    np.testing.assert_allclose(model.standard_errors, reference.bse, rtol=1e-5)
    np.testing.assert_allclose(model.scores, reference.predict(design), rtol=1e-6)
    assert list(model.summary().columns) == ["coef", "se", "z", "p_value"]


def test_att_and_overlap_weights():
    model = model_from_logits([0.0, 1.0, -1.0, 0.5, -2.0], [1, 1, 0, 0, 0])
    e = special.expit(model.linear_predictor)
    att = att_weights(model)
    odds = e[2:] / (1 - e[2:])
    np.testing.assert_allclose(att[:2], 1.0)
    np.testing.assert_allclose(att[2:], odds * 2 / odds.sum())  # sums to n_trial
    ow = overlap_weights(model)
    np.testing.assert_allclose(ow[:2], 1 - e[:2])
    np.testing.assert_allclose(ow[2:], e[2:] * (1 - e[:2]).sum() / e[2:].sum())


def test_matching_by_hand():
    # trial logits 2.0, 0.0; external 1.9, 0.1, -0.05, 3.5
    model = model_from_logits([2.0, 0.0, 1.9, 0.1, -0.05, 3.5], [1, 1, 0, 0, 0, 0])
    m = match_nearest(model, k=1, caliper=None)
    assert sorted(map(tuple, m.pairs[["trial", "external"]].to_numpy())) == [(0, 2), (1, 4)]
    np.testing.assert_allclose(m.weights, [1, 1, 1, 0, 1, 0])
    # 1:2 without replacement: second round takes the next nearest that is left
    m2 = match_nearest(model, k=2, caliper=None)
    assert sorted(map(tuple, m2.pairs[["trial", "external"]].to_numpy())) == [
        (0, 2), (0, 3), (1, 4), (1, 5)
    ] or sorted(map(tuple, m2.pairs[["trial", "external"]].to_numpy())) == [
        (0, 2), (0, 5), (1, 3), (1, 4)
    ]
    # with a tight caliper (0.2 SD of the logit) the far external patients are excluded
    tight = match_nearest(model, k=2, caliper=0.2)
    assert (tight.pairs["distance"] <= tight.caliper).all()
    pooled = math.sqrt((np.var([2.0, 0.0], ddof=1) + np.var([1.9, 0.1, -0.05, 3.5], ddof=1)) / 2)
    assert tight.caliper == pytest.approx(0.2 * pooled)
    # with replacement both trial patients may take the same external patient
    near = model_from_logits([1.0, 1.1, 1.05, -3.0], [1, 1, 0, 0])
    shared = match_nearest(near, k=1, caliper=None, replace=True)
    assert list(shared.pairs["external"]) == [2, 2]
    np.testing.assert_allclose(shared.weights, [1, 1, 1, 0])  # rescaled: 1 distinct control


def test_matching_rounds_give_every_trial_patient_a_first_match():
    model = model_from_logits([2.0, 0.0, 1.9, 0.1, -0.05, 3.5], [1, 1, 0, 0, 0, 0])
    m2 = match_nearest(model, k=2, caliper=None)
    first = m2.pairs[m2.pairs["round"] == 1]
    assert sorted(first["trial"]) == [0, 1]
    assert m2.pairs["external"].is_unique


# ----------------------------------------------------------------------------- known effect
@pytest.mark.parametrize("method", ["iptw_att", "overlap", "matching"])
def test_adjustment_recovers_a_known_mean_difference(rng, method):
    data = confounded(rng, 1500, shift=2.0)
    result = analyse_external_control(
        data,
        treatment="trial",
        covariates=["x1", "x2", "group"],
        endpoint="continuous",
        outcome="y",
        method=method,
        replace=True,
        n_resamples=0,
    )
    assert abs(result.effect.estimate - 2.0) < 3.5 * result.effect.se
    assert abs(result.naive.estimate - 2.0) > 10 * result.naive.se  # confounded
    assert result.balance.max_abs_smd_after < 0.1 < result.balance.max_abs_smd_before


def test_binary_endpoint_recovers_a_known_risk_difference(rng):
    data = confounded(rng, 3000)
    p = 0.2 + 0.15 * data["x2"] + 0.1 * (data["group"] == "c") + 0.1 * (data["x1"] > 0)
    data["response"] = (rng.random(len(data)) < p + 0.15 * data["trial"]).astype(int)
    result = analyse_external_control(
        data, treatment="trial", covariates=["x1", "x2", "group"], endpoint="binary",
        outcome="response", n_resamples=0,
    )
    assert result.effect.binary
    assert abs(result.effect.estimate - 0.15) < 3.5 * result.effect.se
    rr, low, high = result.effect.risk_ratio()
    assert rr == pytest.approx(result.effect.mean_trial / result.effect.mean_external)
    assert result.e_value.measure == "risk_ratio"
    assert result.e_value.e_value == pytest.approx(rr + math.sqrt(rr * (rr - 1)))
    assert result.tipping is None


def _marginal_log_hr_in_trial_population(seed: int) -> float:
    """The trial population's marginal log HR from simulated counterfactual outcomes."""
    from analysis.cox import cox_treatment

    rng = np.random.default_rng(seed)
    big = confounded(rng, 300_000)
    trial = big[big["trial"] == 1]
    prognosis = 0.7 * trial["x1"] + 0.6 * trial["x2"] + 0.4 * (trial["group"] == "c")
    base = 0.1 * np.exp(prognosis.to_numpy())
    m = len(trial)
    t1, t0 = rng.exponential(1 / (base * 0.6)), rng.exponential(1 / base)
    c1, c0 = rng.uniform(5, 30, m), rng.uniform(5, 30, m)
    time = np.concatenate([np.minimum(t1, c1), np.minimum(t0, c0)])
    event = np.concatenate([t1 <= c1, t0 <= c0]).astype(float)
    arm = np.concatenate([np.ones(m), np.zeros(m)])
    return float(cox_treatment(time, event, arm).log_hr)


@pytest.mark.parametrize("method", ["iptw_att", "matching"])
def test_adjustment_recovers_the_marginal_hazard_ratio(rng, method):
    truth = _marginal_log_hr_in_trial_population(7)
    data = confounded(rng, 2000)
    result = analyse_external_control(
        data,
        treatment="trial",
        covariates=["x1", "x2", "group"],
        time="time",
        event="event",
        method=method,
        replace=True,
        n_resamples=0,
    )
    se = result.effect.se_log_hr
    assert abs(result.effect.log_hr - truth) < 3.5 * se
    assert abs(result.naive.log_hr - truth) > 5 * result.naive.se_log_hr
    low, high = result.conf_int()
    assert low < result.estimate < high


# ----------------------------------------------------------------------------- survival
def test_weighted_kaplan_meier_equals_the_product_limit_formula(rng):
    n = 40
    time = np.round(rng.exponential(10, n)) + 1  # ties
    event = rng.integers(0, 2, n)
    treated = np.arange(n) < 15
    w = rng.uniform(0.2, 3.0, n)
    km = weighted_kaplan_meier(time, event, treated, w)
    for label, mask in (("trial", treated), ("external", ~treated)):
        t, e, v = time[mask], event[mask], w[mask]
        survival = 1.0
        part = km.table[km.table["source"] == label].set_index("time")
        for u in np.unique(t[e == 1]):
            at_risk = v[t >= u].sum()
            died = v[(t == u) & (e == 1)].sum()
            survival *= 1 - died / at_risk
            assert part.loc[u, "survival"] == pytest.approx(survival)


def test_weighted_cox_equals_lifelines_with_the_same_weights(rng):
    from lifelines import CoxPHFitter

    n = 200
    time = np.round(rng.exponential(12, n), 1) + 0.1
    event = rng.integers(0, 2, n)
    treated = rng.random(n) < 0.3
    w = rng.uniform(0.1, 4.0, n)
    result = weighted_cox(time, event, treated, w)
    frame = pd.DataFrame({"T": time, "E": event, "A": treated.astype(float), "W": w})
    reference = CoxPHFitter().fit(
        frame, "T", "E", weights_col="W", robust=True, fit_options={"precision": 1e-10}
    )
    assert result.log_hr == pytest.approx(reference.params_["A"], abs=1e-7)
    assert result.se_log_hr == pytest.approx(reference.standard_errors_["A"], rel=1e-6)
    low, high = result.conf_int(0.95)
    assert math.log(low) == pytest.approx(result.log_hr - 1.959964 * result.se_log_hr, abs=1e-5)
    assert high > result.hazard_ratio > low
    # the bootstrap's fast estimate is the same partial likelihood (Efron ties, weights)
    assert _cox_log_hr(time, event, treated, w) == pytest.approx(
        reference.params_["A"], abs=1e-7
    )


def test_weighted_difference_equals_its_closed_form(rng):
    y = rng.normal(size=50)
    treated = np.arange(50) < 20
    w = rng.uniform(0.5, 2.0, 50)
    result = weighted_difference(y, treated, w)
    m_t = np.sum(w[treated] * y[treated]) / w[treated].sum()
    m_c = np.sum(w[~treated] * y[~treated]) / w[~treated].sum()
    var = sum(
        np.sum(w[g] ** 2 * (y[g] - m) ** 2) / w[g].sum() ** 2
        for g, m in ((treated, m_t), (~treated, m_c))
    )
    assert result.estimate == pytest.approx(m_t - m_c)
    assert result.se == pytest.approx(math.sqrt(var))
    assert result.mean_trial == pytest.approx(m_t)


# ----------------------------------------------------------------------------- bootstrap
def test_bootstrap_is_reproducible_with_a_seed(rng):
    data = confounded(rng, 300)
    kwargs = dict(
        treatment="trial", covariates=["x1", "x2"], time="time", event="event", n_resamples=8
    )
    a = analyse_external_control(data, rng=11, **kwargs)
    b = analyse_external_control(data, rng=11, **kwargs)
    c = analyse_external_control(data, rng=12, **kwargs)
    np.testing.assert_array_equal(a.bootstrap.estimates, b.bootstrap.estimates)
    assert not np.array_equal(a.bootstrap.estimates, c.bootstrap.estimates)
    low, high = a.bootstrap_conf_int()
    assert low < high


def test_bootstrap_keeps_group_sizes_and_counts_failures():
    data = pd.DataFrame({"g": [1] * 3 + [0] * 5, "v": np.arange(8.0)})
    sizes = []

    def statistic(frame, _):
        sizes.append(int(frame["g"].sum()))
        if frame["v"].max() < 7:
            raise DataError("no")
        return float(frame["v"].mean())

    with pytest.warns(UserWarning, match="bootstrap resamples failed"):
        result = bootstrap(statistic, data, data["g"] == 1, n_resamples=40, rng=3)
    assert set(sizes) == {3}
    assert result.n_failed + result.estimates.size == 40
    assert result.n_failed > 0


# ----------------------------------------------------------------------------- E-value
def test_e_value_equals_vanderweele_ding_worked_example():
    result = e_value(3.9, 1.8, 8.7)
    assert result.e_value == pytest.approx(3.9 + math.sqrt(3.9 * 2.9))
    assert round(result.e_value, 2) == 7.26
    assert round(result.e_value_ci, 2) == 3.0
    # a protective estimate uses 1 / RR and the upper limit
    protective = e_value(1 / 3.9, 1 / 8.7, 1 / 1.8)
    assert protective.e_value == pytest.approx(result.e_value)
    assert protective.e_value_ci == pytest.approx(result.e_value_ci)
    # an interval that includes the null
    assert e_value(1.3, 0.9, 1.8).e_value_ci == 1.0


def test_e_value_of_a_common_outcome_hazard_ratio():
    hr, lo, hi = 1.3, 1.2, 1.4
    rr = (1 - 0.5 ** math.sqrt(hr)) / (1 - 0.5 ** math.sqrt(1 / hr))
    rr_lo = (1 - 0.5 ** math.sqrt(lo)) / (1 - 0.5 ** math.sqrt(1 / lo))
    result = e_value(hr, lo, hi, measure="hazard_ratio", rare_outcome=False)
    assert result.risk_ratio == pytest.approx(rr)
    assert result.e_value == pytest.approx(rr + math.sqrt(rr * (rr - 1)))
    assert result.e_value_ci == pytest.approx(rr_lo + math.sqrt(rr_lo * (rr_lo - 1)))
    assert "square-root" in result.conversion
    # rare outcome: the hazard ratio is the risk ratio
    assert e_value(hr, measure="hazard_ratio", rare_outcome=True).e_value == pytest.approx(
        e_value_of_risk_ratio(1.3)
    )
    # the conversion is symmetric: RR(1 / HR) = 1 / RR(HR)
    assert hazard_ratio_to_risk_ratio(1 / 1.7, rare_outcome=False) == pytest.approx(
        1 / hazard_ratio_to_risk_ratio(1.7, rare_outcome=False)
    )
    assert e_value(4.0, measure="odds_ratio").risk_ratio == pytest.approx(2.0)


def test_tipping_point():
    tp = tipping_point(0.6, 0.45, 0.8, prevalence_differences=[-0.5, -0.2, 0.0],
                       confounder_hazard_ratios=[2.0, 4.0])
    assert tp.tipping_bias_log_hr == pytest.approx(math.log(0.8))
    by = tp.tipping.set_index("confounder_hazard_ratio")["prevalence_difference"]
    assert by[2.0] == pytest.approx(math.log(0.8) / math.log(2.0))
    assert by[4.0] == pytest.approx(math.log(0.8) / math.log(4.0))
    grid = tp.grid.set_index(["prevalence_difference", "confounder_hazard_ratio"])
    row = grid.loc[(-0.5, 4.0)]  # bias -0.5 log 4 = -0.693 < log 0.8
    assert row["conf_high_adjusted"] == pytest.approx(0.8 / math.exp(-0.5 * math.log(4.0)))
    assert bool(row["includes_null"])
    assert not bool(grid.loc[(0.0, 2.0), "includes_null"])
    assert tipping_point(1.1, 0.8, 1.5).tipping_bias_log_hr == 0.0


# ----------------------------------------------------------------------------- bad input
def test_non_overlapping_scores_are_refused(rng):
    x = np.concatenate([rng.normal(0, 1, 100), rng.normal(8, 1, 30)])
    data = pd.DataFrame({"x": x, "trial": np.r_[np.zeros(100), np.ones(30)].astype(int)})
    with pytest.raises(DataError, match="propensity scores do not overlap"):
        fit_propensity(data, "trial", ["x"])
    shifted = model_from_logits(np.r_[np.linspace(0, 1, 10), np.linspace(-2, 0.5, 50)],
                                np.r_[np.ones(10), np.zeros(50)])
    with pytest.raises(DataError, match=r"50\.0% of the trial patients \(5 of 10\)"):
        check_overlap(shifted, max_unsupported=0.1)


def test_unmatched_trial_patients_and_zero_ess_are_refused():
    model = model_from_logits([0.0, 0.05, 3.0, 0.02, -0.01, -3.0], [1, 1, 1, 0, 0, 0])
    with pytest.raises(DataError, match="have no external patient within the caliper"):
        estimate_weights(model, "matching", caliper=0.05, max_unmatched=0.1)
    data = confounded(np.random.default_rng(1), 400)
    with pytest.raises(DataError, match="effective sample size of .* below the minimum 1000"):
        analyse_external_control(data, treatment="trial", covariates=["x1"], time="time",
                                 event="event", n_resamples=0, min_effective_sample_size=1000)


def test_missing_covariate_and_missing_values_are_named():
    data = pd.DataFrame({"x": [1.0, np.nan, 2.0, 3.0], "trial": [1, 0, 0, 1]})
    with pytest.raises(DataError, match=r"covariates not in the data: 'age'"):
        fit_propensity(data, "trial", ["age"])
    with pytest.raises(DataError, match=r"covariate 'x' has missing values in rows 1"):
        fit_propensity(data, "trial", ["x"])


# ----------------------------------------------------------------------------- plots
def test_plots_return_axes(rng):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = confounded(rng, 300)
    result = analyse_external_control(data, treatment="trial", covariates=["x1", "group"],
                                      time="time", event="event", n_resamples=0)
    ax = plot_love(result.balance)
    assert ax.get_xlabel().startswith("absolute standardized")
    ax2 = plot_overlap(result.weights.model, result.weights.weights)
    assert len(ax2.patches) == 40
    plt.close("all")
    hist = overlap_histogram(result.weights.model, bins=10)
    assert hist.groupby("source")["density"].sum().to_dict() == pytest.approx(
        {"trial": 1.0, "external": 1.0}
    )
    summary = overlap_summary(result.weights.model)
    assert list(summary.index) == ["trial", "external"]
    love = result.balance.love_plot_data()
    assert set(love["adjustment"]) == {"unadjusted", "adjusted"}


# ----------------------------------------------------------------------------- synthetic arm
def test_synthetic_arm_is_drawn_at_the_trial_covariates(rng):
    from generators.copula import GaussianCopula

    data = confounded(rng, 600)
    external = data.loc[data["trial"] == 0, ["x1", "group", "time", "event"]]
    generator = GaussianCopula().fit(external.reset_index(drop=True))
    trial = data[data["trial"] == 1].head(20).reset_index(drop=True)
    virtual = synthetic_control_arm(generator, trial, ["x1", "group"], n_per_patient=4, rng=1)
    assert len(virtual) == 80
    merged = virtual.merge(trial[["x1", "group"]], left_on="trial_row", right_index=True,
                           suffixes=("", "_trial"))
    assert (merged["group"].astype(str) == merged["group_trial"].astype(str)).all()
    gap = (merged["x1"] - merged["x1_trial"]).abs()
    assert gap.median() < 0.05
    assert np.corrcoef(merged["x1"], merged["x1_trial"])[0, 1] > 0.95


def test_synthetic_comparison_rests_on_the_real_sample(rng):
    data = confounded(rng, 400)
    result = synthetic_control_comparison(
        data, treatment="trial", covariates=["x1", "x2"], time="time", event="event",
        n_per_patient=3, n_resamples=6, rng=5,
    )
    n_trial = int(data["trial"].sum())
    assert result.n_generated == 3 * n_trial
    assert result.n_external == len(data) - n_trial
    low, high = result.conf_int()
    boot_low, boot_high = result.bootstrap.conf_int()
    assert (low, high) == pytest.approx((math.exp(boot_low), math.exp(boot_high)))
    assert any("add no information" in note for note in result.notes)
    assert any(f"{result.n_external} real external" in note for note in result.notes)


@pytest.mark.slow
def test_synthetic_interval_does_not_shrink_with_more_generated_patients(rng):
    data = confounded(rng, 500)
    widths = {}
    for k in (2, 20):
        r = synthetic_control_comparison(
            data, treatment="trial", covariates=["x1", "x2"], time="time", event="event",
            n_per_patient=k, n_resamples=200, rng=9,
        )
        widths[k] = np.diff(np.log(r.conf_int()))[0]
    # 10 times more generated patients: a naive interval would be ~sqrt(10) narrower on the
    # external side; the bootstrap over real patients stays about as wide
    assert widths[20] > 0.75 * widths[2]


# ----------------------------------------------------------------------------- protocol
EXAMPLE = PROTOCOLS / "rare_disease_external_control.yaml"


def _write(tmp_path, trial: pd.DataFrame, external: pd.DataFrame, section: str) -> object:
    from trials.external import ExternalControl
    from trials.loader import load_yaml_string

    trial.to_csv(tmp_path / "trial.csv", index=False)
    external.to_csv(tmp_path / "external.csv", index=False)
    return load_yaml_string(section, ExternalControl)


SECTION = """
trial_data: trial.csv
external_data: external.csv
eligibility: ["age >= 40", "stage != 'IV'"]
time_zero: {index_time_column: months_to_index}
harmonisation:
  rename: {age_years: age, tumour_stage: stage, os_days: os}
  units: {os: 0.1}
  categories: {stage: {"1": I, "2": II, "4": IV}}
covariates: [age, stage]
adjustment: {method: iptw_att}
endpoint: {type: time_to_event, time: os, event: died}
"""


def _frames():
    trial = pd.DataFrame({"age": [50, 60, 45], "stage": ["I", "II", "II"],
                          "os": [5.0, 7.0, 9.0], "died": [1, 0, 1]})
    external = pd.DataFrame({
        "age_years": [38, 52, 61, 70, 44],
        "tumour_stage": [1, 2, 2, 4, 1],
        "os_days": [100.0, 40.0, 90.0, 80.0, 20.0],
        "months_to_index": [1.0, 1.0, 2.0, 1.0, 3.0],
        "died": [1, 1, 0, 1, 0],
    })
    return trial, external


def test_harmonisation_eligibility_and_time_zero(tmp_path):
    from trials.external_data import prepare_external_control

    trial, external = _frames()
    section = _write(tmp_path, trial, external, SECTION)
    prepared = prepare_external_control(section, tmp_path)
    ext = prepared.data[prepared.data["trial"] == 0]
    # age 38 fails "age >= 40", stage 4 -> IV fails "stage != 'IV'", row 5: 20 days * 0.1
    # = 2 months, index at 3 months: no follow-up after the index date
    assert list(ext["age"]) == [52, 61]
    assert list(ext["stage"].astype(str)) == ["II", "II"]
    np.testing.assert_allclose(ext["os"], [4.0 - 1.0, 9.0 - 2.0])
    steps = prepared.attrition.set_index(["source", "step"])["n_patients"]
    assert steps[("external", "followed after the index date")] == 4
    assert steps[("external", "eligible")] == 2
    assert list(ext["source_row"]) == [3, 4]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("[age, stage]", "[age, stage, ecog]"),
         r"external_control\.covariates\[2\]: column 'ecog' is missing from the trial file"),
        (('"4": IV', '"3": III'),
         r"harmonisation\.categories\.stage: external category '4' of column 'stage' \(row 5\)"
         r" is not in the mapping"),
        (("\"stage != 'IV'\"", '"age < 100"'),
         r"covariates\[1\]: category 'IV' of column 'stage' in the external source \(row 5\)"
         r" is not a trial category \(trial: 'I', 'II'\)"),
        (("age_years: age", "age_yrs: age"),
         r"rename\.age_yrs: column 'age_yrs' is not in the external source; did you mean "
         "'age_years'"),
        (('"age >= 40"', '"weight >= 40"'), r"eligibility\[0\]: unknown covariate 'weight'"),
    ],
)
def test_bad_harmonisation_names_the_field_and_column(tmp_path, edit, message):
    from trials.external_data import ExternalControlDataError, prepare_external_control

    trial, external = _frames()
    section = _write(tmp_path, trial, external, SECTION.replace(*edit))
    with pytest.raises(ExternalControlDataError, match=message):
        prepare_external_control(section, tmp_path)


def test_section_schema_errors():
    from trials.external import ExternalControl
    from trials.loader import load_yaml_string

    with pytest.raises(ProtocolError, match=r"eligibility\[1\]: not a valid expression"):
        load_yaml_string(SECTION.replace("\"stage != 'IV'\"", '"age >"'), ExternalControl)
    with pytest.raises(ProtocolError, match="covariate 'age' is given twice"):
        load_yaml_string(SECTION.replace("[age, stage]", "[age, age]"), ExternalControl)
    with pytest.raises(ProtocolError, match="unknown key 'calipr'"):
        load_yaml_string(
            SECTION.replace("{method: iptw_att}", "{method: matching, calipr: 0.1}"),
            ExternalControl,
        )


def test_shipped_example_files_are_what_example_data_writes():
    from trials.external_example import gbsg2_external_control_example

    trial, external = gbsg2_external_control_example()
    shipped_trial = pd.read_csv(PROTOCOLS / "data" / "gbsg2_single_arm.csv")
    shipped_external = pd.read_csv(PROTOCOLS / "data" / "gbsg2_external_registry.csv")
    pd.testing.assert_frame_equal(shipped_trial, trial, check_dtype=False)
    pd.testing.assert_frame_equal(shipped_external, external, check_dtype=False)
    assert len(trial) == 60
    assert len(external) == 440


def test_shipped_example_runs(rng):
    from trials.external_run import run_external_control
    from trials.validation import load_protocol

    protocol = load_protocol(EXAMPLE)
    section = protocol.external_control.model_copy(update={"synthetic_control": None})
    run = run_external_control(section, EXAMPLE.parent, n_resamples=0)
    a = run.analysis
    assert a.balance.max_abs_smd_after < 0.1 < a.balance.max_abs_smd_before
    assert 20 < a.weights.ess_external < 413
    assert a.effect.n_trial == 60
    assert a.effect.n_external == 413
