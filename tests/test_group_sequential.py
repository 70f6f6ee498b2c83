"""Group-sequential simulation against rpact's simulation, the analytic design
(numerical integration) and the nominal alpha of every boundary family.

Tolerances are 4 Monte Carlo standard errors. The default suite uses a few thousand
replicates; ``pytest -m slow`` reruns with many more.
"""

from __future__ import annotations

import copy
import csv

import numpy as np
import pytest

from tests.conftest import PROTOCOLS, RESULTS, make_protocol
from tests.test_engine import tte_protocol
from tests.test_logrank import reference_censoring
from trials.cli import main
from trials.design import design_summary
from trials.simulation import simulate

GSD = {
    "information_fractions": [1 / 3, 2 / 3, 1.0],
    "efficacy": "asOF",
}


def reference_gsd(**changes) -> dict:
    content = tte_protocol()
    content["population"] = {
        "n_patients": 600,
        "accrual": {"process": "deterministic", "periods": [{"rate": 25}]},
    }
    content["dropout"] = {"all": {"annual_rate": 0.05}}
    content["analysis"]["timing"] = {"type": "events", "target_events": 390}
    content["analysis"]["group_sequential"] = dict(GSD, **changes)
    return content


def rpact_rows() -> dict[tuple[str, float], dict]:
    with open(RESULTS / "simulation_gsd_rpact.csv") as handle:
        return {(r["design"], float(r["hazard_ratio"])): r for r in csv.DictReader(handle)}


def within(observed, expected, se, n_sigma=4.0) -> bool:
    return abs(observed - expected) <= n_sigma * se


def check_against_rpact(name: str, changes: dict, n_replicates: int):
    protocol = make_protocol(reference_gsd(**changes))
    result = simulate(protocol, n_replicates=n_replicates, seed=99)
    table = result.operating_characteristics.table.set_index("scenario")
    for scenario, hr in (("design", 0.7), ("null", 1.0)):
        ref = rpact_rows()[(name, hr)]
        row = table.loc[scenario]
        p, q = row["rejection_rate"], float(ref["reject_rate"])
        se = np.sqrt(p * (1 - p) / n_replicates + q * (1 - q) / int(ref["n_replicates"]))
        assert within(p, q, max(se, 1e-4)), (name, scenario, p, q)
        for k in (1, 2):
            p, q = row[f"stop_look{k}_efficacy"], float(ref[f"stop_{k}"])
            se = np.sqrt(p * (1 - p) / n_replicates + q * (1 - q) / int(ref["n_replicates"]))
            assert within(p, q, max(se, 1e-4)), (name, scenario, k, p, q)
        events_se = row["events_sd"] / np.sqrt(n_replicates)
        assert within(row["events_mean"], float(ref["expected_events"]), events_se + 0.5)


def test_efficacy_only_design_against_rpact():
    check_against_rpact("asOF", {}, 3000)


def test_non_binding_futility_design_against_rpact():
    check_against_rpact("asOF_bsOF", {"futility": "bsOF", "beta": 0.1}, 3000)


def test_simulation_agrees_with_the_analytic_design():
    protocol = make_protocol(reference_gsd())
    analytic = design_summary(protocol)
    n = 4000
    result = simulate(protocol, n_replicates=n, seed=5)
    row = result.operating_characteristics.table.set_index("scenario").loc["design"]
    assert within(row["rejection_rate"], analytic["power"], np.sqrt(0.06 * 0.94 / n))
    events_se = row["events_sd"] / np.sqrt(n)
    # the analytic events use Schoenfeld's drift; the looks themselves are exact
    assert within(row["events_mean"], analytic["expected_events_h1"], events_se + 1.0)
    np.testing.assert_allclose(
        analytic["looks"]["efficacy_z"], [3.710303, 2.511427, 1.993048], atol=1e-5
    )


FAMILIES = [
    {"efficacy": "OF"},
    {"efficacy": "P"},
    {"efficacy": "asOF"},
    {"efficacy": "asP"},
    {"efficacy": "asKD", "efficacy_parameter": 2.0},
    {"efficacy": "asHSD", "efficacy_parameter": -4.0},
    {"efficacy": "asOF", "futility": "bsOF", "binding": True},
    {"efficacy": "asP", "futility": "bsKD", "futility_parameter": 2.0, "binding": True},
]


def check_type_i_error(family: dict, n_replicates: int):
    content = reference_gsd(**family)
    content["population"]["n_patients"] = 300
    content["analysis"]["timing"]["target_events"] = 150
    result = simulate(
        make_protocol(content), n_replicates=n_replicates, seed=7, scenarios=("null",)
    )
    alpha = result.type_i_error()
    assert within(alpha, 0.025, np.sqrt(0.025 * 0.975 / n_replicates)), (family, alpha)


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: "-".join(map(str, f.values())))
def test_type_i_error_of_every_family_is_nominal(family):
    check_type_i_error(family, 2500)


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: "-".join(map(str, f.values())))
def test_type_i_error_of_every_family_is_nominal_slow(family):
    check_type_i_error(family, 40_000)


@pytest.mark.slow
def test_designs_against_rpact_slow():
    check_against_rpact("asOF", {}, 100_000)
    check_against_rpact("asOF_bsOF", {"futility": "bsOF", "beta": 0.1}, 100_000)


def test_trials_stop_at_their_first_crossing():
    result = simulate(make_protocol(reference_gsd(futility="bsOF")), n_replicates=300, seed=3)
    table = result.replicates
    early = table["stop_reason"].isin(["efficacy", "futility"]) & (table["stop_look"] < 3)
    assert early.any()
    # a trial stopped at look k was analysed at the events of look k
    looks = {1: 130, 2: 260, 3: 390}
    np.testing.assert_array_equal(table["events"], table["stop_look"].map(looks))
    assert (table.loc[table["stop_reason"] == "futility", "reject"] == False).all()  # noqa: E712


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"information_fractions": [0.5, 0.4, 1.0]}, "must increase"),
        ({"information_fractions": [0.3, 0.6]}, "must be 1"),
        ({"efficacy": "asKD"}, "needs a parameter rho > 0"),
        ({"efficacy": "asKD", "efficacy_parameter": -1.0}, "needs a parameter rho > 0"),
        ({"efficacy": None, "futility": None}, "give an efficacy boundary"),
        ({"information_fractions": [0.001, 1.0]}, "has no events"),
        ({"efficacy": "OF", "futility": "bsOF"}, "futility bounds need an alpha-spending"),
    ],
)
def test_bad_group_sequential_designs_are_reported(tmp_path, capsys, change, message):
    import yaml

    content = copy.deepcopy(reference_gsd())
    content["analysis"]["group_sequential"].update(change)
    path = tmp_path / "gsd.yaml"
    path.write_text(yaml.safe_dump(content))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "analysis.group_sequential" in err
    assert message in err


def test_design_command(tmp_path, capsys):
    import json

    import yaml

    path = tmp_path / "gsd.yaml"
    path.write_text(yaml.safe_dump(reference_gsd(futility="bsOF", beta=0.1)))
    assert main(["design", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["looks"]) == 3
    assert out["looks"][2]["alpha_spent"] == pytest.approx(0.025)
    assert out["expected_events_h1"] < 390
    # looks at 130, 260, 390 events: 25 patients a month, all 600 enrolled by month 24
    assert out["looks"][0]["n_enrolled"] == pytest.approx(25 * out["looks"][0]["time"], abs=1)
    assert out["looks"][2]["n_enrolled"] == 600
    assert out["expected_sample_size_h1"] < 600


def three_arm_gsd(hazard_ratios: dict) -> dict:
    content = reference_gsd(futility="bsOF", beta=0.2)
    content["arms"] = [
        {"name": "control", "control": True},
        {"name": "low", "allocation": 1},
        {"name": "high", "allocation": 1},
    ]
    content["randomization"] = {"method": "blocks", "block_sizes": [3]}
    content["population"]["n_patients"] = 900
    content["analysis"]["timing"]["target_events"] = 450
    content["analysis"]["group_sequential"]["information_fractions"] = [0.5, 1.0]
    content["endpoints"]["primary"]["effect"] = {"hazard_ratio": hazard_ratios}
    return content


def test_multi_arm_interims_drop_arms_independently():
    protocol = make_protocol(three_arm_gsd({"low": 1.0, "high": 0.65}))
    result = simulate(protocol, n_replicates=600, seed=4, scenarios=("design",))
    table = result.replicates.pivot(index="replicate", columns="arm", values="stop_look")
    reasons = result.replicates.pivot(index="replicate", columns="arm", values="stop_reason")
    # the ineffective arm is often dropped for futility at the interim while the effective
    # one goes on to the final analysis (or stops early for efficacy)
    dropped_low = (reasons["low"] == "futility") & (table["low"] == 1)
    assert dropped_low.mean() > 0.2
    assert (table.loc[dropped_low, "high"] == 2).any()
    oc = result.operating_characteristics.table.set_index("arm")
    assert oc.loc["high", "rejection_rate"] > 0.8
    assert oc.loc["low", "rejection_rate"] < 0.05


def test_multi_arm_interims_control_the_family_wise_error():
    n = 2500
    protocol = make_protocol(three_arm_gsd({"low": 1.0, "high": 1.0}))
    result = simulate(protocol, n_replicates=n, seed=8, scenarios=("null",))
    fwer = result.operating_characteristics.table.set_index("arm").loc["any", "rejection_rate"]
    assert fwer < 0.025 + 4 * np.sqrt(0.025 * 0.975 / n)


def test_trials_short_of_the_target_events_are_analysed_at_their_last_event():
    from trials.exceptions import SimulationWarning

    content = reference_gsd()
    content["dropout"] = {"all": {"annual_rate": 0.9}}
    content["population"]["n_patients"] = 420
    with pytest.warns(SimulationWarning, match="not reached"):
        result = simulate(make_protocol(content), n_replicates=200, seed=1, scenarios=("null",))
    table = result.replicates
    short = ~table["target_reached"]
    assert short.any()
    assert (table.loc[short, "events"] < 390).all()
    assert table["stop_look"].between(1, 3).all()


# --------------------------------------------- the looks against a per-look re-analysis


def per_look_reference(sequential, cohort, data, null: bool):
    """Every trial analysed at every look by :func:`trials.analyse.analyse` on its data
    censored at the look (:func:`tests.test_logrank.reference_censoring`), the looks at
    the calendar times of their events (a trial short of them at its last event); each
    comparison then stops at its first crossing and a trial when its last arm stops.
    Returns per comparison its fields at its stopping look and that look (1-based)."""
    from trials.analyse import analyse
    from trials.engine import AnalysisData, Cutoff, apply_cutoff

    primary = data[0]
    observable = primary.time <= primary.censor
    calendar = np.where(observable, cohort.enrollment + primary.time, np.inf)
    ordered = np.sort(calendar, axis=1)
    planned = sequential.events
    kth = ordered[:, planned - 1]
    reached = np.isfinite(kth)
    last = np.max(np.where(observable, calendar, -np.inf), axis=1)
    times = np.where(reached, kth, last[:, None])
    events = np.where(reached, planned, observable.sum(axis=1)[:, None])
    efficacy, futility = sequential.boundaries(events)
    looks = []
    for k in range(len(planned)):
        analysed = []
        for d in data:
            if d.time is None:
                cutoff = Cutoff(times[:, k], cohort.enrollment, np.inf, reached[:, k])
                analysed.append(apply_cutoff(d, cutoff))
                continue
            time, event, valid = reference_censoring(
                d.time, d.censor, cohort.enrollment, times[:, k]
            )
            analysed.append(AnalysisData(d.endpoint, valid=valid, time=time, event=event))
        looks.append(analyse(sequential.layout, cohort.arm, cohort.covariates, analysed, null))
    n_arms = len(sequential.protocol.experimental_arms)
    rows = np.arange(len(times))
    stops = []
    for j in range(n_arms):
        statistic = np.stack([look[j].statistic for look in looks], axis=1)
        with np.errstate(invalid="ignore"):
            crossed = statistic >= efficacy
            stopping = crossed | (statistic <= futility)
        stopping[:, -1] = True
        stops.append(np.argmax(stopping, axis=1))
    trial_stop = np.max(stops, axis=0)
    expected = []
    for j in range(len(looks[0])):
        at = stops[j] if j < n_arms else trial_stop
        fields = {
            name: np.stack([getattr(look[j], name) for look in looks], axis=1)[rows, at]
            for name in ("estimate", "se", "statistic", "p_value", "n_analysed", "events")
        }
        if j < n_arms:
            fields["reject"] = fields["statistic"] >= efficacy[rows, at]
        expected.append((fields, at + 1))
    return expected


def three_arms_with_secondary_endpoints() -> dict:
    """Three arms (Bonferroni), a secondary time-to-event endpoint (log-rank, as the
    primary) and a secondary binary one (analysed the general way)."""
    content = three_arm_gsd({"low": 0.9, "high": 0.65})
    content["endpoints"]["secondary"] = [
        {
            "name": "pfs",
            "type": "time_to_event",
            "estimand": {"summary_measure": "hazard_ratio"},
            "control": {"distribution": "exponential", "median": 6},
            "effect": {"hazard_ratio": 0.8},
        },
        {
            "name": "response",
            "type": "binary",
            "better": "higher",
            "assessment_month": 3,
            "estimand": {"summary_measure": "difference_in_proportions"},
            "control": {"rate": 0.3},
            "effect": {"odds_ratio": 1.5},
        },
    ]
    return content


def short_of_the_target() -> dict:
    content = reference_gsd()
    content["dropout"] = {"all": {"annual_rate": 0.9}}
    content["population"]["n_patients"] = 420
    return content


@pytest.mark.parametrize(
    "design",
    [
        "oncology_os_group_sequential",
        "bench/reference_design_gsd",
        "three_arms_with_secondary_endpoints",
        "short_of_the_target",
    ],
)
@pytest.mark.parametrize("null", [False, True])
def test_looks_equal_a_per_look_reanalysis_of_every_trial(design: str, null: bool) -> None:
    """The sequential analysis (log-rank looks from :class:`LogrankLooks`, the trials
    still running only) against every look of every trial analysed afresh."""
    import yaml

    from trials.engine import Layout, draw_cohort, simulate_outcomes
    from trials.sequential import SequentialAnalysis

    if design == "bench/reference_design_gsd":
        content = yaml.safe_load((PROTOCOLS.parent / f"{design}.yaml").read_text())
    elif design == "oncology_os_group_sequential":
        content = yaml.safe_load((PROTOCOLS / f"{design}.yaml").read_text())
    else:
        content = globals()[design]()
    protocol = make_protocol(content)
    n = protocol.population.n_patients
    layout = Layout(protocol, n, n)
    cohort = draw_cohort(layout, np.arange(300), 11)
    data = simulate_outcomes(layout, cohort, null)
    sequential = SequentialAnalysis(layout)
    chosen, cutoff, looks, reasons = sequential.run(cohort, data, null)
    expected = per_look_reference(sequential, cohort, data, null)
    stopped_early = 0
    for comparison, look, reason, (fields, at) in zip(
        chosen, looks, reasons, expected, strict=True
    ):
        np.testing.assert_array_equal(look, at)
        stopped_early += np.count_nonzero(at < len(sequential.events))
        for name, values in fields.items():
            got = getattr(comparison, name)
            if name == "reject":
                np.testing.assert_array_equal(got, values)
                assert np.all((reason == "efficacy") == got)
            else:  # the reference sums over other columns: rounding of sums near 0
                np.testing.assert_allclose(got, values, rtol=1e-12, atol=1e-14, equal_nan=True)
    assert stopped_early > 0
