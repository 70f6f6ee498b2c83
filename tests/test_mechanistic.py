"""The tumour growth inhibition generator (Claret et al. 2009): the closed form against a
numerical ODE solution, the log-normal variability, the survival link, reproducibility and
save/load."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.integrate import solve_ivp
from scipy.optimize import minimize_scalar

import generators.mechanistic  # noqa: F401  (registers the generator)
from generators.base import data_hash, load
from generators.mechanistic import TumourGrowthInhibition
from trials.exceptions import DataError

TIMES = np.array([0.0, 0.5, 1.84, 3.0, 6.0, 12.0, 24.0])


@pytest.mark.parametrize(
    ("s0", "kg", "kd", "lam"),
    [(50.0, 0.06, 0.25, 0.15), (20.0, 0.2, 0.1, 0.5), (80.0, 0.03, 0.4, 0.0)],
)
def test_closed_form_solves_the_ode(s0, kg, kd, lam):
    # reference: scipy's adaptive Runge-Kutta on dS/dt = kg S - kd exp(-lam t) S
    solution = solve_ivp(
        lambda t, s: kg * s - kd * np.exp(-lam * t) * s,
        (0.0, TIMES[-1]),
        [s0],
        t_eval=TIMES,
        method="DOP853",
        rtol=1e-12,
        atol=1e-12,
    )
    assert solution.success
    closed = TumourGrowthInhibition.size(TIMES, s0, kg, kd, lam)
    np.testing.assert_allclose(closed, solution.y[0], rtol=1e-8)


def test_time_to_nadir_minimizes_the_size():
    kg, kd, lam = 0.06, 0.25, 0.15
    nadir = TumourGrowthInhibition.time_to_nadir(kg, kd, lam)
    assert nadir == pytest.approx(np.log(kd / kg) / lam)
    numeric = minimize_scalar(
        lambda t: TumourGrowthInhibition.size(t, 50.0, kg, kd, lam),
        bounds=(0.0, 60.0),
        method="bounded",
        options={"xatol": 1e-8},
    )
    assert nadir == pytest.approx(numeric.x, abs=1e-4)
    # no shrinkage when kd <= kg; shrinking forever without resistance
    np.testing.assert_array_equal(
        TumourGrowthInhibition.time_to_nadir([0.3, 0.1], [0.2, 0.2], 0.0), [0.0, np.inf]
    )


def test_log_normal_variability():
    n, cv = 40_000, 0.3
    patients = TumourGrowthInhibition(baseline_size=50.0, baseline_cv=cv).fit().sample(n, rng=11)
    log_s0 = np.log(patients["baseline_size"].to_numpy())
    sdlog = np.sqrt(np.log(1 + cv**2))
    # the median of a log-normal sample: SE of the sample median of log S0 is
    # sdlog * sqrt(pi / 2) / sqrt(n); 4 SE on the log scale
    assert np.median(log_s0) == pytest.approx(np.log(50.0), abs=4 * sdlog * 1.2533 / np.sqrt(n))
    # SE of a normal sample SD is sdlog / sqrt(2 n)
    assert log_s0.std(ddof=1) == pytest.approx(sdlog, abs=4 * sdlog / np.sqrt(2 * n))
    # arithmetic CV of the log-normal equals the given CV
    s0 = patients["baseline_size"]
    assert s0.std() / s0.mean() == pytest.approx(cv, rel=0.05)


def test_zero_cv_gives_the_typical_patient():
    model = TumourGrowthInhibition(baseline_cv=0.0, growth_cv=0.0, shrinkage_cv=0.0).fit()
    patients = model.sample(5, rng=0)
    expected = TumourGrowthInhibition.size(model.link_month, 50.0, 0.06, 0.25, 0.15)
    np.testing.assert_allclose(patients["baseline_size"], 50.0)
    np.testing.assert_allclose(patients["size_at_link"], expected)
    np.testing.assert_allclose(patients["tsr"], expected / 50.0 - 1.0)


def test_without_effects_survival_is_exponential_with_the_baseline_hazard():
    n, h0 = 40_000, 0.05
    model = TumourGrowthInhibition(baseline_hazard=h0, tsr_effect=0.0, size_effect=0.0).fit()
    time = model.sample(n, rng=5)["time"].to_numpy()
    # exponential: mean 1 / h0 with SE (1 / h0) / sqrt(n); median log(2) / h0
    assert time.mean() == pytest.approx(1 / h0, abs=4 / h0 / np.sqrt(n))
    assert np.median(time) == pytest.approx(np.log(2) / h0, rel=0.03)
    assert (model.sample(10, rng=5)["event"] == 1).all()


def test_more_shrinkage_lowers_the_hazard():
    weak = TumourGrowthInhibition(shrinkage_rate=0.1, tsr_effect=1.5).fit().sample(5000, rng=3)
    strong = TumourGrowthInhibition(shrinkage_rate=0.6, tsr_effect=1.5).fit().sample(5000, rng=3)
    # the same random numbers: every patient shrinks more and lives longer
    assert (strong["tsr"] < weak["tsr"]).all()
    assert (strong["time"] > weak["time"]).all()
    assert strong["time"].mean() > 1.1 * weak["time"].mean()


def test_hazard_link():
    model = TumourGrowthInhibition(baseline_hazard=0.1, tsr_effect=2.0, size_effect=0.5).fit()
    assert model.hazard(-0.3, 100.0) == pytest.approx(0.1 * np.exp(-0.6 + 0.5 * np.log(2.0)))


def test_same_seed_same_patients():
    model = TumourGrowthInhibition().fit()
    a, b = model.sample(100, rng=7), model.sample(100, rng=7)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(model.sample(100, rng=8))
    assert list(a.columns) == [
        "baseline_size",
        "growth_rate",
        "shrinkage_rate",
        "size_at_link",
        "tsr",
        "time",
        "event",
    ]
    np.testing.assert_allclose(a["tsr"], a["size_at_link"] / a["baseline_size"] - 1)


def test_fit_records_the_parameters_or_the_data():
    model = TumourGrowthInhibition()
    with pytest.raises(DataError, match="not fitted"):
        model.sample(5, rng=0)
    assert model.fit() is model
    assert model.data_hash_ is not None
    assert model.n_rows_ == 1
    other = TumourGrowthInhibition(growth_rate=0.07).fit()
    assert other.data_hash_ != model.data_hash_
    frame = pd.DataFrame({"time": [1.0, 2.0], "event": [1, 0]})
    assert model.fit(frame).data_hash_ == data_hash(frame)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"growth_rate": -0.1}, "growth_rate must be non-negative"),
        ({"shrinkage_cv": -0.2}, "shrinkage_cv must be non-negative"),
        ({"resistance_rate": -1.0}, "resistance_rate must be non-negative"),
        ({"baseline_size": 0.0}, "baseline_size must be positive"),
        ({"baseline_hazard": -0.01}, "baseline_hazard must be positive"),
        ({"tsr_effect": float("nan")}, "tsr_effect must be a finite number"),
    ],
)
def test_invalid_parameters(params, message):
    with pytest.raises(DataError, match=message):
        TumourGrowthInhibition(**params).fit()


def test_save_load_round_trip(tmp_path):
    model = TumourGrowthInhibition(shrinkage_rate=0.4, link_month=2.0).fit()
    path = tmp_path / "tgi.json"
    model.save(path)
    loaded = load(path)
    assert type(loaded) is TumourGrowthInhibition
    assert loaded.get_params() == model.get_params()
    assert loaded.data_hash_ == model.data_hash_
    pd.testing.assert_frame_equal(loaded.sample(50, rng=1), model.sample(50, rng=1))
