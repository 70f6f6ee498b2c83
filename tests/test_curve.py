"""Power curves with common random numbers, and solving for events or patients."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.power import schoenfeld_events
from tests.test_operating_characteristics import reference_design
from trials.curve import power_curve, with_parameter
from trials.exceptions import DesignError


def test_curve_over_hazard_ratio_is_monotone_by_common_random_numbers():
    curve = power_curve(reference_design(), "hazard_ratio", [0.6, 0.7, 0.8, 1.0], n_replicates=300)
    power = curve.table["power"].to_numpy()
    assert np.all(np.diff(power) < 0)
    assert power[-1] < 0.06


def test_curve_over_patients_shares_patients_between_sizes():
    protocol = with_parameter(reference_design(), "target_events", 200)
    curve = power_curve(protocol, "n_patients", [300, 400, 500, 600], n_replicates=300)
    # events fixed, more patients: an earlier analysis; duration must fall monotonically
    duration = curve.table["analysis_time_mean"].to_numpy()
    assert np.all(np.diff(duration) < 0)


def test_solve_for_events_is_near_schoenfeld():
    curve = power_curve(
        reference_design(), "target_events", [150, 200, 250, 300, 350], n_replicates=2000
    )
    solved = curve.solve(0.8)
    # MC error of the solution: about 2.5 events per 0.01 of power at 2,000 replicates
    assert solved["value"] == pytest.approx(schoenfeld_events(0.7, power=0.8), abs=25)
    with pytest.raises(DesignError, match="extend the grid"):
        curve.solve(0.999)


def test_invalid_grid_values_are_design_errors():
    with pytest.raises(DesignError, match="target_events"):
        with_parameter(reference_design(), "target_events", 700)
    with pytest.raises(DesignError, match="odds ratio"):
        with_parameter(reference_design(), "odds_ratio", 2.0)
