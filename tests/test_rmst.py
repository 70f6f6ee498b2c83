"""Tests of analysis.rmst against lifelines, a plain Kaplan-Meier table and closed forms.

References:

- the RMST of each arm: ``lifelines.utils.restricted_mean_survival_time(kmf, t=tau)`` with
  ``kmf = KaplanMeierFitter().fit(...)`` (the exact area under lifelines' step function);
- its variance: lifelines' ``return_variance=True`` is *not* the same quantity: it returns
  :math:`E[\\min(T,\\tau)^2] - \\mathrm{RMST}^2`, the variance of the restricted survival time
  itself (integrated numerically with ``quad``), not the sampling variance of the estimated
  RMST (see ``test_lifelines_variance_is_another_quantity``).  The reference variance is
  therefore computed plainly here from lifelines' Kaplan-Meier event table, with the
  Greenwood-type formula of Klein & Moeschberger (2003, section 4.5) as survRM2 codes it:
  :math:`\\sum_j A_j^2 d_j / (n_j (n_j - d_j))` with :math:`A_j` the area under the curve from
  :math:`t_j` to :math:`\\tau` (itself from lifelines' RMST up to :math:`t_j`);
- without censoring the Kaplan-Meier RMST is the sample mean of :math:`\\min(T, \\tau)` and
  its Greenwood-type variance is the plug-in variance of that mean, exactly;
- exponential survival: :math:`\\mathrm{RMST} = (1 - e^{-\\lambda\\tau})/\\lambda` and
  :math:`E\\min(T,\\tau)^2 = 2(1 - e^{-\\lambda\\tau}(1 + \\lambda\\tau))/\\lambda^2`, checked
  within Monte Carlo error.
"""

from __future__ import annotations

import numpy as np
import pytest
from lifelines import KaplanMeierFitter
from lifelines.utils import restricted_mean_survival_time

from analysis.rmst import RMSTResult, rmst_difference

RTOL = 1e-8


def simulate(seed: int, n_rep: int = 5, n_pat: int = 120, ties: bool = False) -> dict:
    """Two exponential arms (hazards 1 and 0.6), uniform censoring; invalid patients hold nan."""
    rng = np.random.default_rng(seed)
    group = rng.random((n_rep, n_pat)) < 0.5
    event_time = rng.exponential(np.where(group, 1.0 / 0.6, 1.0))
    censor_time = rng.uniform(0.5, 4.0, size=(n_rep, n_pat))
    time = np.minimum(event_time, censor_time)
    if ties:
        time = np.ceil(time * 5.0) / 5.0  # fifths: many ties, events and censorings mixed
    event = event_time <= censor_time
    valid = rng.random((n_rep, n_pat)) < 0.85
    return {"time": np.where(valid, time, np.nan), "event": event, "group": group, "valid": valid}


def reference_arm(time: np.ndarray, event: np.ndarray, tau: float) -> tuple[float, float]:
    """lifelines' KM RMST up to tau and the Greenwood-type variance from its event table."""
    kmf = KaplanMeierFitter().fit(time, event)
    rmst = restricted_mean_survival_time(kmf, t=tau)
    table = kmf.event_table
    variance = 0.0
    for t_j, row in table.iterrows():
        d, n = row["observed"], row["at_risk"]
        if t_j >= tau or d == 0 or d == n:
            continue  # no area after tau; no event; S drops to 0 (term 0, as in survRM2)
        area_after = rmst - restricted_mean_survival_time(kmf, t=t_j)
        variance += area_after**2 * d / (n * (n - d))
    return rmst, variance


@pytest.mark.parametrize("tau", [0.8, 2.0, 3.5])
@pytest.mark.parametrize("ties", [False, True])
def test_each_arm_matches_lifelines_and_km_table(ties: bool, tau: float) -> None:
    data = simulate(7 + int(ties), ties=ties)
    res = rmst_difference(**data, tau=tau)
    assert isinstance(res, RMSTResult)
    for r in range(data["time"].shape[0]):
        keep = data["valid"][r]
        t, e, g = (data[k][r][keep] for k in ("time", "event", "group"))
        rmst1, var1 = reference_arm(t[g], e[g], tau)
        rmst0, var0 = reference_arm(t[~g], e[~g], tau)
        np.testing.assert_allclose(res.rmst_experimental[r], rmst1, rtol=RTOL)
        np.testing.assert_allclose(res.rmst_control[r], rmst0, rtol=RTOL)
        np.testing.assert_allclose(res.variance_experimental[r], var1, rtol=RTOL)
        np.testing.assert_allclose(res.variance_control[r], var0, rtol=RTOL)
        np.testing.assert_allclose(res.difference[r], rmst1 - rmst0, rtol=RTOL, atol=1e-12)
        np.testing.assert_allclose(res.se[r], np.sqrt(var1 + var0), rtol=RTOL)


def test_tau_beyond_follow_up_is_carried_flat_as_lifelines_and_flagged() -> None:
    data = simulate(9)
    tau = 6.0  # censoring ends at 4
    res = rmst_difference(**data, tau=tau)
    assert res.tau_beyond_follow_up.all()
    keep = data["valid"][0]
    t, e, g = (data[k][0][keep] for k in ("time", "event", "group"))
    np.testing.assert_allclose(res.rmst_control[0], reference_arm(t[~g], e[~g], tau)[0], rtol=RTOL)
    assert not rmst_difference(**data, tau=2.0).tau_beyond_follow_up.any()


def test_hand_computed_example() -> None:
    # Control: S = 1, 0.75, 0.5 on [0,1), [1,2), [2,4): RMST = 2.75; events at 1 and 2 give
    # 1.75**2/12 + 1**2/6.  Experimental: S = 1, 0.75, 0.5 on [0,2), [2,3), [3,4): 3.25;
    # 1.25**2/12 + 0.5**2/6.  The event at 4 = tau and the times beyond it do not count.
    time = np.array([1.0, 2.0, 3.0, 4.0, 2.0, 3.0, 5.0, 6.0])
    event = np.array([True, True, False, True, True, True, True, False])
    group = np.array([False] * 4 + [True] * 4)
    res = rmst_difference(time, event, group, tau=4.0)
    assert np.ndim(res.z) == 0
    assert res.rmst_control == pytest.approx(2.75, rel=1e-15)
    assert res.rmst_experimental == pytest.approx(3.25, rel=1e-15)
    assert res.variance_control == pytest.approx(1.75**2 / 12 + 1 / 6, rel=1e-14)
    assert res.variance_experimental == pytest.approx(1.25**2 / 12 + 0.25 / 6, rel=1e-14)
    se = np.sqrt(1.75**2 / 12 + 1 / 6 + 1.25**2 / 12 + 0.25 / 6)
    assert res.z == pytest.approx(0.5 / se, rel=1e-14)
    lower, upper = res.conf_int(0.9)
    assert lower == pytest.approx(0.5 - 1.6448536269514722 * se, rel=1e-12)
    assert upper == pytest.approx(0.5 + 1.6448536269514722 * se, rel=1e-12)


def test_without_censoring_it_is_the_mean_of_restricted_times(rng: np.random.Generator) -> None:
    n_rep, n_pat, tau = 4, 300, 1.5
    time = rng.exponential(1.0, size=(n_rep, n_pat))
    group = np.broadcast_to(np.arange(n_pat) % 2 == 0, (n_rep, n_pat))
    res = rmst_difference(time, np.ones_like(group), group, tau=tau)
    x = np.minimum(time[:, ::2], tau)  # the experimental arm
    np.testing.assert_allclose(res.rmst_experimental, x.mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(res.variance_experimental, x.var(axis=1) / x.shape[1], rtol=1e-10)


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
def test_lifelines_variance_is_another_quantity(rng: np.random.Generator) -> None:
    # lifelines returns Var(min(T, tau)) by quad on the step function (inexactly): about n
    # times the sampling variance of the RMST estimate when nothing is censored.
    time = rng.exponential(1.0, size=300)
    _, lifelines_var = restricted_mean_survival_time(
        KaplanMeierFitter().fit(time, np.ones(300, dtype=bool)), t=1.5, return_variance=True
    )
    res = rmst_difference(time, np.ones(300, dtype=bool), np.arange(300) < 150, tau=1.5)
    ours = (res.variance_experimental + res.variance_control) / 2
    assert lifelines_var == pytest.approx(150 * ours, rel=0.05)
    assert lifelines_var > 100 * ours


def test_exponential_closed_form_within_monte_carlo_error(rng: np.random.Generator) -> None:
    n_rep, n_pat, tau = 400, 1000, 2.0
    group = np.broadcast_to(np.arange(n_pat) % 2 == 0, (n_rep, n_pat))
    hazard = np.where(group, 0.5, 1.0)
    time = rng.exponential(1.0 / hazard)
    res = rmst_difference(time, np.ones_like(group), group, tau=tau)
    n_arm = n_pat // 2
    for lam, est, var in (
        (0.5, res.rmst_experimental, res.variance_experimental),
        (1.0, res.rmst_control, res.variance_control),
    ):
        true = (1.0 - np.exp(-lam * tau)) / lam
        second = 2.0 * (1.0 - np.exp(-lam * tau) * (1.0 + lam * tau)) / lam**2
        true_var = (second - true**2) / n_arm  # variance of the RMST of one arm
        # The mean of n_rep estimates is within 4 Monte Carlo standard errors of the truth.
        assert abs(est.mean() - true) < 4 * np.sqrt(true_var / n_rep)
        # The variance estimates average to the true variance (their spread is tiny).
        assert var.mean() == pytest.approx(true_var, rel=0.01)
    # The standardized differences are standard normal: mean 0 and about 95% coverage.
    true_diff = (1.0 - np.exp(-0.5 * tau)) / 0.5 - (1.0 - np.exp(-tau))
    z = (res.difference - true_diff) / res.se
    assert abs(z.mean()) < 4 / np.sqrt(n_rep)
    ci = res.conf_int(0.95)
    covered = np.mean((ci[:, 0] < true_diff) & (true_diff < ci[:, 1]))
    assert abs(covered - 0.95) < 4 * np.sqrt(0.95 * 0.05 / n_rep)


def test_valid_mask_and_empty_arm() -> None:
    data = simulate(13, n_rep=3)
    res = rmst_difference(**data, tau=2.0)
    compact = rmst_difference(
        data["time"][0][data["valid"][0]],
        data["event"][0][data["valid"][0]],
        data["group"][0][data["valid"][0]],
        tau=2.0,
    )
    assert res.difference[0] == pytest.approx(compact.difference, rel=1e-14)
    only_control = rmst_difference(**{**data, "group": np.zeros_like(data["group"])}, tau=2.0)
    assert np.isnan(only_control.rmst_experimental).all()
    assert np.isnan(only_control.z).all()
    assert np.isfinite(only_control.rmst_control).all()


def test_no_event_before_tau_gives_nan_z() -> None:
    time = np.array([3.0, 4.0, 5.0, 6.0])
    res = rmst_difference(time, np.ones(4, dtype=bool), np.array([1, 1, 0, 0], bool), tau=2.0)
    assert res.difference == 0.0
    assert res.se == 0.0
    assert np.isnan(res.z)


def test_summary_columns() -> None:
    res = rmst_difference(**simulate(17, n_rep=2), tau=2.0)
    table = res.summary(level=0.9)
    assert list(table.columns) == [
        "rmst_experimental",
        "rmst_control",
        "difference",
        "se",
        "z",
        "p_value",
        "ci_lower_90%",
        "ci_upper_90%",
        "tau_beyond_follow_up",
        "tau",
    ]
    assert len(table) == 2


@pytest.mark.parametrize("tau", [0.0, -1.0, np.inf, np.nan, "soon"])
def test_bad_tau_is_named(tau: object) -> None:
    with pytest.raises(ValueError, match="tau must be a positive finite number"):
        rmst_difference(np.ones(4), np.ones(4, dtype=bool), np.array([1, 1, 0, 0], bool), tau)


def test_bad_level_and_time_are_named() -> None:
    res = rmst_difference(**simulate(19, n_rep=1), tau=2.0)
    with pytest.raises(ValueError, match="level must be in"):
        res.conf_int(1.0)
    with pytest.raises(ValueError, match="time must be >= 0"):
        rmst_difference(np.array([-1.0, 1.0]), np.ones(2, dtype=bool), np.array([1, 0], bool), 1)
