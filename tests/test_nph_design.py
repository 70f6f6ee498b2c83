"""Analytic power of (weighted) log-rank tests under non-proportional hazards, checked
against the proportional-hazards closed forms and by simulation."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.logrank_events import logrank_power
from analysis.nph_design import PiecewiseArm, time_of_events, weighted_logrank_design
from analysis.survival_design import survival_power
from tests.conftest import make_protocol
from tests.test_engine import tte_protocol
from trials.exceptions import DesignError
from trials.simulation import simulate

RATE = np.log(2) / 12
DROPOUT = -np.log(0.95) / 12


def test_proportional_hazards_reduce_to_lachin_foulkes_and_schoenfeld():
    control, experimental = PiecewiseArm((0.0,), (RATE,)), PiecewiseArm((0.0,), (0.7 * RATE,))
    design = time_of_events(
        390, control, experimental, n_patients=600, accrual_rates=[25], dropout_hazard=DROPOUT
    )
    reference = survival_power(
        390,
        0.7,
        accrual_time=[0.0],
        accrual_intensity=[25.0],
        n_patients=600,
        control_hazard=RATE,
        dropout_rate=0.05,
    )
    # expected events by time: the same integral, computed independently
    assert design.analysis_time == pytest.approx(reference.time_to_events(390), rel=1e-6)
    # the drift differs from Schoenfeld's local approximation only at second order
    assert design.power == pytest.approx(logrank_power(390, 0.7), abs=0.003)


def delayed_effect(test: dict) -> dict:
    content = tte_protocol()
    content["population"] = {
        "n_patients": 500,
        "accrual": {
            "process": "deterministic",
            "periods": [{"rate": 10, "duration": 6}, {"rate": 25}],
        },
    }
    content["dropout"] = {"all": {"annual_rate": 0.05}}
    content["endpoints"]["primary"]["control"] = {"distribution": "exponential", "median": 10}
    content["endpoints"]["primary"]["effect"] = {
        "piecewise_hazard_ratio": {"breaks": [4], "hazard_ratios": [1.0, 0.6]}
    }
    content["analysis"]["primary"] = test
    content["analysis"]["timing"] = {"type": "events", "target_events": 300}
    return content


def analytic(rho: float, gamma: float):
    rate = np.log(2) / 10
    return time_of_events(
        300,
        PiecewiseArm((0.0,), (rate,)),
        PiecewiseArm((0.0, 4.0), (rate, 0.6 * rate)),
        n_patients=500,
        accrual_starts=[0, 6],
        accrual_rates=[10, 25],
        dropout_hazard=DROPOUT,
        rho=rho,
        gamma=gamma,
    )


def check_by_simulation(n_replicates: int, margin: float):
    for test, rho, gamma in (
        ("logrank", 0, 0),
        ("weighted_logrank", 0, 1),
        ("weighted_logrank", 1, 0),
    ):
        spec = {"test": test} | ({"rho": rho, "gamma": gamma} if rho or gamma else {})
        result = simulate(
            make_protocol(delayed_effect(spec)),
            n_replicates=n_replicates,
            seed=1,
            scenarios=("design",),
        )
        expected = analytic(rho, gamma).power
        se = np.sqrt(expected * (1 - expected) / n_replicates)
        assert abs(result.power() - expected) < 4 * se + margin, (test, rho, gamma)


def test_delayed_effect_power_by_simulation():
    check_by_simulation(2000, 0.01)


@pytest.mark.slow
def test_delayed_effect_power_by_simulation_slow():
    check_by_simulation(20_000, 0.005)


def test_weights_favour_late_differences():
    powers = {(r, g): analytic(r, g).power for r, g in ((0, 0), (0, 1), (1, 0))}
    assert powers[(0, 1)] > powers[(0, 0)] > powers[(1, 0)]


def test_cure_fraction_dilutes_the_population_hazard():
    arm = PiecewiseArm((0.0,), (0.1,), cure_fraction=0.3)
    t = np.array([0.0, 5.0, 50.0])
    assert arm.survival(t)[-1] == pytest.approx(0.3 + 0.7 * np.exp(-5.0))
    assert arm.hazard(t)[0] == pytest.approx(0.1 * 0.7)


def test_bad_inputs():
    arm = PiecewiseArm((0.0,), (0.1,))
    with pytest.raises(DesignError, match="non-negative"):
        weighted_logrank_design(
            arm, arm, analysis_time=10, n_patients=100, accrual_rates=[10], rho=-1
        )
    with pytest.raises(DesignError, match="never expected"):
        time_of_events(1000, arm, arm, n_patients=100, accrual_rates=[10])


def test_design_command_for_a_delayed_effect(tmp_path, capsys):
    import json

    import yaml

    from trials.cli import main

    path = tmp_path / "nph.yaml"
    path.write_text(yaml.safe_dump(delayed_effect({"test": "weighted_logrank", "gamma": 1.0})))
    assert main(["design", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["power"] == pytest.approx(analytic(0, 1).power, rel=1e-9)


def test_events_for_power_inverts_the_power():
    from analysis.nph_design import events_for_power

    rate = np.log(2) / 10
    arms = (PiecewiseArm((0.0,), (rate,)), PiecewiseArm((0.0, 4.0), (rate, 0.6 * rate)))
    kw = {"n_patients": 500, "accrual_starts": [0, 6], "accrual_rates": [10, 25],
          "dropout_hazard": DROPOUT, "gamma": 1.0}
    design = events_for_power(0.9, *arms, **kw)
    # the integrals use a grid scaled to the analysis time: power is exact to about 1e-4
    assert design.power == pytest.approx(0.9, abs=5e-4)
    assert time_of_events(design.events, *arms, **kw).power == pytest.approx(0.9, abs=5e-4)
    with pytest.raises(DesignError, match="not reached"):
        events_for_power(0.9, arms[0], arms[0], **kw)
