"""Tests of analysis.logrank against lifelines, statsmodels and hand computation.

References: ``lifelines.statistics.logrank_test`` (unstratified chi-squared and p-value),
``statsmodels.duration.survfunc.survdiff`` (stratified and unstratified chi-squared), and the
score at 0 of statsmodels' Breslow Cox model ``PHReg(ties="breslow")``, which equals the
signed log-rank ``O - E`` (Cox 1972), for the sign of ``z``.  All are computed here, replicate
by replicate, on the same simulated data.

The log-rank test at a calendar cut-off (analysis.logrank_looks) is checked against the
censoring rule written out directly (:func:`reference_censoring`) followed by
``logrank_test``, bit for bit, and against lifelines on single trials.
"""

from __future__ import annotations

import numpy as np
import pytest
from lifelines.statistics import logrank_test as lifelines_logrank
from statsmodels.duration.hazard_regression import PHReg
from statsmodels.duration.survfunc import survdiff

from analysis.logrank import LogrankResult, logrank_test
from analysis.logrank_looks import LogrankLooks, administrative_censoring

RTOL = 1e-8


def simulate(
    seed: int, n_rep: int = 6, n_pat: int = 120, ties: bool = False, n_strata: int = 0
) -> dict[str, np.ndarray]:
    """Two-arm exponential survival with censoring; invalid patients hold garbage times."""
    rng = np.random.default_rng(seed)
    group = rng.random((n_rep, n_pat)) < 0.5
    strata = rng.integers(0, max(n_strata, 1), size=(n_rep, n_pat))
    hazard = np.where(group, 0.7, 1.0) * (1.0 + 0.5 * strata)
    event_time = rng.exponential(1.0 / hazard)
    censor_time = rng.uniform(0.5, 3.0, size=(n_rep, n_pat))
    time = np.minimum(event_time, censor_time)
    if ties:
        time = np.ceil(time * 4.0)  # quarter units: many ties, events and censorings mixed
    event = event_time <= censor_time
    valid = rng.random((n_rep, n_pat)) < 0.85
    time = np.where(valid, time, np.nan)
    data = {"time": time, "event": event, "group": group, "valid": valid}
    if n_strata:
        data["strata"] = strata
    return data


def replicate(data: dict[str, np.ndarray], r: int) -> dict[str, np.ndarray]:
    """The valid patients of replicate ``r``, as 1-D arrays."""
    keep = data["valid"][r]
    return {k: v[r][keep] for k, v in data.items() if k != "valid"}


def breslow_score_at_zero(one: dict[str, np.ndarray]) -> float:
    """Score of the Breslow Cox partial likelihood at beta = 0 (= log-rank O - E)."""
    model = PHReg(
        one["time"],
        one["group"].astype(float)[:, None],
        status=one["event"].astype(float),
        ties="breslow",
        strata=one.get("strata"),
    )
    return float(model.score(np.zeros(1))[0])


@pytest.mark.parametrize("ties", [False, True])
def test_unstratified_matches_lifelines_and_statsmodels(ties: bool) -> None:
    data = simulate(seed=1, ties=ties)
    res = logrank_test(data["time"], data["event"], data["group"], valid=data["valid"])
    assert isinstance(res, LogrankResult)
    assert res.z.shape == (6,)
    for r in range(6):
        one = replicate(data, r)
        exp, ctl = one["group"], ~one["group"]
        ref = lifelines_logrank(
            one["time"][exp], one["time"][ctl], one["event"][exp], one["event"][ctl]
        )
        np.testing.assert_allclose(res.chi2[r], ref.test_statistic, rtol=RTOL)
        np.testing.assert_allclose(res.p_value[r], ref.p_value, rtol=RTOL)
        chi2, p_value = survdiff(one["time"], one["event"].astype(float), one["group"].astype(int))
        np.testing.assert_allclose(res.chi2[r], chi2, rtol=RTOL)
        np.testing.assert_allclose(res.p_value[r], p_value, rtol=RTOL)
        np.testing.assert_allclose(
            res.observed_minus_expected[r], breslow_score_at_zero(one), rtol=RTOL
        )
        assert res.events[r] == one["event"].sum()
    # The derived fields follow from O - E and V.
    np.testing.assert_allclose(res.z, res.observed_minus_expected / np.sqrt(res.variance))
    np.testing.assert_allclose(res.log_hr, res.observed_minus_expected / res.variance)
    np.testing.assert_allclose(res.se_log_hr, 1.0 / np.sqrt(res.variance))


@pytest.mark.parametrize("ties", [False, True])
def test_stratified_matches_statsmodels_survdiff(ties: bool) -> None:
    data = simulate(seed=2, ties=ties, n_strata=3)
    res = logrank_test(
        data["time"], data["event"], data["group"], valid=data["valid"], strata=data["strata"]
    )
    for r in range(6):
        one = replicate(data, r)
        chi2, p_value = survdiff(
            one["time"], one["event"].astype(float), one["group"].astype(int), strata=one["strata"]
        )
        np.testing.assert_allclose(res.chi2[r], chi2, rtol=RTOL)
        np.testing.assert_allclose(res.p_value[r], p_value, rtol=RTOL)
        np.testing.assert_allclose(
            res.observed_minus_expected[r], breslow_score_at_zero(one), rtol=RTOL
        )


def test_hand_computed_example_with_ties() -> None:
    # Distinct event times 1, 2, 3, 4 (the censoring at 2 ties with the event at 2 and is
    # still at risk there):
    #   t=1: n=6, n1=3, d=1 -> E=1/2,  V=1/4
    #   t=2: n=5, n1=3, d=1 -> E=3/5,  V=6/25
    #   t=3: n=3, n1=2, d=1 -> E=2/3,  V=2/9
    #   t=4: n=2, n1=2, d=1 -> E=1,    V=0
    # O = 1 (the event at 4).
    time = np.array([1.0, 2.0, 2.0, 3.0, 4.0, 5.0])
    event = np.array([True, True, False, True, True, False])
    group = np.array([False, False, True, False, True, True])
    res = logrank_test(time, event, group)
    o_minus_e = 1.0 - (1 / 2 + 3 / 5 + 2 / 3 + 1)
    variance = 1 / 4 + 6 / 25 + 2 / 9
    np.testing.assert_allclose(res.observed_minus_expected, o_minus_e, rtol=1e-14)
    np.testing.assert_allclose(res.variance, variance, rtol=1e-14)
    np.testing.assert_allclose(res.z, o_minus_e / np.sqrt(variance), rtol=1e-14)
    assert res.z < 0  # fewer experimental events than expected
    assert res.events == 4


def test_tied_events_use_the_hypergeometric_variance() -> None:
    # Two events at time 1 among 4 at risk (2 per arm): V = 2 * 1/2 * 1/2 * (4-2)/(4-1).
    time = np.array([1.0, 1.0, 2.0, 2.0])
    event = np.array([True, True, False, False])
    group = np.array([True, False, True, False])
    res = logrank_test(time, event, group)
    np.testing.assert_allclose(res.variance, 2 * 0.25 * 2 / 3, rtol=1e-14)
    assert res.observed_minus_expected == 0.0


@pytest.mark.parametrize("ties", [False, True])  # the scan has a path for untied times
def test_valid_mask_equals_dropping_the_patients(ties: bool) -> None:
    data = simulate(seed=3, ties=ties, n_strata=2)
    full = logrank_test(
        data["time"], data["event"], data["group"], valid=data["valid"], strata=data["strata"]
    )
    for r in range(6):
        one = replicate(data, r)
        single = logrank_test(one["time"], one["event"], one["group"], strata=one["strata"])
        for field in ("observed_minus_expected", "variance", "z", "log_hr", "se_log_hr"):
            np.testing.assert_allclose(getattr(single, field), getattr(full, field)[r], rtol=1e-12)
        assert single.events == full.events[r]


def test_invalid_patients_are_ignored_whatever_their_values() -> None:
    data = simulate(seed=4)
    base = logrank_test(data["time"], data["event"], data["group"], valid=data["valid"])
    rng = np.random.default_rng(40)
    garbage = rng.normal(size=data["time"].shape) * 1e6  # negative and huge times
    time = np.where(data["valid"], data["time"], garbage)
    event = np.where(data["valid"], data["event"], True)
    other = logrank_test(time, event, data["group"], valid=data["valid"])
    np.testing.assert_array_equal(other.z, base.z)
    np.testing.assert_array_equal(other.events, base.events)


def test_one_trial_input_returns_scalars() -> None:
    data = simulate(seed=5, n_rep=3)
    res = logrank_test(data["time"], data["event"], data["group"], valid=data["valid"])
    one = logrank_test(data["time"][1], data["event"][1], data["group"][1], data["valid"][1])
    for field in ("observed_minus_expected", "variance", "z", "events", "log_hr", "se_log_hr"):
        value = getattr(one, field)
        assert np.ndim(value) == 0
        np.testing.assert_allclose(value, getattr(res, field)[1], rtol=1e-12)
    assert np.ndim(one.p_value) == 0
    assert one.summary().shape == (1, 8)


@pytest.mark.parametrize(
    "special_times",
    [
        [0.0, -0.0, np.inf, np.inf],  # zero and infinite times (packed sort)
        [1e-300, 1e300],  # too wide a span to pack: the two-sort path
        [0.0, 1e-300, 1e300, np.inf],
    ],
)
def test_extreme_times_match_lifelines(special_times: list[float]) -> None:
    rng = np.random.default_rng(6)
    n_pat = 60
    group = rng.random(n_pat) < 0.5
    event = rng.random(n_pat) < 0.7
    time = np.round(rng.exponential(size=n_pat), 1)  # rounding also gives exact zeros
    time[: len(special_times)] = special_times
    event[:4] = [True, True, False, True]
    res = logrank_test(time, event, group)
    ref = lifelines_logrank(time[group], time[~group], event[group], event[~group])
    np.testing.assert_allclose(res.chi2, ref.test_statistic, rtol=RTOL)
    positive_zero = np.where(time == 0.0, 0.0, time)  # -0.0 is the same time as 0.0
    assert logrank_test(positive_zero, event, group).z == res.z


def test_two_sort_path_equals_packed_sort(monkeypatch: pytest.MonkeyPatch) -> None:
    from analysis import logrank

    data = simulate(seed=9, ties=True, n_strata=2)
    args = (data["time"], data["event"], data["group"], data["valid"], data["strata"])
    packed = logrank_test(*args)
    monkeypatch.setattr(logrank._RiskSetScan, "_pack", lambda self, *a: False)
    two_sorts = logrank_test(*args)
    np.testing.assert_allclose(two_sorts.z, packed.z, rtol=1e-13)
    np.testing.assert_allclose(two_sorts.variance, packed.variance, rtol=1e-13)


def test_no_events_gives_nan_statistics() -> None:
    time = np.array([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]])
    event = np.array([[False] * 4, [True, False, True, False]])
    group = np.array([[True, False, True, False]] * 2)
    res = logrank_test(time, event, group)
    assert res.events[0] == 0
    assert res.observed_minus_expected[0] == 0.0
    assert res.variance[0] == 0.0
    assert np.isnan(res.z[0])
    assert np.isnan(res.log_hr[0])
    assert np.isinf(res.se_log_hr[0])
    assert np.isnan(res.chi2[0])
    assert np.isnan(res.p_value[0])
    assert np.isfinite(res.z[1])


def test_only_one_arm_at_risk_gives_zero_variance() -> None:
    # Every event occurs when only experimental patients remain at risk.
    time = np.array([1.0, 2.0, 3.0, 4.0])
    event = np.array([False, False, True, True])
    group = np.array([False, False, True, True])
    res = logrank_test(time, event, group)
    assert res.variance == 0.0
    assert np.isnan(res.z)


def test_summary_has_one_row_per_replicate() -> None:
    data = simulate(seed=7, n_rep=4)
    summary = logrank_test(data["time"], data["event"], data["group"], data["valid"]).summary()
    assert list(summary.columns) == [
        "observed_minus_expected",
        "variance",
        "events",
        "z",
        "chi2",
        "p_value",
        "log_hr",
        "se_log_hr",
    ]
    assert summary.index.name == "replicate"
    assert len(summary) == 4


@pytest.mark.parametrize("ties", [False, True])
def test_many_replicates_in_several_blocks(ties: bool) -> None:
    # More records than one block of the scan: every block must land on its replicates.
    rng = np.random.default_rng(8)
    n_rep, n_pat = 700, 200
    time = rng.exponential(size=(n_rep, n_pat)) * 10
    if ties:
        time = np.ceil(time)
    event = rng.random((n_rep, n_pat)) < 0.6
    group = rng.random((n_rep, n_pat)) < 0.5
    valid = rng.random((n_rep, n_pat)) < 0.9
    res = logrank_test(time, event, group, valid)
    for r in (0, 327, 328, 699):
        single = logrank_test(time[r], event[r], group[r], valid[r])
        np.testing.assert_allclose(single.z, res.z[r], rtol=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"event": np.ones((2, 3), dtype=bool)}, r"event has shape \(2, 3\)"),
        ({"time": -np.ones((2, 4))}, r"time must be >= 0 .* time\[0, 0\] = -1.0"),
        ({"time": np.full((2, 4), np.nan)}, r"time must be >= 0 \(not nan\)"),
        ({"time": np.ones((2, 4, 1))}, r"1-D \(one trial\) or 2-D"),
        ({"strata": -np.ones((2, 4), dtype=int)}, "strata must be integer codes >= 0"),
    ],
)
def test_bad_input_is_rejected_with_a_message(kwargs: dict, message: str) -> None:
    args = {
        "time": np.ones((2, 4)),
        "event": np.ones((2, 4), dtype=bool),
        "group": np.array([[True, False] * 2] * 2),
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        logrank_test(**args)


# ---------------------------------------------------------- log-rank at a calendar cut-off


def reference_censoring(time, censor, entry, cutoff, max_follow_up=np.inf):
    """Administrative censoring at a cut-off, the rule written out with a select: an event
    before the censoring and by the cut-off on the calendar scale (and within the follow-up
    limit) is observed, anyone else is censored at ``max(min(censor, follow-up), 0)``."""
    horizon = cutoff[:, None] - entry
    enrolled = horizon >= 0
    event = (time <= censor) & (entry + time <= cutoff[:, None])
    if np.isfinite(max_follow_up):
        event &= time <= max_follow_up
        horizon = np.minimum(horizon, max_follow_up)
    event &= enrolled
    return np.where(event, time, np.maximum(np.minimum(censor, horizon), 0.0)), event, enrolled


def staggered_entry(seed: int, n_rep: int = 40, n_pat: int = 150, ties: bool = False):
    """Trials with uniform entry over 12 months, exponential events (5 % never) and
    dropout (5 % never); ``ties``: whole months, so that entries, events and censorings tie.
    Returns entry, time, censor, group and cut-offs: calendar event times (where rounding
    can put ``cutoff - entry`` just short of the event's time), before any entry, after
    everything, and in between."""
    rng = np.random.default_rng(seed)
    shape = (n_rep, n_pat)
    entry = np.sort(rng.uniform(0.0, 12.0, shape), axis=1)
    time = rng.exponential(10.0, shape)
    censor = rng.exponential(40.0, shape)
    time[rng.random(shape) < 0.05] = np.inf
    censor[rng.random(shape) < 0.05] = np.inf
    if ties:
        entry, time, censor = np.floor(entry), np.ceil(time), np.ceil(censor)
    group = rng.random(shape) < 0.5
    calendar = entry + time
    rows = np.arange(n_rep)
    cutoffs = np.stack(
        [
            calendar[rows, rng.integers(0, n_pat, n_rep)],
            np.where(rows % 5 == 0, -1.0, rng.uniform(0.0, 30.0, n_rep)),
            np.where(rows % 7 == 0, 1e6, rng.uniform(5.0, 60.0, n_rep)),
        ],
        axis=1,
    )
    time[3] = np.inf  # a trial without events
    return entry, time, censor, group, cutoffs


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("max_follow_up", [np.inf, 7.0])
def test_administrative_censoring_is_the_rule_bit_for_bit(ties: bool, max_follow_up: float):
    entry, time, censor, _, cutoffs = staggered_entry(1, ties=ties)
    for cutoff in cutoffs.T:
        got = administrative_censoring(time, censor, entry, cutoff, max_follow_up)
        want = reference_censoring(time, censor, entry, cutoff, max_follow_up)
        np.testing.assert_array_equal(got[0].view(np.uint64), want[0].view(np.uint64))
        np.testing.assert_array_equal(got[1], want[1])
        np.testing.assert_array_equal(got[2], want[2])
    # the rounding case: events by the cut-off whose follow-up there is short of their time
    _, event, _ = reference_censoring(time, censor, entry, cutoffs[:, 0])
    assert (event & (cutoffs[:, :1] - entry < time)).any() or ties


def logrank_at_cutoff_reference(time, censor, entry, cutoff, group, valid, rows):
    """``logrank_test`` on the data censored at the cut-off: the replicates ``rows`` and
    the columns up to the last patient entered by the cut-off in any of them."""
    t, event, included = reference_censoring(time[rows], censor[rows], entry[rows], cutoff[rows])
    if valid is not None:
        included &= valid[rows]
    n_cols = int(np.count_nonzero(entry[rows] <= cutoff[rows, None], axis=1).max())
    cols = slice(0, n_cols)
    return logrank_test(t[:, cols], event[:, cols], group[rows][:, cols], included[:, cols])


@pytest.mark.parametrize("ties", [False, True])
def test_logrank_at_looks_equals_logrank_test_on_the_censored_data(ties: bool) -> None:
    entry, time, censor, group, cutoffs = staggered_entry(2, ties=ties)
    time[5, :3] = [1e-300, 1e300, 0.0]  # a span too wide to pack: the scan's two sorts
    rng = np.random.default_rng(3)
    valid = rng.random(time.shape) < 0.8
    looks = LogrankLooks(time, censor, entry)
    every = np.arange(time.shape[0])
    some = rng.permutation(time.shape[0])[:25]
    for cutoff in cutoffs.T:
        for v in (None, valid):
            for rows in (None, some):
                got = looks.test(cutoff, group, v, rows)
                want = logrank_at_cutoff_reference(
                    time, censor, entry, cutoff, group, v, every if rows is None else rows
                )
                for name in LogrankResult.__dataclass_fields__:
                    np.testing.assert_array_equal(getattr(got, name), getattr(want, name))
    assert looks.test(cutoffs[:, 0], group).events[3] == 0  # no events: nan statistics
    assert np.isnan(looks.test(cutoffs[:, 0], group).z[3])


def test_logrank_at_a_cutoff_matches_lifelines_on_single_trials() -> None:
    entry, time, censor, group, cutoffs = staggered_entry(4, n_rep=6, n_pat=200)
    for r in range(6):
        looks = LogrankLooks(time[r], censor[r], entry[r])  # one trial: 1-D
        for cutoff in cutoffs[r, [0, 2]]:
            res = looks.test(cutoff, group[r])
            t, event, included = reference_censoring(
                time[r : r + 1], censor[r : r + 1], entry[r : r + 1], np.array([cutoff])
            )
            keep = included[0]
            g, t, event = group[r][keep], t[0][keep], event[0][keep]
            assert res.events == event.sum()
            if r == 3:  # no events
                assert np.isnan(res.chi2)
                continue
            ref = lifelines_logrank(t[g], t[~g], event[g], event[~g])
            np.testing.assert_allclose(res.chi2, ref.test_statistic, rtol=RTOL)
            np.testing.assert_allclose(res.p_value, ref.p_value, rtol=1e-6)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"time": -np.ones((2, 4))}, r"time and censor must be >= 0 .* time\[0, 0\] = -1.0"),
        ({"censor": np.full((2, 4), np.nan)}, r"censor\[0, 0\] = nan"),
        ({"entry": np.array([[0.0, 2.0, 1.0, 3.0]] * 2)}, "entry must ascend"),
        ({"censor": np.ones((2, 3))}, r"censor has shape \(2, 3\)"),
        ({"cutoff": np.ones(3)}, "cutoff has 3 values; expected one per replicate"),
        ({"group": np.ones((2, 5), dtype=bool)}, r"group has shape \(2, 5\)"),
    ],
)
def test_logrank_looks_rejects_bad_input_with_a_message(change: dict, message: str) -> None:
    args = {
        "time": np.ones((2, 4)),
        "censor": np.full((2, 4), 2.0),
        "entry": np.array([[0.0, 1.0, 2.0, 3.0]] * 2),
        "cutoff": np.array([3.0, 4.0]),
        "group": np.array([[True, False] * 2] * 2),
    }
    args.update(change)
    with pytest.raises(ValueError, match=message):
        LogrankLooks(args["time"], args["censor"], args["entry"]).test(
            args["cutoff"], args["group"]
        )
    with pytest.raises(ValueError, match="rows selects replicates"):
        LogrankLooks(np.ones(4), np.ones(4), np.arange(4.0)).test(1.0, np.ones(4, bool), rows=[0])
