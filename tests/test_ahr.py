"""Tests of analysis.ahr against a plain per-trial computation and by simulation.

References:

- ``plain_ahr`` below: a per-trial computation from lifelines' ``KaplanMeierFitter``
  (``event_table``: patients at risk and events of each arm at each time, and
  ``survival_function_``, read just before each time for the left-continuous weight) and
  ``NelsonAalenFitter(nelson_aalen_smoothing=False)`` (``cumulative_hazard_`` increments
  ``d/n``), with a Python loop over the event times for

      theta = sum_j W_j dL1_j / sum_j W_j (dL0_j + dL1_j),   W_j = S0(t_j-) S1(t_j-),
      Var(theta) = B**-2 sum_j (h1_j**2 d1_j / n1_j**2 + h0_j**2 d0_j / n0_j**2),
      h1_j = (1 - theta) W_j + G_j,  h0_j = -theta W_j + G_j,
      G_j = theta C0_j - (1 - theta) C1_j,  C_aj = sum_{k > j} W_k dLa_k,
      se(log AHR) = sqrt(Var(theta)) / (theta (1 - theta));

- closed forms under proportional hazards (AHR = HR whatever the weight) and the null
  (z approximately standard normal), checked by simulation with tolerances from the Monte
  Carlo error.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifelines import KaplanMeierFitter, NelsonAalenFitter

from analysis.ahr import AHRResult, average_hazard_ratio

RTOL = 1e-8


def simulate(
    seed: int, n_rep: int = 4, n_pat: int = 150, ties: bool = False
) -> dict[str, np.ndarray]:
    """Two arms with a delayed effect and censoring; invalid patients hold nan."""
    rng = np.random.default_rng(seed)
    group = rng.random((n_rep, n_pat)) < 0.5
    first = rng.exponential(1.0, size=(n_rep, n_pat))
    late = 0.5 + rng.exponential(np.where(group, 2.0, 1.0))
    event_time = np.where(first < 0.5, first, late)
    censor_time = rng.uniform(0.5, 3.0, size=(n_rep, n_pat))
    time = np.minimum(event_time, censor_time)
    if ties:
        time = np.ceil(time * 5.0) / 5.0  # fifths: many ties, events and censorings mixed
    event = event_time <= censor_time
    valid = rng.random((n_rep, n_pat)) < 0.85
    return {"time": np.where(valid, time, np.nan), "event": event, "group": group, "valid": valid}


def arm_table(time: np.ndarray, event: np.ndarray) -> pd.DataFrame:
    """Per distinct time of one arm: at risk, events, S(t-) and the Nelson-Aalen increment."""
    km = KaplanMeierFitter().fit(time, event)
    na = NelsonAalenFitter(nelson_aalen_smoothing=False).fit(time, event)
    table = km.event_table[["at_risk", "observed"]].astype(float)
    table["s_left"] = km.survival_function_["KM_estimate"].shift(1, fill_value=1.0)
    table["d_lambda"] = na.cumulative_hazard_["NA_estimate"].diff().fillna(0.0)
    return table


def plain_ahr(time, event, group, tau) -> tuple[float, float]:
    """AHR and se(log AHR) of one trial, by the formulas in the module docstring."""
    tables = {a: arm_table(time[group == a], event[group == a]) for a in (0, 1)}
    times = sorted(t for t in np.unique(time[event]) if t <= tau)

    def at(a: int, t: float) -> tuple[float, float, float, float]:
        """n, d, S(t-) and dLambda of arm a at time t (also where t is not in its table)."""
        tab = tables[a]
        if t in tab.index:
            row = tab.loc[t]
            return row["at_risk"], row["observed"], row["s_left"], row["d_lambda"]
        later = tab.index[tab.index > t]
        if len(later) == 0:  # past the arm's last time: nobody at risk
            s_left = KaplanMeierFitter().fit(time[group == a], event[group == a])
            return 0.0, 0.0, float(s_left.survival_function_.iloc[-1, 0]), 0.0
        row = tab.loc[later[0]]  # risk set and S(t-) of the next time of the arm
        return row["at_risk"], 0.0, row["s_left"], 0.0

    rows = []
    for t in times:
        n0, d0, s0, dl0 = at(0, t)
        n1, d1, s1, dl1 = at(1, t)
        rows.append((s0 * s1, n0, d0, dl0, n1, d1, dl1))
    a = sum(w * dl1 for w, _, _, _, _, _, dl1 in rows)
    b = sum(w * (dl0 + dl1) for w, _, _, dl0, _, _, dl1 in rows)
    theta = a / b
    var_num = 0.0
    for j, (w, n0, d0, _, n1, d1, _) in enumerate(rows):
        c0 = sum(wk * dl0k for wk, _, _, dl0k, _, _, _ in rows[j + 1 :])
        c1 = sum(wk * dl1k for wk, _, _, _, _, _, dl1k in rows[j + 1 :])
        g = theta * c0 - (1 - theta) * c1
        if d1:
            var_num += ((1 - theta) * w + g) ** 2 * d1 / n1**2
        if d0:
            var_num += (-theta * w + g) ** 2 * d0 / n0**2
    se = np.sqrt(var_num) / b / (theta * (1 - theta))
    return theta / (1 - theta), se


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("tau", [1.4, np.inf])  # 1.4: a tied event time when ties
def test_matches_plain_lifelines_computation(ties: bool, tau: float) -> None:
    data = simulate(7 if ties else 3, ties=ties)
    res = average_hazard_ratio(**data, tau=tau)
    assert isinstance(res, AHRResult)
    assert res.ahr.shape == (4,)
    for r in range(4):
        v = data["valid"][r]
        args = (data[k][r][v] for k in ("time", "event", "group"))
        ahr, se = plain_ahr(*args, tau=tau)
        np.testing.assert_allclose(res.ahr[r], ahr, rtol=RTOL)
        np.testing.assert_allclose(res.se_log_ahr[r], se, rtol=RTOL)
    np.testing.assert_allclose(res.log_ahr, np.log(res.ahr), rtol=RTOL)
    np.testing.assert_allclose(res.z, res.log_ahr / res.se_log_ahr, rtol=RTOL)
    expected_events = (data["event"] & data["valid"] & (data["time"] <= tau)).sum(axis=1)
    np.testing.assert_array_equal(res.events, expected_events)


def test_one_trial_gives_scalars_and_matches_its_row() -> None:
    data = simulate(11, ties=True)
    full = average_hazard_ratio(**data, tau=2.0)
    one = average_hazard_ratio(**{k: a[2] for k, a in data.items()}, tau=2.0)
    assert np.ndim(one.ahr) == 0
    assert np.ndim(one.z) == 0
    np.testing.assert_allclose(one.ahr, full.ahr[2], rtol=1e-12)
    np.testing.assert_allclose(one.se_log_ahr, full.se_log_ahr[2], rtol=1e-12)
    # Excluded patients' values are ignored: dropping them changes nothing.
    v = data["valid"][2]
    kept = average_hazard_ratio(*(data[k][2][v] for k in ("time", "event", "group")), 2.0)
    np.testing.assert_allclose(kept.ahr, one.ahr, rtol=1e-12)


def test_hand_computed_example() -> None:
    # Control: 1, 2, 3+, 4; experimental: 2, 3, 5, 6+.  Up to tau = 5 the weights
    # S0(t-)S1(t-) are 1, 3/4, 3/8, 1/4, 0 at t = 1, 2, 3, 4, 5, so
    # A = 3/4 * 1/4 + 3/8 * 1/3 = 5/16 and B = 1/4 + 3/4 * 7/12 + 1/8 + 1/4 = 17/16.
    time = np.array([1.0, 2.0, 3.0, 4.0, 2.0, 3.0, 5.0, 6.0])
    event = np.array([True, True, False, True, True, True, True, False])
    group = np.array([False] * 4 + [True] * 4)
    res = average_hazard_ratio(time, event, group, tau=5.0)
    np.testing.assert_allclose(res.theta, 5 / 17, rtol=1e-12)
    np.testing.assert_allclose(res.ahr, 5 / 12, rtol=1e-12)
    lo, hi = res.conf_int(0.9)
    np.testing.assert_allclose(
        np.log([lo, hi]),
        res.log_ahr + np.array([-1, 1]) * 1.6448536269514722 * res.se_log_ahr,
        rtol=1e-12,
    )
    table = res.summary()
    assert list(table.columns[:5]) == ["ahr", "log_ahr", "se_log_ahr", "z", "p_value"]
    assert table.shape[0] == 1
    assert table["tau"].iloc[0] == 5.0


def test_proportional_hazards_estimate_is_the_hazard_ratio(rng) -> None:
    n = 20_000
    group = np.arange(n) % 2 == 0
    time = rng.exponential(np.where(group, 1 / 0.6, 1.0))
    res = average_hazard_ratio(time, np.ones(n, dtype=bool), group, tau=np.inf)
    assert abs(res.log_ahr - np.log(0.6)) < 4 * res.se_log_ahr
    assert res.z < -20


def test_standard_error_matches_the_spread_of_the_estimates(rng) -> None:
    # 2,000 trials of 400 with censoring and HR 0.6: the mean se is the replicate SD of
    # log_ahr.  The sample SD has a relative Monte Carlo error of 1/sqrt(2 R) = 1.6%.
    n_rep, n_pat = 2000, 400
    group = rng.random((n_rep, n_pat)) < 0.5
    event_time = rng.exponential(np.where(group, 1 / 0.6, 1.0))
    censor_time = rng.uniform(0.5, 3.0, size=(n_rep, n_pat))
    time = np.minimum(event_time, censor_time)
    res = average_hazard_ratio(time, event_time <= censor_time, group, tau=2.0)
    sd = np.std(res.log_ahr, ddof=1)
    assert abs(np.mean(res.se_log_ahr) / sd - 1) < 4 / np.sqrt(2 * n_rep) + 0.02
    assert abs(np.mean(res.log_ahr) - np.log(0.6)) < 4 * sd / np.sqrt(n_rep) + 0.01


def test_type_i_error_under_the_null(rng) -> None:
    # H0: the same delayed-then-lower hazard in both arms, censoring; one-sided level 0.025.
    n_rep, n_pat, alpha = 2000, 200, 0.025
    group = rng.random((n_rep, n_pat)) < 0.5
    first = rng.exponential(1.0, size=(n_rep, n_pat))
    event_time = np.where(first < 0.5, first, 0.5 + rng.exponential(2.0, size=(n_rep, n_pat)))
    censor_time = rng.uniform(0.5, 3.0, size=(n_rep, n_pat))
    time = np.minimum(event_time, censor_time)
    res = average_hazard_ratio(time, event_time <= censor_time, group, tau=2.5)
    assert np.isfinite(res.z).all()
    rate = np.mean(res.z < -1.959963984540054)
    mc_se = np.sqrt(alpha * (1 - alpha) / n_rep)
    assert abs(rate - alpha) < 4 * mc_se
    # the two-sided p-value is uniform: its rejection rate at 0.05 is about 0.05
    assert abs(np.mean(res.p_value < 0.05) - 0.05) < 4 * np.sqrt(0.05 * 0.95 / n_rep)


def test_arm_without_events_is_not_tested() -> None:
    time = np.array([1.0, 2.0, 3.0, 1.5, 2.5, 3.5])
    event = np.array([True, True, True, False, False, False])
    group = np.array([False, False, False, True, True, True])
    res = average_hazard_ratio(time, event, group, tau=4.0)
    assert res.ahr == 0.0
    assert res.log_ahr == -np.inf
    assert np.isnan([res.se_log_ahr, res.z, res.p_value]).all()
    none = average_hazard_ratio(time, event, group, tau=0.5)
    assert np.isnan([none.ahr, none.z]).all()
    assert none.events == 0


@pytest.mark.parametrize("tau", [0.0, -1.0, np.nan, "soon", None])
def test_rejects_bad_tau(tau) -> None:
    with pytest.raises(ValueError, match="tau must be a number > 0"):
        average_hazard_ratio([1.0, 2.0], [True, True], [True, False], tau=tau)


def test_rejects_malformed_inputs() -> None:
    with pytest.raises(ValueError, match=r"event has shape \(3,\); expected \(2,\)"):
        average_hazard_ratio([1.0, 2.0], [True, True, False], [True, False], tau=1.0)
    with pytest.raises(ValueError, match=r"time must be >= 0 .*time\[1\] = -2.0"):
        average_hazard_ratio([1.0, -2.0], [True, True], [True, False], tau=1.0)
    with pytest.raises(ValueError, match="time must be 1-D .* got 3 dimensions"):
        average_hazard_ratio(np.ones((1, 2, 2)), np.ones((1, 2, 2)), np.ones((1, 2, 2)), 1.0)
    res = average_hazard_ratio([1.0, 2.0], [True, True], [True, False], tau=3.0)
    with pytest.raises(ValueError, match=r"level must be in \(0, 1\); got 1.5"):
        res.conf_int(1.5)
