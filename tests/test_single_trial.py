"""The study-report analysis of one trial against independent implementations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from statsmodels.duration.hazard_regression import PHReg
from statsmodels.duration.survfunc import SurvfuncRight, survdiff

from analysis.single_trial import means_report, proportions_report, survival_report
from tests.conftest import load_example
from trials.engine import patient_table
from trials.single import analyse_trial


def test_survival_report_against_statsmodels(rng):
    n = 300
    arm = np.where(rng.random(n) < 0.5, "exp", "ctl")
    time = rng.exponential(np.where(arm == "exp", 14.0, 10.0))
    censor = rng.uniform(5, 30, n)
    event = time <= censor
    time = np.minimum(time, censor)
    report = survival_report(time, event, arm, "ctl", "exp")
    treated = (arm == "exp").astype(float)
    fit = PHReg(time, treated[:, None], status=event.astype(float), ties="efron").fit()
    assert np.log(report.hazard_ratio) == pytest.approx(fit.params[0], rel=1e-5)
    low, high = np.exp(fit.conf_int()[0])
    assert report.hr_ci_lower == pytest.approx(low, rel=1e-4)
    assert report.hr_ci_upper == pytest.approx(high, rel=1e-4)
    chi2, p = survdiff(time, event.astype(float), arm)
    assert report.logrank_chi2 == pytest.approx(chi2, rel=1e-8)
    assert report.logrank_p_value == pytest.approx(p, rel=1e-8)
    for row in report.arms.itertuples():
        mask = arm == row.arm
        sf = SurvfuncRight(time[mask], event[mask].astype(float))
        # statsmodels' median: first time the survival estimate is at or below 0.5
        assert row.median == pytest.approx(sf.quantile(0.5), rel=1e-12)
        assert row.events == event[mask].sum()


def test_proportions_and_means_reports(rng):
    arm = np.repeat(["c", "e"], 100)
    response = rng.random(200) < np.where(arm == "e", 0.5, 0.3)
    report = proportions_report(response, arm, "c", "e")
    pe, pc = response[arm == "e"].mean(), response[arm == "c"].mean()
    assert report.difference == pytest.approx(pe - pc)
    se = np.sqrt(pe * (1 - pe) / 100 + pc * (1 - pc) / 100)
    assert report.ci_lower == pytest.approx(pe - pc - stats.norm.ppf(0.975) * se)
    y = rng.normal(np.where(arm == "e", 1.0, 0.0), 2.0)
    report = means_report(y, arm, "c", "e")
    ref = stats.ttest_ind(y[arm == "e"], y[arm == "c"])
    assert report.p_value == pytest.approx(ref.pvalue, rel=1e-12)


@pytest.mark.parametrize(
    "name", ["oncology_os_phase3", "binary_response_phase2b", "continuous_change_phase3"]
)
def test_every_example_trial_can_be_analysed(name):
    protocol = load_example(name)
    table = patient_table(protocol, replicate=1)
    reports = list(analyse_trial(protocol, table))
    n_endpoints = 1 + len(protocol.endpoints.secondary)
    assert len(reports) == n_endpoints * len(protocol.experimental_arms)
    assert "CI" in reports[0][2].to_text()
