"""Operating characteristics of a propensity-score external control arm under drift
(analysis/external_drift.py through analysis.hybrid_design.simulate_drift) and its
``insilico drift`` configuration (trials/cli/drift.py).

References: the nominal one-sided type I error of IPTW-ATT, overlap weights and matching
without drift (measured confounding only), within Monte Carlo error; the closed-form bias of
the unadjusted difference, ``beta' covariate_shift`` (E[mean x_trial - mean x_external] is the
shift in a linear outcome model); the bias ``-shift`` of IPTW-ATT under an outcome shift of
the external controls (the weighted control mean moves by the shift exactly, replicate by
replicate) and ``-strength x prevalence difference`` under an unmeasured factor; statsmodels'
``Logit`` for the batched propensity fit; :func:`analysis.propensity.match_nearest` for the
batched matching; :func:`analysis.external_control.weighted_difference` for the weighted
estimate. Tolerances: 4 Monte Carlo SEs.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from analysis.borrowing import NoBorrowing
from analysis.external_control import weighted_difference
from analysis.external_drift import (
    ExternalControlApproach,
    ExternalControlDesign,
    _Chunk,
)
from analysis.hybrid_design import HybridDesign, plot_drift, simulate_drift
from analysis.propensity import att_weights, fit_propensity, match_nearest
from tests.conftest import PROTOCOLS
from trials.cli import main
from trials.cli.drift import load_drift_config, run_drift
from trials.exceptions import DesignError

EXAMPLE = PROTOCOLS / "drift" / "external_control_drift.yaml"
ALPHA = 0.025
ADJUSTED = ("iptw_att", "overlap", "matching")
APPROACHES = [ExternalControlApproach(m) for m in ("naive", *ADJUSTED)]
DESIGN = ExternalControlDesign("normal", 60, 240, control=0.0, effect=0.5, sd=1.0,
                               covariate_shift=(0.5, -0.3), covariate_effects=(0.6, 0.4),
                               unmeasured_prevalence=0.3, unmeasured_strength=0.5)  # fmt: skip


def _rows(result, approach, scenario="null"):
    table = result.table
    return table[(table.approach == approach) & (table.scenario == scenario)].set_index("drift")


def test_without_drift_the_propensity_approaches_keep_alpha_and_naive_is_biased():
    n = 4000
    res = simulate_drift(DESIGN, APPROACHES, [0.0], n_replicates=n, seed=11)
    tolerance = 4 * math.sqrt(ALPHA * (1 - ALPHA) / n)
    for approach in ADJUSTED:
        null = _rows(res, approach).loc[0.0]
        assert abs(null.rejection_rate - ALPHA) < tolerance, (approach, null.rejection_rate)
        for scenario in ("null", "design"):
            row = _rows(res, approach, scenario).loc[0.0]
            assert abs(row.bias) < 4 * row.bias_mcse, (approach, scenario, row.bias)
        assert _rows(res, approach, "design").loc[0.0, "coverage"] > 0.93
    naive = _rows(res, "naive", "design").loc[0.0]
    expected = 0.6 * 0.5 + 0.4 * -0.3  # beta' covariate_shift
    assert expected == pytest.approx(DESIGN.naive_bias())
    assert abs(naive.bias - expected) < 4 * naive.bias_mcse
    assert _rows(res, "naive").loc[0.0, "rejection_rate"] > 0.1
    assert (res.table.n_ps_not_converged == 0).all()


def test_an_outcome_shift_biases_iptw_by_minus_the_shift():
    shifts = [-0.3, 0.0, 0.4]
    res = simulate_drift(DESIGN, [ExternalControlApproach("iptw_att")], shifts,
                         n_replicates=1500, seed=3)  # fmt: skip
    for scenario in ("null", "design"):
        rows = _rows(res, "iptw_att", scenario)
        for shift, row in rows.iterrows():
            assert abs(row.bias + shift) < 4 * row.bias_mcse, (shift, row.bias)
            # common random numbers: the weighted control mean moves by the shift exactly
            assert row.bias - rows.loc[0.0, "bias"] == pytest.approx(-shift, abs=1e-9)


def test_an_unmeasured_factor_biases_every_approach_by_strength_times_difference():
    res = simulate_drift(DESIGN, APPROACHES[1:], [0.0, 0.3], kind="prevalence_difference",
                         n_replicates=1500, seed=4)  # fmt: skip
    for approach in ADJUSTED:
        rows = _rows(res, approach, "design")
        change = rows.loc[0.3, "bias"] - rows.loc[0.0, "bias"]
        # the same replicates: the SE of the change is about that of the factor's mean
        assert abs(rows.loc[0.3, "bias"] + 0.5 * 0.3) < 4 * rows.loc[0.3, "bias_mcse"]
        assert change == pytest.approx(-0.15, abs=0.03)


def test_batched_propensity_fit_matching_and_weights_equal_the_reference_implementations():
    import statsmodels.api as sm

    chunk = _Chunk(DESIGN, 5, range(3), False, [0.2])
    y = chunk.outcome("design", 0.0, "shift")
    iptw = chunk.analyse(ExternalControlApproach("iptw_att"), y, 0.95)
    for r in range(3):
        x = chunk.design_matrix[r]
        reference = sm.Logit(chunk.source, x).fit(disp=0, tol=1e-12)
        np.testing.assert_allclose(chunk.coef[r], reference.params, rtol=1e-8, atol=1e-10)
        assert chunk.converged[r]
        frame = pd.DataFrame(x[:, 1:], columns=["x1", "x2"]).assign(trial=chunk.source)
        model = fit_propensity(frame, "trial", ["x1", "x2"])
        np.testing.assert_allclose(chunk.eta[r], model.linear_predictor, rtol=1e-8, atol=1e-8)
        pairs = match_nearest(model, k=1, caliper=0.2).pairs
        partner = chunk.matches[0.2][r]
        expected = dict(zip(pairs.trial, pairs.external - DESIGN.n_trial, strict=True))
        assert {i: j for i, j in enumerate(partner) if j >= 0} == expected
        reference = weighted_difference(y[r], chunk.source == 1, att_weights(model))
        assert iptw["effect"][r] == pytest.approx(reference.estimate, rel=1e-9)


def test_results_do_not_depend_on_chunking():
    one = simulate_drift(DESIGN, APPROACHES, [-0.2, 0.2], n_replicates=150, seed=1)
    many = simulate_drift(DESIGN, APPROACHES, [-0.2, 0.2], n_replicates=150, seed=1,
                          chunk_size=37)  # fmt: skip
    pd.testing.assert_frame_equal(one.table, many.table)
    other = simulate_drift(DESIGN, APPROACHES, [-0.2, 0.2], n_replicates=150, seed=2)
    assert not one.table.equals(other.table)
    ax = plot_drift(one, "bias")
    assert len(ax.get_legend().get_texts()) == len(APPROACHES)


def test_mismatched_designs_and_approaches_are_refused():
    with pytest.raises(DesignError, match="no_borrowing: applies to a hybrid design only"):
        simulate_drift(DESIGN, [NoBorrowing()], [0.0])
    hybrid = HybridDesign("normal", 10, 10, 10, 0.0, 0.5)
    with pytest.raises(DesignError, match="need an ExternalControlDesign"):
        simulate_drift(hybrid, [ExternalControlApproach("iptw_att")], [0.0])
    with pytest.raises(DesignError, match="one effect per covariate shift"):
        ExternalControlDesign("normal", 10, 10, 0.0, 0.5, covariate_shift=(0.1, 0.2))
    with pytest.raises(DesignError, match="method must be one of"):
        ExternalControlApproach("ipw")


# ----------------------------------------------------------------------------- command
def test_drift_command_runs_the_external_control_example(tmp_path, capsys):
    out = tmp_path / "curves"
    code = main(["drift", str(EXAMPLE), "--out", str(out), "-r", "200", "--json", "--no-plot"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    config = load_drift_config(EXAMPLE)
    expected = run_drift(config, n_replicates=200).to_dict()
    assert printed["curves"] == json.loads(json.dumps(expected["curves"]))
    assert printed["design"]["design_type"] == "external_control"
    assert printed["design"]["naive_bias"] == pytest.approx(0.9)
    table = pd.read_csv(out / "drift_curves.csv")
    assert len(table) == len(config.approaches) * len(config.drift.values) * 2
    assert set(table.approach) == {"naive", "iptw_att", "overlap", "matching"}


def test_bad_external_config_names_the_fields(tmp_path, capsys):
    text = EXAMPLE.read_text().replace("  - method: naive", "  - method: pooling")
    text = text.replace("covariate_effects: [3.0, 2.0]", "covariate_effects: [3.0]")
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    assert main(["drift", str(bad), "--out", str(tmp_path / "curves")]) == 2
    err = capsys.readouterr().err
    assert "approaches[0].method: pooling does not apply to this design" in err
    assert "external_control.covariate_effects: needs one effect per covariate shift" in err
    assert "Traceback" not in err
