"""Non-proportional hazards and cure fractions against closed forms; family-wise error
of multi-arm adjustments by simulation; the shipped NPH example under the null."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import load_example, make_protocol
from tests.test_engine import chunk, tte_protocol
from tests.test_operating_characteristics import continuous_design
from trials.estimands import true_values
from trials.simulation import simulate


def nph_protocol(**effect) -> dict:
    content = tte_protocol()
    content["endpoints"]["primary"]["effect"] = effect
    return content


def survival_check(times: np.ndarray, t: float, expected: float):
    observed = (times > t).mean()
    se = np.sqrt(expected * (1 - expected) / times.size)
    assert abs(observed - expected) < 4 * se, (t, observed, expected)


def test_piecewise_hazard_ratio_gives_the_arm_survival_function():
    protocol = make_protocol(
        nph_protocol(piecewise_hazard_ratio={"breaks": [4], "hazard_ratios": [1.0, 0.5]})
    )
    _, result = chunk(protocol, 300)
    data = result.scenarios["design"][1][0]
    experimental = data.time[result.cohort.arm == 1]
    assert data.event.all()  # no censoring in this design
    rate = np.log(2) / 12
    for t in (2.0, 4.0, 10.0, 30.0):
        cumulative = rate * min(t, 4) + 0.5 * rate * max(t - 4, 0)
        survival_check(experimental, t, np.exp(-cumulative))


def test_cure_fractions_and_the_null_scenario():
    content = nph_protocol(hazard_ratio=0.8, cure_fraction=0.3)
    content["endpoints"]["primary"]["control"]["cure_fraction"] = 0.1
    _, result = chunk(make_protocol(content), 300, scenarios=("design", "null"))
    arm = result.cohort.arm
    for scenario, cured in (("design", (0.1, 0.3)), ("null", (0.1, 0.1))):
        data = result.scenarios[scenario][1][0]
        for k in (0, 1):
            never = ~data.event[arm == k]  # cured patients are censored at the cut-off
            se = np.sqrt(cured[k] * (1 - cured[k]) / never.size)
            assert abs(never.mean() - cured[k]) < 4 * se


def test_rmst_true_value_is_the_closed_form():
    content = nph_protocol(hazard_ratio=0.5)
    content["endpoints"]["primary"]["estimand"]["summary_measure"] = "rmst_difference"
    content["analysis"]["primary"] = {"test": "rmst", "tau": 24}
    protocol = make_protocol(content)
    rate, tau = np.log(2) / 12, 24.0

    def rmst(h):
        return (1 - np.exp(-h * tau)) / h

    truth = true_values(protocol, protocol.endpoints.primary, null=False)
    assert truth[1] == pytest.approx(rmst(0.5 * rate) - rmst(rate), rel=1e-6)


def test_delayed_effect_example_keeps_its_type_i_error():
    protocol = load_example("immunotherapy_delayed_effect")
    result = simulate(protocol, n_replicates=1500, scenarios=("null",))
    for endpoint in ("os", "pfs"):
        alpha = result.type_i_error(endpoint)
        assert abs(alpha - 0.025) < 4 * np.sqrt(0.025 * 0.975 / 1500), (endpoint, alpha)


@pytest.mark.parametrize("method", ["bonferroni", "holm", "dunnett"])
def test_family_wise_error_of_three_arms_against_control(method):
    content = continuous_design(90, 0.0)
    content["arms"] = [{"name": "c", "control": True}, {"name": "a"}, {"name": "b"}]
    content["randomization"] = {"method": "blocks", "block_sizes": [3]}
    content["analysis"]["multiplicity"] = method
    n = 4000
    result = simulate(make_protocol(content), n_replicates=n, seed=13, scenarios=("null",))
    table = result.operating_characteristics.table.set_index("arm")
    fwer = table.loc["any", "rejection_rate"]
    se = np.sqrt(0.025 * 0.975 / n)
    assert fwer < 0.025 + 4 * se
    if method == "dunnett":  # exact single-step control: close to alpha, not below it
        assert abs(fwer - 0.025) < 4 * se


def test_dunnett_and_holm_reject_at_least_as_often_as_bonferroni():
    rates = {}
    for method in ("bonferroni", "holm", "dunnett"):
        content = continuous_design(90, 0.6)
        content["arms"] = [{"name": "c", "control": True}, {"name": "a"}, {"name": "b"}]
        content["randomization"] = {"method": "blocks", "block_sizes": [3]}
        content["analysis"]["multiplicity"] = method
        result = simulate(make_protocol(content), n_replicates=800, seed=2, scenarios=("design",))
        rates[method] = result.replicates.groupby("arm", observed=True)["reject"].sum()
    # same data (common random numbers): uniformly more powerful procedures
    assert (rates["holm"] >= rates["bonferroni"]).all()
    assert (rates["dunnett"] >= rates["bonferroni"]).all()


def test_average_hazard_ratio_test_in_a_simulated_design():
    content = nph_protocol(hazard_ratio=0.7)
    content["analysis"]["primary"] = {"test": "average_hazard_ratio", "tau": 1000}
    n = 600
    result = simulate(make_protocol(content), n_replicates=n, seed=21)
    table = result.operating_characteristics.table.set_index("scenario")
    # proportional hazards: the average hazard ratio is the hazard ratio
    design = table.loc["design"]
    assert abs(design["estimate_bias"]) < 4 * design["estimate_bias_mcse"]
    assert abs(design["estimate_coverage"] - 0.95) < 4 * np.sqrt(0.0475 / n)
    assert abs(table.loc["null", "rejection_rate"] - 0.025) < 4 * np.sqrt(0.025 * 0.975 / n)
