"""Validation of virtual cohorts: hand computations on small inputs and closed situations.

References: SDMetrics' definitions (KSComplement = 1 - scipy's two-sample KS statistic,
TVComplement, CorrelationSimilarity, ContingencySimilarity), computed by hand below;
Kaplan–Meier curves of small samples by hand; DCR/NNDR and the membership AUC by brute force
(pairwise distances, Mann–Whitney form of the AUC); the utility C-index from lifelines
directly. Monte Carlo tolerances: with ``n`` rows per set, the null SE of an AUC is about
``sqrt((n1 + n2 + 1) / (12 n1 n2))`` (0.026 for 420 vs 180 rows); limits sit at 4 SE or more.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter
from lifelines.utils import concordance_index
from scipy import stats

from generators.fidelity import column_shape_score, pair_trend_score, total_variation_distance
from generators.holdout import split_holdout
from generators.privacy import similarity_filter
from generators.validation import CohortValidation, survival_agreement, validate_cohort
from trials.exceptions import DataError, InsilicoWarning

IQR_TO_SD = 1.3489795


def cohort(g: np.random.Generator, n: int, shift: float = 0.0) -> pd.DataFrame:
    """Correlated covariates, a categorical one, a survival endpoint and a binary response."""
    z = g.standard_normal((n, 3))
    age = 60 + 10 * (z[:, 0] + shift)
    bmi = 27 + 4 * (0.6 * z[:, 0] + 0.8 * z[:, 1])
    stage = np.where(z[:, 2] > 0.5, "III", np.where(z[:, 2] > -0.5, "II", "I"))
    lp = 0.04 * (age - 60) + 0.7 * (stage == "III")
    t = g.exponential(12 * np.exp(-lp))
    c = g.uniform(0, 30, n)
    response = (g.uniform(size=n) < 1 / (1 + np.exp(-(0.3 * (bmi - 27) - 0.5)))).astype(int)
    return pd.DataFrame(
        {
            "age": age,
            "bmi": bmi,
            "stage": stage,
            "response": response,
            "time": np.minimum(t, c),
            "event": (t <= c).astype(int),
        }
    )


def run(real, virtual, **kwargs) -> CohortValidation:
    kwargs.setdefault("time", "time")
    kwargs.setdefault("event", "event")
    return validate_cohort(real, virtual, **kwargs)


@pytest.fixture(scope="module")
def same():
    """Real and virtual drawn independently from the same distribution."""
    g = np.random.default_rng(11)
    real, virtual = cohort(g, 600), cohort(g, 600)
    return real, virtual, run(real, virtual, outcome="response", rng=3)


# -- building blocks by hand --------------------------------------------------------------


def test_column_shape_is_one_minus_ks_statistic_exactly(rng):
    real, virtual = rng.normal(size=13), rng.normal(0.5, 2.0, size=8)
    expected = 1.0 - stats.ks_2samp(real, virtual).statistic
    assert column_shape_score(real, virtual, categorical=False) == expected
    # by hand: disjoint supports give D = 1; below, |F_real - F_virtual| peaks at 1/3
    assert column_shape_score([1, 2, 3], [4, 5, 6, 3.5], categorical=False) == 0.0
    assert column_shape_score([1, 2, 3], [2.5, 3.5, 0.5], categorical=False) == pytest.approx(2 / 3)


def test_total_variation_distance_hand_example():
    # p = (1/2, 1/4, 1/4, 0), q = (1/4, 3/4, 0, 0) over a, b, c: TVD = (1/4 + 1/2 + 1/4) / 2
    real, virtual = ["a", "a", "b", "c"], ["a", "b", "b", "b"]
    assert total_variation_distance(real, virtual) == pytest.approx(0.5)
    assert column_shape_score(real, virtual, categorical=True) == pytest.approx(0.5)
    assert total_variation_distance(["x", "y"], ["y", "x", "x", "y"]) == 0.0
    assert total_variation_distance(["x"], ["y"]) == 1.0


def test_pair_trends_by_hand():
    real = pd.DataFrame(
        {
            "u": [1.0, 2, 3, 4, 5],
            "w": [2.0, 1, 4, 3, 6],
            "g": ["a", "a", "b", "b", "b"],
            "h": ["x", "y", "x", "y", "y"],
        }
    )
    virtual = pd.DataFrame(
        {
            "u": [5.0, 4, 3, 2, 1, 0],
            "w": [1.0, 2, 3, 4, 5, 6],
            "g": ["a", "b", "a", "b", "a", "b"],
            "h": ["x", "x", "x", "y", "y", "y"],
        }
    )
    r_real = 10 / math.sqrt(10 * 14.8)  # sums of cross-products and squares about the means
    assert r_real == pytest.approx(np.corrcoef(real["u"], real["w"])[0, 1])
    expected = 1 - abs(r_real - (-1.0)) / 2  # virtual u, w perfectly anti-correlated
    assert pair_trend_score(real, virtual, ("u", "w")) == pytest.approx(expected)
    # (g, h) cells ax, ay, bx, by: real (1, 1, 1, 2)/5, virtual (2, 1, 1, 2)/6
    p, q = np.array([1, 1, 1, 2]) / 5, np.array([2, 1, 1, 2]) / 6
    tvd = 0.5 * np.abs(p - q).sum()
    assert pair_trend_score(real, virtual, ("g", "h"), categorical=["g", "h"]) == pytest.approx(
        1 - tvd
    )
    # mixed: u binned at the real quintiles 1.8, 2.6, 3.4, 4.2 -> real bins 0..4, virtual
    # u = 5, 4, 3, 2, 1, 0 -> bins 4, 3, 2, 1, 0, 0; cells (bin, g)
    real_cells = [(0, "a"), (1, "a"), (2, "b"), (3, "b"), (4, "b")]
    virtual_cells = [(4, "a"), (3, "b"), (2, "a"), (1, "b"), (0, "a"), (0, "b")]
    keys = set(real_cells) | set(virtual_cells)
    tvd = 0.5 * sum(abs(real_cells.count(k) / 5 - virtual_cells.count(k) / 6) for k in keys)
    assert pair_trend_score(real, virtual, ("u", "g"), categorical=["g"]) == pytest.approx(1 - tvd)


def test_kaplan_meier_differences_by_hand():
    # real events at 1, 2, 3, 4 (each x5); virtual at 2, 4, 6, 8. Common follow-up 4.
    # |S_r - S_v| = 0 on [0,1), 1/4 on [1,2), 1/4 on [2,3), 1/2 on [3,4), 1/2 at 4
    real = pd.DataFrame({"time": np.repeat([1.0, 2, 3, 4], 5), "event": 1})
    virtual = pd.DataFrame({"time": np.repeat([2.0, 4, 6, 8], 5), "event": 1})
    result = run(real, virtual, rng=1)
    assert result.km_follow_up == 4.0
    assert result.km_max_difference == pytest.approx(0.5)
    assert result.km_integrated_difference == pytest.approx(0.25 + 0.25 + 0.5)
    assert result.hazard_ratio < 1.0  # virtual patients live longer
    assert result.utility == ()  # no covariates


def test_identical_survival_columns_give_zero_km_difference(rng):
    real = cohort(rng, 300)
    virtual = cohort(rng, 300)
    virtual[["time", "event"]] = real[["time", "event"]].to_numpy()
    result = run(real, virtual, rng=rng)
    assert result.km_max_difference == 0.0
    assert result.km_integrated_difference == 0.0
    assert result.hazard_ratio == pytest.approx(1.0, abs=1e-6)
    assert result.hazard_ratio_lower < 1.0 < result.hazard_ratio_upper


def test_distances_by_hand():
    # training rows 0-3, holdout rows 4-5 (given); robust scale of x in training: IQR/1.349
    real = pd.DataFrame({"x": [0.0, 1, 2, 3, 10, 11], "g": ["a", "a", "b", "b", "a", "b"]})
    virtual = pd.DataFrame({"x": [2.5, 0.0, 1.0, 20.0], "g": ["a", "a", "b", "a"]})
    s = (2.25 - 0.75) / IQR_TO_SD
    result = validate_cohort(real, virtual, holdout=[False] * 4 + [True] * 2, rng=0)
    np.testing.assert_array_equal(result.training_rows, [0, 1, 2, 3])

    def dist(a, b):  # Euclidean on x / s plus 1 per categorical mismatch (squared)
        return math.sqrt(((a[0] - b[0]) / s) ** 2 + (a[1] != b[1]))

    train = list(real.iloc[:4].itertuples(index=False))
    hold = list(real.iloc[4:].itertuples(index=False))
    virt = list(virtual.itertuples(index=False))
    d_virtual = np.sort([[dist(v, t) for t in train] for v in virt], axis=1)
    d_holdout = np.sort([[dist(h, t) for t in train] for h in hold], axis=1)
    np.testing.assert_allclose(result.dcr, d_virtual[:, 0])
    assert result.dcr[1] == 0.0
    assert result.n_exact_copies == 1
    threshold = np.quantile(d_holdout[:, 0], 0.05)
    assert result.dcr_threshold == pytest.approx(threshold)
    assert result.share_close_virtual == pytest.approx(np.mean(d_virtual[:, 0] < threshold))
    nndr = np.median(d_virtual[:, 0] / d_virtual[:, 1])
    assert result.nndr_virtual_median == pytest.approx(nndr)
    # membership: score = -(distance of each real row to its nearest virtual row)
    member = np.array([min(dist(t, v) for v in virt) for t in train])
    non_member = np.array([min(dist(h, v) for v in virt) for h in hold])
    wins = (-member[:, None] > -non_member[None, :]) + 0.5 * (member[:, None] == non_member)
    assert result.membership_auc == pytest.approx(wins.mean())


# -- closed situations --------------------------------------------------------------------


def test_same_distribution_is_undetectable_and_faithful(same):
    _, _, result = same
    for name in ("logistic", "gradient_boosting"):
        assert result.detection_auc[name] < 0.6, name
        assert result.detection_auc_se[name] < 0.05
    assert result.fidelity_score > 0.9
    assert abs(result.fidelity_score - result.reference_fidelity_score) < 0.05
    assert result.km_max_difference < 0.1
    assert 0.8 < result.hazard_ratio < 1.25
    # privacy: virtual rows are as far from training rows as new real patients are
    assert abs(result.membership_auc - 0.5) < 0.1
    assert result.share_close_virtual < 0.12
    assert result.n_exact_copies == 0
    assert result.dcr_virtual_median == pytest.approx(result.dcr_holdout_median, rel=0.2)
    # utility: train on virtual about as good as train on real
    by_metric = {u.metric: u for u in result.utility}
    assert set(by_metric) == {"c_index", "roc_auc"}
    for u in by_metric.values():
        assert 0.85 < u.ratio < 1.15, u


def test_utility_c_index_matches_lifelines(same):
    real, _, result = same
    training = real.iloc[result.training_rows]
    holdout = real.drop(index=real.index[result.training_rows])
    levels = pd.unique(training["stage"])  # dummies for all but the first level seen
    design = training[["age", "bmi"]].assign(
        **{f"stage={v}": (training["stage"] == v).astype(float) for v in levels[1:]}
    )
    cph = CoxPHFitter(penalizer=0.01).fit(
        design.assign(T=training["time"], E=training["event"]), "T", "E"
    )
    x_holdout = pd.DataFrame(
        {
            c: (holdout["stage"] == c[6:]).astype(float) if c.startswith("stage=") else holdout[c]
            for c in design.columns
        }
    )
    expected = concordance_index(
        holdout["time"], -cph.predict_partial_hazard(x_holdout), holdout["event"]
    )
    (c_index,) = [u for u in result.utility if u.metric == "c_index"]
    assert c_index.trained_on_real == pytest.approx(expected)


def test_shifted_cohort_is_detected_and_less_faithful(same):
    real, _, reference = same
    virtual = cohort(np.random.default_rng(12), 600, shift=1.0)
    result = run(real, virtual, rng=3)
    assert min(result.detection_auc.values()) > 0.75
    assert result.fidelity_score < result.reference_fidelity_score - 0.05
    assert result.fidelity_score < reference.fidelity_score
    assert not result.fidelity_at_least_holdout
    assert result.column_shapes["age"] < 0.7
    assert result.column_shapes["stage"] > 0.9


def test_copied_row_is_flagged_and_filtered(same):
    real, virtual, _ = same
    copied = split_holdout(real, rng=3)[0].iloc[[0]].set_axis([9999])  # a training row
    virtual = pd.concat([virtual.iloc[:300], copied])
    result = run(real, virtual, rng=3)
    assert result.dcr[-1] == 0.0
    assert result.n_exact_copies == 1
    assert result.dcr[-1] < result.dcr_threshold  # flagged as too close
    filtered, n_dropped = similarity_filter(real, virtual, rng=3)
    assert 9999 not in filtered.index
    assert n_dropped >= 1
    assert len(filtered) == len(virtual) - n_dropped
    # the default threshold is validate_cohort's; exact copies only with a tiny threshold
    again, n_again = similarity_filter(real, virtual, result.dcr_threshold, rng=3)
    assert n_again == n_dropped
    only_copies, n_copies = similarity_filter(real, virtual, 1e-12)
    assert n_copies == 1
    assert list(only_copies.index) == list(virtual.index[:-1])


def test_membership_attack_detects_a_copy_of_training_rows(same):
    real, _, _ = same
    training, _ = split_holdout(real, holdout_fraction=0.3, rng=7)
    result = run(real, training.reset_index(drop=True), rng=7)
    np.testing.assert_array_equal(real.index[result.training_rows], training.index)
    assert result.membership_auc > 0.95
    assert result.n_exact_copies == len(training)
    assert result.share_close_virtual == 1.0


def test_summary_and_json(same):
    _, _, result = same
    table = result.summary()
    assert table.loc[("detection", "auc logistic"), "reference"] == 0.5
    assert table.loc[("fidelity", "fidelity_score"), "value"] == result.fidelity_score
    assert list(table.columns) == ["value", "reference", "reference_kind"]
    content = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert content["membership_auc"] == result.membership_auc
    assert content["pair_trends"][0].keys() == {"column_1", "column_2", "score"}
    assert "dcr" not in content


def test_seeded_result_is_reproducible():
    g = np.random.default_rng(5)
    real, virtual = cohort(g, 120), cohort(g, 100)
    first = validate_cohort(real, virtual, categorical=["stage", "response"], rng=4)
    second = validate_cohort(real, virtual, categorical=["stage", "response"], rng=4)
    assert first == second
    assert first.categorical == ("stage", "response")


# -- errors -------------------------------------------------------------------------------


def test_input_errors():
    real = pd.DataFrame({"x": [1.0, 2, 3, 4, 5, 6], "t": 1.0, "e": 1})
    with pytest.raises(DataError, match=r"virtual lacks \['t'\]"):
        validate_cohort(real, real.drop(columns="t"))
    with pytest.raises(DataError, match="give both time and event"):
        validate_cohort(real, real, time="t")
    with pytest.raises(DataError, match="column 'x' has missing values at rows \\[2\\]"):
        validate_cohort(real, real.assign(x=[1.0, 2, np.nan, 4, 5, 6]))
    with pytest.raises(ValueError, match="holdout_fraction must be in"):
        validate_cohort(real, real, holdout_fraction=1.0)
    with pytest.raises(DataError, match="outcome column 'x' must take two values"):
        validate_cohort(real, real, outcome="x")
    with pytest.raises(
        DataError, match=r"virtual event column 'e' must hold 0/1 or bool; rows \[1\]"
    ):
        validate_cohort(real, real.assign(e=[1, 2, 0, 1, 1, 0]), time="t", event="e")
    with pytest.raises(DataError, match=r"columns \['g'\] are not numeric"):
        validate_cohort(real.assign(g="a"), real.assign(g="b"), categorical=[])
    with pytest.raises(ValueError, match="non-negative distance"):
        similarity_filter(real, real, -1.0)


def test_an_uncomputable_quantity_warns_and_is_recorded(same):
    real, virtual, _ = same
    virtual = virtual.assign(response=0)  # nobody responds: no model can be fitted
    with pytest.warns(InsilicoWarning, match="outcome takes one value") as caught:
        result = run(real, virtual, outcome="response", rng=3)
    assert caught[0].filename == __file__
    (roc,) = [u for u in result.utility if u.metric == "roc_auc"]
    assert math.isnan(roc.trained_on_virtual)
    assert not math.isnan(roc.trained_on_real)
    assert result.notes == (str(caught[0].message),)
    assert result.to_dict()["utility"][1]["trained_on_virtual"] is None


def test_a_memorizing_generator_is_not_flattered_when_the_holdout_is_known():
    """Virtual rows that copy the training rows: against the unseen holdout the fidelity
    is that of real training data (the reference), not the perfect score of a comparison
    with the rows it copied, and the copies are flagged."""
    g = np.random.default_rng(4)
    real = pd.DataFrame({"age": g.normal(60, 10, 400), "sex": g.choice(["F", "M"], 400)})
    holdout = np.zeros(400, dtype=bool)
    holdout[200:] = True
    copies = real.iloc[:200].reset_index(drop=True)
    result = validate_cohort(real, copies, holdout=holdout, rng=1)
    assert result.fidelity_score == pytest.approx(result.reference_fidelity_score, abs=1e-12)
    assert result.n_exact_copies == 200
    assert result.share_close_virtual == 1.0


def test_share_close_counts_ties_at_the_threshold_as_a_mid_distribution():
    """Discrete data where many real rows tie: the 5th-percentile distance is 0; the
    holdout's share is then exactly 0.05 and virtual rows at distance 0 count with the
    same fraction (not as 0, as a strict inequality would)."""
    g = np.random.default_rng(5)
    real = pd.DataFrame({"grade": g.integers(1, 4, 600).astype(float),
                         "sex": g.choice(["F", "M"], 600)})
    virtual = pd.DataFrame({"grade": g.integers(1, 4, 600).astype(float),
                            "sex": g.choice(["F", "M"], 600)})
    result = validate_cohort(real, virtual, rng=3)
    assert result.dcr_threshold == 0.0
    assert result.share_close_holdout == pytest.approx(0.05, abs=1e-12)
    # every virtual row has an identical real row, as every holdout row does
    assert result.share_close_virtual == pytest.approx(0.05, abs=1e-12)


def test_similarity_filter_drops_exact_copies_even_at_a_zero_threshold():
    from generators.privacy import similarity_filter

    g = np.random.default_rng(6)
    real = pd.DataFrame({"grade": g.integers(1, 4, 300).astype(float)})
    virtual = pd.DataFrame({"grade": [1.0, 2.0, 2.5]})
    kept, dropped = similarity_filter(real, virtual)
    assert kept["grade"].tolist() == [2.5]
    assert dropped == 2
    kept, dropped = similarity_filter(real, virtual, threshold=0.0)  # explicit: keeps all
    assert dropped == 0


def test_survival_agreement_of_uncensored_virtual_times_with_censored_real_data():
    """Real times exponential (rate 0.1) with uniform censoring on (0, 20), virtual times
    uncensored: from the same exponential, the Kaplan-Meier difference is within the
    sampling error of the real curve and the hazard ratio's interval holds 1; at rate 0.15
    the difference is the closed form max_t |exp(-0.1 t) - exp(-0.15 t)| over the real
    follow-up (at t = log(1.5) / 0.05 = 8.1: 0.148) and the hazard ratio is 1.5."""
    gen = np.random.default_rng(11)
    n = 4000
    event_time, censor = gen.exponential(10.0, n), gen.uniform(0.0, 20.0, n)
    real = pd.DataFrame({"t": np.minimum(event_time, censor), "e": (event_time <= censor) * 1})
    assert 0.3 < 1 - real["e"].mean() < 0.5  # heavily censored
    same = pd.DataFrame({"t": gen.exponential(10.0, n), "e": np.ones(n, dtype=int)})
    result = survival_agreement(real, same, time="t", event="e")
    assert result["km_follow_up"] == pytest.approx(real["t"].max())
    assert result["km_max_difference"] < 0.03
    assert result["hazard_ratio_lower"] < 1.0 < result["hazard_ratio_upper"]
    faster = pd.DataFrame({"t": gen.exponential(1 / 0.15, n), "e": np.ones(n, dtype=int)})
    result = survival_agreement(real, faster, time="t", event="e")
    t_star = math.log(1.5) / 0.05
    closed_form = math.exp(-0.1 * t_star) - math.exp(-0.15 * t_star)
    assert result["km_max_difference"] == pytest.approx(closed_form, abs=0.03)
    assert result["hazard_ratio"] == pytest.approx(1.5, rel=0.07)
    with pytest.raises(DataError, match="virtual patients lack the survival columns"):
        survival_agreement(real, same.drop(columns="e"), time="t", event="e")
