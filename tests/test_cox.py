"""Tests of analysis.cox against lifelines and statsmodels.

References: lifelines' ``CoxPHFitter`` (Efron ties, equal to Breslow without tied event
times), with and without ``strata``, and statsmodels' ``PHReg(ties="breslow")`` for tied
event times; both fitted here, replicate by replicate, on the same simulated data.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter
from statsmodels.duration.hazard_regression import PHReg

from analysis.cox import CoxResult, cox_treatment
from trials.exceptions import ConvergenceWarning

RTOL = 1e-8
# lifelines' default Newton-Raphson damps its steps (step size 0.95) and stops at a relative
# change of the log-likelihood of 1e-9, which can leave it 1e-8 to 1e-6 from the optimum;
# undamped steps and a tight tolerance make the reference exact to ~1e-12.
LIFELINES_FIT_OPTIONS = {"step_size": 1.0, "precision": 1e-14, "r_precision": 0.0}


def simulate(
    seed: int, n_rep: int = 5, n_pat: int = 120, ties: bool = False, n_strata: int = 0
) -> dict[str, np.ndarray]:
    """Two-arm exponential survival (hazard ratio 0.6) with censoring and a valid mask."""
    rng = np.random.default_rng(seed)
    group = rng.random((n_rep, n_pat)) < 0.5
    strata = rng.integers(0, max(n_strata, 1), size=(n_rep, n_pat))
    hazard = np.where(group, 0.6, 1.0) * (1.0 + strata)
    event_time = rng.exponential(1.0 / hazard)
    censor_time = rng.uniform(0.5, 3.0, size=(n_rep, n_pat))
    time = np.minimum(event_time, censor_time)
    if ties:
        time = np.ceil(time * 4.0)
    data = {
        "time": time,
        "event": event_time <= censor_time,
        "group": group,
        "valid": rng.random((n_rep, n_pat)) < 0.85,
    }
    if n_strata:
        data["strata"] = strata
    return data


def replicate_frame(data: dict[str, np.ndarray], r: int) -> pd.DataFrame:
    """The valid patients of replicate ``r`` as a lifelines data frame."""
    keep = data["valid"][r]
    frame = pd.DataFrame(
        {
            "T": data["time"][r][keep],
            "E": data["event"][r][keep],
            "G": data["group"][r][keep].astype(float),
        }
    )
    if "strata" in data:
        frame["S"] = data["strata"][r][keep]
    return frame


def fit(data: dict[str, np.ndarray], **kwargs) -> CoxResult:
    return cox_treatment(
        data["time"],
        data["event"],
        data["group"],
        valid=data["valid"],
        strata=data.get("strata"),
        **kwargs,
    )


@pytest.mark.parametrize("n_strata", [0, 3])
def test_matches_lifelines_without_tied_events(n_strata: int) -> None:
    data = simulate(seed=11, n_strata=n_strata)
    res = fit(data)
    assert res.converged.all()
    ci = res.conf_int(0.9)
    assert ci.shape == (5, 2)
    for r in range(5):
        frame = replicate_frame(data, r)
        ref = CoxPHFitter(alpha=0.1).fit(
            frame,
            "T",
            "E",
            strata=["S"] if n_strata else None,
            fit_options=LIFELINES_FIT_OPTIONS,
        )
        row = ref.summary.loc["G"]
        np.testing.assert_allclose(res.log_hr[r], row["coef"], rtol=RTOL)
        np.testing.assert_allclose(res.se_log_hr[r], row["se(coef)"], rtol=RTOL)
        np.testing.assert_allclose(res.z[r], row["z"], rtol=RTOL)
        np.testing.assert_allclose(res.p_value[r], row["p"], rtol=RTOL)
        np.testing.assert_allclose(res.hazard_ratio[r], row["exp(coef)"], rtol=RTOL)
        np.testing.assert_allclose(
            ci[r], [row["exp(coef) lower 90%"], row["exp(coef) upper 90%"]], rtol=RTOL
        )


@pytest.mark.parametrize("n_strata", [0, 2])
def test_tied_event_times_match_statsmodels_breslow(n_strata: int) -> None:
    data = simulate(seed=12, ties=True, n_strata=n_strata)
    res = fit(data)
    for r in range(5):
        frame = replicate_frame(data, r)
        model = PHReg(
            frame["T"].to_numpy(),
            frame[["G"]].to_numpy(),
            status=frame["E"].to_numpy(dtype=float),
            ties="breslow",
            strata=frame["S"].to_numpy() if n_strata else None,
        )
        ref = model.fit()
        np.testing.assert_allclose(res.log_hr[r], ref.params[0], rtol=RTOL)
        np.testing.assert_allclose(res.se_log_hr[r], ref.bse[0], rtol=RTOL)
        np.testing.assert_allclose(res.p_value[r], ref.pvalues[0], rtol=RTOL)
        # The score vanishes at the estimate.
        assert abs(model.score(np.array([res.log_hr[r]]))[0]) < 1e-9


def test_large_effect_converges_to_the_maximum() -> None:
    # A hazard ratio of exp(-4), far from the starting value 0.
    rng = np.random.default_rng(13)
    n_pat = 200
    group = rng.random((3, n_pat)) < 0.5
    time = rng.exponential(1.0 / np.where(group, np.exp(-4.0), 1.0))
    event = time < 20.0
    time = np.minimum(time, 20.0)
    res = cox_treatment(time, event, group)
    assert res.converged.all()
    for r in range(3):
        model = PHReg(time[r], group[r].astype(float)[:, None], status=event[r].astype(float))
        ref = model.fit()
        np.testing.assert_allclose(res.log_hr[r], ref.params[0], rtol=RTOL)
        np.testing.assert_allclose(res.se_log_hr[r], ref.bse[0], rtol=RTOL)


def test_valid_mask_equals_dropping_the_patients() -> None:
    data = simulate(seed=14, ties=True, n_strata=2)
    res = fit(data)
    for r in range(5):
        keep = data["valid"][r]
        one = cox_treatment(
            data["time"][r][keep],
            data["event"][r][keep],
            data["group"][r][keep],
            strata=data["strata"][r][keep],
        )
        np.testing.assert_allclose(one.log_hr, res.log_hr[r], rtol=1e-12)
        np.testing.assert_allclose(one.se_log_hr, res.se_log_hr[r], rtol=1e-12)


def test_one_trial_input_returns_scalars() -> None:
    data = simulate(seed=15, n_rep=2)
    res = fit(data)
    one = cox_treatment(data["time"][0], data["event"][0], data["group"][0], data["valid"][0])
    for field in ("log_hr", "se_log_hr", "z", "p_value", "converged", "n_iter"):
        assert np.ndim(getattr(one, field)) == 0
    np.testing.assert_allclose(one.log_hr, res.log_hr[0], rtol=1e-12)
    assert one.conf_int().shape == (2,)
    assert one.summary().shape == (1, 9)


def test_no_event_in_one_arm_is_flagged_and_warned() -> None:
    data = simulate(seed=16, n_rep=3)
    event = data["event"].copy()
    event[0] &= ~data["group"][0]  # no experimental event: the estimate is -inf
    event[1] &= data["group"][1]  # no control event: +inf
    with pytest.warns(ConvergenceWarning, match="2 of 3 replicates have no finite estimate") as rec:
        res = cox_treatment(data["time"], event, data["group"], valid=data["valid"])
    assert rec[0].filename == __file__  # stacklevel=2 points at the caller
    np.testing.assert_array_equal(res.converged, [False, False, True])
    assert res.log_hr[0] == -np.inf
    assert res.log_hr[1] == np.inf
    assert np.isinf(res.se_log_hr[:2]).all()
    assert np.isnan(res.z[:2]).all()
    assert np.isnan(res.p_value[:2]).all()
    np.testing.assert_array_equal(res.n_iter[:2], 0)
    # The third replicate is unaffected.
    alone = cox_treatment(data["time"][2], event[2], data["group"][2], data["valid"][2])
    np.testing.assert_allclose(res.log_hr[2], alone.log_hr, rtol=1e-12)


def test_no_events_at_all_gives_nan() -> None:
    time = np.array([1.0, 2.0, 3.0, 4.0])
    with pytest.warns(ConvergenceWarning, match="1 of 1 replicates have no finite estimate"):
        res = cox_treatment(time, np.zeros(4, dtype=bool), np.array([True, False] * 2))
    assert not res.converged
    assert np.isnan(res.log_hr)


def test_too_few_iterations_is_flagged_and_warned() -> None:
    data = simulate(seed=17, n_rep=2)
    with pytest.warns(ConvergenceWarning, match="2 of 2 replicates did not converge in 1"):
        res = fit(data, max_iter=1)
    assert not res.converged.any()
    np.testing.assert_array_equal(res.n_iter, 1)
    assert np.isfinite(res.log_hr).all()


def test_converged_fit_emits_no_warning() -> None:
    data = simulate(seed=18, n_rep=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = fit(data)
    assert res.converged.all()
    assert (res.n_iter > 0).all()


def test_summary_and_conf_int() -> None:
    data = simulate(seed=19, n_rep=3)
    res = fit(data)
    summary = res.summary()
    assert summary.index.name == "replicate"
    assert list(summary.columns[:5]) == [
        "log_hr",
        "se_log_hr",
        "hazard_ratio",
        "hazard_ratio lower 95%",
        "hazard_ratio upper 95%",
    ]
    lower, upper = res.conf_int(0.95).T
    np.testing.assert_allclose(np.sqrt(lower * upper), res.hazard_ratio)
    with pytest.raises(ValueError, match=r"level must be in \(0, 1\)"):
        res.conf_int(95)
