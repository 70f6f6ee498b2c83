"""The engine's per-replicate analyses equal lifelines and statsmodels on single trials
simulated from the shipped protocols (relative tolerance 1e-8)."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
from lifelines.statistics import logrank_test as lifelines_logrank
from statsmodels.duration.hazard_regression import PHReg
from statsmodels.duration.survfunc import survdiff
from statsmodels.stats.contingency_tables import StratifiedTable
from statsmodels.stats.proportion import proportions_ztest

from analysis.cox import cox_treatment
from analysis.logrank import logrank_test
from analysis.means import ancova
from analysis.proportions import cmh_test, proportions_test
from tests.conftest import load_example
from trials.engine import Layout, simulate_chunk, stratum_codes

REPLICATES = np.arange(4)


def simulated(name: str):
    protocol = load_example(name)
    n = protocol.population.n_patients
    layout = Layout(protocol, n, n)
    chunk = simulate_chunk(layout, REPLICATES, protocol.simulation.seed, ("design",))
    cutoff, data = chunk.scenarios["design"]
    return layout, chunk.cohort, data


def test_time_to_event_tests_on_the_oncology_trial():
    layout, cohort, (os_data,) = simulated("oncology_os_phase3")
    group = cohort.arm == 1
    strata = stratum_codes(layout, cohort.covariates, ["ecog", "region"])
    ours = logrank_test(os_data.time, os_data.event, group, valid=os_data.valid)
    ours_strat = logrank_test(
        os_data.time, os_data.event, group, valid=os_data.valid, strata=strata
    )
    ours_cox = cox_treatment(os_data.time, os_data.event, group, valid=os_data.valid)
    for r in range(len(REPLICATES)):
        v = os_data.valid[r]
        t, e, g, s = os_data.time[r][v], os_data.event[r][v], group[r][v], strata[r][v]
        ref = lifelines_logrank(t[g], t[~g], e[g], e[~g])
        assert ours.chi2[r] == pytest.approx(ref.test_statistic, rel=1e-8)
        chi2, _ = survdiff(t, e.astype(float), g.astype(int), strata=s)
        assert ours_strat.chi2[r] == pytest.approx(chi2, rel=1e-8)
        # statsmodels' Newton iterations converge to machine precision (lifelines'
        # stopping rule leaves about 1e-8 here); no tied event times, so Efron = Breslow
        fit = PHReg(t, g[:, None].astype(float), status=e.astype(float), ties="efron").fit()
        assert ours_cox.log_hr[r] == pytest.approx(fit.params[0], rel=1e-8)
        assert ours_cox.se_log_hr[r] == pytest.approx(fit.bse[0], rel=1e-8)


def test_binary_tests_on_the_response_trial():
    layout, cohort, (response,) = simulated("binary_response_phase2b")
    group = cohort.arm == 1
    y = response.value.astype(bool)
    ours = proportions_test(y, group, valid=response.valid)
    strata = cohort.covariates["prior_therapy"].astype(int)
    ours_cmh = cmh_test(y, group, strata, valid=response.valid)
    for r in range(len(REPLICATES)):
        v = response.valid[r]
        yy, g, s = y[r][v], group[r][v], strata[r][v]
        z, _ = proportions_ztest([yy[g].sum(), yy[~g].sum()], [g.sum(), (~g).sum()])
        assert ours.z[r] == pytest.approx(z, rel=1e-8)
        tables = [
            np.array(
                [
                    [np.sum(yy[g & (s == k)]), np.sum(~yy[g & (s == k)])],
                    [np.sum(yy[~g & (s == k)]), np.sum(~yy[~g & (s == k)])],
                ]
            )
            for k in (0, 1)
        ]
        ref = StratifiedTable(tables)
        assert ours_cmh.chi2[r] == pytest.approx(
            ref.test_null_odds(correction=False).statistic, rel=1e-8
        )
        assert ours_cmh.common_odds_ratio[r] == pytest.approx(ref.oddsratio_pooled, rel=1e-8)


def test_ancova_on_the_three_arm_trial():
    layout, cohort, (score, _) = simulated("continuous_change_phase3")
    baseline = cohort.covariates["baseline_score"]
    for arm in (1, 2):
        valid = score.valid & np.isin(cohort.arm, [0, arm])
        group = cohort.arm == arm
        ours = ancova(score.value, group, baseline[..., None], valid=valid)
        for r in range(len(REPLICATES)):
            v = valid[r]
            x = sm.add_constant(np.column_stack([group[r][v].astype(float), baseline[r][v]]))
            fit = sm.OLS(score.value[r][v], x).fit()
            assert ours.difference[r] == pytest.approx(fit.params[1], rel=1e-8)
            assert ours.se[r] == pytest.approx(fit.bse[1], rel=1e-8)
            assert ours.p_value[r] == pytest.approx(fit.pvalues[1], rel=1e-8)
