"""Analytic power and sample size (analysis/power.py) against rpact.

The reference values are in ``tests/results/power_rpact.json``, written by
``tests/results/power_rpact.R`` (rpact 3.3.4; the file records the version). Tolerances:

- closed forms (events, log-rank/z/t power, proportions, expected events, patients from a
  follow-up): relative 1e-9; the file holds 15 significant digits and rpact's numerical
  integration (``stats::integrate``) is exact to rounding on these smooth integrands;
- times that rpact finds with ``uniroot(tol = 1e-6)``: absolute 1e-6 months;
- designs where rpact bisects on the number of patients to a precision of 1e-4 (open-ended
  accrual with a given follow-up): 2e-4 patients and 1e-4 months;
- t-test sample sizes, which rpact finds with ``uniroot(tol = 1e-4)`` on the control-arm
  size: 2e-4 * (1 + allocation_ratio) patients;
- two-sided t-test power: rpact takes the far tail from a normal approximation, we from the
  noncentral t distribution: absolute 5e-6.
"""

from __future__ import annotations

import dataclasses
import doctest
import json
import math
from pathlib import Path

import numpy as np
import pytest

import analysis.power as power_module
from analysis import logrank_events, normal_design, survival_design
from analysis.power import (
    SurvivalDesign,
    expected_events,
    freedman_events,
    logrank_power,
    means_power,
    means_sample_size,
    proportions_power,
    proportions_sample_size,
    schoenfeld_events,
    survival_power,
    survival_sample_size,
)
from trials.exceptions import DesignError

REFERENCE = json.loads(
    (Path(__file__).parent / "results" / "power_rpact.json").read_text(encoding="utf-8")
)
CASES = REFERENCE["cases"]
TIMES = {"study_duration", "follow_up", "accrual_duration"}
COUNTS = {"n_patients", "n_experimental", "n_control", "n_enrolled"}


def _rpact_bisects(inputs: dict) -> bool:
    """rpact solves an open-ended accrual with a given follow-up by bisection on N."""
    accrual_time = inputs["accrual_time"]
    intensity = inputs.get("accrual_intensity")
    open_ended = intensity is not None and len(intensity) == len(accrual_time)
    return open_ended and "follow_up" in inputs


def _tolerance(case: dict, name: str) -> dict[str, float]:
    function, inputs = case["function"], case["inputs"]
    if function == "means_sample_size" and not inputs["normal_approximation"]:
        return {"rel": 0, "abs": 2e-4 * (1 + inputs.get("allocation_ratio", 1))}
    if function == "means_power" and not inputs["normal_approximation"] and inputs["sided"] == 2:
        return {"rel": 0, "abs": 5e-6}
    if function.startswith("survival_") and name in TIMES | COUNTS:
        if _rpact_bisects(inputs):
            return {"rel": 0, "abs": 2e-4 if name in COUNTS else 1e-4}
        if name in ("study_duration", "follow_up"):
            return {"rel": 0, "abs": 1e-6}
        if name == "n_enrolled":  # enrolled by the analysis time, found to 1e-6 months
            return {"rel": 0, "abs": 1e-4}
    return {"rel": 1e-9, "abs": 0}


def _computed(case: dict, name: str) -> float:
    function = getattr(power_module, case["function"])
    if case["function"] == "expected_events":
        arm = {"events": None, "events_experimental": "experimental", "events_control": "control"}
        return function(**case["inputs"], arm=arm[name])
    result = function(**case["inputs"])
    return result if isinstance(result, float) else getattr(result, name)


def test_reference_file_records_its_source():
    assert REFERENCE["rpact_version"] == "3.3.4"
    assert REFERENCE["generator"] == "tests/results/power_rpact.R"
    functions = {case["function"] for case in CASES}
    assert functions == {
        "schoenfeld_events",
        "freedman_events",
        "logrank_power",
        "survival_sample_size",
        "survival_power",
        "expected_events",
        "means_sample_size",
        "means_power",
        "proportions_sample_size",
        "proportions_power",
    }


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_matches_rpact(case):
    for name, expected in case["outputs"].items():
        got = _computed(case, name)
        assert got == pytest.approx(expected, **_tolerance(case, name)), name


# ----------------------------------------------------------------- worked examples


def test_schoenfeld_hr07_needs_246_8_events():
    # rpact: getSampleSizeSurvival(hazardRatio = 0.7, alpha = 0.025, beta = 0.2)
    events = schoenfeld_events(0.7, alpha=0.025, power=0.8, allocation_ratio=1.0)
    assert round(events, 1) == 246.8
    assert events == pytest.approx(
        4 * (1.959963984540054 + 0.8416212335729143) ** 2 / math.log(0.7) ** 2, rel=1e-12
    )


def test_freedman_needs_more_events_than_schoenfeld_for_protective_effects():
    for hr in (0.5, 0.7, 0.9):
        assert freedman_events(hr) > schoenfeld_events(hr)


def test_brief_design_median12_hr07_600_patients():
    design = survival_sample_size(
        0.7,
        control_median=12,
        accrual_time=[0, 24],
        n_patients=600,
        dropout_rate=0.05,
        dropout_time=12,
        alpha=0.025,
        power=0.9,
    )
    assert isinstance(design, SurvivalDesign)
    assert round(design.events, 1) == 330.4
    assert round(design.study_duration, 2) == 30.61
    assert design.accrual_intensity == (25.0,)
    assert design.control_hazard == pytest.approx(math.log(2) / 12)
    summary = design.summary()
    assert summary.loc["events", "value"] == design.events
    assert summary.loc["follow_up", "value"] == pytest.approx(design.study_duration - 24)
    with pytest.raises(dataclasses.FrozenInstanceError):
        design.events = 1.0  # type: ignore[misc]


@pytest.mark.parametrize("module", [logrank_events, survival_design, normal_design])
def test_module_examples_run(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0


# -------------------------------------------------------------------- consistency


DESIGNS = [
    {"accrual_time": [0, 24], "n_patients": 600, "dropout_rate": 0.05},
    {"accrual_time": [0, 6, 24], "accrual_intensity": [0.5, 1],
     "accrual_intensity_type": "relative", "follow_up": 12},
    {"accrual_time": [0, 6], "accrual_intensity": [10, 30], "follow_up": 12,
     "dropout_rate": [0.1, 0.05], "allocation_ratio": 2},
    {"accrual_time": 24, "n_patients": 2000},
]  # fmt: skip


@pytest.mark.parametrize("accrual", DESIGNS)
def test_sample_size_and_power_are_inverse(accrual):
    design = survival_sample_size(0.7, control_median=12, power=0.9, **accrual)
    assert design.expected_events(design.study_duration) == pytest.approx(design.events)
    assert design.time_to_events(design.events) == pytest.approx(design.study_duration)
    by_arm = [design.expected_events([12.0, 30.0], arm=arm) for arm in ("experimental", "control")]
    np.testing.assert_allclose(by_arm[0] + by_arm[1], design.expected_events([12.0, 30.0]))
    assert design.expected_enrolled(design.accrual_duration) == pytest.approx(design.n_patients)
    inverse = survival_power(
        design.events,
        0.7,
        control_median=12,
        accrual_time=list(design.accrual_time),
        accrual_intensity=list(design.accrual_intensity),
        dropout_rate=design.dropout_rate,
        allocation_ratio=design.allocation_ratio,
    )
    assert inverse.power == pytest.approx(0.9)
    assert inverse.study_duration == pytest.approx(design.study_duration)
    assert inverse.n_patients == pytest.approx(design.n_patients)


def test_open_ended_accrual_can_stop_within_an_earlier_period():
    # 100 a month would enrol 2,400 in the first 24 months; far fewer are needed
    design = survival_sample_size(
        0.5, control_median=6, accrual_time=[0, 24], accrual_intensity=[100, 30], follow_up=6
    )
    assert design.accrual_duration < 24
    assert design.accrual_intensity == (100.0,)
    assert design.n_patients == pytest.approx(100 * design.accrual_duration)
    assert design.follow_up == pytest.approx(6)
    assert design.expected_events(design.study_duration) == pytest.approx(design.events)


def test_means_and_proportions_round_trip():
    for normal in (True, False):
        n = means_sample_size(0.4, 1.2, power=0.85, normal_approximation=normal).n_patients
        got = means_power(0.4, 1.2, n, normal_approximation=normal).power
        assert got == pytest.approx(0.85, abs=1e-9)
    n = proportions_sample_size(0.3, 0.2, power=0.85, allocation_ratio=2).n_patients
    assert proportions_power(0.3, 0.2, n, allocation_ratio=2).power == pytest.approx(0.85)
    assert logrank_power(schoenfeld_events(1.3, power=0.85), 1.3) == pytest.approx(0.85)


# -------------------------------------------------------------------------- errors


SURVIVAL = {"control_median": 12, "accrual_time": 24}


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: schoenfeld_events(1.0), "no treatment effect"),
        (lambda: schoenfeld_events(-0.7), "hazard_ratio must be positive"),
        (lambda: freedman_events(0.7, alpha=1.5), "alpha must lie strictly between 0 and 1"),
        (lambda: schoenfeld_events(0.7, power=1.0), "power must lie strictly between 0 and 1"),
        (lambda: schoenfeld_events(0.7, power=0.02), "must exceed the significance level"),
        (lambda: schoenfeld_events(0.7, sided=3), "sided must be 1 or 2"),
        (lambda: schoenfeld_events(0.7, allocation_ratio=0), "allocation_ratio must be positive"),
        (lambda: logrank_power(0, 0.7), "events must be positive"),
        (lambda: logrank_power(100, 0.7, method="cox"), "method must be 'schoenfeld'"),
        (lambda: survival_sample_size(1.0, n_patients=600, **SURVIVAL), "no treatment effect"),
        (
            lambda: survival_sample_size(0.7, n_patients=300, power=0.9, **SURVIVAL),
            "300 patients can never produce 330.4 events",
        ),
        (
            lambda: survival_sample_size(0.7, n_patients=700, dropout_rate=0.9, **SURVIVAL),
            "can never produce",
        ),
        (
            lambda: survival_sample_size(0.7, n_patients=600, follow_up=12, **SURVIVAL),
            "follow_up cannot also be fixed",
        ),
        (lambda: survival_sample_size(0.7, **SURVIVAL), "number of patients is unknown"),
        (
            lambda: survival_sample_size(
                0.7, control_median=12, accrual_time=24, accrual_intensity=30, n_patients=600
            ),
            "disagrees with the absolute accrual",
        ),
        (
            lambda: survival_sample_size(
                0.7, control_median=12, accrual_time=[0, 6, 24], accrual_intensity=[1, 2, 3, 4]
            ),
            "defines 2 accrual periods",
        ),
        (
            lambda: survival_sample_size(0.7, control_median=12, accrual_time=[3, 24]),
            "must start at 0",
        ),
        (
            lambda: survival_sample_size(
                0.7,
                control_median=12,
                accrual_time=[0, 6],
                accrual_intensity=[0.5, 1],
                accrual_intensity_type="relative",
                follow_up=12,
            ),
            "open-ended last accrual period",
        ),  # fmt: skip
        (
            lambda: survival_sample_size(
                0.7, control_median=12, control_hazard=0.05, accrual_time=24, follow_up=12
            ),
            "exactly one of control_median and control_hazard",
        ),
        (
            lambda: survival_sample_size(0.7, dropout_rate=1.0, follow_up=12, **SURVIVAL),
            r"dropout_rate must lie in \[0, 1\)",
        ),
        (lambda: survival_power(300, 0.7, **SURVIVAL), "number of patients is unknown"),
        (
            lambda: expected_events(12, 0.7, n_patients=600, arm="placebo", **SURVIVAL),
            "arm must be None",
        ),
        (lambda: means_sample_size(0.5, 1.0, null_difference=0.5), "no effect to detect"),
        (lambda: means_sample_size(0.5, 0.0), "sd must be positive"),
        (lambda: means_power(0.5, 1.0, 2, normal_approximation=False), "more than 2 patients"),
        (lambda: proportions_sample_size(1.0, 0.5), "p_control must lie strictly between"),
        (lambda: proportions_sample_size(0.3, 0.3), "no effect to detect"),
        (lambda: proportions_power(0.3, 0.4, 100, null_difference=1.0), "null_difference"),
    ],
)
def test_impossible_inputs_raise_design_error(call, message):
    with pytest.raises(DesignError, match=message):
        call()


def test_time_to_events_beyond_reach():
    design = survival_sample_size(0.7, n_patients=600, dropout_rate=0.05, **SURVIVAL)
    with pytest.raises(DesignError, match="600 patients can never produce 590 events"):
        design.time_to_events(590)
