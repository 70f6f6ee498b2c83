"""Simulated operating characteristics against independent references.

- rpact's own simulation of the reference design (tests/results/simulation_rpact.R, run
  with 100,000 iterations) for the log-rank power;
- the nominal alpha for the type I error;
- the exact power of Student's t-test (noncentral t) and the normal-approximation power
  of the z-test for proportions (analysis.power, itself checked against rpact);
- nominal coverage of the confidence intervals.

Tolerances are 4 Monte Carlo standard errors (of both simulations where two are
compared). The default suite runs a few thousand replicates; ``pytest -m slow`` reruns
the checks with 200,000.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest

from analysis.power import means_power, proportions_power
from tests.conftest import RESULTS, make_protocol
from trials.cli.common import load_protocol
from trials.simulation import simulate

FAST, SLOW = 2_000, 200_000


def rpact_reference() -> dict[float, dict]:
    with open(RESULTS / "simulation_rpact.csv") as handle:
        return {float(row["hazard_ratio"]): row for row in csv.DictReader(handle)}


def within(observed: float, expected: float, mcse: float, n_sigma: float = 4.0) -> bool:
    return abs(observed - expected) <= n_sigma * mcse


def reference_design():
    from pathlib import Path

    return load_protocol(Path(__file__).resolve().parent.parent / "bench" / "reference_design.yaml")


def check_logrank_design(n_replicates: int):
    result = simulate(reference_design(), n_replicates=n_replicates, seed=11)
    ref = rpact_reference()[0.7]
    power, ref_power = result.power(), float(ref["reject_rate"])
    se = np.sqrt(power * (1 - power) / n_replicates + ref_power * (1 - ref_power) / 100_000)
    assert within(power, ref_power, se), (power, ref_power)
    alpha = result.type_i_error()
    assert within(alpha, 0.025, np.sqrt(0.025 * 0.975 / n_replicates)), alpha
    oc = result.operating_characteristics.table.set_index("scenario")
    # mean analysis time: rpact's 36.66 months (same design, deterministic accrual)
    time = oc.loc["design", "analysis_time_mean"]
    time_se = oc.loc["design", "analysis_time_sd"] / np.sqrt(n_replicates)
    assert within(time, float(ref["analysis_time_mean"]), max(time_se, 1e-3) * 2), time
    # the log-rank CI for log HR covers the truth at about the nominal rate under the null
    coverage = oc.loc["null", "estimate_coverage"]
    assert within(coverage, 0.95, np.sqrt(0.95 * 0.05 / n_replicates))


def continuous_design(n_patients: int, difference: float) -> dict:
    return {
        "id": "C",
        "title": "t",
        "phase": 3,
        "version": 1,
        "arms": [{"name": "c", "control": True}, {"name": "e"}],
        "population": {"n_patients": n_patients, "accrual": {"periods": [{"rate": 50}]}},
        "randomization": {"method": "blocks", "block_sizes": [2]},
        "endpoints": {
            "primary": {
                "name": "y",
                "type": "continuous",
                "better": "higher",
                "estimand": {"summary_measure": "difference_in_means"},
                "control": {"mean": 0, "sd": 1},
                "effect": {"mean_difference": difference},
            }
        },
        "analysis": {
            "primary": {"test": "t_test"},
            "alpha": 0.025,
            "timing": {"type": "follow_up", "months": 0},
        },
    }


def check_t_test_power(n_replicates: int):
    protocol = make_protocol(continuous_design(64, 0.5))
    result = simulate(protocol, n_replicates=n_replicates, seed=3)
    exact = means_power(0.5, 1.0, 64, alpha=0.025, normal_approximation=False).power
    assert within(result.power(), exact, np.sqrt(exact * (1 - exact) / n_replicates))
    assert within(result.type_i_error(), 0.025, np.sqrt(0.025 * 0.975 / n_replicates))
    oc = result.operating_characteristics.table.set_index("scenario")
    assert within(oc.loc["design", "estimate_coverage"], 0.95, np.sqrt(0.0475 / n_replicates))
    bias_mcse = oc.loc["design", "estimate_bias_mcse"]
    assert within(oc.loc["design", "estimate_bias"], 0.0, bias_mcse)


def check_proportions_power(n_replicates: int):
    content = continuous_design(400, 0.0)
    content["endpoints"]["primary"] = {
        "name": "r",
        "type": "binary",
        "estimand": {"summary_measure": "difference_in_proportions"},
        "control": {"rate": 0.3},
        "effect": {"risk_difference": 0.12},
    }
    content["analysis"]["primary"] = {"test": "difference_in_proportions"}
    result = simulate(make_protocol(content), n_replicates=n_replicates, seed=5)
    approx = proportions_power(0.3, 0.42, 400, alpha=0.025).power
    # the normal approximation itself is off by well under 0.01 at n = 400
    assert within(result.power(), approx, np.sqrt(approx * (1 - approx) / n_replicates) + 0.0025)


def test_logrank_design_against_rpact():
    check_logrank_design(FAST)


def test_t_test_power_is_the_exact_noncentral_t_power():
    check_t_test_power(FAST)


def test_proportions_power_is_the_normal_approximation():
    check_proportions_power(FAST)


@pytest.mark.slow
def test_logrank_design_against_rpact_slow():
    check_logrank_design(SLOW)


@pytest.mark.slow
def test_t_test_power_slow():
    check_t_test_power(SLOW)


@pytest.mark.slow
def test_proportions_power_slow():
    check_proportions_power(SLOW)
