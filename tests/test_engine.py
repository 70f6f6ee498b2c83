"""The trial engine against closed forms: accrual, covariates, eligibility, outcomes,
dropout and the event-driven cut-off; reproducibility whatever the chunking."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from tests.conftest import load_example, make_protocol
from trials.engine import Layout, draw_cohort, patient_table, simulate_chunk
from trials.simulation import simulate


def tte_protocol(**changes) -> dict:
    content = {
        "id": "T",
        "title": "test",
        "phase": 3,
        "version": 1,
        "arms": [
            {"name": "control", "control": True, "allocation": 1},
            {"name": "experimental", "allocation": 1},
        ],
        "population": {
            "n_patients": 200,
            "accrual": {"process": "deterministic", "periods": [{"rate": 20}]},
        },
        "randomization": {"method": "blocks", "block_sizes": [4]},
        "endpoints": {
            "primary": {
                "name": "os",
                "type": "time_to_event",
                "estimand": {"summary_measure": "hazard_ratio"},
                "control": {"distribution": "exponential", "median": 12},
                "effect": {"hazard_ratio": 0.7},
            }
        },
        "analysis": {
            "primary": {"test": "logrank"},
            "timing": {"type": "calendar", "months": 1000},
        },
        "simulation": {"n_replicates": 100, "seed": 3},
    }
    for path, value in changes.items():
        node = content
        keys = path.split(".")
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value
    return content


def chunk(protocol, n_replicates=400, seed=1, scenarios=("design",)):
    n = protocol.population.n_patients
    layout = Layout(protocol, n, n)
    return layout, simulate_chunk(layout, np.arange(n_replicates), seed, scenarios)


@pytest.mark.parametrize(
    "name", ["oncology_os_phase3", "binary_response_phase2b", "continuous_change_phase3"]
)
def test_results_do_not_depend_on_chunk_size(name):
    protocol = load_example(name)
    whole = simulate(protocol, n_replicates=24, chunk_size=24)
    pieces = simulate(protocol, n_replicates=24, chunk_size=5)
    pd.testing.assert_frame_equal(whole.replicates, pieces.replicates)
    other_seed = simulate(protocol, n_replicates=24, seed=protocol.simulation.seed + 1)
    assert not whole.replicates["estimate"].equals(other_seed.replicates["estimate"])


def test_replicate_is_the_same_alone_or_in_a_chunk():
    protocol = load_example("oncology_os_phase3")
    alone = patient_table(protocol, replicate=7)
    layout = Layout(protocol, 600, 600)
    cohort = draw_cohort(layout, np.arange(5, 9), protocol.simulation.seed)
    np.testing.assert_array_equal(alone["enrollment_time"], cohort.enrollment[2])


def test_deterministic_accrual_places_patient_i_at_i_over_rate():
    protocol = make_protocol(
        tte_protocol(**{"population.accrual.periods": [{"rate": 10, "duration": 5}, {"rate": 25}]})
    )
    _, result = chunk(protocol, 2)
    i = np.arange(1, 201)
    expected = np.where(i <= 50, i / 10, 5 + (i - 50) / 25)
    np.testing.assert_allclose(result.cohort.enrollment[0], expected)


def test_poisson_accrual_matches_the_gamma_distribution_of_arrival_times():
    # with rate 20/month the n-th arrival is Gamma(n, 1/20): mean n/20, var n/400
    protocol = make_protocol(
        tte_protocol(**{"population.accrual": {"process": "poisson", "periods": [{"rate": 20}]}})
    )
    _, result = chunk(protocol, 2000)
    last = result.cohort.enrollment[:, -1]
    mcse = np.sqrt(200 / 400) / np.sqrt(last.size)
    assert abs(last.mean() - 10.0) < 4 * mcse
    assert stats.kstest(last, stats.gamma(200, scale=1 / 20).cdf).pvalue > 0.001


def test_exponential_event_times_have_the_control_hazard_and_hazard_ratio():
    protocol = make_protocol(tte_protocol())
    _, result = chunk(protocol, 400)
    cutoff, (data,) = result.scenarios["design"]
    arm = result.cohort.arm
    for k, hazard in ((0, np.log(2) / 12), (1, 0.7 * np.log(2) / 12)):
        # no censoring before month 1000: the MLE of the hazard is events / exposure
        mask = data.valid & (arm == k)
        estimate = data.event[mask].sum() / data.time[mask].sum()
        se = hazard / np.sqrt(data.event[mask].sum())
        assert abs(estimate - hazard) < 4 * se


def test_weibull_and_piecewise_survival_functions():
    weibull = make_protocol(
        tte_protocol(
            **{
                "endpoints.primary.control": {
                    "distribution": "weibull",
                    "shape": 1.5,
                    "median": 10,
                },
                "endpoints.primary.effect": {"hazard_ratio": 1.0},
            }
        )
    )
    _, result = chunk(weibull, 200)
    time = result.scenarios["design"][1][0].time.ravel()
    for t in (3.0, 10.0, 20.0):
        expected = np.exp(-np.log(2) * (t / 10) ** 1.5)
        observed = (time > t).mean()
        assert abs(observed - expected) < 4 * np.sqrt(expected * (1 - expected) / time.size)

    piecewise = make_protocol(
        tte_protocol(
            **{
                "endpoints.primary.control": {
                    "distribution": "piecewise_exponential",
                    "breaks": [6, 12],
                    "hazards": [0.02, 0.08, 0.04],
                },
                "endpoints.primary.effect": {"hazard_ratio": 1.0},
            }
        )
    )
    _, result = chunk(piecewise, 200)
    time = result.scenarios["design"][1][0].time.ravel()
    for t, cumulative in ((6.0, 0.12), (9.0, 0.12 + 0.24), (20.0, 0.12 + 0.48 + 0.32)):
        expected = np.exp(-cumulative)
        observed = (time > t).mean()
        assert abs(observed - expected) < 4 * np.sqrt(expected * (1 - expected) / time.size)


def test_dropout_annual_rate_is_the_proportion_lost_within_a_year():
    protocol = make_protocol(
        tte_protocol(
            **{
                "dropout": {"all": {"annual_rate": 0.2}},
                "endpoints.primary.control": {"distribution": "exponential", "hazard": 1e-9},
            }
        )
    )
    _, result = chunk(protocol, 300)
    _, (data,) = result.scenarios["design"]
    lost = (data.time < 12) & ~data.event
    n = lost.size
    assert abs(lost.mean() - 0.2) < 4 * np.sqrt(0.2 * 0.8 / n)


def test_event_driven_cutoff_analyses_exactly_the_target_events():
    protocol = load_example("oncology_os_phase3")
    _, result = chunk(protocol, 50)
    cutoff, data = result.scenarios["design"]
    assert cutoff.target_reached.all()
    np.testing.assert_array_equal(data[0].event.sum(axis=1), 390)
    # every analysed time ends by the cut-off
    calendar = result.cohort.enrollment + data[0].time
    assert np.all(
        calendar[data[0].valid]
        <= cutoff.analysis_time[:, None].repeat(600, 1)[data[0].valid] + 1e-9
    )


def test_covariates_follow_their_marginals_and_correlation():
    content = tte_protocol()
    content["population"]["covariates"] = [
        {"name": "a", "distribution": "normal", "mean": 50, "sd": 10},
        {"name": "b", "distribution": "normal", "mean": 0, "sd": 2},
        {"name": "c", "distribution": "lognormal", "meanlog": 1.0, "sdlog": 0.5},
        {"name": "d", "distribution": "binary", "p": 0.3},
        {"name": "e", "distribution": "categorical", "categories": {"x": 0.2, "y": 0.5, "z": 0.3}},
    ]
    content["population"]["correlations"] = [{"between": ["a", "b"], "rho": 0.6}]
    protocol = make_protocol(content)
    _, result = chunk(protocol, 200)
    cov = {k: v.ravel() for k, v in result.cohort.covariates.items()}
    n = cov["a"].size
    assert abs(cov["a"].mean() - 50) < 4 * 10 / np.sqrt(n)
    assert abs(np.corrcoef(cov["a"], cov["b"])[0, 1] - 0.6) < 4 * (1 - 0.36) / np.sqrt(n)
    assert abs(np.median(cov["c"]) - np.e) < 0.05
    assert abs(cov["d"].mean() - 0.3) < 4 * np.sqrt(0.21 / n)
    for code, p in enumerate((0.2, 0.5, 0.3)):
        assert abs((cov["e"] == code).mean() - p) < 4 * np.sqrt(p * (1 - p) / n)


def test_eligibility_screens_the_expected_number_of_patients():
    content = tte_protocol()
    content["population"]["covariates"] = [
        {"name": "age", "distribution": "normal", "mean": 60, "sd": 10}
    ]
    content["population"]["eligibility"] = ["age >= 65"]
    protocol = make_protocol(content)
    _, result = chunk(protocol, 300)
    p = stats.norm.sf(0.5)
    assert result.cohort.covariates["age"].min() >= 65
    screened = result.cohort.n_screened
    # screened until the 200th eligible: negative binomial, mean 200 / p
    mean, sd = 200 / p, np.sqrt(200 * (1 - p)) / p
    assert abs(screened.mean() - mean) < 4 * sd / np.sqrt(screened.size)


def test_intercurrent_event_strategies_for_time_to_event():
    ice = {"event": "switch", "annual_rate": 0.5}
    times = {}
    for strategy in ("treatment_policy", "composite", "hypothetical"):
        content = tte_protocol()
        content["endpoints"]["primary"]["estimand"]["intercurrent_events"] = [
            ice | {"strategy": strategy}
        ]
        _, result = chunk(make_protocol(content), 100)
        data = result.scenarios["design"][1][0]
        times[strategy] = (data.time, data.event)
    tp, comp, hyp = times["treatment_policy"], times["composite"], times["hypothetical"]
    assert tp[1].all()  # no censoring at all under treatment policy here
    assert np.all(comp[0] <= tp[0])
    assert comp[1].all()
    assert np.all(hyp[0] <= tp[0])
    assert not hyp[1].all()
    # composite: time to the first of event and ICE, exponential with summed hazards
    rate_ice = -np.log(0.5) / 12
    control = result.cohort.arm == 0
    expected = 1 / (np.log(2) / 12 + rate_ice)
    observed = comp[0][control].mean()
    assert abs(observed - expected) < 4 * expected / np.sqrt(control.sum())


def test_unreachable_target_events_warn_and_are_recorded():
    from trials.exceptions import SimulationWarning

    content = tte_protocol(**{
        "dropout": {"all": {"annual_rate": 0.9}},
        "analysis.timing": {"type": "events", "target_events": 195},
    })
    with pytest.warns(SimulationWarning, match="target number of events was not reached"):
        result = simulate(make_protocol(content), n_replicates=20)
    table = result.operating_characteristics.table
    assert (table["target_reached_rate"] < 1).all()
